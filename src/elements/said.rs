//! What the element list's problems have been said: each once when it appears, again only
//! after it was gone. Bounded by the list in force.

use std::collections::{HashMap, HashSet};

use crate::logging;

/// New problems of one kind logged one by one; more are summed up in one line.
const SAID_AT_ONCE: usize = 5;

#[derive(Default)]
pub struct Said {
    /// Host names reported as not resolving (or as kept from an earlier answer).
    unresolved: HashSet<String>,
    /// Problems logged, by kind, as of the last list.
    by_kind: HashMap<&'static str, HashSet<String>>,
}

impl Said {
    /// Logs each host name that starts not resolving (or resolving only to what it had), and
    /// each that resolves again.
    pub fn report_unresolved(&mut self, unresolved: &[String], stale: &[String]) {
        let said = &mut self.unresolved;
        let now: HashSet<&str> = unresolved.iter().chain(stale).map(String::as_str).collect();
        said.retain(|host| {
            let still = now.contains(host.as_str());
            if !still {
                logging::info(&format!("elements: host '{host}' resolves again"));
            }
            still
        });
        for host in unresolved {
            if said.insert(host.clone()) {
                logging::warning(&format!(
                    "elements: host '{host}' does not resolve; its lines are not known as any element's; looked up again at every refresh"
                ));
            }
        }
        for host in stale {
            if said.insert(host.clone()) {
                logging::warning(&format!(
                    "elements: host '{host}' did not resolve at the last refresh; keeping the addresses it had"
                ));
            }
        }
    }

    /// Logs the problems of `kind` (say, the list's skipped entries) that were not there the
    /// last time, at most [`SAID_AT_ONCE`] of them and a count of the rest, and forgets those
    /// that are gone.
    pub fn say_changes(&mut self, kind: &'static str, level: logging::Level, problems: &[String]) {
        let now: HashSet<String> = problems.iter().cloned().collect();
        let before = self.by_kind.entry(kind).or_default();
        let new: Vec<&String> = problems.iter().filter(|p| !before.contains(*p)).collect();
        for msg in new.iter().take(SAID_AT_ONCE) {
            logging::log(level, msg);
        }
        if new.len() > SAID_AT_ONCE {
            logging::log(
                level,
                &format!(
                    "elements: and {} more like these ({} in all now)",
                    new.len() - SAID_AT_ONCE,
                    now.len()
                ),
            );
        }
        *before = now;
    }
}
