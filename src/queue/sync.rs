//! The queue's background thread: fsyncs what the workers wrote, within `fsync_every` of the
//! first unsynced write (at once with a zero interval, while the workers wait: group commit),
//! and compacts the log when it is mostly history.
//!
//! Workers write into the kernel's cache themselves and only tell this thread they did: a
//! hand-off and an answer per batch cost more than the write, because under a flood the thread
//! that answers waits for a CPU while rsyslog's threads hold both (docs/benchmarks.md).

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::{QueueError, Shared};

/// Where the fsyncs stand. Writes are numbered; a write is durable once `synced` reaches it.
#[derive(Default)]
struct Progress {
    written: u64,
    synced: u64,
    /// The last failed fsync: the writes it covered, and why.
    failed: Option<(u64, QueueError)>,
    /// When the oldest write not yet fsynced happened.
    unsynced_since: Option<Instant>,
    compact: bool,
    stop: bool,
}

#[derive(Default)]
pub(super) struct Durability {
    progress: Mutex<Progress>,
    /// The thread has work: a write to sync, a compaction, or stop.
    work: Condvar,
    /// An fsync finished.
    synced: Condvar,
}

impl Durability {
    /// Records a write that reached the kernel; returns its number for [`Durability::wait`].
    pub fn written(&self) -> u64 {
        let mut p = self.progress.lock();
        p.written += 1;
        if p.unsynced_since.is_none() {
            p.unsynced_since = Some(Instant::now());
            self.work.notify_one();
        }
        p.written
    }

    /// Waits until write `n` is on disk, at most `timeout`.
    pub fn wait(&self, n: u64, timeout: Duration) -> Result<(), QueueError> {
        let deadline = Instant::now() + timeout;
        let mut p = self.progress.lock();
        loop {
            if p.synced >= n {
                return Ok(());
            }
            if let Some((upto, why)) = &p.failed {
                if *upto >= n {
                    return Err(why.clone());
                }
            }
            if p.stop || self.synced.wait_until(&mut p, deadline).timed_out() {
                return Err(QueueError::Unavailable);
            }
        }
    }

    /// Asks for a compaction (the log is mostly history).
    pub fn compact(&self) {
        let mut p = self.progress.lock();
        if !p.compact {
            p.compact = true;
            self.work.notify_one();
        }
    }

    pub fn stop(&self) {
        self.progress.lock().stop = true;
        self.work.notify_all();
        self.synced.notify_all();
    }
}

/// The thread's loop: runs until [`Durability::stop`], then syncs what is left.
pub(super) fn run(shared: Arc<Shared>, fsync_every: Duration) {
    let d = &shared.durability;
    loop {
        let mut p = d.progress.lock();
        let sync_at = loop {
            let sync_at = p.unsynced_since.map(|t| t + fsync_every);
            let now = Instant::now();
            if p.stop || p.compact || sync_at.is_some_and(|t| t <= now) {
                break sync_at;
            }
            match sync_at {
                Some(t) => {
                    d.work.wait_until(&mut p, t);
                }
                None => d.work.wait(&mut p),
            }
        };
        let (target, compact, stop) = (p.written, std::mem::take(&mut p.compact), p.stop);
        drop(p);
        if sync_at.is_some() {
            // With a write waiting for its fsync.
            #[cfg(feature = "fault-hooks")]
            crate::faults::panic_once("omcmsync-queue");
            sync(&shared, target);
        }
        if compact {
            compact_log(&shared);
        }
        if stop {
            break;
        }
    }
}

/// Fsyncs the log (without holding the queue's lock) and releases the writes up to `target`.
fn sync(shared: &Shared, target: u64) {
    let file = shared.state.lock().log.file();
    let result = file.sync_data();
    let d = &shared.durability;
    let mut p = d.progress.lock();
    match result {
        Ok(()) => {
            p.synced = p.synced.max(target);
            // Writes after `target` wait for the next round.
            p.unsynced_since = (p.written > target).then(Instant::now);
        }
        Err(e) => {
            shared.problems.report(
                "state.dir",
                &format!("fsync of queue.log failed: {e}; written changes stay in the kernel's cache and may be lost if the host crashes; trying again"),
            );
            p.failed = Some((target, QueueError::io(&e)));
            p.unsynced_since = Some(Instant::now());
        }
    }
    d.synced.notify_all();
}

/// Rewrites the log from the live map. Workers wait for the queue's lock meanwhile, including
/// the new file's fsync: once per compaction, when the log is four times the live state.
fn compact_log(shared: &Shared) {
    let mut state = shared.state.lock();
    let written = shared.durability.progress.lock().written;
    match state.compact() {
        // The compacted file was fsynced before it replaced the log: every write so far is in it.
        Ok(()) => {
            let d = &shared.durability;
            let mut p = d.progress.lock();
            p.synced = p.synced.max(written);
            if p.written == written {
                p.unsynced_since = None;
            }
            d.synced.notify_all();
        }
        Err(e) => shared.problems.report(
            "state.dir",
            &format!("compacting queue.log failed: {e}; will try again"),
        ),
    }
    shared.note_log_bytes(&state);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiting_write_is_released_by_its_fsync_or_fails_with_it() {
        let d = Durability::default();
        let first = d.written();
        let short = Duration::from_millis(20);
        assert_eq!(d.wait(first, short), Err(QueueError::Unavailable));
        d.progress.lock().synced = first;
        assert_eq!(d.wait(first, short), Ok(()));
        let second = d.written();
        let eio = QueueError::io(&std::io::Error::from_raw_os_error(libc::EIO));
        d.progress.lock().failed = Some((second, eio.clone()));
        assert_eq!(d.wait(second, short), Err(eio));
        d.stop();
        assert_eq!(d.wait(d.written(), short), Err(QueueError::Unavailable));
    }
}
