//! Elements: the CMs whose changes this node resyncs, and which sender addresses belong to each.
//!
//! A line is for an element when its sender address is one of the element's hosts (a duplex CM
//! has two servers, either may send); IPv4 and IPv4-mapped IPv6 addresses compare equal.
//! `spec` reads the list as written, `resolve` turns host names into addresses (in parallel,
//! bounded, off the hot path), and the table built from both is swapped as a whole, so the hot
//! path takes one read lock per batch and never waits for DNS.

mod refresh;
mod resolve;
mod spec;

use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::line::canonical;
use crate::logging;

pub use refresh::Refresher;
pub use resolve::{system_lookup, Lookup, Resolver};
pub use spec::{
    check_name, literal, parse_elements, parse_elements_lenient, read_specs, ElementSpec, NAME_MAX,
};

/// New problems of one kind logged one by one; more are summed up in one line.
const SAID_AT_ONCE: usize = 5;

/// How long one round of lookups holds up the supervisor; answers after it are picked up
/// within 100 ms of their arrival.
const ROUND_WAIT: Duration = Duration::from_secs(2);

/// One element, ready for the hot path.
#[derive(Debug)]
pub struct Element {
    pub name: Arc<str>,
    pub notify: bool,
    /// Lower-cased: logins compare case-insensitively.
    ignore_logins: Vec<String>,
}

impl Element {
    /// A change by this login is System Manager's own, echoed back by CM.
    pub fn ignores_login(&self, login: &str) -> bool {
        self.ignore_logins
            .iter()
            .any(|l| l.eq_ignore_ascii_case(login))
    }
}

/// Elements by sender address.
#[derive(Debug, Default)]
pub struct ElementTable {
    elements: Vec<Element>,
    by_addr: HashMap<IpAddr, usize>,
    /// Host names that resolved to nothing at the last refresh.
    pub unresolved: Vec<String>,
    /// Addresses two elements claim (the first keeps it), as messages naming both.
    pub conflicts: Vec<String>,
}

impl ElementTable {
    /// Builds the table; `resolve` turns a host name into addresses.
    pub fn build(specs: &[ElementSpec], resolve: impl Fn(&str) -> Vec<IpAddr>) -> Self {
        let mut table = ElementTable::default();
        for spec in specs {
            let index = table.elements.len();
            table.elements.push(Element {
                name: spec.name.as_str().into(),
                notify: spec.notify,
                ignore_logins: spec
                    .ignore_logins
                    .iter()
                    .map(|l| l.to_ascii_lowercase())
                    .collect(),
            });
            for host in &spec.hosts {
                let addrs = match literal(host) {
                    Some(ip) => vec![ip],
                    None => resolve(host).into_iter().map(canonical).collect(),
                };
                if addrs.is_empty() {
                    table.unresolved.push(host.clone());
                }
                for addr in addrs {
                    let owner = *table.by_addr.entry(addr).or_insert(index);
                    if owner != index {
                        table.conflicts.push(format!(
                            "address {addr} ({host}) of '{}' belongs to '{}' already; it stays '{}''s",
                            spec.name, table.elements[owner].name, table.elements[owner].name
                        ));
                    }
                }
            }
        }
        table
    }

    /// The elements' names, in the list's order.
    pub fn names(&self) -> impl Iterator<Item = &Arc<str>> {
        self.elements.iter().map(|e| &e.name)
    }

    /// The element a sender belongs to.
    pub fn lookup(&self, sender: IpAddr) -> Option<&Element> {
        self.by_addr
            .get(&canonical(sender))
            .map(|&i| &self.elements[i])
    }
}

