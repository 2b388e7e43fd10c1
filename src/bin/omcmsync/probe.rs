//! What monitoring reads: `status --check`, a check in the monitoring-plugin conventions
//! (Nagios, Icinga: one line, performance data after `|`, exit status 0 OK, 1 WARNING,
//! 2 CRITICAL, 3 UNKNOWN), and `status --format openmetrics`, for node_exporter's textfile
//! collector (rsyslog 8.2102's impstats has no Prometheus format). Both from the module's
//! status answer over the control socket.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use omcmsync::control::{ask, ElementStatus, Request, Status};

use crate::cli::Thresholds;

/// Monitoring plugins are given about ten seconds.
const TIMEOUT: Duration = Duration::from_secs(8);

/// A check's outcome, in the plugin conventions' order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

impl State {
    fn word(self) -> &'static str {
        ["OK", "WARNING", "CRITICAL", "UNKNOWN"][self as usize]
    }
}

/// The figures a check and the metrics are made of, summed over the elements.
#[derive(Debug, Default, PartialEq)]
struct Figures {
    pending: u64,
    held: u64,
    oldest_ms: u64,
    dead: u64,
    degraded: Vec<String>,
    role: String,
}

impl Figures {
    /// The role was read as active or standby (else unknown, or not read yet).
    fn role_known(&self) -> bool {
        matches!(self.role.as_str(), "active" | "standby")
    }
}

fn figures(a: &Status) -> Figures {
    let mut f = Figures {
        role: a.role.clone(),
        ..Figures::default()
    };
    for e in &a.elements {
        f.pending += (e.pending + e.in_flight) as u64;
        f.held += e.held as u64;
        f.oldest_ms = f.oldest_ms.max(e.oldest_age_ms.unwrap_or(0));
        f.dead += e.deadletters;
    }
    f.degraded = a.problems.iter().map(|p| p.param.clone()).collect();
    f
}

/// The state and the line for `figures` under `t`.
fn judge(f: &Figures, t: &Thresholds) -> (State, String) {
    let mut why = Vec::new();
    let mut state = State::Ok;
    let mut raise = |to: State, what: String| {
        state = state.max(to);
        why.push(what);
    };
    let age_s = f.oldest_ms / 1000;
    if f.oldest_ms >= t.crit_age {
        raise(State::Critical, format!("a change waiting {age_s}s"));
    } else if f.oldest_ms >= t.warn_age {
        raise(State::Warning, format!("a change waiting {age_s}s"));
    }
    if f.dead >= t.crit_dead {
        raise(State::Critical, format!("{} dead letters", f.dead));
    } else if f.dead >= t.warn_dead {
        raise(State::Warning, format!("{} dead letters", f.dead));
    }
    if !f.role_known() {
        raise(State::Warning, format!("HA role {}", f.role));
    }
    if !f.degraded.is_empty() {
        raise(
            State::Warning,
            format!("degraded: {}", f.degraded.join(", ")),
        );
    }
    let summary = match why.is_empty() {
        true => format!("{} pending, oldest {age_s}s, role {}", f.pending, f.role),
        false => why.join("; "),
    };
    let line = format!(
        "OMCMSYNC {} - {summary} | pending={};;;0 held={};;;0 oldest_age={age_s}s;{};{};0 deadletters={};{};{};0 degraded={};;;0",
        state.word(),
        f.pending,
        f.held,
        t.warn_age / 1000,
        t.crit_age / 1000,
        f.dead,
        t.warn_dead,
        t.crit_dead,
        f.degraded.len(),
    );
    (state, line)
}

/// `omcmsync status --check`.
pub fn check(state_dir: &Path, t: &Thresholds) -> ExitCode {
    let (state, line) = match ask::<Status>(state_dir, &Request::Status, TIMEOUT) {
        Ok(a) => judge(&figures(&a), t),
        Err(e) => (State::Unknown, format!("OMCMSYNC UNKNOWN - {e}")),
    };
    println!("{line}");
    ExitCode::from(state as u8)
}

/// `omcmsync status --format openmetrics`: with no module answering, `omcmsync_up 0` (and
/// exit status 2), so that the collector shows the module down rather than stale figures.
pub fn openmetrics(state_dir: &Path) -> ExitCode {
    match ask::<Status>(state_dir, &Request::Status, TIMEOUT) {
        Ok(a) => {
            print!("{}", metrics(&a));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("omcmsync: {e}");
            let up = ["omcmsync_up 0".to_owned()];
            let help = "1 when the module answered.";
            println!("{}# EOF", family("up", "gauge", help, &up));
            ExitCode::from(2)
        }
    }
}

/// One metric family: its TYPE and HELP lines, then its samples.
fn family(name: &str, kind: &str, help: &str, samples: &[String]) -> String {
    let mut out = format!("# TYPE omcmsync_{name} {kind}\n# HELP omcmsync_{name} {help}\n");
    for s in samples {
        out.push_str(s);
        out.push('\n');
    }
    out
}

/// A label value, escaped as the exposition formats require.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn metrics(a: &Status) -> String {
    let mut out = gauges(a);
    out.extend(counters(a));
    out.push("# EOF\n".to_owned());
    out.concat()
}

/// One sample per element of `metric`, its value from the element's status.
fn per_element(a: &Status, metric: &str, value: impl Fn(&ElementStatus) -> String) -> Vec<String> {
    let sample = |e: &ElementStatus| {
        let name = label(&e.name);
        format!("omcmsync_{metric}{{element=\"{name}\"}} {}", value(e))
    };
    a.elements.iter().map(sample).collect()
}

