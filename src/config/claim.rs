//! One action per state directory within a configuration: a second `action(type="omcmsync")`
//! naming a `state.dir` another one uses fails the configuration (and so `rsyslogd -N1`),
//! before the queue's lock would refuse it at start. Two processes are kept apart by that lock
//! (`queue::dir`).

use parking_lot::Mutex;
use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use super::values::invalid;
use super::{ConfigError, Value};

static CLAIMED: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// A state directory claimed by one action, released when the action is freed.
#[derive(Debug)]
pub struct StateDirClaim(PathBuf);

impl StateDirClaim {
    /// Claims `dir` for one action, or names the parameter when another action has it.
    pub fn take(dir: &Path) -> Result<StateDirClaim, ConfigError> {
        let key = std::fs::canonicalize(dir).unwrap_or_else(|_| lexical(dir));
        let mut claimed = CLAIMED.lock();
        if !claimed.insert(key.clone()) {
            return Err(invalid(
                "state.dir",
                Value::Text(dir.display().to_string()),
                "a state.dir of its own: another omcmsync action of this configuration uses it, \
                 and two writers of one queue lose each other's changes",
            ));
        }
        Ok(StateDirClaim(key))
    }
}

impl Drop for StateDirClaim {
    fn drop(&mut self) {
        CLAIMED.lock().remove(&self.0);
    }
}

/// `dir` without `.` components or a trailing slash (it may not exist yet).
fn lexical(dir: &Path) -> PathBuf {
    dir.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_one_actions_until_it_is_freed() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateDirClaim::take(dir.path()).unwrap();
        let spelled_otherwise = dir.path().join(".").join("");
        let e = StateDirClaim::take(&spelled_otherwise).unwrap_err();
        assert_eq!(e.param, "state.dir");
        drop(first);
        assert!(StateDirClaim::take(&spelled_otherwise).is_ok());
    }
}
