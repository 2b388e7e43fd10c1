//! `omcmsync`: the command-line companion of the rsyslog module.
//!
//!     omcmsync classify [--rules FILE] [FILE]
//!     omcmsync omprog --config FILE
//!
//! Reads lines (a capture from a CM, or the module's own template lines) from FILE or standard
//! input and prints, one JSON object per line, what the module would do with each; a summary
//! goes to standard error. What a field engineer runs on a real capture to see whether the
//! grammar reads that CM's lines.

use std::io::{BufRead, BufWriter, Write};
use std::process::ExitCode;

use omcmsync::classify::{parse_rules, verdict_json, Classifier, Limits, ObjectTable, Verdict};
use omcmsync::line::ReceivedLine;

const USAGE: &str =
    "usage: omcmsync classify [--rules FILE] [FILE] | omcmsync omprog --config FILE";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("classify") => match classify(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("omcmsync classify: {e}");
                ExitCode::from(2)
            }
        },
        Some("omprog") => match omprog(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("omcmsync omprog: {e}");
                ExitCode::from(2)
            }
        },
        Some("-h" | "--help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn classify(args: &[String]) -> Result<(), String> {
    let (mut rules, mut input) = (Vec::new(), None);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rules" => {
                let path = args.next().ok_or("--rules needs a file")?;
                let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
                rules = parse_rules(&text).map_err(|e| format!("{path}: {e}"))?;
            }
            a if a.starts_with('-') && a != "-" => {
                return Err(format!("unknown option {a}\n{USAGE}"))
            }
            file => input = Some(file.to_owned()),
        }
    }
    let reader: Box<dyn BufRead> = match input.as_deref() {
        None | Some("-") => Box::new(std::io::stdin().lock()),
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?,
        )),
    };
    let classifier = Classifier::new(ObjectTable::with_rules(&rules), Limits::default());
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut summary = std::collections::BTreeMap::<String, u64>::new();
    for (n, line) in reader.split(b'\n').enumerate() {
        let raw = line.map_err(|e| e.to_string())?;
        let raw = raw.strip_suffix(b"\r").unwrap_or(&raw);
        // The module's own template lines carry the message in their last field.
        let message = ReceivedLine::parse(raw).map_or(raw, |l| l.message);
        let verdict = classifier.classify(message);
        let mut record = serde_json::Map::new();
        record.insert("line".into(), (n + 1).into());
        record.insert("text".into(), String::from_utf8_lossy(message).into());
        record.extend(verdict_json(&verdict));
        let key = match verdict {
            Verdict::Event(e) => format!("event {}", e.verb.as_str()),
            Verdict::Ignored(r) => format!("ignored {}", r.as_str()),
        };
        *summary.entry(key).or_default() += 1;
        serde_json::to_writer(&mut out, &record).map_err(|e| e.to_string())?;
        out.write_all(b"\n").map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())?;
    let total: u64 = summary.values().sum();
    eprintln!("{total} lines");
    for (what, count) in summary {
        eprintln!("  {count:>8}  {what}");
    }
    Ok(())
}

/// The pipeline behind rsyslog's omprog (docs/omprog.md).
fn omprog(args: &[String]) -> Result<(), String> {
    let [flag, path] = args else {
        return Err(USAGE.into());
    };
    if flag != "--config" {
        return Err(USAGE.into());
    }
    let config = omcmsync::omprog::load_config(std::path::Path::new(path))?;
    omcmsync::omprog::run(config, std::io::stdin().lock(), std::io::stdout().lock())
}
