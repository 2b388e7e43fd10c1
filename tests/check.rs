//! `omcmsync check` against a real System Manager stand-in (smgr-sim over HTTPS with client
//! certificates and a bearer token) and the real rsyslogd for `--rsyslog-conf`: a good setup
//! passes; each broken part fails with its own line.

mod common;

use std::process::Output;

use common::*;

const TOKEN: &str = "s3cr3t-token";

struct Setup {
    dir: TestDir,
    pki: String,
    sim: Sim,
}

impl Setup {
    fn new() -> Setup {
        let dir = TestDir::new();
        let pki = gen_certs(&dir, "pki");
        let (cert, key, ca) = (
            format!("{pki}/server.pem"),
            format!("{pki}/server-key.pem"),
            format!("{pki}/ca.pem"),
        );
        let sim = Sim::start(
            &dir,
            &[
                "--https",
                "127.0.0.1:0",
                "--cert",
                &cert,
                "--key",
                &key,
                "--client-ca",
                &ca,
                "--token",
                TOKEN,
            ],
        );
        std::fs::write(dir.path("token"), TOKEN).unwrap();
        std::fs::write(dir.path("wrong-token"), "not-the-token").unwrap();
        std::fs::write(dir.path("role"), "active\n").unwrap();
        Setup { dir, pki, sim }
    }

    /// The good parameters, with `changes` replacing or adding some (an empty value removes).
    fn params(&self, changes: &[(&str, String)]) -> Vec<(String, String)> {
        let (d, pki) = (&self.dir, &self.pki);
        let mut p: Vec<(String, String)> = [
            ("smgr.url", self.sim.https.clone().unwrap()),
            ("smgr.tls.cacert", format!("{pki}/ca.pem")),
            ("smgr.tls.mycert", format!("{pki}/client.pem")),
            ("smgr.tls.myprivkey", format!("{pki}/client-key.pem")),
            ("smgr.tokenfile", d.p("token")),
            ("elements.file", d.p("elements.json")),
            ("state.dir", d.p("state")),
            ("ha.mode", "file".into()),
            ("ha.file", d.p("role")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for (k, v) in changes {
            p.retain(|(n, _)| n != k);
            if !v.is_empty() {
                p.push((k.to_string(), v.clone()));
            }
        }
        p
    }

    /// `omcmsync check --config FILE` with those parameters.
    fn check(&self, changes: &[(&str, String)]) -> (Option<i32>, String) {
        let file = self.dir.path("action.conf");
        let text: String = self
            .params(changes)
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect();
        std::fs::write(&file, text).unwrap();
        result(
            std::process::Command::new(env!("CARGO_BIN_EXE_omcmsync"))
                .args(["check", "--config"])
                .arg(&file)
                .output()
                .unwrap(),
        )
    }
}

fn result(out: Output) -> (Option<i32>, String) {
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

/// The line of check `what`, which must say `status`.
fn line<'a>(text: &'a str, status: &str, what: &str) -> &'a str {
    let prefix = format!("{status}  {what} ");
    text.lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no '{prefix}' line in:\n{text}"))
}

#[test]
fn a_good_setup_passes() {
    let s = Setup::new();
    let (code, text) = s.check(&[]);
    assert_eq!(code, Some(0), "{text}");
    for what in [
        "parameters",
        "state.dir",
        "smgr tcp",
        "smgr tls",
        "smgr auth",
        "element cm-east",
        "ha",
    ] {
        line(&text, "PASS", what);
    }
    assert!(line(&text, "PASS", "smgr tls").contains("client certificate accepted"));
    assert!(!text.contains("FAIL"), "{text}");
}

/// A client certificate due to expire within 30 days: a warning naming the date and the fix
/// (the check still passes); the good one passes with its date.
#[test]
fn a_certificate_near_its_end_is_a_warning() {
    let s = Setup::new();
    let (_, text) = s.check(&[]);
    assert!(
        line(&text, "PASS", "smgr.tls.mycert").contains("valid until"),
        "{text}"
    );
    line(&text, "PASS", "smgr.tls.cacert");
    let pki = &s.pki;
    let (code, text) = s.check(&[
        ("smgr.tls.mycert", format!("{pki}/expiring-client.pem")),
        (
            "smgr.tls.myprivkey",
            format!("{pki}/expiring-client-key.pem"),
        ),
    ]);
    assert_eq!(code, Some(0), "{text}");
    let warn = line(&text, "WARN", "smgr.tls.mycert");
    assert!(warn.contains("day(s) left"), "{text}");
    assert!(
        text.contains("install a renewed certificate before then"),
        "{text}"
    );
}

#[test]
fn each_broken_part_fails_on_its_own_line() {
    let s = Setup::new();
    let pki = &s.pki;
    let port = free_port();
    std::fs::write(
        s.dir.path("unresolvable.json"),
        r#"{"elements":[{"name":"cm-east","hosts":["127.0.0.1","cm-east-a.invalid"]}]}"#,
    )
    .unwrap();
    // (the check that fails, the parameters changed, what its fix names)
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "smgr tls",
            vec![("smgr.tls.cacert", format!("{pki}/other-ca.pem"))],
            "smgr.tls.cacert",
        ),
        (
            "smgr tls",
            vec![
                ("smgr.tls.mycert", format!("{pki}/other-server.pem")),
                ("smgr.tls.myprivkey", format!("{pki}/other-server-key.pem")),
            ],
            "smgr.tls.mycert",
        ),
        (
            "smgr auth",
            vec![("smgr.tokenfile", s.dir.p("wrong-token"))],
            "smgr.tokenfile",
        ),
        (
            "element cm-east",
            vec![("elements.file", s.dir.p("unresolvable.json"))],
            "host name",
        ),
        (
            "state.dir",
            vec![("state.dir", "/sys/omcmsync-state".into())],
            "writable",
        ),
        (
            "smgr tcp",
            vec![("smgr.url", format!("https://127.0.0.1:{port}"))],
            "start System Manager",
        ),
    ];
    for (what, changes, fix) in cases {
        let (code, text) = s.check(&changes);
        assert_eq!(code, Some(1), "{what}: {text}");
        let fail = line(&text, "FAIL", what);
        let at = text.find(fail).unwrap();
        let fix_line = text[at..].lines().nth(1).unwrap_or_default();
        assert!(
            fix_line.contains("fix:") && fix_line.contains(fix),
            "{what}: fix line '{fix_line}' in:\n{text}"
        );
        assert_eq!(
            text.matches("FAIL  ").count(),
            1,
            "{what}: one failure only:\n{text}"
        );
    }
}

