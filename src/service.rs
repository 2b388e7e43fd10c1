//! The background side of one action: the queue (and its fsync and compaction thread), the
//! delivery thread, the HA watch ([`ha::Watch`]), the element list's refresher
//! ([`Refresher`]) and the control socket, sharing one [`Context`] and its stop signal. [`Lifecycle`] owns it: starts it in the background when rsyslog activates the
//! configuration (never in `rsyslogd -N1`, never on rsyslog's main thread or a worker), tries
//! a failed start again, and stops it when the action is freed; what is queued stays on disk
//! for the next start. [`Service`] is the running part.

use parking_lot::{Condvar, Mutex};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::{Config, ElementsSource, HaMode};
use crate::control::{Control, Listening};
use crate::counters::Counters;
use crate::deliver::{DeadLetters, Deliverer};
use crate::elements::{parse_elements_lenient, Elements, Refresher};
use crate::ha::{self, Gate};
use crate::logging;
use crate::problems::Problems;
use crate::program::ProcessGroups;
use crate::queue::{Queue, QueueConfig, Recovery};
use crate::reconcile::{HistoryReader, Memory, Reconciler, Requests};
use crate::smgr::SharedClient;
use crate::supervise::{self, Context, Health, Hup, Shutdown};

/// How often a failed start of the service is tried again.
const RESTART_EVERY: Duration = Duration::from_secs(5);

/// Starts, restarts and stops one action's [`Service`].
pub struct Lifecycle {
    inner: Arc<LifecycleInner>,
}

/// What an action shares with its service, made once per action: a restart of the service
/// keeps them.
#[derive(Clone)]
pub struct Shared {
    pub elements: Arc<Elements>,
    pub gate: Arc<Gate>,
    pub counters: Arc<Counters>,
    pub problems: Arc<Problems>,
    /// Set by the action on HUP, taken by the element refresher.
    pub hup: Arc<Hup>,
    /// What reconciliation remembers (the action notes what it hears), and how it reads a
    /// history record (the action's pipeline).
    pub memory: Arc<Memory>,
    pub reader: Arc<dyn HistoryReader>,
    /// What wakes the reconciler: an operator, a silence ended, a new role.
    pub reconcile: Arc<Requests>,
}

struct LifecycleInner {
    config: Config,
    shared: Shared,
    state: Mutex<LifecycleState>,
    /// A start ended (ran or failed).
    changed: Condvar,
}

#[derive(Default)]
struct LifecycleState {
    running: Option<Service>,
    starting: bool,
    stopped: bool,
    last_attempt: Option<Instant>,
}

