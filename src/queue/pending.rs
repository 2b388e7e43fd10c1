//! The coalescing map: one entry per key, however many changes touched it.
//!
//! Pure data, no I/O: the queue's writer applies every mutation here in the same order as it
//! writes them to the log, so replaying the log at start rebuilds exactly this state.

use std::collections::HashMap;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::resync::{Change, Key, Origin, Scope, ShortText, VerbSet};

/// At most this many logins are listed per request.
const MAX_LOGINS: usize = 8;

/// Everything known about one pending key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Sequence number of the last change merged in.
    pub seq: u64,
    pub count: u64,
    pub verbs: VerbSet,
    /// Sorted, without repeats, at most MAX_LOGINS. The usual one login is held inline: there
    /// can be 100,000 keys during an outage, and a heap block per key for it (a BTreeSet node
    /// cost some 300 bytes) showed in rsyslogd's memory.
    pub logins: Logins,
    pub reason: Option<Box<str>>,
    pub first_ms: u64,
    pub last_ms: u64,
    /// When the key may be sent: the window counts from the first change, it does not restart.
    pub due_ms: u64,
    /// A request for it is in flight (runtime only).
    pub in_flight: bool,
    /// The greatest of its changes' origins.
    pub origin: Origin,
}

/// The logins of one key.
pub type Logins = SmallVec<[ShortText; 1]>;

/// Adds a login to a sorted, repeat-free list of at most MAX_LOGINS.
fn add_login(logins: &mut Logins, login: &str) {
    if let Err(at) = logins.binary_search_by(|l| l.as_str().cmp(login)) {
        if logins.len() < MAX_LOGINS {
            logins.insert(at, login.into());
        }
    }
}

/// One element's keys due for sending, taken in flight by [`Pending::take_due`].
#[derive(Debug)]
pub struct DueBatch {
    pub element: Arc<str>,
    /// Each key with its entry as it was taken (the request is built from these).
    pub items: Vec<(Key, Entry)>,
}

/// Keys of one element. Hashed, not ordered: a flood merges tens of thousands of changes a
/// second, and comparing keys string by string down a B-tree was the writer's largest cost.
/// foldhash, seeded per map, not SipHash: SipHash was half of a change's cost in the queue, and
/// keys come only from known CM senders' admin commands.
type Scopes = KeyMap<Scope, Entry>;
type KeyMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

pub struct Pending {
    elements: KeyMap<Arc<str>, Scopes>,
    len: usize,
    window_ms: u64,
    burst_threshold: usize,
    /// No key that is not in flight is due before this: lets `take_due` and `next_due_ms`
    /// answer without walking every key (the delivery thread asks several times a second).
    earliest_due_ms: u64,
    /// This node is standby: nothing is due until [`Pending::release`].
    held: bool,
}

impl Pending {
    pub fn new(window_ms: u64, burst_threshold: usize) -> Self {
        Pending {
            elements: KeyMap::default(),
            len: 0,
            window_ms,
            burst_threshold,
            earliest_due_ms: u64::MAX,
            held: false,
        }
    }

    /// Holds every key (this node is standby): none is due until released.
    pub fn hold(&mut self) {
        self.held = true;
    }

    pub fn held(&self) -> bool {
        self.held
    }

    /// This node is active: every held key is due now. Returns how many keys there are.
    pub fn release(&mut self, now: u64) -> usize {
        self.held = false;
        for entry in self.elements.values_mut().flat_map(|s| s.values_mut()) {
            entry.due_ms = entry.due_ms.min(now);
        }
        self.earliest_due_ms = self.earliest_due_ms.min(now);
        self.len
    }

