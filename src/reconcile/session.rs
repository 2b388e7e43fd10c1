//! One OSSI session with an element: its access read from `reconcile.dir/<element>/`, the
//! OSSI client (`reconcile.program`) run as a bounded child ([`crate::program`]: its own
//! process group, killed at the limit and at stop), its report read back.

use std::path::{Path, PathBuf};

use crate::config::ReconcileSettings;
use crate::ossi::{CommandReply, Failure, SessionFailure, SessionReport};
use crate::program::{self, ProcessGroups, Program, Ran};

/// The commands a reconciliation sends, in this order.
pub const CLOCK: &str = "display time";
pub const HISTORY: &str = "list history";

/// How to log into one element's SAT: from its directory's files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    pub login: String,
    /// `password`, or `key` (checked in that order).
    pub secret: Secret,
    pub known_hosts: PathBuf,
    pub hosts: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Secret {
    Password(PathBuf),
    Key(PathBuf),
}

impl Access {
    /// The element's access, if it has a directory; `Some(Err)` names what its directory lacks.
    pub fn read(dir: &Path, element_hosts: &[String]) -> Option<Result<Access, String>> {
        if !dir.is_dir() {
            return None;
        }
        Some(Access::read_files(dir, element_hosts))
    }

    fn read_files(dir: &Path, element_hosts: &[String]) -> Result<Access, String> {
        let first_line = |name: &str| -> Result<String, String> {
            let path = dir.join(name);
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(text.lines().next().unwrap_or_default().trim().to_owned())
        };
        let login = first_line("login")?;
        if login.is_empty() || login.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "{}: one login name expected",
                dir.join("login").display()
            ));
        }
        let secret = match (dir.join("password"), dir.join("key")) {
            (p, _) if p.is_file() => Secret::Password(p),
            (_, k) if k.is_file() => Secret::Key(k),
            _ => return Err(format!("{}: neither password nor key", dir.display())),
        };
        let known_hosts = dir.join("known_hosts");
        if !known_hosts.is_file() {
            return Err(format!(
                "{}: missing; CM's host key is never taken on trust (omcmsync check prints the line to add)",
                known_hosts.display()
            ));
        }
        let hosts = match std::fs::read_to_string(dir.join("hosts")) {
            Ok(text) => text.split_whitespace().map(str::to_owned).collect(),
            Err(_) => element_hosts.to_vec(),
        };
        if hosts.is_empty() {
            return Err(format!("{}: no host to reach", dir.display()));
        }
        Ok(Access {
            login,
            secret,
            known_hosts,
            hosts,
        })
    }

    /// The OSSI client's arguments for `commands` (no secret on them: files only).
    pub fn argv(&self, s: &ReconcileSettings, commands: &[&str]) -> Vec<String> {
        let mut argv = vec![s.program.display().to_string()];
        for host in &self.hosts {
            argv.extend(["--host".into(), host.clone()]);
        }
        let (flag, file) = match &self.secret {
            Secret::Password(p) => ("--password-file", p),
            Secret::Key(k) => ("--key-file", k),
        };
        argv.extend([
            "--port".into(),
            s.port.to_string(),
            "--user".into(),
            self.login.clone(),
            flag.into(),
            file.display().to_string(),
            "--known-hosts".into(),
            self.known_hosts.display().to_string(),
            "--term".into(),
            s.term.into(),
            "--wait-secs".into(),
            s.wait.as_secs().max(1).to_string(),
        ]);
        for c in commands {
            argv.extend(["--command".into(), c.to_string()]);
        }
        argv
    }
}

/// The waits a whole session may take before it is killed.
const WAITS_PER_SESSION: u32 = 10;

/// Runs one session; the replies in the order of `commands`, with the host that gave them.
pub fn run(
    access: &Access,
    s: &ReconcileSettings,
    commands: &[&str],
    groups: &ProcessGroups,
) -> Result<(String, Vec<CommandReply>), SessionFailure> {
    let argv = access.argv(s, commands);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let limit = s.wait * WAITS_PER_SESSION;
    let (ran, output) = program::run_for_output(&Program {
        argv: &argv,
        input: None,
        env: &[],
        limit,
        groups,
    });
    if let Some(why) = ran.failure("reconcile.program", "reconcile.timeout.ms", limit) {
        let kind = match ran {
            Ran::TimedOut => Failure::Timeout,
            _ => Failure::Config,
        };
        return Err(SessionFailure::new(kind, why));
    }
    match serde_json::from_str::<SessionReport>(output.trim()) {
        Ok(SessionReport::Replies { host, replies }) => Ok((host, replies)),
        Ok(SessionReport::Failed(failure)) => Err(failure),
        Err(e) => Err(SessionFailure::new(
            Failure::Protocol,
            format!("reconcile.program gave no report: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_is_read_from_the_elements_directory() {
        let dir = tempfile::tempdir().unwrap();
        let el = dir.path().join("cm-east");
        assert!(
            Access::read(&el, &[]).is_none(),
            "no directory: not reconciled"
        );
        std::fs::create_dir(&el).unwrap();
        let err = Access::read(&el, &["10.0.0.1".into()])
            .unwrap()
            .unwrap_err();
        assert!(err.contains("login"), "{err}");
        std::fs::write(el.join("login"), "dadmin\n").unwrap();
        std::fs::write(el.join("password"), "s3cret\n").unwrap();
        let err = Access::read(&el, &["10.0.0.1".into()])
            .unwrap()
            .unwrap_err();
        assert!(
            err.contains("known_hosts") && err.contains("never taken on trust"),
            "{err}"
        );
        std::fs::write(el.join("known_hosts"), "[10.0.0.1]:5022 ssh-ed25519 AAAA\n").unwrap();
        let access = Access::read(&el, &["10.0.0.1".into()]).unwrap().unwrap();
        assert_eq!(access.hosts, ["10.0.0.1"]);
        let argv = access.argv(&ReconcileSettings::default(), &[CLOCK, HISTORY]);
        assert!(!argv.iter().any(|a| a.contains("s3cret")), "{argv:?}");
        assert!(argv.windows(2).any(|w| w == ["--command", "list history"]));
        std::fs::write(el.join("hosts"), "cm1.example\ncm2.example\n").unwrap();
        let access = Access::read(&el, &["10.0.0.1".into()]).unwrap().unwrap();
        assert_eq!(access.hosts, ["cm1.example", "cm2.example"]);
    }
}
