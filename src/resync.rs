//! What System Manager is asked to resync: keys (element plus object, type or whole element),
//! the changes that touch them, and times as SMGR reads them.

use std::sync::Arc;

pub use compact_str::CompactString as ShortText;
use serde_json::{Map, Value};

use crate::classify::Verb;

/// What a request covers within one element.
///
/// Object ids and logins are [`ShortText`]: held inline up to 24 bytes (every extension,
/// agent id and login CM has), so a change allocates nothing for them and the coalescing map
/// compares keys without following a pointer.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Object { ty: Arc<str>, id: ShortText },
    Type { ty: Arc<str> },
    Element,
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
    /// Heard while this node was standby (held until it is active; `origin: "standby"`).
    pub standby: bool,
}

/// Where a record's fields go: the queue log's own writer and a JSON map (requests) alike, so
/// each field's name and form is spelled once, by the type that owns it.
pub trait Fields {
    fn str(&mut self, name: &'static str, value: &str);
    fn num(&mut self, name: &'static str, value: u64);
    fn strs<'s>(&mut self, name: &'static str, values: impl Iterator<Item = &'s str>);
}

impl Fields for Map<String, Value> {
    fn str(&mut self, name: &'static str, value: &str) {
        self.insert(name.into(), value.into());
    }

    fn num(&mut self, name: &'static str, value: u64) {
        self.insert(name.into(), value.into());
    }

    fn strs<'s>(&mut self, name: &'static str, values: impl Iterator<Item = &'s str>) {
        self.insert(name.into(), values.collect());
    }
}

impl Scope {
    /// The scope's fields, in log records and requests alike; [`Scope::read_json`] reads them.
    pub fn write_fields(&self, out: &mut impl Fields) {
        match self {
            Scope::Object { ty, id } => {
                out.str("scope", "object");
                out.str("type", ty);
                out.str("id", id);
            }
            Scope::Type { ty } => {
                out.str("scope", "type");
                out.str("type", ty);
            }
            Scope::Element => out.str("scope", "element"),
        }
    }

    pub fn read_json(v: &Value) -> Option<Scope> {
        let s = |k: &str| v.get(k).and_then(Value::as_str);
        Some(match v.get("scope")?.as_str()? {
            "object" => Scope::Object {
                ty: s("type")?.into(),
                id: s("id")?.into(),
            },
            "type" => Scope::Type {
                ty: s("type")?.into(),
            },
            "element" => Scope::Element,
            _ => return None,
        })
    }
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

    #[test]
    fn scope_json_round_trip() {
        for scope in [
            Scope::Object {
                ty: "station".into(),
                id: "1001".into(),
            },
            Scope::Type {
                ty: "station".into(),
            },
            Scope::Element,
        ] {
            let mut m = Map::new();
            scope.write_fields(&mut m);
            assert_eq!(Scope::read_json(&Value::Object(m)), Some(scope));
        }
    }
}
