//! The wall clock stepped back under a running rsyslogd (libfaketime moves that one process's
//! clock while it runs; the monotonic clock stays true, as under NTP): keys queued before the
//! step go out within their window and backoff, not an hour later. Host rsyslogd only (the
//! library is the host's).

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

#[test]
fn a_clock_stepped_back_an_hour_delays_nothing() {
    assert!(
        std::path::Path::new(LIBFAKETIME).exists(),
        "libfaketime is not installed (scripts/test installs it)"
    );
    let dir = TestDir::new();
    let offset = dir.path("faketime");
    std::fs::write(&offset, "+0\n").unwrap();
    dir.set_env("LD_PRELOAD", LIBFAKETIME);
    dir.set_env("FAKETIME_TIMESTAMP_FILE", &offset.display().to_string());
    dir.set_env("FAKETIME_NO_CACHE", "1");
    dir.set_env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    let sim = Sim::start(&dir, &[]);
    sim.control("/sim/fault", json!({"down_s": 3600}));
    let extra = r#"coalesce.window.ms="500" retry.initial.ms="200" retry.max.ms="2000""#;
    let d = Daemon::start(&dir, &action_to(&dir, sim.url(), extra));
    let lines: Vec<String> = (1..=20)
        .map(|i| syslog_line("cm-east", "cmdhist", &format!("change station {i}")))
        .collect();
    d.send_tcp(&lines);
    wait_json_lines(&dir.path("trace.json"), 20, Duration::from_secs(60));
    // Queued, due, and refused a few times: in backoff now.
    std::thread::sleep(Duration::from_secs(2));
    assert!(sim.resync_items().is_empty());
    std::fs::write(&offset, "-3600\n").unwrap();
    sim.control("/sim/fault", json!({"clear": true}));
    let back = Instant::now();
    let want: BTreeSet<String> = (1..=20).map(|i| i.to_string()).collect();
    // Within the window and the longest backoff (plus slack for a loaded machine).
    let items = sim.wait_items(Duration::from_secs(15), |i| {
        want.is_subset(&object_ids(i, "cm-east"))
    });
    assert!(want.is_subset(&object_ids(&items, "cm-east")));
    println!("delivered {:?} after the step", back.elapsed());
    // The step itself was real: rsyslogd stamps a new line an hour early.
    d.send_tcp(&[syslog_line("cm-east", "cmdhist", "change station 21")]);
    let trace = wait_json_lines(&dir.path("trace.json"), 21, Duration::from_secs(30));
    let stamped = trace[20]["received_at"].as_str().unwrap();
    let stamped = omcmsync::clock::parse_rfc3339_ms(stamped).expect("an RFC 3339 time");
    let behind = omcmsync::clock::now_ms().saturating_sub(stamped);
    assert!(
        (3_500_000..3_700_000).contains(&behind),
        "rsyslogd's clock is {behind} ms behind, not an hour"
    );
    assert!(d.stop(Duration::from_secs(30)).success());
}
