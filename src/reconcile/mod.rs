//! Reconciliation: reading CM's own command history over OSSI and requesting what syslog never
//! delivered. For each element with a directory under `reconcile.dir`, the [`Reconciler`]
//! runs a session (the OSSI client, a child process: [`session`]), reads CM's clock and
//! `list history` ([`history`]), pairs each record with a heard change ([`matching`]), and
//! queues what was missed through the classifier, marked `reconcile` ([`judge`]). What it
//! needs to remember across restarts (what was heard lately, how far it compared) is the
//! [`Memory`], in `state.dir/reconcile.json`. docs/design.md, "Reconciliation".

mod history;
mod judge;
mod matching;
mod memory;
mod plan;
mod requests;
mod run;
mod session;
mod worker;

pub use history::{read_history, CmClock, HistoryRecord};
pub use judge::{OVERLAP_MS, WRAPPED};
pub use matching::{compare, Comparison, Found, Heard, Window};
pub use memory::{ElementMemory, Memory, RunSummary, Saved, RECENT_MAX};
pub use requests::{Asked, Requests, Trigger};
pub use session::{run as run_session, Access, Secret, CLOCK, HISTORY};
pub use worker::{Reconciler, SESSIONS_MAX};

use crate::resync::Change;

/// What reconciliation needs of the pipeline: the changes a history line makes for an element
/// (classified as a received line would be, SMGR's own logins and elements with notifications
/// off ignored), at `at_ms`, marked [`crate::resync::Origin::Reconcile`].
pub trait HistoryReader: Send + Sync {
    fn changes(&self, element: &str, line: &str, at_ms: u64) -> Vec<Change>;
}