/// `omcmsync check --rsyslog-conf` on a main file that includes the action (with the good
/// parameters and `changes`), `global` added to the main file's global() and `first` put
/// before it.
fn check_rsyslog_conf(
    s: &Setup,
    changes: &[(&str, String)],
    global: &str,
    first: &str,
) -> (Option<i32>, String) {
    let d = &s.dir;
    let params: String = s
        .params(changes)
        .iter()
        .map(|(k, v)| format!(" {k}=\"{v}\""))
        .collect();
    let main = config(
        d,
        Ports::free(),
        &format!("include(file=\"{}\")", d.p("omcmsync-action.conf")),
    )
    .replace(
        "processInternalMessages=\"on\"",
        &format!("processInternalMessages=\"on\" {global}"),
    );
    std::fs::write(
        d.path("omcmsync-action.conf"),
        format!("action(type=\"omcmsync\"{params})\n"),
    )
    .unwrap();
    std::fs::write(d.path("main.conf"), format!("{first}{main}")).unwrap();
    // The test's rsyslogd (a Debian root's, in the matrix) as one program.
    let wrapper = d.path("rsyslogd");
    let cmd = rsyslogd_command(rsyslog_root().as_deref(), &[]);
    let argv: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nexec {} \"$@\"\n", argv.join(" ")),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    result(
        std::process::Command::new(env!("CARGO_BIN_EXE_omcmsync"))
            .args([
                "check",
                "--rsyslog-conf",
                &d.p("main.conf"),
                "--rsyslogd",
                &d.p("rsyslogd"),
            ])
            .output()
            .unwrap(),
    )
}

