//! The thread `omcmsync-reconcile`: decides when each element is reconciled, runs its session,
//! and queues what was missed. One session at a time; at most one per element every
//! `reconcile.interval.ms` (an operator's request excepted); none on a standby.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::judge::{judge, Inputs};
use super::memory::{Judged, Memory, RunSummary};
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
use crate::supervise::Context;

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
}

/// When each element is due, and why.
#[derive(Default)]
struct Plan {
    due: HashMap<String, (Instant, Trigger)>,
    last: HashMap<String, Instant>,
}

impl Plan {
    /// Makes `element` due for `why`, at once or when the interval since its last session ends.
    fn mark(&mut self, element: &str, why: Trigger, interval: Duration) {
        let now = Instant::now();
        let at = self
            .last
            .get(element)
            .map_or(now, |l| (*l + interval).max(now));
        let entry = self.due.entry(element.to_owned()).or_insert((at, why));
        // A trigger due no later than the schedule (or the schedule already due) names the
        // session.
        if at <= entry.0.max(now) {
            *entry = (at, why);
        }
    }

    /// The elements due now, soonest first.
    fn take_due(&mut self) -> Vec<(String, Trigger)> {
        let now = Instant::now();
        let mut due: Vec<(String, Instant, Trigger)> = self
            .due
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(e, (at, why))| (e.clone(), *at, *why))
            .collect();
        due.sort_by_key(|(_, at, _)| *at);
        for (e, _, _) in &due {
            self.due.remove(e);
        }
        due.into_iter().map(|(e, _, why)| (e, why)).collect()
    }

    fn next(&self) -> Option<Instant> {
        self.due.values().map(|(at, _)| *at).min()
    }
}

impl Reconciler {
    pub fn run(&self) {
        let mut plan = Plan::default();
        // None until the first look: a start is not a promotion.
        let mut was_active: Option<bool> = None;
        let mut last_save = Instant::now();
        while !self.context.shutdown.is_set() {
            let active = self.gate.admission() == Admission::Process;
            let watched = self.watched(&mut plan);
            if !active {
                // An operator's request that came before the role changed is dropped: the
                // control socket refuses them on a standby.
                self.requests.take();
                if self.gate.role() == Role::Standby {
                    self.standby(&watched);
                }
            } else {
                self.mark_triggers(&mut plan, was_active == Some(false));
                for asked in self.requests.take() {
                    self.operator(&asked, &watched);
                }
                for (element, why) in plan.take_due() {
                    if self.context.shutdown.is_set() {
                        break;
                    }
                    self.session(&element, why, None);
                    plan.last.insert(element.clone(), Instant::now());
                    plan.mark(&element, Trigger::Schedule, self.settings.interval);
                }
            }
            was_active = Some(active);
            if last_save.elapsed() >= SAVE_EVERY {
                self.save();
                last_save = Instant::now();
            }
            // Until the first look, batches wait for it: look again soon.
            let most = if self.memory.looked() {
                SAVE_EVERY
            } else {
                FIRST_LOOK
            };
            let wait = plan.next().map_or(most, |at| {
                at.saturating_duration_since(Instant::now()).min(most)
            });
            self.requests.wait(wait.max(FIRST_LOOK));
        }
        self.save();
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
        plan.due.retain(|name, _| names.contains(name));
        plan.last.retain(|name, _| names.contains(name));
        for name in &names {
            self.memory.watch(name, now);
            if plan.due.contains_key(name) || plan.last.contains_key(name) {
                continue;
            }
            let covered = self.memory.get(name).map_or(now, |m| m.covered);
            let interval = self.settings.interval.as_millis() as u64;
            if covered + interval < now {
                plan.mark(name, Trigger::Start, self.settings.interval);
            } else {
                let wait = Duration::from_millis(covered + interval - now);
                plan.due
                    .insert(name.clone(), (Instant::now() + wait, Trigger::Schedule));
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
        let names: Vec<String> = plan.last.keys().chain(plan.due.keys()).cloned().collect();
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

    fn operator(&self, asked: &Asked, watched: &[String]) {
        for name in watched {
            if self.context.shutdown.is_set() {
                return;
            }
            if asked.element.as_ref().is_none_or(|e| e == name) {
                self.session(name, Trigger::Operator, asked.since_ms);
            }
        }
    }

    /// One session with `element` and its judgement.
    fn session(&self, element: &str, why: Trigger, since: Option<u64>) {
        let read_at = now_ms();
        let summary = RunSummary {
            at: rfc3339(read_at),
            why: why.as_str().into(),
            ..RunSummary::default()
        };
        let before = self.memory.get(element).and_then(|m| m.last_run);
        let c = &self.context.counters;
        let judged = match self.read_and_judge(element, read_at, since, summary.clone()) {
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
        if s.missed > 0 || s.wrapped {
            let wrapped = if s.wrapped {
                "; the history did not reach back far enough: the element is resynced whole"
            } else {
                ""
            };
            logging::info(&format!(
                "reconcile {element} ({}): {} records, {} changes heard, {} missed and requested{wrapped}",
                s.why, s.records, s.heard, s.missed
            ));
        }
    }

    fn save(&self) {
        if let Err(e) = self.memory.save_if_changed() {
            self.context
                .problems
                .report("state.dir", &format!("writing reconcile.json failed: {e}"));
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
