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
    /// Events dropped, by why (see [`Dropped`]).
    pub dropped: [AtomicU64; DROPS],
    /// Changes made durable in the queue (after expanding duplicate ranges).
    pub changes_queued: AtomicU64,
    /// Keys waiting for delivery, and the size of the queue's log (gauges).
    pub keys_pending: AtomicU64,
    pub queue_bytes: AtomicU64,
    /// Records of the queue log found damaged (or 1 for a log missing where one was
    /// expected), at the last start: each costs its elements a full resync.
    pub queue_damaged: AtomicU64,
    /// Changes heard while standby and held; keys released when this node became active;
    /// held keys dropped after `ha.standby.retain.ms`.
    pub standby_held: AtomicU64,
    pub standby_released: AtomicU64,
    pub standby_expired: AtomicU64,
    /// The HA role as last read (gauge: 0 active, 1 standby, 2 unknown), and the reads that
    /// could not tell.
    pub ha_role: AtomicU64,
    pub ha_unknown: AtomicU64,
    /// Requests an operator put back into the queue (`omcmsync deadletter requeue`), and
    /// resyncs an operator asked for (`omcmsync resync`).
    pub operator_requeued: AtomicU64,
    pub operator_resyncs: AtomicU64,
    /// Reconciliation sessions that were judged; changes they found missed (requested,
    /// marked reconcile); sessions that gave no judgement (CM unreachable, a login or host
    /// key refused, a history that could not be read).
    pub reconcile_runs: AtomicU64,
    pub reconcile_missed: AtomicU64,
    pub reconcile_failed: AtomicU64,
    /// Panics caught in background threads (each thread restarted, or given up).
    pub threads_restarted: AtomicU64,
    /// Parameters whose file, program or answer the host lacks now: the action runs degraded
    /// (gauge; `omcmsync status` names them).
    pub degraded: AtomicU64,
    pub delivery: DeliveryCounters,
}

/// What delivery did.
#[derive(Debug, Default)]
pub struct DeliveryCounters {
    /// POSTs answered 2xx.
    pub posts_ok: AtomicU64,
    /// Requests (keys) delivered.
    pub requests_delivered: AtomicU64,
    /// POSTs that failed and will be retried.
    pub posts_retried: AtomicU64,
    /// Requests (keys) dead-lettered.
    pub requests_deadlettered: AtomicU64,
    /// Dead-letter records dropped to keep the store within `deadletter.max.mb`.
    pub deadletters_shed: AtomicU64,
    /// Refused requests kept queued because their record could not be written.
    pub deadletters_unwritten: AtomicU64,
    /// Answers 401 or 403 (retried: the credentials need fixing, not the request).
    pub posts_unauthorized: AtomicU64,
    /// Elements whose last answer was 401 or 403 (gauge).
    pub elements_unauthorized: AtomicU64,
    /// POSTs refused for good that were split to find the refused requests.
    pub posts_split: AtomicU64,
    /// Entries of System Manager's element list skipped as invalid at its last load (gauge).
    pub elements_rejected: AtomicU64,
    /// Addresses claimed by two elements (the first keeps it), at the last load (gauge).
    pub elements_conflicts: AtomicU64,
    /// Element-level resyncs held back by `resync.element.cooldown.ms` (each sent once the
    /// cooldown ends, coalesced with whatever else asked for one meanwhile).
    pub element_resyncs_deferred: AtomicU64,
    /// Sum and maximum of first change to delivery, milliseconds.
    pub latency_ms_sum: AtomicU64,
    pub latency_ms_max: AtomicU64,
}

const DROPS: usize = 4;

/// Why an event was dropped before the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// The sender is no configured CM server.
    UnknownSender,
    /// The element has notifications off.
    NotifyOff,
    /// This node is the standby System Manager (`ha.standby="drop"`).
    Standby,
    /// The HA role could not be read, and `ha.onunknown="drop"`.
    Unknown,
}

impl Dropped {
    pub const ALL: [Dropped; DROPS] = [
        Dropped::UnknownSender,
        Dropped::NotifyOff,
        Dropped::Standby,
        Dropped::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Dropped::UnknownSender => "unknown_sender",
            Dropped::NotifyOff => "notify_off",
            Dropped::Standby => "standby",
            Dropped::Unknown => "unknown",
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
    /// Of `changes_queued`: heard while standby, held.
    pub standby_held: u64,
}

impl Tally {
    pub fn event(&mut self, verb: Verb) {
        self.events[verb as usize] += 1;
    }

