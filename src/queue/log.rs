//! The queue's file: an append-only log of checksummed JSON lines in `state.dir/queue.log`.
//!
//! Each line is `<crc32 in hex> <json>`. Records: `add` (a change merged into a key), `done` (a
//! key delivered up to a sequence number), `entry` (a key's whole state, written by compaction)
//! and `seq` (the next sequence number, first line of a compacted log). A crash can only tear the
//! last line; a line whose checksum fails is skipped and counted. Compaction writes the live
//! state to a new file, fsyncs it and renames it over the old one, so the log stays about as
//! large as the set of pending keys. Why a log and not an embedded database: docs/design.md.

use std::collections::{BTreeSet, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use super::pending::Entry;
use crate::classify::Verb;
use crate::resync::{Change, Fields, Key, Scope};

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
    /// Lines that failed their check (damage, or a torn last write), and their bytes.
    pub bad_lines: usize,
    pub bad_bytes: u64,
    /// Elements the damaged lines name, where that can still be read.
    pub damaged_elements: BTreeSet<String>,
    /// Every element a whole record names.
    pub elements: BTreeSet<String>,
    /// Where the damaged log was kept, as it was, before anything rewrote it.
    pub kept: Option<PathBuf>,
    /// The log was empty or missing where the directory says there was one.
    pub missing: bool,
    /// The elements given a full resync for the damage.
    pub resynced: Vec<String>,
}

/// Names read back from the log, held once each: 300,000 keys of one element and a few
/// types would otherwise be 600,000 small heap blocks.
#[derive(Default)]
struct Names(HashSet<Arc<str>>);

impl Names {
    fn get(&mut self, name: &Arc<str>) -> Arc<str> {
        match self.0.get(name) {
            Some(held) => held.clone(),
            None => {
                self.0.insert(name.clone());
                name.clone()
            }
        }
    }

    fn intern(&mut self, key: &mut Key) {
        key.element = self.get(&key.element);
        match &mut key.scope {
            Scope::Object { ty, .. } | Scope::Type { ty } => *ty = self.get(ty),
            Scope::Element => {}
        }
    }
}

/// Reads `file` from its start, handing each whole record to `replay`; returns the length up
/// to the last whole line (a torn tail is not counted) and what was found.
fn read_records(file: &mut File, replay: &mut impl FnMut(Record)) -> io::Result<(u64, Recovery)> {
    let mut recovery = Recovery::default();
    let mut names = Names::default();
    let mut good_len = 0u64;
    let mut offset = 0u64;
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        offset += n as u64;
        let whole = line.ends_with(b"\n");
        match line.strip_suffix(b"\n").and_then(decode) {
            Some(mut record) => {
                if let Some(key) = record.key_mut() {
                    names.intern(key);
                    if !recovery.elements.contains(&*key.element) {
                        recovery.elements.insert(key.element.to_string());
                    }
                }
                recovery.records += 1;
                replay(record);
                good_len = offset;
            }
            None => {
                recovery.bad_lines += 1;
                recovery.bad_bytes += n as u64;
                recovery.damaged_elements.extend(element_of(&line));
                if whole {
                    good_len = offset;
                } // else: a torn tail, cut off by the caller
            }
        }
    }
    Ok((good_len, recovery))
}

pub struct Log {
    /// Shared with the syncer, which fsyncs it without holding the queue's lock.
    file: Arc<File>,
    path: PathBuf,
    dir: PathBuf,
    /// Length of the file up to the last record known to be whole.
    good_len: u64,
    /// Records appended since the last compaction.
    pub appended: u64,
    /// A compaction renamed its file over the log but could not open it: `file` is the old,
    /// unlinked one, and nothing may be appended to it (docs/design.md, "The swap").
    detached: bool,
}

