//! The operator's subcommands against a running rsyslogd with the module: `status`,
//! `deadletter list|requeue` and `resync`, over the module's control socket. Assertions are
//! on what the simulator received and what the command printed.

mod common;

use std::process::Output;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);
const QUICK: &str = r#"coalesce.window.ms="100" retry.initial.ms="100" retry.max.ms="500""#;

fn omcmsync(dir: &TestDir, args: &[&str]) -> Output {
    omcmsync_cli(&dir.path("state"), args)
}

/// `omcmsync ARGS`, which must succeed; its standard output.
fn omcmsync_ok(dir: &TestDir, args: &[&str]) -> String {
    let out = omcmsync(dir, args);
    assert!(
        out.status.success(),
        "omcmsync {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `omcmsync status --json`, once the module answers.
fn status(dir: &TestDir) -> Value {
    module_status(&dir.path("state"), WAIT)
}

fn element<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["elements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {status}"))
}

fn wait_status(dir: &TestDir, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let s = status(dir);
        if done(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "status never showed {what}: {s}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn status_shows_what_waits_and_says_when_no_module_runs() {
    let dir = TestDir::new();
    let port = free_port();
    let smgr = format!("http://127.0.0.1:{port}");
    let d = Daemon::start(&dir, &action_to(&dir, &smgr, QUICK));
    d.send_tcp(&(100..105).map(station_change).collect::<Vec<_>>());
    // SMGR down: five keys pending for cm-east, their age growing, the refusal shown.
    let s = wait_status(&dir, "5 pending with an answer", |s| {
        let e = element(s, "cm-east");
        e["pending"] == 5 && e["last_answer"].is_string()
    });
    let e = element(&s, "cm-east");
    assert!(e["oldest_age_ms"].as_u64().unwrap() > 0, "{e}");
    assert!(e["failures"].as_u64().unwrap() >= 1, "{e}");
    assert!(
        e["last_answer"].as_str().unwrap().starts_with("retry:"),
        "{e}"
    );
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    use std::os::unix::fs::PermissionsExt;
    let socket = std::fs::metadata(dir.path("state/control.sock")).unwrap();
    assert_eq!(
        socket.permissions().mode() & 0o777,
        0o600,
        "control.sock is rsyslogd's user's alone"
    );
    assert_eq!(s["role"], "active");
    let table = omcmsync(&dir, &["status"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("cm-east") && l.contains(" 5 ")),
        "{text}"
    );
    // SMGR up: delivered, nothing pending.
    let sim = Sim::start_on(&dir, &format!("127.0.0.1:{port}"), &[]);
    sim.wait_items(WAIT, |i| object_ids(i, "cm-east").len() == 5);
    let s = wait_status(&dir, "nothing pending", |s| {
        element(s, "cm-east")["pending"] == 0
    });
    assert_eq!(element(&s, "cm-east")["last_answer"], "accepted");
    assert!(d.stop(WAIT).success());
    // No module: a clear message, exit status 2.
    let out = omcmsync(&dir, &["status"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no omcmsync module is running"), "{stderr}");
}

#[test]
fn refused_requests_are_requeued_once_smgr_is_fixed() {
    let dir = TestDir::new();
    let sim = Sim::start(&dir, &[]);
    sim.control("/sim/fault", json!({"status": 400, "element": "cm-east"}));
    let d = Daemon::start(&dir, &action_to(&dir, sim.url(), QUICK));
    d.send_tcp(&(200..210).map(station_change).collect::<Vec<_>>());
    let dead = wait_json_lines(&dir.path("state/deadletter.json"), 10, WAIT);
    assert_eq!(dead.len(), 10);
    let s = wait_status(&dir, "10 dead letters", |s| {
        element(s, "cm-east")["deadletters"] == 10
    });
    assert_eq!(element(&s, "cm-east")["pending"], 0);
    // Ten refusals in a burst: one log line, not ten.
    let log = dir.rsyslog_log();
    assert_eq!(
        log.matches("written to deadletter.file").count(),
        1,
        "{log}"
    );
    let listed = omcmsync_ok(
        &dir,
        &[
            "deadletter",
            "list",
            "--element",
            "cm-east",
            "--since",
            "1h",
        ],
    );
    assert_eq!(listed.lines().count(), 10);
    let other = omcmsync(&dir, &["deadletter", "list", "--element", "cm-west"]);
    assert_eq!(String::from_utf8_lossy(&other.stdout).lines().count(), 0);

    sim.control("/sim/fault", json!({"clear": true}));
    let out = omcmsync_ok(&dir, &["deadletter", "requeue", "--element", "cm-east"]);
    assert!(out.starts_with("10 dead-lettered request(s) requeued"));
    let items = sim.wait_items(WAIT, |i| object_ids(i, "cm-east").len() == 10);
    assert_eq!(object_ids(&items, "cm-east"), ids(200..210));
    assert!(read_json_lines(&dir.path("state/deadletter.json")).is_empty());
    let trace = read_json_lines(&dir.path("trace.json"));
    assert_eq!(
        trace
            .iter()
            .filter(|r| r["source"] == "operator" && r["op"] == "requeue")
            .count(),
        10
    );
    dir.wait_log(&["operator: 10 dead-lettered request(s) requeued"]);
    assert!(d.stop(WAIT).success());
}

#[test]
fn resync_reaches_smgr_as_one_element_request() {
    let dir = TestDir::new();
    let sim = Sim::start(&dir, &[]);
    let d = Daemon::start(&dir, &action_to(&dir, sim.url(), QUICK));
    status(&dir);
    omcmsync_ok(&dir, &["resync", "--element", "cm-east"]);
    let items = sim.wait_items(WAIT, |i| !i.is_empty());
    std::thread::sleep(Duration::from_millis(500));
    let items_after = sim.resync_items();
    assert_eq!(items_after.len(), 1, "{items:?}");
    assert_eq!(
        (
            &items_after[0]["scope"],
            &items_after[0]["reason"],
            &items_after[0]["element"]
        ),
        (
            &json!("element"),
            &json!("operator resync"),
            &json!("cm-east")
        )
    );
    // One object, then an element the list does not know.
    omcmsync_ok(
        &dir,
        &[
            "resync",
            "--element",
            "cm-east",
            "--type",
            "station",
            "--id",
            "4711",
        ],
    );
    sim.wait_items(WAIT, |i| object_ids(i, "cm-east").contains("4711"));
    let out = omcmsync(
        &dir,
        &["resync", "--element", "cm-east", "--type", "stations"],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown object type 'stations'; known: ") && stderr.contains("station,"),
        "{stderr}"
    );
    let out = omcmsync(&dir, &["resync", "--element", "cm-nowhere"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown element 'cm-nowhere'"));
    dir.wait_log(&["operator: resync of cm-east"]);
    assert!(d.stop(WAIT).success());
}

/// A requeue interrupted by kill -9 between its queued requests and its rewrite of the
/// dead-letter file (fault hook): after the restart every request is delivered, and a second
/// requeue (the records are still there) empties the file.
#[test]
fn fault_hook_requeue_survives_kill_9() {
    let dir = TestDir::new();
    let sim = Sim::start(&dir, &[]);
    sim.control("/sim/fault", json!({"status": 400, "element": "cm-east"}));
    dir.set_env("OMCM_FAULT_HANG", "requeue:3000");
    let action = action_to(&dir, sim.url(), QUICK);
    let d = Daemon::start(&dir, &action);
    d.send_tcp(&(300..305).map(station_change).collect::<Vec<_>>());
    wait_json_lines(&dir.path("state/deadletter.json"), 5, WAIT);
    sim.control("/sim/fault", json!({"clear": true}));
    let requeue = std::process::Command::new(env!("CARGO_BIN_EXE_omcmsync"))
        .args(["deadletter", "requeue", "--state-dir", &dir.p("state")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The hook holds the rewrite for 3 s: the kill lands inside it.
    std::thread::sleep(Duration::from_secs(1));
    d.kill9();
    let _ = requeue.wait_with_output();
    assert_eq!(
        read_json_lines(&dir.path("state/deadletter.json")).len(),
        5,
        "the file was rewritten before the kill"
    );
    let d = Daemon::start(&dir, &action);
    let items = sim.wait_items(WAIT, |i| object_ids(i, "cm-east").len() == 5);
    assert_eq!(object_ids(&items, "cm-east"), ids(300..305));
    status(&dir);
    omcmsync_ok(&dir, &["deadletter", "requeue"]);
    assert!(read_json_lines(&dir.path("state/deadletter.json")).is_empty());
    assert!(d.stop(WAIT).success());
}

/// `status --offline` reads a stopped module's state: four changes delivered, one refused
/// for good and three waiting show as three pending and one dead letter (what a purge or an
/// erase of the package then reports), and reading changes nothing.
#[test]
fn offline_status_counts_what_is_left_without_a_module() {
    let dir = TestDir::new();
    let sim = Sim::start(&dir, &[]);
    sim.control("/sim/fault", json!({"status": 400, "id": "99"}));
    let d = Daemon::start(&dir, &action_to(&dir, sim.url(), QUICK));
    d.send_tcp(&[1, 2, 3, 4, 99].map(station_change));
    sim.wait_items(WAIT, |i| object_ids(i, "cm-east").len() == 4);
    wait_json_lines(&dir.path("state/deadletter.json"), 1, WAIT);
    drop(sim);
    d.send_tcp(&[5, 6, 7].map(station_change));
    wait_status(&dir, "three waiting", |s| {
        element(s, "cm-east")["pending"] == 3
    });
    assert!(d.stop(WAIT).success());
    let log = std::fs::read(dir.path("state/queue.log")).unwrap();
    let out = omcmsync_ok(&dir, &["status", "--offline", "--json"]);
    let a: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (a["pending"].as_u64(), a["deadletters"].as_u64()),
        (Some(3), Some(1)),
        "{a}"
    );
    assert_eq!(element(&a, "cm-east")["pending"], 3);
    let text = omcmsync_ok(&dir, &["status", "--offline"]);
    assert!(
        text.contains("3 change(s) pending, 1 dead-lettered"),
        "{text}"
    );
    assert_eq!(
        std::fs::read(dir.path("state/queue.log")).unwrap(),
        log,
        "read only"
    );
}
