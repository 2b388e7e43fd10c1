//! Elements: the CMs whose changes this node resyncs, and which sender addresses belong to each.
//!
//! A line is for an element when its sender address is one of the element's hosts (a duplex CM
//! has two servers, either may send). Host names are resolved when the list is loaded and again
//! on every refresh; IPv4 and IPv4-mapped IPv6 addresses compare equal. The table is swapped as
//! a whole, so the hot path takes one read lock per batch and never waits for DNS.

use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use serde_json::Value;

use crate::line::parse_sender;
use crate::logging;

/// One element as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElementSpec {
    pub name: String,
    pub hosts: Vec<String>,
    pub notify: bool,
    pub ignore_logins: Vec<String>,
}

/// Parses an element file, `{"elements":[{"name":..., "hosts":[...], "notify":true,
/// "ignore_logins":[...]}]}`: every entry must be good, and no address may belong to two
/// elements (the error names both).
pub fn parse_elements(json: &str) -> Result<Vec<ElementSpec>, String> {
    let (specs, rejected) = parse_elements_lenient(json)?;
    if let Some(why) = rejected.into_iter().next() {
        return Err(why);
    }
    let mut owner: HashMap<IpAddr, &str> = HashMap::new();
    for (i, spec) in specs.iter().enumerate() {
        for ip in spec.hosts.iter().filter_map(|h| literal(h)) {
            if let Some(first) = owner.insert(ip, &spec.name) {
                return Err(format!(
                    "elements[{i}] '{}': address {ip} belongs to '{first}' already (one element per address)",
                    spec.name
                ));
            }
        }
    }
    Ok(specs)
}

/// Parses System Manager's element list: the good entries, and why each bad one was skipped
/// (one bad name must not keep the others from loading). Only a document that is no list at
/// all is an error.
pub fn parse_elements_lenient(json: &str) -> Result<(Vec<ElementSpec>, Vec<String>), String> {
    let doc: Value = serde_json::from_str(json).map_err(|e| format!("not valid JSON: {e}"))?;
    let list = doc
        .get("elements")
        .and_then(Value::as_array)
        .ok_or("expected {\"elements\": [...]} at the top level")?;
    let mut seen = std::collections::HashSet::new();
    let mut specs = Vec::new();
    let mut rejected = Vec::new();
    for (i, v) in list.iter().enumerate() {
        match parse_element(v) {
            Ok(spec) if !seen.insert(spec.name.clone()) => {
                rejected.push(format!("elements[{i}]: name '{}' appears twice", spec.name))
            }
            Ok(spec) => specs.push(spec),
            Err(e) => rejected.push(format!("elements[{i}]: {e}")),
        }
    }
    Ok((specs, rejected))
}

/// The longest element name, in bytes: it is a path segment of every resync URL and a word of
/// every log line about the element.
pub const NAME_MAX: usize = 128;

/// The one check of an element name, for the file and System Manager's list alike: 1 to
/// [`NAME_MAX`] bytes, no control characters or white space, not `.` or `..`. Anything else
/// goes, since the resync URL carries the name percent-encoded as one path segment
/// ([`crate::deliver::path_segment`]).
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= NAME_MAX
        && name != "."
        && name != ".."
        && !name.chars().any(|c| c.is_control() || c.is_whitespace());
    if ok {
        return Ok(());
    }
    let shown: String = name.chars().take(40).flat_map(char::escape_debug).collect();
    let more = if name.chars().count() > 40 { "..." } else { "" };
    Err(format!(
        "name '{shown}{more}': 1 to {NAME_MAX} bytes without spaces or control characters, not '.' or '..'"
    ))
}

/// A host given as an address (`[v6]` allowed), normalised.
fn literal(host: &str) -> Option<IpAddr> {
    parse_sender(host.trim_matches(|c| c == '[' || c == ']')).map(normalize)
}

