//! The durable coalescing queue: every accepted change is on disk before rsyslog is told the
//! batch is committed, and stays there, coalesced per key, until System Manager has it.
//!
//! One lock guards the log and the [`Pending`] map, so the log holds every mutation in the order
//! the map saw it. An rsyslog worker appends its batch's changes to the log in one write and
//! merges them into the map, both on its own thread and never waiting for SMGR. Once written, a
//! change survives any crash of rsyslogd (the kernel holds it); the fsync that makes it survive
//! a crash of the host comes from the queue's thread ([`sync`]) within `fsync_every`, or, with a
//! zero interval, before the worker returns (group commit). The delivery thread takes due keys
//! from the map and records deliveries in the log the same way.

mod dir;
mod log;
mod pending;
mod sync;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, MutexGuard};

pub use self::dir::DirLock;
use self::dir::Epoch;
pub use self::log::Recovery;
use self::log::{Log, Record};
pub use self::pending::{DueBatch, Entry, Pending};
use self::sync::Durability;
use crate::resync::{Change, Key, Origin};
use crate::supervise::{self, Context};

/// The longest a worker waits for the queue (a compaction holding it, a slow disk, an fsync
/// with `fsync_every` zero) before giving up; rsyslog then retries the batch: at-least-once.
/// Every wait of a worker is bounded: rsyslog's shutdown waits for it (ABI spec §11.8).
pub const SUBMIT_TIMEOUT: Duration = Duration::from_secs(10);

/// One element's keys, as `omcmsync status` shows them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ElementKeys {
    pub pending: usize,
    pub in_flight: usize,
    /// Held while this node is standby.
    pub held: usize,
    /// First change of the oldest key, ms since the Unix epoch.
    pub oldest_ms: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct QueueConfig {
    pub dir: PathBuf,
    pub window_ms: u64,
    pub burst_threshold: usize,
    /// Longest time written changes wait for an fsync; zero: fsync before answering.
    pub fsync_every: Duration,
    /// The queue's thread runs supervised ([`crate::supervise`]).
    pub context: Context,
    /// The configured elements, resynced whole when the log is damaged and names none.
    pub fallback_elements: Vec<String>,
    /// Start with every key held, until the HA role says this node is active.
    pub start_held: bool,
}

/// Why a batch could not be made durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueError {
    /// Writing or syncing the log failed (disk full, I/O error): the kind, for a caller to
    /// branch on, and the system's words, for an operator.
    Io {
        kind: std::io::ErrorKind,
        message: String,
    },
    /// Not done within [`SUBMIT_TIMEOUT`], or the queue is stopping.
    Unavailable,
}

impl QueueError {
    pub fn io(e: &std::io::Error) -> QueueError {
        QueueError::Io {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

impl std::fmt::Display for QueueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueueError::Io { message, .. } => write!(f, "writing queue.log failed: {message}"),
            QueueError::Unavailable => {
                f.write_str("the queue did not take it in time (stopping, or busy)")
            }
        }
    }
}

impl std::error::Error for QueueError {}

/// What the lock guards: the log and the map, mutated together.
struct State {
    log: Log,
    map: Ledger,
}

/// What the log's records build: the pending keys and the next sequence number.
struct Ledger {
    pending: Pending,
    next_seq: u64,
}

/// Each element's keys in `pending`.
fn summarise(pending: &Pending) -> BTreeMap<String, ElementKeys> {
    let mut out = BTreeMap::<String, ElementKeys>::new();
    let held = pending.held();
    for (element, _, entry) in pending.iter() {
        let keys = out.entry(element.to_owned()).or_default();
        keys.pending += 1;
        keys.in_flight += usize::from(entry.in_flight);
        keys.held += usize::from(held && !entry.in_flight);
        keys.oldest_ms = Some(
            keys.oldest_ms
                .map_or(entry.first_ms, |o| o.min(entry.first_ms)),
        );
    }
    out
}

