//! Judging which history records were heard. A record says only its minute, in CM's clock; a
//! heard change has the millisecond rsyslog received it. A record at minute `m` (mapped to
//! the module's clock) and a heard change are the same when they name the same key and login
//! and the change was heard within `[m - tolerance, m + 60 s + tolerance)`: the tolerance
//! covers reading CM's clock (its seconds are read, its minutes rounded), syslog's delay and
//! a clock that drifted since. Records and heard changes pair off one to one, oldest first,
//! so three changes of one station in a minute of which two were heard leave one missed. In
//! doubt, a record is missed: an extra resync costs System Manager one read, a missed one
//! leaves it wrong until the nightly sync.

use serde::{Deserialize, Serialize};

use crate::resync::{Scope, ShortText};

/// A change heard by syslog, as much as matching needs (and `state.dir/reconcile.json` keeps).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Heard {
    /// When rsyslog received it, ms since the epoch.
    pub at: u64,
    #[serde(flatten)]
    pub scope: Scope,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<ShortText>,
}

/// A change a history record makes, with whatever the caller needs back for it.
#[derive(Clone, Debug)]
pub struct Found<T> {
    /// The start of the record's minute on the module's clock.
    pub minute_ms: u64,
    pub scope: Scope,
    pub login: Option<ShortText>,
    pub item: T,
}

/// The span a reconciliation answers for: changes at or after `from_ms` (to now).
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub from_ms: u64,
    pub tolerance_ms: u64,
}

const MINUTE_MS: u64 = 60_000;

impl Window {
    /// The record's minute can hold a change at or after `from_ms`.
    pub fn covers(&self, minute_ms: u64) -> bool {
        minute_ms.saturating_add(MINUTE_MS + self.tolerance_ms) > self.from_ms
    }

    /// `heard` can be the change recorded at `minute_ms`.
    fn pairs(&self, minute_ms: u64, heard: &Heard) -> bool {
        heard.at.saturating_add(self.tolerance_ms) >= minute_ms
            && heard.at < minute_ms.saturating_add(MINUTE_MS + self.tolerance_ms)
    }

    /// The history does not reach back to the window's start: its oldest record is newer than
    /// the start (by more than the tolerance), so what came before it was overwritten.
    pub fn wrapped(&self, oldest_minute_ms: Option<u64>) -> bool {
        oldest_minute_ms.is_some_and(|m| m > self.from_ms.saturating_add(self.tolerance_ms))
    }
}

/// What a comparison found.
#[derive(Debug)]
pub struct Comparison<T> {
    /// Changes in the window no heard change pairs with, oldest first.
    pub missed: Vec<Found<T>>,
    /// The heard changes that paired (indices into `heard`): each pairs once, ever.
    pub paired: Vec<usize>,
}

/// Pairs the changes `found` in the history (any order) with those `heard`.
pub fn compare<T>(mut found: Vec<Found<T>>, heard: &[Heard], window: Window) -> Comparison<T> {
    found.retain(|f| window.covers(f.minute_ms));
    found.sort_by_key(|f| f.minute_ms);
    let mut used = vec![false; heard.len()];
    let mut missed = Vec::new();
    let mut paired = Vec::new();
    for f in found {
        let partner = heard.iter().enumerate().position(|(i, h)| {
            !used[i]
                && h.scope == f.scope
                && same_login(&h.login, &f.login)
                && window.pairs(f.minute_ms, h)
        });
        match partner {
            Some(i) => {
                used[i] = true;
                paired.push(i);
            }
            None => missed.push(f),
        }
    }
    Comparison { missed, paired }
}

/// Logins agree, or one side has none (a syslog line of the bare command names nobody).
fn same_login(a: &Option<ShortText>, b: &Option<ShortText>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: u64 = 1_796_548_500_000; // a minute's start

    fn station(id: &str) -> Scope {
        Scope::Object {
            ty: "station".into(),
            id: id.into(),
        }
    }

    fn found(minute_ms: u64, id: &str, item: u32) -> Found<u32> {
        Found {
            minute_ms,
            scope: station(id),
            login: Some("dadmin".into()),
            item,
        }
    }

    fn heard(at: u64, id: &str) -> Heard {
        Heard {
            at,
            scope: station(id),
            login: Some("DADMIN".into()),
        }
    }

    fn missed(c: &Comparison<u32>) -> Vec<u32> {
        c.missed.iter().map(|f| f.item).collect()
    }

    const W: Window = Window {
        from_ms: M - 10 * MINUTE_MS,
        tolerance_ms: 120_000,
    };

    #[test]
    fn a_record_pairs_with_a_change_heard_in_its_minute_give_or_take() {
        let records = vec![found(M, "1", 1), found(M, "2", 2), found(M, "3", 3)];
        let heard = [
            heard(M + 59_000, "1"),
            heard(M - 100_000, "2"),       // early, within the tolerance
            heard(M + 3 * MINUTE_MS, "3"), // too late to be this record
        ];
        let c = compare(records, &heard, W);
        assert_eq!((missed(&c), c.paired.len()), (vec![3], 2));
    }

    #[test]
    fn records_and_changes_pair_one_to_one() {
        let records = vec![
            found(M, "1", 1),
            found(M, "1", 2),
            found(M + MINUTE_MS, "1", 3),
        ];
        let c = compare(records, &[heard(M + 1000, "1"), heard(M + 61_000, "1")], W);
        assert_eq!((missed(&c).len(), c.paired.len()), (1, 2));
        // Another login, another key: not the same change.
        let mut other = found(M, "1", 9);
        other.login = Some("init".into());
        let c = compare(vec![other, found(M, "2", 8)], &[heard(M, "1")], W);
        assert_eq!(missed(&c), vec![9, 8]);
    }

    #[test]
    fn records_before_the_window_are_not_judged_and_a_short_history_has_wrapped() {
        let old = W.from_ms - MINUTE_MS - W.tolerance_ms - 1;
        let c = compare(vec![found(old, "1", 1), found(W.from_ms, "2", 2)], &[], W);
        assert_eq!(missed(&c), vec![2]);
        assert!(!W.wrapped(Some(old)));
        assert!(!W.wrapped(Some(W.from_ms + W.tolerance_ms)));
        assert!(W.wrapped(Some(W.from_ms + W.tolerance_ms + 1)));
        assert!(!W.wrapped(None));
    }
}
