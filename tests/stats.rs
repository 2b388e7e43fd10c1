//! The module's counters in rsyslog's own impstats output.

mod common;

use std::time::Duration;

use common::*;

/// rsyslogd with impstats, posting to `sim`.
fn start_with_impstats(dir: &TestDir, sim: &Sim) -> Daemon {
    let ports = Ports::free();
    let text = config_with_impstats(
        dir,
        ports,
        &action_to(dir, sim.url(), r#"coalesce.window.ms="100""#),
    );
    Daemon::start_config(dir, ports, &text)
}

#[test]
fn counters_show_in_impstats() {
    let dir = TestDir::new();
    let sim = Sim::start(&dir, &[]);
    let d = start_with_impstats(&dir, &sim);
    let mut lines: Vec<String> = (1..=10)
        .map(|i| syslog_line("cm-east", "cmdhist", &format!("change station {i}")))
        .collect();
    lines.extend((0..5).map(|_| syslog_line("cm-east", "x", "IPEVT IPT_REG board=PROCR")));
    lines.push(syslog_line("cm-east", "cmdhist", "change widget 3"));
    d.send_tcp(&lines);
    sim.wait_items(Duration::from_secs(60), |i| i.len() == 10);
    let ours = wait_module_stats(&dir, Duration::from_secs(30), |v| {
        v["requests.delivered"] == 10
    });
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

/// A daemon whose statsobj interface is not the version the module speaks (rsyslog 8.2608 moved
/// to 16; none of the versions the suite runs has, so a test-build hook asks for 16 instead of
/// 13 and the real daemon refuses it): the module says so once and works without counters.
#[cfg(feature = "fault-hooks")]
#[test]
fn fault_hook_refused_statsobj_interface_runs_without_counters() {
    let dir = TestDir::new();
    dir.set_env("OMCM_FAULT_STATSOBJ_IF", "16");
    let sim = Sim::start(&dir, &[]);
    let d = start_with_impstats(&dir, &sim);
    let lines: Vec<String> = (1..=5)
        .map(|i| syslog_line("cm-east", "cmdhist", &format!("change station {i}")))
        .collect();
    d.send_tcp(&lines);
    sim.wait_items(Duration::from_secs(60), |i| i.len() == 5);
    // impstats has reported the action (core counters) after the deliveries: ours never came.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !stats_lines(&dir)
        .iter()
        .any(|v| v["name"] == "omcmsync" && v["origin"] == "core.action" && v["processed"] == 5)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no action stats: {:?}",
            stats_lines(&dir)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        !stats_lines(&dir).iter().any(|v| v["origin"] == "omcmsync"),
        "{:?}\n{}",
        stats_lines(&dir),
        dir.rsyslog_log()
    );
    let log = dir.rsyslog_log();
    assert!(
        log.contains("impstats counters not available (statsobj interface version 16"),
        "{log}"
    );
    assert!(d.stop(Duration::from_secs(30)).success());
}