/// Each element's keys as the log in `dir` holds them, read without a module and without
/// changing anything (`omcmsync status --offline`, the packages' purge and erase), and what
/// reading found (damaged lines).
pub fn summary_offline(dir: &Path) -> io::Result<(BTreeMap<String, ElementKeys>, Recovery)> {
    let mut map = Ledger {
        pending: Pending::new(0, usize::MAX),
        next_seq: 1,
    };
    let recovery = Log::read(dir, |r| {
        map.apply(r, u64::MAX);
    })?;
    Ok((summarise(&map.pending), recovery))
}

impl Ledger {
    /// Applies one record: a written one on the live path (`now`: the scheduling clock), or
    /// one read back at start (`now` = `u64::MAX`: the records' own times schedule). Returns
    /// the due time an `add` set.
    fn apply(&mut self, record: Record, now: u64) -> Option<u64> {
        match record {
            Record::Seq(n) => self.next_seq = self.next_seq.max(n),
            Record::Add { seq, change } => {
                self.next_seq = self.next_seq.max(seq + 1);
                return Some(self.pending.merge(change, seq, now));
            }
            Record::Done { seq, key } => {
                self.pending.done(&key, seq, now);
            }
            Record::Entry { key, entry } => {
                self.next_seq = self.next_seq.max(entry.seq + 1);
                self.pending.restore(key, entry);
            }
        }
        None
    }

    /// An element-level change for each of `elements`, with `reason`.
    fn resync_elements(&mut self, elements: &[String], reason: &str) {
        let now = crate::clock::sched_now_ms();
        for element in elements {
            let change = Change {
                key: Key {
                    element: element.as_str().into(),
                    scope: crate::resync::Scope::Element,
                },
                verb: crate::classify::Verb::Change,
                login: None,
                reason: Some(reason.to_owned()),
                at_ms: crate::clock::now_ms(),
                origin: Origin::Heard,
            };
            let seq = self.next_seq;
            self.apply(Record::Add { seq, change }, now);
        }
    }
}

impl State {
    /// Applies written `records` on the live path; returns the earliest due time they set.
    fn apply_all(&mut self, records: Vec<Record>) -> u64 {
        let now = crate::clock::sched_now_ms();
        records
            .into_iter()
            .filter_map(|r| self.map.apply(r, now))
            .min()
            .unwrap_or(u64::MAX)
    }

    /// The log is mostly history: worth rewriting from the map.
    fn wants_compaction(&self) -> bool {
        self.log.appended >= 4096 && self.log.appended >= 4 * self.map.pending.len() as u64
    }

    fn compact(&mut self) -> io::Result<()> {
        self.log.compact(self.map.next_seq, self.map.pending.iter())
    }
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when a change becomes due before the delivery thread meant to wake up.
    added: Condvar,
    /// When the delivery thread will look again by itself (ms since the epoch); `u64::MAX`
    /// while it is awake, so that every write then counts as a change.
    wake_at_ms: AtomicU64,
    /// Changes the delivery thread must look at, counted under the queue's lock: a wait that
    /// starts after one it has not seen returns at once, so none is lost between the thread's
    /// look at the queue and its sleep.
    changes: AtomicU64,
    /// Bytes in the log, for stats.
    log_bytes: AtomicU64,
    durability: Durability,
    /// A log that cannot be written (a full disk) is reported here, summarised.
    problems: Arc<crate::problems::Problems>,
    counters: Arc<crate::counters::Counters>,
}

impl Shared {
    /// After a write: stats, the delivery thread if a change is due sooner than it will look,
    /// the queue's thread if the log wants compacting.
    fn after_write(&self, state: &State, earliest_due: u64) {
        self.note_log_bytes(state);
        // Under a flood of changes the delivery thread is not woken per batch.
        if earliest_due < self.wake_at_ms.load(Ordering::Relaxed) {
            self.changed();
        }
        if state.wants_compaction() {
            self.durability.compact();
        }
    }

