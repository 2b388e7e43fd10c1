//! The active/standby gate: only the active System Manager node resyncs. The standby holds what
//! it hears (`ha.standby="hold"`: queued durably, delivered the moment it becomes active) or
//! drops it (`"drop"`). The role is read off the hot path by its own thread every
//! `ha.interval.ms`; workers only load an atomic.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use crate::config::{HaMode, HaSettings};
use crate::counters::Dropped;
use crate::deliver::SmgrClient;
use crate::logging;

/// What the gate does with an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Process,
    /// Queued, held: delivered once this node is active (`ha.standby="hold"`).
    Hold,
    Drop(Dropped),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Active,
    Standby,
    /// Could not be read; `ha.onunknown` decides.
    Unknown,
}

impl Role {
    fn from_u8(v: u8) -> Role {
        match v {
            0 => Role::Active,
            1 => Role::Standby,
            _ => Role::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Active => "active",
            Role::Standby => "standby",
            Role::Unknown => "unknown",
        }
    }
}

pub struct Gate {
    settings: HaSettings,
    role: AtomicU8,
    /// The role has been read once (or needs no reading).
    known: AtomicBool,
}

impl Gate {
    /// Starts as active for `ha.mode="always"`, otherwise unknown until the first check.
    pub fn new(settings: HaSettings) -> Self {
        let initial = if settings.mode == HaMode::Always {
            Role::Active
        } else {
            Role::Unknown
        };
        Gate {
            role: AtomicU8::new(initial as u8),
            known: AtomicBool::new(settings.mode == HaMode::Always),
            settings,
        }
    }

    pub fn role(&self) -> Role {
        Role::from_u8(self.role.load(Ordering::Relaxed))
    }

    /// What becomes of an event now.
    pub fn admission(&self) -> Admission {
        match self.role() {
            Role::Active => Admission::Process,
            Role::Standby if self.settings.standby_hold => Admission::Hold,
            Role::Standby => Admission::Drop(Dropped::Standby),
            Role::Unknown if self.settings.process_when_unknown => Admission::Process,
            Role::Unknown => Admission::Drop(Dropped::Unknown),
        }
    }

    /// Whether delivery waits: this node is standby (or not known to be active) and holds
    /// what it hears. With `ha.standby="drop"` a standby delivers what it has.
    pub fn holds_delivery(&self) -> bool {
        self.settings.standby_hold
            && match self.role() {
                Role::Active => false,
                Role::Standby => true,
                Role::Unknown => !self.known() || !self.settings.process_when_unknown,
            }
    }

    pub fn settings(&self) -> &HaSettings {
        &self.settings
    }

    /// Whether the role has been read once: until then nobody knows whether lines are this
    /// node's to process, and the action holds them.
    pub fn known(&self) -> bool {
        self.known.load(Ordering::Relaxed)
    }

    pub fn interval(&self) -> Duration {
        self.settings.interval
    }

    /// Reads the role now (blocking, bounded by the interval); logs changes.
    pub fn check(&self, client: &SmgrClient) {
        #[cfg(feature = "fault-hooks")]
        crate::faults::hang("ha");
        let role = match &self.settings.mode {
            HaMode::Always => Role::Active,
            HaMode::File(path) => from_file(path),
            HaMode::Http(url) => from_http(client, url.as_str()),
            HaMode::Command(cmd) => {
                from_command(cmd, self.settings.interval.max(Duration::from_secs(1)))
            }
        };
        let before = Role::from_u8(self.role.swap(role as u8, Ordering::Relaxed));
        self.known.store(true, Ordering::Relaxed);
        if before != role {
            logging::info(&format!(
                "this node is now {} (was {})",
                role.as_str(),
                before.as_str()
            ));
        }
    }
}

fn parse_role(s: &str) -> Role {
    match s.trim().to_ascii_lowercase().as_str() {
        "active" => Role::Active,
        "standby" => Role::Standby,
        _ => Role::Unknown,
    }
}

fn from_file(path: &Path) -> Role {
    std::fs::read_to_string(path).map_or(Role::Unknown, |s| parse_role(&s))
}

fn from_http(client: &SmgrClient, url: &str) -> Role {
    match client.get_json(url) {
        Ok(v) => v
            .get("role")
            .and_then(|r| r.as_str())
            .map_or(Role::Unknown, parse_role),
        Err(_) => Role::Unknown,
    }
}

/// Runs `sh -c cmd`: exit 0 = active, other exit = standby, no exit within `limit` = unknown.
fn from_command(cmd: &str, limit: Duration) -> Role {
    let child = Command::new("/bin/sh")
        .args(["-c", cmd])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return Role::Unknown;
    };
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                return if status.success() {
                    Role::Active
                } else {
                    Role::Standby
                }
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Role::Unknown;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Auth, ClientSettings};
    use crate::tls::TlsFiles;

    fn client() -> SmgrClient {
        SmgrClient::new(ClientSettings {
            base_url: url::Url::parse("http://127.0.0.1:9").unwrap(),
            resync_path: "/{element}".into(),
            tls: TlsFiles::default(),
            tls_config: None,
            auth: Auth::None,
            timeout: Duration::from_secs(1),
            secret_file: None,
            codes: Default::default(),
        })
        .unwrap()
    }

    fn gate(mode: HaMode, process_when_unknown: bool) -> Gate {
        Gate::new(HaSettings {
            mode,
            interval: Duration::from_millis(100),
            process_when_unknown,
            standby_hold: true,
            standby_retain: Duration::from_secs(86_400),
        })
    }

    #[test]
    fn file_mode_follows_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("role");
        let g = gate(HaMode::File(path.clone()), false);
        assert!(
            g.admission() == Admission::Drop(Dropped::Unknown),
            "unknown before the first check, and onunknown=drop"
        );
        std::fs::write(&path, "standby\n").unwrap();
        g.check(&client());
        assert_eq!((g.role(), g.admission()), (Role::Standby, Admission::Hold));
        assert!(g.holds_delivery());
        std::fs::write(&path, "ACTIVE").unwrap();
        g.check(&client());
        assert_eq!(
            (g.role(), g.admission()),
            (Role::Active, Admission::Process)
        );
        assert!(!g.holds_delivery());
        std::fs::remove_file(&path).unwrap();
        g.check(&client());
        assert_eq!(g.role(), Role::Unknown);
    }

    #[test]
    fn command_mode_uses_the_exit_status() {
        let g = gate(HaMode::Command("exit 0".into()), true);
        g.check(&client());
        assert_eq!(g.role(), Role::Active);
        let g = gate(HaMode::Command("exit 3".into()), true);
        g.check(&client());
        assert_eq!(g.role(), Role::Standby);
        let g = Gate::new(HaSettings {
            mode: HaMode::Command("sleep 5".into()),
            interval: Duration::from_millis(100),
            process_when_unknown: true,
            standby_hold: true,
            standby_retain: Duration::from_secs(86_400),
        });
        let started = Instant::now();
        g.check(&client());
        assert_eq!(
            (g.role(), g.admission()),
            (Role::Unknown, Admission::Process)
        );
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "a hanging command is cut off"
        );
    }

    #[test]
    fn unreachable_http_is_unknown() {
        let g = gate(
            HaMode::Http(url::Url::parse("http://127.0.0.1:9/ha").unwrap()),
            true,
        );
        g.check(&client());
        assert_eq!(g.role(), Role::Unknown);
    }
}
