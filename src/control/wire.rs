//! The control socket's lines: one [`Request`] in, one answer out (`{"ok":true,...}` with the
//! request's fields, or [`Failure`]). The module writes and the operator's tools read these
//! same types.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::deliver::{Filter, MAX_LISTED};
use crate::resync::Scope;

/// What an operator asks the module.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    Status,
    /// The newest `limit` records the filter selects (at most [`MAX_LISTED`]).
    #[serde(rename = "deadletters")]
    DeadLetters {
        #[serde(flatten)]
        filter: Filter,
        #[serde(default = "max_listed")]
        limit: usize,
    },
    Requeue {
        #[serde(flatten)]
        filter: Filter,
    },
    Resync {
        element: String,
        #[serde(flatten)]
        scope: Scope,
    },
    /// Reconcile one element (or every reconciled one) now, from `since_ms` (or from where the
    /// last session ended).
    Reconcile {
        #[serde(default)]
        element: Option<String>,
        #[serde(default)]
        since_ms: Option<u64>,
    },
}

fn max_listed() -> usize {
    MAX_LISTED
}

/// A successful answer: `ok` and the answer's own fields.
#[derive(Debug, Serialize, Deserialize)]
pub struct Answer<T> {
    pub ok: bool,
    #[serde(flatten)]
    pub body: T,
}

impl<T: Serialize> Answer<T> {
    /// The answer line's JSON.
    pub fn json(body: T) -> String {
        // Cannot fail: string keys and plain values only.
        serde_json::to_string(&Answer { ok: true, body }).unwrap_or_default()
    }
}

/// The answer to a request that failed.
#[derive(Debug, Serialize, Deserialize)]
pub struct Failure {
    pub ok: bool,
    pub error: Option<String>,
}

impl Failure {
    pub fn json(why: &str) -> String {
        let failure = Failure {
            ok: false,
            error: Some(why.to_owned()),
        };
        serde_json::to_string(&failure).unwrap_or_default()
    }
}

/// `status`: the module, then each element. Read leniently (missing fields default): a CLI
/// and a module of different releases still understand each other.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Status {
    pub version: String,
    pub pid: u32,
    pub state_dir: String,
    /// `active`, `standby`, or `not read yet`.
    pub role: String,
    pub queue: QueueStatus,
    pub deadletter_file: String,
    /// Why the dead-letter file could not be counted.
    pub deadletter_error: Option<String>,
    pub elements_configured: usize,
    /// Configured elements with nothing to show, beyond those listed.
    pub elements_not_shown: usize,
    pub elements: Vec<ElementStatus>,
    /// Every counter by name, in the order impstats shows them.
    pub counters: IndexMap<String, u64>,
    pub problems: Vec<ProblemStatus>,
    /// The reconciled elements, by name.
    pub reconcile: Vec<ReconcileStatus>,
}

/// One reconciled element: when it was last heard, and its last session.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ReconcileStatus {
    pub element: String,
    /// RFC 3339; none: nothing heard since it is reconciled.
    pub last_heard: Option<String>,
    pub last_run: Option<crate::reconcile::RunSummary>,
}

/// The answer to a reconcile request: the elements whose session was asked for.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ReconcileAsked {
    pub elements: Vec<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct QueueStatus {
    pub keys: usize,
    pub log_bytes: u64,
    /// Held: this node is standby.
    pub held: bool,
}

/// One element's row.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ElementStatus {
    pub name: String,
    /// In the element list in force (false: only keys or dead letters name it).
    pub configured: bool,
    pub pending: usize,
    pub in_flight: usize,
    pub held: usize,
    pub oldest_age_ms: Option<u64>,
    pub failures: u32,
    pub next_attempt_in_ms: u64,
    pub unauthorized: Option<u16>,
    pub last_answer: Option<String>,
    /// RFC 3339.
    pub last_answer_at: Option<String>,
    pub deadletters: u64,
}

/// A degraded parameter ([`crate::problems`]).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ProblemStatus {
    pub param: String,
    pub what: String,
    /// RFC 3339.
    pub since: String,
    pub seen: u64,
}

/// `deadletters`: the records as the store holds them (passed on as text, never parsed into
/// values: a thousand of them cost their size), and how many the filter selects in all.
#[derive(Debug, Serialize, Deserialize)]
pub struct DeadLetterList {
    pub matched: u64,
    pub records: Vec<Box<RawValue>>,
}

/// `requeue`: records taken out of the store, and the key changes they made.
#[derive(Debug, Serialize, Deserialize)]
pub struct Requeued {
    pub requeued: u64,
    pub changes: usize,
}

/// `resync`: what was queued.
#[derive(Debug, Serialize, Deserialize)]
pub struct Queued {
    pub queued: Scope,
}
