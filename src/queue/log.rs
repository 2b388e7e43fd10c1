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

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::pending::{Entry, Logins};
use crate::classify::Verb;
use crate::resync::{Change, Key, Origin, Scope, VerbSet};

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

/// One line's JSON (the CRC in front of it: [`framed`]): what the log holds, read back owned.
/// [`encode`] writes it by hand, and the tests check that its bytes are this type's
/// serialization of the same record (borrowed: [`Line::of`]). Byte for byte what 0.1.0 wrote
/// (`testdata/queue-0.1.0.log`): a log outlives the release that wrote it.
#[derive(Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "lowercase")]
enum Line<'a> {
    Seq {
        next: u64,
    },
    Add {
        seq: u64,
        el: Cow<'a, str>,
        #[serde(flatten)]
        scope: Cow<'a, Scope>,
        verb: Verb,
        login: Option<Cow<'a, str>>,
        reason: Option<Cow<'a, str>>,
        at: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        origin: Option<Cow<'a, str>>,
    },
    Done {
        seq: u64,
        el: Cow<'a, str>,
        #[serde(flatten)]
        scope: Cow<'a, Scope>,
    },
    Entry {
        seq: u64,
        el: Cow<'a, str>,
        #[serde(flatten)]
        scope: Cow<'a, Scope>,
        verbs: VerbSet,
        logins: Cow<'a, Logins>,
        count: u64,
        reason: Option<Cow<'a, str>>,
        first: u64,
        last: u64,
        due: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        origin: Option<Cow<'a, str>>,
    },
}

/// `origin` as records hold it: absent for a change heard on the active node.
#[cfg(test)]
fn origin(origin: Origin) -> Option<Cow<'static, str>> {
    origin.name().map(Cow::Borrowed)
}

#[cfg(test)]
impl<'a> Line<'a> {
    fn of(record: &'a Record) -> Line<'a> {
        match record {
            Record::Seq(next) => Line::Seq { next: *next },
            Record::Add { seq, change } => Line::Add {
                seq: *seq,
                el: Cow::Borrowed(&change.key.element),
                scope: Cow::Borrowed(&change.key.scope),
                verb: change.verb,
                login: change.login.as_deref().map(Cow::Borrowed),
                reason: change.reason.as_deref().map(Cow::Borrowed),
                at: change.at_ms,
                origin: origin(change.origin),
            },
            Record::Done { seq, key } => Line::Done {
                seq: *seq,
                el: Cow::Borrowed(&key.element),
                scope: Cow::Borrowed(&key.scope),
            },
            Record::Entry { key, entry } => Line::entry(&key.element, &key.scope, entry),
        }
    }

    fn entry(element: &'a str, scope: &'a Scope, entry: &'a Entry) -> Line<'a> {
        Line::Entry {
            seq: entry.seq,
            el: Cow::Borrowed(element),
            scope: Cow::Borrowed(scope),
            verbs: entry.verbs,
            logins: Cow::Borrowed(&entry.logins),
            count: entry.count,
            reason: entry.reason.as_deref().map(Cow::Borrowed),
            first: entry.first_ms,
            last: entry.last_ms,
            due: entry.due_ms,
            origin: origin(entry.origin),
        }
    }
}

impl Line<'_> {
    fn into_record(self) -> Record {
        match self {
            Line::Seq { next } => Record::Seq(next),
            Line::Add {
                seq,
                el,
                scope,
                verb,
                login,
                reason,
                at,
                origin,
            } => Record::Add {
                seq,
                change: Change {
                    key: key(el, scope),
                    verb,
                    login: login.map(|l| l.as_ref().into()),
                    reason: reason.map(Cow::into_owned),
                    at_ms: at,
                    origin: Origin::from_name(origin.as_deref()),
                },
            },
            Line::Done { seq, el, scope } => Record::Done {
                seq,
                key: key(el, scope),
            },
            Line::Entry {
                seq,
                el,
                scope,
                verbs,
                logins,
                count,
                reason,
                first,
                last,
                due,
                origin,
            } => Record::Entry {
                key: key(el, scope),
                entry: Entry {
                    seq,
                    count,
                    verbs,
                    logins: logins.into_owned(),
                    reason: reason.map(|r| r.as_ref().into()),
                    first_ms: first,
                    last_ms: last,
                    due_ms: due,
                    in_flight: false,
                    origin: Origin::from_name(origin.as_deref()),
                },
            },
        }
    }
}

fn key(el: Cow<str>, scope: Cow<Scope>) -> Key {
    Key {
        element: Arc::from(el.as_ref()),
        scope: scope.into_owned(),
    }
}

/// Appends `<crc> <json>\n`: [`Line`]'s JSON, written field by field straight into `out`.
/// `serde_json::to_writer` on a `Line` writes the same bytes (the tests check it on every kind
/// of record and on arbitrary strings) but costs 1.7 times the instructions: it scans every
/// field name for escapes, where this writer knows its names are plain, and that was a tenth
/// of the pipeline's cost when every line is a command (docs/design.md, "Wire formats").
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
            o.origin(change.origin);
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
        o.strs("verbs", entry.verbs.iter().map(Verb::as_str));
        o.strs("logins", entry.logins.iter().map(|l| l.as_str()));
        o.num("count", entry.count);
        o.opt_str("reason", entry.reason.as_deref());
        o.num("first", entry.first_ms);
        o.num("last", entry.last_ms);
        o.num("due", entry.due_ms);
        o.origin(entry.origin);
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
/// serde_json's escaping unless they are plain printable ASCII.
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