impl Log {
    /// Opens (or creates) the log in `dir` and hands every whole record to `replay`, in order,
    /// as it is read (the log is never held in memory). A log with damaged lines is first
    /// kept aside as `queue.log.damaged-<ms>`.
    pub fn open(dir: &Path, mut replay: impl FnMut(Record)) -> io::Result<(Log, Recovery)> {
        crate::private::create_dir_all(dir)?;
        let path = dir.join("queue.log");
        let mut file = crate::private::options()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)?;
        let (good_len, mut recovery) = read_records(&mut file, &mut replay)?;
        if recovery.bad_lines > 0 {
            recovery.kept = Some(keep_aside(&path)?);
        }
        file.set_len(good_len)?;
        file.seek(SeekFrom::End(0))?;
        crate::private::sync_dir(dir)?;
        let log = Log {
            file: Arc::new(file),
            path,
            dir: dir.to_owned(),
            good_len,
            appended: 0,
            detached: false,
        };
        Ok((log, recovery))
    }

    /// Hands every whole record of the log in `dir` to `replay`, changing nothing: no lock,
    /// no file made, cut or kept aside (`omcmsync status --offline`, a package's purge). A
    /// missing log has no records.
    pub fn read(dir: &Path, mut replay: impl FnMut(Record)) -> io::Result<Recovery> {
        match File::open(dir.join("queue.log")) {
            Ok(mut file) => Ok(read_records(&mut file, &mut replay)?.1),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Recovery::default()),
            Err(e) => Err(e),
        }
    }

    /// Appends records in one write (into the kernel's cache: the syncer fsyncs). On failure
    /// the file is cut back to its last whole record, so a later append starts clean.
    pub fn append(&mut self, records: &[Record]) -> io::Result<()> {
        if self.detached {
            self.reattach()?;
        }
        let mut buf = Vec::with_capacity(records.len() * 160);
        for r in records {
            encode(r, &mut buf);
        }
        match (&*self.file).write_all(&buf) {
            Ok(()) => {
                self.good_len += buf.len() as u64;
                self.appended += records.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(self.good_len);
                let _ = (&*self.file).seek(SeekFrom::End(0));
                Err(e)
            }
        }
    }

    /// The file appends go to (until the next compaction), for an fsync outside the lock.
    pub fn file(&self) -> Arc<File> {
        self.file.clone()
    }

    /// Replaces the log with the live state, atomically: `seq` first, then one `entry` record
    /// per key. Streamed from the map in 64 KiB writes: a copy of 100,000 keys (and their
    /// encoding) held at once was the largest peak of the module's memory in an outage.
    pub fn compact<'p>(
        &mut self,
        next_seq: u64,
        entries: impl Iterator<Item = (&'p str, &'p Scope, &'p Entry)>,
    ) -> io::Result<()> {
        const CHUNK: usize = 64 << 10;
        #[cfg(feature = "fault-hooks")]
        crate::faults::compaction_started();
        let tmp = self.dir.join("queue.log.compact");
        let mut f = crate::private::create(&tmp)?;
        let mut buf = Vec::with_capacity(CHUNK + 1024);
        let mut len = 0;
        encode(&Record::Seq(next_seq), &mut buf);
        for (element, scope, entry) in entries {
            encode_entry(element, scope, entry, &mut buf);
            if buf.len() >= CHUNK {
                f.write_all(&buf)?;
                len += buf.len();
                buf.clear();
            }
        }
        f.write_all(&buf)?;
        len += buf.len();
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        // Past the rename `queue.log` is the new file: every later append goes to it or fails
        // (rsyslog keeps the batch), never to the old, unlinked one.
        self.good_len = len as u64;
        self.appended = 0;
        self.detached = true;
        self.reattach()?;
        #[cfg(feature = "fault-hooks")]
        crate::faults::compaction_step("syncdir")?;
        crate::private::sync_dir(&self.dir)
    }

    /// Opens `queue.log` again after a compaction's rename.
    fn reattach(&mut self) -> io::Result<()> {
        #[cfg(feature = "fault-hooks")]
        crate::faults::compaction_step("reopen")?;
        self.file = Arc::new(OpenOptions::new().append(true).open(&self.path)?);
        self.detached = false;
        Ok(())
    }

    /// Bytes in the log.
    pub fn bytes(&self) -> u64 {
        self.good_len
    }
}

impl Record {
    fn key_mut(&mut self) -> Option<&mut Key> {
        match self {
            Record::Seq(_) => None,
            Record::Add { change, .. } => Some(&mut change.key),
            Record::Done { key, .. } | Record::Entry { key, .. } => Some(key),
        }
    }
}

