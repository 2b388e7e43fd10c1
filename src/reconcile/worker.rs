//! The thread `omcmsync-reconcile` decides when each element is reconciled ([`Plan`]) and
//! starts its session in a thread of its own (`omcmsync-ossi`), which judges the history and
//! queues what was missed. At most [`SESSIONS_MAX`] sessions at once and one per element, so a
//! CM that hangs holds up no other; at most one per element every `reconcile.interval.ms` (an
//! operator's request excepted); none on a standby.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use super::judge::{judge, Inputs};
use super::memory::{Judged, Memory, RunSummary};
use super::plan::{Due, Plan};
use super::requests::{Asked, Requests, Trigger};
use super::session::{self, Access, CLOCK, HISTORY};
use super::HistoryReader;
use crate::clock::{now_ms, rfc3339};
use crate::config::ReconcileSettings;
use crate::elements::Elements;
use crate::ha::{Admission, Gate, Role};
use crate::logging;
use crate::program::ProcessGroups;
use crate::queue::Queue;
use crate::supervise::{self, Context};

/// Sessions at once, each with its own element (each is one `omcmsync-ossi` process).
pub const SESSIONS_MAX: usize = 4;
/// At most one line a quarter hour per element says that a session found missed changes; the
/// ones between are summed into the next.
const FINDINGS_EVERY: Duration = Duration::from_secs(900);

/// How often the memory is written while it changes.
const SAVE_EVERY: Duration = Duration::from_secs(10);
/// How long after a session its history is judged: syslog lines of the last changes before
/// it may still be on their way.
const SETTLE: Duration = Duration::from_secs(5);
/// How often the reconciler looks for the element list before its first look.
const FIRST_LOOK: Duration = Duration::from_millis(50);

pub struct Reconciler {
    pub settings: ReconcileSettings,
    pub memory: Arc<Memory>,
    pub elements: Arc<Elements>,
    pub gate: Arc<Gate>,
    pub queue: Arc<Queue>,
    pub reader: Arc<dyn HistoryReader>,
    pub requests: Arc<Requests>,
    /// The sessions running: killed at stop.
    pub programs: Arc<ProcessGroups>,
    pub context: Context,
    /// The findings not said yet, per element ([`FINDINGS_EVERY`]).
    pub findings: Mutex<HashMap<String, Findings>>,
}

/// Sessions that found missed changes since an element's last such line.
#[derive(Default)]
pub struct Findings {
    said: Option<Instant>,
    sessions: u64,
    missed: u64,
}

impl Reconciler {
    pub fn run(&self) {
        let mut plan = Plan::default();
        // None until the first look: a start is not a promotion.
        let mut was_active: Option<bool> = None;
        let mut last_save = Instant::now();
        // The sessions' threads borrow the reconciler; the scope ends when they all have (at
        // a stop their programs are killed first).
        std::thread::scope(|scope| {
            let mut running: HashMap<String, ScopedJoinHandle<'_, ()>> = HashMap::new();
            while !self.context.shutdown.is_set() {
                self.ended(&mut plan, &mut running);
                let active = self.gate.admission() == Admission::Process;
                let watched = self.watched(&mut plan);
                if !active {
                    // An operator's request that came before the role changed is dropped:
                    // the control socket refuses them on a standby.
                    self.requests.take();
                    if self.gate.role() == Role::Standby {
                        self.standby(&watched);
                    }
                } else {
                    self.mark_triggers(&mut plan, was_active == Some(false));
                    for asked in self.requests.take() {
                        operator(&mut plan, &asked, &watched);
                    }
                    self.start_due(scope, &mut plan, &mut running);
                }
                was_active = Some(active);
                if last_save.elapsed() >= SAVE_EVERY {
                    self.save();
                    last_save = Instant::now();
                }
                self.requests.wait(self.wait(&plan));
            }
        });
        self.save();
    }

    /// Until the first look, batches wait for it: look again soon.
    fn wait(&self, plan: &Plan) -> Duration {
        let most = if self.memory.looked() {
            SAVE_EVERY
        } else {
            FIRST_LOOK
        };
        let wait = plan.next().map_or(most, |at| {
            at.saturating_duration_since(Instant::now()).min(most)
        });
        wait.max(FIRST_LOOK)
    }

