//! Messages for the operator. Inside rsyslogd they go to rsyslog's own error log (so they show
//! in `rsyslogd -N1` and the daemon's log like rsyslog's own); in the tools, to stderr.

use std::sync::RwLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Info,
}

/// Where messages go; installed by the rsyslog boundary when the module loads.
pub type Sink = fn(Level, &str);

static SINK: RwLock<Option<Sink>> = RwLock::new(None);

/// Sends messages to `sink` from now on (`None`: back to stderr).
pub fn set_sink(sink: Option<Sink>) {
    *SINK.write().unwrap_or_else(|e| e.into_inner()) = sink;
}

/// Logs one message, prefixed with `omcmsync: `.
pub fn log(level: Level, msg: &str) {
    let msg = format!("omcmsync: {msg}");
    match *SINK.read().unwrap_or_else(|e| e.into_inner()) {
        Some(sink) => sink(level, &msg),
        None => eprintln!("{msg}"),
    }
}

pub fn error(msg: &str) {
    log(Level::Error, msg)
}

pub fn warning(msg: &str) {
    log(Level::Warning, msg)
}

pub fn info(msg: &str) {
    log(Level::Info, msg)
}
