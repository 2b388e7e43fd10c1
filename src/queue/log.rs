//! The queue's file: an append-only log of checksummed JSON lines in `state.dir/queue.log`.
//!
//! Each line is `<crc32 in hex> <json>`. Records: `add` (a change merged into a key), `done` (a
//! key delivered up to a sequence number), `entry` (a key's whole state, written by compaction)
//! and `seq` (the next sequence number, first line of a compacted log). A crash can only tear the
//! last line; a line whose checksum fails is skipped and counted. Compaction writes the live
//! state to a new file, fsyncs it and renames it over the old one, so the log stays about as
//! large as the set of pending keys. Why a log and not an embedded database: docs/design.md.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::pending::Entry;
use crate::classify::Verb;
use crate::resync::{Change, Key, Scope};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Seq(u64),
    Add { seq: u64, change: Change },
    Done { seq: u64, key: Key },
    Entry { key: Key, entry: Entry },
}

/// What reading the log at start found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    pub records: usize,
    /// Lines skipped because their checksum or JSON was bad (a torn last write, or damage).
    pub bad_lines: usize,
}

pub struct Log {
    file: File,
    path: PathBuf,
    dir: PathBuf,
    /// Length of the file up to the last record known to be whole.
    good_len: u64,
    /// Records appended since the last compaction.
    pub appended: u64,
}

