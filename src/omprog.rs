//! The omprog mode: the same pipeline as a program that rsyslog's omprog starts, for rsyslog
//! versions whose module ABI this project has not verified.
//!
//! Protocol (omprog with `confirmMessages="on"`): print `OK` once ready; then, for every line
//! read from standard input (rendered with the omcmsync template), answer `OK` once the line's
//! changes are durable, or an error line, which makes rsyslog keep the message and retry it.
//! End of input stops the program; what is queued stays in `state.dir`. A line is read in
//! bounded memory (cut past `line.maxlength`, counted too long); input that ends inside a line
//! counts it malformed. A program started while the one it replaces still holds `state.dir`
//! waits for it (rsyslog starts the next before the last has stopped).
//!
//! The configuration file is the module's `config.file` (the action's parameters, one
//! `name="value"` per line), so that a module action and an omprog setup share their settings.

use std::io::{self, BufRead, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::action::Action;
use crate::config::{Config, Value};
use crate::counters::Counters;
use crate::logging;
use crate::queue::DirLock;

/// Reads the configuration file (`config.file`) and checks it exactly as the module would.
pub fn load_config(path: &std::path::Path) -> Result<Config, String> {
    Config::from_values([("config.file", Value::Text(path.display().to_string()))])
        .map_err(|e| e.to_string())
}

/// How long a program waits for `state.dir` held by another (the one rsyslog is stopping as it
/// starts this one) before it gives up.
const LOCK_WAIT: Duration = Duration::from_secs(15);

/// Runs the protocol until end of input. Errors are for the caller to print and exit on.
pub fn run(config: Config, mut input: impl BufRead, mut output: impl Write) -> Result<(), String> {
    // Kept of a line: one byte past line.maxlength, so that the pipeline counts it too long.
    let keep = config.limits.max_line + 1;
    wait_for_state_dir(&config.state_dir)?;
    let action = Action::new(config);
    if !action.start() {
        return Err("cannot start (see the messages above)".into());
    }
    let io = |e: std::io::Error| e.to_string();
    let mut answer = |text: &str| {
        writeln!(output, "{text}")
            .and_then(|()| output.flush())
            .map_err(io)
    };
    answer("OK")?;
    let mut line = Vec::with_capacity(keep.min(64 << 10));
    while let Some(whole) = read_line(&mut input, keep, &mut line).map_err(io)? {
        if !whole {
            // Input ended inside a line (rsyslog stopped mid-write): no answer is awaited.
            Counters::bump(&action.counters().lines_malformed);
            logging::warning("omprog: input ended inside a line; skipped");
            break;
        }
        answer(match action.process_batch(0, [line.as_slice()]) {
            Ok(()) => "OK",
            Err(_) => "error: not durable yet, retry",
        })?;
    }
    action.stop();
    Ok(())
}

/// Waits (at most [`LOCK_WAIT`]) until no other process holds `dir`: rsyslog may start this
/// program while the one it replaces is still stopping.
fn wait_for_state_dir(dir: &Path) -> Result<(), String> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match DirLock::probe(dir) {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(format!("state.dir: {e}")),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Reads one line into `line`, keeping at most `keep` bytes of it (the rest of a longer line
/// is read and dropped, so a line never costs more memory than that). `Some(true)`: a whole
/// line; `Some(false)`: input ended inside one; `None`: input ended.
fn read_line(
    input: &mut impl BufRead,
    keep: usize,
    line: &mut Vec<u8>,
) -> io::Result<Option<bool>> {
    line.clear();
    let mut started = false;
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Ok(started.then_some(false));
        }
        started = true;
        let end = buf.iter().position(|&b| b == b'\n');
        let chunk = &buf[..end.unwrap_or(buf.len())];
        let room = keep.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = end.map_or(buf.len(), |i| i + 1);
        input.consume(used);
        if end.is_some() {
            return Ok(Some(true));
        }
    }
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
    fn lines_are_kept_up_to_the_limit_and_a_last_partial_one_is_told() {
        let long = format!("{}\nshort\nend", "x".repeat(100_000));
        // A reader that hands out little at a time, as a pipe does.
        let mut input = std::io::BufReader::with_capacity(7, long.as_bytes());
        let mut line = Vec::new();
        assert_eq!(read_line(&mut input, 10, &mut line).unwrap(), Some(true));
        assert_eq!(line, b"xxxxxxxxxx");
        assert!(line.capacity() < 1000, "{}", line.capacity());
        assert_eq!(read_line(&mut input, 10, &mut line).unwrap(), Some(true));
        assert_eq!(line, b"short");
        assert_eq!(read_line(&mut input, 10, &mut line).unwrap(), Some(false));
        assert_eq!(line, b"end");
        assert_eq!(read_line(&mut input, 10, &mut line).unwrap(), None);
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
