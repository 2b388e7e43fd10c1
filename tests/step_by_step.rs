//! packaging/README.md's "From a bare host to a delivered change", followed as written: its
//! shell blocks, in order, each run by `/bin/sh -e` as root in a scratch Debian 12 root that
//! holds the two .deb files, for each path (one-way TLS, two-way TLS, one-way TLS under
//! privilege drop to a `syslog` user). The root has no systemd: a stand-in `systemctl` in
//! `/usr/local/sbin` restarts rsyslogd as the service would. CM is an rsyslogd on this host
//! that forwards over TLS (GnuTLS, verifying the server's name; with the trial's client
//! certificate for two-way TLS). Each path ends with CM's change delivered to the trial's
//! System Manager. Under privilege drop, `omcmsync check` fails before step 6, naming the key.
//!
//! One test: the steps use fixed ports (6514, 8443), so the paths run one after another.
//! Needs root (mounts, chroot) and the Debian roots of `scripts/rsyslog-root`.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::packages::*;
use common::*;

const WAIT: Duration = Duration::from_secs(90);

#[test]
fn the_step_by_step_delivers_on_each_path() {
    let text = std::fs::read_to_string(repo().join("packaging/README.md")).unwrap();
    let steps = steps(&text);
    assert!(steps.len() >= 8, "{steps:?}");
    assert!(
        steps
            .last()
            .is_some_and(|(_, b)| b.starts_with("omcmsync status")),
        "the last step shows what arrived"
    );
    for path in ["one-way", "two-way", "privilege-drop"] {
        follow(path, &steps);
    }
}

