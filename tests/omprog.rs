//! The omprog mode with the real rsyslogd's omprog: lines in, resync requests out, and a
//! refused configuration reported by the program.

mod common;

use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(60);

fn omprog_action(dir: &TestDir, conf: &str) -> String {
    format!(
        r#"action(type="omprog" name="omcmsync" binary="{} omprog --config {conf}"
       template="omcmsync_omprog" confirmMessages="on" reportFailures="on" output="{}"
       queue.type="LinkedList" action.resumeRetryCount="-1" action.resumeInterval="1")"#,
        env!("CARGO_BIN_EXE_omcmsync"),
        dir.p("omprog.out")
    )
}

#[test]
fn omprog_mode_delivers_like_the_module() {
    let dir = TestDir::new();
    let sim = Sim::start(&dir, &[]);
    let conf = dir.p("omprog.conf");
    std::fs::write(
        &conf,
        format!(
            "# same names as the module's parameters\nsmgr.url=\"{}\"\nelements.file=\"{}\"\nstate.dir=\"{}\"\ncoalesce.window.ms=\"200\"\n",
            sim.url(),
            dir.p("elements.json"),
            dir.p("state")
        ),
    )
    .unwrap();
    let ports = Ports::free();
    let text = config(&dir, ports, &omprog_action(&dir, &conf)).replace(
        "module(load=\"imtcp\")",
        "module(load=\"imtcp\")\nmodule(load=\"omprog\")",
    );
    let d = Daemon::start_config(&dir, ports, &text);
    let mut lines: Vec<String> = (1..=5)
        .map(|i| {
            syslog_line(
                "cm-east",
                "cmdhist",
                &format!("11/25 10:15 SAT dadmin chan station {i}"),
            )
        })
        .collect();
    lines.push(syslog_line("cm-east", "x", "IPEVT IPT_REG board=PROCR"));
    d.send_tcp(&lines);
    let items = sim.wait_items(WAIT, |i| object_ids(i, "cm-east").len() == 5);
    assert_eq!(
        object_ids(&items, "cm-east"),
        (1..=5).map(|i| i.to_string()).collect()
    );
    assert!(d.stop(WAIT).success());
}

#[test]
fn omprog_config_errors_name_the_parameter() {
    let dir = TestDir::new();
    let conf = dir.path("omprog.conf");
    std::fs::write(
        &conf,
        "smgr.url=\"smgr.example.net\"\nelements.source=\"smgr\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_omcmsync"))
        .args(["omprog", "--config"])
        .arg(&conf)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("parameter 'smgr.url' has invalid value 'smgr.example.net'"),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "must not say OK with a bad configuration"
    );
}
