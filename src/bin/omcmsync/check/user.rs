//! Whether the user rsyslogd drops to may write a directory: read from /etc/passwd and
//! /etc/group and the directory's owner and mode, since `check` itself usually runs as root.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Ok when `user` (a name or a uid) may create files in `dir`; else why not.
pub fn may_write(user: &str, dir: &Path) -> Result<(), String> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| format!("/etc/passwd: {e}"))?;
    let groups = std::fs::read_to_string("/etc/group").unwrap_or_default();
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
    let member_of = |g: u32| {
        g == gid
            || groups.lines().any(|l| {
                let f: Vec<&str> = l.split(':').collect();
                f.get(2).and_then(|id| id.parse::<u32>().ok()) == Some(g)
                    && f.get(3).is_some_and(|m| m.split(',').any(|m| m == name))
            })
    };
    let meta = std::fs::metadata(dir).map_err(|e| e.to_string())?;
    let mode = meta.mode();
    let writable = uid == 0
        || (meta.uid() == uid && mode & 0o300 == 0o300)
        || (meta.uid() != uid && member_of(meta.gid()) && mode & 0o030 == 0o030)
        || (meta.uid() != uid && !member_of(meta.gid()) && mode & 0o003 == 0o003);
    if writable {
        Ok(())
    } else {
        Err(format!(
            "owner uid {}, group gid {}, mode {:04o}",
            meta.uid(),
            meta.gid(),
            mode & 0o7777
        ))
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
}
