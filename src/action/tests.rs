use std::time::Instant;

use super::*;
use crate::classify::{Reason, Verb};
use crate::config::{Config, Value as V};
use crate::counters::{Counters, Dropped};
use serde_json::Value;

/// A pipeline with two elements (cm-east at 10.1.1.10 and ::1, cm-off with notify off at
/// 10.2.2.20), its state in a temp dir, and an SMGR that is not there.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("elements.json"),
            r#"{"elements":[{"name":"cm-east","hosts":["10.1.1.10","::1"],"ignore_logins":["smgr-sync"]},
                            {"name":"cm-off","hosts":["10.2.2.20"],"notify":false}]}"#,
        )
        .unwrap();
        Fixture { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn pipeline(&self, extra: &[(&str, String)]) -> Action {
        let mut values = vec![
            ("smgr.url", "http://127.0.0.1:9".to_string()),
            ("elements.file", self.path("elements.json")),
            ("state.dir", self.path("state")),
            ("coalesce.window.ms", "60000".into()),
        ];
        values.extend(extra.iter().cloned());
        Action::new(Config::from_values(values.into_iter().map(|(k, v)| (k, V::Text(v)))).unwrap())
    }
}

/// A template line received now: a held key's retention (`ha.standby.retain.ms`, a day) runs
/// from the reception time, so a fixed date would expire it once the calendar passed it.
fn tpl(sender: &str, msg: &str) -> Vec<u8> {
    let now = crate::clock::rfc3339(crate::clock::now_ms());
    format!("{sender}\tcm\t{now}\t{msg}").into_bytes()
}

#[test]
fn counts_received_malformed_events_and_reasons() {
    let f = Fixture::new();
    let p = f.pipeline(&[]);
    let lines = [
        tpl("10.1.1.10", "change station 1"),
        b"garbage".to_vec(),
        tpl("::1", "IPEVT IPT_REG"),
        tpl("::1", "add station next"),
        tpl("::1", "change widget 5"),
    ];
    p.process_batch(0, lines.iter().map(Vec::as_slice)).unwrap();
    let c = p.counters();
    assert_eq!(Counters::get(&c.lines_received), 5);
    assert_eq!(Counters::get(&c.lines_malformed), 1);
    assert_eq!((c.event(Verb::Change), c.event(Verb::Add)), (1, 1));
    assert_eq!(
        (c.ignored(Reason::Noise), c.ignored(Reason::UnknownObject)),
        (1, 1)
    );
    assert_eq!(Counters::get(&c.changes_queued), 2);
    assert_eq!(p.keys_pending(), 2);
}

#[test]
fn filter_drops_strangers_disabled_elements_and_echoes() {
    let f = Fixture::new();
    let p = f.pipeline(&[]);
    let lines = [
        tpl("10.9.9.9", "change station 1"),
        tpl("10.2.2.20", "change station 2"),
        tpl("::ffff:10.1.1.10", "[smgr-sync SAT change station 3]"),
        tpl("::ffff:10.1.1.10", "[dadmin SAT change station 4]"),
    ];
    p.process_batch(0, lines.iter().map(Vec::as_slice)).unwrap();
    let c = p.counters();
    assert_eq!(c.dropped(Dropped::UnknownSender), 1);
    assert_eq!(c.dropped(Dropped::NotifyOff), 1);
    assert_eq!(c.ignored(Reason::IgnoredLogin), 1);
    assert_eq!(p.keys_pending(), 1);
}

impl Fixture {
    /// An action whose role file says standby, with `extra` parameters.
    fn standby(&self, extra: &[(&str, String)]) -> Action {
        std::fs::write(self.dir.path().join("role"), "standby").unwrap();
        let mut params = vec![
            ("ha.mode", "file".into()),
            ("ha.file", self.path("role")),
            ("ha.interval.ms", "100".into()),
        ];
        params.extend(extra.iter().cloned());
        self.pipeline(&params)
    }
}

#[test]
fn a_standby_holds_what_it_hears() {
    let f = Fixture::new();
    let p = f.standby(&[]);
    let line = [tpl("10.1.1.10", "change station 1")];
    p.process_batch(0, line.iter().map(Vec::as_slice)).unwrap();
    assert_eq!(p.keys_pending(), 1, "kept, not dropped");
    assert_eq!(Counters::get(&p.counters().standby_held), 1);
    assert_eq!(p.counters().dropped(Dropped::Standby), 0);
}

#[test]
fn a_standby_in_drop_mode_drops_everything_until_active() {
    let f = Fixture::new();
    let p = f.standby(&[("ha.standby", "drop".into())]);
    let line = [tpl("10.1.1.10", "change station 1")];
    p.process_batch(0, line.iter().map(Vec::as_slice)).unwrap();
    assert_eq!(p.counters().dropped(Dropped::Standby), 1);
    std::fs::write(f.dir.path().join("role"), "active").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while p.keys_pending() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        p.process_batch(0, line.iter().map(Vec::as_slice)).unwrap();
    }
    assert_eq!(
        p.keys_pending(),
        1,
        "switch to active takes effect without a restart"
    );
}

