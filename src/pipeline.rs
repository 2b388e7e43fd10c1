//! The pipeline one action runs: what happens to each batch of received lines.
//!
//! It knows nothing of rsyslog: the boundary hands it borrowed byte lines and maps the result to
//! a return code. Stages so far: split the rendered line, classify its message, count, record
//! (trace and capture). Filtering, the durable queue and delivery plug in after classification.

use serde_json::{Map, Value};

use crate::classify::{verdict_json, Classifier, ObjectTable, Reason, Verdict};
use crate::config::Config;
use crate::counters::{Counters, Tally};
use crate::line::{Malformed, ReceivedLine};
use crate::records::RecordFile;

pub struct Pipeline {
    config: Config,
    classifier: Classifier,
    trace: Option<RecordFile>,
    capture: Option<RecordFile>,
    counters: Counters,
}

/// The batch could not be taken now; rsyslog keeps it and retries later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suspend;

/// One batch's output for the record files, written once at its end.
#[derive(Default)]
struct BatchRecords {
    trace: Vec<u8>,
    capture: Vec<u8>,
    capture_room: u64,
    captured: u64,
}

impl Pipeline {
    pub fn new(config: Config) -> Self {
        let classifier = Classifier::new(ObjectTable::with_rules(&config.rules), config.limits);
        Pipeline {
            trace: config.trace_file.as_deref().map(RecordFile::new),
            capture: config
                .capture_file
                .as_deref()
                .map(|p| RecordFile::bounded(p, config.capture_max)),
            classifier,
            counters: Counters::default(),
            config,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Takes one rsyslog transaction. `worker` identifies the calling worker in the trace.
    /// Returns only once the batch is taken care of: the lines are borrowed for this call only.
    pub fn process_batch<'a>(
        &self,
        worker: u64,
        lines: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), Suspend> {
        let mut tally = Tally::default();
        let mut out = BatchRecords {
            capture_room: self.capture.as_ref().map_or(0, RecordFile::room),
            ..BatchRecords::default()
        };
        for raw in lines {
            tally.lines_received += 1;
            match ReceivedLine::parse(raw) {
                Err(why) => {
                    tally.lines_malformed += 1;
                    if self.trace.is_some() {
                        write_malformed(&mut out.trace, worker, raw, why);
                    }
                }
                Ok(line) => {
                    let verdict = self.classifier.classify(line.message);
                    match verdict {
                        Verdict::Event(e) => tally.event(e.verb),
                        Verdict::Ignored(reason) => {
                            tally.ignored(reason);
                            if reason.is_admin_looking() && out.captured < out.capture_room {
                                out.captured += 1;
                                write_line(&mut out.capture, None, &line, &verdict);
                            }
                        }
                    }
                    if self.trace.is_some() {
                        write_line(&mut out.trace, Some(worker), &line, &verdict);
                    }
                }
            }
        }
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

    /// HUP: reopen files so that log rotation works.
    pub fn reopen(&self) {
        self.trace
            .iter()
            .chain(&self.capture)
            .for_each(RecordFile::reopen);
    }

    /// Ignored lines by reason, for summaries.
    pub fn ignored_by_reason(&self) -> impl Iterator<Item = (Reason, u64)> + '_ {
        Reason::ALL
            .into_iter()
            .map(|r| (r, self.counters.ignored(r)))
    }
}

/// One trace or capture record: where the line came from, its message and the verdict.
fn write_line(out: &mut Vec<u8>, worker: Option<u64>, line: &ReceivedLine, verdict: &Verdict) {
    let mut record = Map::new();
    if let Some(w) = worker {
        record.insert("worker".into(), w.into());
    }
    record.insert("sender".into(), line.sender.to_string().into());
    record.insert("hostname".into(), line.hostname.into());
    record.insert("received_at".into(), line.received_at.into());
    record.insert(
        "message".into(),
        String::from_utf8_lossy(line.message).into(),
    );
    record.extend(verdict_json(verdict));
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
mod tests {
    use super::*;
    use crate::classify::Verb;
    use crate::config::Value as V;

    fn pipeline(extra: &[(&str, String)]) -> Pipeline {
        let mut values = vec![("smgr.url", V::Text("http://127.0.0.1:9".into()))];
        values.extend(extra.iter().map(|(k, v)| (*k, V::Text(v.clone()))));
        Pipeline::new(Config::from_values(values).unwrap())
    }

    fn temp(name: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("omcm-pipe-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    #[test]
    fn counts_received_malformed_events_and_reasons() {
        let p = pipeline(&[]);
        let lines: [&[u8]; 5] = [
            b"10.0.0.1\th\tt\tchange station 1",
            b"garbage",
            b"::1\th\tt\tIPEVT IPT_REG",
            b"::1\th\tt\tadd station next",
            b"::1\th\tt\tchange widget 5",
        ];
        p.process_batch(0, lines).unwrap();
        let c = p.counters();
        assert_eq!(Counters::get(&c.lines_received), 5);
        assert_eq!(Counters::get(&c.lines_malformed), 1);
        assert_eq!((c.event(Verb::Change), c.event(Verb::Add)), (1, 1));
        assert_eq!(
            (c.ignored(Reason::Noise), c.ignored(Reason::UnknownObject)),
            (1, 1)
        );
        assert_eq!(Counters::get(&c.batches_committed), 1);
    }

    #[test]
    fn traces_each_line_with_its_verdict() {
        let path = temp("trace.json");
        let p = pipeline(&[("trace.file", path.display().to_string())]);
        p.process_batch(
            7,
            [&b"10.0.0.1\tcm\t2026\tx: cha sta 1001 \xff"[..], b"bad\xfe"],
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let recs: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0]["message"], "x: cha sta 1001 \u{fffd}");
        assert_eq!(recs[0]["worker"], 7);
        assert_eq!(
            (&recs[0]["verdict"], &recs[0]["type"], &recs[0]["id"]),
            (&"event".into(), &"station".into(), &"1001".into())
        );
        assert_eq!(recs[1]["verdict"], "malformed");
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn capture_samples_admin_looking_lines_up_to_its_bound() {
        let path = temp("capture.json");
        let p = pipeline(&[
            ("capture.file", path.display().to_string()),
            ("capture.max", "2".into()),
        ]);
        let lines: [&[u8]; 4] = [
            b"::1\th\tt\tchange widget 1",
            b"::1\th\tt\tIPEVT noise",
            b"::1\th\tt\tcmdhist: unreadable",
            b"::1\th\tt\tchange station",
        ];
        p.process_batch(0, lines).unwrap();
        p.process_batch(0, lines).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let reasons: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["reason"].to_string())
            .collect();
        assert_eq!(reasons, ["\"unknown_object\"", "\"unclassified\""]);
        assert_eq!(Counters::get(&p.counters().captured), 2);
        p.reopen();
        p.process_batch(0, lines).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 4);
        std::fs::remove_file(path).unwrap();
    }
}
