//! The omprog mode: the same pipeline as a program that rsyslog's omprog starts, for rsyslog
//! versions whose module ABI this project has not verified.
//!
//! Protocol (omprog with `confirmMessages="on"`): print `OK` once ready; then, for every line
//! read from standard input (rendered with the omcmsync template), answer `OK` once the line's
//! changes are durable, or an error line, which makes rsyslog keep the message and retry it.
//! End of input stops the program; what is queued stays in `state.dir`.
//!
//! The configuration file is the module's `config.file` (the action's parameters, one
//! `name="value"` per line), so that a module action and an omprog setup share their settings.

use std::io::{BufRead, Write};

use crate::action::Action;
use crate::config::{Config, Value};

/// Reads the configuration file (`config.file`) and checks it exactly as the module would.
pub fn load_config(path: &std::path::Path) -> Result<Config, String> {
    Config::from_values([("config.file", Value::Text(path.display().to_string()))])
        .map_err(|e| e.to_string())
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
