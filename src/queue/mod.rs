//! The durable coalescing queue: every accepted change is on disk before rsyslog is told the
//! batch is committed, and stays there, coalesced per key, until System Manager has it.
//!
//! rsyslog's worker threads hand their batch's changes to one writer thread over a channel and
//! wait for its answer, never for SMGR. The writer takes whatever has queued up meanwhile, writes
//! it in one append, applies it to the [`Pending`] map in the same order, and answers. Once
//! written, a change survives any crash of rsyslogd (the kernel holds it); the fsync that makes
//! it survive a crash of the host follows within `fsync_every`, or, with a zero interval, comes
//! before the answer (group commit). The delivery thread takes due keys from the map and reports back through
//! the same writer, so the log holds every mutation in the order it happened.

mod log;
mod pending;

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

pub use self::log::Recovery;
use self::log::{Log, Record};
pub use self::pending::{DueBatch, Entry, Pending};
use crate::logging;
use crate::resync::{Change, Key};

/// How long a worker waits for its batch to become durable before giving up (rsyslog then
/// retries the batch: at-least-once).
pub const SUBMIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Most commands the writer folds into one write.
const GROUP_MAX: usize = 256;

#[derive(Clone, Debug)]
pub struct QueueConfig {
    pub dir: PathBuf,
    pub window_ms: u64,
    pub burst_threshold: usize,
    /// Longest time written changes wait for an fsync; zero: fsync before answering.
    pub fsync_every: Duration,
}

/// Why a batch could not be made durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueError {
    /// Writing or syncing the log failed (disk full, I/O error).
    Io(String),
    /// No answer within [`SUBMIT_TIMEOUT`], or the queue is stopping.
    Unavailable,
}

enum Command {
    Append(Vec<Change>, Sender<Result<(), QueueError>>),
    Done(Vec<(Key, u64)>),
    Stop,
}

struct Shared {
    pending: Mutex<Pending>,
    /// Signalled when a change becomes due before the delivery thread meant to wake up.
    added: Condvar,
    /// When the delivery thread will look again by itself (ms since the epoch).
    wake_at_ms: AtomicU64,
    /// Bytes in the log, for stats.
    log_bytes: AtomicU64,
}

pub struct Queue {
    shared: Arc<Shared>,
    tx: Sender<Command>,
    writer: Option<JoinHandle<()>>,
}

impl Queue {
    /// Opens the log in `config.dir`, rebuilds the pending keys from it, and starts the writer.
    pub fn open(config: &QueueConfig) -> io::Result<(Queue, Recovery)> {
        let (mut log, records, recovery) = Log::open(&config.dir)?;
        let mut pending = Pending::new(config.window_ms, config.burst_threshold);
        let mut next_seq = 1;
        for record in records {
            match record {
                Record::Seq(n) => next_seq = next_seq.max(n),
                Record::Add { seq, change } => {
                    pending.merge(change, seq);
                    next_seq = next_seq.max(seq + 1);
                }
                Record::Done { seq, key } => {
                    pending.done(&key, seq);
                }
                Record::Entry { key, entry } => {
                    next_seq = next_seq.max(entry.seq + 1);
                    pending.restore(key, entry);
                }
            }
        }
        log.compact(next_seq, pending.iter())?;
        let shared = Arc::new(Shared {
            pending: Mutex::new(pending),
            added: Condvar::new(),
            wake_at_ms: AtomicU64::new(0),
            log_bytes: AtomicU64::new(log.bytes()),
        });
        let (tx, rx) = crossbeam_channel::bounded(1024);
        let writer_shared = shared.clone();
        let fsync_every = config.fsync_every;
        let writer = std::thread::Builder::new()
            .name("omcmsync-queue".into())
            .spawn(move || {
                Writer {
                    log,
                    rx,
                    shared: writer_shared,
                    next_seq,
                    fsync_every,
                    unsynced_since: None,
                }
                .run()
            })?;
        Ok((
            Queue {
                shared,
                tx,
                writer: Some(writer),
            },
            recovery,
        ))
    }

    /// Makes `changes` durable; returns once they are on disk (or failed).
    pub fn submit(&self, changes: Vec<Change>) -> Result<(), QueueError> {
        if changes.is_empty() {
            return Ok(());
        }
        let (ack_tx, ack_rx) = crossbeam_channel::bounded(1);
        self.tx
            .send_timeout(Command::Append(changes, ack_tx), SUBMIT_TIMEOUT)
            .map_err(|_| QueueError::Unavailable)?;
        ack_rx
            .recv_timeout(SUBMIT_TIMEOUT)
            .map_err(|_| QueueError::Unavailable)?
    }

