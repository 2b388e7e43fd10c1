//! The packages as an administrator meets them. All four are built by `scripts/package` (the
//! test command passes the main ones in `$OMCMSYNC_DEB` / `$OMCMSYNC_RPM`). Checked here:
//! - every ELF file they ship needs glibc 2.28 at most (RHEL 8), is stripped, and holds no
//!   test-build fault hook; smgr-sim is only in omcmsync-smgr-sim;
//! - the .deb installs with dpkg on this host: its only conffiles hold no site value, it
//!   activates rsyslog's trigger, the example enabling file passes `rsyslogd -N1`, a reinstall
//!   keeps a site's mode on the state directory, and a purge warns about queued requests;
//! - the .rpm installs with `rpm --root` into a scratch copy of a Debian 11 root: files, modes,
//!   owned directories, config flags, `%license`, URL, scriptlets, dependencies; its module
//!   loads into that root's rsyslogd 8.2102 and delivers;
//! - the .deb in a scratch Debian root whose rsyslogd drops privileges to a `syslog` user: the
//!   state directory is that user's, and changes are delivered;
//! - the SELinux policy module compiles (checkmodule) and the AppArmor addition parses.
//!
//! Upgrade, removal and reinstall over a site's life: tests/lifecycle.rs. Needs root (dpkg,
//! mounts) and the Debian roots of `scripts/rsyslog-root`.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::packages::*;
use common::*;

const WAIT: Duration = Duration::from_secs(60);

fn files_below(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let kind = e.file_type().unwrap();
        if kind.is_dir() {
            files_below(&e.path(), out);
        } else if kind.is_file() {
            out.push(e.path());
        }
    }
}

/// The highest `GLIBC_x.y` version an ELF file's dynamic symbols name.
fn glibc_needed(elf: &Path) -> (u32, u32) {
    let out = run_ok("objdump", &["-T", elf.to_str().unwrap()]);
    out.split("GLIBC_")
        .skip(1)
        .filter_map(|v| {
            let v: String = v
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
            Some((parts.next()??, parts.next().flatten().unwrap_or(0)))
        })
        .max()
        .unwrap_or((0, 0))
}

#[test]
fn packaged_elf_files_need_glibc_2_28_at_most_and_are_stripped() {
    let p = packages();
    // The module, the tool and the OSSI client; smgr-sim alone.
    for (package, expected) in [(&p.deb, 3), (&p.rpm, 3), (&p.sim_deb, 1), (&p.sim_rpm, 1)] {
        let dir = TestDir::new();
        unpack(package, &dir.path("files"));
        let mut files = Vec::new();
        files_below(&dir.path("files"), &mut files);
        let elves: Vec<&PathBuf> = files
            .iter()
            .filter(|f| std::fs::read(f).unwrap().starts_with(b"\x7fELF"))
            .collect();
        assert_eq!(elves.len(), expected, "{}: {files:?}", package.display());
        // smgr-sim, a test tool, is in its own package, never on the administrator's PATH.
        let sim = files
            .iter()
            .any(|f| f.ends_with("usr/libexec/omcmsync/smgr-sim"));
        assert_eq!(sim, expected == 1, "{}: {files:?}", package.display());
        assert!(!files.iter().any(|f| f.ends_with("usr/bin/smgr-sim")));
        // The OSSI client, which reconcile.program names by default, is the module's.
        let ossi = files
            .iter()
            .any(|f| f.ends_with("usr/libexec/omcmsync/ossi"));
        assert_eq!(ossi, expected == 3, "{}: {files:?}", package.display());
        for elf in elves {
            let glibc = glibc_needed(elf);
            assert!(
                glibc <= (2, 28),
                "{} needs GLIBC_{}.{}",
                elf.display(),
                glibc.0,
                glibc.1
            );
            let sections = run_ok("objdump", &["-h", elf.to_str().unwrap()]);
            assert!(
                !sections.contains(".debug_info") && !sections.contains(".symtab"),
                "{} is not stripped",
                elf.display()
            );
            let bytes = std::fs::read(elf).unwrap();
            assert!(
                !bytes.windows(11).any(|w| w == b"OMCM_FAULT_"),
                "{} holds a test-build fault hook",
                elf.display()
            );
        }
    }
}

/// Purges the package and the operator's files the test added, whatever happens.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = run("dpkg", &["--purge", "omcmsync", "omcmsync-smgr-sim"]);
        let _ = std::fs::remove_dir_all("/etc/omcmsync");
    }
}