    /// Something the delivery thread must look at; called with the queue's lock held.
    fn changed(&self) {
        self.changes.fetch_add(1, Ordering::Relaxed);
        self.added.notify_all();
    }

    /// The log's size and the keys pending, for stats: kept by every write and compaction,
    /// so that no thread has to wake up to refresh them.
    fn note_log_bytes(&self, state: &State) {
        let bytes = state.log.bytes();
        self.log_bytes.store(bytes, Ordering::Relaxed);
        let keys = state.map.pending.len() as u64;
        self.counters.set_queue_gauges(keys, bytes);
    }
}

pub struct Queue {
    shared: Arc<Shared>,
    fsync_every: Duration,
    thread: Option<JoinHandle<()>>,
    /// Mixed into every Idempotency-Key ([`dir::Epoch`]).
    epoch: u64,
    /// Held while the queue is open: one writer per state directory.
    _lock: DirLock,
}

/// What damage to the log may have lost is not known: every element it names (or, naming
/// none, every configured one) gets a full resync.
fn resync_damaged(map: &mut Ledger, recovery: &mut Recovery, fallback: &[String]) {
    let named: std::collections::BTreeSet<&String> = recovery
        .elements
        .iter()
        .chain(&recovery.damaged_elements)
        .collect();
    recovery.resynced = match named.is_empty() {
        true => fallback.to_vec(),
        false => named.into_iter().cloned().collect(),
    };
    map.resync_elements(&recovery.resynced, "queue damaged");
}

impl Queue {
    /// Takes the state directory's lock, opens the log in it, rebuilds the pending keys from
    /// it, and starts the queue's thread. A damaged log (or one missing where the directory
    /// says there was one) is kept aside and costs the elements it names a full resync: what
    /// was lost is not known (docs/design.md, "Damage").
    pub fn open(config: &QueueConfig) -> io::Result<(Queue, Recovery)> {
        let dir = &config.dir;
        crate::private::create_dir_all(dir)?;
        let lock = DirLock::take(dir)?;
        let epoch = Epoch::load(dir);
        let log_found = std::fs::metadata(dir.join("queue.log")).is_ok_and(|m| m.len() > 0);
        let mut map = Ledger {
            pending: Pending::new(config.window_ms, config.burst_threshold),
            next_seq: 1,
        };
        let (log, mut recovery) = Log::open(dir, |r| {
            map.apply(r, u64::MAX);
        })?;
        recovery.missing = epoch.is_some() && !log_found;
        let damaged = recovery.bad_lines > 0 || recovery.missing;
        if damaged {
            resync_damaged(&mut map, &mut recovery, &config.fallback_elements);
        }
        // Times in the log came from the last run's clocks: if the wall clock was stepped back
        // since, no key may wait longer than a window from now.
        map.pending
            .cap_due(crate::clock::sched_now_ms() + config.window_ms);
        if config.start_held {
            map.pending.hold();
        }
        let mut state = State { log, map };
        state.compact()?;
        // The epoch is kept once a log vouches for the sequence numbers; damage draws a new
        // one, so no Idempotency-Key of the old numbering can come again.
        let epoch = match epoch {
            Some(e) if !damaged => e,
            _ => Epoch::redraw(dir)?,
        };
        let shared = Arc::new(Shared {
            log_bytes: AtomicU64::new(state.log.bytes()),
            state: Mutex::new(state),
            added: Condvar::new(),
            wake_at_ms: AtomicU64::new(u64::MAX),
            changes: AtomicU64::new(0),
            durability: Durability::default(),
            problems: config.context.problems.clone(),
            counters: config.context.counters.clone(),
        });
        shared.note_log_bytes(&shared.state.lock());
        let thread_shared = shared.clone();
        let fsync_every = config.fsync_every;
        let thread = supervise::spawn("omcmsync-queue", config.context.clone(), move || {
            sync::run(thread_shared.clone(), fsync_every)
        })?;
        let queue = Queue {
            shared,
            fsync_every,
            thread: Some(thread),
            epoch,
            _lock: lock,
        };
        Ok((queue, recovery))
    }

