//! `omcmsync classify`: what the module would do with each line of a capture from a real CM,
//! so a field engineer can see whether the grammar reads that CM's lines.

use std::io::{BufRead, BufWriter, Write};
use std::path::Path;

use omcmsync::classify::{parse_rules, Classifier, Limits, ObjectTable, Verdict, VerdictFields};
use omcmsync::line::ReceivedLine;

/// `omcmsync classify [--rules FILE] [FILE]`.
pub fn run(rules: Option<&Path>, input: Option<&Path>) -> Result<(), String> {
    let rules = match rules {
        Some(path) => {
            let shown = path.display();
            let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
            parse_rules(&text).map_err(|e| format!("{shown}: {e}"))?
        }
        None => Vec::new(),
    };
    let reader: Box<dyn BufRead> = match input.filter(|p| *p != Path::new("-")) {
        None => Box::new(std::io::stdin().lock()),
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?,
        )),
    };
    let classifier = Classifier::new(ObjectTable::with_rules(&rules), Limits::default());
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut summary = std::collections::BTreeMap::<String, u64>::new();
    for (n, line) in reader.split(b'\n').enumerate() {
        let raw = line.map_err(|e| e.to_string())?;
        let raw = raw.strip_suffix(b"\r").unwrap_or(&raw);
        // The module's own template lines carry the message in their last field; they are
        // told by their first field, the sender's address (a raw line's words may hold TABs).
        let message = ReceivedLine::parse(raw)
            .ok()
            .filter(|l| l.sender().is_ok())
            .map_or(raw, |l| l.message);
        let verdict = classifier.classify(message);
        let record = ClassifiedLine {
            line: n as u64 + 1,
            text: String::from_utf8_lossy(message),
            verdict: VerdictFields::of(&verdict),
        };
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

/// One input line's record: its number, its message and the verdict.
#[derive(serde::Serialize)]
struct ClassifiedLine<'a> {
    line: u64,
    text: std::borrow::Cow<'a, str>,
    #[serde(flatten)]
    verdict: VerdictFields<'a>,
}
