//! The built packages and scratch roots to install them into, for the packaging tests.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::repo;

/// The packages `scripts/package` builds: the test command passes the main ones in
/// `$OMCMSYNC_DEB` / `$OMCMSYNC_RPM`, the test tool's lie beside them; else they are built now.
pub struct Packages {
    pub deb: PathBuf,
    pub rpm: PathBuf,
    /// omcmsync-smgr-sim, System Manager's stand-in.
    pub sim_deb: PathBuf,
    pub sim_rpm: PathBuf,
}

pub fn packages() -> &'static Packages {
    static BUILT: OnceLock<Packages> = OnceLock::new();
    BUILT.get_or_init(|| {
        let (deb, rpm) = match (
            std::env::var_os("OMCMSYNC_DEB"),
            std::env::var_os("OMCMSYNC_RPM"),
        ) {
            (Some(deb), Some(rpm)) => (PathBuf::from(deb), PathBuf::from(rpm)),
            _ => {
                let out = run_ok("bash", &[repo().join("scripts/package").to_str().unwrap()]);
                let mut built = out.lines().rev().map(PathBuf::from);
                let rpm = built.next().unwrap();
                (built.next().unwrap(), rpm)
            }
        };
        let beside = |p: &Path, from: &str, to: &str| {
            let name = p.file_name().unwrap().to_str().unwrap();
            p.with_file_name(name.replacen(from, to, 1))
        };
        Packages {
            sim_deb: beside(&deb, "omcmsync_", "omcmsync-smgr-sim_"),
            sim_rpm: beside(&rpm, "omcmsync-", "omcmsync-smgr-sim-"),
            deb,
            rpm,
        }
    })
}

/// Runs a command to its end, without a terminal (standard input is /dev/null): whether it
/// succeeded, and what it printed (standard error first).
pub fn run(cmd: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

pub fn run_ok(cmd: &str, args: &[&str]) -> String {
    let (ok, out) = run(cmd, args);
    assert!(ok, "{cmd} {args:?}: {out}");
    out
}

/// A package's files, unpacked into `into`.
pub fn unpack(package: &Path, into: &Path) {
    std::fs::create_dir_all(into).unwrap();
    let p = package.display();
    let cmd = match package.extension().and_then(|e| e.to_str()) {
        Some("deb") => format!("dpkg-deb -x '{p}' ."),
        _ => format!("rpm2cpio '{p}' | cpio -idm --quiet"),
    };
    let status = Command::new("sh")
        .args(["-c", &cmd])
        .current_dir(into)
        .status()
        .unwrap();
    assert!(status.success(), "unpacking {p}");
}

pub fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// A scratch root: an overlay over one of scripts/rsyslog-root's Debian roots, so installing
/// into it leaves the cached root as it was. Unmounted and removed when dropped.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    pub fn over(suite: &str) -> Scratch {
        let base = run_ok(
            "bash",
            &[repo().join("scripts/rsyslog-root").to_str().unwrap(), suite],
        );
        let dir = tempfile::Builder::new()
            .prefix("omcm-scratch-")
            .tempdir_in("/var/tmp")
            .unwrap();
        for d in ["upper", "work", "root"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            base.trim(),
            dir.path().join("upper").display(),
            dir.path().join("work").display()
        );
        let root = dir.path().join("root");
        let root_s = root.to_str().unwrap();
        run_ok("mount", &["-t", "overlay", "overlay", "-o", &opts, root_s]);
        Scratch { dir }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn root_str(&self) -> String {
        self.root().display().to_string()
    }

    /// A path inside the root.
    pub fn path(&self, inside: &str) -> PathBuf {
        self.root().join(inside.trim_start_matches('/'))
    }

    /// Runs `dpkg --root ROOT args`, without a terminal.
    pub fn dpkg(&self, args: &[&str]) -> (bool, String) {
        run("dpkg", &[&["--root", &self.root_str()][..], args].concat())
    }

    /// Runs `rpm --root ROOT args` (`--nodeps`: the root's packages are in dpkg's database).
    pub fn rpm(&self, args: &[&str]) -> (bool, String) {
        run("rpm", &[&["--root", &self.root_str()][..], args].concat())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.root()).status();
    }
}
