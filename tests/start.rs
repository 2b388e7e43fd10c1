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

fn hanging_check(mode: &str, listener: &TcpListener) -> String {
    match mode {
        "http" => format!(
            r#"ha.mode="http" ha.url="http://127.0.0.1:{}/ha" smgr.timeout.ms="2000""#,
            listener.local_addr().unwrap().port()
        ),
        _ => r#"ha.mode="command" ha.command="sleep 30" ha.interval.ms="2000""#.into(),
    }
}

#[test]
fn a_hanging_ha_check_holds_up_nothing() {
    for mode in ["http", "command"] {
        let dir = TestDir::new();
        let sim = Sim::start(&dir, &[]);
        // Connections complete in the kernel's backlog; nothing ever answers them.
        let hang = TcpListener::bind("127.0.0.1:0").unwrap();
        let extra = format!(
            r#"{QUICK} {} action.resumeRetryCount="-1" action.resumeInterval="1""#,
            hanging_check(mode, &hang)
        );
        let started = Instant::now();
        let d = Daemon::start(&dir, &action_to(&dir, sim.url(), &extra));
        assert!(
            started.elapsed() < PROMPT,
            "{mode}: listening after {:?}",
            started.elapsed()
        );
        d.send_tcp(&[syslog_line("cm-east", "cmdhist", "change station 1")]);
        d.signal(libc::SIGHUP);
        let hup = Instant::now();
        while !dir.rsyslog_log().contains("HUP: files reopened") {
            assert!(
                hup.elapsed() < PROMPT,
                "{mode}: HUP unanswered: {}",
                dir.rsyslog_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // The check gives up (role unknown: processed by default); the change goes out.
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
    // A queue of its own, as shipped: the held batch must not stall rsyslog's main queue
    // (which carries rsyslog's own log lines here).
    let extra = format!(
        r#"{QUICK} queue.type="LinkedList" action.resumeRetryCount="-1" action.resumeInterval="1""#
    );
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
    // A broken file: said once, however often it is looked at.
    std::fs::write(dir.path("elements.json"), "{broken").unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let log = dir.rsyslog_log();
    assert_eq!(log.matches("not valid JSON").count(), 1, "{log}");
    std::fs::write(dir.path("elements.json"), elements).unwrap();
    sim.wait_items(Duration::from_secs(30), |i| {
        object_ids(i, "cm-east").contains("2")
    });
    assert!(d.stop(Duration::from_secs(30)).success());
}