/// The element list of one action: from `elements.file` (read by the supervisor at start, on
/// HUP, when the file changes, and on every refresh, names resolved again) or installed by the
/// supervisor from System Manager's list.
pub struct Elements {
    file: Option<PathBuf>,
    resolver: Resolver,
    /// Set by HUP, served by the supervisor thread (reading and resolving can block on DNS:
    /// not on rsyslog's main thread).
    reload_requested: AtomicBool,
    current: RwLock<Arc<ElementTable>>,
    /// The list in force, as written: rebuilt into a table when a late lookup answers.
    specs: Mutex<Arc<Vec<ElementSpec>>>,
    /// The file's list as the configuration read it: the first reload installs it instead of
    /// reading the file again.
    first: Mutex<Option<Vec<ElementSpec>>>,
    /// A list is in force and every host name in it has been answered once.
    ready: AtomicBool,
    /// The most elements a list may hold (`elements.max`).
    max: usize,
    loaded_mtime: RwLock<Option<SystemTime>>,
    /// The mtime (`None`: no file) of the last read that failed: logged once per change.
    failed_mtime: RwLock<Option<Option<SystemTime>>>,
    /// Why the last read of the file failed, until one succeeds (`omcmsync status`).
    file_problem: Mutex<Option<String>>,
    /// Host names reported as not resolving (or as kept from an earlier answer): each is
    /// logged when it enters that state, not at every refresh.
    unresolved_said: Mutex<HashSet<String>>,
    /// Problems logged, by kind, as of the last list: each is said once when it appears,
    /// forgotten once it is gone (so the set is bounded by the list in force).
    said: Mutex<HashMap<&'static str, HashSet<String>>>,
}

impl Elements {
    /// No list yet: System Manager's list arrives later, or `file` is read by the first
    /// [`Elements::reload`]. `lookup` resolves host names ([`system_lookup`] but in tests).
    pub fn new(file: Option<&Path>, lookup: Lookup) -> Self {
        Elements {
            file: file.map(Path::to_owned),
            resolver: Resolver::new(lookup),
            reload_requested: AtomicBool::default(),
            current: RwLock::default(),
            specs: Mutex::default(),
            first: Mutex::default(),
            ready: AtomicBool::default(),
            max: usize::MAX,
            loaded_mtime: RwLock::new(None),
            failed_mtime: RwLock::new(None),
            file_problem: Mutex::default(),
            unresolved_said: Mutex::default(),
            said: Mutex::default(),
        }
    }

    /// At most `max` elements in a list: a longer one is refused, the list in force kept.
    pub fn with_max(mut self, max: usize) -> Self {
        self.max = max;
        self
    }

    /// Refuses a list longer than `elements.max`.
    pub fn check_size(&self, specs: Vec<ElementSpec>) -> Result<Vec<ElementSpec>, String> {
        crate::config::within_max(specs, self.max)
    }

    /// `file`'s list, as the configuration read it just now: installed by the first reload.
    pub fn with_first_list(self, list: Option<Vec<ElementSpec>>) -> Self {
        if let (Some(path), Some(_)) = (&self.file, &list) {
            *self.loaded_mtime.write() = mtime(path);
        }
        *self.first.lock() = list;
        self
    }

    /// The table in force (one read lock; cheap).
    pub fn current(&self) -> Arc<ElementTable> {
        self.current.read().clone()
    }

    /// Asks the supervisor to reload at its next round (HUP).
    pub fn request_reload(&self) {
        self.reload_requested.store(true, Ordering::Relaxed);
    }

    /// Whether a reload was asked for since the last call.
    pub fn take_reload_request(&self) -> bool {
        self.reload_requested.swap(false, Ordering::Relaxed)
    }

    /// Whether the element list is in force: installed, and every host name in it answered
    /// once. Until then nobody knows whose lines arrive, and the action holds them.
    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Reads the file again and resolves every name again. A missing or broken file keeps the
    /// table in force and is logged once per change of the file.
    pub fn reload(&self) {
        let Some(path) = &self.file else { return };
        let first = self.first.lock().take();
        if let Some(specs) = first {
            self.install(&specs);
            return;
        }
        let stamp = mtime(path);
        match read_specs(path).and_then(|s| self.check_size(s)) {
            Ok(specs) => {
                *self.loaded_mtime.write() = stamp;
                *self.failed_mtime.write() = None;
                let was = self.file_problem.lock().take();
                if was.is_some() {
                    logging::info(&format!(
                        "elements.file {}: read again, {} element(s) in force",
                        path.display(),
                        specs.len()
                    ));
                }
                self.install(&specs);
            }
            Err(e) => {
                let before = self.failed_mtime.write().replace(stamp);
                if before != Some(stamp) {
                    let in_force = if self.ready() {
                        "keeping the elements in force"
                    } else {
                        "holding what arrives (rsyslog keeps it) until the file can be read"
                    };
                    let why = format!("elements.file {e}; {in_force}");
                    logging::error(&why);
                    *self.file_problem.lock() = Some(why);
                }
            }
        }
    }

    /// Why the file could not be read the last time, until it can.
    pub fn file_problem(&self) -> Option<String> {
        self.file_problem.lock().clone()
    }

