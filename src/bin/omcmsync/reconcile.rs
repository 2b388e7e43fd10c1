//! `omcmsync reconcile`: asks the running module to reconcile now, waits for the sessions to
//! end and says what each found.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use omcmsync::clock::{now_ms, parse_rfc3339_ms};
use omcmsync::control::{ask, ReconcileAsked, ReconcileStatus, Request, Status};
use omcmsync::reconcile::RunSummary;

/// How often the status is read while waiting.
const POLL: Duration = Duration::from_millis(500);
const ASK_TIMEOUT: Duration = Duration::from_secs(10);

/// `--since` as the module takes it: `90s`, `30m`, `2h`, `1d`.
pub fn parse_since(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = number
        .parse()
        .map_err(|_| format!("'{text}': a number and s, m, h or d expected (2h)"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("'{text}': a number and s, m, h or d expected (2h)")),
    };
    Ok(Duration::from_secs(n.saturating_mul(secs)))
}

pub fn run(
    state_dir: &Path,
    element: Option<String>,
    since: Option<Duration>,
    wait: Duration,
) -> ExitCode {
    let asked_at = now_ms();
    let request = Request::Reconcile {
        element,
        since_ms: since.map(|s| asked_at.saturating_sub(s.as_millis() as u64)),
    };
    let asked: ReconcileAsked = match ask(state_dir, &request, ASK_TIMEOUT) {
        Ok(asked) => asked,
        Err(e) => {
            eprintln!("omcmsync: {e}");
            return ExitCode::from(2);
        }
    };
    if asked.elements.is_empty() {
        println!("no element is reconciled: each needs a directory under reconcile.dir (docs/configuration.md)");
        return ExitCode::SUCCESS;
    }
    println!("reconciling {}", asked.elements.join(", "));
    let deadline = Instant::now() + wait;
    let mut pending = asked.elements;
    let mut failed = false;
    while !pending.is_empty() && Instant::now() < deadline {
        std::thread::sleep(POLL);
        let Ok(status) = ask::<Status>(state_dir, &Request::Status, ASK_TIMEOUT) else {
            continue;
        };
        pending.retain(|name| match done_since(&status.reconcile, name, asked_at) {
            Some(run) => {
                failed |= run.failed.is_some();
                println!("{name}: {}", describe(run));
                false
            }
            None => true,
        });
    }
    for name in &pending {
        println!(
            "{name}: still running after {} s; `omcmsync status` shows its result later",
            wait.as_secs()
        );
    }
    if failed || !pending.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The element's last session, if it ended after `asked_at`.
fn done_since<'a>(
    rows: &'a [ReconcileStatus],
    name: &str,
    asked_at: u64,
) -> Option<&'a RunSummary> {
    let row = rows.iter().find(|r| r.element == name)?;
    let run = row.last_run.as_ref()?;
    (parse_rfc3339_ms(&run.at)? >= asked_at).then_some(run)
}

/// A session in a line, for `reconcile` and `status`.
pub fn describe(run: &RunSummary) -> String {
    if let Some(why) = &run.failed {
        return format!("{} ({}): failed: {why}", run.at, run.why);
    }
    let wrapped = if run.wrapped {
        "; history wrapped: element resynced whole"
    } else {
        ""
    };
    format!(
        "{} ({}, {}): {} records, {} heard, {} missed and requested{wrapped}",
        run.at,
        run.why,
        run.host.as_deref().unwrap_or("-"),
        run.records,
        run.heard,
        run.missed
    )
}
