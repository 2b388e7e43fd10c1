//! What the user rsyslogd drops to may do with a file or directory: read from /etc/passwd and
//! /etc/group and the path's owner and mode, since `check` itself usually runs as root.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Ok when `user` (a name or a uid) may create files in `dir`; else why not.
pub fn may_write(user: &str, dir: &Path) -> Result<(), String> {
    let who = Who::find(user)?;
    let meta = std::fs::metadata(dir).map_err(|e| e.to_string())?;
    match who.granted(&meta) & 0o3 == 0o3 {
        true => Ok(()),
        false => Err(describe(&meta)),
    }
}

/// Ok when `user` may read `file`: every directory above it searchable, the file readable.
pub fn may_read(user: &str, file: &Path) -> Result<(), String> {
    let who = Who::find(user)?;
    for dir in file
        .ancestors()
        .skip(1)
        .filter(|d| !d.as_os_str().is_empty())
    {
        let meta = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if who.granted(&meta) & 0o1 == 0 {
            return Err(format!(
                "{} cannot be searched: {}",
                dir.display(),
                describe(&meta)
            ));
        }
    }
    let meta = std::fs::metadata(file).map_err(|e| e.to_string())?;
    match who.granted(&meta) & 0o4 != 0 {
        true => Ok(()),
        false => Err(describe(&meta)),
    }
}

fn describe(meta: &Metadata) -> String {
    format!(
        "owner uid {}, group gid {}, mode {:04o}",
        meta.uid(),
        meta.gid(),
        meta.mode() & 0o7777
    )
}

/// A user as /etc/passwd and /etc/group have it.
struct Who {
    name: String,
    uid: u32,
    gid: u32,
    groups: String,
}

impl Who {
    fn find(user: &str) -> Result<Who, String> {
        let passwd =
            std::fs::read_to_string("/etc/passwd").map_err(|e| format!("/etc/passwd: {e}"))?;
        let (name, uid, gid) = passwd
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                Some((
                    f.first()?.to_string(),
                    f.get(2)?.parse::<u32>().ok()?,
                    f.get(3)?.parse::<u32>().ok()?,
                ))
            })
            .find(|(n, uid, _)| n == user || uid.to_string() == user)
            .ok_or_else(|| format!("no user {user} in /etc/passwd"))?;
        let groups = std::fs::read_to_string("/etc/group").unwrap_or_default();
        Ok(Who {
            name,
            uid,
            gid,
            groups,
        })
    }

    fn member_of(&self, g: u32) -> bool {
        g == self.gid
            || self.groups.lines().any(|l| {
                let f: Vec<&str> = l.split(':').collect();
                f.get(2).and_then(|id| id.parse::<u32>().ok()) == Some(g)
                    && f.get(3)
                        .is_some_and(|m| m.split(',').any(|m| m == self.name))
            })
    }

    /// The permission bits (read 4, write 2, search 1) `meta` grants this user: the owner's,
    /// the group's or the others', as the kernel picks them (root: all).
    fn granted(&self, meta: &Metadata) -> u32 {
        let mode = meta.mode();
        match () {
            _ if self.uid == 0 => 0o7,
            _ if meta.uid() == self.uid => (mode >> 6) & 0o7,
            _ if self.member_of(meta.gid()) => (mode >> 3) & 0o7,
            _ => mode & 0o7,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn owner_group_and_others_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let set =
            |m| std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(m)).unwrap();
        set(0o700);
        assert!(may_write("root", dir.path()).is_ok());
        let owner = std::fs::metadata(dir.path()).unwrap().uid();
        assert!(may_write(&owner.to_string(), dir.path()).is_ok());
        // `nobody` (every Debian and RHEL host has it) owns nothing here.
        let e = may_write("nobody", dir.path()).unwrap_err();
        assert!(e.contains("mode 0700"), "{e}");
        set(0o777);
        assert!(may_write("nobody", dir.path()).is_ok());
        assert!(may_write("no-such-user-here", dir.path()).is_err());
    }

    #[test]
    fn a_file_is_readable_only_through_searchable_directories() {
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path, m| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
        let file = dir.path().join("key.pem");
        std::fs::write(&file, "k").unwrap();
        mode(&file, 0o600).unwrap();
        assert!(may_read("root", &file).is_ok());
        mode(dir.path(), 0o711).unwrap();
        let e = may_read("nobody", &file).unwrap_err();
        assert!(e.contains("mode 0600"), "{e}");
        mode(&file, 0o644).unwrap();
        // The temporary directory's parents (/tmp) are searchable by everyone.
        assert!(may_read("nobody", &file).is_ok());
        mode(dir.path(), 0o700).unwrap();
        let e = may_read("nobody", &file).unwrap_err();
        assert!(e.contains("cannot be searched"), "{e}");
    }
}