    /// Makes `changes` durable: returns once they are written to the log (and, with a zero
    /// `fsync_every`, on disk), or failed.
    pub fn submit(&self, changes: Vec<Change>) -> Result<(), QueueError> {
        self.submit_then(changes, self.fsync_every.is_zero())
    }

    /// As [`Queue::submit`], returning only once the changes are on disk, whatever
    /// `fsync_every` says: what an operator's requeue waits for before it takes the requests
    /// out of the dead-letter file.
    pub fn submit_synced(&self, changes: Vec<Change>) -> Result<(), QueueError> {
        self.submit_then(changes, true)
    }

    fn submit_then(&self, changes: Vec<Change>, sync: bool) -> Result<(), QueueError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut state = self
            .shared
            .state
            .try_lock_for(SUBMIT_TIMEOUT)
            .ok_or(QueueError::Unavailable)?;
        let first = state.map.next_seq;
        let records: Vec<Record> = (first..)
            .zip(changes)
            .map(|(seq, change)| Record::Add { seq, change })
            .collect();
        // A failed write leaves the map as it was: rsyslog retries the whole batch.
        let problems = &self.shared.problems;
        state.log.append(&records).map_err(|e| {
            problems.report(
                "state.dir",
                &format!(
                    "writing queue.log failed: {e}; rsyslog keeps the batches and retries them"
                ),
            );
            QueueError::io(&e)
        })?;
        problems.clear("state.dir");
        let earliest_due = state.apply_all(records);
        self.shared.after_write(&state, earliest_due);
        drop(state);
        let write = self.shared.durability.written();
        if sync {
            self.shared.durability.wait(write, SUBMIT_TIMEOUT)?;
        }
        Ok(())
    }

    /// Each element's keys: pending, in flight, and the oldest one's first change (wall clock).
    pub fn summary(&self) -> BTreeMap<String, ElementKeys> {
        summarise(&self.shared.state.lock().map.pending)
    }

    /// Takes due keys (marking them in flight), up to `max_per_element` per element that may
    /// be sent now (`ready_at`: from when, 0 for now).
    pub fn take_due(
        &self,
        now_ms: u64,
        max_per_element: usize,
        ready_at: impl Fn(&str) -> u64,
    ) -> Vec<DueBatch> {
        self.lock()
            .map
            .pending
            .take_due(now_ms, max_per_element, ready_at)
    }

    /// These keys are done, each as of the sequence number its request carried: delivered,
    /// dead-lettered, or expired on a standby. The `done` records need no fsync of their own:
    /// losing one only sends a key again.
    pub fn done(&self, keys: Vec<(Key, u64)>) {
        if keys.is_empty() {
            return;
        }
        let records: Vec<Record> = keys
            .into_iter()
            .map(|(key, seq)| Record::Done { seq, key })
            .collect();
        let mut state = self.lock();
        if let Err(e) = state.log.append(&records) {
            // The map still learns of the delivery: the log only errs towards sending again.
            self.shared.problems.report(
                "state.dir",
                &format!("recording deliveries in queue.log failed: {e}; after a restart those keys are sent again"),
            );
        }
        state.apply_all(records);
        self.shared.after_write(&state, u64::MAX);
    }

    /// This node is standby: no key is due until [`Queue::release`].
    pub fn hold(&self) {
        self.lock().map.pending.hold();
    }

    pub fn held(&self) -> bool {
        self.lock().map.pending.held()
    }

    /// This node is active: every held key is due now; returns how many were released.
    pub fn release(&self) -> usize {
        let mut state = self.lock();
        let released = state.map.pending.release(crate::clock::sched_now_ms());
        self.shared.changed();
        released
    }

    /// Drops the keys whose last change was received before `cutoff_ms` (wall clock), as
    /// delivered: what a standby holds beyond its retention. Returns how many.
    pub fn expire(&self, cutoff_ms: u64) -> usize {
        let old = self.lock().map.pending.older_than(cutoff_ms);
        let n = old.len();
        self.done(old);
        n
    }

    /// `element`'s keys that wait for a backoff are due at `at_ms` at the latest.
    pub fn hasten(&self, element: &str, at_ms: u64) {
        let mut state = self.lock();
        state.map.pending.hasten(element, at_ms);
        self.shared.changed();
    }

    /// These keys' request failed; they wait until `retry_at_ms`.
    pub fn retry<'k>(&self, keys: impl IntoIterator<Item = &'k Key>, retry_at_ms: u64) {
        let mut state = self.lock();
        keys.into_iter()
            .for_each(|k| state.map.pending.retry(k, retry_at_ms));
    }

    /// Every key in flight is pending again: delivery starts (or starts over after a panic)
    /// with nothing in flight.
    pub fn release_in_flight(&self) {
        self.lock().map.pending.release_in_flight();
    }

    /// The changes counted so far, for [`Queue::wait_for_changes`]: read before looking at
    /// the queue.
    pub fn changes(&self) -> u64 {
        self.shared.changes.load(Ordering::Relaxed)
    }

    /// Waits until a change becomes due earlier than `timeout` from now, or `timeout` passes;
    /// returns at once when a change came since [`Queue::changes`] said `seen`.
    pub fn wait_for_changes(&self, seen: u64, timeout: Duration) {
        let mut state = self.lock();
        if self.shared.changes.load(Ordering::Relaxed) == seen {
            let wake_at = crate::clock::sched_now_ms() + timeout.as_millis() as u64;
            self.shared.wake_at_ms.store(wake_at, Ordering::Relaxed);
            self.shared.added.wait_for(&mut state, timeout);
        }
        self.shared.wake_at_ms.store(u64::MAX, Ordering::Relaxed);
    }

    /// An element that was busy may send again, or the service stops: the next
    /// [`Queue::take_due`] looks at every key again, and a [`Queue::wait_for_changes`] returns
    /// now.
    pub fn wake(&self) {
        let mut state = self.lock();
        state.map.pending.recheck();
        self.shared.changed();
    }

    pub fn next_due_ms(&self) -> Option<u64> {
        self.lock().map.pending.next_due_ms()
    }

    /// Keys pending (including those in flight).
    pub fn len(&self) -> usize {
        self.lock().map.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The state directory's epoch, for Idempotency-Keys.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Size of the log file in bytes.
    pub fn log_bytes(&self) -> u64 {
        self.shared.log_bytes.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock()
    }
}