/// A queue.log with `n` changes that SMGR never got, written by the module itself.
fn queue_log_with_pending(n: u64) -> Vec<u8> {
    let dir = TestDir::new();
    let d = Daemon::start(&dir, &action(&dir, ""));
    let lines: Vec<String> = (1..=n)
        .map(|i| syslog_line("cm-east", "cmdhist", &format!("change station {i}")))
        .collect();
    d.send_tcp(&lines);
    wait_json_lines(&dir.path("trace.json"), n as usize, WAIT);
    assert!(d.stop(WAIT).success());
    std::fs::read(dir.path("state/queue.log")).unwrap()
}

#[test]
fn deb_installs_passes_n1_keeps_a_sites_mode_and_warns_on_purge() {
    let p = packages();
    let deb = p.deb.to_str().unwrap();
    let fields = run_ok(
        "dpkg-deb",
        &["-f", deb, "Depends", "Recommends", "Homepage"],
    );
    assert!(fields.contains("rsyslog (>= 8.2102)"), "{fields}");
    assert!(fields.contains("libc6 (>= 2.28)"), "{fields}");
    assert!(fields.contains("Recommends: rsyslog-gnutls"), "{fields}");
    assert!(fields.contains("Homepage: "), "{fields}");
    let control = |name: &str| {
        run_ok(
            "sh",
            &[
                "-c",
                &format!("dpkg-deb --ctrl-tarfile '{deb}' | tar -xO ./{name}"),
            ],
        )
    };
    // The only conffiles hold no site value; every site value is in a file no package ships.
    let conffiles = control("conffiles");
    assert_eq!(
        conffiles.lines().collect::<Vec<_>>(),
        [
            "/etc/apparmor.d/rsyslog.d/omcmsync",
            "/etc/logrotate.d/omcmsync"
        ],
        "{conffiles}"
    );
    // rsyslog's trigger (interest in /etc/rsyslog.d) restarts it on install, upgrade, removal.
    assert_eq!(
        control("triggers").trim(),
        "activate-noawait /etc/rsyslog.d"
    );

    let sim_deb = p.sim_deb.to_str().unwrap();
    let _ = run("dpkg", &["--purge", "omcmsync", "omcmsync-smgr-sim"]);
    let (ok, out) = run("dpkg", &["-i", deb, sim_deb]);
    let guard = Installed;
    assert!(ok, "dpkg -i: {out}");
    let license = std::fs::read_to_string("/usr/share/doc/omcmsync/copyright").unwrap();
    assert!(license.contains("Apache License"), "{license}");
    let module = Path::new("/usr/lib/x86_64-linux-gnu/rsyslog/omcmsync.so");
    assert!(module.exists() && Path::new("/usr/bin/omcmsync").exists());
    assert!(Path::new("/etc/apparmor.d/rsyslog.d/omcmsync").exists());
    assert!(Path::new("/usr/share/bash-completion/completions/omcmsync").exists());
    // The man pages install and render: the command line's, and the module's parameters
    // (built from docs/configuration.md's table).
    for (page, expect) in [
        ("/usr/share/man/man1/omcmsync.1.gz", "omcmsync-status(1)"),
        ("/usr/share/man/man1/omcmsync.1.gz", "EXIT STATUS"),
        ("/usr/share/man/man1/omcmsync-check.1.gz", "CHECKS"),
        ("/usr/share/man/man1/omcmsync-deadletter.1.gz", "requeue"),
        (
            "/usr/share/man/man5/rsyslog-omcmsync.5.gz",
            "smgr.transport",
        ),
    ] {
        let text = run_ok("man", &["-P", "cat", "-l", page]);
        assert!(text.contains(expect), "{page} rendered as:\n{text}");
    }
    let text = run_ok(
        "man",
        &[
            "-P",
            "cat",
            "-l",
            "/usr/share/man/man5/rsyslog-omcmsync.5.gz",
        ],
    );
    for (param, _) in omcmsync::config::PARAMS {
        assert!(
            text.contains(param),
            "{param} missing from rsyslog-omcmsync(5)"
        );
    }
    let state = Path::new("/var/lib/omcmsync");
    assert_eq!(mode(state), 0o750, "state directory created 0750");

    // Enabled as the operator would: the site's values and elements from the examples, System
    // Manager's CA, the example's enabling file as installed.
    let examples = Path::new("/usr/share/omcmsync/examples");
    for (example, site) in [
        ("elements.json", "elements.json"),
        ("omcmsync.conf", "omcmsync.conf"),
    ] {
        std::fs::copy(
            examples.join(example),
            Path::new("/etc/omcmsync").join(site),
        )
        .unwrap();
    }
    run_ok(
        "/usr/libexec/omcmsync/smgr-sim",
        &["gen-certs", "/etc/omcmsync/tls"],
    );
    std::fs::copy("/etc/omcmsync/tls/ca.pem", "/etc/omcmsync/tls/smgr-ca.pem").unwrap();
    let dir = TestDir::new();
    let conf = format!(
        "global(workDirectory=\"{}\")\n\
         include(file=\"/usr/share/omcmsync/examples/60-omcmsync.conf\")\n",
        dir.p("work")
    );
    let check = check_config(&dir, &conf, &["-o", &dir.p("full.conf")]);
    assert!(check.ok, "installed snippets: {}", check.output);
    let full = std::fs::read_to_string(dir.path("full.conf")).unwrap();
    assert!(
        full.contains("type=\"omcmsync\"") && full.contains("port=\"6514\""),
        "{full}"
    );

    // A site's own mode survives a reinstall (an upgrade runs the same postinst).
    std::fs::set_permissions(state, std::fs::Permissions::from_mode(0o700)).unwrap();
    run_ok("dpkg", &["-i", deb]);
    assert_eq!(mode(state), 0o700, "postinst reset the site's mode");

    // Purge with three requests still queued: the state is kept, with the count `omcmsync
    // status` shows and what to do; once they are delivered (here: dropped by hand), a purge
    // removes it.
    std::fs::write(state.join("queue.log"), queue_log_with_pending(3)).unwrap();
    let (ok, out) = run("dpkg", &["--purge", "omcmsync"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("/var/lib/omcmsync is kept: it holds 3 resync request(s) not yet delivered"),
        "purge said: {out}"
    );
    assert!(!module.exists(), "purge removes the module");
    assert!(
        state.join("queue.log").exists(),
        "purge keeps undelivered changes"
    );
    run_ok("dpkg", &["-i", deb]);
    std::fs::remove_file(state.join("queue.log")).unwrap();
    let (ok, out) = run("dpkg", &["--purge", "omcmsync"]);
    assert!(ok, "{out}");
    assert!(!out.contains("is kept"), "{out}");
    drop(guard);
    assert!(!state.exists(), "purge removes a state with nothing left");
}

/// Five station changes sent to `d` reach `sim`.
fn five_stations_arrive(d: &Daemon, sim: &Sim) {
    let lines: Vec<String> = (1..=5)
        .map(|i| syslog_line("cm-east", "cmdhist", &format!("change station {i}")))
        .collect();
    d.send_tcp(&lines);
    let items = sim.wait_items(WAIT, |i| object_ids(i, "cm-east").len() == 5);
    assert_eq!(object_ids(&items, "cm-east").len(), 5);
}

/// `[mode user group flags path]` for every file of the .rpm.
fn rpm_files(rpm: &str) -> Vec<Vec<String>> {
    let fmt = "[%{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILEFLAGS:fflags}. %{FILENAMES}\\n]";
    run_ok("rpm", &["-qp", "--qf", fmt, rpm])
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

#[test]
fn rpm_installs_in_a_scratch_root_and_its_module_delivers_on_rsyslog_8_2102() {
    let p = packages();
    let rpm = p.rpm.to_str().unwrap();
    let url = run_ok("rpm", &["-qp", "--qf", "%{URL} %{RELEASE}", rpm]);
    assert!(url.starts_with("https://") && url.ends_with(" 1"), "{url}");
    let requires = run_ok("rpm", &["-qp", "--requires", rpm]);
    assert!(requires.contains("rsyslog >= 8.2102"), "{requires}");
    assert!(requires.contains("glibc >= 2.28"), "{requires}");
    let recommends = run_ok("rpm", &["-qp", "--recommends", rpm]);
    assert!(recommends.contains("rsyslog-gnutls"), "{recommends}");
    let description = run_ok("rpm", &["-qp", "--qf", "%{DESCRIPTION}", rpm]);
    assert!(description.contains("System Manager"), "{description}");
    let scripts = run_ok("rpm", &["-qp", "--scripts", rpm]);
    assert!(
        scripts.contains("postinstall scriptlet")
            && scripts.contains("/usr/libexec/omcmsync/setup-dirs")
            && scripts.contains("semodule -i \"$pp\"")
            && scripts.contains("postuninstall scriptlet")
            && scripts.contains("semodule -r omcmsync"),
        "{scripts}"
    );

    let files = rpm_files(rpm);
    let file = |path: &str| {
        files
            .iter()
            .find(|f| f[4] == path)
            .unwrap_or_else(|| panic!("{path} not in the rpm: {files:?}"))
    };
    for page in [
        "/usr/share/man/man1/omcmsync.1.gz",
        "/usr/share/man/man5/rsyslog-omcmsync.5.gz",
    ] {
        file(page);
    }
    // The logrotate file is configuration; the snippets and examples are the package's,
    // replaced by every upgrade: the site's values live in files no package ships.
    let flags = |path: &str| file(path)[3].clone();
    assert!(flags("/etc/logrotate.d/omcmsync").contains('c'));
    assert!(flags("/etc/logrotate.d/omcmsync").contains('n'));
    for shipped in [
        "/usr/share/omcmsync/rsyslog/omcmsync-action.conf",
        "/usr/share/omcmsync/rsyslog/omcmsync-template.conf",
        "/usr/share/omcmsync/examples/omcmsync.conf",
        "/usr/share/omcmsync/examples/60-omcmsync.conf",
    ] {
        assert!(
            !flags(shipped).contains('c'),
            "{shipped}: {:?}",
            file(shipped)
        );
    }
    assert!(files.iter().all(|f| !f[4].starts_with("/etc/omcmsync/")));
    assert!(flags("/usr/share/licenses/omcmsync/LICENSE").contains('l'));
    assert!(!files.iter().any(|f| f[4].ends_with("smgr-sim")));
    let sim = rpm_files(p.sim_rpm.to_str().unwrap());
    let sim: Vec<&str> = sim
        .iter()
        .map(|f| f[4].as_str())
        .filter(|f| !f.starts_with("/usr/lib/.build-id"))
        .collect();
    assert_eq!(
        sim,
        ["/usr/libexec/omcmsync", "/usr/libexec/omcmsync/smgr-sim"]
    );
    for dir in [
        "/etc/omcmsync",
        "/usr/libexec/omcmsync",
        "/usr/share/omcmsync",
        "/usr/share/omcmsync/rsyslog",
        "/usr/share/omcmsync/examples",
        "/usr/share/omcmsync/selinux",
        "/usr/share/doc/omcmsync",
    ] {
        assert_eq!(file(dir)[0], "drwxr-xr-x", "{dir} owned");
    }
    assert_eq!(
        file("/usr/lib64/rsyslog/omcmsync.so")[..3],
        ["-rwxr-xr-x", "root", "root"]
    );
    assert_eq!(file("/usr/bin/omcmsync")[0], "-rwxr-xr-x");
    assert!(files.iter().all(|f| f[1] == "root" && f[2] == "root"));

    // Installed as rpm would on the host, into a Debian 11 root (rsyslogd 8.2102, glibc 2.31).
    let scratch = Scratch::over("bullseye");
    let root = scratch.root();
    let root_s = root.to_str().unwrap();
    run_ok("rpm", &["--root", root_s, "--initdb"]);
    // --nodeps: the root's packages are in dpkg's database, not rpm's (checked above instead).
    run_ok("rpm", &["--root", root_s, "-i", "--nodeps", rpm]);
    for owned in ["/etc/omcmsync", "/etc/logrotate.d/omcmsync"] {
        assert_eq!(
            run_ok("rpm", &["--root", root_s, "-qf", owned]).trim(),
            "omcmsync-0.1.0-1.x86_64"
        );
    }
    let state = scratch.path("/var/lib/omcmsync");
    assert_eq!(mode(&state), 0o750, "%post created the state directory");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    run_ok(
        "rpm",
        &["--root", root_s, "-U", "--replacepkgs", "--nodeps", rpm],
    );
    assert_eq!(mode(&state), 0o700, "an upgrade reset the site's mode");

    let dir = TestDir::new();
    dir.use_root(&root);
    let sim = Sim::start(&dir, &[]);
    let ports = Ports::free();
    let text = config(
        &dir,
        ports,
        &action_to(&dir, sim.url(), r#"coalesce.window.ms="100""#),
    )
    .replace(
        &module_path().display().to_string(),
        "/usr/lib64/rsyslog/omcmsync.so",
    );
    let d = Daemon::start_config(&dir, ports, &text);
    five_stations_arrive(&d, &sim);
    assert!(
        !d.stderr().contains("could not load module"),
        "{}",
        d.stderr()
    );
    assert!(d.stop(WAIT).success());

    // Erased with three requests still queued: the state is kept and the count said is
    // `omcmsync status`'s (read by the package's own binary in %preun).
    std::fs::write(state.join("queue.log"), queue_log_with_pending(3)).unwrap();
    let (ok, out) = run("rpm", &["--root", root_s, "-e", "--nodeps", "omcmsync"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("it holds 3 resync request(s) not yet delivered"),
        "erase said: {out}"
    );
    assert!(state.join("queue.log").exists(), "erase keeps the state");
}

#[test]
fn deb_under_rsyslogs_privilege_drop_to_syslog_delivers() {
    let deb = &packages().deb;
    let scratch = Scratch::over("bookworm");
    let root = scratch.root();
    let root_s = root.to_str().unwrap();
    // As on Ubuntu: rsyslogd drops to a `syslog` user, named in rsyslog.conf.
    run_ok(
        "chroot",
        &[
            root_s,
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "syslog",
        ],
    );
    let conf = scratch.path("/etc/rsyslog.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str("\n$PrivDropToUser syslog\n$PrivDropToGroup syslog\n");
    std::fs::write(&conf, text).unwrap();
    run_ok("dpkg", &["--root", root_s, "-i", deb.to_str().unwrap()]);
    let state = scratch.path("/var/lib/omcmsync");
    let uid: u32 = run_ok("chroot", &[root_s, "id", "-u", "syslog"])
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        std::fs::metadata(&state).unwrap().uid(),
        uid,
        "state directory is syslog's"
    );
    assert_eq!(mode(&state), 0o750);

    let dir = TestDir::new();
    dir.use_root(&root);
    // The daemon works as `syslog` once it has dropped privileges: it must read the elements
    // file and write its own log and work directory there.
    for p in [dir.path(""), dir.path("work")] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    std::fs::set_permissions(
        dir.path("elements.json"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let sim = Sim::start(&dir, &[]);
    let ports = Ports::free();
    let action = format!(
        r#"action(type="omcmsync" name="omcmsync" smgr.url="{}" coalesce.window.ms="100"
       elements.file="{}" state.dir="/var/lib/omcmsync")"#,
        sim.url(),
        dir.p("elements.json")
    );
    let text = format!(
        "$PrivDropToUser syslog\n$PrivDropToGroup syslog\n{}",
        config(&dir, ports, &action)
            .replace(&module_path().display().to_string(), "omcmsync")
            .replace(
                &repo().join("rsyslog-conf").display().to_string(),
                "/usr/share/omcmsync/rsyslog"
            )
    );
    let d = Daemon::start_config(&dir, ports, &text);
    five_stations_arrive(&d, &sim);
    let log = std::fs::metadata(state.join("queue.log")).unwrap();
    assert_eq!(log.uid(), uid, "the module wrote its queue as syslog");
    let socket = std::fs::metadata(state.join("control.sock")).unwrap();
    assert_eq!(
        (socket.uid(), socket.permissions().mode() & 0o777),
        (uid, 0o600),
        "the control socket is syslog's alone"
    );
    assert!(d.stop(WAIT).success());
}

#[test]
fn selinux_policy_module_compiles_and_apparmor_addition_parses() {
    let (deb, rpm) = (&packages().deb, &packages().rpm);
    let dir = TestDir::new();
    unpack(rpm, &dir.path("rpm"));
    let selinux = dir.path("rpm/usr/share/omcmsync/selinux");
    let out = dir.path("omcmsync.mod");
    run_ok(
        "checkmodule",
        &[
            "-M",
            "-m",
            "-o",
            out.to_str().unwrap(),
            selinux.join("omcmsync.te").to_str().unwrap(),
        ],
    );
    run_ok(
        "semodule_package",
        &[
            "-o",
            dir.p("omcmsync.pp").as_str(),
            "-m",
            out.to_str().unwrap(),
            "-f",
            selinux.join("omcmsync.fc").to_str().unwrap(),
        ],
    );
    let te = std::fs::read_to_string(selinux.join("omcmsync.te")).unwrap();
    assert!(te.contains("allow syslogd_t http_port_t:tcp_socket name_connect;"));
    assert!(te.contains("syslogd_var_lib_t:sock_file { create unlink write"));
    // The module the rpm ships, built with the package: unpacked, it is the shipped policy.
    let shipped = dir.path("rpm/usr/share/selinux/packages/omcmsync.pp");
    run_ok(
        "semodule_unpackage",
        &[
            shipped.to_str().unwrap(),
            dir.p("shipped.mod").as_str(),
            dir.p("shipped.fc").as_str(),
        ],
    );
    assert_eq!(
        std::fs::read(dir.path("shipped.fc")).unwrap(),
        std::fs::read(selinux.join("omcmsync.fc")).unwrap()
    );
    assert_eq!(
        std::fs::read(dir.path("shipped.mod")).unwrap(),
        std::fs::read(&out).unwrap(),
        "the shipped module is the one built from the shipped .te"
    );

    unpack(deb, &dir.path("deb"));
    let addition = dir.path("deb/etc/apparmor.d/rsyslog.d/omcmsync");
    // A profile for rsyslogd that includes the addition, as Ubuntu's does (`#include <rsyslog.d>`).
    let profile = dir.path("usr.sbin.rsyslogd");
    std::fs::write(
        &profile,
        format!(
            "#include <tunables/global>\nprofile rsyslogd-omcmsync-check /usr/sbin/rsyslogd {{\n  #include <abstractions/base>\n  #include \"{}\"\n}}\n",
            addition.display()
        ),
    )
    .unwrap();
    run_ok(
        "apparmor_parser",
        &[
            "--skip-kernel-load",
            "--skip-cache",
            profile.to_str().unwrap(),
        ],
    );
    // The parser is no rubber stamp: a broken rule fails it.
    std::fs::write(&addition, "  /var/lib/omcmsync/** rwxq,\n").unwrap();
    assert!(
        !run(
            "apparmor_parser",
            &[
                "--skip-kernel-load",
                "--skip-cache",
                profile.to_str().unwrap()
            ]
        )
        .0
    );
}

/// setup-dirs gives the directories to the user rsyslogd drops to, in every spelling rsyslog
/// accepts (legacy and RainerScript, names or ids, any case; a commented-out line does not
/// count).
#[test]
fn setup_dirs_reads_every_spelling_of_the_privilege_drop() {
    let scratch = Scratch::over("bookworm");
    let root = scratch.root();
    let root_s = root.to_str().unwrap();
    let add = ["useradd", "--system", "--user-group", "--no-create-home"];
    run_ok("chroot", &[&[root_s][..], &add[..], &["syslog"]].concat());
    let uid = run_ok("chroot", &[root_s, "id", "-u", "syslog"]);
    std::fs::copy(
        repo().join("packaging/scripts/setup-dirs"),
        scratch.path("/tmp/setup-dirs"),
    )
    .unwrap();
    let cases = [
        ("$PrivDropToUser syslog\n", "syslog:syslog"),
        (
            &format!("$PrivDropToUserID {}\n", uid.trim()) as &str,
            "syslog:syslog",
        ),
        ("global(privDrop.user.name=\"syslog\")\n", "syslog:syslog"),
        (
            "global(PRIVDROP.USER.NAME=\"syslog\" privDrop.group.name=\"adm\")\n",
            "syslog:adm",
        ),
        (
            "module(load=\"imuxsock\")\nglobal(\n  privdrop.user.name=syslog\n)\n",
            "syslog:syslog",
        ),
        ("# $PrivDropToUser syslog\n", "root:root"),
    ];
    for (conf, owner) in cases {
        std::fs::write(scratch.path("/etc/rsyslog.d/zz-drop.conf"), conf).unwrap();
        for dir in ["/var/lib/omcmsync", "/var/log/omcmsync"] {
            let _ = std::fs::remove_dir_all(scratch.path(dir));
        }
        run_ok("chroot", &[root_s, "/bin/sh", "/tmp/setup-dirs"]);
        for dir in ["/var/lib/omcmsync", "/var/log/omcmsync"] {
            let got = run_ok("chroot", &[root_s, "stat", "-c", "%U:%G", dir]);
            assert_eq!(got.trim(), owner, "{conf:?}: {dir}");
        }
    }
}