    /// Takes due keys (marking them in flight), up to `max_per_element` per element that
    /// `ready` allows.
    pub fn take_due(
        &self,
        now_ms: u64,
        max_per_element: usize,
        ready: impl Fn(&str) -> bool,
    ) -> Vec<DueBatch> {
        self.lock().take_due(now_ms, max_per_element, ready)
    }

    /// System Manager has these keys, each as of the sequence number its request carried.
    pub fn delivered(&self, keys: Vec<(Key, u64)>) {
        if !keys.is_empty() && self.tx.send(Command::Done(keys)).is_err() {
            logging::warning("queue stopped before a delivery was recorded; it will be sent again");
        }
    }

    /// These keys' request failed; they wait until `retry_at_ms`.
    pub fn retry(&self, keys: &[Key], retry_at_ms: u64) {
        let mut p = self.lock();
        keys.iter().for_each(|k| p.retry(k, retry_at_ms));
    }

    /// Waits until a change becomes due earlier than `timeout` from now, or `timeout` passes.
    pub fn wait_for_changes(&self, timeout: Duration) {
        let guard = self.lock();
        let wake_at = crate::resync::now_ms() + timeout.as_millis() as u64;
        self.shared.wake_at_ms.store(wake_at, Ordering::Relaxed);
        let _ = self.shared.added.wait_timeout(guard, timeout);
    }

    pub fn next_due_ms(&self) -> Option<u64> {
        self.lock().next_due_ms()
    }