    /// Sessions that ended: their elements go back on the schedule.
    fn ended(&self, plan: &mut Plan, running: &mut HashMap<String, ScopedJoinHandle<'_, ()>>) {
        running.retain(|element, session| {
            let ended = session.is_finished();
            if ended {
                plan.mark(element, Trigger::Schedule, self.settings.interval);
            }
            !ended
        });
    }

    /// Starts the sessions due, each in its own thread (inline if none can be made).
    fn start_due<'s>(
        &'s self,
        scope: &'s Scope<'s, '_>,
        plan: &mut Plan,
        running: &mut HashMap<String, ScopedJoinHandle<'s, ()>>,
    ) {
        let room = SESSIONS_MAX.saturating_sub(running.len());
        for (element, due) in plan.start_due(room, |e| running.contains_key(e)) {
            if self.context.shutdown.is_set() {
                return;
            }
            let name = element.clone();
            let thread = std::thread::Builder::new()
                .name("omcmsync-ossi".into())
                .spawn_scoped(scope, move || self.session(&name, due));
            match thread {
                Ok(thread) => {
                    running.insert(element, thread);
                }
                Err(_) => self.session(&element, due),
            }
        }
    }

    /// The elements with a directory under `reconcile.dir`, remembered; a new one is planned
    /// (at once when it was not compared for longer than the interval: a start after downtime).
    fn watched(&self, plan: &mut Plan) -> Vec<String> {
        if !self.settings.enabled {
            self.memory.set_looked();
            return Vec::new();
        }
        if !self.elements.ready() {
            return Vec::new();
        }
        let table = self.elements.current();
        let names: Vec<String> = table
            .names()
            .filter(|n| self.settings.dir.join(&***n).is_dir())
            .map(|n| n.to_string())
            .collect();
        let now = now_ms();
        // An element no longer reconciled leaves the plan (and the memory, below).
        plan.retain(&names);
        for name in &names {
            self.memory.watch(name, now);
            if plan.knows(name) {
                continue;
            }
            let covered = self.memory.get(name).map_or(now, |m| m.covered);
            let interval = self.settings.interval.as_millis() as u64;
            if covered + interval < now {
                plan.mark(name, Trigger::Start, self.settings.interval);
            } else {
                let wait = Duration::from_millis(covered + interval - now);
                plan.schedule(name, Instant::now() + wait);
            }
        }
        self.memory.retain(&names);
        self.memory.set_looked();
        names
    }

    /// A standby hears what the active hears and answers for nothing before it: its compared
    /// span moves on with time, so that a promotion compares only the last interval, while a
    /// standby that was down keeps the gap it was down for.
    fn standby(&self, watched: &[String]) {
        let to = now_ms().saturating_sub(self.settings.interval.as_millis() as u64);
        for name in watched {
            self.memory.advance(name, to);
        }
    }

    fn mark_triggers(&self, plan: &mut Plan, promoted: bool) {
        let names = plan.names();
        if promoted {
            for name in &names {
                plan.mark(name, Trigger::Promotion, self.settings.interval);
            }
        }
        for name in self.memory.take_woken() {
            if names.contains(&name) {
                plan.mark(&name, Trigger::Silence, self.settings.interval);
            }
        }
    }

    /// One session with `element` and its judgement.
    fn session(&self, element: &str, due: Due) {
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
            let next = "the session counts as failed";
            supervise::report("omcmsync-ossi", &*panic, c, next);
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

    fn save(&self) {
        if let Err(e) = self.memory.save_if_changed() {
            self.context
                .problems
                .report("state.dir", &format!("writing reconcile.json failed: {e}"));
        }
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

/// An operator asks for one element or all of them.
fn operator(plan: &mut Plan, asked: &Asked, watched: &[String]) {
    for name in watched {
        if asked.element.as_ref().is_none_or(|e| e == name) {
            plan.ask(name, asked.since_ms);
        }
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