#[test]
fn duplicate_ranges_expand_and_everything_survives_a_restart() {
    let f = Fixture::new();
    let p = f.pipeline(&[]);
    let line = [tpl(
        "10.1.1.10",
        "duplicate station 1001 start 2000 count 5",
    )];
    p.process_batch(0, line.iter().map(Vec::as_slice)).unwrap();
    assert_eq!(p.keys_pending(), 5);
    drop(p);
    let p = f.pipeline(&[]);
    assert!(p.start());
    assert_eq!(p.keys_pending(), 5);
}

#[test]
fn traces_each_line_with_verdict_and_outcome() {
    let f = Fixture::new();
    let p = f.pipeline(&[("trace.file", f.path("trace.json"))]);
    let lines = [
        tpl("10.1.1.10", "x: cha sta 1001 \u{1}"),
        tpl("10.9.9.9", "change station 7"),
        b"bad\xfe".to_vec(),
    ];
    p.process_batch(7, lines.iter().map(Vec::as_slice)).unwrap();
    let text = std::fs::read_to_string(f.path("trace.json")).unwrap();
    let recs: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 3);
    assert_eq!(recs[0]["worker"], 7);
    assert_eq!(
        (&recs[0]["type"], &recs[0]["id"], &recs[0]["outcome"]),
        (&"station".into(), &"1001".into(), &"queued".into())
    );
    assert_eq!(recs[1]["outcome"], "unknown_sender");
    assert_eq!(recs[2]["verdict"], "malformed");
}

#[test]
fn capture_samples_admin_looking_lines_up_to_its_bound() {
    let f = Fixture::new();
    let p = f.pipeline(&[
        ("capture.file", f.path("capture.json")),
        ("capture.max", "2".into()),
    ]);
    let lines = [
        tpl("::1", "change widget 1"),
        tpl("::1", "IPEVT noise"),
        tpl("::1", "cmdhist: unreadable"),
        tpl("::1", "change station"),
    ];
    p.process_batch(0, lines.iter().map(Vec::as_slice)).unwrap();
    p.process_batch(0, lines.iter().map(Vec::as_slice)).unwrap();
    let text = std::fs::read_to_string(f.path("capture.json")).unwrap();
    let reasons: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["reason"].to_string())
        .collect();
    assert_eq!(reasons, ["\"unknown_object\"", "\"unclassified\""]);
    assert_eq!(Counters::get(&p.counters().captured), 2);
    let count = || {
        let text = std::fs::read_to_string(f.path("capture.json")).unwrap();
        text.lines().count()
    };
    // A HUP that leaves the file in place adds no room; one after a rotation does.
    p.reopen();
    p.process_batch(0, lines.iter().map(Vec::as_slice)).unwrap();
    assert_eq!(count(), 2);
    std::fs::rename(f.path("capture.json"), f.path("capture.json.1")).unwrap();
    p.reopen();
    p.process_batch(0, lines.iter().map(Vec::as_slice)).unwrap();
    assert_eq!(count(), 2);
    assert_eq!(Counters::get(&p.counters().captured), 4);
}

#[test]
fn unusable_state_dir_suspends_instead_of_losing() {
    let f = Fixture::new();
    std::fs::write(f.dir.path().join("state"), "a file, not a directory").unwrap();
    let values = vec![
        ("smgr.url", V::Text("http://127.0.0.1:9".into())),
        ("elements.file", V::Text(f.path("elements.json"))),
        ("state.dir", V::Text(f.path("state/sub"))),
    ];
    // state/sub's parent is a file: config check refuses it.
    assert!(Config::from_values(values).is_err());
}

/// A reconciliation reads CM's history records through the same classifier, for the element
/// it read them from: SMGR's own login and an element with notifications off give nothing.
#[test]
fn history_records_are_classified_for_their_element() {
    use crate::reconcile::HistoryReader;
    use crate::resync::{Origin, Scope};
    let f = Fixture::new();
    let p = f.pipeline(&[]);
    assert!(p.start());
    let read = |element: &str, line: &str| p.pipeline.changes(element, line, 42);
    let changes = read("cm-east", "12/06 10:15 S00107 dadmin chan station 1001");
    assert_eq!(changes.len(), 1);
    let c = &changes[0];
    assert_eq!(
        (c.origin, c.at_ms, c.login.as_deref()),
        (Origin::Reconcile, 42, Some("dadmin"))
    );
    assert_eq!(
        c.key.scope,
        Scope::Object {
            ty: "station".into(),
            id: "1001".into()
        }
    );
    assert_eq!(
        read("cm-east", "12/06 10:15 TTI tti-m chan station 2002").len(),
        1
    );
    assert_eq!(
        read(
            "cm-east",
            "12/06 10:15 S3 dadmin dupl station 1 start 10 count 3"
        )
        .len(),
        3
    );
    for (element, line) in [
        ("cm-east", "12/06 10:15 S00107 smgr-sync chan station 1001"),
        ("cm-off", "12/06 10:15 S00107 dadmin chan station 1001"),
        ("cm-gone", "12/06 10:15 S00107 dadmin chan station 1001"),
        ("cm-east", "12/06 10:15 S00107 dadmin list station"),
        ("cm-east", "12/05 09:00 S00001 dadmin logn"),
    ] {
        assert!(read(element, line).is_empty(), "{element}: {line}");
    }
    p.stop();
}
