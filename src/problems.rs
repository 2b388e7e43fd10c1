//! What the host lacks for one action: a file, a program, a certificate or an answer that a
//! parameter names. The action runs degraded meanwhile instead of refusing to start (only
//! `rsyslogd -N1` refuses: docs/design.md, "Degrade, never drop"), and each problem is
//! summarised, not repeated: logged once when it appears (or changes), reminded at most every
//! [`REMIND`] with how often it was seen, and logged once when it is gone. `omcmsync status`
//! lists them, impstats counts them (`degraded`).
//!
//! Keyed by the parameter: the store holds at most one entry per parameter, however long the
//! host stays broken and however often the problem is seen.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::now_ms;
use crate::counters::Counters;
use crate::logging;

/// How often a problem that persists is logged again, with its count.
pub const REMIND: Duration = Duration::from_secs(300);

/// A problem that changes (another error for the same parameter) is logged again at most
/// this often.
const CHANGED_EVERY: Duration = Duration::from_secs(60);

/// One problem as `omcmsync status` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub param: &'static str,
    /// What is wrong, naming the path or program, and what it costs meanwhile.
    pub what: String,
    /// Wall-clock milliseconds when it appeared.
    pub since_ms: u64,
    /// How often it was seen since.
    pub seen: u64,
}

struct Entry {
    problem: Problem,
    said: Instant,
}

/// The problems of one action.
pub struct Problems {
    counters: Arc<Counters>,
    entries: Mutex<BTreeMap<&'static str, Entry>>,
}

impl Default for Problems {
    fn default() -> Self {
        Problems::new(Arc::default())
    }
}

impl Problems {
    pub fn new(counters: Arc<Counters>) -> Self {
        Problems {
            counters,
            entries: Mutex::default(),
        }
    }

    fn entries(&self) -> parking_lot::MutexGuard<'_, BTreeMap<&'static str, Entry>> {
        self.entries.lock()
    }

    /// `param` has a problem now: logged when it is new or different, reminded at most every
    /// [`REMIND`].
    pub fn report(&self, param: &'static str, what: &str) {
        if let Some(msg) = self.record(param, what) {
            logging::error(&msg);
        }
    }

    /// As [`Problems::report`] for a problem the caller logs itself (the HA role's switches):
    /// shown in `status` and counted, never logged here.
    pub fn note(&self, param: &'static str, what: &str) {
        self.record(param, what);
    }

    /// Records the problem; returns what to log, if anything.
    fn record(&self, param: &'static str, what: &str) -> Option<String> {
        let mut entries = self.entries();
        let said = match entries.get_mut(param) {
            Some(e) => {
                e.problem.seen += 1;
                let changed = e.problem.what != what;
                let quiet = if changed { CHANGED_EVERY } else { REMIND };
                if changed {
                    e.problem.what = what.to_owned();
                }
                if e.said.elapsed() < quiet {
                    return None;
                }
                e.said = Instant::now();
                let minutes = now_ms().saturating_sub(e.problem.since_ms) / 60_000;
                let still = if changed { "now" } else { "still" };
                Some(format!(
                    "{param}: {still} {what} (seen {} times over {minutes} min)",
                    e.problem.seen
                ))
            }
            None => {
                let entry = Entry {
                    problem: Problem {
                        param,
                        what: what.to_owned(),
                        since_ms: now_ms(),
                        seen: 1,
                    },
                    said: Instant::now(),
                };
                entries.insert(param, entry);
                Some(format!("{param}: {what}"))
            }
        };
        self.counters
            .degraded
            .store(entries.len() as u64, Ordering::Relaxed);
        said
    }

    /// `param` works again: logged once, with how long it did not. Cheap while nothing is
    /// wrong (one atomic load): called on paths that succeed often.
    pub fn clear(&self, param: &'static str) {
        if self.counters.degraded.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut entries = self.entries();
        let Some(gone) = entries.remove(param) else {
            return;
        };
        self.counters
            .degraded
            .store(entries.len() as u64, Ordering::Relaxed);
        drop(entries);
        let p = gone.problem;
        logging::info(&format!(
            "{param}: resolved after {} s (seen {} times): {}",
            now_ms().saturating_sub(p.since_ms) / 1000,
            p.seen,
            p.what
        ));
    }

    /// As [`Problems::clear`] for a problem the caller logs itself.
    pub fn forget(&self, param: &'static str) {
        let mut entries = self.entries();
        if entries.remove(param).is_some() {
            self.counters
                .degraded
                .store(entries.len() as u64, Ordering::Relaxed);
        }
    }

    /// [`Problems::report`] on `Err`, [`Problems::clear`] on `Ok`.
    pub fn track<T>(&self, param: &'static str, result: &Result<T, String>) {
        match result {
            Ok(_) => self.clear(param),
            Err(what) => self.report(param, what),
        }
    }

    /// Every problem now, by parameter.
    pub fn list(&self) -> Vec<Problem> {
        self.entries().values().map(|e| e.problem.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_entry_per_parameter_counted_and_cleared() {
        let counters = Arc::new(Counters::default());
        let p = Problems::new(counters.clone());
        for _ in 0..1000 {
            p.report("smgr.tokenfile", "missing");
        }
        p.report("ha.command", "not found");
        let list = p.list();
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].seen, 1000);
        assert_eq!(Counters::get(&counters.degraded), 2);
        p.report("smgr.tokenfile", "unreadable");
        assert_eq!(p.list()[1].what, "unreadable", "the latest is shown");
        p.clear("smgr.tokenfile");
        p.clear("smgr.tokenfile");
        let params: Vec<&str> = p.list().iter().map(|p| p.param).collect();
        assert_eq!(params, ["ha.command"]);
        assert_eq!(Counters::get(&counters.degraded), 1);
    }

    #[test]
    fn said_once_then_reminded() {
        let p = Problems::new(Arc::default());
        assert!(p.record("state.dir", "x").is_some());
        assert!(p.record("state.dir", "x").is_none());
        let Some(long_ago) = Instant::now().checked_sub(REMIND) else {
            return; // a machine up for less than REMIND
        };
        p.entries().get_mut("state.dir").unwrap().said = long_ago;
        let again = p.record("state.dir", "x").unwrap();
        assert!(
            again.contains("still") && again.contains("3 times"),
            "{again}"
        );
    }
}