fn parse_element(v: &Value) -> Result<ElementSpec, String> {
    let name = v
        .get("name")
        .and_then(Value::as_str)
        .ok_or("\"name\" (a string) is required")?;
    check_name(name)?;
    let strings = |key: &str| -> Result<Vec<String>, String> {
        match v.get(key) {
            None => Ok(Vec::new()),
            Some(a) => a
                .as_array()
                .and_then(|a| a.iter().map(|s| s.as_str().map(str::to_owned)).collect())
                .ok_or(format!("\"{key}\" must be a list of strings")),
        }
    };
    let hosts = strings("hosts")?;
    if hosts.is_empty() {
        return Err("\"hosts\" must name at least one address or host name".into());
    }
    let notify = match v.get("notify") {
        None => true,
        Some(b) => b.as_bool().ok_or("\"notify\" must be true or false")?,
    };
    Ok(ElementSpec {
        name: name.to_owned(),
        hosts,
        notify,
        ignore_logins: strings("ignore_logins")?,
    })
}

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
                    None => resolve(host).into_iter().map(normalize).collect(),
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

    /// The element a sender belongs to.
    pub fn lookup(&self, sender: IpAddr) -> Option<&Element> {
        self.by_addr
            .get(&normalize(sender))
            .map(|&i| &self.elements[i])
    }
}

