//! The module's counters in rsyslog's own impstats output.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn counters_show_in_impstats() {
    let dir = TestDir::new();
    let sim = Sim::start(&dir, &[]);
    let ports = Ports::free();
    let stats_file = dir.p("stats.json");
    let text = config(&dir, ports, &action_to(&dir, sim.url(), r#"coalesce.window.ms="100""#)).replace(
        "module(load=\"imtcp\")",
        &format!("module(load=\"impstats\" interval=\"1\" log.syslog=\"off\" log.file=\"{stats_file}\" format=\"json\")\nmodule(load=\"imtcp\")"),
    );
    let d = Daemon::start_config(&dir, ports, &text);
    let mut lines: Vec<String> = (1..=10)
        .map(|i| syslog_line("cm-east", "cmdhist", &format!("change station {i}")))
        .collect();
    lines.extend((0..5).map(|_| syslog_line("cm-east", "x", "IPEVT IPT_REG board=PROCR")));
    lines.push(syslog_line("cm-east", "cmdhist", "change widget 3"));
    d.send_tcp(&lines);
    sim.wait_items(Duration::from_secs(60), |i| i.len() == 10);
    let deadline = Instant::now() + Duration::from_secs(30);
    let ours = loop {
        let text = std::fs::read_to_string(&stats_file).unwrap_or_default();
        let last = text
            .lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(&l[l.find('{')?..]).ok())
            .find(|v| v["origin"] == "omcmsync");
        if let Some(v) = last.filter(|v| v["requests.delivered"] == 10) {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "no omcmsync stats with 10 deliveries in:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(ours["name"], "omcmsync");
    assert_eq!(ours["lines.received"], 16);
    assert_eq!(ours["events.change"], 10);
    assert_eq!(ours["ignored.noise"], 5);
    assert_eq!(ours["ignored.unknown_object"], 1);
    assert_eq!(ours["changes.queued"], 10);
    assert_eq!(ours["keys.pending"], 0);
    assert!(ours["posts.ok"].as_u64().unwrap() >= 1);
    assert!(d.stop(Duration::from_secs(30)).success());
}
