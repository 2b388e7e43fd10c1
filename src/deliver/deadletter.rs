//! The dead-letter file: requests System Manager refused for good, one JSON object per line,
//! written here and read back here (`omcmsync deadletter list|requeue`).
//!
//! A requeue makes the records' requests durable in the queue first and only then takes the
//! records out of the file (rewritten beside it and renamed over it), so a crash between the
//! two leaves a record that is requeued again: at least once, like every change.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::classify::Verb;
use crate::problems::Problems;
use crate::resync::{now_ms, parse_rfc3339_ms, rfc3339, Change, Key, Scope, ShortText};

/// The file, appended to by the lanes and rewritten by a requeue, one at a time.
pub struct DeadLetters {
    path: PathBuf,
    lock: Mutex<()>,
    problems: Arc<Problems>,
}

/// Which records: of one element, refused at or after a time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub element: Option<String>,
    pub since_ms: Option<u64>,
}

impl Filter {
    fn matches(&self, record: &Value) -> bool {
        let element = record["element"].as_str().unwrap_or_default();
        let at = record["time"].as_str().and_then(parse_rfc3339_ms);
        self.element.as_deref().is_none_or(|e| e == element)
            && self.since_ms.is_none_or(|s| at.is_some_and(|at| at >= s))
    }
}

impl DeadLetters {
    pub fn new(path: &Path, problems: Arc<Problems>) -> Self {
        DeadLetters {
            path: path.to_owned(),
            lock: Mutex::new(()),
            problems,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one refused request: its body, Idempotency-Key, the status and the start of the
    /// answer. A write error is logged: the record is lost, the request was refused anyway.
    pub fn append(&self, element: &str, body: &Value, key: &str, status: u16, answer: &str) {
        let record = json!({
            "time": rfc3339(now_ms()), "element": element, "status": status,
            "answer": answer, "idempotency_key": key, "body": body,
        });
        let mut line = record.to_string().into_bytes();
        line.push(b'\n');
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        match crate::private::append(&self.path).and_then(|mut f| f.write_all(&line)) {
            Ok(()) => self.problems.clear("deadletter.file"),
            Err(e) => self.problems.report(
                "deadletter.file",
                &format!(
                    "{}: {e}; refused requests are not recorded until it is writable",
                    self.path.display()
                ),
            ),
        }
    }

    /// The records `filter` selects, in file order (a line that is not a record is skipped).
    pub fn list(&self, filter: &Filter) -> std::io::Result<Vec<Value>> {
        Ok(self
            .read()?
            .into_iter()
            .filter(|r| filter.matches(r))
            .collect())
    }

    /// Takes the records `filter` selects out of the file, after `requeue` made their
    /// requests durable (it returns false: nothing is taken). Returns the records taken.
    pub fn requeue(
        &self,
        filter: &Filter,
        requeue: impl FnOnce(Vec<Change>) -> bool,
    ) -> std::io::Result<Vec<Value>> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let text = read_text(&self.path)?;
        let (mut taken, mut kept) = (Vec::new(), String::new());
        for line in text.lines() {
            match serde_json::from_str::<Value>(line) {
                Ok(record) if filter.matches(&record) => taken.push(record),
                _ => {
                    kept.push_str(line);
                    kept.push('\n');
                }
            }
        }
        if taken.is_empty() {
            return Ok(taken);
        }
        let changes = taken.iter().flat_map(changes_of).collect();
        if !requeue(changes) {
            return Err(std::io::Error::other("the queue did not take the requests"));
        }
        #[cfg(feature = "fault-hooks")]
        crate::faults::hang("requeue");
        let tmp = self.path.with_extension("json.requeue");
        crate::private::write(&tmp, kept.as_bytes())?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        Ok(taken)
    }

    fn read(&self) -> std::io::Result<Vec<Value>> {
        let text = read_text(&self.path)?;
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect())
    }
}

/// The file's text; a missing file is empty.
fn read_text(path: &Path) -> std::io::Result<String> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e),
    }
}

/// The changes that ask again for what one record's requests asked: per request, its key with
/// each of its verbs and logins, received now.
pub fn changes_of(record: &Value) -> Vec<Change> {
    let Some(element) = record["body"]["element"].as_str() else {
        return Vec::new();
    };
    let element: std::sync::Arc<str> = element.into();
    let now = now_ms();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for request in record["body"]["requests"].as_array().into_iter().flatten() {
        let Some(scope) = Scope::read_json(request) else {
            continue;
        };
        let strs = |name: &str| -> Vec<&str> {
            request[name]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect()
        };
        let verbs: Vec<Verb> = strs("verbs").into_iter().filter_map(Verb::parse).collect();
        let logins = strs("logins");
        let reason = request["reason"].as_str().map(str::to_owned);
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
            logins.into_iter().map(|l| Some(l.into())).collect()
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
                        standby: false,
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

    fn body(id: &str) -> Value {
        json!({"element":"cm-east","requests":[
            {"scope":"object","type":"station","id":id,"verbs":["change","add"],"logins":["dadmin"],"count":2},
            {"scope":"type","type":"station","reason":"add next","verbs":["add"],"logins":[],"count":1}]})
    }

    #[test]
    fn records_list_and_requeue_by_element_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let d = DeadLetters::new(&dir.path().join("deadletter.json"), Arc::default());
        assert!(
            d.list(&Filter::default()).unwrap().is_empty(),
            "missing file"
        );
        d.append("cm-east", &body("1001"), "k1", 400, "bad");
        d.append(
            "cm-west",
            &json!({"element":"cm-west","requests":[]}),
            "k2",
            422,
            "x",
        );
        let all = d.list(&Filter::default()).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0]["status"], 400);
        let east = Filter {
            element: Some("cm-east".into()),
            since_ms: None,
        };
        let later = Filter {
            element: None,
            since_ms: Some(now_ms() + 60_000),
        };
        assert!(d.list(&later).unwrap().is_empty());
        // The queue refuses: nothing is taken.
        assert!(d.requeue(&east, |_| false).is_err());
        assert_eq!(d.list(&Filter::default()).unwrap().len(), 2);
        let mut queued = Vec::new();
        let taken = d
            .requeue(&east, |c| {
                queued = c;
                true
            })
            .unwrap();
        assert_eq!(taken.len(), 1);
        let left = d.list(&Filter::default()).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0]["element"], "cm-west");
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
    fn anything_in_the_file_is_skipped_not_a_panic() {
        for junk in [
            json!(null),
            json!({"body": 7}),
            json!({"body":{"element":"e","requests":[{"scope":"planet"}, 3]}}),
        ] {
            assert!(changes_of(&junk).is_empty());
        }
    }
}
