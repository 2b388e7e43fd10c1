//! Reconciliation end to end: the real rsyslogd with the module, the SMGR simulator, and a CM
//! behind a real sshd (the stand-in plays its history). What syslog never delivered reaches
//! System Manager marked `reconcile`, what it delivered is not asked for twice.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::cm::{CmSsh, PasswordBy};
use common::*;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(90);
const QUICK: &str = r#"coalesce.window.ms="200" retry.initial.ms="100" retry.max.ms="1000""#;

/// CM's time now as its history writes it (the stand-in's clock is UTC): `mm/dd`, `hh:mm`.
fn cm_minute() -> (String, String) {
    let now = time::OffsetDateTime::now_utc();
    (
        format!("{:02}/{:02}", u8::from(now.month()), now.day()),
        format!("{:02}:{:02}", now.hour(), now.minute()),
    )
}

/// A `list history` record: `login` changed station `id` at `(date, time)`.
fn record((date, time): &(String, String), login: &str, id: u64) -> Value {
    json!([
        date,
        time,
        "S00107",
        login,
        "chan",
        "station",
        id.to_string()
    ])
}

/// An old record nothing judges (a login a day ago): the history reaches back past the start.
fn old_login() -> Value {
    let then = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    let date = format!("{:02}/{:02}", u8::from(then.month()), then.day());
    json!([date, "09:00", "S00001", "dadmin", "logn", "", ""])
}

/// A CM playing `scenario` behind sshd, System Manager's stand-in, and the element's access
/// to the CM (reconciled every 10 s).
struct Setup {
    dir: TestDir,
    cm: CmSsh,
    sim: Sim,
    reconcile: String,
}

impl Setup {
    fn new(scenario: Value) -> Setup {
        let dir = TestDir::new();
        let cm = CmSsh::start(scenario, PasswordBy::Password);
        let sim = Sim::start(&dir, &[]);
        let reconcile = cm.reconcile_params(&dir.path(""), 10_000);
        Setup {
            dir,
            cm,
            sim,
            reconcile,
        }
    }

    /// The action's parameters: quick windows, the reconciliation, `extra`.
    fn params(&self, extra: &str) -> String {
        format!("{QUICK} {} {extra}", self.reconcile)
            .trim()
            .to_owned()
    }

    /// rsyslogd with the action, once its control socket answers (the CLI is used at once).
    fn start(&self, extra: &str) -> Daemon {
        let action = action_to(&self.dir, self.sim.url(), &self.params(extra));
        let d = Daemon::start(&self.dir, &action);
        module_status(&self.dir.path("state"), WAIT);
        d
    }
}

/// Each station's requests: how many, and their origins.
fn by_station(items: &[Value]) -> BTreeMap<String, Vec<Option<String>>> {
    let mut out: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
    for i in items.iter().filter(|i| i["scope"] == "object") {
        let origin = i["origin"].as_str().map(str::to_owned);
        out.entry(i["id"].as_str().unwrap().to_owned())
            .or_default()
            .push(origin);
    }
    out
}

fn counter(state: &std::path::Path, name: &str) -> u64 {
    module_status(state, WAIT)["counters"][name]
        .as_u64()
        .unwrap_or(0)
}

