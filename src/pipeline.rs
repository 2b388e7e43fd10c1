//! The pipeline one action runs: what happens to each batch of received lines.
//!
//! It knows nothing of rsyslog: the boundary hands it borrowed byte lines and maps the result to
//! a return code. Per line: split the rendered line, classify its message, filter the event
//! (known CM sender? notifications on? this node active? an ignored login?), turn it into
//! changes; per batch: make the changes durable in the queue, count, write the record files.
//! The batch is committed only once its changes are on disk.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::classify::{verdict_json, Classifier, Event, ObjectTable, Reason, Target, Verdict};
use crate::config::{Config, ElementsSource};
use crate::counters::{Counters, Dropped, Tally};
use crate::elements::{system_lookup, ElementTable, Elements};
use crate::ha::Gate;
use crate::line::{Malformed, ReceivedLine};
use crate::logging;
use crate::records::RecordFile;
use crate::resync::{now_ms, parse_rfc3339_ms, Change, Key, Scope, ShortText};
use crate::service::Lifecycle;

/// How long a batch waits for the background service to start before it is answered
/// SUSPENDED (rsyslog keeps it and retries; docs/design.md, "The start"). Short: rsyslog's
/// shutdown waits for a worker inside the module.
const BATCH_WAIT: Duration = Duration::from_secs(1);

/// How long [`Pipeline::start`] waits for the service (the tools and tests).
const START_WAIT: Duration = Duration::from_secs(60);

pub struct Pipeline {
    classifier: Classifier,
    elements: Arc<Elements>,
    gate: Arc<Gate>,
    trace: Option<RecordFile>,
    capture: Option<RecordFile>,
    counters: Arc<Counters>,
    service: Lifecycle,
}

/// The batch could not be taken now; rsyslog keeps it and retries later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suspend;

/// What became of an event after the filter.
enum Outcome {
    /// For this element.
    Queued(Arc<str>),
    Dropped(Dropped),
    IgnoredLogin,
}

