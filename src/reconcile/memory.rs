//! What the module remembers of each reconciled element, kept in `state.dir/reconcile.json`
//! across restarts: the changes heard lately (what history records are paired with), how far
//! CM's history has been compared, the history lines judged near that point (so that no record
//! is judged twice), and the last session's summary for `omcmsync status`.
//!
//! Only elements that are reconciled are remembered: the action notes every batch's changes,
//! and for the others that is one map look-up.

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::matching::Heard;
use super::requests::Requests;
use crate::resync::{Change, Origin};

/// At most this many heard changes are kept per element; beyond it the oldest go (their
/// records would then count as missed: an extra resync, never a lost one).
pub const RECENT_MAX: usize = 50_000;
/// At most this many judged lines are kept per element.
const JUDGED_MAX: usize = 10_000;

/// The file's content: the one type its writer and reader share.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Saved {
    #[serde(default)]
    pub elements: BTreeMap<String, ElementMemory>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElementMemory {
    /// Every history record whose pairing span ends by this time (ms) has been judged.
    #[serde(default)]
    pub covered: u64,
    /// When the element last sent a line, a change or not (ms, our clock; 0: never).
    #[serde(default)]
    pub last_heard: u64,
    /// Changes heard lately, oldest first.
    #[serde(default)]
    pub recent: VecDeque<Heard>,
    /// History lines judged near `covered`, with their minute (ms).
    #[serde(default)]
    pub judged: Vec<(u64, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<RunSummary>,
    /// `last_heard` when it last made the memory be written (ms; not in the file).
    #[serde(skip)]
    pub heard_saved: u64,
    /// CM's clock minus ours at the last session (ms): a change (DST, a zone) widens the next
    /// comparison by as much.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset_ms: Option<i64>,
}

/// One reconciliation, as `omcmsync status` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSummary {
    /// When it ran (RFC 3339).
    pub at: String,
    /// What started it: schedule, start, promotion, silence, operator.
    pub why: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// History records read, and how many of them could not be read (unjudged).
    #[serde(default)]
    pub records: usize,
    #[serde(default)]
    pub unreadable: usize,
    /// Changes in the compared span that were heard.
    #[serde(default)]
    pub heard: usize,
    /// Changes in it that were not: requested, marked reconcile.
    #[serde(default)]
    pub missed: usize,
    /// The history did not reach back far enough: the element was resynced whole.
    #[serde(default)]
    pub wrapped: bool,
    /// How long the OSSI session took, and the judging after it (ms).
    #[serde(default)]
    pub session_ms: u64,
    #[serde(default)]
    pub judge_ms: u64,
    /// Why it gave no answer, if it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

pub struct Memory {
    /// Set once the service opened the state directory.
    path: Mutex<Option<PathBuf>>,
    elements: Mutex<BTreeMap<String, ElementMemory>>,
    dirty: AtomicBool,
    /// The reconciler has looked once which elements it reconciles: until then a change
    /// heard could not be remembered, and batches wait ([`Memory::looked`]).
    looked: AtomicBool,
    /// Elements heard again after `silence` without a change, for the reconciler to take; it
    /// is woken through `requests`.
    woke: Mutex<Vec<String>>,
    silence: Duration,
    requests: Arc<Requests>,
}

impl Memory {
    /// An empty memory, until [`Memory::open`] reads the file (the action is built in
    /// `rsyslogd -N1` too, which opens nothing).
    pub fn new(silence: Duration, requests: Arc<Requests>) -> Memory {
        Memory {
            path: Mutex::default(),
            elements: Mutex::default(),
            dirty: AtomicBool::new(false),
            looked: AtomicBool::new(false),
            woke: Mutex::default(),
            silence,
            requests,
        }
    }

    /// Reads `path` once (a service restart keeps what is in memory); a missing file is an
    /// empty memory, and so is a damaged one, whose error is returned.
    pub fn open(&self, path: PathBuf) -> Option<String> {
        let mut opened = self.path.lock();
        if opened.is_some() {
            return None;
        }
        let (saved, damage) = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Saved>(&bytes) {
                Ok(saved) => (saved, None),
                Err(e) => (Saved::default(), Some(format!("{}: {e}", path.display()))),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Saved::default(), None),
            Err(e) => (Saved::default(), Some(format!("{}: {e}", path.display()))),
        };
        *self.elements.lock() = saved.elements;
        *opened = Some(path);
        damage
    }

    /// Whether the reconciler has looked once which elements it reconciles.
    pub fn looked(&self) -> bool {
        self.looked.load(Ordering::Acquire)
    }

    /// The reconciler has looked (and watches what it found).
    pub fn set_looked(&self) {
        self.looked.store(true, Ordering::Release);
    }

    /// Remembers `element` from now on; a new one counts as compared up to `now_ms`.
    pub fn watch(&self, element: &str, now_ms: u64) {
        let mut elements = self.elements.lock();
        if !elements.contains_key(element) {
            let memory = ElementMemory {
                covered: now_ms,
                ..ElementMemory::default()
            };
            elements.insert(element.to_owned(), memory);
            self.dirty.store(true, Ordering::Relaxed);
        }
    }

    /// Forgets the elements not in `keep` (no longer reconciled).
    pub fn retain(&self, keep: &[String]) {
        let mut elements = self.elements.lock();
        let before = elements.len();
        elements.retain(|name, _| keep.contains(name));
        if elements.len() != before {
            self.dirty.store(true, Ordering::Relaxed);
        }
    }

    /// The heard changes of `changes` that matter here (those of reconciled elements), taken
    /// before the batch goes to the queue and [`Memory::note`]d once it is durable: a batch
    /// rsyslog retries must not be heard twice.
    pub fn heard_in(&self, changes: &[Change]) -> Vec<(String, Heard)> {
        let elements = self.elements.lock();
        if elements.is_empty() {
            return Vec::new();
        }
        changes
            .iter()
            .filter(|c| c.origin != Origin::Reconcile && elements.contains_key(&*c.key.element))
            .map(|c| {
                let heard = Heard {
                    at: c.at_ms,
                    scope: c.key.scope.clone(),
                    login: c.login.clone(),
                };
                (c.key.element.to_string(), heard)
            })
            .collect()
    }

    /// Remembers changes heard by syslog (the action, once they are durable).
    pub fn note(&self, heard: Vec<(String, Heard)>) {
        if heard.is_empty() {
            return;
        }
        let mut elements = self.elements.lock();
        for (element, h) in heard {
            let Some(e) = elements.get_mut(&element) else {
                continue;
            };
            if e.recent.len() == RECENT_MAX {
                e.recent.pop_front();
            }
            e.recent.push_back(h);
        }
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// `spoke` sent lines at `now_ms` (a batch): one silent for longer than `silence` wakes
    /// the reconciler (its connection may have lost lines meanwhile).
    pub fn spoke(&self, spoke: &[Arc<str>], now_ms: u64) {
        if spoke.is_empty() {
            return;
        }
        let silence = self.silence.as_millis() as u64;
        let mut woke = Vec::new();
        let mut elements = self.elements.lock();
        for element in spoke {
            let Some(e) = elements.get_mut(&**element) else {
                continue;
            };
            if e.last_heard > 0 && now_ms > e.last_heard + silence {
                woke.push(element.to_string());
            }
            e.last_heard = e.last_heard.max(now_ms);
            // On disk it may lag, but by less than half the silence: after a restart, an
            // element that spoke just before is not taken for one that was silent.
            if e.last_heard >= e.heard_saved + silence / 2 {
                e.heard_saved = e.last_heard;
                self.dirty.store(true, Ordering::Relaxed);
            }
        }
        drop(elements);
        if !woke.is_empty() {
            self.woke.lock().extend(woke);
            self.requests.nudge();
        }
    }

    /// Elements heard again after a silence since the last call.
    pub fn take_woken(&self) -> Vec<String> {
        std::mem::take(&mut *self.woke.lock())
    }

    pub fn get(&self, element: &str) -> Option<ElementMemory> {
        self.elements.lock().get(element).cloned()
    }

    /// Every element's last session, by name.
    pub fn summaries(&self) -> BTreeMap<String, (u64, Option<RunSummary>)> {
        let elements = self.elements.lock();
        let summary = |(name, m): (&String, &ElementMemory)| {
            (name.clone(), (m.last_heard, m.last_run.clone()))
        };
        elements.iter().map(summary).collect()
    }

    /// Moves `covered` on to `to` (never back) without a session: a standby, which hears what
    /// the active hears, answers for nothing before it.
    pub fn advance(&self, element: &str, to: u64) {
        if let Some(e) = self.elements.lock().get_mut(element) {
            if to > e.covered {
                e.covered = to;
                self.dirty.store(true, Ordering::Relaxed);
            }
        }
    }

    /// A session ended: what it judged, how far, and its summary. The heard changes that paired
    /// are used up; heard changes and judged lines older than `keep_from` can pair with no
    /// later record and are dropped.
    pub fn judged(&self, element: &str, run: Judged) {
        let mut elements = self.elements.lock();
        let Some(e) = elements.get_mut(element) else {
            return;
        };
        if let Some(covered) = run.covered {
            e.covered = e.covered.max(covered);
        }
        e.offset_ms = run.offset_ms.or(e.offset_ms);
        // One pass, whatever the counts (the elements' lock is held).
        let mut used: std::collections::HashMap<Heard, usize> = Default::default();
        for h in run.paired {
            *used.entry(h).or_default() += 1;
        }
        e.recent.retain(|h| match used.get_mut(h) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        });
        e.judged.extend(run.lines);
        e.judged.retain(|(minute, _)| *minute >= run.keep_from);
        let excess = e.judged.len().saturating_sub(JUDGED_MAX);
        e.judged.drain(..excess);
        while e.recent.front().is_some_and(|h| h.at < run.keep_from) {
            e.recent.pop_front();
        }
        e.last_run = Some(run.summary);
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// Writes the file if anything changed since it was last written.
    pub fn save_if_changed(&self) -> std::io::Result<()> {
        // Held while writing: sessions in threads of their own save as they end.
        let path = self.path.lock();
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return Ok(());
        }
        let saved = Saved {
            elements: self.elements.lock().clone(),
        };
        let Some(path) = &*path else {
            return Ok(());
        };
        let bytes = serde_json::to_vec(&saved).unwrap_or_default();
        crate::private::replace(path, &bytes).inspect_err(|_| {
            self.dirty.store(true, Ordering::Relaxed);
        })
    }
}

/// What one session leaves in the memory.
pub struct Judged {
    /// The new `covered`; none when the session failed.
    pub covered: Option<u64>,
    pub lines: Vec<(u64, String)>,
    /// The heard changes that paired with a record.
    pub paired: Vec<Heard>,
    /// CM's clock offset read by the session.
    pub offset_ms: Option<i64>,
    pub keep_from: u64,
    pub summary: RunSummary,
}
