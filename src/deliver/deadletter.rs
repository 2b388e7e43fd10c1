//! The dead-letter store: requests System Manager refused for good, one [`Record`] a line, in
//! `deadletter.file` and, once that holds half of `deadletter.max.mb`, in `deadletter.file.1`
//! before it (the older half: what was there is shed, counted and logged). Both halves are
//! read as one store a line at a time: a listing keeps only the newest `limit` records, a count
//! per element reads only what was appended since the last count, so a store of hundreds of
//! megabytes never sits in rsyslogd's memory.
//!
//! A requeue makes the records' requests durable in the queue first and only then takes the
//! records out of the store (each half rewritten beside it and renamed over it), so a crash
//! between the two leaves a record that is requeued again: at least once, like every change.

use parking_lot::Mutex;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::classify::Verb;
use crate::clock::{now_ms, parse_rfc3339_ms, rfc3339};
use crate::counters::Counters;
use crate::deliver::{ResyncBody, ResyncItem};
use crate::logging;
use crate::problems::Problems;
use crate::resync::{Change, Key, Origin, ShortText};

/// A line longer than this is not a record (ours are a few kilobytes): skipped, never held.
const MAX_RECORD: u64 = 4 << 20;

/// The most records one listing returns.
pub const MAX_LISTED: usize = 1000;

/// One refused request: what the store holds a line of, written by [`DeadLetters::append`]
/// and read back by everything else here.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Record {
    /// When it was refused (RFC 3339, UTC).
    pub time: String,
    pub element: String,
    /// System Manager's HTTP status.
    pub status: u16,
    /// The start of System Manager's answer.
    pub answer: String,
    pub idempotency_key: String,
    /// The request body as it was posted.
    pub body: Value,
}

/// What a count or a listing needs of a record; the rest of the line is skipped unread.
#[derive(Deserialize)]
struct Head {
    element: String,
    #[serde(default)]
    time: String,
}

/// Which records: of one element, refused at or after a time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    pub element: Option<String>,
    pub since_ms: Option<u64>,
}

impl Filter {
    fn matches(&self, element: &str, time: &str) -> bool {
        self.element.as_deref().is_none_or(|e| e == element)
            && self
                .since_ms
                .is_none_or(|s| parse_rfc3339_ms(time).is_some_and(|at| at >= s))
    }
}

/// The newest records a filter selects, as the store holds them (JSON text: held and passed
/// on as text, they cost their size and no more), and how many it selects in all.
#[derive(Debug, Default)]
pub struct Listing {
    pub records: Vec<String>,
    pub matched: u64,
}

/// What a requeue took out of the store.
#[derive(Debug, Default)]
pub struct Requeued {
    pub records: u64,
    /// Element and Idempotency-Key of the first [`MAX_LISTED`] records (for the trace).
    pub first: Vec<(String, String)>,
}

/// A file's inode, length and modification time (seconds, nanoseconds).
type FileId = (u64, u64, i64, i64);

/// Records per element, and the file state they were counted from.
#[derive(Default)]
struct Tally {
    /// [`DeadLetters::generation`] when counted: a new half or a requeue since means a
    /// recount (a new file may even reuse a freed inode number).
    generation: u64,
    /// The older half: its identity and counts.
    older: Option<(FileId, BTreeMap<String, u64>)>,
    /// The current half: its inode, how far it was read, and counts.
    current: Option<(u64, u64, BTreeMap<String, u64>)>,
}

/// The store, appended to by the lanes and rewritten by a requeue, one at a time.
pub struct DeadLetters {
    path: PathBuf,
    older: PathBuf,
    /// The bytes each half may hold.
    half: u64,
    lock: Mutex<()>,
    /// One listing at a time: each holds up to [`MAX_LISTED`] records, and operators' commands
    /// may come in dozens at once.
    listing: Mutex<()>,
    /// Counts the times a half was replaced by this process (a new half, a requeue).
    generation: AtomicU64,
    tally: Mutex<Tally>,
    problems: Arc<Problems>,
    counters: Arc<Counters>,
}

