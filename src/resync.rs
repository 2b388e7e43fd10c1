//! What System Manager is asked to resync: keys (element plus object, type or whole element),
//! the changes that touch them, and times as SMGR reads them.

use std::sync::Arc;

pub use compact_str::CompactString as ShortText;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::classify::Verb;

/// What a request covers within one element.
///
/// Object ids and logins are [`ShortText`]: held inline up to 24 bytes (every extension,
/// agent id and login CM has), so a change allocates nothing for them and the coalescing map
/// compares keys without following a pointer.
///
/// Its fields are the same in the queue log, requests to SMGR and the control socket:
/// `"scope":"object","type":...,"id":...` (flattened into the record that holds it).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "lowercase")]
pub enum Scope {
    Object {
        #[serde(rename = "type")]
        ty: Arc<str>,
        id: ShortText,
    },
    Type {
        #[serde(rename = "type")]
        ty: Arc<str>,
    },
    Element,
}

/// Where the knowledge of a change came from: `origin` in the queue log and in requests
/// (absent: heard by syslog on the active node). A key takes the greatest of its changes'
/// origins: heard beats found by reconciliation (it was not missed after all), and a change
/// heard on a standby marks the key as such.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    /// Not heard: found in CM's own history by a reconciliation.
    Reconcile,
    #[default]
    Heard,
    /// Heard while this node was standby (held until it is active).
    Standby,
}

impl Origin {
    /// Its `origin` value; none for a change heard on the active node.
    pub fn name(self) -> Option<&'static str> {
        match self {
            Origin::Reconcile => Some("reconcile"),
            Origin::Heard => None,
            Origin::Standby => Some("standby"),
        }
    }

    /// Reads an `origin` value; one a newer release wrote and this one does not know is
    /// taken as heard.
    pub fn from_name(name: Option<&str>) -> Origin {
        match name {
            Some("reconcile") => Origin::Reconcile,
            Some("standby") => Origin::Standby,
            _ => Origin::Heard,
        }
    }
}

/// The reason of a resync an operator asked for (`omcmsync resync`).
pub const OPERATOR_RESYNC: &str = "operator resync";

/// The unit of coalescing: one element's object, type, or the element itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub element: Arc<str>,
    pub scope: Scope,
}

/// One accepted change, as the queue stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub key: Key,
    pub verb: Verb,
    pub login: Option<ShortText>,
    /// Why a type- or element-level resync (`add next`, `system-parameters`, ...).
    pub reason: Option<String>,
    /// When rsyslog received it, milliseconds since the Unix epoch.
    pub at_ms: u64,
    pub origin: Origin,
}

/// The verbs that touched a key: a bit per verb (a `BTreeSet` allocated a node per key).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerbSet(u8);

impl VerbSet {
    pub fn insert(&mut self, verb: Verb) {
        self.0 |= 1 << verb as u8;
    }

    pub fn union(self, other: VerbSet) -> VerbSet {
        VerbSet(self.0 | other.0)
    }

    /// In `Verb::ALL` order.
    pub fn iter(self) -> impl Iterator<Item = Verb> {
        Verb::ALL
            .into_iter()
            .filter(move |&v| self.0 & (1 << v as u8) != 0)
    }
}

/// A list of verb names, in `Verb::ALL` order.
impl Serialize for VerbSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// A name this release does not know is skipped, not the record that holds it.
impl<'de> Deserialize<'de> for VerbSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let names = Vec::<std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(names.iter().filter_map(|n| Verb::parse(n)).collect())
    }
}

impl FromIterator<Verb> for VerbSet {
    fn from_iter<I: IntoIterator<Item = Verb>>(verbs: I) -> Self {
        let mut set = VerbSet::default();
        verbs.into_iter().for_each(|v| set.insert(v));
        set
    }
}

impl<const N: usize> From<[Verb; N]> for VerbSet {
    fn from(verbs: [Verb; N]) -> Self {
        verbs.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Verb;

    #[test]
    fn scope_json_round_trip() {
        for (scope, json) in [
            (
                Scope::Object {
                    ty: "station".into(),
                    id: "1001".into(),
                },
                r#"{"scope":"object","type":"station","id":"1001"}"#,
            ),
            (
                Scope::Type {
                    ty: "station".into(),
                },
                r#"{"scope":"type","type":"station"}"#,
            ),
            (Scope::Element, r#"{"scope":"element"}"#),
        ] {
            assert_eq!(serde_json::to_string(&scope).unwrap(), json);
            assert_eq!(serde_json::from_str::<Scope>(json).unwrap(), scope);
        }
    }

    #[test]
    fn verb_sets_skip_names_they_do_not_know() {
        let set: VerbSet = serde_json::from_str(r#"["change","paint","add"]"#).unwrap();
        assert_eq!(set, [Verb::Add, Verb::Change].into());
        assert_eq!(serde_json::to_string(&set).unwrap(), r#"["add","change"]"#);
    }
}