/// Through rsyslogd: the action is found in an included file, and rsyslog's maxMessageSize
/// below line.maxlength is a warning, not a failure.
#[test]
fn an_rsyslog_configuration_is_read_with_its_includes() {
    let s = Setup::new();
    let (code, text) = check_rsyslog_conf(
        &s,
        &[("line.maxlength", "16384".into())],
        "maxMessageSize=\"8k\"",
        "",
    );
    assert_eq!(code, Some(0), "{text}");
    line(&text, "PASS", "rsyslogd -N1");
    line(&text, "PASS", "smgr auth");
    assert!(
        line(&text, "WARN", "maxMessageSize").contains("(8192) is below line.maxlength (16384)"),
        "{text}"
    );
}

/// A state.dir root may write but the user rsyslogd drops to may not: a failure naming that
/// user, though `check` itself runs as root.
#[test]
fn state_dir_is_judged_for_the_user_rsyslogd_drops_to() {
    let s = Setup::new();
    let state = s.dir.path("state");
    std::fs::create_dir(&state).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    let (code, text) = check_rsyslog_conf(&s, &[], "", "$PrivDropToUser nobody\n");
    assert_eq!(code, Some(1), "{text}");
    assert!(
        line(&text, "FAIL", "state.dir").contains("not writable by rsyslogd's user nobody"),
        "{text}"
    );
    assert_eq!(text.matches("FAIL  ").count(), 1, "{text}");
}

/// rsyslog's and the module's defaults agree: a message rsyslog cuts at its default
/// maxMessageSize is too long for the classifier, so the check passes without a warning.
#[test]
fn default_message_sizes_pass() {
    let s = Setup::new();
    let (code, text) = check_rsyslog_conf(&s, &[], "", "");
    assert_eq!(code, Some(0), "{text}");
    assert!(
        line(&text, "PASS", "maxMessageSize").contains("(8096) is at least line.maxlength (8000)"),
        "{text}"
    );
    assert!(!text.contains("WARN"), "{text}");
}

/// A secret over plain http to another host: the parameters fail, naming both; allowed by
/// `smgr.allowcleartext="on"`, it is still warned about.
#[test]
fn credentials_in_clear_fail_or_are_warned_about() {
    let s = Setup::new();
    let plain = [
        ("smgr.url", "http://smgr.example.invalid".to_string()),
        ("smgr.tls.cacert", String::new()),
        ("smgr.tls.mycert", String::new()),
        ("smgr.tls.myprivkey", String::new()),
    ];
    let (code, text) = s.check(&plain);
    assert_eq!(code, Some(1), "{text}");
    let failed = line(&text, "FAIL", "parameters");
    assert!(
        failed.contains("smgr.url") && failed.contains("smgr.tokenfile"),
        "{text}"
    );
    let mut allowed = plain.to_vec();
    allowed.push(("smgr.allowcleartext", "on".into()));
    let (_, text) = s.check(&allowed);
    line(&text, "PASS", "parameters");
    line(&text, "WARN", "smgr cleartext");
}

/// The input's TLS files are judged as rsyslogd's user reads them after its privilege drop: a
/// key only root may read fails, naming the file, the user and the fix; readable, each passes.
#[test]
fn input_tls_files_are_judged_for_the_user_rsyslogd_drops_to() {
    use std::os::unix::fs::PermissionsExt;
    let s = Setup::new();
    let pki = &s.pki;
    let mode = |p: &str, m| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
    // Searchable by others, as /etc/omcmsync/tls is.
    mode(&s.dir.p(""), 0o711).unwrap();
    mode(pki, 0o755).unwrap();
    let key = format!("{pki}/server-key.pem");
    let global = format!(
        r#"DefaultNetstreamDriverCAFile="{pki}/ca.pem" DefaultNetstreamDriverCertFile="{pki}/server.pem" DefaultNetstreamDriverKeyFile="{key}""#
    );
    mode(&key, 0o600).unwrap();
    let (code, text) = check_rsyslog_conf(&s, &[], &global, "$PrivDropToUser nobody\n");
    assert_eq!(code, Some(1), "{text}");
    let fail = line(&text, "FAIL", "input tls");
    assert!(
        fail.contains(&key) && fail.contains("not readable by rsyslogd's user nobody"),
        "{text}"
    );
    assert!(text.contains(&format!("chmod 0640 {key}")), "{text}");
    mode(&key, 0o644).unwrap();
    let (_, text) = check_rsyslog_conf(&s, &[], &global, "$PrivDropToUser nobody\n");
    assert!(!text.contains("FAIL  input tls"), "{text}");
    assert_eq!(text.matches("PASS  input tls").count(), 3, "{text}");
}