impl Log {
    /// Opens (or creates) the log in `dir` and reads every whole record.
    pub fn open(dir: &Path) -> io::Result<(Log, Vec<Record>, Recovery)> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("queue.log");
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)?;
        let mut records = Vec::new();
        let mut recovery = Recovery::default();
        let mut good_len = 0u64;
        let mut offset = 0u64;
        let mut reader = BufReader::new(&mut file);
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 {
                break;
            }
            offset += n as u64;
            match line.strip_suffix(b"\n").and_then(decode) {
                Some(r) => {
                    records.push(r);
                    good_len = offset;
                }
                None if line.ends_with(b"\n") => {
                    recovery.bad_lines += 1;
                    good_len = offset;
                }
                None => recovery.bad_lines += 1, // torn tail: cut off below
            }
        }
        recovery.records = records.len();
        file.set_len(good_len)?;
        file.seek(SeekFrom::End(0))?;
        sync_dir(dir)?;
        Ok((
            Log {
                file,
                path,
                dir: dir.to_owned(),
                good_len,
                appended: 0,
            },
            records,
            recovery,
        ))
    }

    /// Appends records in one write; with `sync`, returns only once they are on disk. On
    /// failure the file is cut back to its last whole record, so a later append starts clean.
    pub fn append(&mut self, records: &[Record], sync: bool) -> io::Result<()> {
        let mut buf = Vec::with_capacity(records.len() * 160);
        for r in records {
            encode(r, &mut buf);
        }
        let result =
            self.file
                .write_all(&buf)
                .and_then(|()| if sync { self.file.sync_data() } else { Ok(()) });
        match result {
            Ok(()) => {
                self.good_len += buf.len() as u64;
                self.appended += records.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(self.good_len);
                let _ = self.file.seek(SeekFrom::End(0));
                Err(e)
            }
        }
    }

    /// Replaces the log with `snapshot` (the live state), atomically.
    pub fn compact(&mut self, snapshot: &[Record]) -> io::Result<()> {
        let tmp = self.dir.join("queue.log.compact");
        let mut buf = Vec::new();
        for r in snapshot {
            encode(r, &mut buf);
        }
        let mut f = File::create(&tmp)?;
        f.write_all(&buf)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        sync_dir(&self.dir)?;
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        self.good_len = buf.len() as u64;
        self.appended = 0;
        Ok(())
    }

    /// Bytes in the log.
    pub fn bytes(&self) -> u64 {
        self.good_len
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn encode(r: &Record, out: &mut Vec<u8>) {
    let json = serde_json::to_vec(&to_json(r)).expect("records serialize");
    let crc = crc32fast::hash(&json);
    out.extend_from_slice(format!("{crc:08x} ").as_bytes());
    out.extend_from_slice(&json);
    out.push(b'\n');
}

fn decode(line: &[u8]) -> Option<Record> {
    let (crc, json) = (line.get(..8)?, line.get(9..)?);
    let crc = u32::from_str_radix(std::str::from_utf8(crc).ok()?, 16).ok()?;
    if line[8] != b' ' || crc32fast::hash(json) != crc {
        return None;
    }
    from_json(&serde_json::from_slice(json).ok()?)
}

fn to_json(r: &Record) -> Value {
    let mut m = Map::new();
    let key_fields = |m: &mut Map<String, Value>, key: &Key| {
        m.insert("el".into(), (*key.element).into());
        key.scope.write_json(m);
    };
    match r {
        Record::Seq(next) => {
            m.insert("t".into(), "seq".into());
            m.insert("next".into(), (*next).into());
        }
        Record::Add { seq, change } => {
            m.insert("t".into(), "add".into());
            m.insert("seq".into(), (*seq).into());
            key_fields(&mut m, &change.key);
            m.insert("verb".into(), change.verb.as_str().into());
            m.insert("login".into(), change.login.clone().into());
            m.insert("reason".into(), change.reason.clone().into());
            m.insert("at".into(), change.at_ms.into());
        }
        Record::Done { seq, key } => {
            m.insert("t".into(), "done".into());
            m.insert("seq".into(), (*seq).into());
            key_fields(&mut m, key);
        }
        Record::Entry { key, entry } => {
            m.insert("t".into(), "entry".into());
            m.insert("seq".into(), entry.seq.into());
            key_fields(&mut m, key);
            entry.write_summary(&mut m);
            m.insert("reason".into(), entry.reason.clone().into());
            m.insert("first".into(), entry.first_ms.into());
            m.insert("last".into(), entry.last_ms.into());
            m.insert("due".into(), entry.due_ms.into());
        }
    }
    Value::Object(m)
}

fn from_json(v: &Value) -> Option<Record> {
    let n = |k: &str| v.get(k).and_then(Value::as_u64);
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let key = || {
        Some(Key {
            element: Arc::from(v.get("el")?.as_str()?),
            scope: Scope::read_json(v)?,
        })
    };
    Some(match v.get("t")?.as_str()? {
        "seq" => Record::Seq(n("next")?),
        "add" => Record::Add {
            seq: n("seq")?,
            change: Change {
                key: key()?,
                verb: Verb::parse(v.get("verb")?.as_str()?)?,
                login: s("login"),
                reason: s("reason"),
                at_ms: n("at")?,
            },
        },
        "done" => Record::Done {
            seq: n("seq")?,
            key: key()?,
        },
        "entry" => {
            let strings = |k: &str| -> Option<Vec<String>> {
                v.get(k)?
                    .as_array()?
                    .iter()
                    .map(|x| x.as_str().map(str::to_owned))
                    .collect()
            };
            Record::Entry {
                key: key()?,
                entry: Entry {
                    seq: n("seq")?,
                    count: n("count")?,
                    verbs: strings("verbs")?
                        .iter()
                        .filter_map(|x| Verb::parse(x))
                        .collect(),
                    logins: strings("logins")?,
                    reason: s("reason"),
                    first_ms: n("first")?,
                    last_ms: n("last")?,
                    due_ms: n("due")?,
                    in_flight: None,
                },
            }
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(seq: u64, id: &str) -> Record {
        Record::Add {
            seq,
            change: Change {
                key: Key {
                    element: "cm".into(),
                    scope: Scope::Object {
                        ty: "station".into(),
                        id: id.into(),
                    },
                },
                verb: Verb::Change,
                login: Some("dadmin".into()),
                reason: None,
                at_ms: 5,
            },
        }
    }

    #[test]
    fn records_survive_reopen_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, recs, _) = Log::open(dir.path()).unwrap();
        assert!(recs.is_empty());
        log.append(&[add(1, "1001"), add(2, "1002")], true).unwrap();
        let done = Record::Done {
            seq: 1,
            key: match add(1, "1001") {
                Record::Add { change, .. } => change.key,
                _ => unreachable!(),
            },
        };
        log.append(std::slice::from_ref(&done), false).unwrap();
        drop(log);
        // A crash in the middle of a write: half a line at the end.
        let path = dir.path().join("queue.log");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"0badc0de {\"t\":\"add\",\"se").unwrap();
        drop(f);
        let (mut log, recs, recovery) = Log::open(dir.path()).unwrap();
        assert_eq!(recs, [add(1, "1001"), add(2, "1002"), done]);
        assert_eq!(
            recovery,
            Recovery {
                records: 3,
                bad_lines: 1
            }
        );
        // The torn tail was cut: the next append starts on its own line.
        log.append(&[add(3, "1003")], true).unwrap();
        let (_, recs, recovery) = Log::open(dir.path()).unwrap();
        assert_eq!(recs.len(), 4);
        assert_eq!(recovery.bad_lines, 0);
    }

    #[test]
    fn damaged_line_is_skipped_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _, _) = Log::open(dir.path()).unwrap();
        log.append(&[add(1, "1"), add(2, "2"), add(3, "3")], true)
            .unwrap();
        drop(log);
        let path = dir.path().join("queue.log");
        let text =
            std::fs::read_to_string(&path)
                .unwrap()
                .replacen("\"id\":\"2\"", "\"id\":\"X\"", 1);
        std::fs::write(&path, text).unwrap();
        let (_, recs, recovery) = Log::open(dir.path()).unwrap();
        assert_eq!(recs, [add(1, "1"), add(3, "3")]);
        assert_eq!(recovery.bad_lines, 1);
    }

    #[test]
    fn compaction_replaces_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _, _) = Log::open(dir.path()).unwrap();
        for i in 0..100 {
            log.append(&[add(i, &i.to_string())], false).unwrap();
        }
        let big = log.bytes();
        log.compact(&[Record::Seq(100), add(99, "99")]).unwrap();
        assert!(log.bytes() < big / 10);
        log.append(&[add(100, "100")], true).unwrap();
        let (_, recs, _) = Log::open(dir.path()).unwrap();
        assert_eq!(recs, [Record::Seq(100), add(99, "99"), add(100, "100")]);
    }
}