impl Drop for Queue {
    /// Stops the queue's thread after a last fsync, waiting for it at most 5 s: every record
    /// is in the page cache already (it survives the process), and a disk that hangs must not
    /// hold up rsyslog's shutdown.
    fn drop(&mut self) {
        self.shared.durability.stop();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        supervise::join_until(self.thread.take(), deadline);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Verb;
    use crate::resync::Scope;
    use std::time::Instant;

    fn change(el: &str, id: &str, at: u64) -> Change {
        Change {
            key: Key {
                element: el.into(),
                scope: Scope::Object {
                    ty: "station".into(),
                    id: id.into(),
                },
            },
            verb: Verb::Change,
            login: None,
            reason: None,
            at_ms: at,
            origin: Origin::Heard,
        }
    }

    fn config(dir: &std::path::Path) -> QueueConfig {
        QueueConfig {
            dir: dir.to_owned(),
            window_ms: 0,
            burst_threshold: 1000,
            fsync_every: Duration::from_millis(50),
            context: Default::default(),
            fallback_elements: vec!["cm-a".into(), "cm-b".into()],
            start_held: false,
        }
    }

    /// A change between the delivery thread's look at the queue and its wait is not lost:
    /// the wait returns at once (a new key, a lane's end, a release, a stop).
    #[test]
    fn a_change_before_the_wait_ends_it_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (q, _) = Queue::open(&config(dir.path())).unwrap();
        let long = Duration::from_secs(30);
        let changes: [&dyn Fn(&Queue); 4] = [
            &|q| q.wake(),
            &|q| q.submit(vec![change("cm-a", "1", 5)]).unwrap(),
            &|q| {
                q.release();
            },
            &|q| q.hasten("cm-a", 0),
        ];
        for change_it in changes {
            let seen = q.changes();
            change_it(&q);
            let t = Instant::now();
            q.wait_for_changes(seen, long);
            assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        }
        // Nothing since: the wait lasts.
        let t = Instant::now();
        q.wait_for_changes(q.changes(), Duration::from_millis(300));
        assert!(t.elapsed() >= Duration::from_millis(250));
    }

