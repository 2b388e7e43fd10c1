//! `smgr.transport="command"`: a resync request handed to the site's program instead of
//! POSTed (docs/smgr-api.md). The body is the same JSON on standard input; the element, the
//! Idempotency-Key and the attempt are in the environment; the exit status is the answer.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{Delivery, Outcome, Transport};
use crate::program::{self, ProcessGroups, Program, Ran};
use crate::text::one_line;

/// EX_TEMPFAIL (sysexits.h): try again later.
pub const RETRY_EXIT: u32 = 75;

/// `smgr.transport="command"`: the site's program, run once per request.
pub struct Command {
    pub program: PathBuf,
    /// `smgr.url`, for a program that posts somewhere under it.
    pub smgr_url: String,
    pub timeout: Duration,
    /// Its runs, killed at stop.
    pub programs: Arc<ProcessGroups>,
}

impl Transport for Command {
    fn deliver(&self, d: &Delivery) -> Outcome {
        let env = Env {
            element: d.element,
            idempotency_key: d.idempotency_key,
            attempt: d.attempt,
            smgr_url: &self.smgr_url,
        };
        let body = d.body.as_bytes();
        deliver(&self.program, body, &env, self.timeout, &self.programs)
    }

    fn target(&self, _element: &str) -> String {
        format!("smgr.command {}", self.program.display())
    }

    fn refusal(&self, status: u16) -> String {
        format!("smgr.command refused a request (exit {status})")
    }
}

/// What the program is told besides the body.
struct Env<'a> {
    pub element: &'a str,
    pub idempotency_key: &'a str,
    pub attempt: u32,
    /// `smgr.url`, for a program that posts somewhere under it.
    pub smgr_url: &'a str,
}

/// Runs `program` for one request, bounded by `timeout`: 0 done, 75 retried, 126/127 (cannot
/// run), a signal or the timeout retried (the fault is the site's, not the request's), any
/// other exit refused for good with its standard error.
fn deliver(
    program: &Path,
    body: &[u8],
    d: &Env,
    timeout: Duration,
    groups: &ProcessGroups,
) -> Outcome {
    let path = program.to_string_lossy();
    let attempt = d.attempt.to_string();
    let ran = program::run(&Program {
        argv: &[&path],
        input: Some(body),
        env: &[
            ("OMCMSYNC_ELEMENT", d.element),
            ("OMCMSYNC_IDEMPOTENCY_KEY", d.idempotency_key),
            ("OMCMSYNC_ATTEMPT", &attempt),
            ("OMCMSYNC_SMGR_URL", d.smgr_url),
        ],
        limit: timeout,
        groups,
    });
    let retry = |why: String| Outcome::Retry { why, after: None };
    match (ran.failure("smgr.command", "smgr.timeout.ms", timeout), ran) {
        (Some(why), _) => retry(why),
        (None, Ran::Exited { code: 0, .. }) => Outcome::Done,
        (None, Ran::Exited { code, stderr }) if code == RETRY_EXIT => {
            retry(format!("smgr.command exited {code}: {}", one_line(&stderr)))
        }
        (None, Ran::Exited { code, stderr }) => Outcome::Permanent {
            status: code as u16,
            body: stderr,
        },
        // `failure` says every other way a run ends.
        (None, _) => retry("smgr.command gave no answer".into()),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn program(dir: &Path, script: &str) -> std::path::PathBuf {
        let p = dir.join("deliver");
        std::fs::write(&p, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    fn run(script: &str, timeout_ms: u64) -> (Outcome, String) {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("seen");
        let script = script.replace("OUT", &out.display().to_string());
        let d = Env {
            element: "cm-east",
            idempotency_key: "omcmsync-0123",
            attempt: 3,
            smgr_url: "https://smgr.example.net",
        };
        let o = deliver(
            &program(dir.path(), &script),
            b"{\"element\":\"cm-east\"}",
            &d,
            Duration::from_millis(timeout_ms),
            &ProcessGroups::default(),
        );
        (o, std::fs::read_to_string(&out).unwrap_or_default())
    }

    #[test]
    fn exit_statuses_are_answers() {
        let (o, seen) = run(
            "{ cat; echo \" $OMCMSYNC_ELEMENT $OMCMSYNC_IDEMPOTENCY_KEY $OMCMSYNC_ATTEMPT $OMCMSYNC_SMGR_URL\"; } > OUT",
            5000,
        );
        assert_eq!(o, Outcome::Done);
        assert_eq!(
            seen,
            "{\"element\":\"cm-east\"} cm-east omcmsync-0123 3 https://smgr.example.net\n"
        );
        let (o, _) = run("echo busy >&2; exit 75", 5000);
        assert!(
            matches!(o, Outcome::Retry { ref why, .. } if why.contains("75: busy")),
            "{o:?}"
        );
        let (o, _) = run("echo 'no such station' >&2; exit 1", 5000);
        assert_eq!(
            o,
            Outcome::Permanent {
                status: 1,
                body: "no such station\n".into()
            }
        );
        let (o, _) = run("kill -9 $$", 5000);
        assert!(
            matches!(o, Outcome::Retry { ref why, .. } if why.contains("signal 9")),
            "{o:?}"
        );
    }

    #[test]
    fn a_hung_program_is_killed_and_retried() {
        let (o, _) = run("sleep 30", 300);
        assert!(
            matches!(o, Outcome::Retry { ref why, .. } if why.contains("killed")),
            "{o:?}"
        );
    }
}
