//! What one action does with a batch of received lines, before and after the queue.
//!
//! It knows nothing of rsyslog, threads or the queue: [`crate::action::Action`] hands it
//! borrowed byte lines and makes its changes durable. Per line: split the rendered line,
//! classify its message, filter the event (known CM sender? notifications on? this node
//! active? an ignored login?), turn it into changes ([`Pipeline::read`]); once the changes are
//! on disk, count and write the record files ([`Pipeline::committed`]).

use parking_lot::Mutex;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::classify::Limits;
use crate::classify::{Classifier, Event, ObjectTable, Reason, Target, Verdict, VerdictFields};
use crate::clock::{now_ms, parse_rfc3339_ms};
use crate::config::{Config, RulesSource};
use crate::counters::{Counters, Dropped, Tally};
use crate::elements::{ElementTable, Elements};
use crate::ha::{Admission, Gate};
use crate::line::{Malformed, ReceivedLine};
use crate::problems::Problems;
use crate::reconcile::HistoryReader;
use crate::records::{LineRecord, RecordFile};
use crate::resync::{Change, Key, Origin, Scope, ShortText};

/// How often a `rules.file` that could not be read at start is looked for.
const RULES_RETRY: Duration = Duration::from_secs(1);

pub struct Pipeline {
    /// Set once the object table is complete: at start, or once a `rules.file` that could not
    /// be read at start is read ([`Pipeline::ready`]).
    classifier: OnceLock<Classifier>,
    late_rules: LateRules,
    elements: Arc<Elements>,
    gate: Arc<Gate>,
    trace: Option<RecordFile>,
    capture: Option<RecordFile>,
    counters: Arc<Counters>,
    /// Reconciliation is on: each batch notes which elements sent lines ([`Batch::spoke`]).
    hears_senders: bool,
}

/// A `rules.file` that could not be read when the configuration was, looked for again.
struct LateRules {
    path: Option<PathBuf>,
    limits: Limits,
    problems: Arc<Problems>,
    last_try: Mutex<Option<Instant>>,
}

impl LateRules {
    /// Reads the file, at most every [`RULES_RETRY`]; the classifier once it could.
    fn try_read(&self) -> Option<Classifier> {
        let path = self.path.as_deref()?;
        {
            let mut last = self.last_try.lock();
            if last.is_some_and(|t| t.elapsed() < RULES_RETRY) {
                return None;
            }
            *last = Some(Instant::now());
        }
        let read = RulesSource::read(path).map_err(|e| {
            format!(
                "{e}; the action holds what arrives (rsyslog keeps it) until the file can be read"
            )
        });
        self.problems.track("rules.file", &read);
        let table = ObjectTable::with_rules(&read.ok()?);
        Some(Classifier::new(table, self.limits))
    }
}

/// One batch, read: its changes for the queue, and its counts and records for after.
pub struct Batch {
    changes: Vec<Change>,
    tally: Tally,
    records: BatchRecords,
    /// The known elements that sent any line in the batch (reconciliation's silence).
    spoke: Vec<Arc<str>>,
}

impl Batch {
    /// The changes to make durable.
    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    /// The known elements that sent a line (a change or not) in this batch.
    pub fn spoke(&self) -> &[Arc<str>] {
        &self.spoke
    }
}

/// At most this many senders are told apart per batch by their bytes; lines from others are
/// looked up one by one.
const SENDERS_SEEN_MAX: usize = 16;

/// The senders of a batch's lines: each distinct one looked up once, not each line.
#[derive(Default)]
struct Senders<'a> {
    seen: Vec<&'a [u8]>,
}

impl<'a> Senders<'a> {
    /// Notes the sender of `line` into `spoke` if it is a known element's and new here.
    fn note(&mut self, line: &ReceivedLine<'a>, table: &ElementTable, spoke: &mut Vec<Arc<str>>) {
        let bytes = line.sender_bytes();
        if self.seen.contains(&bytes) {
            return;
        }
        if self.seen.len() < SENDERS_SEEN_MAX {
            self.seen.push(bytes);
        }
        let Some(el) = line.sender().ok().and_then(|ip| table.lookup(ip)) else {
            return;
        };
        if !spoke.contains(&el.name) {
            spoke.push(el.name.clone());
        }
    }
}

/// What became of an event after the filter.
enum Outcome {
    /// For this element; `held`: heard while standby, delivered once active.
    Queued {
        element: Arc<str>,
        held: bool,
    },
    Dropped(Dropped),
    IgnoredLogin,
}

impl Outcome {
    fn as_str(&self) -> &'static str {
        match self {
            Outcome::Queued { held: false, .. } => "queued",
            Outcome::Queued { held: true, .. } => "held",
            Outcome::Dropped(d) => d.as_str(),
            Outcome::IgnoredLogin => "ignored_login",
        }
    }
}

