//! The active/standby gate: only the active System Manager node resyncs. The standby holds what
//! it hears (`ha.standby="hold"`: queued durably, delivered the moment it becomes active) or
//! drops it (`"drop"`). The role is read off the hot path by its own thread every
//! `ha.interval.ms`; workers only load an atomic.

mod watch;

pub use watch::Watch;

use crate::program::{self, ProcessGroups, Program, Ran};
use parking_lot::Mutex;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use crate::config::{HaMode, HaSettings};
use crate::counters::Dropped;
use crate::logging;
use crate::smgr::{Api, SmgrClient};

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
    /// A role read that differs from the gate's: how often in a row, since when.
    next: Mutex<Option<(Role, u32, Instant)>>,
    /// `ha.command`'s runs: killed at stop.
    programs: ProcessGroups,
}

/// The first read of the role, at start, is given at most this long: until it ends, what
/// arrives is held, not delivered; a check that hangs then reads "unknown" and `ha.onunknown`
/// decides, instead of holding delivery for a whole `ha.interval.ms`.
const FIRST_READ: Duration = Duration::from_secs(1);

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
            next: Mutex::default(),
            programs: ProcessGroups::default(),
            settings,
        }
    }

    pub fn role(&self) -> Role {
        Role::from_u8(self.role.load(Ordering::Relaxed))
    }

    /// What becomes of an event now. Before the role's first read (at most [`FIRST_READ`])
    /// nothing waits: events are held when a standby would hold them, and released or kept
    /// by the role once read.
    pub fn admission(&self) -> Admission {
        let s = &self.settings;
        match self.role() {
            Role::Active => Admission::Process,
            Role::Standby if s.standby_hold => Admission::Hold,
            Role::Standby => Admission::Drop(Dropped::Standby),
            Role::Unknown if !self.known() && s.standby_hold => Admission::Hold,
            Role::Unknown if s.process_when_unknown => Admission::Process,
            Role::Unknown => Admission::Drop(Dropped::Unknown),
        }
    }

    /// Whether an event can be admitted now. Before the first read (at most [`FIRST_READ`])
    /// a holding node holds what arrives; a node with `ha.standby="drop"` cannot hold (the
    /// role read would then deliver what a dropping standby must drop), so its batches wait
    /// for that first read.
    pub fn decides_now(&self) -> bool {
        self.known() || self.settings.standby_hold
    }

    /// The parameter that says where the role is read, for problems and logs.
    pub fn source_param(&self) -> Option<&'static str> {
        match self.settings.mode {
            HaMode::Always => None,
            HaMode::File(_) => Some("ha.file"),
            HaMode::Http(_) => Some("ha.url"),
            HaMode::Command(_) => Some("ha.command"),
        }
    }

    /// Kills every `ha.command` still running (the module stops).
    pub fn kill_programs(&self) {
        self.programs.kill_all();
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

    /// Reads the role now (blocking, bounded by the interval, the first read by
    /// [`FIRST_READ`]) and returns what was read; `client`: none while System Manager's
    /// client cannot be built (`ha.url` then reads "unknown"). The
    /// gate follows a new role once it was read twice in a row and has held for
    /// `ha.holddown.ms` (the first read at start is followed at once); each switch is logged,
    /// entering "unknown" with the reason.
    pub fn check(&self, client: Option<&SmgrClient>) -> Reading {
        #[cfg(feature = "fault-hooks")]
        crate::faults::hang("ha");
        let first = !self.known();
        let limit = if first {
            self.settings.interval.min(FIRST_READ)
        } else {
            self.settings.interval
        };
        let reading = match &self.settings.mode {
            HaMode::Always => Reading::known(Role::Active),
            HaMode::File(path) => from_file(path),
            HaMode::Http(url) => match client {
                Some(client) => from_http(client.api(), url.as_str(), limit),
                None => Reading::unknown(
                    "ha.url: no System Manager client yet (see the smgr.* problem logged)".into(),
                ),
            },
            // A program needs a moment to start at all.
            HaMode::Command(cmd) => from_command(cmd, limit.max(FIRST_READ), &self.programs),
        };
        let current = self.role();
        let switch = {
            let mut next = self.next.lock();
            if first {
                true
            } else if reading.role == current {
                *next = None;
                false
            } else {
                let n = match next.take() {
                    Some((role, reads, since)) if role == reading.role => (role, reads + 1, since),
                    _ => (reading.role, 1, Instant::now()),
                };
                let ready = n.1 >= 2 && n.2.elapsed() >= self.settings.holddown;
                *next = (!ready).then_some(n);
                ready
            }
        };
        if switch {
            self.role.store(reading.role as u8, Ordering::Relaxed);
            self.known.store(true, Ordering::Relaxed);
            self.log_switch(current, &reading, first);
        }
        reading
    }

    fn log_switch(&self, before: Role, reading: &Reading, first: bool) {
        let label = &self.settings.label;
        let msg = match (before, reading.role) {
            (_, Role::Unknown) => format!(
                "ha ({label}): the role cannot be read: {}; events are {} meanwhile (ha.onunknown)",
                reading.why.as_deref().unwrap_or("no answer"),
                if self.settings.process_when_unknown {
                    "processed"
                } else {
                    "dropped"
                }
            ),
            (_, role) if first => format!("ha ({label}): this node is {}", role.as_str()),
            (Role::Unknown, role) => format!(
                "ha ({label}): the role reads again: this node is {}",
                role.as_str()
            ),
            (before, role) => format!(
                "ha ({label}): this node is now {} (was {})",
                role.as_str(),
                before.as_str()
            ),
        };
        logging::info(&msg);
    }
}

