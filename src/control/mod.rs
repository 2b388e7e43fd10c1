//! The control socket: how `omcmsync status`, `deadletter` and `resync` talk to the running
//! module without a second writer ever touching `queue.log` or the dead-letter file.
//!
//! The module listens on `state.dir/control.sock` (mode 0600: rsyslogd's user and root only)
//! and answers one JSON request line with one JSON answer line. Everything an operator asks
//! goes through the module's own queue, so a requeued or operator's request is durable, counted
//! and traced like any change. Both sides' wire format is here, in one place.

mod server;
mod wire;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

pub use self::server::{Control, Listening};
pub use self::wire::{
    Answer, DeadLetterList, ElementStatus, Failure, ProblemStatus, QueueStatus, Queued,
    ReconcileAsked, ReconcileStatus, Request, Requeued, Status,
};

/// The socket's name in `state.dir`.
pub const SOCKET: &str = "control.sock";

/// The longest request line the module reads.
const MAX_REQUEST: u64 = 64 * 1024;

pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET)
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
pub fn ask<A: DeserializeOwned>(
    state_dir: &Path,
    request: &Request,
    timeout: Duration,
) -> Result<A, AskError> {
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
    let mut line = serde_json::to_string(request).map_err(|e| AskError::Failed(e.to_string()))?;
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(failed)?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .map_err(failed)?;
    read_answer(&answer)
}

/// An answer line: `A` when it says ok, else its error.
fn read_answer<A: DeserializeOwned>(line: &str) -> Result<A, AskError> {
    let not_read = |e: serde_json::Error| AskError::Failed(format!("the module's answer: {e}"));
    let answer: Value = serde_json::from_str(line).map_err(not_read)?;
    // Every answer says ok or not, and why not (`Failure`); an ok one is `A`.
    let head = Failure::deserialize(&answer).map_err(not_read)?;
    if !head.ok {
        let why = head.error.unwrap_or_else(|| "no reason given".into());
        return Err(AskError::Failed(why));
    }
    A::deserialize(&answer).map_err(not_read)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;
    use crate::deliver::{Filter, MAX_LISTED};
    use crate::resync::Scope;

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
            let line = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), r);
        }
        let read = |v: Value| Request::deserialize(&v);
        assert!(read(json!({"op": "format-disk"})).is_err());
        assert!(read(json!({"op": "resync"})).is_err());
        assert_eq!(
            read(json!({"op": "deadletters"})).unwrap(),
            Request::DeadLetters {
                filter: Filter::default(),
                limit: MAX_LISTED
            }
        );
    }

    proptest::proptest! {
        /// Whatever arrives on the socket is an answer, never a panic.
        #[test]
        fn any_request_line_is_read_safely(line in r#"[{}\[\]":,a-z_0-9 .\\/-]{0,80}"#,
                                           op in "(status|deadletters|requeue|resync|x)",
                                           scope in "(object|type|element|planet)") {
            let _ = serde_json::from_str::<Request>(&line);
            let v = json!({"op": op, "scope": scope, "element": line, "type": 7, "since_ms": "x"});
            let _ = Request::deserialize(&v);
        }
    }

    #[test]
    fn no_module_is_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let e = ask::<Status>(dir.path(), &Request::Status, Duration::from_secs(1)).unwrap_err();
        assert!(matches!(e, AskError::NoModule(_)), "{e}");
        assert!(
            e.to_string().contains("no omcmsync module is running"),
            "{e}"
        );
    }
}