impl DeadLetters {
    /// The store at `path` (and `path.1`), bounded to `max_bytes` in all.
    pub fn new(
        path: &Path,
        max_bytes: u64,
        problems: Arc<Problems>,
        counters: Arc<Counters>,
    ) -> Self {
        let mut older = path.as_os_str().to_owned();
        older.push(".1");
        DeadLetters {
            path: path.to_owned(),
            older: older.into(),
            half: (max_bytes / 2).max(1),
            lock: Mutex::new(()),
            listing: Mutex::new(()),
            generation: AtomicU64::new(0),
            tally: Mutex::new(Tally::default()),
            problems,
            counters,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records one refused request: its body, Idempotency-Key, the status and the start of the
    /// answer. An error is reported (the caller keeps the request queued, to be refused and
    /// recorded again later) and returned.
    pub fn append(
        &self,
        element: &str,
        body: &ResyncBody,
        key: &str,
        status: u16,
        answer: &str,
    ) -> std::io::Result<()> {
        let body = serde_json::to_value(body).map_err(std::io::Error::other)?;
        let record = Record {
            time: rfc3339(now_ms()),
            element: element.to_owned(),
            status,
            answer: answer.to_owned(),
            idempotency_key: key.to_owned(),
            body,
        };
        let mut line = serde_json::to_vec(&record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let _guard = self.lock.lock();
        let written = self
            .make_room(line.len() as u64)
            .and_then(|()| crate::private::append(&self.path)?.write_all(&line));
        match &written {
            Ok(()) => self.problems.clear("deadletter.file"),
            Err(e) => self.problems.report(
                "deadletter.file",
                &format!(
                    "{}: {e}; refused requests stay queued until they can be recorded",
                    self.path.display()
                ),
            ),
        }
        written
    }

    /// Before `more` bytes are appended: when the current half would pass its bound, it
    /// becomes the older half and the records the older half held are shed.
    /// Makes the store's renames durable, as every atomic replacement's.
    fn sync_dir(&self) -> std::io::Result<()> {
        crate::private::sync_parent(&self.path)
    }

    fn make_room(&self, more: u64) -> std::io::Result<()> {
        let len = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        if len == 0 || len + more <= self.half {
            return Ok(());
        }
        let mut shed = 0u64;
        each_line(&self.older, 0, |_| shed += 1)?;
        let renamed = std::fs::rename(&self.path, &self.older);
        // After the files changed: a count that began before sees the next generation.
        self.generation.fetch_add(1, Ordering::SeqCst);
        renamed?;
        self.sync_dir()?;
        if shed > 0 {
            self.counters
                .delivery
                .deadletters_shed
                .fetch_add(shed, Ordering::Relaxed);
            logging::warning(&format!(
                "{}: {shed} older dead-lettered request(s) dropped to keep the store within \
                 deadletter.max.mb ({} MiB in {} and {}); requeue or list them sooner, or \
                 raise the bound",
                self.path.display(),
                (self.half * 2) >> 20,
                self.older.display(),
                self.path.display()
            ));
        }
        Ok(())
    }

    /// The newest `limit` records `filter` selects (oldest first), and how many it selects.
    pub fn list(&self, filter: &Filter, limit: usize) -> std::io::Result<Listing> {
        let _one = self.listing.lock();
        let mut listing = Listing::default();
        let mut newest = VecDeque::new();
        for half in [&self.older, &self.path] {
            each_line(half, 0, |line| {
                let Ok(head) = serde_json::from_slice::<Head>(line) else {
                    return;
                };
                if filter.matches(&head.element, &head.time) {
                    listing.matched += 1;
                    newest.push_back(String::from_utf8_lossy(line).into_owned());
                    if newest.len() > limit {
                        newest.pop_front();
                    }
                }
            })?;
        }
        listing.records = newest.into();
        Ok(listing)
    }

    /// Records per element. Reads only what was appended since the last count, unless a half
    /// was replaced (a new half, a requeue) since.
    pub fn counts(&self) -> std::io::Result<BTreeMap<String, u64>> {
        let mut tally = self.tally.lock();
        let generation = self.generation.load(Ordering::SeqCst);
        if tally.generation != generation {
            *tally = Tally {
                generation,
                ..Tally::default()
            };
        }
        let older_id = std::fs::metadata(&self.older)
            .ok()
            .map(|m| (m.ino(), m.len(), m.mtime(), m.mtime_nsec()));
        if tally.older.as_ref().map(|(id, _)| *id) != older_id {
            tally.older = match older_id {
                Some(id) => Some((id, count(&self.older, 0, BTreeMap::new())?.1)),
                None => None,
            };
        }
        let current = std::fs::metadata(&self.path).ok();
        tally.current = match (tally.current.take(), current) {
            (_, None) => None,
            (Some((ino, read, counts)), Some(m)) if ino == m.ino() && m.len() >= read => {
                let (read, counts) = count(&self.path, read, counts)?;
                Some((ino, read, counts))
            }
            (_, Some(m)) => {
                let (read, counts) = count(&self.path, 0, BTreeMap::new())?;
                Some((m.ino(), read, counts))
            }
        };
        let mut all = tally
            .older
            .as_ref()
            .map(|(_, c)| c.clone())
            .unwrap_or_default();
        for (element, n) in tally.current.iter().flat_map(|(_, _, c)| c) {
            *all.entry(element.clone()).or_default() += n;
        }
        Ok(all)
    }

    /// Takes the records `filter` selects out of the store, after `requeue` made their
    /// requests durable (it returns false: nothing is taken).
    pub fn requeue(
        &self,
        filter: &Filter,
        requeue: impl FnOnce(Vec<Change>) -> bool,
    ) -> std::io::Result<Requeued> {
        let _guard = self.lock.lock();
        let mut taking = Taking {
            filter,
            taken: Requeued::default(),
            seen: HashSet::new(),
            changes: Vec::new(),
        };
        let mut rewritten = Vec::new();
        for half in [&self.older, &self.path] {
            if half.exists() {
                rewritten.push((taking.split(half)?, half.clone()));
            }
        }
        let Taking { taken, changes, .. } = taking;
        if taken.records == 0 || !requeue(changes) {
            for (tmp, _) in &rewritten {
                let _ = std::fs::remove_file(tmp);
            }
            return match taken.records {
                0 => Ok(taken),
                _ => Err(std::io::Error::other("the queue did not take the requests")),
            };
        }
        #[cfg(feature = "fault-hooks")]
        crate::faults::hang("requeue");
        let renamed = rewritten
            .into_iter()
            .try_for_each(|(tmp, half)| std::fs::rename(tmp, half));
        self.generation.fetch_add(1, Ordering::SeqCst);
        renamed?;
        self.sync_dir()?;
        Ok(taken)
    }
}

/// A requeue going through the store: the records it takes, and their changes.
struct Taking<'f> {
    filter: &'f Filter,
    taken: Requeued,
    seen: HashSet<(Key, Verb, Option<ShortText>)>,
    changes: Vec<Change>,
}

impl Taking<'_> {
    /// Takes the selected records of `half`, and writes the others to a file beside it,
    /// synced; returns that file (renamed over `half` once the queue has the changes).
    fn split(&mut self, half: &Path) -> std::io::Result<PathBuf> {
        let mut tmp = half.as_os_str().to_owned();
        tmp.push(".requeue");
        let tmp = PathBuf::from(tmp);
        let mut kept = BufWriter::new(crate::private::create(&tmp)?);
        let mut write_error = None;
        each_line(half, 0, |line| {
            match serde_json::from_slice::<Record>(line) {
                Ok(record) if self.filter.matches(&record.element, &record.time) => {
                    self.take(record)
                }
                _ => {
                    if let Err(e) = kept.write_all(line).and_then(|()| kept.write_all(b"\n")) {
                        write_error.get_or_insert(e);
                    }
                }
            }
        })?;
        if let Some(e) = write_error {
            return Err(e);
        }
        kept.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        Ok(tmp)
    }

    fn take(&mut self, record: Record) {
        let taken = &mut self.taken;
        taken.records += 1;
        if taken.first.len() < MAX_LISTED {
            taken
                .first
                .push((record.element.clone(), record.idempotency_key.clone()));
        }
        let seen = &mut self.seen;
        self.changes.extend(
            changes_of(&record)
                .into_iter()
                .filter(|c| seen.insert((c.key.clone(), c.verb, c.login.clone()))),
        );
    }
}

/// Calls `f` with each whole line of `path` from byte `from` (without its newline); a missing
/// file has none, a line over [`MAX_RECORD`] is skipped, a last line without its newline (an
/// append under way) is left for the next read. Returns where the whole lines end.
fn each_line(path: &Path, from: u64, mut f: impl FnMut(&[u8])) -> std::io::Result<u64> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(from),
        Err(e) => return Err(e),
    };
    file.seek(SeekFrom::Start(from))?;
    let mut reader = BufReader::with_capacity(64 << 10, file);
    let (mut at, mut line) = (from, Vec::new());
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_RECORD + 1)
            .read_until(b'\n', &mut line)? as u64;
        if line.last() == Some(&b'\n') {
            f(&line[..line.len() - 1]);
            at += n;
        } else if n > MAX_RECORD {
            // Too long to be a record: skipped to its end.
            let mut skipped = n;
            loop {
                line.clear();
                let m = (&mut reader)
                    .take(MAX_RECORD)
                    .read_until(b'\n', &mut line)? as u64;
                skipped += m;
                if m == 0 || line.last() == Some(&b'\n') {
                    break;
                }
            }
            if line.last() != Some(&b'\n') {
                return Ok(at);
            }
            at += skipped;
        } else {
            return Ok(at);
        }
    }
}