/// The element a damaged line names, if its `"el"` field can still be read.
fn element_of(line: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(line);
    let start = text.find("\"el\":\"")? + 6;
    let rest = &text[start..];
    let end = rest.find('"')?;
    let name = &rest[..end];
    crate::elements::check_name(name)
        .ok()
        .map(|()| name.to_owned())
}

/// Copies the log as it is to `queue.log.damaged-<ms>`, never over an earlier copy.
fn keep_aside(path: &Path) -> io::Result<PathBuf> {
    let ms = crate::clock::now_ms();
    let name = |n: u32| match n {
        0 => format!("queue.log.damaged-{ms}"),
        n => format!("queue.log.damaged-{ms}-{n}"),
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut n = 0;
    while dir.join(name(n)).exists() {
        n += 1;
    }
    let kept = dir.join(name(n));
    std::fs::copy(path, &kept)?;
    Ok(kept)
}

/// Appends `<crc> <json>\n`. Written field by field, straight into `out`: building a
/// `serde_json::Map` per record cost more than everything else the writer does.
fn encode(r: &Record, out: &mut Vec<u8>) {
    match r {
        Record::Seq(next) => framed(out, |o| {
            o.str("t", "seq");
            o.num("next", *next);
        }),
        Record::Add { seq, change } => framed(out, |o| {
            o.str("t", "add");
            o.num("seq", *seq);
            o.key(&change.key.element, &change.key.scope);
            o.str("verb", change.verb.as_str());
            o.opt_str("login", change.login.as_deref());
            o.opt_str("reason", change.reason.as_deref());
            o.num("at", change.at_ms);
            if change.standby {
                o.str("origin", "standby");
            }
        }),
        Record::Done { seq, key } => framed(out, |o| {
            o.str("t", "done");
            o.num("seq", *seq);
            o.key(&key.element, &key.scope);
        }),
        Record::Entry { key, entry } => encode_entry(&key.element, &key.scope, entry, out),
    }
}

/// An `entry` record from borrowed parts (compaction writes them straight from the map).
fn encode_entry(element: &str, scope: &Scope, entry: &Entry, out: &mut Vec<u8>) {
    framed(out, |o| {
        o.str("t", "entry");
        o.num("seq", entry.seq);
        o.key(element, scope);
        entry.write_summary(o);
        o.opt_str("reason", entry.reason.as_deref());
        o.num("first", entry.first_ms);
        o.num("last", entry.last_ms);
        o.num("due", entry.due_ms);
        if entry.standby {
            o.str("origin", "standby");
        }
    })
}

/// One line: the object `fields` writes, its CRC in front, a newline after.
fn framed(out: &mut Vec<u8>, fields: impl FnOnce(&mut Object)) {
    let crc_at = out.len();
    out.extend_from_slice(b"00000000 ");
    let json_at = out.len();
    let mut o = Object::new(out);
    fields(&mut o);
    o.end();
    let crc = crc32fast::hash(&out[json_at..]);
    // Eight hex digits fill the placeholder exactly.
    for (i, digit) in out[crc_at..crc_at + 8].iter_mut().enumerate() {
        *digit = b"0123456789abcdef"[(crc >> (28 - 4 * i) & 0xf) as usize];
    }
    out.push(b'\n');
}

/// A JSON object written in place. Field names are plain ASCII literals; values go through
/// serde_json's escaping.
struct Object<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Object<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Object { out, first: true }
    }

    fn name(&mut self, name: &str) {
        if !std::mem::take(&mut self.first) {
            self.out.push(b',');
        }
        self.out.push(b'"');
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn string(&mut self, value: &str) {
        // Names, ids and logins are almost always printable ASCII that needs no escape.
        if value
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
        {
            self.out.reserve(value.len() + 2);
            self.out.push(b'"');
            self.out.extend_from_slice(value.as_bytes());
            self.out.push(b'"');
        } else {
            // Writing into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *self.out, value);
        }
    }

    fn opt_str(&mut self, name: &'static str, value: Option<&str>) {
        match value {
            Some(v) => self.str(name, v),
            None => {
                self.name(name);
                self.out.extend_from_slice(b"null");
            }
        }
    }

    /// The key: its element, then the scope's fields as requests name them too.
    fn key(&mut self, element: &str, scope: &Scope) {
        self.str("el", element);
        scope.write_fields(self);
    }

    fn end(self) {
        self.out.push(b'}');
    }
}