    /// The element-level keys a damaged log asked for, by element.
    fn damage_resyncs(q: &Queue) -> Vec<String> {
        let mut v: Vec<String> = q
            .lock()
            .map
            .pending
            .iter()
            .filter(|(_, scope, e)| {
                **scope == Scope::Element && e.reason.as_deref() == Some("queue damaged")
            })
            .map(|(el, _, _)| el.to_owned())
            .collect();
        v.sort();
        v
    }

    /// One flipped byte in one record of ten: nine keys back, the damaged log kept aside, the
    /// element resynced whole, a new epoch; an emptied log: every configured element
    /// resynced; a log deleted while its directory says there was one: the same.
    #[test]
    fn damage_costs_a_resync_never_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let (q, r) = Queue::open(&config(dir.path())).unwrap();
        assert!(r.resynced.is_empty() && !r.missing);
        q.submit((0..10).map(|i| change("cm-x", &i.to_string(), 5)).collect())
            .unwrap();
        let epoch = q.epoch();
        drop(q);
        let path = dir.path().join("queue.log");
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.windows(8).position(|w| w == b"\"id\":\"4\"").unwrap();
        bytes[at + 6] = b'7';
        std::fs::write(&path, &bytes).unwrap();
        let (q, r) = Queue::open(&config(dir.path())).unwrap();
        assert_eq!(r.bad_lines, 1);
        assert_eq!(r.resynced, ["cm-x"]);
        assert!(r.kept.as_ref().unwrap().exists());
        assert_eq!(q.len(), 9 + 1, "nine objects and the element");
        assert_eq!(damage_resyncs(&q), ["cm-x"]);
        assert_ne!(
            q.epoch(),
            epoch,
            "the numbering is not vouched for: a new epoch"
        );
        drop(q);
        for damage in ["empty", "gone"] {
            match damage {
                "empty" => std::fs::write(&path, b"").unwrap(),
                _ => std::fs::remove_file(&path).unwrap(),
            }
            let (q, r) = Queue::open(&config(dir.path())).unwrap();
            assert!(r.missing, "{damage}");
            assert_eq!(damage_resyncs(&q), ["cm-a", "cm-b"], "{damage}");
        }
    }

    #[test]
    fn a_second_queue_on_one_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (q, _) = Queue::open(&config(dir.path())).unwrap();
        let e = Queue::open(&config(dir.path())).err().unwrap().to_string();
        assert!(e.contains("in use by process"), "{e}");
        drop(q);
        assert!(Queue::open(&config(dir.path())).is_ok());
    }

    #[test]
    fn submitted_changes_survive_a_restart_until_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let (q, _) = Queue::open(&config(dir.path())).unwrap();
        q.submit((0..10).map(|i| change("cm", &i.to_string(), 1)).collect())
            .unwrap();
        q.submit(vec![change("cm", "3", 2)]).unwrap();
        assert_eq!(q.len(), 10);
        let due = q.take_due(10, 4, |_| 0);
        let sent: Vec<(Key, u64)> = due[0]
            .items
            .iter()
            .map(|(k, e)| (k.clone(), e.seq))
            .collect();
        assert_eq!(sent.len(), 4);
        q.done(sent);
        drop(q); // the writer finishes what it was given
        let (q, recovery) = Queue::open(&config(dir.path())).unwrap();
        assert_eq!(recovery.bad_lines, 0);
        assert_eq!(q.len(), 6);
        let ids: Vec<crate::resync::ShortText> = q
            .take_due(10, 100, |_| 0)
            .into_iter()
            .flat_map(|batch| batch.items)
            .map(|(k, _)| match k.scope {
                Scope::Object { id, .. } => id,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(ids, ["4", "5", "6", "7", "8", "9"]);
    }

    #[test]
    fn a_committed_batch_is_in_the_file_before_its_fsync() {
        // What a kill -9 leaves: the file as written, the writer never finishing.
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.fsync_every = Duration::from_secs(3600);
        let (q, _) = Queue::open(&cfg).unwrap();
        q.submit((0..5).map(|i| change("cm", &i.to_string(), 1)).collect())
            .unwrap();
        let copy = tempfile::tempdir().unwrap();
        std::fs::copy(dir.path().join("queue.log"), copy.path().join("queue.log")).unwrap();
        let (crashed, recovery) = Queue::open(&config(copy.path())).unwrap();
        assert_eq!((crashed.len(), recovery.bad_lines), (5, 0));
        drop(q);
    }

    #[test]
    fn sequence_numbers_stay_monotonic_across_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let (q, _) = Queue::open(&config(dir.path())).unwrap();
        q.submit(vec![change("cm", "1", 1)]).unwrap();
        let due = q.take_due(10, 10, |_| 0);
        let seq = due[0].items[0].1.seq;
        q.done(vec![(due[0].items[0].0.clone(), seq)]);
        drop(q);
        let (q, _) = Queue::open(&config(dir.path())).unwrap();
        assert!(q.is_empty());
        q.submit(vec![change("cm", "1", 5)]).unwrap();
        let due = q.take_due(10, 10, |_| 0);
        assert!(
            due[0].items[0].1.seq > seq,
            "a new change must not reuse an old sequence number"
        );
    }

    #[test]
    fn concurrent_submitters_all_become_durable() {
        // 50 ms: written, fsynced later; zero: each submit waits for an fsync (group commit).
        for fsync_ms in [50, 0] {
            let dir = tempfile::tempdir().unwrap();
            let mut cfg = config(dir.path());
            cfg.fsync_every = Duration::from_millis(fsync_ms);
            let (q, _) = Queue::open(&cfg).unwrap();
            let q = Arc::new(q);
            let threads: Vec<_> = (0..4)
                .map(|t| {
                    let q = q.clone();
                    std::thread::spawn(move || {
                        for i in 0..200 {
                            q.submit(vec![change("cm", &format!("{t}-{i}"), 1)])
                                .unwrap();
                        }
                    })
                })
                .collect();
            threads.into_iter().for_each(|t| t.join().unwrap());
            assert_eq!(q.len(), 800);
            drop(q);
            let (q, _) = Queue::open(&cfg).unwrap();
            assert_eq!(q.len(), 800);
        }
    }

    #[test]
    fn the_queue_thread_compacts_a_log_that_is_mostly_history() {
        let dir = tempfile::tempdir().unwrap();
        let (q, _) = Queue::open(&config(dir.path())).unwrap();
        for round in 0..50 {
            q.submit(
                (0..100)
                    .map(|i| change("cm", &(i % 10).to_string(), round))
                    .collect(),
            )
            .unwrap();
        }
        // 5,000 records (~90 bytes each) for 10 keys: past 4,096 records and four times the
        // live state, so the thread compacts once, at the latest after the last submit; what
        // is appended after a compaction stays (fewer than 1,000 records).
        let deadline = Instant::now() + Duration::from_secs(10);
        while q.log_bytes() > 200_000 {
            assert!(
                Instant::now() < deadline,
                "never compacted: {} bytes",
                q.log_bytes()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(q.len(), 10);
        drop(q);
        let (q, recovery) = Queue::open(&config(dir.path())).unwrap();
        assert_eq!((q.len(), recovery.bad_lines), (10, 0));
    }
}
