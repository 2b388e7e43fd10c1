//! The queue log's own faults, with the real rsyslogd: one writer per state directory, a
//! compaction swap that cannot strand appends, damage that costs a resync instead of a change,
//! and Idempotency-Keys that never repeat across the life of a state directory.

mod common;

use std::collections::BTreeSet;
use std::ops::Range;
use std::process::Command;
use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(60);
const QUICK: &str = r#"coalesce.window.ms="200" retry.initial.ms="100" retry.max.ms="1000""#;

fn stations(ids: Range<u32>) -> Vec<String> {
    ids.map(|i| syslog_line("cm-east", "cmdhist", &format!("change station {i}")))
        .collect()
}

fn down(sim: &Sim) {
    sim.control("/sim/fault", serde_json::json!({"down_s": 3600}));
}

fn up(sim: &Sim) {
    sim.control("/sim/fault", serde_json::json!({"clear": true}));
}

/// With System Manager down: sends `lines` and waits until the trace shows `traced` records
/// in all (each record is written once its batch is committed).
fn commit(d: &Daemon, dir: &TestDir, lines: &[String], traced: usize) {
    d.send_tcp(lines);
    wait_json_lines(&dir.path("trace.json"), traced, WAIT);
}

/// The element-level requests for `element` that a damaged log asked for.
fn damage_resyncs(sim: &Sim, element: &str) -> usize {
    sim.resync_items()
        .iter()
        .filter(|i| {
            i["element"] == element && i["scope"] == "element" && i["reason"] == "queue damaged"
        })
        .count()
}

