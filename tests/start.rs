//! The start waits for nothing on rsyslog's side: the service starts in a thread of its own, so
//! an HA check that hangs (an `ha.url` that accepts and never answers, an `ha.command` that
//! sleeps) keeps neither rsyslogd from listening, nor HUP or SIGTERM from being answered; a
//! change sent meanwhile is delivered once the check has ended.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::*;

const QUICK: &str = r#"coalesce.window.ms="200" retry.initial.ms="100" retry.max.ms="1000""#;
const PROMPT: Duration = Duration::from_secs(3);

/// A queue of its own, as shipped: a held batch must not stall rsyslog's main queue, which
/// carries rsyslog's own log lines (the HUP answer among them) here. rsyslog retries a held
/// batch forever, every second.
const HELD: &str =
    r#"queue.type="LinkedList" action.resumeRetryCount="-1" action.resumeInterval="1""#;

#[test]
fn a_hanging_ha_check_holds_up_nothing() {
    // Connections complete in the kernel's backlog; nothing ever answers them.
    let hang = TcpListener::bind("127.0.0.1:0").unwrap();
    let http = format!(
        r#"ha.mode="http" ha.url="http://127.0.0.1:{}/ha" smgr.timeout.ms="2000""#,
        hang.local_addr().unwrap().port()
    );
    holds_up_nothing("http", &TestDir::new(), &http);
    let command = r#"ha.mode="command" ha.command="sleep 30" ha.interval.ms="2000""#;
    holds_up_nothing("command", &TestDir::new(), command);
}