fn normalize(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Resolves a host name with the system resolver.
pub fn system_resolve(host: &str) -> Vec<IpAddr> {
    (host, 0)
        .to_socket_addrs()
        .map(|a| a.map(|s| s.ip()).collect())
        .unwrap_or_default()
}

/// The element list of one action: from `elements.file` (loaded at start, reloaded on HUP, when
/// the file changes, and on every refresh, names resolved again) or installed by the supervisor
/// from System Manager's list.
pub struct Elements {
    file: Option<PathBuf>,
    /// Set by HUP, served by the supervisor thread (reading and resolving can block on DNS:
    /// not on rsyslog's main thread).
    reload_requested: std::sync::atomic::AtomicBool,
    current: RwLock<Arc<ElementTable>>,
    loaded_mtime: RwLock<Option<SystemTime>>,
    /// The file has been read once (a list that is not a file's is always ready).
    loaded: std::sync::atomic::AtomicBool,
    /// The mtime (`None`: no file) of the last read that failed: logged once per change.
    failed_mtime: RwLock<Option<Option<SystemTime>>>,
    /// Problems already logged: each is said once, not at every refresh.
    said: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Elements {
    /// No elements yet (System Manager's list arrives later).
    pub fn empty() -> Self {
        Elements {
            file: None,
            reload_requested: Default::default(),
            current: RwLock::default(),
            loaded_mtime: RwLock::new(None),
            loaded: Default::default(),
            failed_mtime: RwLock::new(None),
            said: Default::default(),
        }
    }

    /// The list in `path`, read by the first [`Elements::reload`].
    pub fn for_file(path: &Path) -> Self {
        Elements {
            file: Some(path.to_owned()),
            ..Elements::empty()
        }
    }

    /// Reads the file now: a missing or broken file is an error.
    pub fn load(path: &Path) -> Result<Self, String> {
        let specs = read_specs(path)?;
        let elements = Elements {
            file: Some(path.to_owned()),
            ..Elements::empty()
        };
        *elements
            .loaded_mtime
            .write()
            .unwrap_or_else(|e| e.into_inner()) = mtime(path);
        elements.install(&specs);
        elements
            .loaded
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(elements)
    }

    /// The table in force (one read lock; cheap).
    pub fn current(&self) -> Arc<ElementTable> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Asks the supervisor to reload at its next round (HUP).
    pub fn request_reload(&self) {
        self.reload_requested
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether a reload was asked for since the last call.
    pub fn take_reload_request(&self) -> bool {
        self.reload_requested
            .swap(false, std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the element list is in force: a file's once it was read (until then the
    /// action holds what arrives), a list from System Manager at once.
    pub fn ready(&self) -> bool {
        self.file.is_none() || self.loaded.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Reads the file again and resolves every name again. A missing or broken file keeps the
    /// table in force and is logged once per change of the file.
    pub fn reload(&self) {
        let Some(path) = &self.file else { return };
        let stamp = mtime(path);
        match read_specs(path) {
            Ok(specs) => {
                *self.loaded_mtime.write().unwrap_or_else(|e| e.into_inner()) = stamp;
                *self.failed_mtime.write().unwrap_or_else(|e| e.into_inner()) = None;
                self.install(&specs);
                self.loaded
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            Err(e) => {
                let before = self
                    .failed_mtime
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .replace(stamp);
                if before != Some(stamp) {
                    let in_force = if self.ready() {
                        "keeping the elements in force"
                    } else {
                        "holding what arrives (rsyslog keeps it) until the file can be read"
                    };
                    logging::error(&format!("elements.file {e}; {in_force}"));
                }
            }
        }
    }

    /// Reloads when the file changed since it was last read (or last failed to read).
    pub fn reload_if_changed(&self) {
        let Some(path) = &self.file else { return };
        let stamp = mtime(path);
        let seen = *self.loaded_mtime.read().unwrap_or_else(|e| e.into_inner());
        let failed = *self.failed_mtime.read().unwrap_or_else(|e| e.into_inner());
        if stamp != seen && failed != Some(stamp) {
            self.reload();
        }
    }

    /// Installs a new list (resolving host names now); returns how many addresses two
    /// elements claimed.
    pub fn install(&self, specs: &[ElementSpec]) -> usize {
        let table = ElementTable::build(specs, system_resolve);
        for host in &table.unresolved {
            logging::warning(&format!(
                "elements: host '{host}' does not resolve; retried at the next refresh"
            ));
        }
        for conflict in &table.conflicts {
            self.say_once(logging::Level::Error, &format!("elements: {conflict}"));
        }
        let conflicts = table.conflicts.len();
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(table);
        conflicts
    }

    /// Logs `msg` unless it was logged before.
    pub fn say_once(&self, level: logging::Level, msg: &str) {
        let new = self
            .said
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(msg.to_owned());
        if new {
            logging::log(level, msg);
        }
    }
}

fn read_specs(path: &Path) -> Result<Vec<ElementSpec>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_elements(&text).map_err(|e| format!("{}: {e}", path.display()))
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
    fn bad_element_files_say_what_is_wrong() {
        for (json, says) in [
            ("[]", "top level"),
            (r#"{"elements":[{"hosts":["h"]}]}"#, "elements[0]: \"name\""),
            (r#"{"elements":[{"name":"a"}]}"#, "hosts"),
            (
                r#"{"elements":[{"name":"a","hosts":["h"],"notify":"yes"}]}"#,
                "notify",
            ),
            (
                r#"{"elements":[{"name":"a","hosts":["h"]},{"name":"a","hosts":["g"]}]}"#,
                "twice",
            ),
            (
                r#"{"elements":[{"name":"a b","hosts":["h"]}]}"#,
                "without spaces",
            ),
            (r#"{"elements":[{"name":"..","hosts":["h"]}]}"#, "not '.'"),
            (
                r#"{"elements":[{"name":"a","hosts":["10.0.0.1"]},{"name":"b","hosts":["::ffff:10.0.0.1"]}]}"#,
                "elements[1] 'b': address 10.0.0.1 belongs to 'a' already",
            ),
        ] {
            let e = parse_elements(json).unwrap_err();
            assert!(e.contains(says), "{json}: {e}");
        }
    }

    #[test]
    fn file_reload_on_change_and_broken_file_keeps_table() {
        let dir = std::env::temp_dir().join(format!("omcm-elements-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("elements.json");
        std::fs::write(&path, r#"{"elements":[{"name":"a","hosts":["10.0.0.1"]}]}"#).unwrap();
        let e = Elements::load(&path).unwrap();
        assert!(e.current().lookup(ip("10.0.0.1")).is_some());
        std::fs::write(&path, r#"{"elements":[{"name":"b","hosts":["10.0.0.2"]}]}"#).unwrap();
        e.reload();
        assert!(e.current().lookup(ip("10.0.0.1")).is_none());
        assert!(e.current().lookup(ip("10.0.0.2")).is_some());
        std::fs::write(&path, "{broken").unwrap();
        e.reload();
        assert!(e.current().lookup(ip("10.0.0.2")).is_some());
        assert!(Elements::load(&dir.join("missing.json")).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn names_are_checked_in_one_place() {
        for good in [
            "cm-east", "a/b", "a\\b", "a#frag", "q?x", "100%", "café", "..x",
        ] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        let long = "x".repeat(NAME_MAX + 1);
        for bad in ["", ".", "..", "a b", "tab\there", "nl\n", long.as_str()] {
            let e = check_name(bad).unwrap_err();
            assert!(e.len() < 200, "the message stays short: {e}");
        }
    }

    #[test]
    fn smgrs_list_keeps_its_good_entries() {
        let (specs, rejected) = parse_elements_lenient(
            r#"{"elements":[{"name":"ok-1","hosts":["10.0.0.1"]},{"name":"a b","hosts":["10.0.0.2"]},
                {"name":"ok-2","hosts":["10.0.0.3"]},{"name":"ok-1","hosts":["10.0.0.4"]},{"name":"x"}]}"#,
        )
        .unwrap();
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["ok-1", "ok-2"]);
        assert_eq!(rejected.len(), 3, "{rejected:?}");
        assert!(parse_elements_lenient("[]").is_err());
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
