//! The packages: the .deb builds, installs with dpkg, its installed snippets (enabled as an
//! operator would) pass `rsyslogd -N1` with the module loaded by name from rsyslog's module
//! directory, and a purge removes it; the .rpm builds with the RHEL paths. Needs root and the
//! cargo-deb / cargo-generate-rpm tools (scripts/test installs them).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// The package scripts/test built before the tests (`$OMCMSYNC_DEB`, `$OMCMSYNC_RPM`), or else
/// builds release binaries in their own target directory (the outer `cargo test` holds the lock
/// on `target/`) and runs `cargo <tool>` on them.
fn build_package(tool: &str, out_dir: &str, ext: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(format!("OMCMSYNC_{}", ext.to_uppercase())) {
        return PathBuf::from(p);
    }
    let target = repo().join("target/packaging");
    let status = Command::new("cargo")
        .current_dir(repo())
        .env("CARGO_TARGET_DIR", &target)
        .args(["build", "--release", "--quiet"])
        .status()
        .unwrap();
    assert!(status.success(), "release build");
    let out = Command::new("cargo")
        .current_dir(repo())
        .env("CARGO_TARGET_DIR", &target)
        .arg(tool)
        .args(tool_args(tool, &target))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo {tool}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = target.join(out_dir);
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == ext))
        .unwrap_or_else(|| panic!("no .{ext} in {}", dir.display()))
}

fn tool_args(tool: &str, target: &Path) -> Vec<String> {
    match tool {
        "deb" => vec!["--no-build".into()],
        _ => vec!["--target-dir".into(), target.display().to_string()],
    }
}

fn run(cmd: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(cmd).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

/// Purges the package and the operator's files the test added, whatever happens.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = run("dpkg", &["--purge", "omcmsync"]);
        let _ = std::fs::remove_dir_all("/etc/omcmsync");
    }
}

#[test]
fn deb_installs_passes_n1_and_purges() {
    let deb = build_package("deb", "debian", "deb");
    let _ = run("dpkg", &["--purge", "omcmsync"]);
    let (ok, out) = run("dpkg", &["-i", deb.to_str().unwrap()]);
    let guard = Installed;
    assert!(ok, "dpkg -i: {out}");
    let module = Path::new("/usr/lib/x86_64-linux-gnu/rsyslog/omcmsync.so");
    assert!(module.exists() && Path::new("/usr/bin/omcmsync").exists());
    assert!(
        Path::new("/var/lib/omcmsync").is_dir(),
        "state directory created"
    );
    assert!(Path::new("/etc/rsyslog.d/omcmsync/omcmsync-action.conf").exists());

    // Enable it as the operator would: elements from the example, System Manager's CA.
    std::fs::copy(
        "/etc/omcmsync/elements.json.example",
        "/etc/omcmsync/elements.json",
    )
    .unwrap();
    let (ok, out) = run("/usr/bin/smgr-sim", &["gen-certs", "/etc/omcmsync/tls"]);
    assert!(ok, "{out}");
    std::fs::copy("/etc/omcmsync/tls/ca.pem", "/etc/omcmsync/tls/smgr-ca.pem").unwrap();
    let dir = TestDir::new();
    let conf = format!(
        "global(workDirectory=\"{}\")\n\
         include(file=\"/etc/rsyslog.d/omcmsync/omcmsync-template.conf\")\n\
         include(file=\"/etc/rsyslog.d/omcmsync/omcmsync-input-tls.conf\")\n\
         include(file=\"/etc/rsyslog.d/omcmsync/omcmsync-action.conf\")\n",
        dir.p("work")
    );
    let check = check_config(&dir, &conf, &[]);
    assert!(check.ok, "installed snippets: {}", check.output);

    drop(guard);
    assert!(!module.exists(), "purge removes the module");
    assert!(
        !Path::new("/var/lib/omcmsync").exists(),
        "purge removes the state"
    );
}

#[test]
fn rpm_builds_with_rhel_paths() {
    let rpm = build_package("generate-rpm", "generate-rpm", "rpm");
    let (ok, listing) = run("rpm", &["-qlp", rpm.to_str().unwrap()]);
    assert!(ok, "{listing}");
    for path in [
        "/usr/lib64/rsyslog/omcmsync.so",
        "/usr/bin/omcmsync",
        "/etc/rsyslog.d/omcmsync/omcmsync-action.conf",
        "/usr/share/doc/omcmsync/configuration.md",
    ] {
        assert!(
            listing.lines().any(|l| l == path),
            "{path} missing from:\n{listing}"
        );
    }
    let (ok, requires) = run("rpm", &["-qp", "--requires", rpm.to_str().unwrap()]);
    assert!(ok && requires.contains("rsyslog >= 8.2302"), "{requires}");
}
