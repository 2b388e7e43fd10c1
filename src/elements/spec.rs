//! The element list as written: an element file, or System Manager's list. Parsing and the
//! checks of names and addresses; nothing here resolves a name.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use serde_json::Value;

use crate::line::parse_sender;

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
    // Named by the entry, not its position: an entry that moves in the list is the same
    // problem (and is logged once, not again at every fetch).
    for v in list {
        match parse_element(v) {
            Ok(spec) if !seen.insert(spec.name.clone()) => {
                rejected.push(format!("'{}': the name appears twice", spec.name))
            }
            Ok(spec) => specs.push(spec),
            Err(e) => rejected.push(match v.get("name").and_then(Value::as_str) {
                Some(name) => format!("'{}': {e}", crate::text::truncate_at_char(name, 64)),
                None => format!(
                    "an entry without a name ({}): {e}",
                    crate::text::truncate_at_char(&v.to_string(), 80)
                ),
            }),
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
/// ([`crate::smgr::path_segment`]).
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
pub fn literal(host: &str) -> Option<IpAddr> {
    parse_sender(host.trim_matches(|c| c == '[' || c == ']'))
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

/// Reads and parses an element file; the error names the file.
pub fn read_specs(path: &Path) -> Result<Vec<ElementSpec>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_elements(&text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_element_files_say_what_is_wrong() {
        for (json, says) in [
            ("[]", "top level"),
            (
                r#"{"elements":[{"hosts":["h"]}]}"#,
                r#"an entry without a name ({"hosts":["h"]}): "name""#,
            ),
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
}
