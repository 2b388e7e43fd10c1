//! Record files for the operator: the trace (one JSON object per received line, saying what the
//! pipeline did with it) and the capture (a bounded sample of admin-looking lines that did not
//! classify).
//!
//! Debugging aids (and what the tests read), so they must never hold up or fail the pipeline: a
//! write error is reported once under the file's parameter ([`Problems`]) and records are
//! dropped until writing works again, which is reported once too. Reopened on HUP
//! so that logrotate can move them away; a bounded file takes `max` records in its lifetime:
//! after a HUP the lines already in the file count (rsyslog's own logrotate HUPs daily
//! whether or not this file was rotated), a new file starts from none.

use parking_lot::Mutex;
use std::borrow::Cow;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::classify::VerdictFields;
use crate::problems::Problems;
use crate::resync::Scope;

/// One line's record in the trace (with `worker` and, for events, `outcome`) or the capture
/// file. A line that could not be split is `{"worker":..,"line":..,"verdict":"malformed",..}`.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LineRecord<'a> {
    Received {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        worker: Option<u64>,
        sender: Cow<'a, str>,
        hostname: Cow<'a, str>,
        /// As rsyslog rendered it (RFC 3339).
        received_at: Cow<'a, str>,
        message: Cow<'a, str>,
        #[serde(flatten)]
        verdict: VerdictFields<'a>,
        /// What the filter did with an event (`queued`, `unknown_sender`, ...).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        outcome: Option<Cow<'a, str>>,
    },
    Unsplit {
        worker: u64,
        line: Cow<'a, str>,
        #[serde(flatten)]
        verdict: VerdictFields<'a>,
    },
}

/// An operator's action in the trace (`source` is always `operator`).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub struct OperatorRecord<'a> {
    /// `resync` or `requeue`.
    pub op: Cow<'a, str>,
    pub element: Cow<'a, str>,
    /// What a resync asked for.
    #[serde(default, flatten, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// The requeued request's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<Cow<'a, str>>,
    pub outcome: Cow<'a, str>,
    /// RFC 3339.
    pub time: String,
    pub source: Cow<'a, str>,
}

impl OperatorRecord<'_> {
    /// Appends the record and a newline to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        let _ = serde_json::to_writer(&mut *out, self);
        out.push(b'\n');
    }
}

impl LineRecord<'_> {
    /// Appends the record and a newline to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        // Writing into a Vec cannot fail, nor can this type (string keys only).
        let _ = serde_json::to_writer(&mut *out, self);
        out.push(b'\n');
    }
}

pub struct RecordFile {
    path: PathBuf,
    /// `trace.file` or `capture.file`, for problems.
    param: &'static str,
    problems: Arc<Problems>,
    max: Option<u64>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    file: Option<File>,
    failing: bool,
    /// Records in the file (a bounded file's, once counted since the last open).
    written: u64,
    counted: bool,
}

impl RecordFile {
    /// Nothing is opened until the first write (rsyslogd -N1 must not create files).
    pub fn new(path: &Path, param: &'static str, problems: Arc<Problems>) -> Self {
        RecordFile {
            path: path.to_owned(),
            param,
            problems,
            max: None,
            state: Mutex::new(State::default()),
        }
    }

    /// A file that takes at most `max` records per open.
    pub fn bounded(self, max: u64) -> Self {
        RecordFile {
            max: Some(max),
            ..self
        }
    }

    /// How many more records the file takes now (`u64::MAX` when unbounded).
    pub fn room(&self) -> u64 {
        let Some(max) = self.max else {
            return u64::MAX;
        };
        let mut state = self.lock();
        if !state.counted {
            // Once after each open: the lines the file already holds (at most `max` read).
            state.written = lines_in(&self.path, max);
            state.counted = true;
        }
        max.saturating_sub(state.written)
    }

    /// Appends `count` already-formatted records (each ending in a newline) in one write.
    pub fn append(&self, records: &[u8], count: u64) {
        if records.is_empty() {
            return;
        }
        let mut state = self.lock();
        state.written += count;
        let result = match &mut state.file {
            Some(f) => f.write_all(records),
            None => open_append(&self.path).and_then(|mut f| {
                f.write_all(records)?;
                state.file = Some(f);
                Ok(())
            }),
        };
        match result {
            Ok(()) if state.failing => {
                state.failing = false;
                self.problems.clear(self.param);
            }
            Ok(()) => {}
            Err(e) => {
                state.file = None;
                state.failing = true;
                let path = self.path.display();
                let what = format!("{path}: {e}; records dropped until it is writable");
                self.problems.report(self.param, &what);
            }
        }
    }

