//! The omprog mode: the same pipeline as a program that rsyslog's omprog starts, for rsyslog
//! versions whose module ABI this project has not verified.
//!
//! Protocol (omprog with `confirmMessages="on"`): print `OK` once ready; then, for every line
//! read from standard input (rendered with the omcmsync template), answer `OK` once the line's
//! changes are durable, or an error line, which makes rsyslog keep the message and retry it.
//! End of input stops the program; what is queued stays in `state.dir`.
//!
//! The configuration file holds the action's parameters, one `name="value"` per line (`#` starts
//! a comment), so that a module action and an omprog setup share their settings.

use std::io::{BufRead, Write};

use crate::action::Action;
use crate::config::{Config, Value};

/// Parses `name="value"` lines: the value quoted (and then taken as it is up to the closing
/// quote) or bare (up to a `#` comment); `#` at the start of a line or after a value starts a
/// comment.
pub fn parse_config_file(text: &str) -> Result<Vec<(String, String)>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(n, l)| {
            let line = n + 1;
            let (name, value) = l
                .split_once('=')
                .ok_or(format!("line {line}: expected name=\"value\""))?;
            let value = value.trim_start();
            let value = match value.strip_prefix('"') {
                Some(quoted) => {
                    let (value, rest) = quoted
                        .split_once('"')
                        .ok_or(format!("line {line}: the value's closing quote is missing"))?;
                    let rest = rest.trim();
                    if !rest.is_empty() && !rest.starts_with('#') {
                        return Err(format!(
                            "line {line}: '{rest}' after the value: one name=\"value\" per line, a comment after #"
                        ));
                    }
                    value
                }
                None => value.split_once('#').map_or(value, |(v, _)| v).trim_end(),
            };
            Ok((name.trim().to_ascii_lowercase(), value.to_owned()))
        })
        .collect()
}

/// Reads the configuration file and checks it exactly as the module would.
pub fn load_config(path: &std::path::Path) -> Result<Config, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let pairs = parse_config_file(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let unknown: Vec<&str> = pairs
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| !crate::config::PARAMS.iter().any(|(p, _)| p == n))
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "{}: parameter(s) not known: {}",
            path.display(),
            unknown.join(", ")
        ));
    }
    Config::from_values(
        pairs
            .iter()
            .map(|(n, v)| (n.as_str(), Value::Text(v.clone()))),
    )
    .map_err(|e| format!("{}: {e}", path.display()))
}

/// Runs the protocol until end of input. Errors are for the caller to print and exit on.
pub fn run(config: Config, input: impl BufRead, mut output: impl Write) -> Result<(), String> {
    let action = Action::new(config);
    if !action.start() {
        return Err("cannot start (see the messages above)".into());
    }
    let io = |e: std::io::Error| e.to_string();
    writeln!(output, "OK")
        .and_then(|()| output.flush())
        .map_err(io)?;
    for line in input.split(b'\n') {
        let line = line.map_err(io)?;
        let answer = match action.process_batch(0, [line.as_slice()]) {
            Ok(()) => "OK",
            Err(_) => "error: not durable yet, retry",
        };
        writeln!(output, "{answer}")
            .and_then(|()| output.flush())
            .map_err(io)?;
    }
    action.stop();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_file_lines() {
        let pairs =
            parse_config_file("# comment\n\nsmgr.url=\"http://h\"\n  State.Dir = /var/x \n")
                .unwrap();
        assert_eq!(
            pairs,
            [
                ("smgr.url".into(), "http://h".into()),
                ("state.dir".into(), "/var/x".into())
            ]
        );
        assert!(parse_config_file("nonsense")
            .unwrap_err()
            .contains("line 1"));
        // Comments after a value, and a # inside quotes.
        let pairs = parse_config_file(
            "state.dir=\"/var/lib/o\"  # the queue\nsmgr.url=http://h # bare\nha.command=\"a # b\"\n",
        )
        .unwrap();
        assert_eq!(
            pairs,
            [
                ("state.dir".into(), "/var/lib/o".into()),
                ("smgr.url".into(), "http://h".into()),
                ("ha.command".into(), "a # b".into())
            ]
        );
        assert!(parse_config_file("a=\"x\" y")
            .unwrap_err()
            .contains("after the value"));
        assert!(parse_config_file("a=\"x")
            .unwrap_err()
            .contains("closing quote"));
    }

    #[test]
    fn unknown_names_and_bad_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("omcmsync.conf");
        std::fs::write(&path, "smgr.url=\"http://h\"\nsmgr.ulr=\"x\"\n").unwrap();
        assert!(load_config(&path).unwrap_err().contains("smgr.ulr"));
        std::fs::write(&path, "smgr.url=\"ftp://h\"\nelements.source=\"smgr\"\n").unwrap();
        assert!(load_config(&path)
            .unwrap_err()
            .contains("parameter 'smgr.url' has invalid value 'ftp://h'"));
    }

    #[test]
    fn answers_ok_per_line_once_durable() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("elements.json"),
            r#"{"elements":[{"name":"cm","hosts":["10.0.0.1"]}]}"#,
        )
        .unwrap();
        let config = Config::from_values([
            ("smgr.url", Value::Text("http://127.0.0.1:9".into())),
            (
                "elements.file",
                Value::Text(dir.path().join("elements.json").display().to_string()),
            ),
            (
                "state.dir",
                Value::Text(dir.path().join("state").display().to_string()),
            ),
        ])
        .unwrap();
        let input = "10.0.0.1\tcm\t2026-11-25T10:15:02Z\tchange station 1\n10.0.0.1\tcm\tt\tIPEVT x\ngarbage\n";
        let mut out = Vec::new();
        run(config.clone(), input.as_bytes(), &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "OK\nOK\nOK\nOK\n");
        let log = std::fs::read_to_string(dir.path().join("state/queue.log")).unwrap();
        assert!(log.contains("\"id\":\"1\""), "{log}");
    }
}
