//! The subcommands that talk to a running module over its control socket: `status`,
//! `deadletter list|requeue`, `resync`. Exit status 2 when no module runs there.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use omcmsync::control::{ask, AskError, DeadLetterList, Queued, Request, Requeued, Status};
use omcmsync::resync::Scope;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A requeue waits for the queue's fsync; status and the rest answer at once.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Asks, then prints the answer `A` with `show`; the exit status says how it went.
pub fn run<A: DeserializeOwned>(
    state_dir: &Path,
    request: Request,
    show: impl FnOnce(&A),
) -> ExitCode {
    match ask(state_dir, &request, TIMEOUT) {
        Ok(answer) => {
            show(&answer);
            ExitCode::SUCCESS
        }
        Err(e @ AskError::NoModule(_)) => {
            eprintln!("omcmsync: {e}\n  is rsyslogd running with an omcmsync action whose state.dir is {}? (--state-dir DIR)", state_dir.display());
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("omcmsync: {e}");
            ExitCode::from(1)
        }
    }
}

pub fn resync_request(element: String, ty: Option<String>, id: Option<String>) -> Request {
    let scope = match (ty, id) {
        (Some(ty), Some(id)) => Scope::Object {
            ty: ty.as_str().into(),
            id: id.as_str().into(),
        },
        (Some(ty), None) => Scope::Type {
            ty: ty.as_str().into(),
        },
        _ => Scope::Element,
    };
    Request::Resync { element, scope }
}

/// `omcmsync status`, for a person: the module, then one row per element.
pub fn show_status(a: &Status) {
    println!(
        "omcmsync {} (pid {}), state.dir {}, HA role {}",
        a.version, a.pid, a.state_dir, a.role
    );
    let q = &a.queue;
    let held = if q.held { ", held (standby)" } else { "" };
    println!("queue: {} key(s), log {} bytes{held}", q.keys, q.log_bytes);
    for p in &a.problems {
        println!(
            "degraded: {}: {} (since {}, seen {} times)",
            p.param, p.what, p.since, p.seen
        );
    }
    if let Some(e) = &a.deadletter_error {
        println!("dead-letter file {}: {e}", a.deadletter_file);
    }
    println!(
        "{:<16} {:>8} {:>9} {:>6} {:>9} {:>12} {:>5}  LAST ANSWER",
        "ELEMENT", "PENDING", "IN-FLIGHT", "HELD", "OLDEST", "NEXT-TRY", "DEAD"
    );
    for e in &a.elements {
        let next = match e.next_attempt_in_ms {
            0 => "now".to_owned(),
            ms => format!("in {}", age(ms)),
        };
        let last = match (&e.last_answer, &e.last_answer_at) {
            (Some(text), Some(at)) => format!("{at} {text}"),
            _ => "-".into(),
        };
        let name = if e.configured {
            e.name.clone()
        } else {
            format!("{} (not listed)", e.name)
        };
        println!(
            "{name:<16} {:>8} {:>9} {:>6} {:>9} {next:>12} {:>5}  {last}",
            e.pending,
            e.in_flight,
            e.held,
            e.oldest_age_ms.map_or("-".into(), age),
            e.deadletters,
        );
    }
    if a.elements_not_shown > 0 {
        println!(
            "... and {} more configured element(s) with nothing pending or to show",
            a.elements_not_shown
        );
    }
    show_reconcile(&a.reconcile);
}

fn show_reconcile(rows: &[omcmsync::control::ReconcileStatus]) {
    for r in rows {
        let heard = r.last_heard.as_deref().unwrap_or("nothing yet");
        let run = r
            .last_run
            .as_ref()
            .map_or("no session yet".into(), crate::reconcile::describe);
        println!(
            "reconcile {}: last heard {heard}; last session {run}",
            r.element
        );
    }
}

