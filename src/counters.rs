//! What the module has done, as plain atomic counters: read without locks by the stats export
//! and by the tests, updated with relaxed atomic adds on the hot path.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Counters {
    /// Lines handed to the module by rsyslog.
    pub lines_received: AtomicU64,
    /// Lines not in the omcmsync template's shape (wrong template on the action).
    pub lines_malformed: AtomicU64,
    /// Batches (rsyslog transactions) committed.
    pub batches_committed: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
