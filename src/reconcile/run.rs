//! One reconciliation of one element, on a session's thread: the OSSI session, the
//! judgement of its history, what it queues, what it says, and what it leaves in the memory.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::judge::{judge, Inputs};
use super::memory::{Judged, RunSummary};
use super::plan::Due;
use super::session::{self, Access, CLOCK, HISTORY};
use super::worker::Reconciler;
use crate::clock::{now_ms, rfc3339};
use crate::ha::Admission;
use crate::logging;
use crate::supervise;

/// How long after a session its history is judged: syslog lines of the last changes before
/// it may still be on their way.
const SETTLE: Duration = Duration::from_secs(5);
/// At most one line a quarter hour per element says that a session found missed changes; the
/// ones between are summed into the next.
const FINDINGS_EVERY: Duration = Duration::from_secs(900);

/// Sessions that found missed changes since an element's last such line.
#[derive(Default)]
pub struct Findings {
    said: Option<Instant>,
    sessions: u64,
    missed: u64,
}

impl Reconciler {
    /// One session with `element` and its judgement.
    pub(super) fn session(&self, element: &str, due: Due) {
        let read_at = now_ms();
        let summary = RunSummary {
            at: rfc3339(read_at),
            why: due.why.as_str().into(),
            ..RunSummary::default()
        };
        let before = self.memory.get(element).and_then(|m| m.last_run);
        let c = &self.context.counters;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            #[cfg(feature = "fault-hooks")]
            crate::faults::panic_once("omcmsync-ossi");
            self.read_and_judge(element, read_at, due.since, summary.clone())
        }))
        .unwrap_or_else(|panic| {
            let why = supervise::panic_message(&*panic);
            logging::error(&format!(
                "reconcile {element}: the session panicked: {why}; it counts as failed"
            ));
            Err("an internal error (a panic, logged)".into())
        });
        let judged = match outcome {
            Ok(judged) => {
                c.reconcile_runs.fetch_add(1, Ordering::Relaxed);
                c.reconcile_missed
                    .fetch_add(judged.summary.missed as u64, Ordering::Relaxed);
                judged
            }
            Err(why) => {
                c.reconcile_failed.fetch_add(1, Ordering::Relaxed);
                unjudged(RunSummary {
                    failed: Some(why),
                    ..summary
                })
            }
        };
        self.say(element, before.as_ref(), &judged.summary);
        self.memory.judged(element, judged);
        self.save();
        // The planner puts the element back on the schedule.
        self.ended.lock().push(element.to_owned());
        self.requests.nudge();
    }

    fn read_and_judge(
        &self,
        element: &str,
        read_at: u64,
        since: Option<u64>,
        summary: RunSummary,
    ) -> Result<Judged, String> {
        let access = self.access(element)?;
        if self.context.shutdown.is_set() {
            return Err("stopped before the session".into());
        }
        let started = Instant::now();
        let (host, replies) =
            session::run(&access, &self.settings, &[CLOCK, HISTORY], &self.programs)
                .map_err(|f| format!("OSSI session: {f}"))?;
        let session_ms = started.elapsed().as_millis() as u64;
        if self.context.shutdown.wait(SETTLE) {
            return Err("stopped before the history was judged".into());
        }
        let memory = self.memory.get(element).unwrap_or_default();
        let input = Inputs {
            element,
            replies: &replies,
            read_at,
            memory: &memory,
            since,
            tolerance_ms: self.settings.tolerance.as_millis() as u64,
        };
        let summary = RunSummary {
            host: Some(host),
            session_ms,
            ..summary
        };
        let judging = Instant::now();
        let mut verdict = judge(&input, &*self.reader, summary)?;
        verdict.judged.summary.judge_ms = judging.elapsed().as_millis() as u64;
        if self.gate.admission() != Admission::Process {
            return Err(
                "this node stopped being active: nothing queued (the active one reconciles)".into(),
            );
        }
        self.queue
            .submit_synced(verdict.changes)
            .map_err(|e| format!("queueing what was missed: {e}"))?;
        Ok(verdict.judged)
    }

    fn access(&self, element: &str) -> Result<Access, String> {
        let hosts = self.elements.hosts(element);
        let dir = self.settings.dir.join(element);
        Access::read(&dir, &hosts)
            .unwrap_or_else(|| Err(format!("{}: no directory", dir.display())))
    }

    /// Logs a session that found something, a failure once (until it changes), and the first
    /// success after failures.
    fn say(&self, element: &str, before: Option<&RunSummary>, s: &RunSummary) {
        let failed_before = before.and_then(|b| b.failed.as_ref());
        match &s.failed {
            Some(why) if failed_before != Some(why) => logging::warning(&format!(
                "reconcile {element}: {why}; tried again within reconcile.interval.ms, changes heard by syslog are delivered meanwhile"
            )),
            Some(_) => {}
            None if failed_before.is_some() => {
                logging::info(&format!("reconcile {element}: CM's history is read again"))
            }
            None => {}
        }
        if s.missed == 0 && !s.wrapped {
            return;
        }
        let mut findings = self.findings.lock();
        let Some(earlier) = findings.entry(element.to_owned()).or_default().add(
            s.missed as u64,
            s.wrapped,
            Instant::now(),
        ) else {
            return;
        };
        let wrapped = if s.wrapped {
            "; the history did not reach back far enough: the element is resynced whole"
        } else {
            ""
        };
        let earlier = match earlier {
            (0, _) => String::new(),
            (n, missed) => format!(" ({n} sessions since the last such line found {missed} more)"),
        };
        logging::info(&format!(
            "reconcile {element} ({}): {} records, {} changes heard, {} missed and requested{wrapped}{earlier}",
            s.why, s.records, s.heard, s.missed
        ));
    }
}

impl Findings {
    /// A session found `missed` changes (or a wrapped history, always said): the sessions and
    /// changes found since the last line to say with it, or None to stay quiet.
    fn add(&mut self, missed: u64, wrapped: bool, now: Instant) -> Option<(u64, u64)> {
        let quiet = self
            .said
            .is_some_and(|said| now.duration_since(said) < FINDINGS_EVERY);
        if quiet && !wrapped {
            self.sessions += 1;
            self.missed += missed;
            return None;
        }
        let earlier = (self.sessions, self.missed);
        *self = Findings {
            said: Some(now),
            ..Findings::default()
        };
        Some(earlier)
    }
}

/// What a failed session leaves: its summary, nothing judged.
fn unjudged(summary: RunSummary) -> Judged {
    Judged {
        covered: None,
        lines: Vec::new(),
        paired: Vec::new(),
        offset_ms: None,
        keep_from: 0,
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_are_said_once_a_quarter_hour_with_the_ones_between() {
        let mut f = Findings::default();
        let t0 = Instant::now();
        assert_eq!(f.add(3, false, t0), Some((0, 0)));
        assert_eq!(f.add(2, false, t0 + Duration::from_secs(300)), None);
        assert_eq!(f.add(4, false, t0 + Duration::from_secs(600)), None);
        // A wrapped history is always said.
        assert_eq!(f.add(0, true, t0 + Duration::from_secs(700)), Some((2, 6)));
        assert_eq!(f.add(1, false, t0 + Duration::from_secs(800)), None);
        let later = t0 + Duration::from_secs(700) + FINDINGS_EVERY;
        assert_eq!(f.add(5, false, later), Some((1, 1)));
    }
}