fn wait_counter(state: &std::path::Path, name: &str, at_least: u64) {
    let deadline = std::time::Instant::now() + WAIT;
    while counter(state, name) < at_least {
        assert!(std::time::Instant::now() < deadline, "{name} < {at_least}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn changes_syslog_lost_arrive_marked_reconcile_and_none_twice() {
    let s = Setup::new(json!({}));
    let d = s.start("");
    let (dir, cm, sim) = (&s.dir, &s.cm, &s.sim);
    // 100 changes on CM; 70 of them reach the module by syslog, 30 are lost on the way.
    let minute = cm_minute();
    d.send_tcp(&(2000..2070).map(station_change).collect::<Vec<_>>());
    let mut history: Vec<Value> = (2000..2100)
        .rev()
        .map(|id| record(&minute, "dadmin", id))
        .collect();
    history.push(old_login());
    cm.set_scenario(json!({ "history": history }));
    let items = sim.wait_items(WAIT, |i| by_station(i).len() == 100);
    let stations = by_station(&items);
    for id in 2000..2100 {
        let origins = &stations[&id.to_string()];
        let want = if id < 2070 {
            None
        } else {
            Some("reconcile".to_string())
        };
        assert_eq!(origins, &vec![want], "station {id}");
    }
    // Counted once the session's changes are on disk: they may be delivered before that.
    let state = dir.path("state");
    wait_counter(&state, "reconcile.runs", 1);
    assert_eq!(counter(&state, "reconcile.missed"), 30);
    // The next sessions judge nothing again: no station is asked for twice.
    let runs = counter(&state, "reconcile.runs");
    wait_counter(&state, "reconcile.runs", runs + 1);
    std::thread::sleep(Duration::from_secs(1));
    let again = by_station(&sim.resync_items());
    assert!(again.values().all(|o| o.len() == 1), "{again:?}");
    assert_eq!(counter(&state, "reconcile.missed"), 30);
    let status = omcmsync_cli(&state, &["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("reconcile cm-east: last heard"), "{text}");
    d.stop(Duration::from_secs(10));
}

#[test]
fn a_wrapped_history_resyncs_the_element_and_an_operator_can_ask() {
    let s = Setup::new(json!({}));
    let d = s.start("");
    let (dir, cm, sim) = (&s.dir, &s.cm, &s.sim);
    // Only this minute's records: the history does not reach back to two hours ago.
    let minute = cm_minute();
    cm.set_scenario(json!({ "history": [record(&minute, "dadmin", 3001)] }));
    module_status(&dir.path("state"), WAIT);
    let out = omcmsync_cli(
        &dir.path("state"),
        &[
            "reconcile",
            "--element",
            "cm-east",
            "--since",
            "2h",
            "--wait",
            "60",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("1 missed and requested; history wrapped"),
        "{text}"
    );
    let items = sim.wait_items(WAIT, |i| i.iter().any(|x| x["scope"] == "element"));
    let element = items.iter().find(|x| x["scope"] == "element").unwrap();
    assert_eq!(
        (&element["reason"], &element["origin"]),
        (&json!("history wrapped"), &json!("reconcile"))
    );
    d.stop(Duration::from_secs(10));
}

#[test]
fn a_refused_host_key_or_login_fails_alone_and_heard_changes_still_go() {
    let s = Setup::new(json!({}));
    let (dir, cm, sim) = (&s.dir, &s.cm, &s.sim);
    std::fs::copy(
        cm.path("wrong_known_hosts"),
        dir.path("ossi/cm-east/known_hosts"),
    )
    .unwrap();
    let d = s.start("");
    d.send_tcp(&[station_change(4001)]);
    sim.wait_items(WAIT, |i| object_ids(i, "cm-east").contains("4001"));
    let out = omcmsync_cli(&dir.path("state"), &["reconcile", "--wait", "60"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && text.contains("host key"), "{text}");
    assert!(cm.commands().is_empty(), "logged in: {:?}", cm.commands());
    assert!(counter(&dir.path("state"), "reconcile.failed") >= 1);
    dir.wait_log(&["reconcile cm-east: OSSI session:"]);
    // The host key put right, a wrong password: refused, and the password said nowhere.
    let el = dir.path("ossi/cm-east");
    std::fs::copy(cm.path("known_hosts"), el.join("known_hosts")).unwrap();
    std::fs::copy(cm.path("wrong_password"), el.join("password")).unwrap();
    let out = omcmsync_cli(&dir.path("state"), &["reconcile", "--wait", "60"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && text.contains("refused the login"),
        "{text}"
    );
    dir.wait_log(&["refused the login"]);
    assert!(!dir.rsyslog_log().contains("not-it") && !text.contains("not-it"));
    // Files read at each session: the right password works at once, and that is said.
    std::fs::copy(cm.path("password"), el.join("password")).unwrap();
    let out = omcmsync_cli(&dir.path("state"), &["reconcile", "--wait", "60"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    dir.wait_log(&["reconcile cm-east: CM's history is read again"]);
    let started = std::time::Instant::now();
    d.stop(Duration::from_secs(10));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn changes_made_while_rsyslogd_was_down_arrive_after_the_start() {
    let s = Setup::new(json!({}));
    let (cm, sim) = (&s.cm, &s.sim);
    let d = s.start("");
    // Heard before the stop, and in CM's history too.
    d.send_tcp(&(5000..5005).map(station_change).collect::<Vec<_>>());
    sim.wait_items(WAIT, |i| object_ids(i, "cm-east").len() == 5);
    d.stop(Duration::from_secs(10));
    // CM changes while nobody listens; its history has all of it.
    let minute = cm_minute();
    let mut history: Vec<Value> = (5000..5012)
        .rev()
        .map(|id| record(&minute, "dadmin", id))
        .collect();
    history.push(old_login());
    cm.set_scenario(json!({ "history": history }));
    let d = s.start("");
    let items = sim.wait_items(WAIT, |i| object_ids(i, "cm-east").len() == 12);
    let stations = by_station(&items);
    for id in 5000..5012 {
        let want = if id < 5005 {
            None
        } else {
            Some("reconcile".to_string())
        };
        assert_eq!(stations[&id.to_string()], vec![want], "station {id}");
    }
    d.stop(Duration::from_secs(10));
}

#[test]
fn a_hung_cm_is_bounded_and_stops_with_the_module() {
    let s = Setup::new(json!({"hang": true}));
    let d = s.start(r#"reconcile.timeout.ms="1000""#);
    let (dir, sim) = (&s.dir, &s.sim);
    let state = dir.path("state");
    // The session waits at most 1 s for each answer: it fails, counted, logged once.
    let out = omcmsync_cli(&state, &["reconcile", "--wait", "60"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && text.contains("no answer within 1 s"),
        "{text}"
    );
    assert!(counter(&state, "reconcile.failed") >= 1);
    d.send_tcp(&[station_change(6001)]);
    sim.wait_items(WAIT, |i| object_ids(i, "cm-east").contains("6001"));
    // Stopped during a session: the module does not wait for it, and no client is left.
    let asked = omcmsync_cli(&state, &["reconcile", "--wait", "0"]);
    assert!(!asked.status.success());
    std::thread::sleep(Duration::from_millis(300));
    let started = std::time::Instant::now();
    d.stop(Duration::from_secs(10));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !client_running(dir, "cm-east"),
        "an OSSI client outlived the stop"
    );
    let warnings = dir
        .rsyslog_log()
        .matches("reconcile cm-east: OSSI session")
        .count();
    assert_eq!(warnings, 1, "{}", dir.rsyslog_log());
}

/// `omcmsync check --config FILE` for this test's module parameters, its output.
fn check(dir: &TestDir, sim: &Sim, access: &str) -> String {
    let mut params = format!(
        "smgr.url={}\nelements.file={}\nstate.dir={}\n",
        sim.url(),
        dir.p("elements.json"),
        dir.p("state")
    );
    // `name="value"` pairs.
    for pair in access.split("\" ") {
        let (name, value) = pair.split_once("=\"").unwrap();
        params.push_str(&format!("{name}={}\n", value.trim_end_matches('"')));
    }
    std::fs::write(dir.path("site.conf"), params).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_omcmsync"))
        .args(["check", "--config"])
        .arg(dir.path("site.conf"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn check_logs_into_each_element_and_prints_an_unknown_host_key() {
    let s = Setup::new(json!({"history": [old_login()]}));
    let (dir, cm, sim) = (&s.dir, &s.cm, &s.sim);
    let access = s.params("");
    let text = check(dir, sim, &access);
    assert!(text.contains("PASS  ossi cm-east"), "{text}");
    assert!(text.contains("list history read"), "{text}");
    std::fs::write(dir.path("ossi/cm-east/known_hosts"), "").unwrap();
    let text = check(dir, sim, &access);
    let line = format!("[127.0.0.1]:{} ssh-ed25519 ", cm.port);
    assert!(
        text.contains("FAIL  ossi cm-east") && text.contains(&line),
        "{text}"
    );
    assert!(
        text.contains("check the fingerprint with CM's administrator"),
        "{text}"
    );
    std::fs::remove_file(dir.path("ossi/cm-east/password")).unwrap();
    let text = check(dir, sim, &access);
    assert!(text.contains("neither password nor key"), "{text}");
}

/// The element's last session in the module's status, once its trigger is `why`.
fn wait_session(state: &std::path::Path, why: &str) -> Value {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let status = module_status(state, WAIT);
        let run = status["reconcile"][0]["last_run"].clone();
        if run["why"] == why {
            return run;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {why} session: {run}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_standby_never_reads_cm_and_a_promotion_reconciles() {
    let s = Setup::new(json!({}));
    let (dir, cm, sim) = (&s.dir, &s.cm, &s.sim);
    std::fs::write(dir.path("role"), "standby\n").unwrap();
    let d = s.start(&format!(
        r#"ha.mode="file" ha.file="{}" ha.interval.ms="200""#,
        dir.p("role")
    ));
    let minute = cm_minute();
    cm.set_scenario(json!({ "history": [record(&minute, "dadmin", 7001), old_login()] }));
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        cm.commands().is_empty(),
        "a standby read CM: {:?}",
        cm.commands()
    );
    std::fs::write(dir.path("role"), "active\n").unwrap();
    let run = wait_session(&dir.path("state"), "promotion");
    assert_eq!(run["missed"], 1, "{run}");
    let items = sim.wait_items(WAIT, |i| object_ids(i, "cm-east").contains("7001"));
    let station = items.iter().find(|i| i["id"] == "7001").unwrap();
    assert_eq!(station["origin"], "reconcile");
    d.stop(Duration::from_secs(10));
}

#[test]
fn an_element_heard_after_a_silence_is_reconciled() {
    let s = Setup::new(json!({ "history": [old_login()] }));
    let d = s.start(r#"reconcile.silence.ms="1000""#);
    let (dir, sim) = (&s.dir, &s.sim);
    d.send_tcp(&[station_change(8001)]);
    sim.wait_items(WAIT, |i| object_ids(i, "cm-east").contains("8001"));
    std::thread::sleep(Duration::from_millis(1500));
    // Any line ends the silence, not only a change: here a command that changes nothing.
    let look = "11/25 10:16 SAT dadmin list station 8001";
    d.send_tcp(&[syslog_line("cm-east", "cmdhist", look)]);
    let run = wait_session(&dir.path("state"), "silence");
    assert!(run["failed"].is_null(), "{run}");
    d.stop(Duration::from_secs(10));
}

/// Whether an OSSI client is running for the element whose access is in `dir/ossi/<element>`.
fn client_running(dir: &TestDir, element: &str) -> bool {
    let known_hosts = dir.path(&format!("ossi/{element}/known_hosts"));
    let found = std::process::Command::new("pgrep")
        .args(["-f", &known_hosts.display().to_string()])
        .output()
        .unwrap();
    !found.stdout.is_empty()
}

#[test]
fn a_hung_cm_holds_up_no_other_element() {
    let minute = cm_minute();
    let s = Setup::new(json!({ "history": [record(&minute, "dadmin", 7101), old_login()] }));
    // cm-west, on 127.0.0.2 (the same port), says nothing after the terminal type.
    let west = CmSsh::start_on(
        json!({"hang": true}),
        PasswordBy::Password,
        "127.0.0.2",
        s.cm.port,
    );
    let (dir, sim) = (&s.dir, &s.sim);
    west.reconcile_access(&dir.path(""), "cm-west");
    let both = json!({"elements": [
        {"name": "cm-east", "hosts": ["127.0.0.1"]},
        {"name": "cm-west", "hosts": ["127.0.0.2"]},
    ]});
    std::fs::write(dir.path("elements.json"), both.to_string()).unwrap();
    let d = s.start(r#"reconcile.timeout.ms="60000""#);
    let state = dir.path("state");
    // cm-west's session first; once it waits on the hung CM, cm-east is asked for.
    omcmsync_cli(
        &state,
        &["reconcile", "--element", "cm-west", "--wait", "0"],
    );
    let deadline = std::time::Instant::now() + WAIT;
    while !client_running(dir, "cm-west") {
        assert!(
            std::time::Instant::now() < deadline,
            "no session with cm-west"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let asked = [
        "reconcile",
        "--element",
        "cm-east",
        "--since",
        "1h",
        "--wait",
        "0",
    ];
    omcmsync_cli(&state, &asked);
    let items = sim.wait_items(WAIT, |i| object_ids(i, "cm-east").contains("7101"));
    let station = items.iter().find(|i| i["id"] == "7101").unwrap();
    assert_eq!(station["origin"], "reconcile");
    // Still waiting on cm-west (its bound is 60 s a wait): cm-east did not wait for it.
    assert!(client_running(dir, "cm-west"));
    assert_eq!(counter(&state, "reconcile.failed"), 0);
    d.stop(Duration::from_secs(10));
    assert!(
        !client_running(dir, "cm-west"),
        "a client outlived the stop"
    );
}

#[test]
fn fault_hook_a_session_that_panics_counts_as_failed_and_the_next_one_runs() {
    let minute = cm_minute();
    let s = Setup::new(json!({ "history": [record(&minute, "dadmin", 7201), old_login()] }));
    s.dir.set_env("OMCM_FAULT_PANIC", "omcmsync-ossi");
    let d = s.start("");
    let state = s.dir.path("state");
    let ask = ["reconcile", "--since", "1h", "--wait", "60"];
    let first = omcmsync_cli(&state, &ask);
    let text = String::from_utf8_lossy(&first.stdout);
    assert!(
        !first.status.success() && text.contains("internal error"),
        "{text}"
    );
    let log = s.dir.rsyslog_log();
    assert!(
        log.contains("reconcile cm-east: the session panicked"),
        "{log}"
    );
    let second = omcmsync_cli(&state, &ask);
    let text = String::from_utf8_lossy(&second.stdout);
    assert!(
        second.status.success() && text.contains("1 missed and requested"),
        "{text}"
    );
    s.sim
        .wait_items(WAIT, |i| object_ids(i, "cm-east").contains("7201"));
    d.stop(Duration::from_secs(10));
}