    fn opt_str(&mut self, name: &'static str, value: Option<&str>) {
        match value {
            Some(v) => self.str(name, v),
            None => {
                self.name(name);
                self.out.extend_from_slice(b"null");
            }
        }
    }

    /// The key: its element, then the scope's fields as [`Scope`]'s serde form names them.
    fn key(&mut self, element: &str, scope: &Scope) {
        self.str("el", element);
        match scope {
            Scope::Object { ty, id } => {
                self.str("scope", "object");
                self.str("type", ty);
                self.str("id", id);
            }
            Scope::Type { ty } => {
                self.str("scope", "type");
                self.str("type", ty);
            }
            Scope::Element => self.str("scope", "element"),
        }
    }

    fn origin(&mut self, origin: Origin) {
        if let Some(name) = origin.name() {
            self.str("origin", name);
        }
    }

    fn end(self) {
        self.out.push(b'}');
    }
}

fn decode(line: &[u8]) -> Option<Record> {
    let (crc, json) = (line.get(..8)?, line.get(9..)?);
    let crc = u32::from_str_radix(std::str::from_utf8(crc).ok()?, 16).ok()?;
    if line[8] != b' ' || crc32fast::hash(json) != crc {
        return None;
    }
    Some(serde_json::from_slice::<Line>(json).ok()?.into_record())
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
                origin: Origin::Heard,
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
                    origin: Origin::Heard,
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
                    origin: Origin::Standby,
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
    /// What `testdata/queue-0.1.0.log` holds: every record kind, escapes, no login, standby.
    fn fixture_records() -> Vec<Record> {
        let key = |element: &str, scope: Scope| Key {
            element: element.into(),
            scope,
        };
        let station = |id: &str| Scope::Object {
            ty: "station".into(),
            id: id.into(),
        };
        let entry = |seq, verbs: &[Verb], logins: &[&str], reason: Option<&str>, standby| Entry {
            seq,
            count: 3,
            verbs: verbs.iter().copied().collect(),
            logins: logins.iter().map(|&l| l.into()).collect(),
            reason: reason.map(Into::into),
            first_ms: 1_764_065_702_123,
            last_ms: 1_764_065_762_456,
            due_ms: 1_764_065_765_000,
            in_flight: false,
            origin: if standby {
                Origin::Standby
            } else {
                Origin::Heard
            },
        };
        let add =
            |seq, k: Key, verb, login: Option<&str>, reason: Option<&str>, standby| Record::Add {
                seq,
                change: Change {
                    key: k,
                    verb,
                    login: login.map(Into::into),
                    reason: reason.map(Into::into),
                    at_ms: 1_764_065_702_123 + seq,
                    origin: if standby {
                        Origin::Standby
                    } else {
                        Origin::Heard
                    },
                },
            };
        vec![
            Record::Seq(17),
            entry_rec(
                key("cm-east", station("1001")),
                entry(
                    3,
                    &[Verb::Add, Verb::Change],
                    &["dadmin", "init"],
                    None,
                    false,
                ),
            ),
            entry_rec(
                key(
                    "cm-east",
                    Scope::Type {
                        ty: "hunt-group".into(),
                    },
                ),
                entry(4, &[Verb::Add], &[], Some("add next"), true),
            ),
            entry_rec(
                key("cm-west", Scope::Element),
                entry(
                    5,
                    &[Verb::Change],
                    &["craft"],
                    Some("system-parameters \"x\" \\ é"),
                    false,
                ),
            ),
            add(
                18,
                key("cm-east", station("1002")),
                Verb::Change,
                Some("dadmin"),
                None,
                false,
            ),
            add(
                19,
                key("cm-east", station("ü\t\"2\\")),
                Verb::Remove,
                None,
                None,
                true,
            ),
            add(
                20,
                key(
                    "cm-west",
                    Scope::Type {
                        ty: "agent-loginid".into(),
                    },
                ),
                Verb::Add,
                Some("x\u{1}y"),
                Some("add next"),
                false,
            ),
            add(
                21,
                key("cm-west", Scope::Element),
                Verb::Change,
                None,
                Some("operator resync"),
                false,
            ),
            Record::Done {
                seq: 18,
                key: key("cm-east", station("1002")),
            },
            Record::Done {
                seq: 21,
                key: key("cm-west", Scope::Element),
            },
        ]
    }

    fn entry_rec(key: Key, entry: Entry) -> Record {
        Record::Entry { key, entry }
    }

    /// A log written by 0.1.0 reads back as the records it was written from, and the same
    /// records are written byte for byte as 0.1.0 wrote them.
    #[test]
    fn a_log_of_0_1_0_reads_and_writes_the_same() {
        let fixture = include_bytes!("testdata/queue-0.1.0.log");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("queue.log"), fixture).unwrap();
        let (_, records, recovery) = open(dir.path());
        assert_eq!((recovery.records, recovery.bad_lines), (10, 0));
        assert_eq!(records, fixture_records());
        let mut written = Vec::new();
        for r in &records {
            encode(r, &mut written);
        }
        assert_eq!(
            String::from_utf8_lossy(&written),
            String::from_utf8_lossy(fixture)
        );
    }

    /// Any string a record can hold: plain ids, quotes, backslashes, controls, DEL, non-ASCII.
    fn text() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::string::string_regex("[ -~\u{0}-\u{1f}\u{7f}é€😀]{0,12}").unwrap()
    }

    fn any_key() -> impl proptest::strategy::Strategy<Value = Key> {
        use proptest::prelude::*;
        let scope = prop_oneof![
            (text(), text()).prop_map(|(ty, id)| Scope::Object {
                ty: ty.into(),
                id: id.into()
            }),
            text().prop_map(|ty| Scope::Type { ty: ty.into() }),
            Just(Scope::Element),
        ];
        (text(), scope).prop_map(|(el, scope)| Key {
            element: el.into(),
            scope,
        })
    }

    fn any_origin(n: u8) -> Origin {
        [Origin::Reconcile, Origin::Heard, Origin::Standby][usize::from(n % 3)]
    }

    fn any_add() -> impl proptest::strategy::Strategy<Value = Record> {
        use proptest::prelude::*;
        let verb = proptest::sample::select(Verb::ALL.to_vec());
        let (login, reason) = (proptest::option::of(text()), proptest::option::of(text()));
        let times = any::<(u64, u64, u8)>();
        (any_key(), verb, login, reason, times).prop_map(
            |(key, verb, login, reason, (seq, at_ms, origin))| Record::Add {
                seq,
                change: Change {
                    key,
                    verb,
                    login: login.map(Into::into),
                    reason,
                    at_ms,
                    origin: any_origin(origin),
                },
            },
        )
    }

    fn any_entry() -> impl proptest::strategy::Strategy<Value = Record> {
        use proptest::prelude::*;
        let verbs = proptest::collection::vec(proptest::sample::select(Verb::ALL.to_vec()), 0..3);
        let logins = proptest::collection::vec(text(), 0..3);
        let numbers = any::<(u64, u64, u64, u64, u64, u8)>();
        let reason = proptest::option::of(text());
        (any_key(), verbs, logins, reason, numbers).prop_map(
            |(key, verbs, logins, reason, (seq, count, first_ms, last_ms, due_ms, origin))| {
                Record::Entry {
                    key,
                    entry: Entry {
                        seq,
                        count,
                        verbs: verbs.into_iter().collect(),
                        logins: logins.into_iter().map(Into::into).collect(),
                        reason: reason.map(Into::into),
                        first_ms,
                        last_ms,
                        due_ms,
                        in_flight: false,
                        origin: any_origin(origin),
                    },
                }
            },
        )
    }

    fn any_record() -> impl proptest::strategy::Strategy<Value = Record> {
        use proptest::prelude::*;
        let done = (any::<u64>(), any_key()).prop_map(|(seq, key)| Record::Done { seq, key });
        prop_oneof![
            any::<u64>().prop_map(Record::Seq),
            any_add(),
            done,
            any_entry()
        ]
    }

    proptest::proptest! {
        /// The hand-made writer writes exactly `Line`'s serialization, and it reads back.
        #[test]
        fn the_writer_writes_what_line_declares(record in any_record()) {
            let mut written = Vec::new();
            encode(&record, &mut written);
            let json = serde_json::to_vec(&Line::of(&record)).unwrap();
            proptest::prop_assert_eq!(String::from_utf8_lossy(&written[9..written.len() - 1]), String::from_utf8_lossy(&json));
            proptest::prop_assert_eq!(decode(&written[..written.len() - 1]), Some(record));
        }
    }
}
