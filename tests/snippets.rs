//! Every rsyslog-conf snippet, as an operator would combine them, passes `rsyslogd -N1` with
//! the built module (paths moved into a test directory, certificates from smgr-sim).

mod common;

use common::*;

fn snippet(name: &str) -> String {
    std::fs::read_to_string(repo().join("rsyslog-conf").join(name)).unwrap()
}

/// template + `input` + action, with /etc/omcmsync and the standard paths moved into `dir`.
fn assembled(dir: &TestDir, input: &str) -> String {
    assembled_with(dir, input, "omcmsync-action.conf")
}

fn assembled_with(dir: &TestDir, input: &str, action: &str) -> String {
    let etc = dir.p("etc");
    let moddir = dir.path("modules");
    let _ = std::fs::create_dir(&moddir);
    let _ = std::os::unix::fs::symlink(module_path(), moddir.join("omcmsync.so"));
    format!(
        "global(workDirectory=\"{}\")\n{}\n{}\n{}\n",
        dir.p("work"),
        snippet("omcmsync-template.conf"),
        snippet(input),
        snippet(action),
    )
    .replace("/etc/omcmsync", &etc)
    .replace("/var/lib/omcmsync", &dir.p("state"))
    .replace("/var/log/omcmsync", &dir.p("log"))
    .replace("port=\"514\"", &format!("port=\"{}\"", Ports::free().tcp))
    .replace("port=\"6514\"", &format!("port=\"{}\"", Ports::free().tcp))
}

#[test]
fn each_input_with_template_and_action_passes_n1() {
    for input in [
        "omcmsync-input-tls.conf",
        "omcmsync-input-tls-mutual.conf",
        "omcmsync-input-plain.conf",
    ] {
        let dir = TestDir::new();
        install_etc(&dir);
        let text = assembled(&dir, input);
        let search = format!("{}:/usr/lib/x86_64-linux-gnu/rsyslog", dir.p("modules"));
        let check = check_config(&dir, &text, &["-M", &search]);
        assert!(check.ok, "{input}:\n{}\n{text}", check.output);
    }
}

/// TLS for the CMs that can, plain for one that cannot: both input snippets in one
/// configuration pass `-N1` (imtcp in TLS mode, imptcp for plain TCP).
#[test]
fn tls_and_plain_inputs_combine() {
    for tls in ["omcmsync-input-tls.conf", "omcmsync-input-tls-mutual.conf"] {
        let dir = TestDir::new();
        install_etc(&dir);
        let text = assembled(&dir, tls).replace(
            &snippet("omcmsync-template.conf"),
            &format!(
                "{}\n{}",
                snippet("omcmsync-template.conf"),
                snippet("omcmsync-input-plain.conf")
            ),
        );
        let plain_port = Ports::free().tcp;
        let text = text.replace("port=\"514\"", &format!("port=\"{plain_port}\""));
        let search = format!("{}:/usr/lib/x86_64-linux-gnu/rsyslog", dir.p("modules"));
        let check = check_config(&dir, &text, &["-M", &search]);
        assert!(check.ok, "{tls} with plain:\n{}\n{text}", check.output);
        assert!(text.contains("type=\"imptcp\"") && text.contains("type=\"imtcp\""));
    }
}

#[test]
fn a_broken_parameter_in_the_action_snippet_fails_n1_naming_it() {
    let dir = TestDir::new();
    install_etc(&dir);
    let text = assembled(&dir, "omcmsync-input-plain.conf")
        .replace("https://smgr.example.net", "smgr.example.net");
    let search = format!("{}:/usr/lib/x86_64-linux-gnu/rsyslog", dir.p("modules"));
    let check = check_config(&dir, &text, &["-M", &search]);
    assert!(!check.ok);
    assert!(
        check
            .output
            .contains("parameter 'smgr.url' has invalid value 'smgr.example.net'"),
        "{}",
        check.output
    );
}

#[test]
fn omprog_snippet_passes_n1() {
    let dir = TestDir::new();
    install_etc(&dir);
    let text = assembled_with(&dir, "omcmsync-input-plain.conf", "omcmsync-omprog.conf");
    let check = check_config(&dir, &text, &[]);
    assert!(check.ok, "{}\n{text}", check.output);
}
