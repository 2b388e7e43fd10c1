//! Lossless failover with the real rsyslogd: a standby keeps what it hears, durably, and
//! delivers it the moment it becomes active; an active node that turns standby holds what it
//! has; `ha.standby="drop"` keeps SMGR's own semantics.

mod common;

use std::collections::BTreeSet;
use std::ops::Range;
use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(60);
const QUICK: &str =
    r#"coalesce.window.ms="200" retry.initial.ms="100" retry.max.ms="1000" ha.interval.ms="200""#;

fn stations(ids: Range<u32>) -> Vec<String> {
    ids.map(|i| syslog_line("cm-east", "cmdhist", &format!("change station {i}")))
        .collect()
}

/// One SMGR-side node: its rsyslogd's directory, its role file and its System Manager.
struct Node {
    dir: TestDir,
    sim: Sim,
    body: String,
    ports: Ports,
}

impl Node {
    /// A node whose role is in a file.
    fn new(role: &str, extra: &str) -> Node {
        Node::with_role_from("file", role, extra)
    }

    /// `source`: `file` (a role file) or `http` (its System Manager's `/ha`, as smgr-sim
    /// serves it).
    fn with_role_from(source: &str, role: &str, extra: &str) -> Node {
        let dir = TestDir::new();
        let sim = Sim::start(&dir, &[]);
        std::fs::write(dir.path("role"), role).unwrap();
        sim.control("/sim/role", serde_json::json!({ "role": role }));
        let ha = match source {
            "http" => format!(r#"ha.mode="http" ha.url="{}/ha""#, sim.url()),
            _ => format!(r#"ha.mode="file" ha.file="{}""#, dir.p("role")),
        };
        let body = action_to(&dir, sim.url(), &format!("{QUICK} {ha} {extra}"));
        Node {
            dir,
            sim,
            body,
            ports: Ports::free(),
        }
    }

    fn start(&self) -> Daemon {
        let text = config_with_impstats(&self.dir, self.ports, &self.body);
        Daemon::start_config(&self.dir, self.ports, &text)
    }

    fn set_role(&self, role: &str) {
        std::fs::write(self.dir.path("role"), role).unwrap();
        self.sim
            .control("/sim/role", serde_json::json!({ "role": role }));
    }

    fn delivered(&self) -> BTreeSet<String> {
        object_ids(&self.sim.resync_items(), "cm-east")
    }

    /// Waits until the module's trace shows `n` records (each batch's, once committed).
    fn wait_traced(&self, n: usize) {
        wait_json_lines(&self.dir.path("trace.json"), n, WAIT);
    }
}

/// A active, B standby, both fed the same stream as CM feeds them. A's System Manager is down;
/// A is killed (-9) in the middle of the stream; more changes arrive, heard by B alone; B is
/// promoted (its role from a file, then from System Manager's HTTP endpoint). Every station
/// changed at any point reaches B's System Manager, and the ones B held carry
/// `origin: "standby"`.
#[test]
fn the_standby_delivers_everything_once_promoted() {
    for source in ["file", "http"] {
        failover(source);
    }
}

fn failover(source: &str) {
    let a = Node::with_role_from(source, "active", "");
    let b = Node::with_role_from(source, "standby", "");
    a.sim
        .control("/sim/fault", serde_json::json!({"down_s": 3600}));
    let da = a.start();
    let db = b.start();
    for d in [&da, &db] {
        d.send_tcp(&stations(1..21));
    }
    a.wait_traced(20);
    b.wait_traced(20);
    da.kill9();
    db.send_tcp(&stations(21..41));
    b.wait_traced(40);
    std::thread::sleep(Duration::from_millis(600));
    assert!(
        b.delivered().is_empty(),
        "a standby posts nothing: {:?}",
        b.delivered()
    );
    b.set_role("active");
    b.sim
        .wait_items(WAIT, |i| ids(1..41).is_subset(&object_ids(i, "cm-east")));
    let items = b.sim.resync_items();
    assert!(
        items
            .iter()
            .filter(|i| i["scope"] == "object")
            .all(|i| i["origin"] == "standby"),
        "held requests say where they come from: {items:?}"
    );
    let stats = wait_module_stats(&b.dir, WAIT, |v| v["standby.released"] == 40);
    assert_eq!(stats["standby.held"], 40, "{source}: {stats}");
    let traced = read_json_lines(&b.dir.path("trace.json"));
    assert!(
        traced.iter().all(|r| r["outcome"] == "held"),
        "{source}: the trace says held"
    );
    assert!(db.stop(WAIT).success());
}

/// A standby that is never promoted posts nothing, and what it holds longer than the
/// retention is dropped and counted.
#[test]
fn a_standby_never_promoted_expires_what_it_holds() {
    let b = Node::new("standby", r#"ha.standby.retain.ms="1500""#);
    let d = b.start();
    d.send_tcp(&stations(1..11));
    b.wait_traced(10);
    let stats = wait_module_stats(&b.dir, WAIT, |v| v["standby.expired"] == 10);
    assert_eq!(stats["keys.pending"], 0, "{stats}");
    assert_eq!(stats["ha.role"], 1, "the role gauge: standby");
    assert!(b.sim.requests().is_empty());
    assert!(d.stop(WAIT).success());
}

/// kill -9 of a standby, a restart, a promotion: what it held survives.
#[test]
fn held_keys_survive_kill9_of_the_standby() {
    let b = Node::new("standby", "");
    let d = b.start();
    d.send_tcp(&stations(1..11));
    b.wait_traced(10);
    d.kill9();
    let d = b.start();
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        b.sim.requests().is_empty(),
        "still standby after the restart"
    );
    b.set_role("active");
    b.sim
        .wait_items(WAIT, |i| ids(1..11).is_subset(&object_ids(i, "cm-east")));
    assert!(d.stop(WAIT).success());
}

/// The old active restarts as standby with keys it could not deliver: it posts nothing, and
/// releases them when it is promoted again.
#[test]
fn a_demoted_node_holds_its_keys_until_promoted_again() {
    let a = Node::new("active", "");
    a.sim
        .control("/sim/fault", serde_json::json!({"down_s": 3600}));
    let d = a.start();
    d.send_tcp(&stations(1..11));
    a.wait_traced(10);
    assert!(d.stop(WAIT).success());
    a.set_role("standby");
    a.sim
        .control("/sim/fault", serde_json::json!({"clear": true}));
    let d = a.start();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(a.sim.requests().is_empty(), "a standby posts nothing");
    a.set_role("active");
    a.sim
        .wait_items(WAIT, |i| ids(1..11).is_subset(&object_ids(i, "cm-east")));
    assert!(d.stop(WAIT).success());
}

/// `ha.standby="drop"`: today's semantics, SMGR's own: the standby drops what it hears.
#[test]
fn drop_mode_drops_on_the_standby() {
    let b = Node::new("standby", r#"ha.standby="drop""#);
    let d = b.start();
    d.send_tcp(&stations(1..11));
    b.wait_traced(10);
    let stats = wait_module_stats(&b.dir, WAIT, |v| v["dropped.standby"] == 10);
    assert_eq!(stats["keys.pending"], 0, "{stats}");
    b.set_role("active");
    std::thread::sleep(Duration::from_millis(1000));
    assert!(b.sim.requests().is_empty(), "nothing was kept to deliver");
    assert!(d.stop(WAIT).success());
}
