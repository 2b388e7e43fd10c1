//! `reconcile.*`: reading CM's own command history over OSSI to find the changes syslog lost
//! (docs/configuration.md, docs/design.md "Reconciliation").

use std::path::PathBuf;
use std::time::Duration;

use super::values::{choice, path};
use super::{ConfigError, Given};

/// Where each element's OSSI access is kept, by default.
pub const DEFAULT_DIR: &str = "/etc/omcmsync/ossi";
/// The OSSI client the packages install.
pub const DEFAULT_PROGRAM: &str = "/usr/libexec/omcmsync/ossi";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconcileSettings {
    /// `reconcile="on"` (the default): elements with a directory under `dir` are reconciled.
    pub enabled: bool,
    /// `reconcile.dir`: one directory per element (`<dir>/<element>/`: login, password or
    /// key, known_hosts, optional hosts).
    pub dir: PathBuf,
    /// `reconcile.interval.ms`: the schedule, and the least time between two sessions with one
    /// element (an operator's `omcmsync reconcile` excepted).
    pub interval: Duration,
    /// `reconcile.silence.ms`: an element heard again after this long without a change is
    /// reconciled (at the next allowed moment).
    pub silence: Duration,
    /// `reconcile.timeout.ms`: the bound of each wait of a session (connect, login, each reply).
    pub wait: Duration,
    /// `reconcile.tolerance.ms`: how far a heard change's time may be from its history record's
    /// minute and still be the same change.
    pub tolerance: Duration,
    /// `reconcile.program`: the OSSI client.
    pub program: PathBuf,
    /// `reconcile.port`: CM's SAT port.
    pub port: u16,
    /// `reconcile.term`: the OSSI terminal type typed at CM's prompt.
    pub term: &'static str,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        ReconcileSettings {
            enabled: true,
            dir: DEFAULT_DIR.into(),
            interval: Duration::from_secs(300),
            silence: Duration::from_secs(600),
            wait: Duration::from_secs(30),
            tolerance: Duration::from_secs(120),
            program: DEFAULT_PROGRAM.into(),
            port: 5022,
            term: "ossi4",
        }
    }
}

pub(super) fn settings(g: &mut Given) -> Result<ReconcileSettings, ConfigError> {
    let d = ReconcileSettings::default();
    let enabled = match g.take("reconcile") {
        Some(v) => choice("reconcile", v, &["on", "off"])? == "on",
        None => d.enabled,
    };
    let term = match g.take("reconcile.term") {
        Some(v) => choice(
            "reconcile.term",
            v,
            &["ossi4", "ossie", "ossi3", "ossi", "ossit"],
        )?,
        None => d.term,
    };
    let program = match g.take("reconcile.program") {
        Some(v) => path("reconcile.program", v)?,
        None => d.program,
    };
    Ok(ReconcileSettings {
        enabled,
        dir: g.path("reconcile.dir")?.unwrap_or(d.dir),
        interval: g.millis("reconcile.interval.ms", 300_000, 10_000, 86_400_000)?,
        silence: g.millis("reconcile.silence.ms", 600_000, 1000, 86_400_000)?,
        wait: g.millis("reconcile.timeout.ms", 30_000, 1000, 600_000)?,
        tolerance: g.millis("reconcile.tolerance.ms", 120_000, 0, 3_600_000)?,
        program,
        port: g.number("reconcile.port", 5022, 1, 65_535)? as u16,
        term,
    })
}
