//! Delivery with the real rsyslogd, real sockets and the SMGR simulator: every assertion is on
//! what the simulator recorded, not on logs.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

/// Fast windows and retries, so that tests finish quickly.
const QUICK: &str = r#"coalesce.window.ms="200" retry.initial.ms="100" retry.max.ms="1000""#;

/// After a switch to active: sends probe changes (ids from `first`) until the trace shows one
/// queued, so that the test does not depend on how fast the role is read.
fn probe_until_queued(d: &Daemon, dir: &TestDir, first: u64) {
    for probe in first.. {
        let before = read_json_lines(&dir.path("trace.json")).len();
        d.send_tcp(&[station_change(probe)]);
        let trace = wait_json_lines(&dir.path("trace.json"), before + 1, WAIT);
        if trace.last().unwrap()["outcome"] == "queued" {
            return;
        }
        assert!(probe < first + 300, "never became active");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn changes_become_resync_requests() {
    let dir = TestDir::new();
    let sim = Sim::start(&dir, &[]);
    let d = Daemon::start(&dir, &action_to(&dir, sim.url(), QUICK));
    d.send_tcp(&(1000..1010).map(station_change).collect::<Vec<_>>());
    d.send_tcp(&[
        syslog_line("cm-east", "cmdhist", "add station next"),
        syslog_line("cm-east", "x", "IPEVT noise"),
    ]);
    let items = sim.wait_items(WAIT, |i| {
        object_ids(i, "cm-east").len() == 10 && i.iter().any(|x| x["scope"] == "type")
    });
    assert_eq!(object_ids(&items, "cm-east"), ids(1000..1010));
    let station = items.iter().find(|i| i["id"] == "1000").unwrap();
    assert_eq!(
        (&station["type"], &station["verbs"], &station["logins"]),
        (&json!("station"), &json!(["change"]), &json!(["dadmin"]))
    );
    let next = items.iter().find(|i| i["scope"] == "type").unwrap();
    assert_eq!(
        (&next["type"], &next["reason"]),
        (&json!("station"), &json!("add next"))
    );
    for r in sim.requests() {
        assert!(r["idempotency_key"]
            .as_str()
            .unwrap()
            .starts_with("omcmsync-"));
        assert_eq!(r["element"], "cm-east");
    }
    assert!(d.stop(WAIT).success());
}

#[test]
fn thousand_changes_to_ten_stations_make_ten_requests() {
    let dir = TestDir::new();
    let sim = Sim::start(&dir, &[]);
    let d = Daemon::start(
        &dir,
        &action_to(&dir, sim.url(), r#"coalesce.window.ms="3000""#),
    );
    d.send_tcp(
        &(0..1000)
            .map(|i| station_change(2000 + i % 10))
            .collect::<Vec<_>>(),
    );
    let items = sim.wait_items(WAIT, |i| object_ids(i, "cm-east").len() == 10);
    std::thread::sleep(Duration::from_secs(1)); // nothing more may come
    let items_after = sim.resync_items();
    assert_eq!(items_after.len(), 10, "{items_after:?}");
    assert_eq!(
        items
            .iter()
            .map(|i| i["count"].as_u64().unwrap())
            .sum::<u64>(),
        1000
    );
    assert!(d.stop(WAIT).success());
}

#[test]
fn smgr_down_then_up_delivers_everything() {
    let dir = TestDir::new();
    // Reserve a port for SMGR, with nothing listening yet.
    let port = free_port();
    let d = Daemon::start(
        &dir,
        &action_to(&dir, &format!("http://127.0.0.1:{port}"), QUICK),
    );
    d.send_tcp(&(3000..3100).map(station_change).collect::<Vec<_>>());
    std::thread::sleep(Duration::from_secs(2)); // SMGR is down: requests fail and are retried
    let sim = Sim::start_on(&dir, &format!("127.0.0.1:{port}"), &[]);
    let items = sim.wait_items(WAIT, |i| object_ids(i, "cm-east").len() == 100);
    assert_eq!(object_ids(&items, "cm-east"), ids(3000..3100));
    assert!(d.stop(WAIT).success());
}

#[test]
fn retryable_answers_are_retried_with_retry_after() {
    let dir = TestDir::new();
    let sim = Sim::start(&dir, &[]);
    sim.control(
        "/sim/fault",
        json!({"status": 503, "retry_after": 1, "times": 2}),
    );
    sim.control("/sim/fault", json!({"status": 429, "times": 1}));
    sim.control("/sim/fault", json!({"drop": true, "times": 1}));
    let d = Daemon::start(&dir, &action_to(&dir, sim.url(), QUICK));
    d.send_tcp(&[station_change(4001)]);
    let items = sim.wait_items(WAIT, |i| !i.is_empty());
    assert_eq!(object_ids(&items, "cm-east"), ids(4001..4002));
    assert!(d.stop(WAIT).success());
}

#[test]
fn a_failed_post_holds_back_the_rest_of_its_pass() {
    // 250 due keys, 100 per POST: one pass takes all three POSTs' worth. The first POST is
    // refused with Retry-After 2 s; the other two must wait for it too, not go out at once.
    let dir = TestDir::new();
    let sim = Sim::start(&dir, &[]);
    sim.control(
        "/sim/fault",
        json!({"status": 503, "retry_after": 2, "times": 1}),
    );
    let config = r#"coalesce.window.ms="200" retry.initial.ms="100" retry.max.ms="5000" batch.maxrequests="100""#;
    let d = Daemon::start(&dir, &action_to(&dir, sim.url(), config));
    let sent_at = omcmsync::clock::now_ms();
    d.send_tcp(&(5000..5250).map(station_change).collect::<Vec<_>>());
    let items = sim.wait_items(WAIT, |i| object_ids(i, "cm-east").len() == 250);
    assert_eq!(object_ids(&items, "cm-east"), ids(5000..5250));
    let posts = sim.requests();
    assert!(posts.len() >= 3, "{} POSTs", posts.len());
    for post in &posts {
        let at = omcmsync::clock::parse_rfc3339_ms(post["time"].as_str().unwrap()).unwrap();
        assert!(
            at >= sent_at + 1900,
            "a POST went out {} ms after sending, before the Retry-After of the refused one",
            at.saturating_sub(sent_at)
        );
    }
    assert!(d.stop(WAIT).success());
}

#[test]
fn kill9_loses_nothing_committed() {
    let dir = TestDir::new();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    // SMGR is down while the stream arrives, so everything is still queued at the kill; the
    // burst threshold is raised so that every station keeps its own key.
    let extra = format!(r#"{QUICK} burst.threshold="5000""#);
    let d = Daemon::start(&dir, &action_to(&dir, &url, &extra));
    let port_in = d.ports.tcp;
    let sender = std::thread::spawn(move || {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port_in)).unwrap();
        for i in 0..20_000u64 {
            if s.write_all(format!("{}\n", station_change(10_000 + i % 2000)).as_bytes())
                .is_err()
            {
                break;
            }
        }
    });
    wait_json_lines(&dir.path("trace.json"), 2000, WAIT);
    d.kill9();
    let _ = sender.join();
    // Everything the module committed was traced after it was durable.
    let committed: BTreeSet<String> = read_json_lines(&dir.path("trace.json"))
        .iter()
        .filter(|r| r["outcome"] == "queued")
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        committed.len() >= 500,
        "only {} stations committed before the kill",
        committed.len()
    );
    let sim = Sim::start_on(&dir, &format!("127.0.0.1:{port}"), &[]);
    // The restarted daemon has no new messages: the queue alone must deliver.
    let d = Daemon::start(&dir, &action_to(&dir, &url, &extra));
    let items = sim.wait_items(WAIT, |i| committed.is_subset(&object_ids(i, "cm-east")));
    assert!(committed.is_subset(&object_ids(&items, "cm-east")));
    assert!(d.stop(WAIT).success());
}

/// `ha.standby="drop"` (System Manager's own semantics): what the standby hears is dropped,
/// not delivered later. The default, holding it, is tests/failover.rs's.
#[test]
fn standby_posts_nothing_until_active() {
    let dir = TestDir::new();
    let sim = Sim::start(&dir, &[]);
    std::fs::write(dir.path("role"), "standby\n").unwrap();
    let ha = format!(
        r#"{QUICK} ha.mode="file" ha.file="{}" ha.interval.ms="200" ha.standby="drop""#,
        dir.p("role")
    );
    let d = Daemon::start(&dir, &action_to(&dir, sim.url(), &ha));
    d.send_tcp(&(5000..5005).map(station_change).collect::<Vec<_>>());
    wait_json_lines(&dir.path("trace.json"), 5, WAIT);
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        sim.requests().is_empty(),
        "standby posted {:?}",
        sim.requests()
    );
    std::fs::write(dir.path("role"), "active\n").unwrap();
    probe_until_queued(&d, &dir, 5900);
    d.send_tcp(&(5100..5105).map(station_change).collect::<Vec<_>>());
    let items = sim.wait_items(WAIT, |i| {
        (5100..5105).all(|n| object_ids(i, "cm-east").contains(&n.to_string()))
    });
    let delivered = object_ids(&items, "cm-east");
    assert!(
        (5000..5005).all(|n| !delivered.contains(&n.to_string())),
        "standby-time events were posted"
    );
    assert!(ids(5100..5105).is_subset(&delivered));
    assert!(d.stop(WAIT).success());
}