impl Fields for Object<'_> {
    fn str(&mut self, name: &'static str, value: &str) {
        self.name(name);
        self.string(value);
    }

    fn num(&mut self, name: &'static str, value: u64) {
        self.name(name);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    fn strs<'s>(&mut self, name: &'static str, values: impl Iterator<Item = &'s str>) {
        self.name(name);
        self.out.push(b'[');
        for (i, v) in values.enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            self.string(v);
        }
        self.out.push(b']');
    }
}

fn decode(line: &[u8]) -> Option<Record> {
    let (crc, json) = (line.get(..8)?, line.get(9..)?);
    let crc = u32::from_str_radix(std::str::from_utf8(crc).ok()?, 16).ok()?;
    if line[8] != b' ' || crc32fast::hash(json) != crc {
        return None;
    }
    from_json(&serde_json::from_slice(json).ok()?)
}

fn from_json(v: &Value) -> Option<Record> {
    let n = |k: &str| v.get(k).and_then(Value::as_u64);
    let standby = v.get("origin").and_then(Value::as_str) == Some("standby");
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
                login: v.get("login").and_then(Value::as_str).map(Into::into),
                reason: s("reason"),
                at_ms: n("at")?,
                standby,
            },
        },
        "done" => Record::Done {
            seq: n("seq")?,
            key: key()?,
        },
        "entry" => {
            let strings = |k: &str| -> Option<Vec<&str>> {
                v.get(k)?.as_array()?.iter().map(Value::as_str).collect()
            };
            Record::Entry {
                key: key()?,
                entry: Entry {
                    seq: n("seq")?,
                    count: n("count")?,
                    verbs: strings("verbs")?
                        .into_iter()
                        .filter_map(Verb::parse)
                        .collect(),
                    logins: strings("logins")?.into_iter().map(Into::into).collect(),
                    reason: s("reason").map(Into::into),
                    first_ms: n("first")?,
                    last_ms: n("last")?,
                    due_ms: n("due")?,
                    in_flight: false,
                    standby,
                },
            }
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opens the log, collecting its records.
    fn open(dir: &Path) -> (Log, Vec<Record>, Recovery) {
        let mut records = Vec::new();
        let (log, recovery) = Log::open(dir, |r| records.push(r)).unwrap();
        (log, records, recovery)
    }

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
                standby: false,
            },
        }
    }

    #[test]
    fn records_survive_reopen_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, recs, _) = open(dir.path());
        assert!(recs.is_empty());
        log.append(&[add(1, "1001"), add(2, "1002")]).unwrap();
        let done = Record::Done {
            seq: 1,
            key: match add(1, "1001") {
                Record::Add { change, .. } => change.key,
                _ => unreachable!(),
            },
        };
        log.append(std::slice::from_ref(&done)).unwrap();
        drop(log);
        // A crash in the middle of a write: half a line at the end.
        let path = dir.path().join("queue.log");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"0badc0de {\"t\":\"add\",\"se").unwrap();
        drop(f);
        let (mut log, recs, recovery) = open(dir.path());
        assert_eq!(recs, [add(1, "1001"), add(2, "1002"), done]);
        assert_eq!((recovery.records, recovery.bad_lines), (3, 1));
        assert!(recovery.kept.is_some(), "the torn log is kept aside");
        // The torn tail was cut: the next append starts on its own line.
        log.append(&[add(3, "1003")]).unwrap();
        let (_, recs, recovery) = open(dir.path());
        assert_eq!(recs.len(), 4);
        assert_eq!(recovery.bad_lines, 0);
    }

    #[test]
    fn every_record_kind_round_trips_with_escapes() {
        let key = |scope| Key {
            element: "cm \"east\"\\1".into(),
            scope,
        };
        let records = [
            Record::Seq(7),
            Record::Add {
                seq: 8,
                change: Change {
                    key: key(Scope::Type {
                        ty: "station".into(),
                    }),
                    verb: Verb::Add,
                    login: Some("d\u{e9}admin\t\u{1}".into()),
                    reason: Some("add next".into()),
                    at_ms: u64::MAX,
                    standby: false,
                },
            },
            Record::Done {
                seq: 9,
                key: key(Scope::Element),
            },
            Record::Entry {
                key: key(Scope::Object {
                    ty: "hunt-group".into(),
                    id: "12\n".into(),
                }),
                entry: Entry {
                    seq: 10,
                    count: 3,
                    verbs: [Verb::Add, Verb::Remove].into(),
                    logins: ["a".into(), "b\"".into()].into_iter().collect(),
                    reason: None,
                    first_ms: 1,
                    last_ms: 2,
                    due_ms: 3,
                    in_flight: false,
                    standby: true,
                },
            },
        ];
        for r in &records {
            let mut line = Vec::new();
            encode(r, &mut line);
            assert_eq!(line.pop(), Some(b'\n'));
            let text = String::from_utf8_lossy(&line).into_owned();
            assert_eq!(decode(&line).as_ref(), Some(r), "{text}");
        }
    }

    #[test]
    fn damaged_line_is_skipped_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _, _) = open(dir.path());
        log.append(&[add(1, "1"), add(2, "2"), add(3, "3")])
            .unwrap();
        drop(log);
        let path = dir.path().join("queue.log");
        let text =
            std::fs::read_to_string(&path)
                .unwrap()
                .replacen("\"id\":\"2\"", "\"id\":\"X\"", 1);
        std::fs::write(&path, text).unwrap();
        let damaged = std::fs::read(&path).unwrap();
        let (_, recs, recovery) = open(dir.path());
        assert_eq!(recs, [add(1, "1"), add(3, "3")]);
        assert_eq!(recovery.bad_lines, 1);
        assert!(recovery.bad_bytes > 50);
        assert_eq!(recovery.damaged_elements, BTreeSet::from(["cm".to_owned()]));
        let kept = recovery.kept.unwrap();
        assert_eq!(std::fs::read(&kept).unwrap(), damaged, "kept as it was");
        // Damaged again: a second copy, the first one untouched.
        std::fs::write(&path, b"garbage\n").unwrap();
        let (_, _, again) = open(dir.path());
        assert_ne!(again.kept.as_ref().unwrap(), &kept);
        assert_eq!(std::fs::read(&kept).unwrap(), damaged);
    }

    /// A compaction whose reopen after the rename fails appends nothing to the old, unlinked
    /// file: the next append opens the live log first (or fails, and the batch is retried).
    #[test]
    fn appends_after_a_failed_swap_reach_the_live_log() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _, _) = open(dir.path());
        log.append(&[add(1, "1")]).unwrap();
        let live = super::super::Pending::new(10, 100);
        log.compact(2, live.iter()).unwrap();
        // As if the reopen had failed: the log still holds the file the rename replaced.
        let old = dir.path().join("queue.log.old");
        std::fs::hard_link(dir.path().join("queue.log"), &old).unwrap();
        log.file = Arc::new(OpenOptions::new().append(true).open(&old).unwrap());
        std::fs::remove_file(&old).unwrap();
        log.detached = true;
        log.append(&[add(2, "2")]).unwrap();
        let (_, recs, _) = open(dir.path());
        assert_eq!(recs, [Record::Seq(2), add(2, "2")]);
    }

    #[test]
    fn compaction_replaces_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _, _) = open(dir.path());
        for i in 0..100 {
            log.append(&[add(i, &i.to_string())]).unwrap();
        }
        let big = log.bytes();
        let mut live = super::super::Pending::new(10, 100);
        let Record::Add { seq, change } = add(99, "99") else {
            unreachable!()
        };
        let key = change.key.clone();
        live.merge(change, seq, u64::MAX);
        log.compact(100, live.iter()).unwrap();
        assert!(log.bytes() < big / 10);
        log.append(&[add(100, "100")]).unwrap();
        let (_, recs, _) = open(dir.path());
        let entry = live.iter().next().unwrap().2.clone();
        assert_eq!(
            recs,
            [
                Record::Seq(100),
                Record::Entry { key, entry },
                add(100, "100")
            ]
        );
    }
}
