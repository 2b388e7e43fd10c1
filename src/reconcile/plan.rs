//! When each element is reconciled next, and why: the reconciler's timetable. Plain data, no
//! threads: the worker asks it what is due and tells it what started.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::requests::Trigger;

/// A session to start at `at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Due {
    pub at: Instant,
    pub why: Trigger,
    /// An operator's start of the comparison (ms), instead of where the last one ended.
    pub since: Option<u64>,
}

#[derive(Default)]
pub struct Plan {
    due: HashMap<String, Due>,
    /// When each element's last session started: the next is never sooner than an interval
    /// after it (an operator's excepted).
    last: HashMap<String, Instant>,
}

impl Plan {
    /// Whether `element` has a session planned or had one.
    pub fn knows(&self, element: &str) -> bool {
        self.due.contains_key(element) || self.last.contains_key(element)
    }

    /// The elements planned or reconciled before.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.last.keys().chain(self.due.keys()).cloned().collect();
        names.sort();
        names.dedup();
        names
    }

    /// Forgets the elements not in `keep`.
    pub fn retain(&mut self, keep: &[String]) {
        self.due.retain(|name, _| keep.contains(name));
        self.last.retain(|name, _| keep.contains(name));
    }

    /// Makes `element` due for `why`, at once or when the interval since its last session ends.
    pub fn mark(&mut self, element: &str, why: Trigger, interval: Duration) {
        let now = Instant::now();
        let at = self
            .last
            .get(element)
            .map_or(now, |l| (*l + interval).max(now));
        let due = Due {
            at,
            why,
            since: None,
        };
        let entry = self.due.entry(element.to_owned()).or_insert(due);
        // A trigger due no later than the schedule (or the schedule already due) names the
        // session; an operator's request stands.
        if entry.why != Trigger::Operator && at <= entry.at.max(now) {
            *entry = due;
        }
    }

    /// Makes `element` due at `at` on its schedule (its first look, after a start).
    pub fn schedule(&mut self, element: &str, at: Instant) {
        let due = Due {
            at,
            why: Trigger::Schedule,
            since: None,
        };
        self.due.insert(element.to_owned(), due);
    }

    /// `element`'s last session started `at` (before a restart: the interval holds across).
    pub fn started(&mut self, element: &str, at: Instant) {
        self.last.insert(element.to_owned(), at);
    }

    /// An operator asks for `element` now, compared from `since` (ms) if given.
    pub fn ask(&mut self, element: &str, since: Option<u64>) {
        let due = Due {
            at: Instant::now(),
            why: Trigger::Operator,
            since,
        };
        self.due.insert(element.to_owned(), due);
    }

    /// Takes the sessions due now, soonest first: at most `room` of them, none for an element
    /// `busy` says has one running. Each is counted as started now.
    pub fn start_due(&mut self, room: usize, busy: impl Fn(&str) -> bool) -> Vec<(String, Due)> {
        let now = Instant::now();
        let mut due: Vec<(String, Due)> = self
            .due
            .iter()
            .filter(|(e, d)| d.at <= now && !busy(e))
            .map(|(e, d)| (e.clone(), *d))
            .collect();
        due.sort_by_key(|(_, d)| d.at);
        due.truncate(room);
        for (e, _) in &due {
            self.due.remove(e);
            self.last.insert(e.clone(), now);
        }
        due
    }

    /// When the next session is due, of those `held` does not hold back (a session running, no
    /// room, a standby).
    pub fn next(&self, held: impl Fn(&str) -> bool) -> Option<Instant> {
        let free = self.due.iter().filter(|(e, _)| !held(e));
        free.map(|(_, d)| d.at).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_started_session_holds_the_next_for_an_interval() {
        let mut plan = Plan::default();
        plan.mark("cm1", Trigger::Start, HOUR);
        let started = plan.start_due(4, |_| false);
        assert_eq!(started.len(), 1);
        assert_eq!(started[0].1.why, Trigger::Start);
        // A silence ended at once after: not before an interval since the start.
        plan.mark("cm1", Trigger::Silence, HOUR);
        assert!(plan.start_due(4, |_| false).is_empty());
        assert!(plan.next(|_| false).unwrap() > Instant::now() + HOUR / 2);
        assert!(plan.next(|_| true).is_none());
        // An operator is not held, and a later trigger does not replace the request.
        plan.ask("cm1", Some(7));
        plan.mark("cm1", Trigger::Promotion, HOUR);
        let started = plan.start_due(4, |_| false);
        assert_eq!(
            (started[0].1.why, started[0].1.since),
            (Trigger::Operator, Some(7))
        );
    }

    #[test]
    fn busy_elements_wait_and_room_is_respected() {
        let mut plan = Plan::default();
        for e in ["cm1", "cm2", "cm3"] {
            plan.mark(e, Trigger::Start, HOUR);
        }
        let started = plan.start_due(1, |e| e == "cm1");
        assert_eq!(started.len(), 1);
        assert_ne!(started[0].0, "cm1");
        let rest: Vec<String> = plan
            .start_due(4, |_| false)
            .into_iter()
            .map(|s| s.0)
            .collect();
        assert_eq!(rest.len(), 2);
        assert!(rest.contains(&"cm1".to_string()));
        plan.retain(&["cm2".into()]);
        assert_eq!(plan.names(), ["cm2"]);
    }
}
