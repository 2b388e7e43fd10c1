//! What a state directory holds besides the log: the lock that makes its holder the one
//! writer, and the epoch that keeps Idempotency-Keys unique over the directory's whole life.
//!
//! The lock is an exclusive `flock` on `state.dir/lock`, held as long as the queue is open; the
//! holder's pid is written in it for the refusal message. Two writers would each compact the
//! log away from under the other (docs/design.md, "The state directory").
//!
//! The epoch is a random 64-bit number drawn when the directory is first used and kept in
//! `state.dir/epoch`, outside the log: it is mixed into every Idempotency-Key, so when the log
//! loses its sequence numbers (damage, deletion) a new epoch is drawn and no key repeats one
//! System Manager has seen. Its presence also says a log is expected: an empty or missing log
//! next to it is damage, not a first start.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

/// The lock on a state directory; released when dropped.
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Whether the lock could be taken now (it is released at once), or who holds it.
    pub fn probe(dir: &Path) -> io::Result<()> {
        match DirLock::take(dir) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Takes the lock, or says who holds it.
    pub fn take(dir: &Path) -> io::Result<DirLock> {
        let path = dir.join("lock");
        let mut file = crate::private::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0)?;
                file.write_all(format!("{}\n", std::process::id()).as_bytes())?;
                Ok(DirLock { _file: file })
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                let who = if pid.is_empty() {
                    "another process".to_owned()
                } else {
                    format!("process {pid}")
                };
                Err(io::Error::other(format!(
                    "in use by {who} (another omcmsync action, rsyslogd or `omcmsync omprog` with the same state.dir); give each its own state.dir"
                )))
            }
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

/// The directory's epoch.
pub struct Epoch;

impl Epoch {
    /// The epoch kept in `state.dir/epoch`; `None` when there is none (a directory never
    /// used, or one that lost it) or it is unreadable.
    pub fn load(dir: &Path) -> Option<u64> {
        let text = std::fs::read_to_string(dir.join("epoch")).ok()?;
        u64::from_str_radix(text.trim(), 16).ok()
    }

    /// Draws a new epoch and keeps it (written, synced, renamed into place): the log can no
    /// longer vouch for its sequence numbers.
    pub fn redraw(dir: &Path) -> io::Result<u64> {
        let value = random_u64();
        crate::private::replace(&dir.join("epoch"), format!("{value:016x}\n").as_bytes())?;
        Ok(value)
    }
}

/// 64 random bits from the kernel; should /dev/urandom be unreadable, the hasher's random
/// keys, the time and the pid.
fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    if File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_ok()
    {
        return u64::from_le_bytes(bytes);
    }
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_the_refusal_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let held = DirLock::take(dir.path()).unwrap();
        let e = DirLock::take(dir.path()).err().unwrap().to_string();
        assert!(
            e.contains(&format!("process {}", std::process::id())),
            "{e}"
        );
        drop(held);
        assert!(DirLock::take(dir.path()).is_ok());
    }

    #[test]
    fn the_epoch_is_kept_and_redrawn_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Epoch::load(dir.path()), None);
        let first = Epoch::redraw(dir.path()).unwrap();
        assert_eq!(Epoch::load(dir.path()), Some(first));
        let redrawn = Epoch::redraw(dir.path()).unwrap();
        assert_ne!(redrawn, first);
        assert_eq!(Epoch::load(dir.path()), Some(redrawn));
    }
}
