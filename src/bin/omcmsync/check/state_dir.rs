//! `state.dir`: writable by rsyslogd's user, on a local file system, with room for a backlog.

use std::path::Path;

use super::{user, Report};

/// Less free space than this in state.dir fails: an outage's backlog has to fit.
const MIN_FREE: u64 = 64 << 20;

/// File systems whose flock and fsync are not to be trusted, by `statfs` magic.
const REMOTE: &[(i64, &str)] = &[
    (0x6969, "NFS"),
    (0x517B, "SMB"),
    (0xFF53_4D42, "CIFS"),
    (0xFE53_4D42, "SMB2"),
    (0x6573_5546, "FUSE"),
    (0x00C3_6400, "Ceph"),
];

const WHAT: &str = "state.dir";

pub fn state_dir(report: &mut Report, dir: &Path, rsyslog_user: Option<&str>) {
    let shown = dir.display();
    let probe_dir = match dir.parent() {
        _ if dir.is_dir() => dir,
        Some(parent) if parent.is_dir() => parent,
        _ => {
            return report.fail(
                WHAT,
                &format!("{shown} does not exist, nor its parent"),
                "create it for rsyslogd's user (packaging: /usr/libexec/omcmsync/setup-dirs)",
            )
        }
    };
    if let Err((detail, fix)) = writable(probe_dir, rsyslog_user) {
        return report.fail(WHAT, &detail, &fix);
    }
    if let Ok(fs) = rustix::fs::statfs(probe_dir) {
        if let Some((_, name)) = REMOTE.iter().find(|(m, _)| *m == fs.f_type) {
            return report.fail(
                WHAT,
                &format!("{shown} is on {name}: flock and fsync are not to be trusted there"),
                "a directory on a local file system",
            );
        }
    }
    let free = rustix::fs::statvfs(probe_dir)
        .map(|v| v.f_bavail.saturating_mul(v.f_frsize))
        .unwrap_or(u64::MAX);
    if free < MIN_FREE {
        return report.fail(
            WHAT,
            &format!("{shown}: only {} MiB free", free >> 20),
            "free space there (an outage's backlog is kept in queue.log)",
        );
    }
    let created = if dir.is_dir() {
        ""
    } else {
        " (created at start)"
    };
    report.pass(
        WHAT,
        &format!("{shown}{created}: writable, local, {} MiB free", free >> 20),
    );
}

/// `dir` takes a file from this process and, when named, from rsyslogd's user; else what is
/// wrong and the fix.
fn writable(dir: &Path, rsyslog_user: Option<&str>) -> Result<(), (String, String)> {
    let probe = dir.join(format!(".omcmsync-check-{}", std::process::id()));
    if let Err(e) = std::fs::write(&probe, b"") {
        return Err((
            format!("{} is not writable ({e})", dir.display()),
            "make it writable by rsyslogd's user (chown; mode 0700)".into(),
        ));
    }
    let _ = std::fs::remove_file(&probe);
    match rsyslog_user.map(|name| (name, user::may_write(name, dir))) {
        Some((name, Err(e))) => Err((
            format!(
                "{} is not writable by rsyslogd's user {name}: {e}",
                dir.display()
            ),
            format!(
                "chown {name} {} (the packages: /usr/libexec/omcmsync/setup-dirs)",
                dir.display()
            ),
        )),
        _ => Ok(()),
    }
}
