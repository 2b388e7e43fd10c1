//! Docs that work as written: every rsyslog configuration block in README.md and the docs
//! passes `rsyslogd -N1` with the built module, and every omprog configuration block passes
//! `omcmsync omprog --config FILE </dev/null`, with the standard paths moved into a test
//! directory (certificates from smgr-sim).

mod common;

use common::*;

/// The Markdown files an operator reads.
fn documents() -> Vec<std::path::PathBuf> {
    let mut docs = vec![
        repo().join("README.md"),
        repo().join("rsyslog-conf/README.md"),
        repo().join("packaging/README.md"),
    ];
    let mut more: Vec<_> = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    more.sort();
    docs.extend(more);
    docs
}

/// The fenced blocks of a Markdown text, but shell (```sh) blocks: commands, which
/// tests/step_by_step.rs runs where they are meant to run.
fn blocks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    let mut shell = false;
    for line in text.lines() {
        if let Some(info) = line.trim_start().strip_prefix("```") {
            match current.take() {
                Some(block) if !shell => out.push(block),
                Some(_) => {}
                None => {
                    shell = info.trim() == "sh";
                    current = Some(String::new());
                }
            }
        } else if let Some(block) = &mut current {
            block.push_str(line);
            block.push('\n');
        }
    }
    out
}

fn is_rsyslog_conf(block: &str) -> bool {
    ["module(load=", "include(file=", "action(type="]
        .iter()
        .any(|k| block.contains(k))
}

/// `name="value"` lines only: an omprog configuration file.
fn is_omprog_conf(block: &str) -> bool {
    block.contains("smgr.url=")
        && block
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .all(|l| l.contains('=') && !l.contains('('))
}

#[test]
fn every_configuration_block_in_the_docs_passes_its_check() {
    let mut checked = 0;
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        let name = doc.strip_prefix(repo()).unwrap().display().to_string();
        let all = blocks(&text);
        // An omprog block's configuration file, for the rsyslog blocks that name it.
        let omprog_conf = all.iter().find(|b| is_omprog_conf(b));
        for block in &all {
            let dir = TestDir::new();
            install_etc(&dir);
            if let Some(conf) = omprog_conf {
                std::fs::write(dir.path("etc/omcmsync.conf"), moved(&dir, conf)).unwrap();
            }
            if is_omprog_conf(block) {
                let path = dir.path("omprog-block.conf");
                std::fs::write(&path, moved(&dir, block)).unwrap();
                let out = std::process::Command::new(env!("CARGO_BIN_EXE_omcmsync"))
                    .arg("omprog")
                    .arg("--config")
                    .arg(&path)
                    .stdin(std::process::Stdio::null())
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{name}: omprog block fails its check:\n{block}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                checked += 1;
            } else if is_rsyslog_conf(block) {
                let moddir = dir.path("modules");
                std::fs::create_dir_all(&moddir).unwrap();
                std::os::unix::fs::symlink(module_path(), moddir.join("omcmsync.so")).unwrap();
                // A block without an action is a fragment for a working configuration: it is
                // checked with one.
                let fragment = !block.contains("action(") && !block.contains("include(");
                let text = format!(
                    "global(workDirectory=\"{}\")\n{}{}",
                    dir.p("work"),
                    moved(&dir, block),
                    if fragment {
                        format!("action(type=\"omfile\" file=\"{}\")\n", dir.p("out.log"))
                    } else {
                        String::new()
                    }
                );
                let search = format!("{}:/usr/lib/x86_64-linux-gnu/rsyslog", dir.p("modules"));
                let check = check_config(&dir, &text, &["-M", &search]);
                assert!(
                    check.ok,
                    "{name}: block fails rsyslogd -N1 as written:\n{block}\n{}",
                    check.output
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 3, "found only {checked} configuration blocks");
}
