//! rsyslog takes its signals on its main thread: SIGHUP and SIGTERM wake its main loop, and
//! rsyslog 8.2102 sends itself SIGTTOU to have internal messages written. A thread of the
//! module that left them deliverable could take one, and the HUP or the message would wait for
//! the main loop's next timeout (minutes). Every thread the module runs blocks them.

mod common;

use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(60);

/// The signals `SigBlk` of `/proc/PID/task/TID/status` blocks (a hex mask, bit N-1 for N).
fn blocked(status: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigBlk:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0)
}

#[test]
fn every_thread_of_the_module_blocks_the_signals_rsyslog_takes() {
    let dir = TestDir::new();
    let sim = Sim::start(&dir, &[]);
    let d = Daemon::start(
        &dir,
        &action_to(&dir, sim.url(), r#"coalesce.window.ms="200""#),
    );
    // Every kind of thread up: the service's, a lane, after a HUP.
    d.send_tcp(&[syslog_line("cm-east", "cmdhist", "change station 1")]);
    sim.wait_items(WAIT, |i| object_ids(i, "cm-east").contains("1"));
    d.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(500));
    let mut checked = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{}/task", d.pid())).unwrap() {
        let p = task.unwrap().path();
        let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        if !comm.starts_with("omcmsync") {
            continue;
        }
        let mask = blocked(&std::fs::read_to_string(p.join("status")).unwrap_or_default());
        for sig in [libc::SIGHUP, libc::SIGTERM, libc::SIGTTOU, libc::SIGINT] {
            assert!(
                mask & (1 << (sig - 1)) != 0,
                "thread {} leaves signal {sig} deliverable (SigBlk {mask:x})",
                comm.trim()
            );
        }
        checked.push(comm.trim().to_owned());
    }
    assert!(
        checked.iter().any(|t| t.starts_with("omcmsync-post")),
        "{checked:?}"
    );
    assert!(d.stop(WAIT).success());
}
