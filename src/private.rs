//! Files and directories the module creates are its user's alone (files 0600, directories
//! 0700): they hold admin logins, client addresses, every received line and System Manager's
//! answers. A file or directory that already exists keeps the mode a site gave it.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// Creates `dir` and any missing parents, 0700.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Options that create a missing file 0600.
pub fn options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.mode(0o600);
    o
}

/// Creates (or truncates) `path` for writing, 0600 when new.
pub fn create(path: &Path) -> io::Result<File> {
    options().write(true).create(true).truncate(true).open(path)
}

/// Opens `path` for appending, created 0600 when missing.
pub fn append(path: &Path) -> io::Result<File> {
    options().create(true).append(true).open(path)
}

/// Replaces `path` with `bytes` atomically and durably: a private temporary beside it
/// (`<name>.tmp`) written and synced, renamed over `path`, the directory synced. A crash leaves
/// the old file or the new one, never a part of either.
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = Path::new(&tmp);
    let mut file = create(tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(tmp, path)?;
    sync_parent(path)
}

/// Makes a rename of `path` (or its creation) durable: syncs the directory that holds it.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => sync_dir(Path::new(".")),
    }
}

/// Makes a rename (or creation) in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn created_private_existing_kept() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        create_dir_all(&sub).unwrap();
        assert_eq!(mode(&sub), 0o700);
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        let f = sub.join("f");
        replace(&f, b"x").unwrap();
        assert_eq!(mode(&f), 0o600);
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        append(&f).unwrap();
        create(&f).unwrap();
        assert_eq!(mode(&f), 0o640);
    }

    #[test]
    fn replace_puts_the_new_bytes_in_place_privately() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("epoch");
        replace(&f, b"one").unwrap();
        replace(&f, b"two").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"two");
        assert_eq!(mode(&f), 0o600);
        assert!(!dir.path().join("epoch.tmp").exists());
    }
}