/// The families of what is now: up, per element, the role, the problems.
fn gauges(a: &Status) -> Vec<String> {
    let f = figures(a);
    let role = ["active", "standby", "unknown"].map(|r| {
        let is = u8::from(f.role == r || (r == "unknown" && !f.role_known()));
        format!("omcmsync_role{{role=\"{r}\"}} {is}")
    });
    let age = |e: &ElementStatus| (e.oldest_age_ms.unwrap_or(0) as f64 / 1000.0).to_string();
    let gauge = |name: &str, help: &str, samples: &[String]| family(name, "gauge", help, samples);
    vec![
        gauge(
            "up",
            "1 when the module answered.",
            &["omcmsync_up 1".into()],
        ),
        gauge(
            "pending",
            "Changes waiting for delivery (pending or in flight).",
            &per_element(a, "pending", |e| (e.pending + e.in_flight).to_string()),
        ),
        gauge(
            "held",
            "Changes held while this node is standby.",
            &per_element(a, "held", |e| e.held.to_string()),
        ),
        "# UNIT omcmsync_oldest_pending_age_seconds seconds\n".to_owned(),
        gauge(
            "oldest_pending_age_seconds",
            "How long the oldest waiting change has waited.",
            &per_element(a, "oldest_pending_age_seconds", age),
        ),
        gauge(
            "deadletters",
            "Requests System Manager refused for good, in the dead-letter store.",
            &per_element(a, "deadletters", |e| e.deadletters.to_string()),
        ),
        gauge(
            "role",
            "The HA role as last read (1 for the role in force).",
            &role,
        ),
        gauge(
            "degraded",
            "Parameters the module runs without (omcmsync status names them).",
            &[format!("omcmsync_degraded {}", f.degraded.len())],
        ),
    ]
}

/// The counter families: POSTs and requests by outcome.
fn counters(a: &Status) -> Vec<String> {
    let counter = |name: &str| a.counters.get(name).copied().unwrap_or(0);
    let by_outcome = |metric: &str, help: &str, pairs: &[(&str, &str)]| {
        let sample = |(outcome, c): &(&str, &str)| {
            format!(
                "omcmsync_{metric}_total{{outcome=\"{outcome}\"}} {}",
                counter(c)
            )
        };
        let samples: Vec<String> = pairs.iter().map(sample).collect();
        family(metric, "counter", help, &samples)
    };
    vec![
        by_outcome(
            "posts",
            "POSTs to System Manager, by outcome.",
            &[
                ("ok", "posts.ok"),
                ("retried", "posts.retried"),
                ("unauthorized", "posts.unauthorized"),
                ("split", "posts.split"),
            ],
        ),
        by_outcome(
            "requests",
            "Resync requests, by outcome.",
            &[
                ("delivered", "requests.delivered"),
                ("deadlettered", "requests.deadlettered"),
            ],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use omcmsync::control::ProblemStatus;

    fn thresholds() -> Thresholds {
        Thresholds {
            warn_age: 300_000,
            crit_age: 1_800_000,
            warn_dead: 1,
            crit_dead: 100,
        }
    }

    fn status(oldest_ms: u64, dead: u64, role: &str, problems: &[&str]) -> Status {
        let problem = |p: &&str| ProblemStatus {
            param: p.to_string(),
            ..ProblemStatus::default()
        };
        let element = ElementStatus {
            name: "cm-\"east\"".into(),
            pending: 2,
            in_flight: 1,
            oldest_age_ms: Some(oldest_ms),
            deadletters: dead,
            ..ElementStatus::default()
        };
        Status {
            role: role.into(),
            problems: problems.iter().map(problem).collect(),
            counters: [("posts.ok".to_owned(), 5)].into_iter().collect(),
            elements: vec![element],
            ..Status::default()
        }
    }

    #[test]
    fn states_follow_age_dead_letters_role_and_problems() {
        let t = thresholds();
        let cases = [
            (status(1000, 0, "active", &[]), State::Ok),
            (status(300_000, 0, "active", &[]), State::Warning),
            (status(1_800_000, 0, "active", &[]), State::Critical),
            (status(0, 1, "standby", &[]), State::Warning),
            (status(0, 100, "active", &[]), State::Critical),
            (status(0, 0, "unknown", &[]), State::Warning),
            (status(0, 0, "not read yet", &[]), State::Warning),
            (status(0, 0, "active", &["smgr.tls.cacert"]), State::Warning),
            (status(1_800_000, 0, "unknown", &[]), State::Critical),
        ];
        for (a, want) in cases {
            let (got, line) = judge(&figures(&a), &t);
            assert_eq!(got, want, "{line}");
            assert!(
                line.starts_with(&format!("OMCMSYNC {} - ", want.word())),
                "{line}"
            );
            assert!(line.contains(" | pending=3;;;0 "), "{line}");
        }
    }

    #[test]
    fn metrics_end_in_eof_and_escape_labels() {
        let m = metrics(&status(2500, 3, "active", &[]));
        assert!(m.ends_with("# EOF\n"), "{m}");
        assert!(
            m.contains("omcmsync_pending{element=\"cm-\\\"east\\\"\"} 3\n"),
            "{m}"
        );
        assert!(
            m.contains("omcmsync_oldest_pending_age_seconds{element=\"cm-\\\"east\\\"\"} 2.5\n"),
            "{m}"
        );
        assert!(
            m.contains("omcmsync_posts_total{outcome=\"ok\"} 5\n"),
            "{m}"
        );
        assert!(m.contains("omcmsync_role{role=\"active\"} 1\n"), "{m}");
    }
}
