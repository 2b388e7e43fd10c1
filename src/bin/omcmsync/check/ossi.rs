//! Reconciliation's access to each element's SAT: the element's files under `reconcile.dir`,
//! then one real session by the OSSI client (host key, login, `list history` allowed).

use omcmsync::config::ReconcileSettings;
use omcmsync::elements::ElementSpec;
use omcmsync::ossi::Failure;
use omcmsync::program::ProcessGroups;
use omcmsync::reconcile::{run_session, Access, HISTORY};

use super::Report;

pub fn ossi(report: &mut Report, s: &ReconcileSettings, specs: &[ElementSpec]) {
    if !s.enabled {
        return report.pass("reconcile", "reconcile=\"off\": CM's history is not read");
    }
    let mut any = false;
    for spec in specs {
        let dir = s.dir.join(&spec.name);
        let Some(access) = Access::read(&dir, &spec.hosts) else {
            continue;
        };
        any = true;
        let what = format!("ossi {}", spec.name);
        match access {
            Ok(access) => session(report, s, &what, &access, &dir),
            Err(why) => report.fail(
                &what,
                &why,
                "the element's files under reconcile.dir: login, password or key, known_hosts (docs/configuration.md)",
            ),
        }
    }
    if !any {
        report.pass(
            "reconcile",
            &format!(
                "no element has a directory under {}: none is reconciled",
                s.dir.display()
            ),
        );
    }
}

fn session(
    report: &mut Report,
    s: &ReconcileSettings,
    what: &str,
    access: &Access,
    dir: &std::path::Path,
) {
    match run_session(access, s, &[HISTORY], &ProcessGroups::default()) {
        Ok((host, replies)) => match replies.first().and_then(|r| r.reply.failure()) {
            None => report.pass(
                what,
                &format!("logged into {host} as {}, list history read", access.login),
            ),
            Some(e) => report.fail(
                what,
                &format!("{host}: list history refused: {} {}", e.code, e.text.trim()),
                "a SAT login whose permissions allow list history",
            ),
        },
        Err(f) => {
            let known_hosts = dir.join("known_hosts");
            let fix = match f.kind {
                Failure::HostKeyUnknown => format!(
                    "check the fingerprint with CM's administrator, then add the line above to {}",
                    known_hosts.display()
                ),
                Failure::HostKeyChanged => format!(
                    "CM's host key changed (a CM upgrade, or another host answering): confirm it with CM's administrator, then replace its line in {}",
                    known_hosts.display()
                ),
                Failure::AuthRefused => {
                    format!("the login and password (or key) in {}", dir.display())
                }
                Failure::LoginResources => {
                    "every SAT session of CM is in use: try again later".into()
                }
                Failure::Unreachable | Failure::Timeout => format!(
                    "CM's SAT port (reconcile.port, {}) must be reachable from this host",
                    s.port
                ),
                Failure::Protocol | Failure::Config => {
                    "reconcile.program and reconcile.term (docs/configuration.md)".into()
                }
            };
            report.fail(what, &f.message, &fix);
        }
    }
}
