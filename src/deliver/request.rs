//! What one POST to System Manager carries, built in one place: the body (docs/smgr-api.md) and
//! its Idempotency-Key.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::clock::rfc3339;
use crate::queue::Entry;
use crate::resync::{Key, Scope, ShortText, VerbSet};

/// The body of one POST: one element's requests (docs/smgr-api.md). The dead-letter store and
/// smgr-sim read it back with this type; `R` lets a reader take the requests one at a time
/// (`ResyncBody<serde_json::Value>`), skipping one it cannot read instead of the body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResyncBody<R = ResyncItem> {
    pub element: String,
    pub requests: Vec<R>,
}

/// One key's request. What a reader may miss defaults (a dead letter may be hand-made).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResyncItem {
    #[serde(flatten)]
    pub scope: Scope,
    /// Why a type- or element-level resync (absent for an object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default)]
    pub verbs: VerbSet,
    #[serde(default)]
    pub logins: Vec<ShortText>,
    #[serde(default)]
    pub count: u64,
    /// RFC 3339, UTC.
    #[serde(default)]
    pub first_seen: String,
    #[serde(default)]
    pub last_seen: String,
    /// `standby`: heard while this node was standby.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

/// One POST's content.
pub struct Request {
    pub body: ResyncBody,
    pub idempotency_key: String,
}

impl Request {
    /// The request for some due keys of one element; `epoch`: the state directory's.
    pub fn new(epoch: u64, element: &Arc<str>, items: &[(Key, Entry)]) -> Request {
        let requests = items.iter().map(|(k, e)| item(&k.scope, e)).collect();
        Request {
            body: ResyncBody {
                element: element.to_string(),
                requests,
            },
            idempotency_key: idempotency_key(
                epoch,
                element,
                items.iter().map(|(k, e)| (scope_id(&k.scope), e.seq)),
            ),
        }
    }

    /// The body as it is posted.
    pub fn json(&self) -> String {
        // Cannot fail: string keys and plain values only.
        serde_json::to_string(&self.body).unwrap_or_default()
    }
}

/// The request object for one key.
fn item(scope: &Scope, entry: &Entry) -> ResyncItem {
    let reason = entry.reason.as_deref().unwrap_or_default();
    ResyncItem {
        scope: scope.clone(),
        reason: (!matches!(scope, Scope::Object { .. })).then(|| reason.to_owned()),
        verbs: entry.verbs,
        logins: entry.logins.to_vec(),
        count: entry.count,
        first_seen: rfc3339(entry.first_ms),
        last_seen: rfc3339(entry.last_ms),
        origin: entry.origin.name().map(str::to_owned),
    }
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
    use crate::resync::Origin;

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
            origin: Origin::Heard,
        };
        (key, entry)
    }

    #[test]
    fn request_shape() {
        let r = Request::new(7, &"cm".into(), &[station("1001", 1)]);
        assert_eq!(
            r.json(),
            r#"{"element":"cm","requests":[{"scope":"object","type":"station","id":"1001","verbs":["change"],"logins":["dadmin"],"count":1,"first_seen":"2025-11-25T10:15:02.123Z","last_seen":"2025-11-25T10:15:02.123Z"}]}"#
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
