//! The trace file: one JSON object per received line, saying what the pipeline did with it.
//!
//! An operator's debugging aid (and what the tests read), so it must never hold up or fail the
//! pipeline: a write error is logged once and the records are dropped until writing works again.
//! Reopened on HUP so that logrotate can move it away.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::logging;

pub struct Trace {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    file: Option<File>,
    failing: bool,
}

impl Trace {
    /// Nothing is opened until the first write (rsyslogd -N1 must not create files).
    pub fn new(path: &Path) -> Self {
        Trace {
            path: path.to_owned(),
            state: Mutex::new(State::default()),
        }
    }

    /// Appends already-formatted records (each ending in a newline) in one write.
    pub fn append(&self, records: &[u8]) {
        if records.is_empty() {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let result = match &mut state.file {
            Some(f) => f.write_all(records),
            None => open_append(&self.path).and_then(|mut f| {
                f.write_all(records)?;
                state.file = Some(f);
                Ok(())
            }),
        };
        match result {
            Ok(()) if state.failing => {
                state.failing = false;
                logging::info(&format!(
                    "trace.file {}: writing again",
                    self.path.display()
                ));
            }
            Ok(()) => {}
            Err(e) => {
                state.file = None;
                if !state.failing {
                    state.failing = true;
                    logging::error(&format!(
                        "trace.file {}: {e}; trace records dropped until it is writable",
                        self.path.display()
                    ));
                }
            }
        }
    }

    /// Closes the file; the next write opens the path again (log rotation).
    pub fn reopen(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).file = None;
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_and_reopens_after_rotation() {
        let dir = std::env::temp_dir().join(format!("omcm-trace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.json");
        let t = Trace::new(&path);
        assert!(!path.exists(), "opened before first write");
        t.append(b"{\"a\":1}\n");
        std::fs::rename(&path, dir.join("t.json.1")).unwrap();
        t.append(b"{\"a\":2}\n"); // still the rotated file
        t.reopen();
        t.append(b"{\"a\":3}\n");
        assert_eq!(
            std::fs::read_to_string(dir.join("t.json.1")).unwrap(),
            "{\"a\":1}\n{\"a\":2}\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":3}\n");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unwritable_path_does_not_fail_the_caller() {
        let t = Trace::new(Path::new("/nonexistent-dir/omcm/t.json"));
        t.append(b"x\n");
        t.append(b"y\n");
    }
}
