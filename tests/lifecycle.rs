//! A site's life with the packages, in Debian 11, 12 and 13 roots (`dpkg --root`) and an rpm
//! scratch root over Debian 11, each with its own rsyslogd running the packaged module, a CM
//! that forwards over TCP with a queue of its own (an rsyslogd with omfwd, as CM's is), and a
//! System Manager stand-in:
//! - an unattended upgrade (no terminal) to a build whose action snippet changed completes,
//!   leaves no `.dpkg-*`/`.rpmnew` file, installs the new snippet and keeps the site's values
//!   (`/etc/omcmsync/omcmsync.conf`) in force;
//! - a removal (not a purge), then rsyslog's restart (what rsyslog's dpkg trigger and the
//!   .rpm's scriptlet do), leaves no input listening; a change CM sends meanwhile waits in
//!   CM's queue and is delivered once the package is installed again;
//! - a purge (`rpm -e`) with System Manager down says how many changes are still pending (the
//!   count `omcmsync status` shows) and keeps them.
//!
//! Needs root (dpkg, rpm, mounts) and the Debian roots of `scripts/rsyslog-root`.

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::packages::*;
use common::*;

const WAIT: Duration = Duration::from_secs(90);

/// The line the release-2 builds add to the action snippet.
const RELEASE_2: &str = "# release 2: queue.size doubled";

#[test]
fn deb_lifecycle_on_debian_11() {
    deb_lifecycle("bullseye");
}

#[test]
fn deb_lifecycle_on_debian_12() {
    deb_lifecycle("bookworm");
}

#[test]
fn deb_lifecycle_on_debian_13() {
    deb_lifecycle("trixie");
}

#[test]
fn rpm_lifecycle_in_a_scratch_root() {
    let work = TestDir::new();
    let v2 = rpm_with_changed_snippet(&work);
    let scratch = Scratch::over("bullseye");
    let ok = |(ok, out): (bool, String)| assert!(ok, "{out}");
    ok(scratch.rpm(&["--initdb"]));
    // Debian's rsyslogd looks for modules in its own directory, not in RHEL's /usr/lib64.
    std::os::unix::fs::symlink(
        "/usr/lib64/rsyslog/omcmsync.so",
        scratch.path("/usr/lib/x86_64-linux-gnu/rsyslog/omcmsync.so"),
    )
    .unwrap();
    let rpm = packages().rpm.to_str().unwrap();
    let v2 = v2.to_str().unwrap();
    let manager = Manager {
        install: &|| ok(scratch.rpm(&["-i", "--nodeps", rpm])),
        upgrade: &|| ok(scratch.rpm(&["-U", "--nodeps", v2])),
        remove: &|| ok(scratch.rpm(&["-e", "--nodeps", "omcmsync"])),
        reinstall: &|| ok(scratch.rpm(&["-i", "--nodeps", v2])),
        purge: &|| scratch.rpm(&["-e", "--nodeps", "omcmsync"]),
    };
    lives_through_upgrade_removal_and_reinstall(&scratch, &manager);
}

fn deb_lifecycle(suite: &str) {
    let work = TestDir::new();
    let v2 = deb_with_changed_snippet(&work);
    let scratch = Scratch::over(suite);
    // Each step restarts rsyslog through its dpkg trigger on a real host.
    let dpkg = |args: &[&str]| {
        let (ok, out) = scratch.dpkg(args);
        assert!(ok, "dpkg {args:?}: {out}");
        assert!(out.contains("Processing triggers for rsyslog"), "{out}");
    };
    let deb = packages().deb.to_str().unwrap();
    let v2 = v2.to_str().unwrap();
    let manager = Manager {
        install: &|| dpkg(&["-i", deb]),
        upgrade: &|| dpkg(&["-i", v2]),
        remove: &|| dpkg(&["-r", "omcmsync"]),
        reinstall: &|| dpkg(&["-i", v2]),
        purge: &|| scratch.dpkg(&["--purge", "omcmsync"]),
    };
    lives_through_upgrade_removal_and_reinstall(&scratch, &manager);
}

/// The package manager's steps, each asserting its own success.
struct Manager<'a> {
    install: &'a dyn Fn(),
    upgrade: &'a dyn Fn(),
    remove: &'a dyn Fn(),
    reinstall: &'a dyn Fn(),
    /// `dpkg --purge` (rpm has none: `rpm -e`): success and what it said.
    purge: &'a dyn Fn() -> (bool, String),
}

