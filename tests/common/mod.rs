//! Test harness: the real Debian rsyslogd with our built module, on loopback.
//!
//! A test makes a [`TestDir`], starts a [`Daemon`] in it with the body of the `cm` ruleset
//! (usually one omcmsync action), sends syslog lines over TCP or UDP, and reads what the module
//! wrote. The daemon runs with its own config, work directory and pid file, is stopped by PID,
//! and is killed if a test panics.

#![allow(dead_code)]

pub mod cm;
pub mod packages;

use std::io::Write;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The built module: `$OMCMSYNC_MODULE`, else the `libomcmsync.so` cargo built with this test
/// (in `deps/`, beside the test binary; the copy one level up is only refreshed by `cargo build`).
pub fn module_path() -> PathBuf {
    if let Some(p) = std::env::var_os("OMCMSYNC_MODULE") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    let so = exe.parent().unwrap().join("libomcmsync.so");
    assert!(so.exists(), "module not built: {}", so.display());
    so
}

/// The Debian root whose rsyslogd the tests run: `$OMCM_RSYSLOG_ROOT` (made by
/// `scripts/rsyslog-root`; the test command sets it for its version matrix), or none: the
/// host's rsyslogd, `$OMCM_RSYSLOGD` or `/usr/sbin/rsyslogd`.
pub fn rsyslog_root() -> Option<PathBuf> {
    std::env::var_os("OMCM_RSYSLOG_ROOT").map(PathBuf::from)
}

/// Which rsyslogd runs, for messages.
pub fn rsyslogd() -> String {
    match rsyslog_root() {
        Some(root) => format!("/usr/sbin/rsyslogd in {}", root.display()),
        None => std::env::var("OMCM_RSYSLOGD").unwrap_or_else(|_| "/usr/sbin/rsyslogd".into()),
    }
}

/// A command running rsyslogd, with `wrapper` (e.g. valgrind and its options) in front: the
/// one of `root` through `tests/in-root` (host paths stay valid inside), else the host's.
pub fn rsyslogd_command(root: Option<&Path>, wrapper: &[&str]) -> Command {
    let mut argv: Vec<String> = Vec::new();
    if let Some(root) = root {
        argv.push(repo().join("tests/in-root").display().to_string());
        argv.push(root.display().to_string());
    }
    argv.extend(wrapper.iter().map(|w| w.to_string()));
    argv.push(match root {
        Some(_) => "/usr/sbin/rsyslogd".into(),
        None => rsyslogd(),
    });
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    cmd
}

/// The element list every test starts with: one CM, sending from loopback (v4 and v6).
pub const ELEMENTS: &str = r#"{"elements":[{"name":"cm-east","hosts":["127.0.0.1","::1"]}]}"#;

/// A fresh directory for one test's config, work directory, state and outputs.
pub struct TestDir {
    dir: tempfile::TempDir,
    starts: std::cell::Cell<u32>,
    /// The root whose rsyslogd this test's daemons and checks run ([`rsyslog_root`] unless a
    /// test sets its own, e.g. a scratch install of a package).
    root: std::cell::RefCell<Option<PathBuf>>,
    /// Environment for this test's rsyslogd (fault hooks read theirs there).
    env: std::cell::RefCell<Vec<(String, String)>>,
}

