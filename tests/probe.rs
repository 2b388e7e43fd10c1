//! What monitoring reads, against a real rsyslogd: `omcmsync status --check` follows the
//! state through a System Manager outage (OK, then WARNING, then CRITICAL as a change waits,
//! UNKNOWN once no module answers), and `status --format openmetrics` passes the OpenMetrics
//! parser of the Python Prometheus client (Debian's python3-prometheus-client).

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

const WAIT: Duration = Duration::from_secs(30);
const QUICK: &str = r#"coalesce.window.ms="100" retry.initial.ms="100" retry.max.ms="500""#;

fn check(state: &std::path::Path) -> (i32, String) {
    let out = omcmsync_cli(
        state,
        &["status", "--check", "--warn-age", "2s", "--crit-age", "5s"],
    );
    let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.code().unwrap_or(-1), line)
}

/// Waits until the check exits with `code`; returns its line.
fn wait_check(state: &std::path::Path, code: i32) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let (got, line) = check(state);
        if got == code {
            return line;
        }
        assert!(
            Instant::now() < deadline,
            "never exit {code}: last {got} {line}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The metrics, parsed by prometheus_client's OpenMetrics parser: `name{labels} value` lines.
fn parsed(out: &Output) -> String {
    let script = "import sys\n\
        from prometheus_client.openmetrics.parser import text_string_to_metric_families as p\n\
        for f in p(sys.stdin.read()):\n\
        \x20   for s in f.samples:\n\
        \x20       print(s.name, sorted(s.labels.items()), s.value)\n";
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (scripts/deps.sh installs python3-prometheus-client)");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    let done = child.wait_with_output().unwrap();
    assert!(
        done.status.success(),
        "not OpenMetrics: {}\n{}",
        String::from_utf8_lossy(&done.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&done.stdout).into_owned()
}

#[test]
fn the_probe_follows_an_outage_and_its_metrics_parse() {
    let dir = TestDir::new();
    let state = dir.path("state");
    let sim = Sim::start(&dir, &[]);
    let d = Daemon::start(&dir, &action_to(&dir, sim.url(), QUICK));
    d.send_tcp(&[syslog_line("cm-east", "cmdhist", "change station 1")]);
    sim.wait_items(WAIT, |i| object_ids(i, "cm-east").contains("1"));
    let ok = wait_check(&state, 0);
    assert!(ok.starts_with("OMCMSYNC OK - "), "{ok}");
    assert!(ok.contains("| pending=0;;;0 "), "{ok}");

    // System Manager goes away; a change waits.
    drop(sim);
    d.send_tcp(&[syslog_line("cm-east", "cmdhist", "change station 2")]);
    let warning = wait_check(&state, 1);
    assert!(
        warning.starts_with("OMCMSYNC WARNING - a change waiting"),
        "{warning}"
    );
    let metrics = omcmsync_cli(&state, &["status", "--format", "openmetrics"]);
    assert!(metrics.status.success(), "{metrics:?}");
    let samples = parsed(&metrics);
    assert!(
        samples.contains("omcmsync_pending [('element', 'cm-east')] 1"),
        "{samples}"
    );
    assert!(samples.contains("omcmsync_up [] 1"), "{samples}");
    assert!(
        samples.contains("omcmsync_posts_total [('outcome', 'ok')] 1"),
        "{samples}"
    );
    let critical = wait_check(&state, 2);
    assert!(critical.starts_with("OMCMSYNC CRITICAL - "), "{critical}");

    assert!(d.stop(WAIT).success());
    let (code, unknown) = check(&state);
    assert_eq!(code, 3, "{unknown}");
    assert!(unknown.starts_with("OMCMSYNC UNKNOWN - "), "{unknown}");
    let down = omcmsync_cli(&state, &["status", "--format", "openmetrics"]);
    assert_eq!(down.status.code(), Some(2));
    assert!(parsed(&down).contains("omcmsync_up [] 0"));
}