    pub fn ignored(&mut self, reason: Reason) {
        self.ignored[reason as usize] += 1;
    }

    pub fn dropped(&mut self, why: Dropped) {
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
        add(&self.standby_held, t.standby_held);
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

    pub fn set_queue_gauges(&self, keys: u64, bytes: u64) {
        self.keys_pending.store(keys, Ordering::Relaxed);
        self.queue_bytes.store(bytes, Ordering::Relaxed);
    }

    /// The counters of what arrived: lines, batches, events by verb.
    fn line_counters(&self) -> Vec<(String, &AtomicU64)> {
        let mut v: Vec<(String, &AtomicU64)> = vec![
            ("lines.received".into(), &self.lines_received),
            ("lines.malformed".into(), &self.lines_malformed),
            ("batches.committed".into(), &self.batches_committed),
        ];
        v.extend(Verb::ALL.iter().map(|verb| {
            (
                format!("events.{}", verb.as_str()),
                &self.events[*verb as usize],
            )
        }));
        v
    }

    /// Every counter with its stats name, for rsyslog's impstats (docs/counters.md).
    pub fn named(&self) -> Vec<(String, &AtomicU64)> {
        let mut v = self.line_counters();
        v.extend(Reason::ALL.iter().map(|r| {
            (
                format!("ignored.{}", r.as_str()),
                &self.ignored[*r as usize],
            )
        }));
        v.extend(Dropped::ALL.iter().map(|d| {
            (
                format!("dropped.{}", d.as_str()),
                &self.dropped[*d as usize],
            )
        }));
        let d = &self.delivery;
        v.extend([
            ("changes.queued".into(), &self.changes_queued),
            ("captured".into(), &self.captured),
            ("keys.pending".into(), &self.keys_pending),
            ("queue.bytes".into(), &self.queue_bytes),
            ("queue.damaged".into(), &self.queue_damaged),
            ("posts.ok".into(), &d.posts_ok),
            ("posts.retried".into(), &d.posts_retried),
            ("requests.delivered".into(), &d.requests_delivered),
            ("requests.deadlettered".into(), &d.requests_deadlettered),
            ("deadletters.shed".into(), &d.deadletters_shed),
            ("deadletters.unwritten".into(), &d.deadletters_unwritten),
            ("posts.unauthorized".into(), &d.posts_unauthorized),
            ("elements.unauthorized".into(), &d.elements_unauthorized),
            ("posts.split".into(), &d.posts_split),
            ("threads.restarted".into(), &self.threads_restarted),
            ("degraded".into(), &self.degraded),
            (
                "resyncs.element.deferred".into(),
                &d.element_resyncs_deferred,
            ),
            ("standby.held".into(), &self.standby_held),
            ("standby.released".into(), &self.standby_released),
            ("standby.expired".into(), &self.standby_expired),
            ("ha.role".into(), &self.ha_role),
            ("ha.unknown".into(), &self.ha_unknown),
            ("operator.requeued".into(), &self.operator_requeued),
            ("operator.resyncs".into(), &self.operator_resyncs),
            ("elements.rejected".into(), &d.elements_rejected),
            ("elements.conflicts".into(), &d.elements_conflicts),
            ("latency.ms.sum".into(), &d.latency_ms_sum),
            ("latency.ms.max".into(), &d.latency_ms_max),
        ]);
        v.extend([
            ("reconcile.runs".into(), &self.reconcile_runs),
            ("reconcile.missed".into(), &self.reconcile_missed),
            ("reconcile.failed".into(), &self.reconcile_failed),
        ]);
        v
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// One more of what `counter` counts.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn event(&self, verb: Verb) -> u64 {
        Self::get(&self.events[verb as usize])
    }

    pub fn ignored(&self, reason: Reason) -> u64 {
        Self::get(&self.ignored[reason as usize])
    }

    pub fn dropped(&self, why: Dropped) -> u64 {
        Self::get(&self.dropped[why as usize])
    }
}