impl TestDir {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("omcm-test-")
            .tempdir()
            .unwrap();
        std::fs::create_dir(dir.path().join("work")).unwrap();
        std::fs::write(dir.path().join("elements.json"), ELEMENTS).unwrap();
        TestDir {
            dir,
            starts: std::cell::Cell::new(0),
            root: std::cell::RefCell::new(rsyslog_root()),
            env: Default::default(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs this test's rsyslogd from `root` (a Debian root, see `tests/in-root`).
    pub fn use_root(&self, root: &Path) {
        *self.root.borrow_mut() = Some(root.to_path_buf());
    }

    /// Sets `name=value` in the environment of this test's rsyslogd.
    pub fn set_env(&self, name: &str, value: &str) {
        self.env.borrow_mut().push((name.into(), value.into()));
    }

    pub fn rsyslogd(&self, wrapper: &[&str]) -> Command {
        let mut cmd = rsyslogd_command(self.root.borrow().as_deref(), wrapper);
        cmd.envs(self.env.borrow().iter().cloned());
        cmd
    }

    /// What rsyslogd logged of its own (and the module's) messages so far.
    pub fn rsyslog_log(&self) -> String {
        std::fs::read_to_string(self.path("rsyslog.log")).unwrap_or_default()
    }

    /// Waits (at most a minute) until rsyslogd's log holds every one of `texts`: the module's
    /// lines reach it asynchronously.
    pub fn wait_log(&self, texts: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !texts.iter().all(|t| self.rsyslog_log().contains(t)) {
            assert!(
                Instant::now() < deadline,
                "no {texts:?} in: {}",
                self.rsyslog_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `path(name)` as a string, for config text.
    pub fn p(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

/// A port nothing listens on yet, free for TCP and UDP on 127.0.0.1 and [::1]. Never the same
/// twice in one test process, and below the kernel's ephemeral range (32768 and up), so that a
/// port handed out here cannot be taken meanwhile by a simulator or client binding port 0
/// while rsyslogd, slower to start in a Debian root, has yet to bind it. Test processes that run
/// at the same time (scripts/test runs the three roots at once) get disjoint ranges through
/// `OMCM_TEST_PORTS=LOW-HIGH` (default 20000-32000).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let (low, high) = std::env::var("OMCM_TEST_PORTS")
        .ok()
        .and_then(|r| {
            let (a, b) = r.split_once('-')?;
            Some((a.parse::<u16>().ok()?, b.parse::<u16>().ok()?))
        })
        .filter(|(a, b)| a < b)
        .unwrap_or((20_000, 32_000));
    // Each test binary (they run one after another) starts at its own place in the range.
    let slots = ((high - low) / 200).max(1) as u32;
    let _ = NEXT.compare_exchange(
        0,
        low + (std::process::id() % slots) as u16 * 200,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    loop {
        let port = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = low + (port.wrapping_sub(low)) % (high - low);
        let free = TcpListener::bind(("127.0.0.1", port)).is_ok()
            && UdpSocket::bind(("127.0.0.1", port)).is_ok()
            && TcpListener::bind(("::1", port)).is_ok();
        if free {
            return port;
        }
    }
}

/// Ports for one daemon start.
#[derive(Clone, Copy)]
pub struct Ports {
    pub tcp: u16,
    pub udp: u16,
    /// TCP on [::1]: lines from an IPv6 sender.
    pub tcp6: u16,
}

impl Ports {
    pub fn free() -> Ports {
        Ports {
            tcp: free_port(),
            udp: free_port(),
            tcp6: free_port(),
        }
    }
}

/// A complete rsyslog config: TCP and UDP inputs bound to ruleset `cm`, our module and
/// template, and `ruleset_body` as the ruleset's content. rsyslog's own messages (the
/// module's log lines among them: `processInternalMessages`, else they go to the host's syslog)
/// stay in the default ruleset, which writes them to
/// `rsyslog.log` ([`TestDir::rsyslog_log`]), so only what the test sends reaches the action.
pub fn config(dir: &TestDir, ports: Ports, ruleset_body: &str) -> String {
    format!(
        r#"global(workDirectory="{work}" processInternalMessages="on")
module(load="imtcp")
module(load="imudp")
input(type="imtcp" address="127.0.0.1" port="{tcp}" ruleset="cm")
input(type="imudp" address="127.0.0.1" port="{udp}" ruleset="cm")
input(type="imtcp" address="::1" port="{tcp6}" ruleset="cm")
module(load="{module}")
include(file="{template}")
action(type="omfile" file="{log}")
ruleset(name="cm") {{
{ruleset_body}
}}
"#,
        work = dir.p("work"),
        tcp = ports.tcp,
        udp = ports.udp,
        tcp6 = ports.tcp6,
        module = module_path().display(),
        template = repo().join("rsyslog-conf/omcmsync-template.conf").display(),
        log = dir.p("rsyslog.log"),
    )
}

/// [`config`] with impstats writing JSON lines to `stats.json` every second.
pub fn config_with_impstats(dir: &TestDir, ports: Ports, ruleset_body: &str) -> String {
    config(dir, ports, ruleset_body).replace(
        "module(load=\"imtcp\")",
        &format!(
            "module(load=\"impstats\" interval=\"1\" log.syslog=\"off\" log.file=\"{}\" format=\"json\")\nmodule(load=\"imtcp\")",
            dir.p("stats.json")
        ),
    )
}

/// Every stats line impstats wrote so far (see [`config_with_impstats`]).
pub fn stats_lines(dir: &TestDir) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.path("stats.json"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(&l[l.find('{')?..]).ok())
        .collect()
}

/// Waits until the module's latest impstats line satisfies `done`, and returns it.
pub fn wait_module_stats(
    dir: &TestDir,
    timeout: Duration,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + timeout;
    loop {
        let ours = stats_lines(dir)
            .into_iter()
            .rev()
            .find(|v| v["origin"] == "omcmsync");
        if let Some(v) = ours.filter(|v| done(v)) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "module stats not reached in {timeout:?}: {:?}",
            stats_lines(dir)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The usual action, with no System Manager listening: omcmsync with the test's elements,
/// state directory and trace file, and the given extra parameters.
pub fn action(dir: &TestDir, extra: &str) -> String {
    action_to(dir, "http://127.0.0.1:9", extra)
}

/// The usual action, posting to `smgr_url`.
pub fn action_to(dir: &TestDir, smgr_url: &str, extra: &str) -> String {
    format!(
        r#"action(type="omcmsync" name="omcmsync" smgr.url="{smgr_url}"
       elements.file="{}" state.dir="{}" trace.file="{}" {extra})"#,
        dir.p("elements.json"),
        dir.p("state"),
        dir.p("trace.json")
    )
}

/// Result of `rsyslogd -N1`.
pub struct Check {
    pub ok: bool,
    pub output: String,
}

/// Validates a config text with `rsyslogd -N1` (extra args such as `-M dir` appended).
pub fn check_config(dir: &TestDir, text: &str, extra_args: &[&str]) -> Check {
    let conf = dir.path("check.conf");
    std::fs::write(&conf, text).unwrap();
    let out = dir
        .rsyslogd(&[])
        .args(["-N1", "-f"])
        .arg(&conf)
        .args(extra_args)
        .output()
        .expect("run rsyslogd -N1");
    Check {
        ok: out.status.success(),
        output: String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout),
    }
}

/// A running rsyslogd.
pub struct Daemon {
    child: Option<Child>,
    pub ports: Ports,
    stderr_path: PathBuf,
}

impl Daemon {
    /// Starts rsyslogd in the foreground with `ruleset_body`, and waits until it listens.
    pub fn start(dir: &TestDir, ruleset_body: &str) -> Daemon {
        let ports = Ports::free();
        Daemon::start_config(dir, ports, &config(dir, ports, ruleset_body))
    }

    pub fn start_config(dir: &TestDir, ports: Ports, text: &str) -> Daemon {
        Daemon::start_wrapped(dir, ports, text, &[])
    }

    /// Starts rsyslogd under `wrapper` (e.g. valgrind and its options).
    pub fn start_wrapped(dir: &TestDir, ports: Ports, text: &str, wrapper: &[&str]) -> Daemon {
        let mut d = Daemon::spawn(dir, ports, text, wrapper);
        d.wait_listening();
        d
    }

    /// Starts rsyslogd without waiting for it to listen on `ports.tcp` (a configuration that
    /// may have no input there).
    pub fn spawn(dir: &TestDir, ports: Ports, text: &str, wrapper: &[&str]) -> Daemon {
        let n = dir.starts.get() + 1;
        dir.starts.set(n);
        let conf = dir.path(&format!("rsyslog-{n}.conf"));
        std::fs::write(&conf, text).unwrap();
        let stderr_path = dir.path(&format!("rsyslogd-{n}.stderr"));
        let child = dir
            .rsyslogd(wrapper)
            .args(["-n", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(dir.path(&format!("rsyslogd-{n}.pid")))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .expect("start rsyslogd");
        Daemon {
            child: Some(child),
            ports,
            stderr_path,
        }
    }

    /// Whether rsyslogd still runs.
    pub fn running(&mut self) -> bool {
        self.child.as_mut().unwrap().try_wait().unwrap().is_none()
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while TcpStream::connect(("127.0.0.1", self.ports.tcp)).is_err() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("rsyslogd exited at start ({status}):\n{}", self.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "rsyslogd not listening:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Sends raw bytes over one TCP connection and closes it.
    pub fn send_tcp_bytes(&self, bytes: &[u8]) {
        let mut s = TcpStream::connect(("127.0.0.1", self.ports.tcp)).unwrap();
        s.write_all(bytes).unwrap();
    }

    /// Sends each line over TCP to the [::1] listener (an IPv6 sender).
    pub fn send_tcp6(&self, lines: &[String]) {
        let mut s = TcpStream::connect(("::1", self.ports.tcp6)).unwrap();
        s.write_all(
            lines
                .iter()
                .map(|l| format!("{l}\n"))
                .collect::<String>()
                .as_bytes(),
        )
        .unwrap();
    }

    /// Sends each line (newline-framed) over one TCP connection.
    pub fn send_tcp(&self, lines: &[String]) {
        let mut buf = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
        for l in lines {
            buf.extend_from_slice(l.as_bytes());
            buf.push(b'\n');
        }
        self.send_tcp_bytes(&buf);
    }

    /// Sends each line as one datagram, paced so that loopback does not drop any.
    pub fn send_udp(&self, lines: &[String]) {
        self.send_udp_from("127.0.0.1", lines);
    }

    /// Sends each line as one datagram from `source` (any 127.x.y.z: a sender of its own).
    pub fn send_udp_from(&self, source: &str, lines: &[String]) {
        let s = UdpSocket::bind((source, 0)).unwrap();
        for (i, l) in lines.iter().enumerate() {
            s.send_to(l.as_bytes(), ("127.0.0.1", self.ports.udp))
                .unwrap();
            if i % 50 == 49 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }

    pub fn signal(&self, sig: i32) {
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// SIGTERM, then waits up to `timeout` for the exit; panics on a hang. An exit that is not
    /// a success prints the daemon's stderr, for the test that asserts on it.
    pub fn stop(mut self, timeout: Duration) -> ExitStatus {
        self.signal(libc::SIGTERM);
        let status = self.wait_exit(timeout);
        if !status.success() {
            eprintln!("rsyslogd exited {status}; its stderr:\n{}", self.stderr());
        }
        status
    }

    /// SIGKILL: the daemon gets no chance to clean up.
    pub fn kill9(mut self) {
        self.signal(libc::SIGKILL);
        self.wait_exit(Duration::from_secs(10));
    }

    fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            if Instant::now() > deadline {
                panic!(
                    "rsyslogd did not exit within {timeout:?}:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A SAT `change station ID` by dadmin on cm-east, as CM's command history forwards it.
pub fn station_change(id: u64) -> String {
    syslog_line(
        "cm-east",
        "cmdhist",
        &format!("11/25 10:15 SAT dadmin chan station {id}"),
    )
}

/// Object ids as the simulator's items name them.
pub fn ids<T: ToString>(ids: impl IntoIterator<Item = T>) -> std::collections::BTreeSet<String> {
    ids.into_iter().map(|i| i.to_string()).collect()
}

/// A syslog line as CM's rsyslog would forward it.
pub fn syslog_line(host: &str, tag: &str, msg: &str) -> String {
    format!("<13>Nov 25 10:15:02 {host} {tag}: {msg}")
}

/// Waits until `path` holds at least `n` lines, and returns them parsed as JSON.
pub fn wait_json_lines(path: &Path, n: usize, timeout: Duration) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let lines = read_json_lines(path);
        if lines.len() >= n {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{}: {} of {n} lines after {timeout:?}",
            path.display(),
            lines.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every complete (newline-terminated) line of a JSON-lines file.
pub fn read_json_lines(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    complete
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}")))
        .collect()
}

/// The `omcmsync` program rsyslogd runs (omprog's): `$OMCMSYNC_BIN` (the test command sets the
/// packaged one for its version matrix, whose older roots lack this host's glibc), else the
/// one cargo built with this test.
pub fn omcmsync_bin() -> String {
    std::env::var("OMCMSYNC_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_omcmsync").to_owned())
}

/// The OSSI client the module runs (`reconcile.program`): `$OMCMSYNC_OSSI` (the packaged one
/// in the version matrix, as for [`omcmsync_bin`]), else the workspace's build.
pub fn ossi_bin() -> PathBuf {
    std::env::var_os("OMCMSYNC_OSSI").map_or_else(|| workspace_bin("omcmsync-ossi"), PathBuf::from)
}

/// The standard paths of the packages and the site moved into `dir`: `/etc/omcmsync` to
/// `dir/etc`, `/usr/share/omcmsync` to `dir/share`, the state and log directories to
/// `dir/state` and `dir/log`, `/usr/bin/omcmsync` to the built one.
pub fn moved(dir: &TestDir, text: &str) -> String {
    text.replace("/etc/omcmsync", &dir.p("etc"))
        .replace("/usr/share/omcmsync", &dir.p("share"))
        .replace("/var/lib/omcmsync", &dir.p("state"))
        .replace("/var/log/omcmsync", &dir.p("log"))
        .replace("/usr/bin/omcmsync", &omcmsync_bin())
}

/// What the packages install and a site adds, with [`moved`] paths: the snippets in
/// `dir/share/rsyslog`, the examples in `dir/share/examples`, and the site's `dir/etc`
/// (omcmsync.conf from the example, elements, `tls/` from smgr-sim with `smgr-ca.pem`).
pub fn install_etc(dir: &TestDir) {
    let etc = dir.path("etc");
    std::fs::create_dir_all(etc.join("tls")).unwrap();
    std::fs::create_dir_all(dir.path("log")).unwrap();
    for (from, to) in [
        ("rsyslog-conf", "share/rsyslog"),
        ("packaging/examples", "share/examples"),
    ] {
        std::fs::create_dir_all(dir.path(to)).unwrap();
        for entry in std::fs::read_dir(repo().join(from)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e != "md") {
                let text = std::fs::read_to_string(&path).unwrap();
                let name = path.file_name().unwrap().to_str().unwrap();
                std::fs::write(dir.path(&format!("{to}/{name}")), moved(dir, &text)).unwrap();
            }
        }
    }
    std::fs::copy(
        dir.path("share/examples/omcmsync.conf"),
        etc.join("omcmsync.conf"),
    )
    .unwrap();
    std::fs::write(etc.join("elements.json"), ELEMENTS).unwrap();
    gen_certs(dir, "etc/tls");
    std::fs::copy(etc.join("tls/ca.pem"), etc.join("tls/smgr-ca.pem")).unwrap();
}

/// smgr-sim, a workspace member of its own: see [`workspace_bin`].
pub fn smgr_sim_bin() -> PathBuf {
    workspace_bin("smgr-sim")
}

/// A program of another workspace member (cargo's `CARGO_BIN_EXE_*` names only this package's
/// programs): the one in `$OMCM_TOOLS_DIR` (the test command points it at the packages' build,
/// which it has made anyway), else the one built beside this test, in `target/<profile>/`.
pub fn workspace_bin(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("OMCM_TOOLS_DIR") {
        return PathBuf::from(dir).join(name);
    }
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/<test>-<hash>
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test's profile directory")
        .join(name);
    assert!(
        bin.is_file(),
        "{} is missing: build it with `cargo build -p {name}` (`--release` for benches)",
        bin.display()
    );
    bin
}

/// A throwaway PKI from `smgr-sim gen-certs` in the test's `name` directory (ca.pem,
/// server.pem, client.pem, other-ca.pem, other-server.pem and their keys); returns its path.
pub fn gen_certs(dir: &TestDir, name: &str) -> String {
    let out = Command::new(smgr_sim_bin())
        .arg("gen-certs")
        .arg(dir.path(name))
        .output()
        .expect("run smgr-sim gen-certs");
    assert!(
        out.status.success(),
        "smgr-sim gen-certs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.p(name)
}

/// The SMGR simulator (`smgr-sim serve`), recording every resync POST.
pub struct Sim {
    child: Child,
    /// `http://127.0.0.1:PORT`, when serving HTTP.
    pub http: Option<String>,
    /// `https://localhost:PORT`, when serving HTTPS.
    pub https: Option<String>,
    record: PathBuf,
}

impl Sim {
    /// Starts the simulator on free loopback ports with extra `args` (e.g. `--https`).
    pub fn start(dir: &TestDir, args: &[&str]) -> Sim {
        Sim::start_on(dir, "127.0.0.1:0", args)
    }

    /// Starts it with HTTP on `http_addr`.
    pub fn start_on(dir: &TestDir, http_addr: &str, args: &[&str]) -> Sim {
        let record = dir.path("smgr-requests.json");
        let mut child = Command::new(smgr_sim_bin())
            .args(["serve", "--http", http_addr, "--record"])
            .arg(&record)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start smgr-sim");
        let mut first = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let addr = |scheme: &str| {
            first
                .split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{scheme}=")))
                .map(str::to_owned)
        };
        let http = addr("http").map(|a| format!("http://{a}"));
        let https =
            addr("https").map(|a| format!("https://localhost:{}", a.rsplit(':').next().unwrap()));
        assert!(
            http.is_some() || https.is_some(),
            "smgr-sim did not start: {first}"
        );
        Sim {
            child,
            http,
            https,
            record,
        }
    }

    pub fn url(&self) -> &str {
        self.http.as_deref().expect("serving http")
    }

    /// Every request recorded so far.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        read_json_lines(&self.record)
    }

    /// Every resync request object (the body's `requests` items), with the element added.
    pub fn resync_items(&self) -> Vec<serde_json::Value> {
        self.requests()
            .iter()
            .flat_map(|r| {
                let element = r["element"].clone();
                r["body"]["requests"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |mut i| {
                        i["element"] = element.clone();
                        i
                    })
            })
            .collect()
    }

    /// Waits until `done(items)` holds for the recorded resync items.
    pub fn wait_items(
        &self,
        timeout: Duration,
        done: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let items = self.resync_items();
            if done(&items) {
                return items;
            }
            assert!(
                Instant::now() < deadline,
                "SMGR simulator: condition not met after {timeout:?}; got {items:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Resync request objects received so far, from the simulator's counter: cheap to poll,
    /// unlike reading the record file.
    pub fn items_received(&self) -> u64 {
        let base = self.http.as_deref().expect("stats need the http listener");
        let text = ureq::get(&format!("{base}/sim/stats"))
            .call()
            .expect("smgr-sim stats")
            .into_string()
            .expect("stats");
        let stats: serde_json::Value = serde_json::from_str(&text).expect("stats are JSON");
        stats["items"].as_u64().expect("items")
    }

    /// POSTs a control command (`/sim/fault`, `/sim/role`).
    pub fn control(&self, path: &str, body: serde_json::Value) {
        let base = self
            .http
            .as_deref()
            .expect("control needs the http listener");
        ureq::post(&format!("{base}{path}"))
            .send_string(&body.to_string())
            .expect("smgr-sim control");
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `id`s of the object-scope items for one element.
pub fn object_ids(
    items: &[serde_json::Value],
    element: &str,
) -> std::collections::BTreeSet<String> {
    items
        .iter()
        .filter(|i| i["element"] == element && i["scope"] == "object")
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

/// `omcmsync ARGS --state-dir STATE` (the operator's command line).
pub fn omcmsync_cli(state_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_omcmsync"))
        .args(args)
        .arg("--state-dir")
        .arg(state_dir)
        .output()
        .expect("run omcmsync")
}

/// `omcmsync status --json` for the module on `state_dir`, once it answers (within `wait`).
pub fn module_status(state_dir: &Path, wait: Duration) -> serde_json::Value {
    let deadline = Instant::now() + wait;
    loop {
        let out = omcmsync_cli(state_dir, &["status", "--json"]);
        if out.status.success() {
            return serde_json::from_slice(&out.stdout).expect("status --json is JSON");
        }
        assert!(
            Instant::now() < deadline,
            "status never answered: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
