//! An HA gate an operator can trust, with the real rsyslogd: a command that cannot run is
//! "unknown" with its reason (and `-N1` catches an absolute path that does not exist), a role
//! that cannot be read is logged once on entering "unknown" and once on leaving it, and a
//! flapping role does not flip the gate faster than the hold-down allows.

mod common;

use std::time::{Duration, Instant};

use common::*;

const WAIT: Duration = Duration::from_secs(60);
const QUICK: &str =
    r#"coalesce.window.ms="200" retry.initial.ms="100" retry.max.ms="1000" ha.interval.ms="100""#;

fn count(dir: &TestDir, text: &str) -> usize {
    dir.rsyslog_log().matches(text).count()
}

#[test]
fn an_absolute_ha_command_that_does_not_exist_fails_the_check() {
    let dir = TestDir::new();
    let body = action(
        &dir,
        r#"ha.mode="command" ha.command="/nonexistent/ha-check --quiet""#,
    );
    let check = check_config(&dir, &config(&dir, Ports::free(), &body), &[]);
    assert!(
        !check.ok
            && check.output.contains("'ha.command'")
            && check.output.contains("/nonexistent/ha-check is not"),
        "{}",
        check.output
    );
}

/// A command `sh` cannot find: the role is unknown (not standby), the reason is logged, and
/// events are processed (`ha.onunknown="process"`, the default).
#[test]
fn a_command_that_cannot_run_is_unknown_and_says_why() {
    let dir = TestDir::new();
    let sim = Sim::start(&dir, &[]);
    let extra = format!(r#"{QUICK} ha.mode="command" ha.command="no-such-ha-check""#);
    let d = Daemon::start(&dir, &action_to(&dir, sim.url(), &extra));
    d.send_tcp(&[syslog_line("cm-east", "cmdhist", "change station 1")]);
    sim.wait_items(WAIT, |i| object_ids(i, "cm-east").contains("1"));
    dir.wait_log(&["exited 127: not found"]);
    assert!(d.stop(WAIT).success());
}

/// Garbage from `ha.url`, then a good answer; a missing `ha.file`, then the file: one line on
/// entering "unknown", one on leaving it, however many reads in between.
#[test]
fn entering_and_leaving_unknown_is_logged_once_each() {
    for mode in ["http", "file"] {
        let dir = TestDir::new();
        let sim = Sim::start(&dir, &[]);
        let ha = match mode {
            "http" => {
                sim.control("/sim/role", serde_json::json!({"role": "garbage"}));
                format!(r#"ha.mode="http" ha.url="{}/ha""#, sim.url())
            }
            _ => format!(r#"ha.mode="file" ha.file="{}""#, dir.p("role")),
        };
        let d = Daemon::start(&dir, &action_to(&dir, sim.url(), &format!("{QUICK} {ha}")));
        dir.wait_log(&["the role cannot be read"]);
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(
            count(&dir, "the role cannot be read"),
            1,
            "{mode}: {}",
            dir.rsyslog_log()
        );
        match mode {
            "http" => sim.control("/sim/role", serde_json::json!({"role": "active"})),
            _ => std::fs::write(dir.path("role"), "active").unwrap(),
        }
        dir.wait_log(&["the role reads again: this node is active"]);
        std::thread::sleep(Duration::from_millis(1000));
        assert_eq!(count(&dir, "the role reads again"), 1, "{mode}");
        assert_eq!(count(&dir, "the role cannot be read"), 1, "{mode}");
        let log = dir.rsyslog_log();
        assert!(
            log.contains(&format!("ha (state.dir {})", dir.p("state"))),
            "names the action: {log}"
        );
        assert!(d.stop(WAIT).success());
    }
}

/// A role flapping every 300 ms, read every 100 ms, with a hold-down of 1 s: the gate does not
/// follow it.
#[test]
fn a_flapping_role_does_not_flip_the_gate() {
    let dir = TestDir::new();
    std::fs::write(dir.path("role"), "active").unwrap();
    let extra = format!(
        r#"{QUICK} ha.mode="file" ha.file="{}" ha.holddown.ms="1000""#,
        dir.p("role")
    );
    let d = Daemon::start(&dir, &action(&dir, &extra));
    let started = Instant::now();
    let mut flap = 0;
    while started.elapsed() < Duration::from_secs(4) {
        flap += 1;
        let role = if flap % 2 == 0 { "active" } else { "standby" };
        std::fs::write(dir.path("role"), role).unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    std::fs::write(dir.path("role"), "active").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        count(&dir, "this node is now"),
        0,
        "the gate followed the flapping role: {}",
        dir.rsyslog_log()
    );
    assert!(d.stop(WAIT).success());
}

/// The exit status decides inside rsyslogd too (whose main loop reaps every child of the
/// daemon): exit 1 is standby (held, nothing posted), exit 0 active (released, delivered).
#[test]
fn the_command_exit_status_decides_inside_rsyslogd() {
    let dir = TestDir::new();
    let sim = Sim::start(&dir, &[]);
    let extra = format!(
        r#"{QUICK} ha.mode="command" ha.command="test -e {}""#,
        dir.p("active")
    );
    let d = Daemon::start(&dir, &action_to(&dir, sim.url(), &extra));
    d.send_tcp(&[syslog_line("cm-east", "cmdhist", "change station 1")]);
    wait_json_lines(&dir.path("trace.json"), 1, WAIT);
    std::thread::sleep(Duration::from_millis(1000));
    assert!(sim.requests().is_empty(), "standby: held");
    assert!(
        dir.rsyslog_log().contains("this node is standby"),
        "{}",
        dir.rsyslog_log()
    );
    std::fs::write(dir.path("active"), "").unwrap();
    sim.wait_items(WAIT, |i| object_ids(i, "cm-east").contains("1"));
    assert!(d.stop(WAIT).success());
}
