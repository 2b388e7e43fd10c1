//! omcmsync: turns Avaya Communication Manager command-history events, forwarded by CM's
//! rsyslog, into System Manager resync requests. Built as `omcmsync.so`, a native rsyslog
//! output module, and as a library for the command-line tools and tests.
//!
//! Data flows through the modules in one direction:
//!
//! ```text
//! rsyslog   the FFI boundary: entry points, all unsafe code; converts to safe types at once
//!   -> line      a rendered template line split into sender, hostname, time, message
//!   -> pipeline  what one action does with a batch (trace, then classify/filter/queue/deliver)
//!   -> trace     one JSON record per line for the operator
//! ```
//!
//! Alongside: `config` (every parameter, validated in one place), `counters` (what happened,
//! as atomics) and `logging` (rsyslog's error log inside the daemon, stderr elsewhere).

pub mod classify;
pub mod config;
pub mod counters;
pub mod line;
pub mod logging;
pub mod pipeline;
mod rsyslog;
pub mod sample;
pub mod trace;