    /// Keys (not in flight) whose last change was received before `cutoff_ms` (wall clock),
    /// with their sequence numbers: what a standby's retention drops.
    pub fn older_than(&self, cutoff_ms: u64) -> Vec<(Key, u64)> {
        self.iter()
            .filter(|(_, _, e)| !e.in_flight && e.last_ms < cutoff_ms)
            .map(|(element, scope, e)| {
                let key = Key {
                    element: element.into(),
                    scope: scope.clone(),
                };
                (key, e.seq)
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every key, borrowed, in no particular order (what compaction writes).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Scope, &Entry)> {
        self.elements.iter().flat_map(|(element, scopes)| {
            scopes
                .iter()
                .map(move |(scope, entry)| (&**element, scope, entry))
        })
    }

    /// Merges one change received at `change.at_ms` (wall clock), `now` by the scheduling clock
    /// (`u64::MAX` when replaying the log: its own times schedule). A new key is due a window
    /// after the earlier of the two, so a wall clock stepped forward delays nothing. When an
    /// element passes the burst threshold, its keys are replaced by one element-level key.
    /// Returns when the key it joined is due.
    pub fn merge(&mut self, change: Change, seq: u64, now: u64) -> u64 {
        let at = change.at_ms;
        let sched_at = at.min(now);
        let window_ms = self.window_ms;
        let Key { element, scope } = change.key;
        let scopes = self.elements.entry(element.clone()).or_default();
        // A pending (not yet sent) element-level resync already covers every object of it.
        let scope = match scopes.get(&Scope::Element) {
            Some(e) if !e.in_flight => Scope::Element,
            _ => scope,
        };
        let escalates = scope != Scope::Element;
        let entry = match scopes.entry(scope) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                self.len += 1;
                v.insert(Entry {
                    seq,
                    count: 0,
                    verbs: VerbSet::default(),
                    logins: Logins::new(),
                    reason: change.reason.map(String::into_boxed_str),
                    first_ms: at,
                    last_ms: at,
                    due_ms: sched_at + window_ms,
                    in_flight: false,
                    origin: change.origin,
                })
            }
        };
        entry.seq = entry.seq.max(seq);
        entry.count += 1;
        entry.origin = entry.origin.max(change.origin);
        entry.verbs.insert(change.verb);
        if let Some(login) = &change.login {
            add_login(&mut entry.logins, login);
        }
        entry.first_ms = entry.first_ms.min(at);
        entry.last_ms = entry.last_ms.max(at);
        let due = entry.due_ms;
        if !entry.in_flight {
            self.earliest_due_ms = self.earliest_due_ms.min(due);
        }
        if escalates && scopes.len() > self.burst_threshold {
            self.escalate(&element);
        }
        due
    }

    /// Inserts a whole entry (a compacted log's snapshot).
    pub fn restore(&mut self, key: Key, entry: Entry) {
        self.earliest_due_ms = self.earliest_due_ms.min(entry.due_ms);
        let scopes = self.elements.entry(key.element).or_default();
        if scopes.insert(key.scope, entry).is_none() {
            self.len += 1;
        }
    }

    /// Replaces every key of `element` with one element-level key.
    fn escalate(&mut self, element: &Arc<str>) {
        let Some(scopes) = self.elements.get_mut(element) else {
            return;
        };
        let keys = scopes.len();
        let mut merged: Option<Entry> = None;
        for (_, e) in scopes.drain() {
            merged = Some(match merged {
                None => e,
                Some(mut m) => {
                    m.seq = m.seq.max(e.seq);
                    m.count += e.count;
                    m.verbs = m.verbs.union(e.verbs);
                    e.logins.iter().for_each(|l| add_login(&mut m.logins, l));
                    m.first_ms = m.first_ms.min(e.first_ms);
                    m.last_ms = m.last_ms.max(e.last_ms);
                    m.due_ms = m.due_ms.min(e.due_ms);
                    m.origin = m.origin.max(e.origin);
                    m
                }
            });
        }
        let Some(mut entry) = merged else { return };
        entry.reason = Some(format!("burst: {} changes on {keys} keys", entry.count).into());
        entry.in_flight = false;
        self.earliest_due_ms = self.earliest_due_ms.min(entry.due_ms);
        scopes.insert(Scope::Element, entry);
        self.len = self.len + 1 - keys;
    }

    /// Removes `key` if no change newer than the request `sent_seq` arrived since (then it is
    /// due again a window after that change, or after `now` if that is earlier, as in
    /// [`Pending::merge`]). Returns whether it was removed.
    pub fn done(&mut self, key: &Key, sent_seq: u64, now: u64) -> bool {
        let Some(scopes) = self.elements.get_mut(&key.element) else {
            return false;
        };
        let newer = match scopes.get_mut(&key.scope) {
            None => return false,
            Some(e) if e.seq > sent_seq => e,
            Some(_) => {
                scopes.remove(&key.scope);
                self.len -= 1;
                if scopes.is_empty() {
                    self.elements.remove(&key.element);
                }
                return true;
            }
        };
        // Changed while the request was in flight: send again, a window after the newer change.
        newer.in_flight = false;
        newer.due_ms = newer.last_ms.min(now) + self.window_ms;
        self.earliest_due_ms = self.earliest_due_ms.min(newer.due_ms);
        false
    }

