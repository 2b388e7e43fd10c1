//! Faults around the module: a full disk under state.dir. Nothing accepted is lost; the batch
//! that cannot be made durable is kept by rsyslog and retried until the disk has room.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(90);

/// A small tmpfs mounted for the test (root only), unmounted when dropped.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(at: std::path::PathBuf, size: &str) -> SmallDisk {
        std::fs::create_dir_all(&at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount tmpfs (needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk(at)
    }

    /// Fills the file system to the last byte.
    fn fill(&self) {
        let _ = Command::new("dd")
            .arg("if=/dev/zero")
            .arg(format!("of={}/filler", self.0.display()))
            .args(["bs=4k"])
            .output();
    }

    fn free(&self) {
        std::fs::remove_file(self.0.join("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn full_disk_suspends_and_everything_arrives_once_there_is_room() {
    let dir = TestDir::new();
    let disk = SmallDisk::mount(dir.path("state"), "1m");
    let sim = Sim::start(&dir, &[]);
    let extra = r#"coalesce.window.ms="200" retry.initial.ms="100" retry.max.ms="1000"
        queue.type="LinkedList" queue.size="100000" action.resumeRetryCount="-1" action.resumeInterval="1""#;
    let d = Daemon::start(&dir, &action_to(&dir, sim.url(), extra));
    // Let the queue open (and compact) while there is room, then fill the disk.
    d.send_tcp(&[syslog_line("cm-east", "cmdhist", "change station 1")]);
    sim.wait_items(WAIT, |i| !i.is_empty());
    disk.fill();
    let lines: Vec<String> = (100..300)
        .map(|i| syslog_line("cm-east", "cmdhist", &format!("change station {i}")))
        .collect();
    d.send_tcp(&lines);
    std::thread::sleep(Duration::from_secs(3));
    // What still fitted into queue.log's last allocated page was durable and may be delivered;
    // the rest must wait (200 changes need far more than the page or two that was left).
    let delivered_while_full = object_ids(&sim.resync_items(), "cm-east");
    assert!(
        delivered_while_full.len() < 100,
        "a full disk took {} changes",
        delivered_while_full.len()
    );
    disk.free();
    let want: BTreeSet<String> = (100..300).map(|i| i.to_string()).collect();
    let items = sim.wait_items(WAIT, |i| want.is_subset(&object_ids(i, "cm-east")));
    assert!(want.is_subset(&object_ids(&items, "cm-east")));
    assert!(d.stop(WAIT).success());
}

/// A background thread panics once mid-stream (a test-build fault hook): the panic is logged
/// with the thread's name, counted, the thread runs again, and every change is delivered.
#[cfg(feature = "fault-hooks")]
#[test]
fn fault_hook_panicking_background_thread_is_restarted_and_nothing_is_lost() {
    for thread in [
        "omcmsync-deliver",
        "omcmsync-post",
        "omcmsync-queue",
        "omcmsync-supervise",
        "omcmsync-ha",
    ] {
        let dir = TestDir::new();
        dir.set_env("OMCM_FAULT_PANIC", thread);
        let sim = Sim::start(&dir, &[]);
        let ports = Ports::free();
        let extra = r#"coalesce.window.ms="200" retry.initial.ms="100" retry.max.ms="1000""#;
        let text = config_with_impstats(&dir, ports, &action_to(&dir, sim.url(), extra));
        let d = Daemon::start_config(&dir, ports, &text);
        let lines = |r: std::ops::Range<u64>| -> Vec<String> {
            r.map(|i| syslog_line("cm-east", "cmdhist", &format!("change station {i}")))
                .collect()
        };
        d.send_tcp(&lines(1..11));
        std::thread::sleep(Duration::from_millis(500));
        d.send_tcp(&lines(11..21));
        let want: BTreeSet<String> = (1..21).map(|i| i.to_string()).collect();
        sim.wait_items(WAIT, |i| want.is_subset(&object_ids(i, "cm-east")));
        let log = dir.rsyslog_log();
        assert!(
            log.contains(&format!("thread {thread}")) && log.contains("fault hook"),
            "{thread}: {log}"
        );
        wait_module_stats(&dir, WAIT, |v| v["threads.restarted"] == 1);
        assert!(d.stop(WAIT).success(), "{thread}");
    }
}
