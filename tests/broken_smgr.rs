//! Delivery against a System Manager that misbehaves the way real servers do (the simulator,
//! on command): error pages in any encoding, expired credentials, one bad request in a batch,
//! endpoints that hang or trickle, Retry-After dates, element names that look like paths.
//! Real rsyslogd, real sockets; every assertion on what the simulator or the files show.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);
const QUICK: &str = r#"coalesce.window.ms="200" retry.initial.ms="100" retry.max.ms="1000""#;

fn change(id: u64) -> String {
    syslog_line("cm", "cmdhist", &format!("change station {id}"))
}

fn changes(range: std::ops::Range<u64>) -> Vec<String> {
    range.map(change).collect()
}

fn elements(dir: &TestDir, list: &[(&str, &str)]) {
    let entries: Vec<serde_json::Value> = list
        .iter()
        .map(|(name, host)| json!({"name": name, "hosts": [host]}))
        .collect();
    std::fs::write(
        dir.path("elements.json"),
        json!({ "elements": entries }).to_string(),
    )
    .unwrap();
}

/// Every file below `dir` (but the simulator's record and the secret's own file) as text.
fn written_files(dir: &std::path::Path, out: &mut String) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            written_files(&p, out);
        } else if !p.ends_with("smgr-requests.json") && !p.ends_with("token") {
            out.push_str(&String::from_utf8_lossy(
                &std::fs::read(&p).unwrap_or_default(),
            ));
        }
    }
}