/// One batch's output for the record files, written once at its end.
#[derive(Default)]
struct BatchRecords {
    trace: Vec<u8>,
    capture: Vec<u8>,
    capture_room: u64,
    captured: u64,
}

impl Pipeline {
    pub fn new(
        config: &Config,
        elements: Arc<Elements>,
        gate: Arc<Gate>,
        counters: Arc<Counters>,
        problems: Arc<Problems>,
    ) -> Self {
        let classifier = OnceLock::new();
        if let Some(rules) = &config.rules.rules {
            let table = ObjectTable::with_rules(rules);
            let _ = classifier.set(Classifier::new(table, config.limits));
        }
        Pipeline {
            classifier,
            late_rules: LateRules {
                path: config.rules.path.clone(),
                limits: config.limits,
                problems: problems.clone(),
                last_try: Mutex::default(),
            },
            trace: config
                .trace_file
                .as_deref()
                .map(|p| RecordFile::new(p, "trace.file", problems.clone())),
            capture: config.capture_file.as_deref().map(|p| {
                RecordFile::new(p, "capture.file", problems.clone()).bounded(config.capture_max)
            }),
            elements,
            gate,
            counters,
            hears_senders: config.reconcile.enabled,
        }
    }

    /// Whether batches can be read: the object table is complete (a `rules.file` that could
    /// not be read at start has been read since). Until then the action holds what arrives.
    pub fn ready(&self) -> bool {
        if self.classifier.get().is_some() {
            return true;
        }
        if let Some(classifier) = self.late_rules.try_read() {
            let _ = self.classifier.set(classifier);
        }
        self.classifier.get().is_some()
    }

    /// Reads a batch: every line split, classified and filtered, the changes it makes. `None`
    /// before [`Pipeline::ready`].
    pub fn read<'a>(
        &self,
        worker: u64,
        lines: impl IntoIterator<Item = &'a [u8]>,
    ) -> Option<Batch> {
        let classifier = self.classifier.get()?;
        let mut batch = Batch {
            changes: Vec::new(),
            tally: Tally::default(),
            records: BatchRecords {
                capture_room: self.capture.as_ref().map_or(0, RecordFile::room),
                ..BatchRecords::default()
            },
            spoke: Vec::new(),
        };
        let table = self.elements.current();
        let admission = self.gate.admission();
        let mut senders = Senders::default();
        for raw in lines {
            let line = self.read_line(&mut batch, classifier, (&table, admission), worker, raw);
            if let Some(line) = line.filter(|_| self.hears_senders) {
                senders.note(&line, &table, &mut batch.spoke);
            }
        }
        Some(batch)
    }

    /// Reads one line into the batch; the line as split, unless it was malformed.
    fn read_line<'a>(
        &self,
        batch: &mut Batch,
        classifier: &Classifier,
        (table, admission): (&ElementTable, Admission),
        worker: u64,
        raw: &'a [u8],
    ) -> Option<ReceivedLine<'a>> {
        let tally = &mut batch.tally;
        let out = &mut batch.records;
        tally.lines_received += 1;
        let line = match ReceivedLine::parse(raw) {
            Ok(line) => line,
            Err(why) => return self.malformed(tally, out, worker, raw, why),
        };
        let verdict = classifier.classify(line.message);
        let outcome = match &verdict {
            Verdict::Event(e) => {
                let sender = match line.sender() {
                    Ok(sender) => sender,
                    Err(why) => return self.malformed(tally, out, worker, raw, why),
                };
                tally.event(e.verb);
                let outcome = filter(table, admission, sender, e);
                match &outcome {
                    Outcome::Queued { element, held } => {
                        let at = line
                            .received_at()
                            .and_then(parse_rfc3339_ms)
                            .unwrap_or_else(now_ms);
                        let changes = &mut batch.changes;
                        queue_event(changes, tally, e, (element, *held), at);
                    }
                    Outcome::Dropped(why) => tally.dropped(*why),
                    Outcome::IgnoredLogin => tally.ignored(Reason::IgnoredLogin),
                }
                Some(outcome)
            }
            Verdict::Ignored(reason) => {
                tally.ignored(*reason);
                if reason.is_admin_looking() && out.captured < out.capture_room {
                    out.captured += 1;
                    write_line(&mut out.capture, None, &line, &verdict, None);
                }
                None
            }
        };
        if self.trace.is_some() {
            write_line(
                &mut out.trace,
                Some(worker),
                &line,
                &verdict,
                outcome.as_ref(),
            );
        }
        Some(line)
    }

    /// Counts (and traces) a line that is not the template's: nothing more is read of it.
    fn malformed<T>(
        &self,
        tally: &mut Tally,
        out: &mut BatchRecords,
        worker: u64,
        raw: &[u8],
        why: Malformed,
    ) -> Option<T> {
        tally.lines_malformed += 1;
        if self.trace.is_some() {
            write_malformed(&mut out.trace, worker, raw, why);
        }
        None
    }

    /// The batch's changes are durable: count it and write its records.
    pub fn committed(&self, mut batch: Batch) {
        let out = &batch.records;
        batch.tally.captured = out.captured;
        if let Some(trace) = &self.trace {
            trace.append(&out.trace, batch.tally.lines_received);
        }
        if let Some(capture) = &self.capture {
            capture.append(&out.capture, out.captured);
        }
        self.counters.add_batch(&batch.tally);
    }

    /// HUP: reopen the trace and capture files, so that log rotation works.
    pub fn reopen_records(&self) {
        self.trace
            .iter()
            .chain(&self.capture)
            .for_each(RecordFile::reopen);
    }
}