/// The shell blocks of the step-by-step and the paths each belongs to.
fn steps(text: &str) -> Vec<(Vec<String>, String)> {
    let start = text
        .find("## From a bare host")
        .expect("the step-by-step section");
    let section = &text[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let mut out = Vec::new();
    let mut paths: Option<Vec<String>> = None;
    let mut block: Option<String> = None;
    for line in section.lines() {
        if let Some(p) = line.strip_prefix("<!-- paths:") {
            let p = p.trim_end_matches("-->").split_whitespace();
            paths = Some(p.map(str::to_owned).collect());
        } else if line.starts_with("```") {
            match block.take() {
                Some(b) => out.push((paths.take().expect("a paths comment"), b)),
                None if line == "```sh" => block = Some(String::new()),
                None => panic!("a block that is not sh: {line}"),
            }
        } else if let Some(b) = &mut block {
            b.push_str(line);
            b.push('\n');
        }
    }
    out
}

fn follow(path: &str, steps: &[(Vec<String>, String)]) {
    let scratch = Scratch::over("bookworm");
    let stop = Stop(&scratch);
    prepare(&scratch, path);
    for (paths, block) in steps.iter().filter(|(p, _)| p.iter().any(|p| p == path)) {
        if path == "privilege-drop" && paths == &["privilege-drop"] {
            let (ok, out) = in_root(&scratch, "omcmsync check --rsyslog-conf /etc/rsyslog.conf");
            assert!(
                !ok,
                "check passed a key rsyslogd cannot read after the drop:\n{out}"
            );
            let fails: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL")).collect();
            assert!(
                !fails.is_empty() && fails.iter().all(|l| l.contains("server-key.pem")),
                "{out}"
            );
        }
        // Step 8 begins with CM sending: a change over TLS, then the status.
        let cm = block
            .starts_with("omcmsync status")
            .then(|| send_from_cm(&scratch, path));
        let (ok, out) = in_root(&scratch, block);
        assert!(ok, "{path}: the block fails as written:\n{block}\n{out}");
        drop(cm);
    }
    drop(stop);
}

/// CM sends a station change over TLS; returns once the trial's System Manager has it.
fn send_from_cm(scratch: &Scratch, path: &str) -> (TestDir, Daemon) {
    let tls = scratch.path("/etc/omcmsync/tls");
    let cm_dir = TestDir::new();
    let cm = cm_over_tls(&cm_dir, &tls, path == "two-way");
    cm.send_tcp(&[station_change(42)]);
    let record = scratch.path("/var/tmp/smgr-requests.json");
    let deadline = Instant::now() + WAIT;
    while !std::fs::read_to_string(&record).is_ok_and(|r| r.contains("\"42\"")) {
        assert!(
            Instant::now() < deadline,
            "{path}: station 42 never reached System Manager; rsyslogd logged:\n{}",
            rsyslog_messages(scratch)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (cm_dir, cm)
}

/// The host before step 1: the packages in root's home, the stand-in `systemctl`, and for
/// the privilege-drop path a `syslog` user that rsyslog.conf drops to (as Ubuntu's does).
fn prepare(scratch: &Scratch, path: &str) {
    let p = packages();
    for deb in [&p.deb, &p.sim_deb] {
        let name = deb.file_name().unwrap();
        std::fs::copy(deb, scratch.path("/root").join(name)).unwrap();
    }
    let systemctl = scratch.path("/usr/local/sbin/systemctl");
    std::fs::write(&systemctl, SYSTEMCTL).unwrap();
    std::fs::set_permissions(
        &systemctl,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    if path == "privilege-drop" {
        let (ok, out) = in_root(
            scratch,
            "useradd --system --user-group --no-create-home syslog",
        );
        assert!(ok, "{out}");
        let conf = scratch.path("/etc/rsyslog.conf");
        let text = std::fs::read_to_string(&conf).unwrap();
        std::fs::write(
            &conf,
            text + "\n$PrivDropToUser syslog\n$PrivDropToGroup syslog\n",
        )
        .unwrap();
    }
}

/// `systemctl restart rsyslog` as the service does it, for a root without systemd.
const SYSTEMCTL: &str = r#"#!/bin/sh
# The step-by-step test's stand-in for systemd: restart rsyslog, nothing else.
case "$1 $2" in
"restart rsyslog" | "restart rsyslog.service") ;;
*) echo "systemctl stand-in: only 'restart rsyslog': $*" >&2; exit 1 ;;
esac
if [ -f /run/rsyslogd.pid ]; then
    pid=$(cat /run/rsyslogd.pid)
    kill "$pid" 2>/dev/null || :
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
fi
# A daemon: nothing of it stays on the caller's output.
exec rsyslogd </dev/null >>/var/log/rsyslogd-start.log 2>&1
"#;

/// Runs `script` with `/bin/sh -e` as root in the scratch root, in /root, without a
/// terminal, with /proc and a /dev of its own (what rsyslogd makes there stays there).
fn in_root(scratch: &Scratch, script: &str) -> (bool, String) {
    let runner = r#"root=$1
mount -t proc proc "$root/proc"
mount -t tmpfs -o mode=0755 tmpfs "$root/dev"
for n in null zero full random urandom tty; do
    touch "$root/dev/$n"
    mount --bind "/dev/$n" "$root/dev/$n"
done
ln -s /proc/self/fd "$root/dev/fd"
exec chroot "$root" /bin/sh -ec "cd /root
$2""#;
    let out = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-ec",
            runner,
            "sh",
        ])
        .arg(scratch.root())
        .arg(script)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOME", "/root")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// CM: an rsyslogd on this host forwarding to port 6514 over TLS, verifying the server's
/// certificate (name `localhost`, signed by the trial's CA), with the trial's client
/// certificate when `two_way`.
fn cm_over_tls(dir: &TestDir, tls: &Path, two_way: bool) -> Daemon {
    let ports = Ports::free();
    let client = if two_way {
        format!(
            " DefaultNetstreamDriverCertFile=\"{0}/client.pem\" DefaultNetstreamDriverKeyFile=\"{0}/client-key.pem\"",
            tls.display()
        )
    } else {
        String::new()
    };
    let text = format!(
        r#"global(workDirectory="{work}" DefaultNetstreamDriverCAFile="{tls}/ca.pem"{client})
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{tcp}" ruleset="forward")
ruleset(name="forward") {{
  action(type="omfwd" target="127.0.0.1" port="6514" protocol="tcp"
         StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name"
         StreamDriverPermittedPeers="localhost"
         queue.type="LinkedList" action.resumeRetryCount="-1"
         action.resumeInterval="1" action.resumeIntervalMax="2")
}}
"#,
        work = dir.p("work"),
        tls = tls.display(),
        tcp = ports.tcp,
    );
    Daemon::start_config(dir, ports, &text)
}

/// What the root's rsyslogd logged (Debian's rsyslog.conf: /var/log/syslog, or messages).
fn rsyslog_messages(scratch: &Scratch) -> String {
    [
        "/var/log/rsyslogd-start.log",
        "/var/log/syslog",
        "/var/log/messages",
    ]
    .iter()
    .filter_map(|f| std::fs::read_to_string(scratch.path(f)).ok())
    .collect()
}

/// Stops what the steps started in the root (rsyslogd, the trial's System Manager).
struct Stop<'a>(&'a Scratch);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        for pidfile in ["/run/rsyslogd.pid", "/run/smgr-sim.pid"] {
            let pid = std::fs::read_to_string(self.0.path(pidfile)).unwrap_or_default();
            if let Ok(pid) = pid.trim().parse::<i32>() {
                let _ = Command::new("kill").arg(pid.to_string()).status();
                let deadline = Instant::now() + Duration::from_secs(10);
                while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }
}
