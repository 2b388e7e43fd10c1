//! Every rsyslog-conf snippet, as an operator would combine them, passes `rsyslogd -N1` with
//! the built module (paths moved into a test directory, certificates from smgr-sim).

mod common;

use common::*;

/// A package snippet as installed in `dir` (paths moved, see [`install_etc`]).
fn snippet(dir: &TestDir, name: &str) -> String {
    std::fs::read_to_string(dir.path("share/rsyslog").join(name)).unwrap()
}

/// template + `input` + action, as the packages install them into `dir`.
fn assembled(dir: &TestDir, input: &str) -> String {
    assembled_with(dir, input, "omcmsync-action.conf")
}

fn assembled_with(dir: &TestDir, input: &str, action: &str) -> String {
    let moddir = dir.path("modules");
    let _ = std::fs::create_dir(&moddir);
    let _ = std::os::unix::fs::symlink(module_path(), moddir.join("omcmsync.so"));
    format!(
        "global(workDirectory=\"{}\")\n{}\n{}\n{}\n",
        dir.p("work"),
        snippet(dir, "omcmsync-template.conf"),
        snippet(dir, input),
        snippet(dir, action),
    )
    .replace("port=\"514\"", &format!("port=\"{}\"", Ports::free().tcp))
    .replace("port=\"6514\"", &format!("port=\"{}\"", Ports::free().tcp))
}

/// The site's own input (`omcmsync-input-site.conf`) as the two-way TLS example, on a free port.
fn site_input_mutual(dir: &TestDir) {
    let text = std::fs::read_to_string(dir.path("share/examples/rsyslog-input.conf")).unwrap();
    let port = format!("port=\"{}\"", Ports::free().tcp);
    std::fs::write(
        dir.path("etc/rsyslog-input.conf"),
        text.replace("port=\"6514\"", &port),
    )
    .unwrap();
}

#[test]
fn each_input_with_template_and_action_passes_n1() {
    for input in [
        "omcmsync-input-tls.conf",
        "omcmsync-input-site.conf",
        "omcmsync-input-plain.conf",
    ] {
        let dir = TestDir::new();
        install_etc(&dir);
        site_input_mutual(&dir);
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
    for tls in ["omcmsync-input-tls.conf", "omcmsync-input-site.conf"] {
        let dir = TestDir::new();
        install_etc(&dir);
        site_input_mutual(&dir);
        let text = assembled(&dir, tls).replace(
            &snippet(&dir, "omcmsync-template.conf"),
            &format!(
                "{}\n{}",
                snippet(&dir, "omcmsync-template.conf"),
                snippet(&dir, "omcmsync-input-plain.conf")
            ),
        );
        let plain_port = Ports::free().tcp;
        let text = text.replace("port=\"514\"", &format!("port=\"{plain_port}\""));
        let search = format!("{}:/usr/lib/x86_64-linux-gnu/rsyslog", dir.p("modules"));
        let check = check_config(&dir, &text, &["-M", &search]);
        assert!(check.ok, "{tls} with plain:\n{}\n{text}", check.output);
        assert!(text.contains("type=\"imptcp\""));
    }
}

#[test]
fn a_broken_parameter_in_the_action_snippet_fails_n1_naming_it() {
    let dir = TestDir::new();
    install_etc(&dir);
    // The site's value is in its config.file: the message names the parameter and the file.
    let site = dir.path("etc/omcmsync.conf");
    let values = std::fs::read_to_string(&site).unwrap();
    std::fs::write(
        &site,
        values.replace("https://smgr.example.net", "smgr.example.net"),
    )
    .unwrap();
    let text = assembled(&dir, "omcmsync-input-plain.conf");
    let search = format!("{}:/usr/lib/x86_64-linux-gnu/rsyslog", dir.p("modules"));
    let check = check_config(&dir, &text, &["-M", &search]);
    assert!(!check.ok);
    assert!(
        check
            .output
            .contains("parameter 'smgr.url' has invalid value 'smgr.example.net'")
            && check
                .output
                .contains(&format!("(config.file {})", site.display())),
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

/// The site's enabling file as the example words it passes `-N1`; with the package's files
/// gone (removed, not purged) it still does, and loads no input: nothing listens for CM
/// lines that nothing would keep.
#[test]
fn the_sites_enabling_file_passes_n1_and_loads_nothing_once_the_package_is_gone() {
    let dir = TestDir::new();
    install_etc(&dir);
    let moddir = dir.path("modules");
    std::fs::create_dir(&moddir).unwrap();
    std::os::unix::fs::symlink(module_path(), moddir.join("omcmsync.so")).unwrap();
    let enabler = std::fs::read_to_string(dir.path("share/examples/60-omcmsync.conf")).unwrap();
    let port = format!("port=\"{}\"", Ports::free().tcp);
    std::fs::write(
        dir.path("share/rsyslog/omcmsync-input-tls.conf"),
        snippet(&dir, "omcmsync-input-tls.conf").replace("port=\"6514\"", &port),
    )
    .unwrap();
    let text = format!(
        "global(workDirectory=\"{}\")\naction(type=\"omfile\" file=\"{}\")\n{enabler}",
        dir.p("work"),
        dir.p("out.log")
    );
    let search = format!("{}:/usr/lib/x86_64-linux-gnu/rsyslog", dir.p("modules"));
    let check = check_config(&dir, &text, &["-M", &search]);
    assert!(check.ok, "{}\n{text}", check.output);

    std::fs::remove_dir_all(dir.path("share/rsyslog")).unwrap();
    let check = check_config(&dir, &text, &["-M", &search, "-o", &dir.p("full.conf")]);
    assert!(check.ok, "{}\n{text}", check.output);
    let full = std::fs::read_to_string(dir.path("full.conf")).unwrap();
    assert!(
        !full.contains("input(") && !full.contains("omcmsync\""),
        "{full}"
    );
}
