//! Messages through the real rsyslogd into the module: each arrives once and intact, whatever
//! the batch size and worker count; HUP, SIGTERM under load and hostile input do no harm.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(120);

fn numbered(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            syslog_line(
                "cm-east",
                "cmdhist",
                &format!("change station {} seq={i}", 1000 + i % 500),
            )
        })
        .collect()
}

fn expected_message(i: usize) -> String {
    format!("cmdhist: change station {} seq={i}", 1000 + i % 500)
}

/// Sends `n` numbered lines through an action with the given queue shape and checks that each
/// is traced exactly once, intact; with one worker, also in order.
fn exactly_once(n: usize, batch: usize, workers: usize) -> Vec<serde_json::Value> {
    let dir = TestDir::new();
    let queue = format!(
        r#"queue.type="LinkedList" queue.size="200000" queue.dequeueBatchSize="{batch}" queue.workerThreads="{workers}" queue.workerThreadMinimumMessages="100""#
    );
    let d = Daemon::start(&dir, &action(&dir, &queue));
    d.send_tcp(&numbered(n));
    wait_json_lines(&dir.path("trace.json"), n, WAIT);
    let status = d.stop(Duration::from_secs(30));
    assert!(status.success(), "exit {status}");
    let records = read_json_lines(&dir.path("trace.json"));
    assert_eq!(records.len(), n, "duplicates traced");
    let mut seen: HashMap<String, usize> = HashMap::new();
    for r in &records {
        assert_eq!(
            (&r["verdict"], &r["verb"], &r["type"]),
            (&"event".into(), &"change".into(), &"station".into()),
            "{r}"
        );
        assert_eq!(r["sender"], "127.0.0.1");
        assert_eq!(r["hostname"], "cm-east");
        *seen
            .entry(r["message"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    for i in 0..n {
        assert_eq!(seen.get(&expected_message(i)), Some(&1), "message {i}");
    }
    if workers == 1 {
        let in_order: Vec<String> = (0..n).map(expected_message).collect();
        let got: Vec<&str> = records
            .iter()
            .map(|r| r["message"].as_str().unwrap())
            .collect();
        assert_eq!(got, in_order);
    }
    records
}

fn worker_ids(records: &[serde_json::Value]) -> std::collections::BTreeSet<u64> {
    records
        .iter()
        .map(|r| r["worker"].as_u64().unwrap())
        .collect()
}

#[test]
fn one_message() {
    exactly_once(1, 1, 1);
}

#[test]
fn batches_of_one_in_order() {
    exactly_once(2_000, 1, 1);
}

#[test]
fn batches_of_128_two_workers() {
    let records = exactly_once(20_000, 128, 2);
    assert!(worker_ids(&records).len() <= 2);
}

#[test]
fn hundred_thousand_batches_of_1024_four_workers() {
    let records = exactly_once(100_000, 1024, 4);
    let ids = worker_ids(&records);
    assert!(
        ids.len() > 1 && ids.len() <= 4,
        "worker instances used: {ids:?}"
    );
}

#[test]
fn udp_messages_arrive() {
    let dir = TestDir::new();
    let d = Daemon::start(&dir, &action(&dir, ""));
    // UDP has no flow control: on a busy machine the kernel drops datagrams rsyslogd has not
    // read yet. Send in rounds of 50 and wait for each, so that what is tested is the path
    // through the module, not the socket buffer.
    let lines = numbered(500);
    for (round, chunk) in lines.chunks(50).enumerate() {
        d.send_udp(chunk);
        wait_json_lines(&dir.path("trace.json"), (round + 1) * 50, WAIT);
    }
    let records = read_json_lines(&dir.path("trace.json"));
    let messages: Vec<&str> = records
        .iter()
        .map(|r| r["message"].as_str().unwrap())
        .collect();
    for i in 0..500 {
        assert!(
            messages.contains(&expected_message(i).as_str()),
            "message {i}"
        );
    }
    assert!(d.stop(Duration::from_secs(30)).success());
}

#[test]
fn hup_reopens_the_trace_file() {
    let dir = TestDir::new();
    let d = Daemon::start(&dir, &action(&dir, ""));
    d.send_tcp(&numbered(10));
    wait_json_lines(&dir.path("trace.json"), 10, WAIT);
    std::fs::rename(dir.path("trace.json"), dir.path("trace.json.1")).unwrap();
    d.signal(libc::SIGHUP);
    // HUP is handled asynchronously on rsyslog's main thread: keep sending until the new file
    // appears, then check nothing was lost across the two files.
    let mut sent = 10;
    while !dir.path("trace.json").exists() {
        assert!(sent < 10_000, "trace file not reopened after HUP");
        std::thread::sleep(Duration::from_millis(100));
        d.send_tcp(&[syslog_line(
            "cm-east",
            "cmdhist",
            &format!("change station 9 seq=after{sent}"),
        )]);
        sent += 1;
    }
    let old = read_json_lines(&dir.path("trace.json.1")).len();
    wait_json_lines(&dir.path("trace.json"), sent - old, WAIT);
    assert!(d.stop(Duration::from_secs(30)).success());
    let new = read_json_lines(&dir.path("trace.json")).len();
    assert_eq!(old + new, sent);
}

#[test]
fn sigterm_while_busy_exits_cleanly() {
    let dir = TestDir::new();
    let queue = r#"queue.type="LinkedList" queue.size="500000" queue.workerThreads="4" queue.dequeueBatchSize="256""#;
    let d = Daemon::start(&dir, &action(&dir, queue));
    let lines = numbered(200_000);
    let sender = {
        let port = d.ports.tcp;
        std::thread::spawn(move || {
            use std::io::Write;
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            for l in &lines {
                if s.write_all(format!("{l}\n").as_bytes()).is_err() {
                    break; // the daemon went away mid-stream: expected here
                }
            }
        })
    };
    wait_json_lines(&dir.path("trace.json"), 1_000, WAIT);
    let status = d.stop(Duration::from_secs(60));
    let _ = sender.join();
    assert!(status.success(), "exit {status}");
    let stderr = std::fs::read_to_string(dir.path("rsyslogd-1.stderr")).unwrap();
    assert!(
        !stderr.contains("FATAL") && !stderr.contains("omcmsync: "),
        "{stderr}"
    );
    // Whatever reached the trace is whole JSON (no torn records).
    read_json_lines(&dir.path("trace.json"));
}

#[test]
fn hostile_input_is_counted_not_fatal() {
    let dir = TestDir::new();
    let d = Daemon::start(&dir, &action(&dir, ""));
    let mut junk: Vec<u8> = (0..=255u8).cycle().take(64 * 1024).collect();
    junk.extend_from_slice(b"\n<13>Nov 25 10:15:02 cm-east cmdhist: change sta");
    junk.extend_from_slice(b"\n");
    junk.extend_from_slice(&vec![b'x'; 1 << 20]);
    junk.extend_from_slice(
        b"\n<13>Nov 25 10:15:02 ::1 cmdhist: login=a src=2001:db8::7 cmd=\"cha sta 1\"\n",
    );
    d.send_tcp_bytes(&junk);
    d.send_tcp(&[syslog_line(
        "cm-east",
        "cmdhist",
        "change station 4711 seq=last",
    )]);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let recs = read_json_lines(&dir.path("trace.json"));
        if recs
            .iter()
            .any(|r| r["message"] == "cmdhist: change station 4711 seq=last")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "last message never arrived"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(d.stop(Duration::from_secs(30)).success());
}

#[test]
fn other_template_lines_are_counted_malformed() {
    let dir = TestDir::new();
    let d = Daemon::start(&dir, &action(&dir, r#"template="RSYSLOG_FileFormat""#));
    d.send_tcp(&numbered(3));
    let records = wait_json_lines(&dir.path("trace.json"), 3, WAIT);
    assert!(records
        .iter()
        .all(|r| r["verdict"] == "malformed" && r["reason"] == "missing_fields"));
    assert!(d.stop(Duration::from_secs(30)).success());
}

#[test]
fn rfc5424_messages_keep_tag_and_text_apart() {
    let dir = TestDir::new();
    let d = Daemon::start(&dir, &action(&dir, ""));
    d.send_tcp(&[
        r#"<13>1 2026-11-25T10:15:02Z cm-east cmdhist 4711 - - login=jdoe cmd="cha sta 1002""#
            .to_string(),
    ]);
    let records = wait_json_lines(&dir.path("trace.json"), 1, WAIT);
    let message = records[0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("cmdhist") && message.contains(" login=jdoe"),
        "{message}"
    );
    assert_eq!(
        (&records[0]["id"], &records[0]["login"]),
        (&"1002".into(), &"jdoe".into())
    );
    assert!(d.stop(Duration::from_secs(30)).success());
}