#[test]
fn unknown_senders_and_disabled_elements_post_nothing() {
    let dir = TestDir::new();
    std::fs::write(
        dir.path("elements.json"),
        r#"{"elements":[{"name":"cm-off","hosts":["127.0.0.1"],"notify":false},{"name":"cm-v6","hosts":["2001:db8::1"]}]}"#,
    )
    .unwrap();
    let sim = Sim::start(&dir, &[]);
    let d = Daemon::start(&dir, &action_to(&dir, sim.url(), QUICK));
    d.send_tcp(&(6000..6005).map(station_change).collect::<Vec<_>>()); // from 127.0.0.1: notify off
    d.send_tcp6(&(6100..6105).map(station_change).collect::<Vec<_>>()); // from ::1: nobody's
    let trace = wait_json_lines(&dir.path("trace.json"), 10, WAIT);
    assert_eq!(
        trace
            .iter()
            .filter(|r| r["outcome"] == "notify_off")
            .count(),
        5
    );
    assert_eq!(
        trace
            .iter()
            .filter(|r| r["outcome"] == "unknown_sender")
            .count(),
        5
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(sim.requests().is_empty());
    assert!(d.stop(WAIT).success());
}

#[test]
fn ipv6_sender_and_resolved_host_name() {
    let dir = TestDir::new();
    std::fs::write(
        dir.path("elements.json"),
        r#"{"elements":[{"name":"cm-v6","hosts":["::1"]},{"name":"cm-named","hosts":["localhost"]}]}"#,
    )
    .unwrap();
    let sim = Sim::start(&dir, &[]);
    let d = Daemon::start(&dir, &action_to(&dir, sim.url(), QUICK));
    d.send_tcp6(&(7000..7003).map(station_change).collect::<Vec<_>>());
    d.send_tcp(&(7100..7103).map(station_change).collect::<Vec<_>>());
    let items = sim.wait_items(WAIT, |i| {
        object_ids(i, "cm-v6").len() == 3 && object_ids(i, "cm-named").len() == 3
    });
    assert_eq!(object_ids(&items, "cm-v6"), ids(7000..7003));
    assert_eq!(object_ids(&items, "cm-named"), ids(7100..7103));
    assert!(d.stop(WAIT).success());
}

#[test]
fn permanent_refusal_is_dead_lettered_while_others_flow() {
    let dir = TestDir::new();
    std::fs::write(
        dir.path("elements.json"),
        r#"{"elements":[{"name":"cm-bad","hosts":["127.0.0.1"]},{"name":"cm-good","hosts":["::1"]}]}"#,
    )
    .unwrap();
    let sim = Sim::start(&dir, &[]);
    sim.control("/sim/fault", json!({"status": 400, "element": "cm-bad"}));
    let extra = format!(r#"{QUICK} deadletter.file="{}""#, dir.p("deadletter.json"));
    let d = Daemon::start(&dir, &action_to(&dir, sim.url(), &extra));
    d.send_tcp(&(8000..8003).map(station_change).collect::<Vec<_>>());
    d.send_tcp6(&(8100..8103).map(station_change).collect::<Vec<_>>());
    let items = sim.wait_items(WAIT, |i| object_ids(i, "cm-good").len() == 3);
    assert_eq!(object_ids(&items, "cm-good"), ids(8100..8103));
    assert!(object_ids(&items, "cm-bad").is_empty());
    // Split until each refused request stands alone: one record per request.
    let dead = wait_json_lines(&dir.path("deadletter.json"), 3, WAIT);
    assert_eq!(
        (&dead[0]["element"], &dead[0]["status"]),
        (&json!("cm-bad"), &json!(400))
    );
    let dead_ids: BTreeSet<String> = dead
        .iter()
        .flat_map(|r| {
            r["body"]["requests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(dead_ids, ids(8000..8003));
    assert!(d.stop(WAIT).success());
}

#[test]
fn burst_escalates_to_one_element_request() {
    let dir = TestDir::new();
    let sim = Sim::start(&dir, &[]);
    let extra = r#"coalesce.window.ms="2000" burst.threshold="50""#;
    let d = Daemon::start(&dir, &action_to(&dir, sim.url(), extra));
    d.send_tcp(&[syslog_line(
        "cm-east",
        "cmdhist",
        "duplicate station 1000 start 9000 count 100",
    )]);
    d.send_tcp(&(9500..9520).map(station_change).collect::<Vec<_>>());
    let items = sim.wait_items(WAIT, |i| !i.is_empty());
    std::thread::sleep(Duration::from_millis(500));
    let items_after = sim.resync_items();
    assert_eq!(items_after.len(), 1, "{items_after:?}");
    assert_eq!(
        (&items[0]["scope"], &items[0]["count"]),
        (&json!("element"), &json!(120))
    );
    assert!(items[0]["reason"].as_str().unwrap().starts_with("burst"));
    assert!(d.stop(WAIT).success());
}

#[test]
fn element_list_from_smgr_is_fetched_and_cached() {
    let dir = TestDir::new();
    std::fs::write(
        dir.path("smgr-elements.json"),
        r#"{"elements":[{"name":"cm-from-smgr","hosts":["127.0.0.1"]}]}"#,
    )
    .unwrap();
    let sim = Sim::start(&dir, &["--elements", &dir.p("smgr-elements.json")]);
    let action = format!(
        r#"action(type="omcmsync" name="omcmsync" smgr.url="{}" elements.source="smgr" state.dir="{}" {QUICK})"#,
        sim.url(),
        dir.p("state")
    );
    let d = Daemon::start(&dir, &action);
    // The list arrives asynchronously: keep sending until the element knows the sender.
    let mut n = 0;
    let items = loop {
        d.send_tcp(&[station_change(9900 + n)]);
        n += 1;
        std::thread::sleep(Duration::from_millis(300));
        let items = sim.resync_items();
        if !object_ids(&items, "cm-from-smgr").is_empty() || n > 100 {
            break items;
        }
    };
    assert!(!object_ids(&items, "cm-from-smgr").is_empty());
    let cached = std::fs::read_to_string(dir.path("state/elements.json")).unwrap();
    assert!(cached.contains("cm-from-smgr"));
    assert!(d.stop(WAIT).success());
}

/// Sends changes (ids from `first`) from ::1 until the simulator has some, at most 100.
fn send6_until_delivered(d: &Daemon, sim: &Sim, first: u64) -> Vec<serde_json::Value> {
    for n in 0..100 {
        d.send_tcp6(&[station_change(first + n)]);
        std::thread::sleep(Duration::from_millis(200));
        let items = sim.resync_items();
        if !items.is_empty() {
            return items;
        }
    }
    sim.resync_items()
}

#[test]
fn element_file_changes_take_effect_without_restart() {
    let dir = TestDir::new();
    std::fs::write(
        dir.path("elements.json"),
        r#"{"elements":[{"name":"cm-east","hosts":["127.0.0.1"]}]}"#,
    )
    .unwrap();
    let sim = Sim::start(&dir, &[]);
    let d = Daemon::start(&dir, &action_to(&dir, sim.url(), QUICK));
    d.send_tcp6(&[station_change(9800)]);
    wait_json_lines(&dir.path("trace.json"), 1, WAIT);
    std::thread::sleep(Duration::from_millis(1100)); // a new mtime second
    std::fs::write(
        dir.path("elements.json"),
        r#"{"elements":[{"name":"cm-east","hosts":["127.0.0.1","::1"]}]}"#,
    )
    .unwrap();
    let items = send6_until_delivered(&d, &sim, 9801);
    assert!(
        !object_ids(&items, "cm-east").contains("9800"),
        "sent before ::1 was an element's host"
    );
    assert!(!object_ids(&items, "cm-east").is_empty());
    assert!(d.stop(WAIT).success());
}

/// HUP asks for the element list again (served by the supervisor thread, not rsyslog's main
/// thread): a change that keeps the file's mtime is picked up on HUP alone.
#[test]
fn hup_reloads_the_element_file() {
    let dir = TestDir::new();
    let path = dir.path("elements.json");
    std::fs::write(
        &path,
        r#"{"elements":[{"name":"cm-east","hosts":["127.0.0.1"]}]}"#,
    )
    .unwrap();
    let sim = Sim::start(&dir, &[]);
    let d = Daemon::start(&dir, &action_to(&dir, sim.url(), QUICK));
    d.send_tcp6(&[station_change(9700)]);
    wait_json_lines(&dir.path("trace.json"), 1, WAIT);
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::fs::write(
        &path,
        r#"{"elements":[{"name":"cm-east","hosts":["127.0.0.1","::1"]}]}"#,
    )
    .unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    d.send_tcp6(&[station_change(9701)]);
    wait_json_lines(&dir.path("trace.json"), 2, WAIT);
    assert_eq!(
        read_json_lines(&dir.path("trace.json"))[1]["outcome"],
        "unknown_sender"
    );
    d.signal(libc::SIGHUP);
    let items = send6_until_delivered(&d, &sim, 9710);
    assert!(
        !object_ids(&items, "cm-east").is_empty(),
        "HUP did not reload"
    );
    assert!(d.stop(WAIT).success());
}

#[test]
fn ha_role_over_http() {
    let dir = TestDir::new();
    let sim = Sim::start(&dir, &[]);
    sim.control("/sim/role", json!({"role": "standby"}));
    let ha = format!(
        r#"{QUICK} ha.mode="http" ha.url="{}/ha" ha.interval.ms="200" ha.standby="drop""#,
        sim.url()
    );
    let d = Daemon::start(&dir, &action_to(&dir, sim.url(), &ha));
    d.send_tcp(&[station_change(9700)]);
    wait_json_lines(&dir.path("trace.json"), 1, WAIT);
    std::thread::sleep(Duration::from_millis(500));
    assert!(sim.requests().is_empty());
    sim.control("/sim/role", json!({"role": "active"}));
    probe_until_queued(&d, &dir, 9750);
    d.send_tcp(&[station_change(9701)]);
    let items = sim.wait_items(WAIT, |i| object_ids(i, "cm-east").contains("9701"));
    assert!(
        !object_ids(&items, "cm-east").contains("9700"),
        "standby-time event was posted"
    );
    assert!(d.stop(WAIT).success());
}

#[test]
fn bearer_and_basic_authentication_reach_smgr() {
    for (params, expected) in [
        (r#"smgr.tokenfile="TOKEN""#, "Bearer s3cret-token"),
        (
            r#"smgr.user="omcm" smgr.passwordfile="PASSWORD""#,
            "Basic b21jbTpwYSBzcw==",
        ),
    ] {
        let dir = TestDir::new();
        std::fs::write(dir.path("token"), "s3cret-token\n").unwrap();
        std::fs::write(dir.path("password"), "pa ss\n").unwrap();
        let sim = Sim::start(&dir, &[]);
        let params = params
            .replace("TOKEN", &dir.p("token"))
            .replace("PASSWORD", &dir.p("password"));
        let d = Daemon::start(
            &dir,
            &action_to(&dir, sim.url(), &format!("{QUICK} {params}")),
        );
        d.send_tcp(&[station_change(9600)]);
        sim.wait_items(WAIT, |i| !i.is_empty());
        assert!(
            sim.requests()
                .iter()
                .all(|r| r["authorization"] == expected),
            "{:?}",
            sim.requests()
        );
        assert!(d.stop(WAIT).success());
        let stderr = std::fs::read_to_string(dir.path("rsyslogd-1.stderr")).unwrap();
        assert!(
            !stderr.contains("s3cret") && !stderr.contains("pa ss"),
            "secret in the log: {stderr}"
        );
    }
}