    /// Reloads when the file changed since it was last read (or last failed to read), and
    /// rebuilds the table when a lookup answered late. Cheap: the supervisor calls it often.
    pub fn reload_if_changed(&self) {
        if self.resolver.take_late() {
            self.rebuild();
        }
        let Some(path) = &self.file else { return };
        let stamp = mtime(path);
        let seen = *self.loaded_mtime.read();
        let failed = *self.failed_mtime.read();
        if stamp != seen && failed != Some(stamp) {
            self.reload();
        }
    }

    /// Installs a new list, looking its host names up again (waiting at most [`ROUND_WAIT`]);
    /// returns how many addresses two elements claimed.
    pub fn install(&self, specs: &[ElementSpec]) -> usize {
        let specs = Arc::new(specs.to_vec());
        *self.specs.lock() = specs.clone();
        self.resolver.round(&host_names(&specs), ROUND_WAIT);
        self.rebuild()
    }

    /// Builds the table of the list in force from the addresses known now and swaps it in.
    fn rebuild(&self) -> usize {
        let specs = self.specs.lock().clone();
        let names = host_names(&specs);
        let table = ElementTable::build(&specs, |h| self.resolver.addresses(h));
        let stale = self.resolver.stale(&names);
        self.report_unresolved(&table.unresolved, &stale);
        let conflicts: Vec<String> = table
            .conflicts
            .iter()
            .map(|c| format!("elements: {c}"))
            .collect();
        self.say_changes("conflicts", logging::Level::Error, &conflicts);
        let conflicts = table.conflicts.len();
        *self.current.write() = Arc::new(table);
        self.ready
            .store(self.resolver.answered(&names), Ordering::Relaxed);
        conflicts
    }

    /// Logs each host name that starts not resolving (or resolving only to what it had), and
    /// each that resolves again.
    fn report_unresolved(&self, unresolved: &[String], stale: &[String]) {
        let mut said = self.unresolved_said.lock();
        let now: HashSet<&str> = unresolved.iter().chain(stale).map(String::as_str).collect();
        said.retain(|host| {
            let still = now.contains(host.as_str());
            if !still {
                logging::info(&format!("elements: host '{host}' resolves again"));
            }
            still
        });
        for host in unresolved {
            if said.insert(host.clone()) {
                logging::warning(&format!(
                    "elements: host '{host}' does not resolve; its lines are not known as any element's; looked up again at every refresh"
                ));
            }
        }
        for host in stale {
            if said.insert(host.clone()) {
                logging::warning(&format!(
                    "elements: host '{host}' did not resolve at the last refresh; keeping the addresses it had"
                ));
            }
        }
    }

    /// Logs the problems of `kind` (say, the list's skipped entries) that were not there the
    /// last time, at most [`SAID_AT_ONCE`] of them and a count of the rest, and forgets those
    /// that are gone.
    pub fn say_changes(&self, kind: &'static str, level: logging::Level, problems: &[String]) {
        let now: HashSet<String> = problems.iter().cloned().collect();
        let mut said = self.said.lock();
        let before = said.entry(kind).or_default();
        let new: Vec<&String> = problems.iter().filter(|p| !before.contains(*p)).collect();
        for msg in new.iter().take(SAID_AT_ONCE) {
            logging::log(level, msg);
        }
        if new.len() > SAID_AT_ONCE {
            logging::log(
                level,
                &format!(
                    "elements: and {} more like these ({} in all now)",
                    new.len() - SAID_AT_ONCE,
                    now.len()
                ),
            );
        }
        *before = now;
    }
}

