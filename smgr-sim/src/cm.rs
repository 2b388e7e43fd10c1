//! `smgr-sim cm`: a CM SAT stand-in speaking OSSI on its standard input and output, for a
//! real OpenSSH `sshd` to run as its ForceCommand (tests/ossi.rs, the demo). It reads its
//! scenario (history, clock, faults) from a file at each session, so a test changes CM
//! between sessions by rewriting it. It leaves the pty's echo on: the client must cope with it.

use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// What CM holds and how it misbehaves.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// CM's clock for `display time`, `YYYY-MM-DD HH:MM:SS` local; absent: now, in UTC.
    clock: Option<String>,
    /// `list history`, newest first: date (mm/dd), time (hh:mm), port, login, action, object,
    /// qualifier.
    history: Vec<[String; 7]>,
    /// Refuse the session with "Login resources unavailable".
    no_resources: bool,
    /// Answer `list history` with a "has data locked" error.
    locked: bool,
    /// Wait this long before each reply.
    slow_ms: u64,
    /// With the terminal type `ossit`: ask `more (y)` after this many lines of a reply (the
    /// shape ossi_tool3 expects: `\rmore..y.`).
    page_lines: usize,
    /// Say nothing after the terminal type: a hung CM (until the client leaves).
    hang: bool,
}

/// `list history`'s columns as two `f`/`d` pairs per record (at most five ids a line).
const HISTORY_IDS: [&[&str]; 2] = [
    &["0001ff00", "0002ff00", "0003ff00", "0004ff00", "0005ff00"],
    &["0006ff00", "0007ff00"],
];

pub fn run(scenario: &Path, log: Option<&Path>) -> Result<(), String> {
    let text =
        std::fs::read_to_string(scenario).map_err(|e| format!("{}: {e}", scenario.display()))?;
    let cm: Scenario =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", scenario.display()))?;
    let mut out = std::io::stdout().lock();
    let mut lines = std::io::stdin().lock().lines().map_while(Result::ok);
    let mut say = |text: &str| -> Result<(), String> {
        out.write_all(text.as_bytes())
            .and_then(|_| out.flush())
            .map_err(|e| e.to_string())
    };
    if cm.no_resources {
        return say("Login resources unavailable\n");
    }
    say("Terminal Type (513, 715, 4410, 4425, VT220, NTT, W2KTT, SUNT): [513] ")?;
    let term = lines.next().unwrap_or_default();
    if cm.hang {
        // Reads on without answering, until the client goes away.
        lines.for_each(drop);
        return Ok(());
    }
    if !term.trim().starts_with("ossi") {
        return say("not an OSSI terminal type\n");
    }
    say("t\n")?;
    let paging = term.trim() == "ossit" && cm.page_lines > 0;
    let mut command = None;
    while let Some(line) = lines.next() {
        let line = line.trim_end_matches('\r');
        if let Some(c) = line.strip_prefix('c') {
            command = Some(c.trim().to_owned());
        } else if line == "t" {
            let Some(c) = command.take() else {
                say("Terminator received but no command active\n")?;
                continue;
            };
            note(log, &c);
            std::thread::sleep(Duration::from_millis(cm.slow_ms));
            if c == "logoff" {
                say("Proceed With Logoff [n]? ")?;
                return Ok(());
            }
            let text = reply(&cm, &c);
            if !paging {
                say(&text)?;
                continue;
            }
            for (i, line) in text.lines().enumerate() {
                if i > 0 && i % cm.page_lines == 0 {
                    say("\rmore (y)")?;
                    lines.next();
                }
                say(&format!("{line}\n"))?;
            }
        }
    }
    Ok(())
}

/// Appends the command to the log, one line each: what the tests count sessions by.
fn note(log: Option<&Path>, command: &str) {
    if let Some(path) = log {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path);
        if let Ok(mut file) = file {
            let _ = writeln!(file, "{command}");
        }
    }
}

fn reply(cm: &Scenario, command: &str) -> String {
    let body = match command {
        "list history" if cm.locked => "e1 00000000 2b3c has data locked\n".to_owned(),
        "list history" if cm.history.is_empty() => {
            "e1 00000000 29cf No records match the specified query options\n".to_owned()
        }
        "list history" => history(&cm.history),
        "display time" => clock(cm.clock.as_deref()),
        _ => "e1 00000000 0001 Command not supported by the stand-in\n".to_owned(),
    };
    format!("c{command}\n{body}t\n")
}

fn history(records: &[[String; 7]]) -> String {
    let mut text = String::new();
    for ids in HISTORY_IDS {
        text.push_str(&format!("f{}\n", ids.join("\t")));
    }
    for (i, record) in records.iter().enumerate() {
        if i > 0 {
            text.push_str("n\n");
        }
        text.push_str(&format!("d{}\n", record[..5].join("\t")));
        text.push_str(&format!("d{}\n", record[5..].join("\t")));
    }
    text
}

/// `display time`: year, month, day, hour, minute, second, by position.
fn clock(clock: Option<&str>) -> String {
    let now = time::OffsetDateTime::now_utc();
    let fallback = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let clock = clock.unwrap_or(&fallback);
    let parts: Vec<&str> = clock.split(['-', ' ', ':']).collect();
    let ids = [
        "0001ff00", "0002ff00", "0003ff00", "0004ff00", "0005ff00", "0006ff00",
    ];
    format!("f{}\nd{}\n", ids.join("\t"), parts.join("\t"))
}
