//! `elements.file`: the list as the site writes it, read again when it changes.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use parking_lot::Mutex;

use super::{read_specs, ElementSpec};
use crate::logging;

/// The file and what was last made of it.
pub struct ListFile {
    path: PathBuf,
    state: Mutex<FileState>,
}

#[derive(Default)]
struct FileState {
    /// The list as the configuration read it: the first read installs it instead of reading
    /// the file again.
    first: Option<Vec<ElementSpec>>,
    /// The mtime of the last good read.
    loaded: Option<SystemTime>,
    /// The mtime (`None`: no file) of the last read that failed: logged once per change.
    failed: Option<Option<SystemTime>>,
    /// Why the last read failed, until one succeeds (`omcmsync status`).
    problem: Option<String>,
}

impl ListFile {
    pub fn new(path: &Path) -> Self {
        ListFile {
            path: path.to_owned(),
            state: Mutex::default(),
        }
    }

    /// The list the configuration read just now, installed by the first [`ListFile::read`].
    pub fn set_first(&self, list: Option<Vec<ElementSpec>>) {
        let mut state = self.state.lock();
        if list.is_some() {
            state.loaded = mtime(&self.path);
        }
        state.first = list;
    }

    /// The list to install, or None (the failure logged once per change of the file, and
    /// kept as the file's problem). `check` refuses a list (`elements.max`); `ready`: a list
    /// is in force already.
    pub fn read(
        &self,
        check: impl Fn(Vec<ElementSpec>) -> Result<Vec<ElementSpec>, String>,
        ready: bool,
    ) -> Option<Vec<ElementSpec>> {
        if let Some(first) = self.state.lock().first.take() {
            return Some(first);
        }
        let stamp = mtime(&self.path);
        let read = read_specs(&self.path).and_then(check);
        let mut state = self.state.lock();
        match read {
            Ok(specs) => {
                state.loaded = stamp;
                state.failed = None;
                if state.problem.take().is_some() {
                    logging::info(&format!(
                        "elements.file {}: read again, {} element(s) in force",
                        self.path.display(),
                        specs.len()
                    ));
                }
                Some(specs)
            }
            Err(e) => {
                if state.failed.replace(stamp) != Some(stamp) {
                    let in_force = if ready {
                        "keeping the elements in force"
                    } else {
                        "holding what arrives (rsyslog keeps it) until the file can be read"
                    };
                    let why = format!("elements.file {e}; {in_force}");
                    logging::error(&why);
                    state.problem = Some(why);
                }
                None
            }
        }
    }

    /// The file changed since it was last read (or last failed to read).
    pub fn changed(&self) -> bool {
        let stamp = mtime(&self.path);
        let state = self.state.lock();
        stamp != state.loaded && state.failed != Some(stamp)
    }

    /// Why the file could not be read the last time, until it can.
    pub fn problem(&self) -> Option<String> {
        self.state.lock().problem.clone()
    }
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