/// `omcmsync status --offline`: the state directory read without a module (the default
/// dead-letter file, `STATE_DIR/deadletter.json`, and its older half).
pub fn offline_status(state_dir: &Path, json: bool) -> ExitCode {
    let offline = match read_offline(state_dir) {
        Ok(offline) => offline,
        Err(e) => {
            eprintln!("omcmsync: {}: {e}", state_dir.join("queue.log").display());
            return ExitCode::from(1);
        }
    };
    if json {
        println!("{}", serde_json::to_string(&offline).unwrap_or_default());
    } else {
        show_offline(&offline);
    }
    ExitCode::SUCCESS
}

/// What the state directory holds, per element.
fn read_offline(state_dir: &Path) -> std::io::Result<Offline> {
    let (keys, recovery) = omcmsync::queue::summary_offline(state_dir)?;
    let store = omcmsync::deliver::DeadLetters::new(
        &state_dir.join("deadletter.json"),
        u64::MAX,
        Default::default(),
        Default::default(),
    );
    let dead = store.counts().unwrap_or_default();
    let now = omcmsync::clock::now_ms();
    let mut names: Vec<&String> = keys.keys().chain(dead.keys()).collect();
    names.sort();
    names.dedup();
    let elements = names
        .iter()
        .map(|name| {
            let k = keys.get(*name).cloned().unwrap_or_default();
            OfflineElement {
                name: name.to_string(),
                pending: k.pending,
                oldest_age_ms: k.oldest_ms.map(|o| now.saturating_sub(o)),
                deadletters: dead.get(*name).copied().unwrap_or(0),
            }
        })
        .collect();
    Ok(Offline {
        offline: true,
        state_dir: state_dir.display().to_string(),
        pending: keys.values().map(|k| k.pending).sum(),
        deadletters: dead.values().sum(),
        damaged_lines: recovery.bad_lines,
        elements,
    })
}

fn show_offline(o: &Offline) {
    println!(
        "state.dir {} (read without a module): {} change(s) pending, {} dead-lettered{}",
        o.state_dir,
        o.pending,
        o.deadletters,
        match o.damaged_lines {
            0 => String::new(),
            n => format!(", {n} damaged line(s) in queue.log"),
        }
    );
    println!(
        "{:<16} {:>8} {:>9} {:>5}",
        "ELEMENT", "PENDING", "OLDEST", "DEAD"
    );
    for e in &o.elements {
        println!(
            "{:<16} {:>8} {:>9} {:>5}",
            e.name,
            e.pending,
            e.oldest_age_ms.map_or("-".into(), age),
            e.deadletters
        );
    }
}

/// `omcmsync status --offline --json`.
#[derive(Serialize)]
struct Offline {
    offline: bool,
    state_dir: String,
    pending: usize,
    deadletters: u64,
    damaged_lines: usize,
    elements: Vec<OfflineElement>,
}

#[derive(Serialize)]
struct OfflineElement {
    name: String,
    pending: usize,
    oldest_age_ms: Option<u64>,
    deadletters: u64,
}

pub fn show_records(a: &DeadLetterList) {
    for r in &a.records {
        println!("{}", r.get());
    }
    let shown = a.records.len();
    if a.matched > shown as u64 {
        eprintln!(
            "the newest {shown} of {} dead-lettered request(s); narrow with --element or \
             --since, or raise --limit (at most 1000)",
            a.matched
        );
    } else {
        eprintln!("{shown} dead-lettered request(s)");
    }
}

pub fn show_requeued(a: &Requeued) {
    println!(
        "{} dead-lettered request(s) requeued ({} key change(s)); they are delivered like any change",
        a.requeued, a.changes
    );
}

pub fn show_queued(a: &Queued) {
    println!(
        "queued: {}",
        serde_json::to_string(&a.queued).unwrap_or_default()
    );
}

/// A duration for a person: 850ms, 42s, 5m07s, 3h12m, 2d04h.
fn age(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0 => format!("{ms}ms"),
        1..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, s / 60 % 60),
        _ => format!("{}d{:02}h", s / 86_400, s / 3600 % 24),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ages_read_well() {
        assert_eq!(super::age(850), "850ms");
        assert_eq!(super::age(307_000), "5m07s");
        assert_eq!(super::age(2 * 86_400_000 + 4 * 3_600_000), "2d04h");
    }
}