/// A file a HUP reads again, as the user rsyslogd drops to: a token only root may read is a
/// warning naming the file, the user and what happens (the old token stays until a restart).
#[test]
fn files_a_hup_rereads_are_judged_for_the_user_rsyslogd_drops_to() {
    use std::os::unix::fs::PermissionsExt;
    let s = Setup::new();
    let mode = |p: &str, m| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
    mode(&s.dir.p(""), 0o711).unwrap();
    let token = s.dir.p("token");
    mode(&token, 0o600).unwrap();
    let (_, text) = check_rsyslog_conf(&s, &[], "", "$PrivDropToUser nobody\n");
    let warn = line(&text, "WARN", "smgr secret at HUP");
    assert!(
        warn.contains(&token) && warn.contains("rsyslogd's user nobody cannot read it"),
        "{text}"
    );
    mode(&token, 0o644).unwrap();
    let (_, text) = check_rsyslog_conf(&s, &[], "", "$PrivDropToUser nobody\n");
    assert!(!text.contains("smgr secret at HUP"), "{text}");
}

/// The action's `config.file` is read as the module reads it: its values (System Manager's
/// URL, TLS files, token) are the ones checked, and they override the action's own.
#[test]
fn an_actions_config_file_is_checked_with_the_action() {
    let s = Setup::new();
    let site_keys = [
        "smgr.url",
        "smgr.tls.cacert",
        "smgr.tls.mycert",
        "smgr.tls.myprivkey",
        "smgr.tokenfile",
    ];
    let good = s.params(&[]);
    let site = |token: &str| {
        let text: String = good
            .iter()
            .filter(|(k, _)| site_keys.contains(&k.as_str()))
            .map(|(k, v)| match k.as_str() {
                "smgr.tokenfile" => format!("{k}=\"{}\"\n", s.dir.p(token)),
                _ => format!("{k}=\"{v}\"\n"),
            })
            .collect();
        std::fs::write(s.dir.path("omcmsync.conf"), text).unwrap();
    };
    let mut changes: Vec<(&str, String)> =
        site_keys[..4].iter().map(|k| (*k, String::new())).collect();
    changes.push(("config.file", s.dir.p("omcmsync.conf")));
    site("token");
    let (code, text) = check_rsyslog_conf(&s, &changes, "", "");
    assert_eq!(code, Some(0), "{text}");
    line(&text, "PASS", "smgr auth");
    // The file's wrong token overrides the action's good one.
    site("wrong-token");
    let (code, text) = check_rsyslog_conf(&s, &changes, "", "");
    assert_eq!(code, Some(1), "{text}");
    line(&text, "FAIL", "smgr auth");
}

/// An omprog action running `omcmsync omprog` is read through its `--config` file and checked
/// like the module's; sharing the module action's state.dir fails, naming both.
#[test]
fn a_state_dir_shared_with_an_omprog_action_fails() {
    let s = Setup::new();
    let conf = s.dir.path("omprog.conf");
    let values: String = s
        .params(&[])
        .iter()
        .map(|(k, v)| format!("{k}=\"{v}\"\n"))
        .collect();
    std::fs::write(&conf, values).unwrap();
    let omprog = format!(
        "module(load=\"omprog\")\nruleset(name=\"viaprogram\") {{\n  action(type=\"omprog\" binary=\"{} omprog --config {}\" confirmMessages=\"on\")\n}}\n",
        env!("CARGO_BIN_EXE_omcmsync"),
        conf.display()
    );
    let (code, text) = check_rsyslog_conf(&s, &[], "", &omprog);
    assert_eq!(code, Some(1), "{text}");
    let shared = line(&text, "FAIL", "state.dir");
    assert!(
        shared.contains(&s.dir.p("state")) && shared.contains("omprog action"),
        "{text}"
    );
    line(&text, "PASS", "smgr auth");
    // Its own state.dir: nothing shared.
    std::fs::write(
        &conf,
        std::fs::read_to_string(&conf)
            .unwrap()
            .replace(&s.dir.p("state"), &s.dir.p("state-omprog")),
    )
    .unwrap();
    let (code, text) = check_rsyslog_conf(&s, &[], "", &omprog);
    assert_eq!(code, Some(0), "{text}");
}