/// The host names (not literal addresses) of a list.
fn host_names(specs: &[ElementSpec]) -> Vec<&str> {
    let mut names: Vec<&str> = specs
        .iter()
        .flat_map(|s| &s.hosts)
        .filter(|h| literal(h).is_none())
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"elements":[
        {"name":"cm-east","hosts":["cm-east-a.example.net","10.1.1.10","2001:db8::10"],
         "notify":true,"ignore_logins":["SMGR-sync"]},
        {"name":"cm-west","hosts":["[2001:db8::20]","::ffff:10.2.2.20"],"notify":false}]}"#;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn senders_map_to_elements_across_address_forms() {
        let specs = parse_elements(SAMPLE).unwrap();
        let t = ElementTable::build(&specs, |h| match h {
            "cm-east-a.example.net" => vec![ip("10.1.1.11"), ip("::ffff:10.1.1.12")],
            _ => vec![],
        });
        let name = |s: &str| t.lookup(ip(s)).map(|e| e.name.to_string());
        assert_eq!(name("10.1.1.10").as_deref(), Some("cm-east"));
        assert_eq!(name("::ffff:10.1.1.10").as_deref(), Some("cm-east"));
        assert_eq!(name("10.1.1.11").as_deref(), Some("cm-east"));
        assert_eq!(name("10.1.1.12").as_deref(), Some("cm-east"));
        assert_eq!(name("2001:db8::10").as_deref(), Some("cm-east"));
        assert_eq!(name("2001:db8::20").as_deref(), Some("cm-west"));
        assert_eq!(name("10.2.2.20").as_deref(), Some("cm-west"));
        assert_eq!(name("10.9.9.9"), None);
        assert!(!t.lookup(ip("10.2.2.20")).unwrap().notify);
        assert!(t
            .lookup(ip("10.1.1.10"))
            .unwrap()
            .ignores_login("smgr-SYNC"));
        assert!(t.unresolved.is_empty());
    }

    #[test]
    fn unresolved_names_are_reported() {
        let specs =
            parse_elements(r#"{"elements":[{"name":"a","hosts":["nowhere.invalid"]}]}"#).unwrap();
        let t = ElementTable::build(&specs, |_| vec![]);
        assert_eq!(t.unresolved, ["nowhere.invalid"]);
    }

    #[test]
    fn file_reload_on_change_and_broken_file_keeps_table() {
        let dir = std::env::temp_dir().join(format!("omcm-elements-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("elements.json");
        std::fs::write(&path, r#"{"elements":[{"name":"a","hosts":["10.0.0.1"]}]}"#).unwrap();
        let e = Elements::new(Some(&path), system_lookup);
        assert!(!e.ready());
        e.reload();
        assert!(e.ready() && e.current().lookup(ip("10.0.0.1")).is_some());
        std::fs::write(&path, r#"{"elements":[{"name":"b","hosts":["10.0.0.2"]}]}"#).unwrap();
        e.reload();
        assert!(e.current().lookup(ip("10.0.0.1")).is_none());
        assert!(e.current().lookup(ip("10.0.0.2")).is_some());
        std::fs::write(&path, "{broken").unwrap();
        e.reload();
        assert!(e.current().lookup(ip("10.0.0.2")).is_some());
        let missing = Elements::new(Some(&dir.join("missing.json")), system_lookup);
        missing.reload();
        assert!(!missing.ready());
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A list whose names have not all answered is not ready (whose lines arrive is not known
    /// yet); the late answer makes it ready at the supervisor's next look.
    #[test]
    fn ready_once_every_name_has_answered() {
        fn slow(_: &str) -> Vec<IpAddr> {
            std::thread::sleep(Duration::from_millis(ROUND_WAIT.as_millis() as u64 + 500));
            vec![ip("10.0.0.5")]
        }
        let e = Elements::new(None, slow);
        let specs = parse_elements(
            r#"{"elements":[{"name":"a","hosts":["10.0.0.1"]},{"name":"b","hosts":["cm-b"]}]}"#,
        )
        .unwrap();
        e.install(&specs);
        assert!(!e.ready(), "cm-b is still being looked up");
        assert!(e.current().lookup(ip("10.0.0.1")).is_some());
        std::thread::sleep(Duration::from_millis(1000));
        e.reload_if_changed();
        assert!(e.ready());
        assert_eq!(
            e.current().lookup(ip("10.0.0.5")).unwrap().name.as_ref(),
            "b"
        );
    }

    #[test]
    fn an_address_two_elements_claim_stays_with_the_first() {
        let specs = parse_elements_lenient(
            r#"{"elements":[{"name":"a","hosts":["h1"]},{"name":"b","hosts":["h2"]}]}"#,
        )
        .unwrap()
        .0;
        let t = ElementTable::build(&specs, |_| vec![ip("10.0.0.9")]);
        assert_eq!(t.lookup(ip("10.0.0.9")).unwrap().name.as_ref(), "a");
        assert_eq!(t.conflicts.len(), 1);
        assert!(t.conflicts[0].contains("'b'") && t.conflicts[0].contains("'a'"));
    }
}