#[test]
fn a_poison_answer_for_one_element_stops_nothing() {
    let dir = TestDir::new();
    elements(&dir, &[("cm-east", "127.0.0.1"), ("cm-west", "::1")]);
    let sim = Sim::start(&dir, &[]);
    // A localised error page whose 2,000th byte falls inside a character.
    let page = "a".repeat(1999) + "état invalide";
    sim.control(
        "/sim/fault",
        json!({"status": 400, "element": "cm-east", "body": page, "times": 1}),
    );
    let d = Daemon::start(&dir, &action_to(&dir, sim.url(), QUICK));
    d.send_tcp(&[change(1)]);
    let dead = wait_json_lines(&dir.path("state/deadletter.json"), 1, WAIT);
    assert_eq!(dead[0]["answer"], "a".repeat(1999));
    // Delivery goes on, for both elements.
    d.send_tcp(&[change(2)]);
    d.send_tcp6(&changes(10..13));
    let items = sim.wait_items(WAIT, |i| {
        object_ids(i, "cm-east").contains("2") && object_ids(i, "cm-west").len() == 3
    });
    assert!(!object_ids(&items, "cm-east").contains("1"));
    assert_eq!(read_json_lines(&dir.path("state/deadletter.json")).len(), 1);
    let stderr = d.stderr();
    assert!(d.stop(WAIT).success());
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_expired_token_loses_nothing_and_is_said_once() {
    let dir = TestDir::new();
    std::fs::write(dir.path("token"), "t0ken-s3cr3t-value\n").unwrap();
    let sim = Sim::start(&dir, &[]);
    sim.control("/sim/fault", json!({"status": 401, "echo_headers": true}));
    let ports = Ports::free();
    let extra = format!(r#"{QUICK} smgr.tokenfile="{}""#, dir.p("token"));
    let text = config_with_impstats(&dir, ports, &action_to(&dir, sim.url(), &extra));
    let d = Daemon::start_config(&dir, ports, &text);
    d.send_tcp(&changes(100..110));
    // Refused for a while (several retries), then accepted: nothing was dropped meanwhile.
    dir.wait_log(&["HTTP 401"]);
    d.send_tcp(&changes(110..120));
    std::thread::sleep(Duration::from_secs(3));
    assert!(sim.resync_items().is_empty());
    sim.control("/sim/fault", json!({"clear": true}));
    // One request refused for good by a server that echoes the request's headers.
    sim.control(
        "/sim/fault",
        json!({"status": 400, "id": "119", "echo_headers": true}),
    );
    let items = sim.wait_items(WAIT, |i| object_ids(i, "cm-east").len() == 19);
    assert_eq!(object_ids(&items, "cm-east"), {
        let mut want = ids(100..120);
        want.remove("119");
        want
    });
    let dead = wait_json_lines(&dir.path("state/deadletter.json"), 1, WAIT);
    let answer = dead[0]["answer"].as_str().unwrap();
    assert!(
        answer.contains("authorization") && answer.contains("<redacted>"),
        "{answer}"
    );
    let log = dir.rsyslog_log();
    assert_eq!(log.matches("HTTP 401").count(), 1, "one error line: {log}");
    assert!(
        log.contains("cm-east") && log.contains("accepts the credentials again"),
        "{log}"
    );
    let v = wait_module_stats(&dir, WAIT, |v| v["requests.delivered"] == 19);
    assert!(v["posts.unauthorized"].as_u64().unwrap() >= 2, "{v}");
    assert_eq!(v["elements.unauthorized"], 0, "{v}");
    assert!(d.stop(WAIT).success());
    let mut everything = dir.rsyslog_log();
    written_files(dir.path("").as_path(), &mut everything);
    assert!(!everything.contains("t0ken-s3cr3t"), "the token leaked");
}

#[test]
fn one_refused_request_in_a_batch_of_a_hundred_is_the_only_one_dead_lettered() {
    let dir = TestDir::new();
    let sim = Sim::start(&dir, &[]);
    sim.control("/sim/fault", json!({"status": 400, "id": "1042"}));
    let extra = r#"coalesce.window.ms="1000" batch.maxrequests="100""#;
    let d = Daemon::start(&dir, &action_to(&dir, sim.url(), extra));
    d.send_tcp(&changes(1000..1100));
    let items = sim.wait_items(WAIT, |i| object_ids(i, "cm-east").len() == 99);
    let mut want = ids(1000..1100);
    want.remove("1042");
    assert_eq!(object_ids(&items, "cm-east"), want);
    let dead = wait_json_lines(&dir.path("state/deadletter.json"), 1, WAIT);
    std::thread::sleep(Duration::from_millis(500));
    let dead_after = read_json_lines(&dir.path("state/deadletter.json"));
    assert_eq!(dead_after.len(), 1, "{dead_after:?}");
    assert_eq!(dead[0]["body"]["requests"].as_array().unwrap().len(), 1);
    assert_eq!(dead[0]["body"]["requests"][0]["id"], "1042");
    assert!(d.stop(WAIT).success());
}

#[test]
fn a_hung_and_a_trickling_element_hold_up_no_other() {
    let dir = TestDir::new();
    elements(
        &dir,
        &[
            ("cm-hang", "127.0.0.2"),
            ("cm-slow", "127.0.0.3"),
            ("cm-ok", "127.0.0.1"),
        ],
    );
    let sim = Sim::start(&dir, &[]);
    sim.control(
        "/sim/fault",
        json!({"element": "cm-hang", "delay_ms": 600_000}),
    );
    sim.control(
        "/sim/fault",
        json!({"element": "cm-slow", "trickle_ms": 500}),
    );
    let extra = r#"coalesce.window.ms="500" smgr.timeout.ms="60000""#;
    let d = Daemon::start(&dir, &action_to(&dir, sim.url(), extra));
    d.send_udp_from("127.0.0.2", &changes(1..3));
    d.send_udp_from("127.0.0.3", &changes(3..5));
    std::thread::sleep(Duration::from_secs(1));
    // Both are inside their requests now; the third element's changes go straight through.
    let sent = Instant::now();
    d.send_tcp(&changes(10..15));
    let items = sim.wait_items(WAIT, |i| object_ids(i, "cm-ok").len() == 5);
    let took = sent.elapsed();
    assert!(object_ids(&items, "cm-hang").is_empty());
    // Within the window (500 ms) plus a second.
    assert!(took < Duration::from_millis(1500), "cm-ok waited {took:?}");
    let stopping = Instant::now();
    assert!(d.stop(Duration::from_secs(20)).success());
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "exit took {:?}",
        stopping.elapsed()
    );
}

#[test]
fn retry_after_as_an_http_date_is_waited_for() {
    let dir = TestDir::new();
    let sim = Sim::start(&dir, &[]);
    sim.control(
        "/sim/fault",
        json!({"status": 503, "retry_after_date_s": 5, "times": 1}),
    );
    let extra = r#"coalesce.window.ms="0" retry.initial.ms="50" retry.max.ms="60000""#;
    let d = Daemon::start(&dir, &action_to(&dir, sim.url(), extra));
    let sent = Instant::now();
    d.send_tcp(&[change(7)]);
    sim.wait_items(WAIT, |i| !i.is_empty());
    // An HTTP-date has whole seconds: "5 s ahead" is 4 to 5 s after the refusal.
    let took = sent.elapsed();
    assert!(
        took >= Duration::from_millis(3900),
        "retried after {took:?}"
    );
    assert!(d.stop(WAIT).success());
}

#[test]
fn files_and_directories_the_module_creates_are_private() {
    let dir = TestDir::new();
    let sim = Sim::start(&dir, &[]);
    sim.control("/sim/fault", json!({"status": 400, "id": "2"}));
    let extra = format!(
        r#"{QUICK} capture.file="{}" deadletter.file="{}""#,
        dir.p("capture.json"),
        dir.p("dead/deadletter.json")
    );
    std::fs::create_dir(dir.path("dead")).unwrap();
    let d = Daemon::start(&dir, &action_to(&dir, sim.url(), &extra));
    d.send_tcp(&[
        change(1),
        change(2),
        syslog_line("cm", "cmdhist", "change widget 9"),
    ]);
    sim.wait_items(WAIT, |i| object_ids(i, "cm-east").contains("1"));
    wait_json_lines(&dir.path("dead/deadletter.json"), 1, WAIT);
    wait_json_lines(&dir.path("capture.json"), 1, WAIT);
    assert!(d.stop(WAIT).success());
    let mode = |p: &str| std::fs::metadata(dir.path(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("state"), 0o700);
    for file in [
        "state/queue.log",
        "dead/deadletter.json",
        "trace.json",
        "capture.json",
    ] {
        assert_eq!(mode(file), 0o600, "{file}");
    }
    // Existing files keep their modes.
    std::fs::set_permissions(
        dir.path("trace.json"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let d = Daemon::start(&dir, &action_to(&dir, sim.url(), &extra));
    d.send_tcp(&[change(3)]);
    sim.wait_items(WAIT, |i| object_ids(i, "cm-east").contains("3"));
    assert!(d.stop(WAIT).success());
    assert_eq!(mode("trace.json"), 0o640);
}

/// Names that look like paths, queries, fragments or escapes reach System Manager as exactly
/// one encoded segment under `.../elements/`, from the element file and from System Manager's
/// list alike; `..` and a 300-character name are refused.
#[test]
fn element_names_are_one_encoded_path_segment() {
    let names = ["a\\b", "a#frag", "q?x=1", "100%", "%2e%2e", "café"];
    let hosts: Vec<String> = (1..=names.len()).map(|i| format!("127.0.1.{i}")).collect();
    let list: Vec<(&str, &str)> = names
        .iter()
        .copied()
        .zip(hosts.iter().map(String::as_str))
        .collect();
    for source in ["file", "smgr"] {
        let dir = TestDir::new();
        elements(&dir, &list);
        let sim = Sim::start(&dir, &["--elements", &dir.p("elements.json")]);
        let action = match source {
            "file" => action_to(&dir, sim.url(), QUICK),
            _ => format!(
                r#"action(type="omcmsync" name="omcmsync" smgr.url="{}" elements.source="smgr" state.dir="{}" {QUICK})"#,
                sim.url(),
                dir.p("state")
            ),
        };
        let d = Daemon::start(&dir, &action);
        // System Manager's list arrives in the background: send until every element is known.
        let deadline = Instant::now() + WAIT;
        let mut n = 0;
        while !names
            .iter()
            .all(|name| sim.resync_items().iter().any(|x| x["element"] == *name))
        {
            for (i, host) in hosts.iter().enumerate() {
                d.send_udp_from(host, &[change(100 * n + i as u64)]);
            }
            n += 1;
            assert!(
                Instant::now() < deadline,
                "{source}: not all names arrived: {:?}",
                sim.requests()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        for r in sim.requests() {
            let path = r["path"].as_str().unwrap();
            let segment = path
                .strip_prefix("/inventory/cm/v1/elements/")
                .and_then(|p| p.strip_suffix("/resync"))
                .unwrap_or_else(|| panic!("{source}: posted to {path}"));
            assert!(!segment.contains(['/', '\\', '#', '?']), "{path}");
            assert!(names.contains(&r["element"].as_str().unwrap()), "{r}");
        }
        assert!(d.stop(WAIT).success());
    }
    for bad in ["..", &"x".repeat(300)] {
        let dir = TestDir::new();
        elements(&dir, &[(bad, "127.0.0.1")]);
        let check = check_config(&dir, &config(&dir, Ports::free(), &action(&dir, "")), &[]);
        assert!(
            !check.ok && check.output.contains("elements.file"),
            "{}",
            check.output
        );
    }
}

/// System Manager's list with bad entries: the good ones load, each bad one is logged once.
#[test]
fn a_bad_name_in_smgrs_list_keeps_the_good_elements() {
    let dir = TestDir::new();
    let long = "x".repeat(300);
    std::fs::write(
        dir.path("smgr-elements.json"),
        json!({"elements": [
            {"name": "..", "hosts": ["127.0.0.9"]},
            {"name": long, "hosts": ["127.0.0.8"]},
            {"name": "cm-good", "hosts": ["127.0.0.1"]},
            {"name": "café", "hosts": ["::1"]},
            {"name": "cm-dup", "hosts": ["127.0.0.1"]},
        ]})
        .to_string(),
    )
    .unwrap();
    let sim = Sim::start(&dir, &["--elements", &dir.p("smgr-elements.json")]);
    let action = format!(
        r#"action(type="omcmsync" name="omcmsync" smgr.url="{}" elements.source="smgr" elements.refresh.ms="1000" state.dir="{}" {QUICK})"#,
        sim.url(),
        dir.p("state")
    );
    let d = Daemon::start(&dir, &action);
    let mut n = 0;
    loop {
        d.send_tcp(&[change(500 + n)]);
        d.send_tcp6(&[change(600 + n)]);
        n += 1;
        std::thread::sleep(Duration::from_millis(300));
        let items = sim.resync_items();
        if !object_ids(&items, "cm-good").is_empty() && !object_ids(&items, "café").is_empty() {
            break;
        }
        assert!(
            n < 100,
            "the good elements never loaded: {}",
            dir.rsyslog_log()
        );
    }
    // Refreshed every second: still logged once each.
    std::thread::sleep(Duration::from_secs(3));
    let log = dir.rsyslog_log();
    // Named by the entry, not by its position in the list.
    assert_eq!(log.matches("skipped '..'").count(), 1, "{log}");
    assert_eq!(log.matches("skipped 'xxxx").count(), 1, "{log}");
    assert_eq!(
        log.matches("belongs to 'cm-good' already").count(),
        1,
        "{log}"
    );
    assert!(d.stop(WAIT).success());
}
