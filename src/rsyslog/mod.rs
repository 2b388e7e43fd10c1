//! The rsyslog boundary: the only module with `unsafe` code and `extern "C"` functions.
//!
//! rsyslogd `dlopen`s the cdylib, calls [`entry::modInit`] (the one exported symbol), and from
//! then on reaches us only through the entry points it looked up. Each entry point runs inside
//! [`guard::guarded`] (no thread cancellation, no panic across the boundary), converts its raw
//! arguments into safe Rust values at once, and hands them to the [`crate::action`].
//! The ABI itself is declared in `include/rsyslog.h` and bound by bindgen in build.rs.

#[allow(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    dead_code
)]
#[allow(clippy::all)]
mod abi {
    include!(concat!(env!("OUT_DIR"), "/rsyslog_abi.rs"));
}

mod entry;
mod guard;
mod host;
mod instance;
mod params;
mod stats;
