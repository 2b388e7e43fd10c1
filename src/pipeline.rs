//! The pipeline one action runs: what happens to each batch of received lines.
//!
//! It knows nothing of rsyslog: the boundary hands it borrowed byte lines and maps the result to
//! a return code. Stages so far: split the rendered line, record it in the trace. Classification,
//! filtering, the durable queue and delivery plug in here.

use serde_json::json;

use crate::config::Config;
use crate::counters::Counters;
use crate::line::{Malformed, ReceivedLine};
use crate::trace::Trace;

pub struct Pipeline {
    config: Config,
    trace: Option<Trace>,
    counters: Counters,
}

/// The batch could not be taken now; rsyslog keeps it and retries later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suspend;

impl Pipeline {
    pub fn new(config: Config) -> Self {
        let trace = config.trace_file.as_deref().map(Trace::new);
        Pipeline {
            config,
            trace,
            counters: Counters::default(),
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
        let mut trace_buf = Vec::new();
        let (mut received, mut malformed) = (0, 0);
        for raw in lines {
            received += 1;
            let parsed = ReceivedLine::parse(raw);
            if parsed.is_err() {
                malformed += 1;
            }
            if self.trace.is_some() {
                write_record(&mut trace_buf, worker, raw, &parsed);
            }
        }
        if let Some(trace) = &self.trace {
            trace.append(&trace_buf);
        }
        Counters::add(&self.counters.lines_received, received);
        Counters::add(&self.counters.lines_malformed, malformed);
        Counters::add(&self.counters.batches_committed, 1);
        Ok(())
    }

    /// HUP: reopen files so that log rotation works.
    pub fn reopen(&self) {
        if let Some(trace) = &self.trace {
            trace.reopen();
        }
    }
}

fn write_record(
    out: &mut Vec<u8>,
    worker: u64,
    raw: &[u8],
    parsed: &Result<ReceivedLine, Malformed>,
) {
    let record = match parsed {
        Ok(line) => json!({
            "worker": worker,
            "sender": line.sender.to_string(),
            "hostname": line.hostname,
            "received_at": line.received_at,
            "message": String::from_utf8_lossy(line.message),
            "verdict": "received",
        }),
        Err(why) => json!({
            "worker": worker,
            "line": String::from_utf8_lossy(raw),
            "verdict": "malformed",
            "reason": format!("{why:?}"),
        }),
    };
    // Writing JSON into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &record);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Value;

    fn pipeline(trace: Option<&std::path::Path>) -> Pipeline {
        let mut values = vec![("smgr.url", Value::Text("http://127.0.0.1:9".into()))];
        if let Some(t) = trace {
            values.push(("trace.file", Value::Text(t.display().to_string())));
        }
        Pipeline::new(Config::from_values(values).unwrap())
    }

    #[test]
    fn counts_received_and_malformed_lines() {
        let p = pipeline(None);
        let lines: [&[u8]; 3] = [
            b"10.0.0.1\th\tt\tchange station 1",
            b"garbage",
            b"::1\th\tt\tm",
        ];
        p.process_batch(0, lines).unwrap();
        assert_eq!(Counters::get(&p.counters().lines_received), 3);
        assert_eq!(Counters::get(&p.counters().lines_malformed), 1);
        assert_eq!(Counters::get(&p.counters().batches_committed), 1);
    }

    #[test]
    fn traces_each_line_as_json() {
        let path = std::env::temp_dir().join(format!("omcm-pipe-{}.json", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let p = pipeline(Some(&path));
        p.process_batch(
            7,
            [&b"10.0.0.1\tcm\t2026\tx: \"quoted\" \xff"[..], b"bad\xfe"],
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let recs: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0]["message"], "x: \"quoted\" \u{fffd}");
        assert_eq!(recs[0]["worker"], 7);
        assert_eq!(recs[1]["verdict"], "malformed");
        std::fs::remove_file(path).unwrap();
    }
}
