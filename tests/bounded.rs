//! Bounded whatever the input, and System Manager's cost bounded whatever CM sends: element-
//! level resyncs have a cooldown; the control socket serves clients at once; a recovering
//! System Manager is tried again by every element; a hostile element list costs neither memory
//! nor log lines at every fetch; a large one keeps `status` fast; a first fetch that fails is
//! tried again within seconds. Real rsyslogd, real sockets.

mod common;

use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);
const QUICK: &str = r#"coalesce.window.ms="100" retry.initial.ms="100" retry.max.ms="1000""#;
const HELD: &str =
    r#"queue.type="LinkedList" action.resumeRetryCount="-1" action.resumeInterval="1""#;

fn element_requests(sim: &Sim, element: &str) -> usize {
    sim.resync_items()
        .iter()
        .filter(|i| i["element"] == element && i["scope"] == "element")
        .count()
}

/// 100 element-level triggers for one element within the cooldown: one request at once, one
/// when the cooldown ends, and none between; counted.
#[test]
fn element_resyncs_have_a_cooldown() {
    let dir = TestDir::new();
    let sim = Sim::start(&dir, &[]);
    let ports = Ports::free();
    let extra = format!(r#"{QUICK} resync.element.cooldown.ms="4000""#);
    let text = config_with_impstats(&dir, ports, &action_to(&dir, sim.url(), &extra));
    let d = Daemon::start_config(&dir, ports, &text);
    let trigger = syslog_line("cm-east", "cmdhist", "change system-parameters features");
    d.send_tcp(std::slice::from_ref(&trigger));
    let first = Instant::now();
    sim.wait_items(WAIT, |_| element_requests(&sim, "cm-east") == 1);
    for _ in 0..99 {
        d.send_tcp(std::slice::from_ref(&trigger));
        std::thread::sleep(Duration::from_millis(20));
    }
    while first.elapsed() < Duration::from_millis(3500) {
        assert_eq!(element_requests(&sim, "cm-east"), 1, "within the cooldown");
        std::thread::sleep(Duration::from_millis(100));
    }
    sim.wait_items(WAIT, |_| element_requests(&sim, "cm-east") == 2);
    assert!(
        first.elapsed() >= Duration::from_secs(4),
        "{:?}",
        first.elapsed()
    );
    wait_module_stats(&dir, WAIT, |v| {
        v["resyncs.element.deferred"].as_u64() >= Some(1)
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(element_requests(&sim, "cm-east"), 2, "the rest coalesced");
    // An operator's own is never held back.
    let out = omcmsync_cli(&dir.path("state"), &["resync", "--element", "cm-east"]);
    assert!(out.status.success(), "{out:?}");
    sim.wait_items(WAIT, |_| element_requests(&sim, "cm-east") == 3);
    assert!(d.stop(WAIT).success());
}

/// Twenty clients connect to the control socket and say nothing: `status` answers at once.
#[test]
fn idle_control_clients_hold_up_no_one() {
    let dir = TestDir::new();
    let d = Daemon::start(&dir, &action(&dir, QUICK));
    let state = dir.path("state");
    module_status(&state, WAIT);
    let idle: Vec<UnixStream> = (0..20)
        .map(|_| UnixStream::connect(state.join("control.sock")).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let asked = Instant::now();
    let out = omcmsync_cli(&state, &["status", "--json"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        asked.elapsed() < Duration::from_millis(1500),
        "status took {:?} behind idle clients",
        asked.elapsed()
    );
    drop(idle);
    assert!(d.stop(WAIT).success());
}

/// Two elements back off from one System Manager (Retry-After 60 s and 2 s); when the second
/// gets through, the first tries again at once instead of waiting its minute.
#[test]
fn a_success_shortens_the_other_elements_backoff() {
    let dir = TestDir::new();
    let two = r#"{"elements":[{"name":"cm-east","hosts":["127.0.0.1"]},{"name":"cm-west","hosts":["::1"]}]}"#;
    std::fs::write(dir.path("elements.json"), two).unwrap();
    let sim = Sim::start(&dir, &[]);
    for (element, after) in [("cm-west", 60), ("cm-east", 2)] {
        let fault = json!({"element": element, "status": 503, "retry_after": after, "times": 1});
        sim.control("/sim/fault", fault);
    }
    let extra = r#"coalesce.window.ms="100" retry.initial.ms="100" retry.max.ms="60000""#;
    let d = Daemon::start(&dir, &action_to(&dir, sim.url(), extra));
    d.send_tcp6(&[syslog_line("cm-west", "cmdhist", "change station 2")]);
    std::thread::sleep(Duration::from_millis(500));
    d.send_tcp(&[syslog_line("cm-east", "cmdhist", "change station 1")]);
    let sent = Instant::now();
    sim.wait_items(WAIT, |i| object_ids(i, "cm-east").contains("1"));
    sim.wait_items(WAIT, |i| object_ids(i, "cm-west").contains("2"));
    assert!(
        sent.elapsed() < Duration::from_secs(10),
        "cm-west waited {:?} (its Retry-After was 60 s)",
        sent.elapsed()
    );
    assert!(d.stop(WAIT).success());
}

/// System Manager comes up 2 s after a start without a cached element list: the list is
/// fetched again within seconds, and a change sent at start is delivered within 10 s.
#[test]
fn a_first_element_list_fetch_is_retried_within_seconds() {
    let dir = TestDir::new();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let extra = format!(
        r#"elements.source="smgr" elements.refresh.ms="86400000" state.dir="{}" {QUICK} {HELD}"#,
        dir.p("state")
    );
    let body = format!(r#"action(type="omcmsync" name="omcmsync" smgr.url="{url}" {extra})"#);
    let d = Daemon::start(&dir, &body);
    let started = Instant::now();
    d.send_tcp(&[syslog_line("cm-east", "cmdhist", "change station 1")]);
    std::thread::sleep(Duration::from_secs(2));
    let elements = dir.path("smgr-elements.json");
    std::fs::write(&elements, ELEMENTS).unwrap();
    let sim = Sim::start_on(
        &dir,
        &format!("127.0.0.1:{port}"),
        &["--elements", &elements.display().to_string()],
    );
    sim.wait_items(WAIT, |i| object_ids(i, "cm-east").contains("1"));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "delivered after {:?}",
        started.elapsed()
    );
    let log = dir.rsyslog_log();
    assert_eq!(
        log.matches("elements.source: element list from").count(),
        1,
        "{log}"
    );
    assert_eq!(log.matches("elements.source: resolved").count(), 1, "{log}");
    assert!(d.stop(WAIT).success());
}

/// A figure of /proc/PID/status in kB (`VmRSS`, `VmHWM`: the peak).
fn proc_kb(pid: i32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

fn rss_kb(pid: i32) -> u64 {
    proc_kb(pid, "VmRSS")
}

fn peak_rss_kb(pid: i32) -> u64 {
    proc_kb(pid, "VmHWM")
}

/// System Manager's list with 1,000 bad entries that move at every fetch, fetched 100 times
/// (HUP fetches it): the module's memory stays flat and the skipped entries are logged once,
/// summed up, not at every fetch.
#[test]
fn a_hostile_element_list_costs_no_memory_or_log_lines_per_fetch() {
    let dir = TestDir::new();
    let elements = dir.path("smgr-elements.json");
    let write_list = |shift: usize| {
        let mut list = vec![json!({"name": "cm-east", "hosts": ["127.0.0.1"]})];
        for i in 0..1000 {
            list.insert(
                (i * 7 + shift) % list.len(),
                json!({"name": format!("bad {i}")}),
            );
        }
        std::fs::write(&elements, json!({ "elements": list }).to_string()).unwrap();
    };
    write_list(0);
    let sim = Sim::start(&dir, &["--elements", &elements.display().to_string()]);
    let body = format!(
        r#"action(type="omcmsync" name="omcmsync" smgr.url="{}" elements.source="smgr" state.dir="{}" {QUICK} {HELD})"#,
        sim.url(),
        dir.p("state")
    );
    let d = Daemon::start(&dir, &body);
    let fetches = |n: usize| {
        for shift in 0..n {
            write_list(shift + 1);
            d.signal(libc::SIGHUP);
            std::thread::sleep(Duration::from_millis(150));
        }
    };
    d.send_tcp(&[syslog_line("cm-east", "cmdhist", "change station 1")]);
    sim.wait_items(WAIT, |i| object_ids(i, "cm-east").contains("1"));
    fetches(10);
    let rss_after_10 = rss_kb(d.pid());
    fetches(90);
    let rss_after_100 = rss_kb(d.pid());
    assert!(
        rss_after_100 < rss_after_10 + 2048,
        "RSS grew from {rss_after_10} kB to {rss_after_100} kB over 90 fetches"
    );
    let log = dir.rsyslog_log();
    let skipped = log.matches("skipped").count();
    assert!(skipped <= 5, "{skipped} skipped lines:\n{log}");
    assert_eq!(log.matches("more like these").count(), 1, "{log}");
    d.send_tcp(&[syslog_line("cm-east", "cmdhist", "change station 2")]);
    sim.wait_items(WAIT, |i| object_ids(i, "cm-east").contains("2"));
    assert!(d.stop(WAIT).success());
}

/// 100,000 elements: `omcmsync status` answers within a second, listing the elements with
/// something to show and counting the idle rest.
#[test]
fn status_is_fast_with_a_hundred_thousand_elements() {
    let dir = TestDir::new();
    let mut list = vec![json!({"name": "cm-east", "hosts": ["127.0.0.1", "::1"]})];
    list.extend((0..99_999u32).map(|i| {
        let [_, a, b, c] = i.to_be_bytes();
        json!({"name": format!("cm-{i}"), "hosts": [format!("10.{a}.{b}.{c}")]})
    }));
    std::fs::write(
        dir.path("elements.json"),
        json!({ "elements": list }).to_string(),
    )
    .unwrap();
    let sim = Sim::start(&dir, &[]);
    let extra = format!(r#"{QUICK} elements.max="100000""#);
    let d = Daemon::start(&dir, &action_to(&dir, sim.url(), &extra));
    d.send_tcp(&[syslog_line("cm-east", "cmdhist", "change station 1")]);
    sim.wait_items(Duration::from_secs(60), |i| {
        object_ids(i, "cm-east").contains("1")
    });
    let state = dir.path("state");
    module_status(&state, WAIT);
    let asked = Instant::now();
    let out = omcmsync_cli(&state, &["status", "--json"]);
    assert!(out.status.success());
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "status took {:?}",
        asked.elapsed()
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["elements_configured"], 100_000);
    let shown = status["elements"].as_array().unwrap();
    assert_eq!(
        status["elements_not_shown"].as_u64().unwrap() as usize + shown.len(),
        100_000,
        "every element shown or counted"
    );
    assert!(shown
        .iter()
        .any(|e| e["name"] == "cm-east" && e["pending"] == 0));
    let table = omcmsync_cli(&state, &["status"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("more configured element(s)"));
    assert!(d.stop(WAIT).success());
}

/// 64 MiB of dead letters (about 30,000 refused requests of three elements): `status` counts
/// them and `deadletter list` shows the newest, each within seconds, and neither raises
/// rsyslogd's peak memory by more than 32 MiB (the store is read a record at a time).
#[test]
fn a_large_dead_letter_store_is_read_in_bounded_memory() {
    let dir = TestDir::new();
    let state = dir.path("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let mut store = Vec::with_capacity(65 << 20);
    let mut per_element = [0u64; 3];
    let requests: Vec<_> = (0..10)
        .map(|i| {
            json!({"scope": "object", "type": "station", "id": format!("{}", 1000 + i),
                        "verbs": ["change"], "logins": ["dadmin"], "count": 1})
        })
        .collect();
    while store.len() < 64 << 20 {
        let n = per_element.iter().sum::<u64>();
        let element = format!("cm-{}", n % 3);
        per_element[(n % 3) as usize] += 1;
        let record = json!({
            "time": "2026-12-01T08:00:00.000Z", "element": element, "status": 400,
            "answer": "x".repeat(1500), "idempotency_key": format!("k{n}"),
            "body": {"element": element, "requests": requests},
        });
        store.extend_from_slice(record.to_string().as_bytes());
        store.push(b'\n');
    }
    std::fs::write(state.join("deadletter.json"), &store).unwrap();
    let total: u64 = per_element.iter().sum();
    let d = Daemon::start(&dir, &action(&dir, QUICK));
    let started = Instant::now();
    while !state.join("control.sock").exists() {
        assert!(started.elapsed() < WAIT, "no control socket");
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = peak_rss_kb(d.pid());
    let timed = |args: &[&str]| {
        let asked = Instant::now();
        let out = omcmsync_cli(&state, args);
        let took = asked.elapsed();
        assert!(out.status.success(), "{args:?}: {out:?}");
        assert!(took < Duration::from_secs(20), "{args:?} took {took:?}");
        eprintln!(
            "{args:?}: answered in {took:?}, peak RSS {} kB",
            peak_rss_kb(d.pid())
        );
        out
    };
    let status: serde_json::Value =
        serde_json::from_slice(&timed(&["status", "--json"]).stdout).unwrap();
    for (i, n) in per_element.iter().enumerate() {
        let name = format!("cm-{i}");
        let e = status["elements"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["name"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} not in {status}"));
        assert_eq!(e["deadletters"], *n, "{name}");
    }
    let listed = timed(&["deadletter", "list", "--limit", "1000"]);
    let lines: Vec<&[u8]> = listed
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines.len(), 1000);
    let last: serde_json::Value = serde_json::from_slice(lines[999]).unwrap();
    assert_eq!(
        last["idempotency_key"],
        format!("k{}", total - 1),
        "the newest, last"
    );
    let said = String::from_utf8_lossy(&listed.stderr);
    assert!(
        said.contains(&format!("the newest 1000 of {total}")),
        "{said}"
    );
    timed(&["status", "--json"]);
    let after = peak_rss_kb(d.pid());
    eprintln!("rsyslogd peak RSS {before} kB before, {after} kB after");
    assert!(
        after.saturating_sub(before) <= 32 << 10,
        "peak RSS rose from {before} kB to {after} kB"
    );
    assert!(d.stop(WAIT).success());
}
