//! Verdicts as JSON: one shape for the trace file, the capture file and `omcmsync classify`.

use serde_json::{json, Map, Value};

use super::{Event, Target, Verdict};

/// `{"verdict":"event", "verb":..., "type":..., "scope":..., "id"...}` or
/// `{"verdict":"ignored", "reason":...}`.
pub fn verdict_json(verdict: &Verdict) -> Map<String, Value> {
    match verdict {
        Verdict::Event(e) => event_json(e),
        Verdict::Ignored(reason) => {
            let mut m = Map::new();
            m.insert("verdict".into(), "ignored".into());
            m.insert("reason".into(), reason.as_str().into());
            m
        }
    }
}

fn event_json(e: &Event) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("verdict".into(), "event".into());
    m.insert("verb".into(), e.verb.as_str().into());
    m.insert("type".into(), (*e.object.type_name).into());
    let (scope, detail) = match e.target {
        Target::Object(id) => ("object", json!({ "id": id })),
        Target::Range {
            start,
            count,
            width,
        } => (
            "range",
            json!({ "start": format!("{start:0width$}"), "count": count }),
        ),
        Target::Type(reason) => ("type", json!({ "reason": reason.as_str() })),
        Target::Element => ("element", json!({})),
    };
    m.insert("scope".into(), scope.into());
    if let Value::Object(detail) = detail {
        m.extend(detail);
    }
    let optional = [
        ("login", e.login.map(Value::from)),
        ("session", e.session.map(Value::from)),
        ("client_ip", e.client_ip.map(|ip| ip.to_string().into())),
        ("cm_time", e.cm_time.map(|t| t.to_string().into())),
    ];
    for (key, value) in optional {
        if let Some(v) = value {
            m.insert(key.into(), v);
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::super::Classifier;
    use super::*;

    #[test]
    fn events_and_ignored_lines() {
        let c = Classifier::default();
        let v = verdict_json(&c.classify(b"[dadmin SAT 2001:db8::7 dup sta 1 start 0100 count 2]"));
        assert_eq!(
            Value::Object(v),
            json!({"verdict":"event","verb":"duplicate","type":"station","scope":"range",
                   "start":"0100","count":2,"login":"dadmin","session":"SAT","client_ip":"2001:db8::7"})
        );
        let v = verdict_json(&c.classify(b"IPEVT x"));
        assert_eq!(
            Value::Object(v),
            json!({"verdict":"ignored","reason":"noise"})
        );
    }
}