    /// Closes the file; the next write opens the path again (log rotation), and a bounded
    /// file counts its lines again.
    pub fn reopen(&self) {
        let mut state = self.lock();
        state.file = None;
        state.counted = false;
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, State> {
        self.state.lock()
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    crate::private::append(path)
}

/// The lines `path` holds, counting up to `max` (a missing or unreadable file holds none).
fn lines_in(path: &Path, max: u64) -> u64 {
    use std::io::BufRead;
    let Ok(file) = File::open(path) else {
        return 0;
    };
    let mut reader = std::io::BufReader::new(file);
    let mut lines = 0;
    while lines < max {
        let Ok(buf) = reader.fill_buf() else {
            break;
        };
        if buf.is_empty() {
            break;
        }
        let (n, len) = (
            buf.iter().filter(|&&b| b == b'\n').count() as u64,
            buf.len(),
        );
        lines += n;
        reader.consume(len);
    }
    lines.min(max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::TargetFields;
    use crate::line::Malformed;

    /// Each record kind reads back as written (a tool reading the trace uses these types).
    #[test]
    fn records_read_back_as_written() {
        let event = VerdictFields::Event {
            verb: crate::classify::Verb::Change,
            ty: "station".into(),
            target: TargetFields::Object { id: "1001".into() },
            login: Some("dadmin".into()),
            session: None,
            client_ip: Some("2001:db8::7".into()),
            cm_time: None,
        };
        let records = [
            LineRecord::Received {
                worker: Some(3),
                sender: "10.1.1.10".into(),
                hostname: "cm-east".into(),
                received_at: "2026-11-25T10:15:02.123+00:00".into(),
                message: "cmd=chan sta 1001".into(),
                verdict: event,
                outcome: Some("queued".into()),
            },
            LineRecord::Unsplit {
                worker: 1,
                line: "no tabs".into(),
                verdict: VerdictFields::Malformed {
                    reason: Malformed::MissingFields,
                },
            },
        ];
        for r in records {
            let mut out = Vec::new();
            r.write(&mut out);
            assert_eq!(serde_json::from_slice::<LineRecord>(&out).unwrap(), r);
        }
        let mut out = Vec::new();
        LineRecord::Unsplit {
            worker: 1,
            line: "x".into(),
            verdict: VerdictFields::Malformed {
                reason: Malformed::BadSender,
            },
        }
        .write(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"worker\":1,\"line\":\"x\",\"verdict\":\"malformed\",\"reason\":\"bad_sender\"}\n"
        );
    }

    #[test]
    fn appends_and_reopens_after_rotation() {
        let dir = std::env::temp_dir().join(format!("omcm-trace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.json");
        let t = RecordFile::new(&path, "trace.file", Arc::default());
        assert!(!path.exists(), "opened before first write");
        t.append(b"{\"a\":1}\n", 1);
        std::fs::rename(&path, dir.join("t.json.1")).unwrap();
        t.append(b"{\"a\":2}\n", 1); // still the rotated file
        t.reopen();
        t.append(b"{\"a\":3}\n", 1);
        assert_eq!(
            std::fs::read_to_string(dir.join("t.json.1")).unwrap(),
            "{\"a\":1}\n{\"a\":2}\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":3}\n");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unwritable_path_does_not_fail_the_caller() {
        let t = RecordFile::new(
            Path::new("/nonexistent-dir/omcm/t.json"),
            "trace.file",
            Arc::default(),
        );
        t.append(b"x\n", 1);
        t.append(b"y\n", 1);
    }

    #[test]
    fn bounded_file_counts_room_per_file_not_per_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("capture.json");
        let t = RecordFile::new(&path, "capture.file", Arc::default()).bounded(3);
        assert_eq!(t.room(), 3);
        t.append(b"1\n2\n", 2);
        assert_eq!(t.room(), 1);
        // A HUP that rotated nothing (rsyslog's daily one): the file's lines still count.
        t.reopen();
        assert_eq!(t.room(), 1);
        t.append(b"3\n", 1);
        t.reopen();
        assert_eq!(t.room(), 0);
        // Rotated away: a new file takes `max` again.
        std::fs::rename(&path, dir.path().join("capture.json.1")).unwrap();
        t.reopen();
        assert_eq!(t.room(), 3);
        assert_eq!(
            RecordFile::new(&path, "trace.file", Arc::default()).room(),
            u64::MAX
        );
    }
}
