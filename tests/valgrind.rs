//! rsyslogd with our module under valgrind memcheck: load, config, messages, HUP and shutdown
//! with no invalid read, write or free and no definitely-lost memory. This is where a template
//! name not allocated with malloc, a borrowed batch string kept past its call, or a double free
//! of instance data would show.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn module_is_memcheck_clean() {
    if std::process::Command::new("valgrind")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("valgrind is not installed (scripts/test installs it)");
    }
    let dir = TestDir::new();
    let ports = Ports::free();
    let text = config(
        &dir,
        ports,
        &action(&dir, r#"queue.type="LinkedList" queue.workerThreads="2""#),
    );
    let log = dir.p("valgrind.log");
    let log_opt = format!("--log-file={log}");
    let supp = format!(
        "--suppressions={}",
        repo().join("tests/valgrind.supp").display()
    );
    let wrapper = [
        "valgrind",
        &supp,
        "--error-exitcode=99",
        "--leak-check=full",
        "--errors-for-leak-kinds=definite",
        &log_opt,
    ];
    let d = Daemon::start_wrapped(&dir, ports, &text, &wrapper);
    let lines: Vec<String> = (0..300)
        .map(|i| syslog_line("cm-east", "cmdhist", &format!("change station {i}")))
        .collect();
    d.send_tcp(&lines);
    d.send_tcp_bytes(b"garbage \xff\xfe\n");
    wait_json_lines(&dir.path("trace.json"), 301, Duration::from_secs(120));
    d.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(500));
    let status = d.stop(Duration::from_secs(120));
    let report = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "exit {status}\n{report}");
    assert!(report.contains("ERROR SUMMARY: 0 errors"), "{report}");
}
