//! The control socket: how `omcmsync status`, `deadletter` and `resync` talk to the running
//! module without a second writer ever touching `queue.log` or the dead-letter file.
//!
//! The module listens on `state.dir/control.sock` (mode 0600: rsyslogd's user and root only)
//! and answers one JSON request line with one JSON answer line. Everything an operator asks
//! goes through the module's own queue, so a requeued or operator's request is durable, counted
//! and traced like any change. Both sides' wire format is here, in one place.

mod server;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

pub use self::server::Control;
use crate::deliver::{Filter, MAX_LISTED};
use crate::resync::Scope;

/// The socket's name in `state.dir`.
pub const SOCKET: &str = "control.sock";

/// The longest request line the module reads.
const MAX_REQUEST: u64 = 64 * 1024;

pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET)
}

/// What an operator asks the module.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    Status,
    /// The newest `limit` records the filter selects (at most [`crate::deliver::MAX_LISTED`]).
    DeadLetters {
        filter: Filter,
        limit: usize,
    },
    Requeue {
        filter: Filter,
    },
    Resync {
        element: String,
        scope: Scope,
    },
}

impl Request {
    pub fn to_json(&self) -> Value {
        match self {
            Request::Status => json!({"op": "status"}),
            Request::DeadLetters { filter, limit } => json!({
                "op": "deadletters", "limit": limit,
                "element": filter.element, "since_ms": filter.since_ms,
            }),
            Request::Requeue { filter } => json!({
                "op": "requeue", "element": filter.element, "since_ms": filter.since_ms,
            }),
            Request::Resync { element, scope } => {
                let mut m = serde_json::Map::new();
                scope.write_fields(&mut m);
                m.insert("op".into(), "resync".into());
                m.insert("element".into(), element.as_str().into());
                Value::Object(m)
            }
        }
    }

    pub fn from_json(v: &Value) -> Result<Request, String> {
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let filter = || Filter {
            element: text("element"),
            since_ms: v.get("since_ms").and_then(Value::as_u64),
        };
        match v.get("op").and_then(Value::as_str) {
            Some("status") => Ok(Request::Status),
            Some("deadletters") => Ok(Request::DeadLetters {
                filter: filter(),
                limit: v
                    .get("limit")
                    .and_then(Value::as_u64)
                    .map_or(MAX_LISTED, |n| (n as usize).min(MAX_LISTED)),
            }),
            Some("requeue") => Ok(Request::Requeue { filter: filter() }),
            Some("resync") => Ok(Request::Resync {
                element: text("element").ok_or("resync without an element")?,
                scope: Scope::read_json(v).ok_or("resync without a valid scope")?,
            }),
            _ => Err(format!("unknown request: {v}")),
        }
    }
}

/// Why a question got no answer.
#[derive(Debug)]
pub enum AskError {
    /// Nothing listens at the socket: no module runs with this state directory.
    NoModule(String),
    /// The module answered with an error, or the exchange failed.
    Failed(String),
}

impl std::fmt::Display for AskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AskError::NoModule(s) | AskError::Failed(s) => f.write_str(s),
        }
    }
}

/// Asks the module that runs with `state_dir`; its answer, or why there is none. `timeout`
/// bounds each read and write (a requeue of many records takes as long as their fsync).
pub fn ask(state_dir: &Path, request: &Request, timeout: Duration) -> Result<Value, AskError> {
    let path = socket_path(state_dir);
    let mut stream = UnixStream::connect(&path).map_err(|e| {
        use std::io::ErrorKind::*;
        let shown = path.display();
        match e.kind() {
            NotFound | ConnectionRefused => AskError::NoModule(format!(
                "{shown}: no omcmsync module is running with this state.dir ({e})"
            )),
            PermissionDenied => AskError::Failed(format!(
                "{shown}: permission denied: run as rsyslogd's user or root"
            )),
            _ => AskError::Failed(format!("{shown}: cannot connect ({e})")),
        }
    })?;
    let failed = |e: std::io::Error| AskError::Failed(format!("{}: {e}", path.display()));
    stream.set_read_timeout(Some(timeout)).map_err(failed)?;
    stream.set_write_timeout(Some(timeout)).map_err(failed)?;
    let mut line = request.to_json().to_string();
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(failed)?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(failed)?;
    let answer: Value = serde_json::from_str(&answer)
        .map_err(|e| AskError::Failed(format!("the module's answer is not JSON: {e}")))?;
    if answer["ok"] == true {
        Ok(answer)
    } else {
        let error = answer["error"].as_str().unwrap_or("no reason given");
        Err(AskError::Failed(error.to_owned()))
    }
}

/// The answer to a request that failed.
fn error_answer(why: &str) -> Value {
    json!({"ok": false, "error": why})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        for r in [
            Request::Status,
            Request::Requeue {
                filter: Filter {
                    element: Some("cm-east".into()),
                    since_ms: Some(5),
                },
            },
            Request::DeadLetters {
                filter: Filter::default(),
                limit: 7,
            },
            Request::Resync {
                element: "cm-east".into(),
                scope: Scope::Object {
                    ty: "station".into(),
                    id: "1001".into(),
                },
            },
            Request::Resync {
                element: "cm-east".into(),
                scope: Scope::Element,
            },
        ] {
            assert_eq!(Request::from_json(&r.to_json()).unwrap(), r);
        }
        assert!(Request::from_json(&json!({"op": "format-disk"})).is_err());
        assert!(Request::from_json(&json!({"op": "resync"})).is_err());
    }

    proptest::proptest! {
        /// Whatever arrives on the socket is an answer, never a panic.
        #[test]
        fn any_request_line_is_read_safely(line in r#"[{}\[\]":,a-z_0-9 .\\/-]{0,80}"#,
                                           op in "(status|deadletters|requeue|resync|x)",
                                           scope in "(object|type|element|planet)") {
            let _ = serde_json::from_str::<Value>(&line).map(|v| Request::from_json(&v));
            let v = json!({"op": op, "scope": scope, "element": line, "type": 7, "since_ms": "x"});
            let _ = Request::from_json(&v);
        }
    }

    #[test]
    fn no_module_is_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let e = ask(dir.path(), &Request::Status, Duration::from_secs(1)).unwrap_err();
        assert!(matches!(e, AskError::NoModule(_)), "{e}");
        assert!(
            e.to_string().contains("no omcmsync module is running"),
            "{e}"
        );
    }
}