/// The same with a role file whose every read hangs 3 s (fault hook).
#[test]
fn fault_hook_hanging_role_read_holds_up_nothing() {
    let dir = TestDir::new();
    std::fs::write(dir.path("role"), "active\n").unwrap();
    dir.set_env("OMCM_FAULT_HANG", "ha:3000");
    let file = format!(r#"ha.mode="file" ha.file="{}""#, dir.p("role"));
    holds_up_nothing("file", &dir, &file);
}

/// rsyslogd with an HA check that hangs (`ha`): it listens, answers HUP and SIGTERM within
/// [`PROMPT`], and a change sent at start is delivered once the check has ended.
fn holds_up_nothing(mode: &str, dir: &TestDir, ha: &str) {
    let sim = Sim::start(dir, &[]);
    let extra = format!("{QUICK} {ha} {HELD}");
    let started = Instant::now();
    let d = Daemon::start(dir, &action_to(dir, sim.url(), &extra));
    assert!(
        started.elapsed() < PROMPT,
        "{mode}: listening after {:?}",
        started.elapsed()
    );
    d.send_tcp(&[syslog_line("cm-east", "cmdhist", "change station 1")]);
    assert_hup_answered(dir, &d, mode);
    // The check ends (or gives up: role unknown, processed by default); the change goes out.
    sim.wait_items(Duration::from_secs(30), |i| {
        object_ids(i, "cm-east").contains("1")
    });
    let stopping = Instant::now();
    assert!(d.stop(Duration::from_secs(30)).success());
    assert!(
        stopping.elapsed() < PROMPT,
        "{mode}: exit took {:?}",
        stopping.elapsed()
    );
}

/// Sends HUP and waits (at most [`PROMPT`]) for the module to say it reopened its files.
fn assert_hup_answered(dir: &TestDir, d: &Daemon, what: &str) {
    let said = dir.rsyslog_log().matches("HUP: files reopened").count();
    d.signal(libc::SIGHUP);
    let hup = Instant::now();
    while dir.rsyslog_log().matches("HUP: files reopened").count() == said {
        assert!(
            hup.elapsed() < PROMPT,
            "{what}: HUP unanswered: {}",
            dir.rsyslog_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Ten element host names whose lookups hang 2 s each (fault hook): rsyslogd listens and
/// answers HUP and SIGTERM promptly, and since the names are looked up at once, not one after
/// another, the change sent at start is delivered after about one lookup (held until then:
/// whose line it is is not known before), not after ten.
#[test]
fn fault_hook_hanging_name_lookups_hold_up_nothing() {
    let dir = TestDir::new();
    let mut elements = vec![serde_json::json!({"name": "cm-east", "hosts": ["localhost"]})];
    elements.extend((1..10).map(
        |n| serde_json::json!({"name": format!("cm-{n}"), "hosts": [format!("cm-{n}.invalid")]}),
    ));
    let list = serde_json::json!({ "elements": elements }).to_string();
    std::fs::write(dir.path("elements.json"), list).unwrap();
    dir.set_env("OMCM_FAULT_HANG", "resolve:2000");
    let sim = Sim::start(&dir, &[]);
    let extra = format!("{QUICK} {HELD}");
    let started = Instant::now();
    let d = Daemon::start(&dir, &action_to(&dir, sim.url(), &extra));
    assert!(
        started.elapsed() < PROMPT,
        "listening after {:?}",
        started.elapsed()
    );
    d.send_tcp(&[syslog_line("cm-east", "cmdhist", "change station 1")]);
    assert_hup_answered(&dir, &d, "lookups hang");
    sim.wait_items(Duration::from_secs(30), |i| {
        object_ids(i, "cm-east").contains("1")
    });
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "ten 2 s lookups one after another would take 20 s; delivered after {:?}",
        started.elapsed()
    );
    // A second HUP starts another round of hanging lookups; SIGTERM does not wait for it.
    assert_hup_answered(&dir, &d, "lookups hang");
    let stopping = Instant::now();
    assert!(d.stop(Duration::from_secs(30)).success());
    assert!(
        stopping.elapsed() < PROMPT,
        "exit took {:?}",
        stopping.elapsed()
    );
}

/// SIGTERM while the start is still inside the hanging check: rsyslogd exits within a few
/// seconds (a batch waits at most 1 s for the start, then rsyslog's own retry and shutdown
/// timeouts take their second or two; before the start moved off rsyslog's threads this took
/// the check's whole timeout, here a minute).
#[test]
fn sigterm_during_a_hanging_start_exits_promptly() {
    let dir = TestDir::new();
    let hang = TcpListener::bind("127.0.0.1:0").unwrap();
    let extra = format!(
        r#"ha.mode="http" ha.url="http://127.0.0.1:{}/ha" smgr.timeout.ms="60000""#,
        hang.local_addr().unwrap().port()
    );
    let d = Daemon::start(&dir, &action(&dir, &extra));
    d.send_tcp(&[syslog_line("cm-east", "cmdhist", "change station 1")]);
    std::thread::sleep(Duration::from_millis(500));
    let stopping = Instant::now();
    assert!(d.stop(Duration::from_secs(30)).success());
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "exit took {:?}",
        stopping.elapsed()
    );
}

/// rsyslogd started without its elements file: `-N1` fails naming it, but the real start
/// creates the action: keys queued before are delivered, a change sent meanwhile is held
/// (rsyslog keeps it) and delivered once the file appears; a broken file is logged once.
#[test]
fn a_missing_elements_file_at_start_holds_and_loses_nothing() {
    let dir = TestDir::new();
    let sim = Sim::start(&dir, &[]);
    sim.control("/sim/fault", serde_json::json!({"down_s": 3600}));
    let extra = format!("{QUICK} {HELD}");
    let body = action_to(&dir, sim.url(), &extra);
    let d = Daemon::start(&dir, &body);
    d.send_tcp(&[syslog_line("cm-east", "cmdhist", "change station 1")]);
    wait_json_lines(&dir.path("trace.json"), 1, Duration::from_secs(30));
    assert!(d.stop(Duration::from_secs(30)).success());

    let elements = std::fs::read_to_string(dir.path("elements.json")).unwrap();
    std::fs::remove_file(dir.path("elements.json")).unwrap();
    let check = check_config(&dir, &config(&dir, Ports::free(), &body), &[]);
    assert!(
        !check.ok && check.output.contains("elements.file"),
        "{}",
        check.output
    );

    sim.control("/sim/fault", serde_json::json!({"clear": true}));
    let d = Daemon::start(&dir, &body);
    // Queued before the restart: delivered without the file.
    sim.wait_items(Duration::from_secs(30), |i| {
        object_ids(i, "cm-east").contains("1")
    });
    d.send_tcp(&[syslog_line("cm-east", "cmdhist", "change station 2")]);
    std::thread::sleep(Duration::from_secs(2));
    assert!(!object_ids(&sim.resync_items(), "cm-east").contains("2"));
    // Missing at start: said once (not by the configuration and again by the first read).
    let missing = format!("{}: No such file", dir.p("elements.json"));
    assert_eq!(
        dir.rsyslog_log().matches(&missing).count(),
        1,
        "{}",
        dir.rsyslog_log()
    );
    // A broken file: said once, however often it is looked at.
    std::fs::write(dir.path("elements.json"), "{broken").unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let log = dir.rsyslog_log();
    assert_eq!(log.matches("not valid JSON").count(), 1, "{log}");
    std::fs::write(dir.path("elements.json"), elements).unwrap();
    sim.wait_items(Duration::from_secs(30), |i| {
        object_ids(i, "cm-east").contains("2")
    });
    // Said once when it is gone, too.
    dir.wait_log(&["read again, 1 element(s) in force"]);
    assert_eq!(dir.rsyslog_log().matches("read again, ").count(), 1);
    assert!(d.stop(Duration::from_secs(30)).success());
}
