//! Degrade, never drop: a real start of rsyslogd (with its own omfile action beside ours) while
//! a file or program a parameter names is missing runs the action degraded: every change sent
//! meanwhile is kept (queued by the module, or by rsyslog while the action is suspended), the
//! problem is logged once, shown by `omcmsync status` and counted in impstats, and once the
//! file appears (noticed by itself, or at a HUP) every change is delivered and the recovery is
//! logged once. `rsyslogd -N1` still refuses each of these configurations.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;

const WAIT: Duration = Duration::from_secs(30);
const QUICK: &str = r#"coalesce.window.ms="200" retry.initial.ms="100" retry.max.ms="1000""#;

/// As the shipped snippets: a queue of its own, rsyslog retrying a suspended action forever,
/// every second.
const HELD: &str =
    r#"queue.type="LinkedList" action.resumeRetryCount="-1" action.resumeInterval="1""#;

/// One parameter whose file or program is missing at start.
struct Case {
    /// The parameter the problem is reported under.
    param: &'static str,
    /// The action's parameters besides the usual ones (`{late}` stands for a directory
    /// that does not exist at start; `{pki}` for the test's certificates).
    extra: &'static str,
    /// How the simulator serves: plain, one-way or two-way TLS, with a token.
    sim: SimKind,
    /// Whether changes wait while it is missing (false: `ha.onunknown` processes them).
    held: bool,
    /// Whether the fix is followed by a HUP (else the module notices by itself).
    hup: bool,
    /// The lines sent: three changes of stations 1 to 3 unless given.
    lines: &'static [&'static str],
    /// Makes the missing file appear.
    fix: fn(&TestDir),
}

#[derive(Clone, Copy, PartialEq)]
enum SimKind {
    Plain,
    Token,
    OneWay,
    TwoWay,
}

const STATIONS: &[&str] = &["change station 1", "change station 2", "change station 3"];

fn late(dir: &TestDir) -> std::path::PathBuf {
    let late = dir.path("late");
    std::fs::create_dir_all(&late).unwrap();
    late
}

fn copy_pki(dir: &TestDir, names: &[&str]) {
    let late = late(dir);
    for name in names {
        std::fs::copy(dir.path("pki").join(name), late.join(name)).unwrap();
    }
}

fn write_program(path: &std::path::Path, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, script).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The ids of the objects delivered: to the simulator, or by the `smgr.command` case's
/// program into `late/delivered`.
fn delivered(dir: &TestDir, sim: &Sim) -> BTreeSet<String> {
    let mut ids = object_ids(&sim.resync_items(), "cm-east");
    let by_program = std::fs::read_to_string(dir.path("late/delivered")).unwrap_or_default();
    for body in by_program.lines() {
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        for r in body["requests"].as_array().into_iter().flatten() {
            ids.insert(r["id"].as_str().unwrap_or_default().to_owned());
        }
    }
    ids
}

fn start_sim(dir: &TestDir, kind: SimKind) -> (Sim, String) {
    let pki = dir.p("pki");
    let (cert, key, ca) = (
        format!("{pki}/server.pem"),
        format!("{pki}/server-key.pem"),
        format!("{pki}/ca.pem"),
    );
    let mut args = vec![];
    match kind {
        SimKind::Plain => {}
        SimKind::Token => args.extend(["--token", "t0ken"]),
        SimKind::OneWay | SimKind::TwoWay => {
            args.extend(["--https", "127.0.0.1:0", "--cert", &cert, "--key", &key]);
            if kind == SimKind::TwoWay {
                args.extend(["--client-ca", &ca]);
            }
        }
    }
    let sim = Sim::start(dir, &args);
    let url = match kind {
        SimKind::OneWay | SimKind::TwoWay => sim.https.clone().unwrap(),
        _ => sim.url().to_owned(),
    };
    (sim, url)
}