    /// Keys pending (including those in flight).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Size of the log file in bytes.
    pub fn log_bytes(&self) -> u64 {
        self.shared.log_bytes.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        let _ = self.tx.send(Command::Stop);
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

struct Writer {
    log: Log,
    rx: Receiver<Command>,
    shared: Arc<Shared>,
    next_seq: u64,
    fsync_every: Duration,
    /// When the oldest change not yet fsynced was written.
    unsynced_since: Option<Instant>,
}

impl Writer {
    fn run(mut self) {
        loop {
            let first = match self.unsynced_since {
                None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(t) => self
                    .rx
                    .recv_timeout(self.fsync_every.saturating_sub(t.elapsed())),
            };
            let first = match first {
                Ok(command) => command,
                Err(RecvTimeoutError::Timeout) => {
                    self.sync();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut group = vec![first];
            group.extend(self.rx.try_iter().take(GROUP_MAX));
            if self.write_group(group) {
                break;
            }
            if self
                .unsynced_since
                .is_some_and(|t| t.elapsed() >= self.fsync_every)
            {
                self.sync();
            }
            self.maybe_compact();
        }
        if self.unsynced_since.is_some() {
            self.sync();
        }
    }

    /// Forces what was written to disk. A failure is logged and tried again: what was written
    /// stays in the kernel's cache, so only a crash of the host could still lose it.
    fn sync(&mut self) {
        match self.log.sync() {
            Ok(()) => self.unsynced_since = None,
            Err(e) => {
                logging::error(&format!(
                    "queue: fsync of {} failed: {e}; changes written since {} ms may be lost if the host crashes",
                    self.log_path(),
                    self.unsynced_since.map_or(0, |t| t.elapsed().as_millis())
                ));
                self.unsynced_since = Some(Instant::now());
            }
        }
    }

    /// Writes one group; returns true when told to stop.
    fn write_group(&mut self, group: Vec<Command>) -> bool {
        let mut records = Vec::new();
        let mut acks = Vec::new();
        let mut stop = false;
        let mut sync = false;
        let seq_before = self.next_seq;
        for command in group {
            match command {
                Command::Append(changes, ack) => {
                    sync = true;
                    for change in changes {
                        records.push(Record::Add {
                            seq: self.next_seq,
                            change,
                        });
                        self.next_seq += 1;
                    }
                    acks.push(ack);
                }
                Command::Done(keys) => {
                    records.extend(keys.into_iter().map(|(key, seq)| Record::Done { seq, key }));
                }
                Command::Stop => stop = true,
            }
        }
        // Done records need no fsync of their own: losing one only sends a key again.
        let sync_now = sync && self.fsync_every.is_zero();
        let result = self
            .log
            .append(&records, sync_now)
            .map_err(|e| QueueError::Io(e.to_string()));
        if result.is_ok() && sync && !sync_now {
            self.unsynced_since.get_or_insert_with(Instant::now);
        }
        match &result {
            Ok(()) => {
                let mut pending = self
                    .shared
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let mut earliest_due = u64::MAX;
                for record in records {
                    match record {
                        Record::Add { seq, change } => {
                            earliest_due = earliest_due.min(pending.merge(change, seq));
                        }
                        Record::Done { seq, key } => {
                            pending.done(&key, seq);
                        }
                        Record::Seq(_) | Record::Entry { .. } => {}
                    }
                }
                drop(pending);
                // Wake the delivery thread only when it would otherwise look too late: under a
                // flood of changes it is not woken per batch.
                if earliest_due < self.shared.wake_at_ms.load(Ordering::Relaxed) {
                    self.shared.added.notify_all();
                }
            }
            Err(e) => {
                self.next_seq = seq_before;
                logging::error(&format!(
                    "queue: writing {} failed: {e:?}; rsyslog will retry",
                    self.log_path()
                ));
            }
        }
        for ack in acks {
            let _ = ack.send(result.clone());
        }
        self.shared
            .log_bytes
            .store(self.log.bytes(), Ordering::Relaxed);
        stop
    }

    /// Rewrites the log from the live state once it is mostly history.
    fn maybe_compact(&mut self) {
        let live = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len() as u64;
        if self.log.appended < 4096 || self.log.appended < 4 * live {
            return;
        }
        // The delivery thread waits for the map meanwhile, including the new file's fsync (one
        // per compaction, when the log is four times the live state); rsyslog's workers wait for
        // this thread anyway.
        let pending = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let compacted = self.log.compact(self.next_seq, pending.iter());
        drop(pending);
        match compacted {
            // The compacted file was fsynced before it replaced the log.
            Ok(()) => self.unsynced_since = None,
            Err(e) => logging::warning(&format!(
                "queue: compacting {} failed: {e}; will try again",
                self.log_path()
            )),
        }
        self.shared
            .log_bytes
            .store(self.log.bytes(), Ordering::Relaxed);
    }

    fn log_path(&self) -> String {
        "state.dir/queue.log".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Verb;
    use crate::resync::Scope;

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
        }
    }

    fn config(dir: &std::path::Path) -> QueueConfig {
        QueueConfig {
            dir: dir.to_owned(),
            window_ms: 0,
            burst_threshold: 1000,
            fsync_every: Duration::from_millis(50),
        }
    }

    #[test]
    fn submitted_changes_survive_a_restart_until_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let (q, _) = Queue::open(&config(dir.path())).unwrap();
        q.submit((0..10).map(|i| change("cm", &i.to_string(), 1)).collect())
            .unwrap();
        q.submit(vec![change("cm", "3", 2)]).unwrap();
        assert_eq!(q.len(), 10);
        let due = q.take_due(10, 4, |_| true);
        let sent: Vec<(Key, u64)> = due[0].1.iter().map(|(k, e)| (k.clone(), e.seq)).collect();
        assert_eq!(sent.len(), 4);
        q.delivered(sent);
        drop(q); // the writer finishes what it was given
        let (q, recovery) = Queue::open(&config(dir.path())).unwrap();
        assert_eq!(recovery.bad_lines, 0);
        assert_eq!(q.len(), 6);
        let ids: Vec<crate::resync::ShortText> = q
            .take_due(10, 100, |_| true)
            .into_iter()
            .flat_map(|(_, items)| items)
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
        let due = q.take_due(10, 10, |_| true);
        let seq = due[0].1[0].1.seq;
        q.delivered(vec![(due[0].1[0].0.clone(), seq)]);
        drop(q);
        let (q, _) = Queue::open(&config(dir.path())).unwrap();
        assert!(q.is_empty());
        q.submit(vec![change("cm", "1", 5)]).unwrap();
        let due = q.take_due(10, 10, |_| true);
        assert!(
            due[0].1[0].1.seq > seq,
            "a new change must not reuse an old sequence number"
        );
    }

    #[test]
    fn concurrent_submitters_all_become_durable() {
        let dir = tempfile::tempdir().unwrap();
        let (q, _) = Queue::open(&config(dir.path())).unwrap();
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
        let (q, _) = Queue::open(&config(dir.path())).unwrap();
        assert_eq!(q.len(), 800);
    }
}