fn lives_through_upgrade_removal_and_reinstall(scratch: &Scratch, manager: &Manager) {
    let dir = TestDir::new();
    dir.use_root(&scratch.root());
    (manager.install)();
    let sim = Sim::start(&dir, &[]);
    let ports = Ports::free();
    write_site_files(scratch, sim.url(), ports.tcp);
    let site_values = std::fs::read(scratch.path("/etc/omcmsync/omcmsync.conf")).unwrap();
    let conf = smgr_host_conf(&dir);
    let cm_dir = TestDir::new();
    let cm = cm_forwarding_to(&cm_dir, ports.tcp);
    let change = |id: u64| cm.send_tcp(&[station_change(id)]);
    let delivered = |id: &str| {
        sim.wait_items(WAIT, |items| object_ids(items, "cm-east").contains(id));
    };

    let d = Daemon::start_config(&dir, Ports { ..ports }, &conf);
    change(1);
    delivered("1");

    (manager.upgrade)();
    assert_eq!(
        leftovers(scratch),
        Vec::<PathBuf>::new(),
        "files beside the site's"
    );
    let snippet = scratch.path("/usr/share/omcmsync/rsyslog/omcmsync-action.conf");
    assert!(std::fs::read_to_string(snippet)
        .unwrap()
        .contains(RELEASE_2));
    let kept = std::fs::read(scratch.path("/etc/omcmsync/omcmsync.conf")).unwrap();
    assert_eq!(kept, site_values, "the upgrade changed the site's values");
    assert!(d.stop(WAIT).success());
    let d = Daemon::start_config(&dir, Ports { ..ports }, &conf);
    change(2);
    delivered("2");

    (manager.remove)();
    assert!(d.stop(WAIT).success());
    let mut d = Daemon::spawn(&dir, Ports { ..ports }, &conf, &[]);
    wait_started(&dir, 3);
    assert!(d.running(), "rsyslogd without the package: {}", d.stderr());
    assert!(
        TcpStream::connect(("127.0.0.1", ports.tcp)).is_err(),
        "an input still listens for CM after the removal"
    );
    change(3);
    std::thread::sleep(Duration::from_secs(2));
    assert!(d.running());

    (manager.reinstall)();
    assert!(d.stop(WAIT).success());
    let d = Daemon::start_config(&dir, Ports { ..ports }, &conf);
    delivered("3");

    // System Manager down: change 4 stays pending, and the purge keeps the state and says so.
    drop(sim);
    change(4);
    let state = scratch.path("/var/lib/omcmsync");
    let deadline = Instant::now() + WAIT;
    while module_status(&state, WAIT)["counters"]["keys.pending"] != 1 {
        assert!(Instant::now() < deadline, "{}", module_status(&state, WAIT));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(d.stop(WAIT).success());
    let (ok, said) = (manager.purge)();
    assert!(ok, "{said}");
    assert!(
        said.contains("it holds 1 resync request(s) not yet delivered"),
        "{said}"
    );
    assert!(
        state.join("queue.log").exists(),
        "the pending change was dropped"
    );
}

/// The site's files as packaging/README.md has a site write them, pointed at `smgr_url` and
/// with the site's own input (plain TCP on `port`: the three roots' tests run at once).
fn write_site_files(scratch: &Scratch, smgr_url: &str, port: u16) {
    let example = |name: &str| {
        std::fs::read_to_string(scratch.path(&format!("/usr/share/omcmsync/examples/{name}")))
            .unwrap()
    };
    let values: String = example("omcmsync.conf")
        .replace("https://smgr.example.net", smgr_url)
        .lines()
        .filter(|l| !l.starts_with("smgr.tls.cacert"))
        .map(|l| format!("{l}\n"))
        .collect();
    let etc = scratch.path("/etc/omcmsync");
    std::fs::write(
        etc.join("omcmsync.conf"),
        values + "coalesce.window.ms=\"100\"\n",
    )
    .unwrap();
    std::fs::write(etc.join("elements.json"), ELEMENTS).unwrap();
    std::fs::write(
        etc.join("rsyslog-input.conf"),
        format!(
            "module(load=\"imptcp\")\n\
             input(type=\"imptcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"omcmsync\")\n"
        ),
    )
    .unwrap();
    let tls = "include(file=\"/usr/share/omcmsync/rsyslog/omcmsync-input-tls.conf\"";
    let site = "include(file=\"/usr/share/omcmsync/rsyslog/omcmsync-input-site.conf\"";
    let enabling = example("60-omcmsync.conf")
        .replace(tls, &format!("# {tls}"))
        .replace(&format!("# {site}"), site);
    assert!(enabling.contains(&format!("\n{site}")), "{enabling}");
    std::fs::write(scratch.path("/etc/rsyslog.d/60-omcmsync.conf"), enabling).unwrap();
}

/// What the root's rsyslog.conf amounts to for this test: `/etc/rsyslog.d/*.conf`, rsyslog's
/// own messages to the test's log, the work directory in the test's.
fn smgr_host_conf(dir: &TestDir) -> String {
    format!(
        "global(workDirectory=\"{}\" processInternalMessages=\"on\")\n\
         action(type=\"omfile\" file=\"{}\")\n\
         include(file=\"/etc/rsyslog.d/*.conf\")\n",
        dir.p("work"),
        dir.p("rsyslog.log")
    )
}

/// CM's side: an rsyslogd that forwards what it gets over TCP to `port`, keeping it queued
/// (and retrying every second or two) while nothing listens there.
fn cm_forwarding_to(dir: &TestDir, port: u16) -> Daemon {
    let ports = Ports::free();
    let text = format!(
        r#"global(workDirectory="{work}")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{tcp}" ruleset="forward")
ruleset(name="forward") {{
  action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp"
         queue.type="LinkedList" action.resumeRetryCount="-1"
         action.resumeInterval="1" action.resumeIntervalMax="2")
}}
"#,
        work = dir.p("work"),
        tcp = ports.tcp,
    );
    Daemon::start_config(dir, ports, &text)
}

