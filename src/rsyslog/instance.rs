//! What one `action(type="omcmsync")` holds, and when its action starts: at once, or, when
//! its `config.file` cannot be used at a real start, as soon as it can. Meanwhile the action
//! answers rsyslog "suspended", so rsyslog keeps CM's lines (the snippets' queue spills to
//! disk) instead of the action being refused and its ruleset dropping them; a thread of its
//! own looks at the file twice a second (so what `state.dir` held before is delivered once it
//! can be, CM quiet or not), and so does rsyslog's retry of the action.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use super::guard::with_signals_blocked;
use super::stats::{object_name, StatsObject};
use crate::action::Action;
use crate::config::{Config, ConfigError, Start, StateDirClaim, Value};
use crate::logging;

/// How often a waiting action looks at its `config.file` again, at most (rsyslog retries a
/// suspended action every second or so).
const LOOK_AGAIN: Duration = Duration::from_millis(500);

/// How long a late start waits for its queue (recovering a large one takes longer: the batch
/// is then held and retried by rsyslog).
const LATE_START_WAIT: Duration = Duration::from_secs(5);

/// Stats objects registered so far (for unique names).
static STATS_OBJECTS: AtomicU64 = AtomicU64::new(0);

/// `stats` is declared first so that it is dropped (unregistered from impstats) before the
/// counters it points into.
pub(super) struct Instance {
    stats: Mutex<Option<StatsObject>>,
    running: OnceLock<Running>,
    /// The action's values, while its `config.file` cannot be used.
    awaiting: Option<Awaiting>,
    pub(super) next_worker: AtomicU64,
}

struct Running {
    action: Action,
    /// This action's state.dir is no other action's.
    _claim: StateDirClaim,
}

struct Awaiting {
    values: Vec<(&'static str, Value)>,
    /// When the file was last looked at, and what was said of it (said once).
    last: Mutex<(Instant, String)>,
}

impl Instance {
    pub(super) fn ready(config: Config, claim: StateDirClaim) -> Instance {
        let instance = Instance::new(None);
        let running = Running {
            action: Action::new(config),
            _claim: claim,
        };
        let _ = instance.running.set(running);
        instance
    }

    /// An action that waits for its `config.file`; `error` says why, and is said now.
    pub(super) fn awaiting(values: Vec<(&'static str, Value)>, error: &ConfigError) -> Instance {
        let said = waiting_message(error);
        logging::error(&said);
        Instance::new(Some(Awaiting {
            values,
            last: Mutex::new((Instant::now(), said)),
        }))
    }

    fn new(awaiting: Option<Awaiting>) -> Instance {
        Instance {
            stats: Mutex::new(None),
            running: OnceLock::new(),
            awaiting,
            next_worker: AtomicU64::new(0),
        }
    }

    /// The configuration goes live: start the action (what was queued before a restart is
    /// delivered even if no new message arrives), or watch for the site's file.
    pub(super) fn activate(instance: &Arc<Instance>) {
        match instance.running.get() {
            Some(running) => instance.start(&running.action),
            None => {
                let watched = Arc::downgrade(instance);
                with_signals_blocked(|| {
                    let spawned = std::thread::Builder::new()
                        .name("omcm-await".into())
                        .spawn(move || watch(watched));
                    if let Err(e) = spawned {
                        logging::warning(&format!(
                            "no thread to watch config.file ({e}): rsyslog's retries look at it"
                        ));
                    }
                });
            }
        }
    }

    /// The running action, if it runs (nothing is built).
    pub(super) fn running(&self) -> Option<&Action> {
        self.running.get().map(|r| &r.action)
    }

    /// The running action; while it waits for its `config.file`, the file is looked at
    /// (at most twice a second) and the action started once it can be used.
    pub(super) fn action(&self) -> Option<&Action> {
        if let Some(running) = self.running.get() {
            return Some(&running.action);
        }
        let awaiting = self.awaiting.as_ref()?;
        // parking_lot's lock is not poisoned: a panic while starting (caught at the
        // boundary) does not end the retries.
        let mut last = awaiting.last.try_lock()?;
        if last.0.elapsed() < LOOK_AGAIN {
            return None;
        }
        last.0 = Instant::now();
        match start_from(&awaiting.values) {
            Ok((config, claim)) => {
                let running = Running {
                    action: Action::new(config),
                    _claim: claim,
                };
                if self.running.set(running).is_ok() {
                    let action = &self.running.get()?.action;
                    // On rsyslog's worker, which is about to hand over its batch: wait (a
                    // little) until the queue can take it.
                    with_signals_blocked(|| {
                        action.start_within(LATE_START_WAIT);
                    });
                    self.register_stats(action);
                    logging::info("config.file can be used now: the action runs");
                }
                self.running.get().map(|r| &r.action)
            }
            Err(said) => {
                if said != last.1 {
                    logging::error(&said);
                    last.1 = said;
                }
                None
            }
        }
    }

    fn start(&self, action: &Action) {
        // A failure is logged and retried by the first batch; rsyslog keeps the messages. The
        // threads it starts block signals, like rsyslog's own.
        with_signals_blocked(|| action.start_in_background());
        self.register_stats(action);
    }

    fn register_stats(&self, action: &Action) {
        let n = STATS_OBJECTS.fetch_add(1, Ordering::Relaxed);
        let counters = action.counters().named();
        *self.stats.lock() = StatsObject::register(&object_name(n), &counters);
    }
}

/// Looks at the site's file until the action runs or is gone.
fn watch(instance: Weak<Instance>) {
    while let Some(instance) = instance.upgrade() {
        if instance.action().is_some() {
            return;
        }
        drop(instance);
        std::thread::sleep(LOOK_AGAIN);
    }
}

/// A configuration and its state.dir claim from the action's values, or what to say.
fn start_from(values: &[(&'static str, Value)]) -> Result<(Config, StateDirClaim), String> {
    let values = values.iter().map(|(n, v)| (*n, v.clone()));
    match Config::at_start(values) {
        Ok(Start::Ready(config)) => StateDirClaim::take(&config.state_dir)
            .map(|claim| (*config, claim))
            .map_err(|e| e.to_string()),
        Ok(Start::AwaitingSiteFile(e)) => Err(waiting_message(&e)),
        Err(e) => Err(e.to_string()),
    }
}

fn waiting_message(error: &ConfigError) -> String {
    format!(
        "{error}; the action waits for it, looking again twice a second: rsyslog keeps CM's \
         lines meanwhile"
    )
}
