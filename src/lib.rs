//! omcmsync: turns Avaya Communication Manager command-history events, forwarded by CM's
//! rsyslog, into System Manager resync requests. Built as `omcmsync.so`, a native rsyslog
//! output module, and as a library for the command-line tools and tests.
//!
//! Data flows through the modules in one direction:
//!
//! ```text
//! rsyslog    the FFI boundary: entry points, all unsafe code; converts to safe types at once
//!   -> action    one action: joins the pipeline and the service's lifecycle per batch
//!     -> pipeline  read a batch (knows nothing of threads or the queue):
//!          line      split a rendered template line into sender, hostname, time, message
//!          classify  read the message: an Event (verb, object, id, who, from where) or a Reason
//!          filter    known CM sender (elements), notifications on, node active (ha), echo
//!          records   trace and capture files (their record types), once the batch is committed
//!     -> queue     make the batch's changes durable before rsyslog hears "committed"
//!   -> deliver   the dispatcher hands each element's due keys to a lane (crossbeam-channel),
//!                builds the request (ResyncBody), backs off, dead-letters refusals
//!     -> smgr      System Manager's client: the Api (URLs, credentials, GETs) and the
//!                  Transport (HTTP or the site's program) a request goes out by
//! ```
//!
//! The background: `service` (the `Lifecycle` that starts, restarts and stops the service off
//! rsyslog's threads, and the `Service` it runs: the queue and the threads, built in one
//! place), `supervise` (how every background thread runs: one `Context` with the `Shutdown`
//! signal they wait on, a panic caught, logged, counted and the thread restarted; the action's
//! `Hup`), `queue` (durable coalescing; its thread fsyncs and compacts), `elements` (which
//! sender is which CM: the table the hot path reads, the list's file, host names looked up in
//! parallel, and the `Refresher` thread that keeps them current), `ha` (is this node active:
//! the `Gate`, and the `Watch` thread that holds or releases the queue), `resync` (keys,
//! changes, and their fields' serde form), `control` (the socket in `state.dir` through which
//! the operator's tools read and act on the running module, never a second writer; its
//! requests and answers as types in `control::wire`), `program` (a site's program run
//! bounded: `ha.command`, `smgr.command`, the OSSI client; every run killed at stop), `ossi`
//! (the line grammar of CM's SAT for programs: read-only requests, replies, one session as a
//! script without I/O, and the report the OSSI client `omcmsync-ossi` prints; no SSH in it),
//! `reconcile` (CM's own history against what was heard: the `Reconciler` thread runs a
//! session per element, judges each record at minute resolution and queues what syslog lost,
//! marked reconcile; its `Memory` in `state.dir`), and `problems` (what the
//! host lacks for the action: a file, a program, a certificate, an answer; the action runs
//! degraded meanwhile, each problem said once). `omprog` runs the same action under rsyslog's
//! omprog.
//!
//! Alongside: `clock` (the wall clock for what is written down, the monotonic clock that
//! schedules, RFC 3339 in and out), `config` (every parameter, validated in one place; what
//! reaching System Manager takes, in `config::smgr`), `tls` (TLS files to one rustls
//! configuration), `private` (files the module creates are its user's alone, replaced
//! atomically), `counters` (what happened, as atomics), `logging` (rsyslog's error log inside
//! the daemon, stderr elsewhere; rustls's and ureq's warnings forwarded), `scan` (the
//! 32-bytes-at-a-time byte tests under `line` and `classify`), `text` (log lines cut to size,
//! credentials blanked: a leaf), `sample` (synthetic CM traffic for benchmarks, load tests
//! and the demo) and, in test builds only, `faults` (hooks that make the module fail where no
//! outside action can).
//!
//! Every JSON the module writes or reads is one serde type shared by its writer and readers
//! (docs/design.md, "Wire formats").

pub mod action;
pub mod classify;
pub mod clock;
pub mod config;
pub mod control;
pub mod counters;
pub mod deliver;
pub mod elements;
#[cfg(feature = "fault-hooks")]
pub mod faults;
pub mod ha;
pub mod line;
pub mod logging;
pub mod omprog;
pub mod ossi;
pub mod pipeline;
mod private;
pub mod problems;
pub mod program;
pub mod queue;
pub mod reconcile;
pub mod records;
pub mod resync;
mod rsyslog;
pub mod sample;
mod scan;
pub mod service;
pub mod smgr;
pub mod supervise;
pub mod text;
pub mod tls;
