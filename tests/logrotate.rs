//! The shipped logrotate file (packaging/logrotate/omcmsync), run by the real logrotate
//! against a real rsyslogd: the trace and capture files rotate, nothing written is lost, and
//! the capture file's bound holds per file (a HUP that rotates nothing adds no room).

mod common;

use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(30);
const QUICK: &str = r#"coalesce.window.ms="100" retry.initial.ms="100" retry.max.ms="1000""#;

/// Lines that look like admin commands but name no object: captured.
fn unclassified(n: u64) -> String {
    syslog_line("cm-east", "cmdhist", &format!("change widget {n}"))
}

/// The shipped file, pointed at `log_dir` and HUPing `pid` instead of the system's rsyslog.
fn logrotate_conf(log_dir: &str, pid: i32) -> String {
    let shipped = std::fs::read_to_string("packaging/logrotate/omcmsync").unwrap();
    assert!(shipped.contains("/var/log/omcmsync/*.json {"), "{shipped}");
    let (head, rest) = shipped.split_once("    postrotate\n").unwrap();
    let (_, tail) = rest.split_once("    endscript\n").unwrap();
    let head = head.replace("/var/log/omcmsync", log_dir);
    format!("{head}    postrotate\n        kill -HUP {pid}\n    endscript\n{tail}")
}

#[test]
fn the_shipped_logrotate_file_rotates_trace_and_capture_and_loses_nothing() {
    let dir = TestDir::new();
    let log = dir.path("log");
    std::fs::create_dir(&log).unwrap();
    let sim = Sim::start(&dir, &[]);
    let extra = format!(
        r#"{QUICK} trace.file="{}" capture.file="{}" capture.max="3""#,
        dir.p("log/trace.json"),
        dir.p("log/unclassified.json"),
    );
    let d = Daemon::start(&dir, &action_to(&dir, sim.url(), &extra));
    d.send_tcp(&[unclassified(1), unclassified(2)]);
    wait_json_lines(&log.join("unclassified.json"), 2, WAIT);
    // A HUP that rotates nothing (rsyslog's own daily one): the file keeps its two lines and
    // takes one more, not three.
    d.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(500));
    d.send_tcp(&[unclassified(3), unclassified(4), unclassified(5)]);
    wait_json_lines(&log.join("trace.json"), 5, WAIT);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(read_json_lines(&log.join("unclassified.json")).len(), 3);

    let conf = dir.path("logrotate.conf");
    std::fs::write(&conf, logrotate_conf(&dir.p("log"), d.pid())).unwrap();
    let state = dir.p("logrotate.state");
    let out = std::process::Command::new("logrotate")
        .args(["-f", "-s", &state, &conf.display().to_string()])
        .output()
        .expect("logrotate (scripts/deps.sh installs it)");
    assert!(out.status.success(), "{out:?}");
    for file in ["trace.json", "unclassified.json"] {
        assert!(log.join(format!("{file}.1")).exists(), "{file} rotated");
    }
    // After the HUP: new files, and a new file's capture room.
    d.send_tcp(&[
        unclassified(6),
        unclassified(7),
        unclassified(8),
        unclassified(9),
    ]);
    wait_json_lines(&log.join("trace.json"), 4, WAIT);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(read_json_lines(&log.join("unclassified.json")).len(), 3);
    // Every traced line is in one file or the other.
    let traced = read_json_lines(&log.join("trace.json.1")).len()
        + read_json_lines(&log.join("trace.json")).len();
    assert_eq!(traced, 9);
    assert!(d.stop(WAIT).success());
}