#[test]
fn two_actions_with_one_state_dir_fail_the_check() {
    let dir = TestDir::new();
    let one = action(&dir, "");
    let two = one.replace(r#"name="omcmsync""#, r#"name="omcmsync-2""#);
    let check = check_config(
        &dir,
        &config(&dir, Ports::free(), &format!("{one}\n{two}")),
        &[],
    );
    assert!(
        !check.ok
            && check.output.contains("'state.dir'")
            && check.output.contains("another omcmsync action"),
        "{}",
        check.output
    );
}

/// `omcmsync omprog` on the state directory a running rsyslogd uses (as an operator checking
/// a configuration with the shipped examples would) is refused, naming the holder; the
/// running module loses none of its changes.
#[test]
fn a_second_writer_is_refused_and_the_first_loses_nothing() {
    let dir = TestDir::new();
    let sim = Sim::start(&dir, &[]);
    down(&sim);
    let d = Daemon::start(&dir, &action_to(&dir, sim.url(), QUICK));
    commit(&d, &dir, &stations(1..11), 10);
    let conf = dir.path("omprog.conf");
    std::fs::write(
        &conf,
        format!(
            "smgr.url=\"{}\"\nelements.file=\"{}\"\nstate.dir=\"{}\"\n",
            sim.url(),
            dir.p("elements.json"),
            dir.p("state")
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_omcmsync"))
        .arg("omprog")
        .arg("--config")
        .arg(&conf)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("in use by process {}", d.pid())),
        "{stderr}"
    );
    commit(&d, &dir, &stations(11..21), 20);
    up(&sim);
    sim.wait_items(WAIT, |i| ids(1..21).is_subset(&object_ids(i, "cm-east")));
    assert!(d.stop(WAIT).success());
}

/// The step after a compaction's rename fails (fault hook: the reopen of the live log, in the
/// first compaction while running); changes committed after it, then kill -9: after a restart
/// every one of them is delivered (before the fix they were appended to the unlinked file).
#[test]
fn fault_hook_a_failed_swap_then_kill9_loses_nothing() {
    let dir = TestDir::new();
    dir.set_env("OMCM_FAULT_COMPACT", "reopen:2");
    let sim = Sim::start(&dir, &[]);
    down(&sim);
    let body = action_to(&dir, sim.url(), QUICK);
    let d = Daemon::start(&dir, &body);
    // 5,000 changes to five stations: the log is soon mostly history, and compacted.
    let flood: Vec<String> = (0..5000)
        .map(|i| syslog_line("cm-east", "cmdhist", &format!("change station {}", i % 5)))
        .collect();
    commit(&d, &dir, &flood, 5000);
    dir.wait_log(&["fault hook: reopen fails"]);
    commit(&d, &dir, &stations(100..120), 5020);
    d.kill9();
    dir.set_env("OMCM_FAULT_COMPACT", "");
    up(&sim);
    let d = Daemon::start(&dir, &body);
    let want = ids((0..5).chain(100..120));
    sim.wait_items(WAIT, |i| want.is_subset(&object_ids(i, "cm-east")));
    assert!(d.stop(WAIT).success());
}

/// How the log is damaged between two runs.
#[derive(Clone, Copy, Debug)]
enum Damage {
    /// One byte of one record of ten.
    FlippedByte,
    /// Cut in the middle of its last record.
    Cut,
    /// Replaced by an empty file.
    Emptied,
}

impl Damage {
    fn apply(self, log: &std::path::Path) {
        let mut bytes = std::fs::read(log).unwrap();
        match self {
            Damage::FlippedByte => {
                let at = bytes.windows(8).position(|w| w == b"\"id\":\"5\"").unwrap();
                bytes[at + 6] = b'9';
            }
            Damage::Cut => {
                let last = bytes[..bytes.len() - 1]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .unwrap();
                bytes.truncate(last + 30);
            }
            Damage::Emptied => bytes.clear(),
        }
        std::fs::write(log, bytes).unwrap();
    }
}

/// Ten stations queued with System Manager down, the log damaged, a restart: the damaged log
/// is kept aside, the error names the damage and the element, `queue.damaged` counts it, every
/// station whose record survived is delivered, and the element gets one full resync.
#[test]
fn damage_costs_a_resync_never_a_change() {
    for damage in [Damage::FlippedByte, Damage::Cut, Damage::Emptied] {
        let dir = TestDir::new();
        let sim = Sim::start(&dir, &[]);
        down(&sim);
        let ports = Ports::free();
        let text = config_with_impstats(&dir, ports, &action_to(&dir, sim.url(), QUICK));
        let d = Daemon::start_config(&dir, ports, &text);
        commit(&d, &dir, &stations(1..11), 10);
        assert!(d.stop(WAIT).success());
        damage.apply(&dir.path("state/queue.log"));
        let before: BTreeSet<_> = std::fs::read_dir(dir.path("state"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        up(&sim);
        let d = Daemon::start_config(&dir, ports, &text);
        sim.wait_items(WAIT, |_| damage_resyncs(&sim, "cm-east") == 1);
        let survived = match damage {
            Damage::FlippedByte => ids((1..11).filter(|&i| i != 5)),
            // The last record, torn: station 10's.
            Damage::Cut => ids(1..10),
            Damage::Emptied => BTreeSet::new(),
        };
        sim.wait_items(WAIT, |i| survived.is_subset(&object_ids(i, "cm-east")));
        let said = match damage {
            Damage::Emptied => "empty or missing",
            Damage::FlippedByte => "could not be read (elements they name: cm-east)",
            // The torn record's element cannot be read; the other records name it.
            Damage::Cut => "could not be read (elements they name: none)",
        };
        dir.wait_log(&[said, "queue damaged", ": cm-east"]);
        let kept: Vec<_> = std::fs::read_dir(dir.path("state"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| !before.contains(n))
            .filter(|n| n.to_string_lossy().starts_with("queue.log.damaged-"))
            .collect();
        assert_eq!(
            kept.len(),
            usize::from(!matches!(damage, Damage::Emptied)),
            "{damage:?}"
        );
        wait_module_stats(&dir, WAIT, |v| v["queue.damaged"] == 1);
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            damage_resyncs(&sim, "cm-east"),
            1,
            "{damage:?}: one, not one per record"
        );
        assert!(d.stop(WAIT).success());
    }
}

/// The `seq` record that heads the compacted log damaged, or the log deleted: numbering starts
/// over, but no Idempotency-Key System Manager has seen comes again for a new change. The
/// first run's first change is a full resync at sequence number 1, the same key and number
/// the damage's own resync gets when the numbering starts over: without the directory's epoch
/// in the key, it would repeat.
#[test]
fn idempotency_keys_never_repeat_when_the_numbering_is_lost() {
    for lose in ["seq", "log"] {
        let dir = TestDir::new();
        let sim = Sim::start(&dir, &[]);
        let body = action_to(&dir, sim.url(), QUICK);
        let d = Daemon::start(&dir, &body);
        d.send_tcp(&[syslog_line("cm-east", "cmdhist", "change cabinet 1")]);
        sim.wait_items(WAIT, |i| i.iter().any(|i| i["scope"] == "element"));
        d.send_tcp(&stations(1..6));
        sim.wait_items(WAIT, |i| ids(1..6).is_subset(&object_ids(i, "cm-east")));
        assert!(d.stop(WAIT).success());
        // A start with nothing to do compacts the log to its `seq` record. It is given a
        // moment before the stop: rsyslogd 8.2504 was seen to crash in its own imtcp thread
        // when stopped within milliseconds of its start (docs/design.md, "rsyslog versions").
        let idle = Daemon::start(&dir, &body);
        std::thread::sleep(Duration::from_millis(500));
        assert!(idle.stop(WAIT).success());
        let seen: BTreeSet<String> = sim
            .requests()
            .iter()
            .map(|r| r["idempotency_key"].as_str().unwrap().to_owned())
            .collect();
        let log = dir.path("state/queue.log");
        match lose {
            "seq" => {
                let text = std::fs::read_to_string(&log).unwrap();
                assert!(
                    text.contains("\"t\":\"seq\"") && text.lines().count() == 1,
                    "{text}"
                );
                std::fs::write(&log, text.replacen("\"next\":", "\"nxt\":", 1)).unwrap();
            }
            _ => std::fs::remove_file(&log).unwrap(),
        }
        let requests = sim.requests().len();
        let d = Daemon::start(&dir, &body);
        sim.wait_items(WAIT, |_| damage_resyncs(&sim, "cm-east") == 1);
        d.send_tcp(&stations(1..6));
        sim.wait_items(WAIT, |_| {
            let again: Vec<_> = sim.requests()[requests..]
                .iter()
                .flat_map(|r| {
                    r["body"]["requests"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                })
                .filter(|i| i["scope"] == "object")
                .collect();
            again.len() >= 5
        });
        for r in &sim.requests()[requests..] {
            let key = r["idempotency_key"].as_str().unwrap();
            assert!(!seen.contains(key), "{lose}: {key} came again");
        }
        assert!(d.stop(WAIT).success());
    }
}
