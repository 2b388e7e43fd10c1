//! `smgr.transport="command"` with the real rsyslogd: the site's program decides by its exit
//! status (0 done, 75 retry, other dead-letter) and a program that hangs is killed at
//! `smgr.timeout.ms` and retried. Every assertion is on what the program saw and wrote.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::*;

const WAIT: Duration = Duration::from_secs(60);

/// The program: logs each call (attempt, element, key, body) and then does what the file
/// `mode` says: `ok`, `retry` (exit 75), `refuse` (exit 1) or `hang`.
const PROGRAM: &str = r#"#!/bin/sh
body=$(cat)
mode=$(cat "$DIR/mode")
printf '%s %s %s %s %s\n' "$mode" "$OMCMSYNC_ATTEMPT" "$OMCMSYNC_ELEMENT" "$OMCMSYNC_IDEMPOTENCY_KEY" "$body" >> "$DIR/calls"
case $mode in
  ok) printf '%s\n' "$body" >> "$DIR/delivered"; exit 0 ;;
  retry) echo "smgr busy" >&2; exit 75 ;;
  refuse) echo "station unknown to SMGR" >&2; exit 1 ;;
  hang) sleep 60 & echo $! >> "$DIR/hung.pids"; wait ;;
esac
"#;

fn lines(dir: &TestDir, name: &str) -> Vec<String> {
    std::fs::read_to_string(dir.path(name))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn wait_until(dir: &TestDir, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; calls: {:?}; rsyslogd: {}",
            lines(dir, "calls"),
            dir.rsyslog_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn exit_status_decides_and_a_hung_program_is_killed() {
    let dir = TestDir::new();
    let program = dir.path("deliver.sh");
    let script = PROGRAM.replace("$DIR", &dir.p(""));
    std::fs::write(&program, script).unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mode = |m: &str| std::fs::write(dir.path("mode"), m).unwrap();
    mode("retry");
    let extra = format!(
        r#"smgr.transport="command" smgr.command="{}" smgr.timeout.ms="500"
           coalesce.window.ms="100" retry.initial.ms="100" retry.max.ms="300""#,
        program.display()
    );
    let d = Daemon::start(&dir, &action(&dir, &extra));

    // 75: retried, with the attempt counting up and the same Idempotency-Key.
    d.send_tcp(&[station_change(1001)]);
    wait_until(&dir, "three attempts", || lines(&dir, "calls").len() >= 3);
    let calls = lines(&dir, "calls");
    let fields: Vec<Vec<&str>> = calls.iter().map(|l| l.splitn(5, ' ').collect()).collect();
    assert_eq!(
        (fields[0][1], fields[1][1], fields[2][1]),
        ("1", "2", "3"),
        "{calls:?}"
    );
    assert!(fields
        .iter()
        .all(|f| f[2] == "cm-east" && f[3] == fields[0][3]));
    let body: serde_json::Value = serde_json::from_str(fields[0][4]).unwrap();
    assert_eq!(body["requests"][0]["id"], "1001", "{body}");
    // 0: delivered, once.
    mode("ok");
    wait_until(&dir, "delivery", || !lines(&dir, "delivered").is_empty());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lines(&dir, "delivered").len(), 1);

    // 1: dead-lettered with the program's standard error.
    mode("refuse");
    d.send_tcp(&[station_change(1002)]);
    let dead = wait_json_lines(&dir.path("state/deadletter.json"), 1, WAIT);
    assert_eq!(dead[0]["status"], 1);
    assert_eq!(dead[0]["answer"], "station unknown to SMGR\n");
    assert_eq!(dead[0]["body"]["requests"][0]["id"], "1002");

    // A hang: killed after smgr.timeout.ms, retried, delivered once the program answers.
    mode("hang");
    let before = lines(&dir, "calls").len();
    d.send_tcp(&[station_change(1003)]);
    wait_until(&dir, "two hung attempts", || {
        lines(&dir, "calls")[before..]
            .iter()
            .filter(|l| l.starts_with("hang "))
            .count()
            >= 2
    });
    mode("ok");
    wait_until(&dir, "delivery after the hang", || {
        lines(&dir, "delivered").iter().any(|l| l.contains("1003"))
    });
    let log = dir.rsyslog_log();
    assert!(log.contains("did not exit within smgr.timeout.ms"), "{log}");
    // Killed with its process group: no `sleep 60` of a hung call is left.
    let pids = lines(&dir, "hung.pids");
    assert!(pids.len() >= 2, "{pids:?}");
    for pid in pids {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        assert!(
            !cmdline.starts_with(b"sleep"),
            "the hung call's sleep (pid {pid}) was left running"
        );
    }
    assert!(d.stop(WAIT).success());
}
