//! A CM behind a real OpenSSH `sshd` on a loopback port: sshd's ForceCommand runs
//! `smgr-sim cm`, the OSSI stand-in, with a scenario file the test rewrites at will. Logins:
//! root by public key, and [`USER`] by password (or keyboard-interactive, through PAM).
//! Needs root (sshd, and the test user made once with useradd).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use omcmsync::ossi::SessionReport;

/// The password login's user, made on first use.
pub const USER: &str = "omcm-ossi-test";
const PASSWORD: &str = "cm-Secret-1";

/// How the sshd asks for a password.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PasswordBy {
    /// The `password` method.
    Password,
    /// `keyboard-interactive` only (as CM asks).
    KeyboardInteractive,
}

pub struct CmSsh {
    dir: tempfile::TempDir,
    sshd: Child,
    /// The loopback address sshd listens on.
    pub addr: &'static str,
    pub port: u16,
}

impl CmSsh {
    /// sshd on 127.0.0.1 with the stand-in, playing `scenario` (smgr-sim's `cm` scenario JSON).
    pub fn start(scenario: serde_json::Value, by: PasswordBy) -> CmSsh {
        CmSsh::start_on(scenario, by, "127.0.0.1", super::free_port())
    }

    /// As [`CmSsh::start`], on `addr:port` (a second CM beside the first: the same port, as
    /// `reconcile.port` is one for all elements).
    pub fn start_on(
        scenario: serde_json::Value,
        by: PasswordBy,
        addr: &'static str,
        port: u16,
    ) -> CmSsh {
        test_user();
        let dir = tempfile::Builder::new()
            .prefix("omcm-cm-")
            .tempdir()
            .unwrap();
        let path = dir.path();
        chmod(path, 0o755);
        // The stand-in where the test user can run it.
        std::fs::copy(super::smgr_sim_bin(), path.join("cm-standin")).unwrap();
        keygen(&path.join("host_ed25519"));
        keygen(&path.join("client_ed25519"));
        keygen(&path.join("other_ed25519"));
        std::fs::copy(
            path.join("client_ed25519.pub"),
            path.join("authorized_keys"),
        )
        .unwrap();
        std::fs::write(path.join("cm.log"), "").unwrap();
        chmod(&path.join("cm.log"), 0o666);
        let config = sshd_config(path, (addr, port), by);
        std::fs::write(path.join("sshd_config"), config).unwrap();
        let mut cm = CmSsh {
            sshd: spawn_sshd(path),
            dir,
            addr,
            port,
        };
        cm.set_scenario(scenario);
        cm.pin(&cm.path("host_ed25519.pub"), "known_hosts");
        cm.pin(&cm.path("other_ed25519.pub"), "wrong_known_hosts");
        std::fs::write(cm.path("password"), format!("{PASSWORD}\n")).unwrap();
        std::fs::write(cm.path("wrong_password"), "not-it\n").unwrap();
        cm.wait_listening();
        cm
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn p(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// What the stand-in plays from its next session on.
    pub fn set_scenario(&self, scenario: serde_json::Value) {
        let path = self.path("scenario.json");
        std::fs::write(&path, scenario.to_string()).unwrap();
        chmod(&path, 0o644);
    }

    /// The commands the stand-in received, in order, over every session.
    pub fn commands(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.path("cm.log")).unwrap_or_default();
        log.lines().map(str::to_owned).collect()
    }

    /// The arguments that log in as the test user by password.
    pub fn password_args(&self) -> Vec<String> {
        let args = ["--host", self.addr, "--user", USER, "--password-file"];
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.extend([self.p("password"), "--port".into(), self.port.to_string()]);
        args.extend(["--known-hosts".into(), self.p("known_hosts")]);
        args
    }

    /// Writes the element's OSSI access to this CM into `dir/ossi/cm-east/` (the test user by
    /// password, this sshd's host key) and returns the action's `reconcile.*` parameters.
    pub fn reconcile_params(&self, dir: &Path, interval_ms: u64) -> String {
        self.reconcile_access(dir, "cm-east");
        format!(
            r#"reconcile.dir="{}" reconcile.program="{}" reconcile.port="{}" reconcile.interval.ms="{interval_ms}""#,
            dir.join("ossi").display(),
            super::ossi_bin().display(),
            self.port
        )
    }

    /// Writes `element`'s OSSI access to this CM into `dir/ossi/<element>/`.
    pub fn reconcile_access(&self, dir: &Path, element: &str) {
        let el = dir.join("ossi").join(element);
        std::fs::create_dir_all(&el).unwrap();
        std::fs::write(el.join("login"), format!("{USER}\n")).unwrap();
        std::fs::copy(self.path("password"), el.join("password")).unwrap();
        std::fs::copy(self.path("known_hosts"), el.join("known_hosts")).unwrap();
        std::fs::write(el.join("hosts"), format!("{}\n", self.addr)).unwrap();
    }

    /// Runs `omcmsync-ossi` with `args`: its report, exit status, and how long it took.
    pub fn ossi(&self, args: &[String]) -> (SessionReport, i32, Duration) {
        let started = Instant::now();
        let out = Command::new(super::workspace_bin("omcmsync-ossi"))
            .args(args)
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let report = serde_json::from_str(text.trim())
            .unwrap_or_else(|e| panic!("not a session report ({e}): {text}"));
        (report, out.status.code().unwrap_or(-1), started.elapsed())
    }

    /// Writes a known-hosts file `name` that pins `key` for this sshd.
    fn pin(&self, key: &Path, name: &str) {
        let key = std::fs::read_to_string(key).unwrap();
        let line = format!("[{}]:{} {}", self.addr, self.port, key.trim());
        std::fs::write(self.path(name), line + "\n").unwrap();
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect((self.addr, self.port)).is_err() {
            if let Ok(Some(status)) = self.sshd.try_wait() {
                let log = std::fs::read_to_string(self.path("sshd.log")).unwrap_or_default();
                panic!("sshd exited ({status}): {log}");
            }
            assert!(Instant::now() < deadline, "sshd did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for CmSsh {
    fn drop(&mut self) {
        let _ = self.sshd.kill();
        let _ = self.sshd.wait();
    }
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "omcm-test", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen (openssh-client)");
    assert!(status.success());
}

fn sshd_config(dir: &Path, (addr, port): (&str, u16), by: PasswordBy) -> String {
    let d = dir.display();
    let password = if by == PasswordBy::Password {
        "yes"
    } else {
        "no"
    };
    format!(
        "ListenAddress {addr}:{port}\nHostKey {d}/host_ed25519\nPidFile {d}/sshd.pid\n\
         AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nAllowUsers root {USER}\n\
         PermitRootLogin prohibit-password\nPasswordAuthentication {password}\n\
         KbdInteractiveAuthentication yes\nUsePAM yes\nPermitTTY yes\nAllowTcpForwarding no\n\
         ForceCommand {d}/cm-standin cm --scenario {d}/scenario.json --log {d}/cm.log\n"
    )
}

fn spawn_sshd(dir: &Path) -> Child {
    // sshd's privilege separation directory, which a host without a running sshd lacks.
    std::fs::create_dir_all("/run/sshd").unwrap();
    let config = dir.join("sshd_config");
    let check = Command::new("/usr/sbin/sshd")
        .arg("-t")
        .arg("-f")
        .arg(&config)
        .output()
        .expect("/usr/sbin/sshd (openssh-server)");
    assert!(
        check.status.success(),
        "sshd -t: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    Command::new("/usr/sbin/sshd")
        .arg("-D")
        .arg("-f")
        .arg(&config)
        .arg("-E")
        .arg(dir.join("sshd.log"))
        .spawn()
        .unwrap()
}

/// Makes [`USER`] (no home, `/bin/sh`: ForceCommand runs through the user's shell) and sets
/// its password, once per test process.
fn test_user() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let exists = Command::new("id")
            .arg(USER)
            .output()
            .unwrap()
            .status
            .success();
        if !exists {
            // Another test process may be making it meanwhile (useradd then fails on a lock).
            let deadline = Instant::now() + Duration::from_secs(20);
            while !Command::new("useradd")
                .args(["-M", "-d", "/", "-s", "/bin/sh", USER])
                .status()
                .expect("useradd")
                .success()
                && !Command::new("id")
                    .arg(USER)
                    .output()
                    .unwrap()
                    .status
                    .success()
            {
                assert!(
                    Instant::now() < deadline,
                    "useradd {USER} (the OSSI tests run as root)"
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        // The version matrix's test processes run at once: /etc/shadow may be locked by
        // another's chpasswd for a moment.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !set_password() {
            assert!(Instant::now() < deadline, "chpasswd {USER}");
            std::thread::sleep(Duration::from_millis(200));
        }
    });
}

fn set_password() -> bool {
    let mut chpasswd = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    let stdin = chpasswd.stdin.as_mut().unwrap();
    writeln!(stdin, "{USER}:{PASSWORD}").unwrap();
    chpasswd.wait().unwrap().success()
}