/// A record of CM's own history, read by a reconciliation: classified as a received line, for
/// the element it was read from (not by sender), its changes marked `reconcile`.
impl HistoryReader for Pipeline {
    fn changes(&self, element: &str, line: &str, at_ms: u64) -> Vec<Change> {
        let Some(classifier) = self.classifier.get() else {
            return Vec::new();
        };
        let Verdict::Event(e) = classifier.classify(line.as_bytes()) else {
            return Vec::new();
        };
        let table = self.elements.current();
        let Some(el) = table.get(element) else {
            return Vec::new();
        };
        if !el.notify || e.login.is_some_and(|l| el.ignores_login(l)) {
            return Vec::new();
        }
        let mut changes = Vec::new();
        push_changes(&mut changes, el.name.clone(), &e, at_ms, Origin::Reconcile);
        changes
    }
}

/// Known CM sender? Notifications on? This node active (or holding, as standby)? SMGR's own
/// login echoed back?
fn filter(table: &ElementTable, admission: Admission, sender: IpAddr, event: &Event) -> Outcome {
    match table.lookup(sender) {
        None => Outcome::Dropped(Dropped::UnknownSender),
        Some(el) if !el.notify => Outcome::Dropped(Dropped::NotifyOff),
        Some(_) if let Admission::Drop(why) = admission => Outcome::Dropped(why),
        Some(el) if event.login.is_some_and(|l| el.ignores_login(l)) => Outcome::IgnoredLogin,
        Some(el) => Outcome::Queued {
            element: el.name.clone(),
            held: admission == Admission::Hold,
        },
    }
}

/// The changes one event makes: one per object (a duplicate range expands), or one type- or
/// element-level change.
/// An event the filter let through, received at `at_ms`: its changes into the batch, counted.
fn queue_event(
    changes: &mut Vec<Change>,
    tally: &mut Tally,
    e: &Event,
    (element, held): (&Arc<str>, bool),
    at_ms: u64,
) {
    let before = changes.len();
    let origin = if held { Origin::Standby } else { Origin::Heard };
    push_changes(changes, element.clone(), e, at_ms, origin);
    let n = (changes.len() - before) as u64;
    tally.changes_queued += n;
    if held {
        tally.standby_held += n;
    }
}

fn push_changes(out: &mut Vec<Change>, element: Arc<str>, e: &Event, at_ms: u64, origin: Origin) {
    let ty = e.object.type_name.clone();
    let change = |scope: Scope, reason: Option<String>| Change {
        key: Key {
            element: element.clone(),
            scope,
        },
        verb: e.verb,
        login: e.login.map(ShortText::from),
        reason,
        at_ms,
        origin,
    };
    match e.target {
        Target::Object(id) => out.push(change(Scope::Object { ty, id: id.into() }, None)),
        Target::Range {
            start,
            count,
            width,
        } => out.extend((0..u64::from(count)).map(|i| {
            change(
                Scope::Object {
                    ty: ty.clone(),
                    id: compact_str::format_compact!("{:0width$}", start + i),
                },
                None,
            )
        })),
        Target::Type(reason) => {
            out.push(change(Scope::Type { ty }, Some(reason.as_str().to_owned())))
        }
        Target::Element => out.push(change(Scope::Element, Some(format!("{ty} changed")))),
    }
}

/// One trace or capture record: where the line came from, its message, the verdict and, for
/// events, what the filter did.
fn write_line(
    out: &mut Vec<u8>,
    worker: Option<u64>,
    line: &ReceivedLine,
    verdict: &Verdict,
    outcome: Option<&Outcome>,
) {
    LineRecord::Received {
        worker,
        sender: line.sender_text(),
        hostname: line.hostname(),
        received_at: line.received_at().unwrap_or_default().into(),
        message: String::from_utf8_lossy(line.message),
        verdict: VerdictFields::of(verdict),
        outcome: outcome.map(|o| o.as_str().into()),
    }
    .write(out);
}

fn write_malformed(out: &mut Vec<u8>, worker: u64, raw: &[u8], why: Malformed) {
    LineRecord::Unsplit {
        worker,
        line: String::from_utf8_lossy(raw),
        verdict: VerdictFields::Malformed { reason: why },
    }
    .write(out);
}