    /// A request failed and will be retried: the keys wait until `retry_at_ms`.
    pub fn retry(&mut self, key: &Key, retry_at_ms: u64) {
        let entry = self
            .elements
            .get_mut(&key.element)
            .and_then(|scopes| scopes.get_mut(&key.scope));
        if let Some(e) = entry {
            e.in_flight = false;
            e.due_ms = e.due_ms.max(retry_at_ms);
            self.earliest_due_ms = self.earliest_due_ms.min(e.due_ms);
        }
    }

    /// No key of `element` is due later than `at_ms` (what waited for a backoff).
    pub fn hasten(&mut self, element: &str, at_ms: u64) {
        if let Some(scopes) = self.elements.get_mut(element) {
            for e in scopes.values_mut() {
                e.due_ms = e.due_ms.min(at_ms);
            }
            self.earliest_due_ms = self.earliest_due_ms.min(at_ms);
        }
    }

    /// No key is due later than `latest`.
    pub fn cap_due(&mut self, latest: u64) {
        for e in self
            .elements
            .values_mut()
            .flat_map(|scopes| scopes.values_mut())
        {
            e.due_ms = e.due_ms.min(latest);
        }
        self.earliest_due_ms = self.earliest_due_ms.min(latest);
    }

    /// No key is in flight any more (the delivery that had them is gone): all may be taken again.
    pub fn release_in_flight(&mut self) {
        for e in self
            .elements
            .values_mut()
            .flat_map(|scopes| scopes.values_mut())
        {
            e.in_flight = false;
        }
        self.recheck();
    }

    /// Takes up to `max_per_element` due keys of each element that may be sent now (`ready_at`:
    /// from when an element may, 0 for now), marking them in flight: those due longest first
    /// (then in key order), so none waits forever. An element held back is not walked: its
    /// `ready_at` is the earliest its keys can go, so the delivery thread sleeps until then
    /// instead of walking a backlog of an unreachable SMGR path every few milliseconds.
    pub fn take_due(
        &mut self,
        now_ms: u64,
        max_per_element: usize,
        ready_at: impl Fn(&str) -> u64,
    ) -> Vec<DueBatch> {
        let mut batches: Vec<DueBatch> = Vec::new();
        if self.held || now_ms < self.earliest_due_ms {
            return batches;
        }
        let mut earliest = u64::MAX;
        let mut elements: Vec<Arc<str>> = self.elements.keys().cloned().collect();
        elements.sort();
        for element in elements {
            let Some(scopes) = self.elements.get_mut(&element) else {
                continue;
            };
            let ready_at = ready_at(&element);
            if ready_at == u64::MAX {
                // Busy (a request of its own in flight): not a time to wait for; the end of
                // that request asks for a new look (`recheck`).
                continue;
            }
            if ready_at > now_ms {
                earliest = earliest.min(ready_at);
                continue;
            }
            let mut due: Vec<(u64, &Scope)> = Vec::new();
            for (scope, entry) in scopes.iter().filter(|(_, e)| !e.in_flight) {
                if entry.due_ms > now_ms {
                    earliest = earliest.min(entry.due_ms);
                } else {
                    due.push((entry.due_ms, scope));
                }
            }
            if due.len() > max_per_element {
                due.select_nth_unstable(max_per_element);
                let left = due.drain(max_per_element..).map(|(due_ms, _)| due_ms);
                earliest = earliest.min(left.min().unwrap_or(u64::MAX));
            }
            if due.is_empty() {
                continue;
            }
            due.sort_unstable();
            let taken: Vec<Scope> = due.into_iter().map(|(_, s)| s.clone()).collect();
            let items = taken
                .into_iter()
                .filter_map(|scope| {
                    let entry = scopes.get_mut(&scope)?;
                    entry.in_flight = true;
                    let entry = entry.clone();
                    let element = element.clone();
                    Some((Key { element, scope }, entry))
                })
                .collect();
            batches.push(DueBatch { element, items });
        }
        self.earliest_due_ms = earliest;
        batches
    }