/// One read of the role; `why`: what made it unknown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reading {
    pub role: Role,
    pub why: Option<String>,
}

impl Reading {
    fn known(role: Role) -> Reading {
        Reading { role, why: None }
    }

    fn unknown(why: String) -> Reading {
        Reading {
            role: Role::Unknown,
            why: Some(why),
        }
    }
}

fn parse_role(s: &str, source: &str) -> Reading {
    match s.trim().to_ascii_lowercase().as_str() {
        "active" => Reading::known(Role::Active),
        "standby" => Reading::known(Role::Standby),
        other => {
            let shown: String = other
                .chars()
                .take(40)
                .flat_map(char::escape_debug)
                .collect();
            Reading::unknown(format!("{source} says '{shown}', not active or standby"))
        }
    }
}

fn from_file(path: &Path) -> Reading {
    match std::fs::read_to_string(path) {
        Ok(s) => parse_role(&s, &format!("ha.file {}", path.display())),
        Err(e) => Reading::unknown(format!("ha.file {}: {e}", path.display())),
    }
}

/// What `ha.url` answers: `{"role":"active"}` or `{"role":"standby"}` (docs/smgr-api.md).
#[derive(serde::Serialize, serde::Deserialize)]
pub struct RoleAnswer {
    pub role: String,
}

fn from_http(api: &Api, url: &str, limit: Duration) -> Reading {
    let answer = api
        .get_text(url, limit)
        .map(|text| serde_json::from_str::<RoleAnswer>(&text));
    match answer {
        Ok(Ok(answer)) => parse_role(&answer.role, "ha.url"),
        // JSON, but no role in it.
        Ok(Err(e)) if e.is_data() => {
            Reading::unknown("ha.url answered without a \"role\" string".into())
        }
        Ok(Err(e)) => Reading::unknown(format!("ha.url: {}", api.redact(&e.to_string()))),
        Err(e) => Reading::unknown(format!("ha.url: {e}")),
    }
}

