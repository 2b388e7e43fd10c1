//! The thread `omcmsync-reconcile` decides when each element is reconciled ([`Plan`]) and
//! starts its session in a thread of its own (`omcmsync-ossi`), which judges the history and
//! queues what was missed. At most [`SESSIONS_MAX`] sessions at once and one per element, so a
//! CM that hangs holds up no other; at most one per element every `reconcile.interval.ms` (an
//! operator's request excepted); none on a standby.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use super::memory::Memory;
use super::plan::Plan;
use super::requests::{Asked, Requests, Trigger};
use super::run::Findings;
use super::HistoryReader;
use crate::clock::{now_ms, parse_rfc3339_ms};
use crate::config::ReconcileSettings;
use crate::elements::Elements;
use crate::ha::{Admission, Gate, Role};
use crate::logging;
use crate::program::ProcessGroups;
use crate::queue::Queue;
use crate::supervise::Context;

/// Sessions at once, each with its own element (each is one `omcmsync-ossi` process).
pub const SESSIONS_MAX: usize = 4;
/// How often the memory is written while it changes.
const SAVE_EVERY: Duration = Duration::from_secs(10);
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
    /// The findings not said yet, per element ([`Findings`]).
    pub findings: Mutex<HashMap<String, Findings>>,
    /// Elements whose session ended, for the planner to put back on the schedule.
    pub ended: Mutex<Vec<String>>,
}

type Running<'s> = HashMap<String, ScopedJoinHandle<'s, ()>>;

impl Reconciler {
    pub fn run(&self) {
        let mut plan = Plan::default();
        // None until the first look: a start is not a promotion.
        let mut was_active: Option<bool> = None;
        let mut last_save = Instant::now();
        // The sessions' threads borrow the reconciler; the scope ends when they all have (at
        // a stop their programs are killed first).
        std::thread::scope(|scope| {
            let mut running = Running::new();
            while !self.context.shutdown.is_set() {
                self.ended(&mut plan, &mut running);
                let active = self.gate.admission() == Admission::Process;
                let watched = self.watched(&mut plan);
                if !active {
                    // An operator's request or a silence that came before the role changed is
                    // dropped: the control socket refuses requests on a standby.
                    self.requests.take();
                    self.memory.take_woken();
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
                let startable = active && running.len() < SESSIONS_MAX;
                let next = plan.next(|e| !startable || running.contains_key(e));
                self.requests.wait(self.wait(next));
            }
        });
        self.save();
    }

    /// Until the next session that can start (a session that ends wakes the planner too);
    /// until the first look, batches wait for it: look again soon.
    fn wait(&self, next: Option<Instant>) -> Duration {
        let most = if self.memory.looked() {
            SAVE_EVERY
        } else {
            FIRST_LOOK
        };
        let wait = next.map_or(most, |at| {
            at.saturating_duration_since(Instant::now()).min(most)
        });
        wait.max(FIRST_LOOK)
    }

    /// Sessions that ended (said so, or their thread did): joined, and their elements back on
    /// the schedule.
    fn ended(&self, plan: &mut Plan, running: &mut Running<'_>) {
        let mut ended = std::mem::take(&mut *self.ended.lock());
        ended.extend(
            running
                .iter()
                .filter(|(_, session)| session.is_finished())
                .map(|(element, _)| element.clone()),
        );
        for element in ended {
            let joined = running.remove(&element).map(|session| session.join());
            if let Some(Err(panic)) = joined {
                let why = crate::supervise::panic_message(&*panic);
                logging::error(&format!(
                    "reconcile {element}: the session's thread panicked: {why}"
                ));
            }
            plan.mark(&element, Trigger::Schedule, self.settings.interval);
        }
    }

    /// Starts the sessions due, each in its own thread (inline if none can be made).
    fn start_due<'s>(
        &'s self,
        scope: &'s Scope<'s, '_>,
        plan: &mut Plan,
        running: &mut Running<'s>,
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
        self.findings.lock().retain(|name, _| names.contains(name));
        for name in &names {
            self.memory.watch(name, now);
            if plan.knows(name) {
                continue;
            }
            let memory = self.memory.get(name).unwrap_or_default();
            // The interval holds across restarts: from the last session's start, if it read
            // CM (a failed one, a stop's among them, compared nothing).
            let last = memory.last_run.filter(|r| r.failed.is_none());
            let last = last.and_then(|r| parse_rfc3339_ms(&r.at));
            let ago = last
                .and_then(|at| now.checked_sub(at))
                .map(Duration::from_millis);
            let began = ago.filter(|ago| *ago < self.settings.interval);
            if let Some(began) = began.and_then(|ago| Instant::now().checked_sub(ago)) {
                plan.started(name, began);
            }
            let covered = if memory.covered == 0 {
                now
            } else {
                memory.covered
            };
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

    pub(super) fn save(&self) {
        if let Err(e) = self.memory.save_if_changed() {
            self.context
                .problems
                .report("state.dir", &format!("writing reconcile.json failed: {e}"));
        }
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
