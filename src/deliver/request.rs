//! What one POST to System Manager carries, built in one place: the body (docs/smgr-api.md) and
//! its Idempotency-Key.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::clock::rfc3339;
use crate::queue::Entry;
use crate::resync::{Key, Scope};

/// One POST's content.
pub struct Request {
    pub body: Value,
    pub idempotency_key: String,
}

impl Request {
    /// The request for some due keys of one element; `epoch`: the state directory's.
    pub fn new(epoch: u64, element: &Arc<str>, items: &[(Key, Entry)]) -> Request {
        let requests: Vec<Value> = items.iter().map(|(k, e)| item(&k.scope, e)).collect();
        Request {
            body: json!({ "element": &**element, "requests": requests }),
            idempotency_key: idempotency_key(
                epoch,
                element,
                items.iter().map(|(k, e)| (scope_id(&k.scope), e.seq)),
            ),
        }
    }
}

/// The request object for one key.
fn item(scope: &Scope, entry: &Entry) -> Value {
    let mut m = Map::new();
    scope.write_fields(&mut m);
    if !matches!(scope, Scope::Object { .. }) {
        m.insert(
            "reason".into(),
            entry.reason.as_deref().unwrap_or_default().into(),
        );
    }
    entry.write_summary(&mut m);
    m.insert("first_seen".into(), rfc3339(entry.first_ms).into());
    m.insert("last_seen".into(), rfc3339(entry.last_ms).into());
    if entry.standby {
        m.insert("origin".into(), "standby".into());
    }
    Value::Object(m)
}

fn scope_id(scope: &Scope) -> String {
    match scope {
        Scope::Object { ty, id } => format!("{ty}/{id}"),
        Scope::Type { ty } => format!("{ty}/*"),
        Scope::Element => "*".into(),
    }
}

/// A stable key for one request's content: the same keys at the same sequence numbers of the
/// same state directory's epoch give the same Idempotency-Key on every retry, also after a
/// restart; a new change has a new sequence number, and lost numbering a new epoch, so no key
/// repeats one of another content (FNV-1a, 64 bits; docs/smgr-api.md).
fn idempotency_key(
    epoch: u64,
    element: &str,
    parts: impl IntoIterator<Item = (String, u64)>,
) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(&epoch.to_le_bytes());
    eat(element.as_bytes());
    for (key, seq) in parts {
        eat(b"\0");
        eat(key.as_bytes());
        eat(&seq.to_le_bytes());
    }
    format!("omcmsync-{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Verb;

    fn station(id: &str, seq: u64) -> (Key, Entry) {
        let key = Key {
            element: "cm".into(),
            scope: Scope::Object {
                ty: "station".into(),
                id: id.into(),
            },
        };
        let entry = Entry {
            seq,
            count: 1,
            verbs: [Verb::Change].into(),
            logins: ["dadmin".into()].into_iter().collect(),
            reason: None,
            first_ms: 1_764_065_702_123,
            last_ms: 1_764_065_702_123,
            due_ms: 0,
            in_flight: false,
            standby: false,
        };
        (key, entry)
    }

    #[test]
    fn request_shape() {
        let r = Request::new(7, &"cm".into(), &[station("1001", 1)]);
        assert_eq!(
            r.body,
            json!({"element":"cm","requests":[{"scope":"object","type":"station","id":"1001",
                "verbs":["change"],"logins":["dadmin"],"count":1,
                "first_seen":"2025-11-25T10:15:02.123Z","last_seen":"2025-11-25T10:15:02.123Z"}]})
        );
    }

    #[test]
    fn idempotency_key_depends_on_content_only() {
        let key = |epoch, items: &[(Key, Entry)]| {
            Request::new(epoch, &"cm".into(), items).idempotency_key
        };
        let a = key(1, &[station("1", 5), station("2", 6)]);
        assert_eq!(a, key(1, &[station("1", 5), station("2", 6)]));
        assert_ne!(a, key(1, &[station("1", 7), station("2", 6)]));
        assert_ne!(
            a,
            key(2, &[station("1", 5), station("2", 6)]),
            "a new epoch"
        );
        assert!(a.starts_with("omcmsync-"));
    }
}