/// `ha.command` run with `/bin/sh -c` ([`crate::program`]: its own process group, killed whole
/// at the limit); its exit status is the role.
fn from_command(cmd: &str, limit: Duration, groups: &ProcessGroups) -> Reading {
    let ran = program::run(&Program {
        argv: &["/bin/sh", "-c", cmd],
        input: None,
        env: &[],
        limit,
        groups,
    });
    if let Some(why) = ran.failure("ha.command", "ha.interval.ms", limit) {
        return Reading::unknown(why);
    }
    match ran {
        Ran::Exited { code: 0, .. } => Reading::known(Role::Active),
        _ => Reading::known(Role::Standby),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Auth, ClientSettings};
    use crate::tls::TlsFiles;

    fn client() -> SmgrClient {
        SmgrClient::new(ClientSettings {
            transport: crate::config::Transport::Http,
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
            holddown: Duration::ZERO,
            label: "test".into(),
        })
    }

    #[test]
    fn file_mode_follows_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("role");
        let g = gate(HaMode::File(path.clone()), false);
        assert_eq!(
            g.admission(),
            Admission::Hold,
            "before the first check nothing waits: held, decided by the role once read"
        );
        std::fs::remove_file(&path).ok();
        g.check(Some(&client()));
        assert_eq!(
            g.admission(),
            Admission::Drop(Dropped::Unknown),
            "unreadable, and onunknown=drop"
        );
        std::fs::write(&path, "standby\n").unwrap();
        g.check(Some(&client()));
        g.check(Some(&client()));
        assert_eq!((g.role(), g.admission()), (Role::Standby, Admission::Hold));
        assert!(g.holds_delivery());
        std::fs::write(&path, "ACTIVE").unwrap();
        g.check(Some(&client()));
        assert_eq!(
            g.role(),
            Role::Standby,
            "one read of a new role is not enough"
        );
        g.check(Some(&client()));
        assert_eq!(
            (g.role(), g.admission()),
            (Role::Active, Admission::Process)
        );
        assert!(!g.holds_delivery());
        std::fs::remove_file(&path).unwrap();
        let r = g.check(Some(&client()));
        assert!(
            r.why.unwrap().contains("ha.file"),
            "the reason names the source"
        );
        g.check(Some(&client()));
        assert_eq!(g.role(), Role::Unknown);
    }

    /// A role that flaps faster than `ha.holddown.ms` is not followed.
    #[test]
    fn a_flapping_role_is_held_down() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("role");
        std::fs::write(&path, "active").unwrap();
        let mut settings = gate(HaMode::File(path.clone()), true).settings.clone();
        settings.holddown = Duration::from_millis(500);
        let g = Gate::new(settings);
        g.check(Some(&client()));
        for flap in 0..6 {
            std::fs::write(&path, if flap % 2 == 0 { "standby" } else { "active" }).unwrap();
            for _ in 0..3 {
                g.check(Some(&client()));
                std::thread::sleep(Duration::from_millis(50));
            }
            assert_eq!(g.role(), Role::Active, "flap {flap}");
        }
        std::fs::write(&path, "standby").unwrap();
        g.check(Some(&client()));
        std::thread::sleep(Duration::from_millis(550));
        g.check(Some(&client()));
        assert_eq!(g.role(), Role::Standby, "a role that holds is followed");
    }

    #[test]
    fn a_command_that_cannot_run_is_unknown_not_standby() {
        let dir = tempfile::tempdir().unwrap();
        let not_executable = dir.path().join("ha-check");
        std::fs::write(&not_executable, "exit 0\n").unwrap();
        let not_executable = not_executable.display().to_string();
        for (cmd, says) in [
            ("/nonexistent/ha-check", "127"),
            (not_executable.as_str(), "126"),
        ] {
            let g = gate(HaMode::Command(cmd.into()), true);
            let r = g.check(Some(&client()));
            assert_eq!(g.role(), Role::Unknown, "{cmd}");
            assert!(r.why.unwrap().contains(says), "{cmd}");
        }
    }

    /// A timed-out command's children go with it: the whole process group is killed.
    #[test]
    fn a_timed_out_command_leaves_no_process_behind() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("pid");
        let cmd = format!("sleep 30 & echo $! > {}; wait", marker.display());
        let g = gate(HaMode::Command(cmd), true);
        g.check(Some(&client()));
        let pid = std::fs::read_to_string(&marker).unwrap();
        let proc_dir = format!("/proc/{}", pid.trim());
        let deadline = Instant::now() + Duration::from_secs(5);
        // Killed, and reaped by its new parent (or a zombie until then: state Z).
        while std::fs::read_to_string(format!("{proc_dir}/stat"))
            .is_ok_and(|stat| !stat.contains(") Z "))
        {
            assert!(
                Instant::now() < deadline,
                "the sleeping child {pid} survived"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn command_mode_uses_the_exit_status() {
        let g = gate(HaMode::Command("exit 0".into()), true);
        g.check(Some(&client()));
        assert_eq!(g.role(), Role::Active);
        let g = gate(HaMode::Command("exit 3".into()), true);
        g.check(Some(&client()));
        assert_eq!(g.role(), Role::Standby);
        let g = Gate::new(HaSettings {
            mode: HaMode::Command("sleep 5".into()),
            interval: Duration::from_millis(100),
            process_when_unknown: true,
            standby_hold: true,
            standby_retain: Duration::from_secs(86_400),
            holddown: Duration::ZERO,
            label: "test".into(),
        });
        let started = Instant::now();
        g.check(Some(&client()));
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
        g.check(Some(&client()));
        assert_eq!(g.role(), Role::Unknown);
    }
}