/// Lines of the module's log that name `param` as a problem, and those saying it is gone.
fn problem_lines(dir: &TestDir, param: &str) -> (usize, usize) {
    let log = dir.rsyslog_log();
    let named = format!("omcmsync: {param}: ");
    let resolved = format!("omcmsync: {param}: resolved");
    let all = log.lines().filter(|l| l.contains(&named)).count();
    let gone = log.lines().filter(|l| l.contains(&resolved)).count();
    (all - gone, gone)
}

fn run(case: Case) {
    let dir = TestDir::new();
    gen_certs(&dir, "pki");
    let (sim, url) = start_sim(&dir, case.sim);
    let extra = case
        .extra
        .replace("{late}", &dir.p("late"))
        .replace("{pki}", &dir.p("pki"));
    let body = action_to(&dir, &url, &format!("{QUICK} {HELD} {extra}"));
    // A role file is read at run time only (its absence is a role, "unknown").
    if case.param != "ha.file" {
        let check = check_config(&dir, &config(&dir, Ports::free(), &body), &[]);
        assert!(
            !check.ok && check.output.contains(case.param),
            "{}: -N1 must refuse: {}",
            case.param,
            check.output
        );
    }

    let ports = Ports::free();
    let d = Daemon::start_config(&dir, ports, &config_with_impstats(&dir, ports, &body));
    let lines: Vec<String> = case
        .lines
        .iter()
        .map(|l| syslog_line("cm-east", "cmdhist", l))
        .collect();
    d.send_tcp(&lines);
    let want: BTreeSet<String> = ["1", "2", "3"].map(String::from).into();
    if case.held {
        let status = wait_problem(&dir, case.param);
        assert!(status.to_string().contains(case.param), "{status}");
        wait_module_stats(&dir, WAIT, |v| v["degraded"].as_u64() >= Some(1));
        std::thread::sleep(Duration::from_secs(2));
        assert!(
            delivered(&dir, &sim).is_empty(),
            "{}: nothing can be delivered yet",
            case.param
        );
        assert_eq!(
            problem_lines(&dir, case.param),
            (1, 0),
            "{}",
            dir.rsyslog_log()
        );
    } else {
        // The role cannot be read: processed meanwhile (ha.onunknown's default).
        wait_until(&dir, case.param, || delivered(&dir, &sim) == want);
        wait_problem(&dir, case.param);
    }

    (case.fix)(&dir);
    if case.hup {
        d.signal(libc::SIGHUP);
    }
    let fixed = Instant::now();
    wait_until(&dir, case.param, || delivered(&dir, &sim) == want);
    if case.held {
        // Noticed within seconds without a HUP (the file is looked for every second).
        assert!(
            fixed.elapsed() < Duration::from_secs(10),
            "{:?}",
            fixed.elapsed()
        );
        wait_until(&dir, case.param, || {
            problem_lines(&dir, case.param) == (1, 1)
        });
    } else {
        // The gate says it, once each way.
        wait_until(&dir, case.param, || {
            let log = dir.rsyslog_log();
            log.matches("the role cannot be read").count() == 1
                && log.matches("the role reads again").count() == 1
        });
    }
    let deadline = Instant::now() + WAIT;
    while module_status(&dir.path("state"), WAIT)["problems"] != serde_json::json!([]) {
        assert!(
            Instant::now() < deadline,
            "{}: problem still shown",
            case.param
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(d.stop(WAIT).success(), "{}", case.param);
}

/// Waits until `omcmsync status` names `param` as a problem; returns the status.
fn wait_problem(dir: &TestDir, param: &str) -> serde_json::Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let s = module_status(&dir.path("state"), WAIT);
        let named = s["problems"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["param"] == param);
        if named {
            return s;
        }
        assert!(Instant::now() < deadline, "status never named {param}: {s}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_until(dir: &TestDir, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what}: not done after {WAIT:?}: {}",
            dir.rsyslog_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn missing_ca_certificate() {
    run(Case {
        param: "smgr.tls.cacert",
        extra: r#"smgr.tls.cacert="{late}/ca.pem""#,
        sim: SimKind::OneWay,
        held: true,
        hup: false,
        lines: STATIONS,
        fix: |dir| copy_pki(dir, &["ca.pem"]),
    });
}

#[test]
fn missing_client_certificate_and_key() {
    run(Case {
        param: "smgr.tls.mycert",
        extra: r#"smgr.tls.cacert="{pki}/ca.pem" smgr.tls.mycert="{late}/client.pem" smgr.tls.myprivkey="{late}/client-key.pem""#,
        sim: SimKind::TwoWay,
        held: true,
        hup: true,
        lines: STATIONS,
        fix: |dir| copy_pki(dir, &["client-key.pem", "client.pem"]),
    });
}

/// An expired client certificate is refused by name at start (not only by the server's alert),
/// the changes held; a renewed one and a HUP deliver them.
#[test]
fn expired_client_certificate() {
    run(Case {
        param: "smgr.tls.mycert",
        extra: r#"smgr.tls.cacert="{pki}/ca.pem" smgr.tls.mycert="{pki}/expired-client.pem" smgr.tls.myprivkey="{pki}/expired-client-key.pem""#,
        sim: SimKind::TwoWay,
        held: true,
        hup: true,
        lines: STATIONS,
        fix: |dir| {
            let pki = dir.path("pki");
            for (from, to) in [
                ("client-key.pem", "expired-client-key.pem"),
                ("client.pem", "expired-client.pem"),
            ] {
                std::fs::copy(pki.join(from), pki.join(to)).unwrap();
            }
        },
    });
}

#[test]
fn missing_token_file() {
    run(Case {
        param: "smgr.tokenfile",
        extra: r#"smgr.tokenfile="{late}/token""#,
        sim: SimKind::Token,
        held: true,
        hup: true,
        lines: STATIONS,
        fix: |dir| std::fs::write(late(dir).join("token"), "t0ken\n").unwrap(),
    });
}

#[test]
fn missing_password_file() {
    run(Case {
        param: "smgr.passwordfile",
        extra: r#"smgr.user="omcmsync" smgr.passwordfile="{late}/password""#,
        sim: SimKind::Plain,
        held: true,
        hup: false,
        lines: STATIONS,
        fix: |dir| std::fs::write(late(dir).join("password"), "s3cret\n").unwrap(),
    });
}

#[test]
fn missing_delivery_program() {
    run(Case {
        param: "smgr.command",
        extra: r#"smgr.transport="command" smgr.command="{late}/deliver""#,
        sim: SimKind::Plain,
        held: true,
        hup: false,
        lines: STATIONS,
        fix: |dir| {
            let out = late(dir).join("delivered");
            let script = format!("#!/bin/sh\n{{ cat; echo; }} >> {}\n", out.display());
            write_program(&late(dir).join("deliver.tmp"), &script);
            std::fs::rename(late(dir).join("deliver.tmp"), late(dir).join("deliver")).unwrap();
        },
    });
}

/// The classifier needs the site's object types: lines wait (rsyslog keeps them) until the
/// rule file can be read, then a type only it defines is delivered.
#[test]
fn missing_rules_file() {
    run(Case {
        param: "rules.file",
        extra: r#"rules.file="{late}/rules.json""#,
        sim: SimKind::Plain,
        held: true,
        hup: true,
        lines: &["change widget 1", "change widget 2", "change widget 3"],
        fix: |dir| {
            let rules = r#"{"objects":[{"name":"widget"}]}"#;
            std::fs::write(late(dir).join("rules.json"), rules).unwrap();
        },
    });
}

#[test]
fn missing_ha_program() {
    run(Case {
        param: "ha.command",
        extra: r#"ha.mode="command" ha.command="{late}/is-active" ha.interval.ms="500""#,
        sim: SimKind::Plain,
        held: false,
        hup: false,
        lines: STATIONS,
        fix: |dir| write_program(&late(dir).join("is-active"), "#!/bin/sh\nexit 0\n"),
    });
}

#[test]
fn missing_ha_file() {
    run(Case {
        param: "ha.file",
        extra: r#"ha.mode="file" ha.file="{late}/role" ha.interval.ms="500""#,
        sim: SimKind::Plain,
        held: false,
        hup: true,
        lines: STATIONS,
        fix: |dir| std::fs::write(late(dir).join("role"), "active\n").unwrap(),
    });
}

/// A state directory that cannot be made at start (where its parent should be is a file): the
/// action is suspended, so rsyslog's queue keeps the lines; once the directory can be made the
/// start succeeds by itself and every change is delivered. Said once each way.
#[test]
fn unusable_state_directory() {
    let dir = TestDir::new();
    std::fs::write(dir.path("late"), "not a directory\n").unwrap();
    let sim = Sim::start(&dir, &[]);
    let state = dir.path("late/state");
    let body = format!(
        r#"action(type="omcmsync" name="omcmsync" smgr.url="{}" elements.file="{}" state.dir="{}" {QUICK} {HELD})"#,
        sim.url(),
        dir.p("elements.json"),
        state.display()
    );
    let check = check_config(&dir, &config(&dir, Ports::free(), &body), &[]);
    assert!(
        !check.ok && check.output.contains("state.dir"),
        "{}",
        check.output
    );
    let d = Daemon::start(&dir, &body);
    let lines: Vec<String> = STATIONS
        .iter()
        .map(|l| syslog_line("cm-east", "cmdhist", l))
        .collect();
    d.send_tcp(&lines);
    std::thread::sleep(Duration::from_secs(7));
    assert!(sim.resync_items().is_empty());
    assert_eq!(
        problem_lines(&dir, "state.dir"),
        (1, 0),
        "{}",
        dir.rsyslog_log()
    );
    std::fs::remove_file(dir.path("late")).unwrap();
    let want: BTreeSet<String> = ["1", "2", "3"].map(String::from).into();
    wait_until(&dir, "state.dir", || delivered(&dir, &sim) == want);
    wait_until(&dir, "state.dir", || {
        problem_lines(&dir, "state.dir") == (1, 1)
    });
    assert!(d.stop(WAIT).success());
}

/// A trace file whose directory is missing: nothing waits for it, the problem is shown and
/// said once, and the file is written once the directory exists.
#[test]
fn missing_trace_directory() {
    let dir = TestDir::new();
    let sim = Sim::start(&dir, &[]);
    let trace = dir.path("late/trace.json");
    let body = format!(
        r#"action(type="omcmsync" name="omcmsync" smgr.url="{}" elements.file="{}" state.dir="{}" trace.file="{}" {QUICK})"#,
        sim.url(),
        dir.p("elements.json"),
        dir.p("state"),
        trace.display()
    );
    let d = Daemon::start(&dir, &body);
    d.send_tcp(&[syslog_line("cm-east", "cmdhist", "change station 1")]);
    sim.wait_items(WAIT, |i| object_ids(i, "cm-east").contains("1"));
    wait_problem(&dir, "trace.file");
    std::fs::create_dir_all(dir.path("late")).unwrap();
    d.send_tcp(&[syslog_line("cm-east", "cmdhist", "change station 2")]);
    wait_json_lines(&trace, 1, WAIT);
    wait_until(&dir, "trace.file", || {
        problem_lines(&dir, "trace.file") == (1, 1)
    });
    assert!(d.stop(WAIT).success());
}

/// Nothing waits for the role: with an HA endpoint that accepts and never answers, or a
/// command that sleeps, the first change is delivered within 2 s by default
/// (`ha.onunknown="process"`); with `ha.onunknown="drop"` it is dropped and counted.
#[test]
fn a_hanging_role_check_delays_nothing() {
    let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        r#"ha.mode="http" ha.url="http://127.0.0.1:{}/ha""#,
        hang.local_addr().unwrap().port()
    );
    let command = r#"ha.mode="command" ha.command="sleep 30""#.to_owned();
    for ha in [url, command] {
        let dir = TestDir::new();
        let sim = Sim::start(&dir, &[]);
        let d = Daemon::start(&dir, &action_to(&dir, sim.url(), &format!("{QUICK} {ha}")));
        let sent = Instant::now();
        d.send_tcp(&[syslog_line("cm-east", "cmdhist", "change station 1")]);
        sim.wait_items(WAIT, |i| object_ids(i, "cm-east").contains("1"));
        assert!(
            sent.elapsed() < Duration::from_secs(2),
            "{ha}: delivered after {:?}",
            sent.elapsed()
        );
        assert!(d.stop(WAIT).success());

        let dir = TestDir::new();
        let ports = Ports::free();
        let body = action_to(
            &dir,
            sim.url(),
            &format!(r#"{QUICK} {ha} ha.onunknown="drop""#),
        );
        let d = Daemon::start_config(&dir, ports, &config_with_impstats(&dir, ports, &body));
        dir.wait_log(&["the role cannot be read"]);
        d.send_tcp(&[syslog_line("cm-east", "cmdhist", "change station 2")]);
        wait_module_stats(&dir, WAIT, |v| v["dropped.unknown"] == 1);
        assert!(d.stop(WAIT).success());
    }
}

/// The pids a program wrote into `file`, one per line.
fn pids(file: &std::path::Path) -> Vec<i32> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

/// After rsyslogd stops, no process of an `ha.command` or `smgr.command` that was still
/// running is left, children included.
#[test]
fn no_program_outlives_the_daemon() {
    let dir = TestDir::new();
    let sim = Sim::start(&dir, &[]);
    let record = dir.path("pids");
    let sleeper = dir.path("sleeper");
    let script = format!(
        "#!/bin/sh\nsleep 60 &\necho $$ $! >> {}\nwait\n",
        record.display()
    );
    write_program(&sleeper, &script);
    let extra = format!(
        r#"{QUICK} ha.mode="command" ha.command="{s}" ha.interval.ms="1500" ha.onunknown="process" smgr.transport="command" smgr.command="{s}" smgr.timeout.ms="60000""#,
        s = sleeper.display()
    );
    let d = Daemon::start(&dir, &action_to(&dir, sim.url(), &extra));
    d.send_tcp(&[syslog_line("cm-east", "cmdhist", "change station 1")]);
    // The first role read (cut at 1 s), the delivery, and a second role read running.
    let deadline = Instant::now() + WAIT;
    while pids(&record).len() < 6 {
        assert!(
            Instant::now() < deadline,
            "programs started: {:?}",
            pids(&record)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let running: Vec<i32> = pids(&record).into_iter().filter(|&p| alive(p)).collect();
    assert!(running.len() >= 4, "two runs going: {running:?}");
    assert!(d.stop(WAIT).success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids(&record).into_iter().any(alive) {
        let left: Vec<i32> = pids(&record).into_iter().filter(|&p| alive(p)).collect();
        assert!(Instant::now() < deadline, "left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A token sent over plain http to another host fails `rsyslogd -N1`, naming both.
#[test]
fn credentials_in_clear_fail_the_check() {
    let dir = TestDir::new();
    std::fs::write(dir.path("token"), "t0ken\n").unwrap();
    let extra = format!(r#"smgr.tokenfile="{}""#, dir.p("token"));
    let body = action_to(&dir, "http://smgr.example.net", &extra);
    let check = check_config(&dir, &config(&dir, Ports::free(), &body), &[]);
    assert!(
        !check.ok && check.output.contains("smgr.url") && check.output.contains("smgr.tokenfile"),
        "{}",
        check.output
    );
    let body = action_to(
        &dir,
        "http://smgr.example.net",
        &format!(r#"{extra} smgr.allowcleartext="on""#),
    );
    let check = check_config(&dir, &config(&dir, Ports::free(), &body), &[]);
    assert!(check.ok, "{}", check.output);
}

/// A dead-letter file whose directory is missing: the refused request is not dropped. It
/// stays queued (said once, shown in status), is refused again while the directory is
/// missing, and is recorded once the directory exists.
#[test]
fn missing_deadletter_directory() {
    let dir = TestDir::new();
    let sim = Sim::start(&dir, &[]);
    sim.control("/sim/fault", serde_json::json!({"status": 400, "id": "1"}));
    let file = dir.path("late/deadletter.json");
    let extra = format!(r#"{QUICK} deadletter.file="{}""#, file.display());
    let d = Daemon::start(&dir, &action_to(&dir, sim.url(), &extra));
    d.send_tcp(&[syslog_line("cm-east", "cmdhist", "change station 1")]);
    let status = wait_problem(&dir, "deadletter.file");
    let east = status["elements"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["name"] == "cm-east")
        .cloned()
        .unwrap_or_default();
    let kept = east["pending"].as_u64().unwrap_or(0) + east["in_flight"].as_u64().unwrap_or(0);
    assert_eq!(kept, 1, "the refused request stays queued: {status}");
    // Refused again (sent every 5 s) while it cannot be recorded: a later answer.
    let answered = || {
        let s = module_status(&dir.path("state"), WAIT);
        let east = s["elements"].as_array().into_iter().flatten();
        east.filter(|e| e["name"] == "cm-east")
            .find_map(|e| e["last_answer_at"].as_str().map(str::to_owned))
    };
    let first = answered();
    assert!(first.is_some(), "refused once");
    wait_until(&dir, "sent again", || answered() != first);
    std::fs::create_dir_all(dir.path("late")).unwrap();
    let records = wait_json_lines(&file, 1, WAIT);
    assert!(
        records[0]["body"].to_string().contains("\"1\""),
        "{records:?}"
    );
    let param = "deadletter.file";
    wait_until(&dir, param, || problem_lines(&dir, param) == (1, 1));
    assert!(d.stop(WAIT).success());
}

/// The site's `config.file` missing at a real start, then holding a bad value: the action
/// waits (said once per reason), rsyslog keeps the changes; once the file is right the action
/// starts by itself, without a restart or HUP, every change is delivered and its counters
/// reach impstats. `-N1` refuses it.
#[test]
fn a_config_file_that_cannot_be_used_holds_changes_until_it_can() {
    let dir = TestDir::new();
    let sim = Sim::start(&dir, &[]);
    let site = dir.path("site/omcmsync.conf");
    let body = format!(
        r#"action(type="omcmsync" name="omcmsync" config.file="{}" state.dir="{}" {QUICK} {HELD})"#,
        site.display(),
        dir.p("state")
    );
    let check = check_config(&dir, &config(&dir, Ports::free(), &body), &[]);
    assert!(
        !check.ok && check.output.contains("config.file"),
        "{}",
        check.output
    );

    let ports = Ports::free();
    let d = Daemon::start_config(&dir, ports, &config_with_impstats(&dir, ports, &body));
    let lines: Vec<String> = STATIONS
        .iter()
        .map(|l| syslog_line("cm-east", "cmdhist", l))
        .collect();
    d.send_tcp(&lines);
    dir.wait_log(&["parameter 'config.file' has invalid value", "waits for it"]);
    std::thread::sleep(Duration::from_secs(2));
    assert!(object_ids(&sim.resync_items(), "cm-east").is_empty());

    std::fs::create_dir(dir.path("site")).unwrap();
    let elements = format!("elements.file=\"{}\"\n", dir.p("elements.json"));
    std::fs::write(&site, format!("smgr.url=\"smgr.example.net\"\n{elements}")).unwrap();
    dir.wait_log(&["parameter 'smgr.url' has invalid value 'smgr.example.net'"]);
    assert!(object_ids(&sim.resync_items(), "cm-east").is_empty());

    std::fs::write(&site, format!("smgr.url=\"{}\"\n{elements}", sim.url())).unwrap();
    let want: BTreeSet<String> = ["1", "2", "3"].map(String::from).into();
    sim.wait_items(Duration::from_secs(90), |items| {
        object_ids(items, "cm-east") == want
    });
    // rsyslog writes its internal messages on its own time: the changes may arrive first.
    dir.wait_log(&["config.file can be used now"]);
    let log = dir.rsyslog_log();
    assert_eq!(log.matches("waits for it").count(), 2, "{log}");
    assert_eq!(
        log.matches("config.file can be used now").count(),
        1,
        "{log}"
    );
    // Its counters reach impstats from the start it made late.
    wait_module_stats(&dir, WAIT, |v| v["lines.received"].as_u64() == Some(3));
    assert!(d.stop(WAIT).success());
}
