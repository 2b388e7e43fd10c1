//! Messages for the operator. Inside rsyslogd they go to rsyslog's own error log (so they show
//! in `rsyslogd -N1` and the daemon's log like rsyslog's own); in the tools, to stderr.

use parking_lot::{Mutex, RwLock};
use std::time::{Duration, Instant};

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
    *SINK.write() = sink;
}

/// Logs one message, prefixed with `omcmsync: `.
pub fn log(level: Level, msg: &str) {
    let msg = format!("omcmsync: {msg}");
    match *SINK.read() {
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

/// Forwards the warnings and errors of the libraries that report through the `log` facade
/// (rustls, ureq) to where ours go. Idempotent: a second call changes nothing.
pub fn bridge_libraries() {
    if log::set_logger(&BRIDGE).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
}

/// At most one library message a minute: a failing handshake repeats at every retry, and
/// ours already say what failed; how many were held back is said with the next one.
const LIBRARY_EVERY: Duration = Duration::from_secs(60);

static BRIDGE: Bridge = Bridge {
    last: Mutex::new(None),
};

struct Bridge {
    /// When a library message was last said, and how many were held back since.
    last: Mutex<Option<(Instant, u64)>>,
}

impl log::Log for Bridge {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut last = self.last.lock();
        let held = match *last {
            Some((at, held)) if at.elapsed() < LIBRARY_EVERY => {
                *last = Some((at, held + 1));
                return;
            }
            Some((_, held)) => held,
            None => 0,
        };
        *last = Some((Instant::now(), 0));
        drop(last);
        let more = match held {
            0 => String::new(),
            n => format!(" ({n} more held back in the last minute)"),
        };
        let level = match record.level() {
            log::Level::Error => Level::Error,
            _ => Level::Warning,
        };
        log(
            level,
            &format!("{}: {}{more}", record.target(), record.args()),
        );
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_warnings_are_forwarded_once_a_minute() {
        static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());
        set_sink(Some(|_, m| SEEN.lock().push(m.to_owned())));
        bridge_libraries();
        bridge_libraries();
        log::warn!(target: "rustls::test", "first");
        log::warn!(target: "rustls::test", "second");
        log::info!(target: "rustls::test", "not a warning");
        set_sink(None);
        let seen: Vec<String> = SEEN
            .lock()
            .iter()
            .filter(|m| m.contains("rustls::test"))
            .cloned()
            .collect();
        assert_eq!(seen, ["omcmsync: rustls::test: first"]);
    }
}