impl Outcome {
    fn as_str(&self) -> &'static str {
        match self {
            Outcome::Queued(_) => "queued",
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
    /// Builds the action's pipeline. Opens nothing and starts nothing (this runs in
    /// `rsyslogd -N1` too): see [`Pipeline::start`].
    pub fn new(config: Config) -> Self {
        let classifier = Classifier::new(ObjectTable::with_rules(&config.rules), config.limits);
        let elements = match &config.elements {
            ElementsSource::File { path, list } => {
                Elements::new(Some(path), system_lookup).with_first_list(list.clone())
            }
            ElementsSource::Smgr => Elements::new(None, system_lookup),
        };
        let elements = Arc::new(elements);
        let gate = Arc::new(Gate::new(config.ha.clone()));
        let counters: Arc<Counters> = Arc::default();
        Pipeline {
            trace: config.trace_file.as_deref().map(RecordFile::new),
            capture: config
                .capture_file
                .as_deref()
                .map(|p| RecordFile::bounded(p, config.capture_max)),
            classifier,
            service: Lifecycle::new(config, elements.clone(), gate.clone(), counters.clone()),
            elements,
            gate,
            counters,
        }
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Starts the background service (element list, queue, delivery, HA role) in a thread of
    /// its own and returns at once: rsyslog's main thread never waits for DNS, an HA check or
    /// the queue's recovery.
    pub fn start_in_background(&self) {
        self.service.start();
    }

    /// Starts the background service and waits until it runs (the command-line tools, tests);
    /// false when it did not start within [`START_WAIT`] (the messages above say why).
    pub fn start(&self) -> bool {
        self.service.start();
        self.service.queue(START_WAIT).is_some()
    }

    /// Stops the background service (what is queued stays on disk).
    pub fn stop(&self) {
        self.service.stop();
    }

    /// Takes one rsyslog transaction. `worker` identifies the calling worker in the trace.
    /// Returns only once the batch's changes are durable: the lines are borrowed for this call.
    pub fn process_batch<'a>(
        &self,
        worker: u64,
        lines: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), Suspend> {
        let queue = self.service.queue(BATCH_WAIT).ok_or(Suspend)?;
        let table = self.elements.current();
        let gate_open = self.gate.open();
        let mut tally = Tally::default();
        let mut changes = Vec::new();
        let mut out = BatchRecords {
            capture_room: self.capture.as_ref().map_or(0, RecordFile::room),
            ..BatchRecords::default()
        };
        for raw in lines {
            tally.lines_received += 1;
            let mut malformed = |tally: &mut Tally, why| {
                tally.lines_malformed += 1;
                if self.trace.is_some() {
                    write_malformed(&mut out.trace, worker, raw, why);
                }
            };
            let line = match ReceivedLine::parse(raw) {
                Ok(line) => line,
                Err(why) => {
                    malformed(&mut tally, why);
                    continue;
                }
            };
            let verdict = self.classifier.classify(line.message);
            let outcome = match &verdict {
                Verdict::Event(e) => {
                    let sender = match line.sender() {
                        Ok(sender) => sender,
                        Err(why) => {
                            malformed(&mut tally, why);
                            continue;
                        }
                    };
                    tally.event(e.verb);
                    let outcome = filter(&table, gate_open, sender, e);
                    match &outcome {
                        Outcome::Queued(element) => {
                            let at = line
                                .received_at()
                                .and_then(parse_rfc3339_ms)
                                .unwrap_or_else(now_ms);
                            let before = changes.len();
                            push_changes(&mut changes, element.clone(), e, at);
                            tally.changes_queued += (changes.len() - before) as u64;
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
        }
        queue.submit(changes).map_err(|e| {
            logging::warning(&format!(
                "batch not committed, rsyslog will retry it: {e:?}"
            ));
            Suspend
        })?;
        tally.captured = out.captured;
        if let Some(trace) = &self.trace {
            trace.append(&out.trace, tally.lines_received);
        }
        if let Some(capture) = &self.capture {
            capture.append(&out.capture, out.captured);
        }
        self.counters.add_batch(&tally);
        Ok(())
    }

    /// HUP: reopen files so that log rotation works, and ask for the element list, the SMGR
    /// credentials and the TLS files to be read again. The supervisor thread reads them (names
    /// resolve there, never on rsyslog's main thread, where HUP runs); before the service runs,
    /// its start reads them anyway.
    pub fn reopen(&self) {
        self.trace
            .iter()
            .chain(&self.capture)
            .for_each(RecordFile::reopen);
        self.elements.request_reload();
    }

    /// Keys waiting for delivery (0 before start).
    pub fn keys_pending(&self) -> usize {
        self.service.keys_pending()
    }
}

/// Known CM sender? Notifications on? This node active? SMGR's own login echoed back?
fn filter(table: &ElementTable, gate_open: bool, sender: IpAddr, event: &Event) -> Outcome {
    match table.lookup(sender) {
        None => Outcome::Dropped(Dropped::UnknownSender),
        Some(el) if !el.notify => Outcome::Dropped(Dropped::NotifyOff),
        Some(_) if !gate_open => Outcome::Dropped(Dropped::Standby),
        Some(el) if event.login.is_some_and(|l| el.ignores_login(l)) => Outcome::IgnoredLogin,
        Some(el) => Outcome::Queued(el.name.clone()),
    }
}

/// The changes one event makes: one per object (a duplicate range expands), or one type- or
/// element-level change.
fn push_changes(out: &mut Vec<Change>, element: Arc<str>, e: &Event, at_ms: u64) {
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
    let mut record = Map::new();
    if let Some(w) = worker {
        record.insert("worker".into(), w.into());
    }
    record.insert("sender".into(), line.sender_text().into());
    record.insert("hostname".into(), line.hostname().into());
    record.insert(
        "received_at".into(),
        line.received_at().unwrap_or_default().into(),
    );
    record.insert(
        "message".into(),
        String::from_utf8_lossy(line.message).into(),
    );
    record.extend(verdict_json(verdict));
    if let Some(o) = outcome {
        record.insert("outcome".into(), o.as_str().into());
    }
    push_json(out, &Value::Object(record));
}

fn write_malformed(out: &mut Vec<u8>, worker: u64, raw: &[u8], why: Malformed) {
    let record = serde_json::json!({
        "worker": worker,
        "line": String::from_utf8_lossy(raw),
        "verdict": "malformed",
        "reason": format!("{why:?}"),
    });
    push_json(out, &record);
}

fn push_json(out: &mut Vec<u8>, record: &Value) {
    // Writing JSON into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, record);
    out.push(b'\n');
}

#[cfg(test)]
mod tests;
