//! Elements: the CMs whose changes this node resyncs, and which sender addresses belong to each.
//!
//! A line is for an element when its sender address is one of the element's hosts (a duplex CM
//! has two servers, either may send); IPv4 and IPv4-mapped IPv6 addresses compare equal.
//! `spec` reads the list as written, `resolve` turns host names into addresses (in parallel,
//! bounded, off the hot path), and the table built from both is swapped as a whole, so the hot
//! path takes one read lock per batch and never waits for DNS.

mod file;
mod refresh;
mod resolve;
mod said;
mod spec;
mod table;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use crate::logging;

use self::file::ListFile;
use self::said::Said;
pub use refresh::Refresher;
pub use resolve::{system_lookup, Lookup, Resolver};
pub use spec::{
    check_name, literal, parse_elements, parse_elements_lenient, read_specs, ElementSpec, NAME_MAX,
};
pub use table::{Element, ElementTable};

/// How long one round of lookups holds up the supervisor; answers after it are picked up
/// within 100 ms of their arrival.
const ROUND_WAIT: Duration = Duration::from_secs(2);

/// The element list of one action: from `elements.file` (read by the refresher at start, on
/// HUP, when the file changes, and on every refresh, names resolved again) or installed by the
/// refresher from System Manager's list. The table in force, and what builds it: the list, its
/// host names' addresses ([`Resolver`]), the file ([`ListFile`]) and what was said ([`Said`]).
pub struct Elements {
    file: Option<ListFile>,
    resolver: Resolver,
    current: RwLock<Arc<ElementTable>>,
    /// The list in force, as written: rebuilt into a table when a late lookup answers.
    specs: Mutex<Arc<Vec<ElementSpec>>>,
    /// A list is in force and every host name in it has been answered once.
    ready: AtomicBool,
    /// The most elements a list may hold (`elements.max`).
    max: usize,
    said: Mutex<Said>,
}

impl Elements {
    /// No list yet: System Manager's list arrives later, or `file` is read by the first
    /// [`Elements::reload`]. `lookup` resolves host names ([`system_lookup`] but in tests).
    pub fn new(file: Option<&std::path::Path>, lookup: Lookup) -> Self {
        Elements {
            file: file.map(ListFile::new),
            resolver: Resolver::new(lookup),
            current: RwLock::default(),
            specs: Mutex::default(),
            ready: AtomicBool::default(),
            max: usize::MAX,
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
        if let Some(file) = &self.file {
            file.set_first(list);
        }
        self
    }

    /// The table in force (one read lock; cheap).
    pub fn current(&self) -> Arc<ElementTable> {
        self.current.read().clone()
    }

    /// Whether the element list is in force: installed, and every host name in it answered
    /// once. Until then nobody knows whose lines arrive, and the action holds them.
    /// The hosts of the element named `name` (none: no such element).
    pub fn hosts(&self, name: &str) -> Vec<String> {
        self.current()
            .get(name)
            .map(|e| e.hosts.clone())
            .unwrap_or_default()
    }

    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Reads the file again and resolves every name again. A missing or broken file keeps the
    /// table in force and is logged once per change of the file.
    pub fn reload(&self) {
        let Some(file) = &self.file else { return };
        if let Some(specs) = file.read(|s| self.check_size(s), self.ready()) {
            self.install(&specs);
        }
    }

    /// Why the file could not be read the last time, until it can.
    pub fn file_problem(&self) -> Option<String> {
        self.file.as_ref()?.problem()
    }

    /// Reloads when the file changed since it was last read (or last failed to read), and
    /// rebuilds the table when a lookup answered late. Cheap: the refresher calls it often.
    pub fn reload_if_changed(&self) {
        if self.resolver.take_late() {
            self.rebuild();
        }
        if self.file.as_ref().is_some_and(ListFile::changed) {
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
        let conflicts: Vec<String> = table
            .conflicts
            .iter()
            .map(|c| format!("elements: {c}"))
            .collect();
        {
            let mut said = self.said.lock();
            said.report_unresolved(&table.unresolved, &stale);
            said.say_changes("conflicts", logging::Level::Error, &conflicts);
        }
        let conflicts = table.conflicts.len();
        *self.current.write() = Arc::new(table);
        self.ready
            .store(self.resolver.answered(&names), Ordering::Relaxed);
        conflicts
    }

    /// Logs the problems of `kind` (say, the list's skipped entries) that were not there the
    /// last time ([`Said::say_changes`]).
    pub fn say_changes(&self, kind: &'static str, level: logging::Level, problems: &[String]) {
        self.said.lock().say_changes(kind, level, problems);
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

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

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