/// Adds the records per element of `path` from byte `from` to `counts`; returns where it read
/// to, and the counts.
fn count(
    path: &Path,
    from: u64,
    mut counts: BTreeMap<String, u64>,
) -> std::io::Result<(u64, BTreeMap<String, u64>)> {
    let read = each_line(path, from, |line| {
        if let Ok(head) = serde_json::from_slice::<Head>(line) {
            *counts.entry(head.element).or_default() += 1;
        }
    })?;
    Ok((read, counts))
}

/// The changes that ask again for what one record's requests asked: per request, its key with
/// each of its verbs and logins, received now.
pub fn changes_of(record: &Record) -> Vec<Change> {
    let Ok(body) = ResyncBody::<Value>::deserialize(&record.body) else {
        return Vec::new();
    };
    let element: std::sync::Arc<str> = body.element.into();
    let now = now_ms();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for request in &body.requests {
        let Ok(ResyncItem {
            scope,
            reason,
            verbs,
            logins,
            ..
        }) = ResyncItem::deserialize(request)
        else {
            continue;
        };
        let verbs: Vec<Verb> = verbs.iter().collect();
        let key = Key {
            element: element.clone(),
            scope,
        };
        let verbs = if verbs.is_empty() {
            vec![Verb::Change]
        } else {
            verbs
        };
        let logins: Vec<Option<ShortText>> = if logins.is_empty() {
            vec![None]
        } else {
            logins.into_iter().map(Some).collect()
        };
        for verb in &verbs {
            for login in &logins {
                if seen.insert((key.clone(), *verb, login.clone())) {
                    out.push(Change {
                        key: key.clone(),
                        verb: *verb,
                        login: login.clone(),
                        reason: reason.clone(),
                        at_ms: now,
                        origin: Origin::Heard,
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resync::Scope;
    use serde_json::json;

    /// A body as a reader finds one that misses fields (no times): their defaults.
    fn body(id: &str) -> ResyncBody {
        serde_json::from_value(json!({"element":"cm-east","requests":[
            {"scope":"object","type":"station","id":id,"verbs":["change","add"],"logins":["dadmin"],"count":2},
            {"scope":"type","type":"station","reason":"add next","verbs":["add"],"logins":[],"count":1}]}))
        .unwrap()
    }

    fn store(dir: &Path, max_bytes: u64) -> (DeadLetters, Arc<Counters>) {
        let counters = Arc::new(Counters::default());
        let path = dir.join("deadletter.json");
        let store = DeadLetters::new(&path, max_bytes, Arc::default(), counters.clone());
        (store, counters)
    }

    fn parse(text: &str) -> Record {
        serde_json::from_str(text).unwrap()
    }

    fn all(d: &DeadLetters) -> Listing {
        d.list(&Filter::default(), usize::MAX).unwrap()
    }

    #[test]
    fn records_list_and_requeue_by_element_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let (d, _) = store(dir.path(), 1 << 20);
        assert!(all(&d).records.is_empty(), "missing file");
        d.append("cm-east", &body("1001"), "k1", 400, "bad")
            .unwrap();
        let west = serde_json::from_value(json!({"element":"cm-west","requests":[]})).unwrap();
        d.append("cm-west", &west, "k2", 422, "x").unwrap();
        let listed = all(&d);
        assert_eq!((listed.records.len(), listed.matched), (2, 2));
        assert_eq!(parse(&listed.records[0]).status, 400);
        let east = Filter {
            element: Some("cm-east".into()),
            since_ms: None,
        };
        let later = Filter {
            element: None,
            since_ms: Some(now_ms() + 60_000),
        };
        assert_eq!(d.list(&later, 10).unwrap().matched, 0);
        // The queue refuses: nothing is taken.
        assert!(d.requeue(&east, |_| false).is_err());
        assert_eq!(all(&d).matched, 2);
        let mut queued = Vec::new();
        let taken = d
            .requeue(&east, |c| {
                queued = c;
                true
            })
            .unwrap();
        assert_eq!(taken.records, 1);
        assert_eq!(taken.first, [("cm-east".to_string(), "k1".to_string())]);
        let left = all(&d).records;
        assert_eq!(left.len(), 1);
        assert_eq!(parse(&left[0]).element, "cm-west");
        // change+add by dadmin on station 1001, and the type-level request with its reason.
        assert_eq!(queued.len(), 3, "{queued:?}");
        assert!(queued.iter().all(|c| &*c.key.element == "cm-east"));
        let ty = queued
            .iter()
            .find(|c| matches!(c.key.scope, Scope::Type { .. }))
            .unwrap();
        assert_eq!(ty.reason.as_deref(), Some("add next"));
        assert_eq!(ty.login, None);
    }

    #[test]
    fn the_store_stays_within_its_bound_and_counts_what_it_sheds() {
        let dir = tempfile::tempdir().unwrap();
        let (d, counters) = store(dir.path(), 16 << 10);
        for i in 0..400 {
            d.append(
                "cm-east",
                &body(&i.to_string()),
                &format!("k{i}"),
                400,
                "no",
            )
            .unwrap();
        }
        let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let (current, older) = (size(&d.path), size(&d.older));
        assert!(
            older > 0 && current + older <= 16 << 10,
            "{current} + {older}"
        );
        let listed = all(&d);
        let shed = counters.delivery.deadletters_shed.load(Ordering::Relaxed);
        assert!(shed > 0);
        assert_eq!(
            listed.matched + shed,
            400,
            "every record is kept or counted as shed"
        );
        // The newest are kept, in order, and the limit keeps the newest of them.
        let last = parse(&listed.records[listed.records.len() - 1]);
        assert_eq!(last.idempotency_key, "k399");
        let two = d.list(&Filter::default(), 2).unwrap();
        assert_eq!(two.matched, listed.matched);
        let keys: Vec<_> = two
            .records
            .iter()
            .map(|r| parse(r).idempotency_key)
            .collect();
        assert_eq!(keys, ["k398", "k399"]);
        assert_eq!(d.counts().unwrap()["cm-east"], listed.matched);
    }

    #[test]
    fn counts_follow_appends_rotation_and_requeue() {
        let dir = tempfile::tempdir().unwrap();
        let (d, _) = store(dir.path(), 8 << 10);
        let count = |el: &str| d.counts().unwrap().get(el).copied().unwrap_or(0);
        assert_eq!(count("cm-east"), 0);
        for i in 0..5 {
            d.append("cm-east", &body(&i.to_string()), "k", 400, "")
                .unwrap();
        }
        let empty = ResyncBody {
            element: "cm-west".into(),
            requests: Vec::new(),
        };
        d.append("cm-west", &empty, "k", 400, "").unwrap();
        assert_eq!((count("cm-east"), count("cm-west")), (5, 1));
        // Appended since the last count (read from where it stopped), and across a new half.
        for i in 0..30 {
            d.append("cm-east", &body(&i.to_string()), "k", 400, "")
                .unwrap();
        }
        let counted = d.counts().unwrap();
        let total: u64 = counted.values().sum();
        assert_eq!(total, all(&d).matched);
        let west = Filter {
            element: Some("cm-west".into()),
            since_ms: None,
        };
        let before = d.list(&west, 10).unwrap().matched;
        let taken = d.requeue(&west, |_| true).unwrap();
        assert_eq!(taken.records, before);
        assert_eq!(d.list(&west, 10).unwrap().matched, 0);
        assert_eq!(count("cm-west"), 0, "{before} {taken:?}");
        // A line being written (no newline yet) is not counted until it is whole.
        let mut f = crate::private::append(&d.path).unwrap();
        f.write_all(br#"{"time":"x","element":"cm-north""#).unwrap();
        assert_eq!(count("cm-north"), 0);
        f.write_all(br#","status":400,"answer":"","idempotency_key":"k","body":{}}"#)
            .unwrap();
        f.write_all(b"\n").unwrap();
        assert_eq!(count("cm-north"), 1);
    }

    #[test]
    fn lines_that_are_not_records_are_skipped_and_never_held_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (d, _) = store(dir.path(), 1 << 30);
        let mut junk = b"not json\n{\"element\": 7}\n".to_vec();
        junk.extend(std::iter::repeat_n(b'x', (MAX_RECORD * 2) as usize));
        junk.push(b'\n');
        std::fs::write(&d.path, &junk).unwrap();
        d.append("cm-east", &body("1"), "k", 400, "").unwrap();
        let listed = all(&d);
        assert_eq!(listed.matched, 1);
        assert_eq!(d.counts().unwrap()["cm-east"], 1);
        d.requeue(&Filter::default(), |c| !c.is_empty()).unwrap();
        // What is not a record stays, but a line too long to be one is not kept.
        let left = std::fs::read(&d.path).unwrap();
        assert_eq!(left, b"not json\n{\"element\": 7}\n");
    }

    #[test]
    fn an_unwritable_store_says_so_and_returns_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let problems = Arc::new(Problems::default());
        let path = dir.path().join("missing-dir").join("deadletter.json");
        let d = DeadLetters::new(&path, 1 << 20, problems.clone(), Arc::default());
        assert!(d.append("cm-east", &body("1"), "k", 400, "").is_err());
        assert_eq!(problems.list().len(), 1);
    }

    #[test]
    fn anything_in_the_body_is_skipped_not_a_panic() {
        for junk in [
            json!(null),
            json!(7),
            json!({"element":"e","requests":[{"scope":"planet"}, 3]}),
        ] {
            let record = Record {
                time: String::new(),
                element: "e".into(),
                status: 400,
                answer: String::new(),
                idempotency_key: String::new(),
                body: junk,
            };
            assert!(changes_of(&record).is_empty());
        }
    }
}