    /// Makes the next [`Pending::take_due`] walk every key (an element that was busy, whose
    /// keys did not count towards the earliest due time, may send again).
    pub fn recheck(&mut self) {
        self.earliest_due_ms = 0;
    }

    /// The earliest time a key not in flight becomes due (a lower bound: never later).
    pub fn next_due_ms(&self) -> Option<u64> {
        (!self.held && self.earliest_due_ms != u64::MAX).then_some(self.earliest_due_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Pending {
        /// Pending keys of one element.
        fn element_len(&self, element: &str) -> usize {
            self.elements.get(element).map_or(0, HashMap::len)
        }
    }
    use crate::classify::Verb;

    fn change(el: &str, scope: Scope, verb: Verb, at: u64) -> Change {
        Change {
            key: Key {
                element: el.into(),
                scope,
            },
            verb,
            login: Some("dadmin".into()),
            reason: None,
            at_ms: at,
            origin: Origin::Heard,
        }
    }

    fn station(id: &str) -> Scope {
        Scope::Object {
            ty: "station".into(),
            id: id.into(),
        }
    }

    #[test]
    fn a_key_takes_the_greatest_origin_of_its_changes() {
        let mut p = Pending::new(0, 500);
        let with = |id: &str, origin: Origin| Change {
            origin,
            ..change("cm", station(id), Verb::Change, 100)
        };
        p.merge(with("1", Origin::Reconcile), 1, u64::MAX);
        p.merge(with("2", Origin::Reconcile), 2, u64::MAX);
        p.merge(with("2", Origin::Heard), 3, u64::MAX);
        p.merge(with("3", Origin::Standby), 4, u64::MAX);
        p.merge(with("3", Origin::Reconcile), 5, u64::MAX);
        let mut got: Vec<(Scope, Origin)> = p
            .take_due(200, 100, |_| 0)
            .remove(0)
            .items
            .into_iter()
            .map(|(k, e)| (k.scope, e.origin))
            .collect();
        got.sort();
        let want = [
            (station("1"), Origin::Reconcile),
            (station("2"), Origin::Heard),
            (station("3"), Origin::Standby),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn a_busy_element_is_skipped_without_holding_up_the_others() {
        let mut p = Pending::new(0, 500);
        p.merge(change("busy", station("1"), Verb::Change, 100), 1, u64::MAX);
        p.merge(change("free", station("2"), Verb::Change, 100), 2, u64::MAX);
        let busy = |el: &str| if el == "busy" { u64::MAX } else { 0 };
        let due = p.take_due(200, 100, busy);
        assert_eq!(due.len(), 1);
        assert_eq!(&*due[0].element, "free");
        // A later change of the free element is found, though the busy one's key is still due.
        p.merge(change("free", station("3"), Verb::Change, 300), 3, u64::MAX);
        assert_eq!(p.take_due(400, 100, busy).len(), 1);
        // Once it is free again (recheck), the busy element's key goes.
        assert!(
            p.take_due(500, 100, |_| 0).is_empty(),
            "no look without a recheck"
        );
        p.recheck();
        let due = p.take_due(500, 100, |_| 0);
        assert_eq!((due.len(), &*due[0].element), (1, "busy"));
    }

    #[test]
    fn many_changes_to_ten_stations_make_ten_keys() {
        let mut p = Pending::new(1000, 500);
        for i in 0..1000u64 {
            p.merge(
                change("cm", station(&(i % 10).to_string()), Verb::Change, 100 + i),
                i,
                u64::MAX,
            );
        }
        assert_eq!(p.len(), 10);
        let (_, _, e) = p.iter().find(|(_, s, _)| **s == station("0")).unwrap();
        assert_eq!((e.count, e.first_ms, e.due_ms), (100, 100, 1100));
        assert!(
            p.take_due(1099, 100, |_| 0).is_empty(),
            "window caps from the first change"
        );
        let due = p.take_due(1200, 100, |_| 0);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].items.len(), 10);
        assert!(p.take_due(5000, 100, |_| 0).is_empty(), "in flight");
    }

    #[test]
    fn done_removes_unless_changed_in_flight() {
        let mut p = Pending::new(10, 100);
        p.merge(change("cm", station("1"), Verb::Change, 0), 1, u64::MAX);
        p.merge(change("cm", station("2"), Verb::Add, 0), 2, u64::MAX);
        let due = p.take_due(10, 100, |_| 0);
        let sent: Vec<(Key, u64)> = due[0]
            .items
            .iter()
            .map(|(k, e)| (k.clone(), e.seq))
            .collect();
        p.merge(change("cm", station("2"), Verb::Change, 50), 3, u64::MAX);
        assert!(p.done(&sent[0].0, sent[0].1, u64::MAX));
        assert!(
            !p.done(&sent[1].0, sent[1].1, u64::MAX),
            "changed while in flight"
        );
        assert_eq!(p.len(), 1);
        assert_eq!(p.next_due_ms(), Some(60));
        let again = p.take_due(60, 100, |_| 0);
        assert_eq!(again[0].items[0].1.verbs, [Verb::Add, Verb::Change].into());
    }

    #[test]
    fn retry_waits_and_ready_filter_holds_elements_back() {
        let mut p = Pending::new(0, 100);
        p.merge(change("a", station("1"), Verb::Change, 0), 1, u64::MAX);
        p.merge(change("b", station("1"), Verb::Change, 0), 2, u64::MAX);
        let b_at_700 = |el: &str| if el == "b" { 700 } else { 0 };
        let due = p.take_due(0, 100, b_at_700);
        assert_eq!(due.len(), 1);
        p.retry(&due[0].items[0].0, 500);
        assert!(p.take_due(499, 100, b_at_700).is_empty());
        assert_eq!(p.next_due_ms(), Some(500));
        assert_eq!(p.take_due(500, 100, b_at_700).len(), 1);
        assert_eq!(
            p.next_due_ms(),
            Some(700),
            "a held-back element's keys are due, but cannot go before it is ready"
        );
        assert_eq!(p.take_due(700, 100, b_at_700)[0].element.as_ref(), "b");
    }

    #[test]
    fn keys_due_longest_go_first_when_a_post_cannot_hold_all() {
        let mut p = Pending::new(10, 100);
        for (id, at) in [("1003", 5), ("1001", 7), ("1002", 1), ("1000", 9)] {
            p.merge(change("cm", station(id), Verb::Change, at), 1, u64::MAX);
        }
        let ids = |due: Vec<DueBatch>| -> Vec<Scope> {
            due.into_iter()
                .flat_map(|batch| batch.items)
                .map(|(k, _)| k.scope)
                .collect()
        };
        assert_eq!(
            ids(p.take_due(100, 2, |_| 0)),
            [station("1002"), station("1003")]
        );
        assert_eq!(
            p.next_due_ms(),
            Some(17),
            "the keys left over are due already"
        );
        assert_eq!(
            ids(p.take_due(100, 2, |_| 0)),
            [station("1001"), station("1000")]
        );
        assert_eq!(p.next_due_ms(), None);
    }

    #[test]
    fn burst_escalates_to_one_element_key() {
        let mut p = Pending::new(0, 3);
        for i in 0..3 {
            p.merge(
                change("cm", station(&i.to_string()), Verb::Change, 0),
                i,
                u64::MAX,
            );
        }
        p.merge(change("other", station("9"), Verb::Change, 0), 10, u64::MAX);
        assert_eq!(p.len(), 4);
        p.merge(
            change(
                "cm",
                Scope::Type {
                    ty: "station".into(),
                },
                Verb::Add,
                5,
            ),
            11,
            u64::MAX,
        );
        assert_eq!(p.len(), 2);
        assert_eq!(p.element_len("cm"), 1);
        let (_, scope, entry) = p.iter().find(|(el, _, _)| *el == "cm").unwrap();
        assert_eq!(*scope, Scope::Element);
        assert_eq!((entry.count, entry.seq), (4, 11));
        assert!(entry.reason.as_deref().unwrap().starts_with("burst"));
        // Further changes of that element coalesce into the pending element key...
        p.merge(change("cm", station("77"), Verb::Change, 6), 12, u64::MAX);
        assert_eq!(p.element_len("cm"), 1);
        assert_eq!(p.iter().find(|(el, _, _)| *el == "cm").unwrap().2.count, 5);
        // ...but not into one already sent: that request may have read the state before them.
        let due = p.take_due(100, 10, |el| if el == "cm" { 0 } else { u64::MAX });
        assert_eq!(due[0].items[0].0.scope, Scope::Element);
        p.merge(change("cm", station("78"), Verb::Change, 7), 13, u64::MAX);
        assert_eq!(p.element_len("cm"), 2);
    }
}
