//! omcmsync: turns Avaya Communication Manager command-history events, forwarded by CM's
//! rsyslog, into System Manager resync requests. Built as `omcmsync.so`, a native rsyslog
//! output module, and as a library for the command-line tools and tests.
//!
//! Data flows through the modules in one direction:
//!
//! ```text
//! rsyslog    the FFI boundary: entry points, all unsafe code; converts to safe types at once
//!   -> pipeline  what one action does with a batch of lines:
//!        line      split a rendered template line into sender, hostname, time, message
//!        classify  read the message: an Event (verb, object, id, who, from where) or a Reason
//!        filter    known CM sender (elements), notifications on, node active (ha), echo
//!        queue     make the batch's changes durable before rsyslog hears "committed"
//!        records   trace and capture files for the operator
//!   -> deliver   POST due keys to System Manager, per element, with backoff
//! ```
//!
//! After the pipeline: `queue` (durable coalescing; its thread fsyncs and compacts), `deliver` (the SMGR
//! client, the dispatcher and its per-element lanes), `service` (starts and stops those threads
//! and the supervisor), `supervise` (how every background thread runs: a panic is caught,
//! logged, counted and the thread restarted),
//! with `elements` (which sender is which CM), `ha` (is this node active) and `resync` (keys,
//! changes, request bodies). `omprog` runs the same pipeline under rsyslog's omprog.
//!
//! Alongside: `private` (files the module creates are its user's alone), `config` (every
//! parameter, validated in one place), `counters` (what happened,
//! as atomics), `logging` (rsyslog's error log inside the daemon, stderr elsewhere), `scan`
//! (the 32-bytes-at-a-time byte tests under `line` and `classify`), `sample` (synthetic CM
//! traffic for benchmarks, load tests and the demo) and, in test builds only, `faults` (hooks
//! that make the module fail where no outside action can).

pub mod action;
pub mod classify;
pub mod config;
pub mod counters;
pub mod deliver;
pub mod elements;
#[cfg(feature = "fault-hooks")]
pub mod faults;
pub mod ha;
pub mod line;
pub mod logging;
pub mod omprog;
pub mod pipeline;
mod private;
pub mod queue;
pub mod records;
pub mod resync;
mod rsyslog;
pub mod sample;
mod scan;
pub mod service;
pub mod supervise;
pub mod tls;
