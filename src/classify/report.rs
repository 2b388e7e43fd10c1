//! Verdicts as JSON: one shape for the trace file, the capture file and `omcmsync classify`
//! (their records: [`crate::records::LineRecord`], the CLI's own).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::{Event, Target, Verb, Verdict};
use crate::line::Malformed;

/// What became of a line, flattened into its record: `{"verdict":"event","verb":...,
/// "type":...,"scope":...,...}`, `{"verdict":"ignored","reason":...}` or
/// `{"verdict":"malformed","reason":...}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum VerdictFields<'a> {
    Event {
        verb: Verb,
        #[serde(rename = "type")]
        ty: Cow<'a, str>,
        #[serde(flatten)]
        target: TargetFields<'a>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        login: Option<Cow<'a, str>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<Cow<'a, str>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_ip: Option<String>,
        /// CM's own timestamp, as CM wrote it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cm_time: Option<String>,
    },
    Ignored {
        reason: Cow<'a, str>,
    },
    /// The rendered line could not be split (not the omcmsync template, a bad sender).
    Malformed {
        reason: Malformed,
    },
}

/// What an event covers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "lowercase")]
pub enum TargetFields<'a> {
    Object {
        id: Cow<'a, str>,
    },
    /// `duplicate ... start S count K`: the ids from `start`, as wide as CM wrote it.
    Range {
        start: String,
        count: u32,
    },
    Type {
        reason: Cow<'a, str>,
    },
    Element,
}

impl<'a> VerdictFields<'a> {
    pub fn of(verdict: &Verdict<'a>) -> Self {
        match verdict {
            Verdict::Event(e) => VerdictFields::event(e),
            Verdict::Ignored(reason) => VerdictFields::Ignored {
                reason: Cow::Borrowed(reason.as_str()),
            },
        }
    }

    fn event(e: &Event<'a>) -> Self {
        let target = match e.target {
            Target::Object(id) => TargetFields::Object {
                id: Cow::Borrowed(id),
            },
            Target::Range {
                start,
                count,
                width,
            } => TargetFields::Range {
                start: format!("{start:0width$}"),
                count,
            },
            Target::Type(reason) => TargetFields::Type {
                reason: Cow::Borrowed(reason.as_str()),
            },
            Target::Element => TargetFields::Element,
        };
        VerdictFields::Event {
            verb: e.verb,
            ty: Cow::Borrowed(&e.object.type_name),
            target,
            login: e.login.map(Cow::Borrowed),
            session: e.session.map(Cow::Borrowed),
            client_ip: e.client_ip.map(|ip| ip.to_string()),
            cm_time: e.cm_time.map(|t| t.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Classifier;
    use super::*;
    use serde_json::json;

    #[test]
    fn events_and_ignored_lines() {
        let c = Classifier::default();
        let json = |v: &Verdict| serde_json::to_value(VerdictFields::of(v)).unwrap();
        let v = json(&c.classify(b"[dadmin SAT 2001:db8::7 dup sta 1 start 0100 count 2]"));
        assert_eq!(
            v,
            json!({"verdict":"event","verb":"duplicate","type":"station","scope":"range",
                   "start":"0100","count":2,"login":"dadmin","session":"SAT","client_ip":"2001:db8::7"})
        );
        let v = json(&c.classify(b"IPEVT x"));
        assert_eq!(v, json!({"verdict":"ignored","reason":"noise"}));
    }
}
