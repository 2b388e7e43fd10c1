//! What the module has done, as plain atomic counters: read without locks by the stats export
//! and by the tests, updated once per batch from a [`Tally`] so that workers do not contend on
//! every line.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::classify::{Reason, Verb};

const VERBS: usize = 5;
const REASONS: usize = Reason::ALL.len();

#[derive(Debug, Default)]
pub struct Counters {
    /// Lines handed to the module by rsyslog.
    pub lines_received: AtomicU64,
    /// Lines not in the omcmsync template's shape (wrong template on the action).
    pub lines_malformed: AtomicU64,
    /// Batches (rsyslog transactions) committed.
    pub batches_committed: AtomicU64,
    /// Events, by verb.
    pub events: [AtomicU64; VERBS],
    /// Ignored lines, by reason.
    pub ignored: [AtomicU64; REASONS],
    /// Lines written to the capture file.
    pub captured: AtomicU64,
    /// Events dropped, by why (see [`Drop`]).
    pub dropped: [AtomicU64; DROPS],
    /// Changes made durable in the queue (after expanding duplicate ranges).
    pub changes_queued: AtomicU64,
}

const DROPS: usize = 3;

/// Why an event was dropped before the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drop {
    /// The sender is no configured CM server.
    UnknownSender,
    /// The element has notifications off.
    NotifyOff,
    /// This node is the standby System Manager.
    Standby,
}

impl Drop {
    pub const ALL: [Drop; DROPS] = [Drop::UnknownSender, Drop::NotifyOff, Drop::Standby];

    pub fn as_str(self) -> &'static str {
        match self {
            Drop::UnknownSender => "unknown_sender",
            Drop::NotifyOff => "notify_off",
            Drop::Standby => "standby",
        }
    }
}

/// One batch's counts, kept locally by the worker and added to [`Counters`] at its end.
#[derive(Debug, Default)]
pub struct Tally {
    pub lines_received: u64,
    pub lines_malformed: u64,
    pub events: [u64; VERBS],
    pub ignored: [u64; REASONS],
    pub captured: u64,
    pub dropped: [u64; DROPS],
    pub changes_queued: u64,
}

impl Tally {
    pub fn event(&mut self, verb: Verb) {
        self.events[verb as usize] += 1;
    }

    pub fn ignored(&mut self, reason: Reason) {
        self.ignored[reason as usize] += 1;
    }

    pub fn dropped(&mut self, why: Drop) {
        self.dropped[why as usize] += 1;
    }
}

impl Counters {
    /// Adds one batch's tally.
    pub fn add_batch(&self, t: &Tally) {
        let add = |c: &AtomicU64, n: u64| {
            if n > 0 {
                c.fetch_add(n, Ordering::Relaxed);
            }
        };
        add(&self.lines_received, t.lines_received);
        add(&self.lines_malformed, t.lines_malformed);
        add(&self.batches_committed, 1);
        add(&self.captured, t.captured);
        add(&self.changes_queued, t.changes_queued);
        self.dropped
            .iter()
            .zip(t.dropped)
            .for_each(|(c, n)| add(c, n));
        self.events
            .iter()
            .zip(t.events)
            .for_each(|(c, n)| add(c, n));
        self.ignored
            .iter()
            .zip(t.ignored)
            .for_each(|(c, n)| add(c, n));
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn event(&self, verb: Verb) -> u64 {
        Self::get(&self.events[verb as usize])
    }

    pub fn ignored(&self, reason: Reason) -> u64 {
        Self::get(&self.ignored[reason as usize])
    }

    pub fn dropped(&self, why: Drop) -> u64 {
        Self::get(&self.dropped[why as usize])
    }
}
