//! The subcommands that talk to a running module over its control socket: `status`,
//! `deadletter list|requeue`, `resync`. Exit status 2 when no module runs there.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use omcmsync::control::{ask, AskError, Request};
use omcmsync::resync::Scope;
use serde_json::Value;

/// A requeue waits for the queue's fsync; status and the rest answer at once.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Asks, then prints with `show`; the exit status says how it went.
pub fn run(state_dir: &Path, request: Request, show: impl FnOnce(&Value)) -> ExitCode {
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
pub fn show_status(a: &Value) {
    println!(
        "omcmsync {} (pid {}), state.dir {}, HA role {}",
        text(&a["version"]),
        a["pid"],
        text(&a["state_dir"]),
        text(&a["role"])
    );
    let q = &a["queue"];
    println!(
        "queue: {} key(s), log {} bytes{}",
        q["keys"],
        q["log_bytes"],
        if q["held"] == true {
            ", held (standby)"
        } else {
            ""
        }
    );
    for p in a["problems"].as_array().into_iter().flatten() {
        println!(
            "degraded: {}: {} (since {}, seen {} times)",
            text(&p["param"]),
            text(&p["what"]),
            text(&p["since"]),
            p["seen"]
        );
    }
    if let Some(e) = a["deadletter_error"].as_str() {
        println!("dead-letter file {}: {e}", text(&a["deadletter_file"]));
    }
    println!(
        "{:<16} {:>8} {:>9} {:>6} {:>9} {:>12} {:>5}  LAST ANSWER",
        "ELEMENT", "PENDING", "IN-FLIGHT", "HELD", "OLDEST", "NEXT-TRY", "DEAD"
    );
    for e in a["elements"].as_array().into_iter().flatten() {
        let next = match e["next_attempt_in_ms"].as_u64() {
            Some(0) | None => "now".to_owned(),
            Some(ms) => format!("in {}", age(ms)),
        };
        let last = match (e["last_answer"].as_str(), e["last_answer_at"].as_str()) {
            (Some(text), Some(at)) => format!("{at} {text}"),
            _ => "-".into(),
        };
        let name = if e["configured"] == true {
            text(&e["name"]).to_owned()
        } else {
            format!("{} (not listed)", text(&e["name"]))
        };
        let n = |k: &str| e[k].to_string();
        println!(
            "{name:<16} {:>8} {:>9} {:>6} {:>9} {next:>12} {:>5}  {last}",
            n("pending"),
            n("in_flight"),
            n("held"),
            e["oldest_age_ms"].as_u64().map_or("-".into(), age),
            n("deadletters"),
        );
    }
    if let Some(more @ 1..) = a["elements_not_shown"].as_u64() {
        println!("... and {more} more configured element(s) with nothing pending or to show");
    }
}

/// `omcmsync status --offline`: the state directory read without a module (the default
/// dead-letter file, `STATE_DIR/deadletter.json`, and its older half).
pub fn offline_status(state_dir: &Path, json: bool) -> ExitCode {
    let (keys, recovery) = match omcmsync::queue::summary_offline(state_dir) {
        Ok(read) => read,
        Err(e) => {
            eprintln!("omcmsync: {}: {e}", state_dir.join("queue.log").display());
            return ExitCode::from(1);
        }
    };
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
    let elements: Vec<Value> = names
        .iter()
        .map(|name| {
            let k = keys.get(*name).cloned().unwrap_or_default();
            serde_json::json!({
                "name": name, "pending": k.pending,
                "oldest_age_ms": k.oldest_ms.map(|o| now.saturating_sub(o)),
                "deadletters": dead.get(*name).copied().unwrap_or(0),
            })
        })
        .collect();
    let pending: usize = keys.values().map(|k| k.pending).sum();
    let deadletters: u64 = dead.values().sum();
    let answer = serde_json::json!({
        "offline": true, "state_dir": state_dir.display().to_string(),
        "pending": pending, "deadletters": deadletters,
        "damaged_lines": recovery.bad_lines, "elements": elements,
    });
    if json {
        println!("{answer}");
        return ExitCode::SUCCESS;
    }
    println!(
        "state.dir {} (read without a module): {pending} change(s) pending, {deadletters} dead-lettered{}",
        state_dir.display(),
        match recovery.bad_lines {
            0 => String::new(),
            n => format!(", {n} damaged line(s) in queue.log"),
        }
    );
    println!(
        "{:<16} {:>8} {:>9} {:>5}",
        "ELEMENT", "PENDING", "OLDEST", "DEAD"
    );
    for e in &elements {
        println!(
            "{:<16} {:>8} {:>9} {:>5}",
            text(&e["name"]),
            e["pending"],
            e["oldest_age_ms"].as_u64().map_or("-".into(), age),
            e["deadletters"]
        );
    }
    ExitCode::SUCCESS
}

pub fn show_records(a: &Value) {
    for r in a["records"].as_array().into_iter().flatten() {
        println!("{r}");
    }
    let shown = a["records"].as_array().map_or(0, Vec::len);
    match a["matched"].as_u64() {
        Some(all) if all > shown as u64 => eprintln!(
            "the newest {shown} of {all} dead-lettered request(s); narrow with --element or \
             --since, or raise --limit (at most 1000)"
        ),
        _ => eprintln!("{shown} dead-lettered request(s)"),
    }
}

pub fn show_requeued(a: &Value) {
    println!(
        "{} dead-lettered request(s) requeued ({} key change(s)); they are delivered like any change",
        a["requeued"], a["changes"]
    );
}

pub fn show_queued(a: &Value) {
    println!("queued: {}", a["queued"]);
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
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