/// Waits until rsyslogd has logged its `n`th start in `dir`.
fn wait_started(dir: &TestDir, n: usize) {
    let deadline = Instant::now() + WAIT;
    while dir.rsyslog_log().matches("\"] start").count() < n {
        assert!(Instant::now() < deadline, "{}", dir.rsyslog_log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Files a package manager leaves beside a configuration file it would not replace.
fn leftovers(scratch: &Scratch) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for top in ["/etc", "/usr/share/omcmsync"] {
        walk(&scratch.path(top), &mut found);
    }
    found.retain(|p| {
        let name = p.file_name().unwrap().to_string_lossy();
        [".dpkg-", ".rpmnew", ".rpmsave", ".ucf-"]
            .iter()
            .any(|s| name.contains(s))
    });
    found
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The action snippet of release 2: a queue twice as large, and a line that says so.
fn changed_snippet(text: &str) -> String {
    let changed = text.replace("queue.size=\"100000\"", "queue.size=\"200000\"");
    assert_ne!(changed, text, "the action snippet's queue.size moved");
    format!("{changed}{RELEASE_2}\n")
}

/// The .deb rebuilt as release 2 with a changed action snippet (dpkg-deb, md5sums updated).
fn deb_with_changed_snippet(work: &TestDir) -> PathBuf {
    let tree = work.path("deb-2");
    let deb = packages().deb.to_str().unwrap();
    run_ok("dpkg-deb", &["-R", deb, tree.to_str().unwrap()]);
    let inside = "usr/share/omcmsync/rsyslog/omcmsync-action.conf";
    let snippet = tree.join(inside);
    let text = std::fs::read_to_string(&snippet).unwrap();
    std::fs::write(&snippet, changed_snippet(&text)).unwrap();
    // cargo-deb writes no md5sums; if a later one does, it must match.
    if let Ok(sums) = std::fs::read_to_string(tree.join("DEBIAN/md5sums")) {
        let md5 = run_ok("md5sum", &[snippet.to_str().unwrap()]);
        let md5 = md5.split_whitespace().next().unwrap();
        let sums: String = sums
            .lines()
            .map(|l| match l.ends_with(inside) {
                true => format!("{md5}  {inside}\n"),
                false => format!("{l}\n"),
            })
            .collect();
        std::fs::write(tree.join("DEBIAN/md5sums"), sums).unwrap();
    }
    let control = tree.join("DEBIAN/control");
    let version = env!("CARGO_PKG_VERSION");
    let text = std::fs::read_to_string(&control).unwrap().replace(
        &format!("Version: {version}-1\n"),
        &format!("Version: {version}-2\n"),
    );
    assert!(text.contains("-2\n"), "{text}");
    std::fs::write(&control, text).unwrap();
    let out = work.path("omcmsync_2.deb");
    run_ok(
        "dpkg-deb",
        &[
            "--root-owner-group",
            "-b",
            tree.to_str().unwrap(),
            out.to_str().unwrap(),
        ],
    );
    out
}

/// The .rpm built again by rpmbuild from the shipped spec as release 2, from a source tree
/// whose action snippet changed (the ELF files and extras scripts/package made).
fn rpm_with_changed_snippet(work: &TestDir) -> PathBuf {
    let src = work.path("src");
    std::fs::create_dir_all(src.join("rsyslog-conf")).unwrap();
    for shared in ["LICENSE", "README.md", "docs", "packaging"] {
        std::os::unix::fs::symlink(repo().join(shared), src.join(shared)).unwrap();
    }
    for e in std::fs::read_dir(repo().join("rsyslog-conf")).unwrap() {
        let path = e.unwrap().path();
        let mut text = std::fs::read_to_string(&path).unwrap();
        if path.ends_with("omcmsync-action.conf") {
            text = changed_snippet(&text);
        }
        std::fs::write(
            src.join("rsyslog-conf").join(path.file_name().unwrap()),
            text,
        )
        .unwrap();
    }
    let target = repo().join("target/x86_64-unknown-linux-gnu");
    let define = |name: &str, value: &Path| format!("{name} {}", value.display());
    let out = work.path("rpms");
    run_ok(
        "rpmbuild",
        &[
            "-bb",
            "--quiet",
            repo().join("packaging/rpm/omcmsync.spec").to_str().unwrap(),
            "--define",
            &define("_topdir", &work.path("rpmbuild")),
            "--define",
            &define("_rpmdir", &out),
            "--define",
            "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm",
            "--define",
            &format!("omcm_version {}", env!("CARGO_PKG_VERSION")),
            "--define",
            "omcm_release 2",
            "--define",
            &define("omcm_src", &src),
            "--define",
            &define("omcm_bin", &target.join("dist")),
            "--define",
            &define("omcm_extras", &repo().join("target/package-extras")),
        ],
    );
    out.join(format!(
        "omcmsync-{}-2.x86_64.rpm",
        env!("CARGO_PKG_VERSION")
    ))
}