impl Lifecycle {
    pub fn new(config: Config, shared: Shared) -> Self {
        Lifecycle {
            inner: Arc::new(LifecycleInner {
                config,
                shared,
                state: Mutex::default(),
                changed: Condvar::new(),
            }),
        }
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, LifecycleState> {
        self.inner.state.lock()
    }

    /// Starts the service in a thread of its own unless it runs, is starting, or failed less
    /// than [`RESTART_EVERY`] ago. Returns at once.
    pub fn start(&self) {
        let mut state = self.lock();
        self.start_locked(&mut state);
    }

    fn start_locked(&self, state: &mut LifecycleState) {
        let retry_later = state
            .last_attempt
            .is_some_and(|t| t.elapsed() < RESTART_EVERY);
        if state.running.is_some() || state.starting || state.stopped || retry_later {
            return;
        }
        state.starting = true;
        state.last_attempt = Some(Instant::now());
        let inner = self.inner.clone();
        let spawned = std::thread::Builder::new()
            .name("omcmsync-start".into())
            .spawn(move || inner.start_now());
        if let Err(e) = spawned {
            state.starting = false;
            logging::error(&format!("cannot start: no thread: {e}; retried in 5 s"));
        }
    }

    /// The running queue, once the batch can be filtered: starts the service if needed and
    /// waits up to `wait` for it to run and the element list to be in force (the HA role is
    /// not waited for: `ha::Gate::admission`). `None`: not (yet) ready, or failed; rsyslog
    /// keeps the batch and retries.
    pub fn queue(&self, wait: Duration) -> Option<Arc<Queue>> {
        let deadline = Instant::now() + wait;
        let mut state = self.lock();
        loop {
            if state.stopped {
                return None;
            }
            if let Some(s) = &state.running {
                // A background thread that could not be kept running: rsyslog keeps the batch.
                if s.health.failed() {
                    return None;
                }
                let shared = &self.inner.shared;
                // The reconciler remembers what is heard of the elements it reconciles: it
                // looks which those are first.
                let looked = shared.memory.looked();
                if shared.elements.ready() && shared.gate.decides_now() && looked {
                    return Some(s.queue.clone());
                }
            } else {
                self.start_locked(&mut state);
                if !state.starting {
                    return None;
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            // A start ending notifies; the element list is looked at again every 10 ms.
            let wait = left.min(Duration::from_millis(10));
            self.inner.changed.wait_for(&mut state, wait);
        }
    }

    /// Stops the service (what is queued stays on disk); a start under way is dropped when it
    /// ends.
    pub fn stop(&self) {
        let running = {
            let mut state = self.lock();
            state.stopped = true;
            state.running.take()
        };
        self.inner.changed.notify_all();
        drop(running);
    }

    /// Keys waiting for delivery (0 before start).
    pub fn keys_pending(&self) -> usize {
        self.lock().running.as_ref().map_or(0, |s| s.queue.len())
    }
}

impl LifecycleInner {
    /// One start, on the start thread: the queue (recovery reads the whole log) and the
    /// threads, which read the element list and the HA role.
    fn start_now(&self) {
        let result = Service::start(&self.config, &self.shared);
        let problems = &self.shared.problems;
        match &result {
            Ok(_) => problems.clear("state.dir"),
            Err(e) => problems.report(
                "state.dir",
                &format!("cannot start: {e}; rsyslog keeps the messages (the action is suspended) and the start is tried again every 5 s"),
            ),
        }
        let mut state = self.state.lock();
        state.starting = false;
        let late = match result {
            Ok(service) if state.stopped => Some(service),
            Ok(service) => {
                state.running = Some(service);
                None
            }
            Err(_) => None,
        };
        drop(state);
        self.changed.notify_all();
        drop(late);
    }
}

pub struct Service {
    pub queue: Arc<Queue>,
    /// Failed when a background thread could not be kept running.
    pub health: Arc<Health>,
    /// Whose programs (`ha.command`, `smgr.command`) are killed at stop.
    gate: Arc<Gate>,
    client: Arc<SharedClient>,
    hup: Arc<Hup>,
    listening: Arc<Listening>,
    reconcile: Arc<Requests>,
    /// The OSSI sessions running: killed at stop.
    sessions: Arc<ProcessGroups>,
    shutdown: Shutdown,
    threads: Vec<JoinHandle<()>>,
}

/// What the service's threads are made of, beyond their shared [`Context`].
struct Parts {
    queue: Arc<Queue>,
    client: Arc<SharedClient>,
    deadletters: Arc<DeadLetters>,
    elements: Arc<Elements>,
    gate: Arc<Gate>,
    hup: Arc<Hup>,
    listening: Arc<Listening>,
    memory: Arc<Memory>,
    reader: Arc<dyn HistoryReader>,
    reconcile: Arc<Requests>,
    sessions: Arc<ProcessGroups>,
}

impl Service {
    /// Opens the queue in `state.dir` and starts delivery, the HA watch, the element list's
    /// refresher and the control socket.
    pub fn start(config: &Config, shared: &Shared) -> Result<Service, String> {
        let dir = &config.state_dir;
        crate::private::create_dir_all(dir)
            .map_err(|e| format!("state.dir {}: {e}", dir.display()))?;
        let context = Context {
            counters: shared.counters.clone(),
            problems: shared.problems.clone(),
            ..Context::default()
        };
        let queue = Arc::new(open_queue(config, &context)?);
        if let Some(damage) = shared.memory.open(dir.join("reconcile.json")) {
            logging::warning(&format!(
                "reconciliation's memory unreadable, started anew: {damage}; the next sessions may request changes that were heard"
            ));
        }
        let parts = Parts {
            // One client (one TLS configuration) for the lanes, the HA watch and the refresher.
            client: Arc::new(SharedClient::new(
                config.client.clone(),
                context.problems.clone(),
            )),
            deadletters: Arc::new(DeadLetters::new(
                &config.deadletter_file,
                config.deadletter_max,
                context.problems.clone(),
                context.counters.clone(),
            )),
            queue,
            elements: shared.elements.clone(),
            gate: shared.gate.clone(),
            hup: shared.hup.clone(),
            listening: Arc::default(),
            memory: shared.memory.clone(),
            reader: shared.reader.clone(),
            reconcile: shared.reconcile.clone(),
            sessions: Arc::default(),
        };
        let threads = spawn_threads(config, &parts, &context).map_err(|e| e.to_string())?;
        Ok(Service {
            queue: parts.queue,
            health: context.health,
            gate: parts.gate,
            client: parts.client,
            hup: parts.hup,
            listening: parts.listening,
            reconcile: parts.reconcile,
            sessions: parts.sessions,
            shutdown: context.shutdown,
            threads,
        })
    }
}

/// The service's threads, each supervised ([`supervise::spawn`]).
fn spawn_threads(
    config: &Config,
    p: &Parts,
    context: &Context,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    let deliverer = Arc::new(Deliverer::new(
        p.queue.clone(),
        p.client.clone(),
        config.delivery.clone(),
        p.deadletters.clone(),
        context,
    ));
    let control = control(config, p, &deliverer, context);
    // The role has a thread of its own: a check that hangs (bounded by smgr.timeout.ms or
    // ha.interval.ms) holds up neither the element list nor HUP's reloads. Batches are held
    // until its first answer (`Lifecycle::queue`).
    let watch = ha::Watch {
        client: p.client.clone(),
        gate: p.gate.clone(),
        queue: p.queue.clone(),
        reconcile: p.reconcile.clone(),
        context: context.clone(),
    };
    let refresher = Refresher {
        client: p.client.clone(),
        source: config.elements.clone(),
        refresh: config.elements_refresh,
        cache: config.state_dir.join("elements.json"),
        elements: p.elements.clone(),
        hup: p.hup.clone(),
        context: context.clone(),
    };
    let reconciler = Reconciler {
        settings: config.reconcile.clone(),
        memory: p.memory.clone(),
        elements: p.elements.clone(),
        gate: p.gate.clone(),
        queue: p.queue.clone(),
        reader: p.reader.clone(),
        requests: p.reconcile.clone(),
        programs: p.sessions.clone(),
        context: context.clone(),
        findings: Default::default(),
        ended: Default::default(),
    };
    let c = || context.clone();
    Ok(vec![
        supervise::spawn("omcmsync-deliver", c(), move || deliverer.run())?,
        supervise::spawn("omcmsync-ha", c(), move || watch.run())?,
        supervise::spawn("omcmsync-supervise", c(), move || refresher.run())?,
        supervise::spawn("omcmsync-control", c(), move || control.run())?,
        supervise::spawn("omcmsync-reconcile", c(), move || reconciler.run())?,
    ])
}

/// The control socket's side of the service.
fn control(config: &Config, p: &Parts, deliverer: &Arc<Deliverer>, context: &Context) -> Control {
    Control {
        state_dir: config.state_dir.clone(),
        queue: p.queue.clone(),
        deliverer: deliverer.clone(),
        gate: p.gate.clone(),
        elements: p.elements.clone(),
        deadletters: p.deadletters.clone(),
        types: crate::classify::ObjectTable::with_rules(config.rules.rules())
            .type_names()
            .map(str::to_owned)
            .collect(),
        trace_file: config.trace_file.clone(),
        context: context.clone(),
        listening: p.listening.clone(),
        memory: p.memory.clone(),
        reconcile: p.reconcile.clone(),
    }
}

/// Opens and recovers the queue in `state.dir`, saying what recovery found.
fn open_queue(config: &Config, context: &Context) -> Result<Queue, String> {
    let dir = &config.state_dir;
    let queue_config = QueueConfig {
        dir: dir.clone(),
        window_ms: config.window.as_millis() as u64,
        fsync_every: config.fsync_every,
        burst_threshold: config.burst_threshold,
        context: context.clone(),
        fallback_elements: configured_elements(config),
        start_held: config.ha.standby_hold && config.ha.mode != HaMode::Always,
    };
    let (queue, recovery) =
        Queue::open(&queue_config).map_err(|e| format!("state.dir {}: {e}", dir.display()))?;
    let damaged = recovery.bad_lines as u64 + u64::from(recovery.missing);
    context
        .counters
        .queue_damaged
        .store(damaged, Ordering::Relaxed);
    if damaged > 0 {
        logging::error(&damage_report(dir, &recovery));
    }
    if !queue.is_empty() {
        logging::info(&format!(
            "queue: {} key(s) pending from before, delivering",
            queue.len()
        ));
    }
    Ok(queue)
}

/// What damage to the log cost, in one line for the operator.
fn damage_report(dir: &std::path::Path, r: &Recovery) -> String {
    let list = |names: &mut dyn Iterator<Item = &String>| {
        let v: Vec<&str> = names.map(String::as_str).collect();
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.join(", ")
        }
    };
    let what = if r.missing {
        format!(
            "{}/queue.log is empty or missing, though this directory had one",
            dir.display()
        )
    } else {
        format!(
            "{}/queue.log is damaged: {} record(s), {} byte(s) could not be read (elements they name: {}); kept as {}",
            dir.display(),
            r.bad_lines,
            r.bad_bytes,
            list(&mut r.damaged_elements.iter()),
            r.kept.as_ref().map_or("-".into(), |p| p.display().to_string())
        )
    };
    format!(
        "queue: {what}; the changes lost are unknown, so each element gets a full resync (reason \"queue damaged\"): {}",
        list(&mut r.resynced.iter())
    )
}

/// The element names the configuration knows now: the file's list, or System Manager's list
/// as cached in `state.dir`.
fn configured_elements(config: &Config) -> Vec<String> {
    let specs = match &config.elements {
        ElementsSource::File { list, .. } => list.clone().unwrap_or_default(),
        ElementsSource::Smgr => std::fs::read_to_string(config.state_dir.join("elements.json"))
            .ok()
            .and_then(|json| parse_elements_lenient(&json).ok())
            .map(|(specs, _)| specs)
            .unwrap_or_default(),
    };
    specs.into_iter().map(|s| s.name).collect()
}

impl Drop for Service {
    /// Stops the threads; one stuck in a request to SMGR, an HA check or a lookup (each bounded
    /// on its own) is left to finish on its own rather than holding up rsyslog's shutdown (the
    /// module is never unloaded: `getKeepType`). The others end their wait at the signal.
    fn drop(&mut self) {
        self.shutdown.trigger();
        // Threads asleep on their own signals: the dispatcher on the queue, the refresher on
        // the HUP flag, the control thread in accept, the reconciler on its requests.
        self.queue.wake();
        self.hup.nudge();
        self.reconcile.nudge();
        self.listening.close();
        // No program the module started outlives it: a thread waiting for one ends at once.
        self.gate.kill_programs();
        self.client.kill_programs();
        self.sessions.close();
        let deadline = Instant::now() + Duration::from_millis(500);
        supervise::join_until(self.threads.drain(..), deadline);
    }
}
