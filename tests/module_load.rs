//! The built module against the real rsyslogd: what it exports, how it loads, and how
//! `rsyslogd -N1` judges good and bad configurations.

mod common;

use common::*;

/// `rsyslogd -N1` on the standard config with an action of only `params` (plus the elements file).
fn check_action(dir: &TestDir, params: &str) -> Check {
    check_config(
        dir,
        &config(dir, Ports::free(), &action_with(dir, params)),
        &[],
    )
}

/// An action with only `params` plus the test's elements file.
fn action_with(dir: &TestDir, params: &str) -> String {
    format!(
        r#"action(type="omcmsync" name="omcmsync" elements.file="{}" {params})"#,
        dir.p("elements.json")
    )
}

#[test]
fn exports_only_mod_init() {
    let out = std::process::Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(module_path())
        .output()
        .expect("nm (binutils)");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let functions: Vec<&str> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_addr, kind, name) = (f.next()?, f.next()?, f.next()?);
            matches!(kind, "T" | "W" | "i").then_some(name)
        })
        .collect();
    assert_eq!(functions, ["modInit"], "{text}");
}

#[test]
fn good_config_passes_check() {
    let dir = TestDir::new();
    let text = config(&dir, Ports::free(), &action(&dir, ""));
    let check = check_config(&dir, &text, &[]);
    assert!(check.ok, "{}", check.output);
    assert!(
        !dir.path("trace.json").exists(),
        "-N1 must not create files"
    );
}

#[test]
fn loads_by_name_from_the_module_path() {
    let dir = TestDir::new();
    let moddir = dir.path("modules");
    std::fs::create_dir(&moddir).unwrap();
    std::os::unix::fs::symlink(module_path(), moddir.join("omcmsync.so")).unwrap();
    let text = config(&dir, Ports::free(), &action(&dir, "")).replace(
        &format!("module(load=\"{}\")", module_path().display()),
        "module(load=\"omcmsync\")",
    );
    assert!(text.contains("module(load=\"omcmsync\")"));
    let search = format!("{}:/usr/lib/x86_64-linux-gnu/rsyslog", moddir.display());
    let check = check_config(&dir, &text, &["-M", &search]);
    assert!(check.ok, "{}", check.output);
}

#[test]
fn bad_values_fail_check_naming_parameter_value_and_fix() {
    let cases = [
        (
            r#"smgr.url="ftp://smgr.example.net""#,
            "smgr.url",
            "ftp://smgr.example.net",
            "https://",
        ),
        (
            r#"smgr.url="smgr.example.net""#,
            "smgr.url",
            "smgr.example.net",
            "https://",
        ),
        (
            r#"smgr.url="https://""#,
            "smgr.url",
            "https://",
            "with a host",
        ),
        (
            r#"smgr.url="http://h" trace.file="relative.json""#,
            "trace.file",
            "relative.json",
            "absolute",
        ),
        (
            r#"smgr.url="http://h" template="""#,
            "template",
            "",
            "template name",
        ),
        (
            r#"smgr.url="http://h" duplicate.maxcount="0""#,
            "duplicate.maxcount",
            "0",
            "whole number from 1",
        ),
        (
            r#"smgr.url="http://h" line.maxlength="abc""#,
            "line.maxlength",
            "abc",
            "whole number from 1",
        ),
        (
            r#"smgr.url="http://h" capture.max="-5""#,
            "capture.max",
            "-5",
            "whole number from 1",
        ),
        (
            r#"smgr.url="http://h" capture.file="cap.json""#,
            "capture.file",
            "cap.json",
            "absolute",
        ),
        (
            r#"smgr.url="http://h" rules.file="/nonexistent/rules.json""#,
            "rules.file",
            "/nonexistent/rules.json",
            "readable JSON rule file",
        ),
        (
            r#"smgr.url="http://h" smgr.retrycodes="401,200""#,
            "smgr.retrycodes",
            "401,200",
            "outside 2xx",
        ),
        (
            r#"smgr.url="http://h" delivery.parallel="0""#,
            "delivery.parallel",
            "0",
            "whole number from 1",
        ),
    ];
    for (params, param, value, fix) in cases {
        let dir = TestDir::new();
        let check = check_action(&dir, params);
        assert!(!check.ok, "{params} accepted");
        let expected = format!("parameter '{param}' has invalid value '{value}'");
        assert!(
            check.output.contains(&expected),
            "{params}: {}",
            check.output
        );
        assert!(check.output.contains(fix), "{params}: {}", check.output);
    }
}

#[test]
fn rule_file_is_checked_by_n1() {
    let dir = TestDir::new();
    std::fs::write(dir.path("good.json"), r#"{"objects":[{"name":"widget"}]}"#).unwrap();
    std::fs::write(
        dir.path("bad.json"),
        r#"{"objects":[{"name":"widget","id":"sometimes"}]}"#,
    )
    .unwrap();
    let good = format!(
        r#"smgr.url="http://h" rules.file="{}" line.maxlength="4096""#,
        dir.p("good.json")
    );
    let check = check_action(&dir, &good);
    assert!(check.ok, "{}", check.output);
    let bad = format!(r#"smgr.url="http://h" rules.file="{}""#, dir.p("bad.json"));
    let check = check_action(&dir, &bad);
    assert!(!check.ok);
    assert!(
        check.output.contains("parameter 'rules.file'")
            && check.output.contains("objects[0]: \"id\""),
        "{}",
        check.output
    );
}

#[test]
fn missing_url_fails_check() {
    let dir = TestDir::new();
    let check = check_action(&dir, "");
    assert!(!check.ok);
    assert!(
        check.output.contains("parameter 'smgr.url' is required"),
        "{}",
        check.output
    );
}

#[test]
fn typo_in_parameter_name_fails_check() {
    let dir = TestDir::new();
    let params = r#"smgr.url="http://h" trace.fiel="/tmp/x.json""#;
    let check = check_action(&dir, params);
    assert!(!check.ok, "{}", check.output);
    assert!(
        check.output.contains("parameter 'trace.fiel' not known"),
        "{}",
        check.output
    );
}

#[test]
fn undefined_template_fails_check() {
    let dir = TestDir::new();
    let params = r#"smgr.url="http://h" template="no_such_template""#;
    let check = check_action(&dir, params);
    assert!(!check.ok, "{}", check.output);
    assert!(
        check.output.contains("no_such_template"),
        "{}",
        check.output
    );
}

/// A password in a URL would reach every log line that names the URL: `-N1` refuses it, points
/// to the parameters for credentials, and does not echo it.
#[test]
fn credentials_in_urls_fail_check_without_echoing_them() {
    for params in [
        r#"smgr.url="http://admin:s3cr3t-pw@smgr.example.net""#,
        r#"smgr.url="http://smgr.example.net" ha.mode="http" ha.url="https://ha:s3cr3t-pw@smgr.example.net/ha""#,
        r#"smgr.url="http://admin:s3cr3t-pw@[zz]/""#,
    ] {
        let dir = TestDir::new();
        let check = check_action(&dir, params);
        assert!(!check.ok, "{params} accepted");
        assert!(!check.output.contains("s3cr3t-pw"), "{}", check.output);
        assert!(check.output.contains("***@"), "{}", check.output);
    }
    let dir = TestDir::new();
    let check = check_action(
        &dir,
        r#"smgr.url="http://admin:s3cr3t-pw@smgr.example.net""#,
    );
    assert!(
        check.output.contains("smgr.user and smgr.passwordfile"),
        "{}",
        check.output
    );
}
