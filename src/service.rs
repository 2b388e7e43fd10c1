//! The background side of one action: the queue (and its fsync and compaction thread), the
//! delivery thread, and the supervisor thread that reads the HA role and refreshes the element
//! list. [`Lifecycle`] owns it: starts it in the background when rsyslog activates the
//! configuration (never in `rsyslogd -N1`, never on rsyslog's main thread or a worker), tries
//! a failed start again, and stops it when the action is freed; what is queued stays on disk
//! for the next start. [`Service`] is the running part.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::{Config, ElementsSource, HaMode, ELEMENTS_PATH};
use crate::control::Control;
use crate::counters::Counters;
use crate::deliver::{DeadLetters, Deliverer, SharedClient};
use crate::elements::{parse_elements_lenient, ElementSpec, Elements};
use crate::ha::Gate;
use crate::logging;
use crate::problems::Problems;
use crate::queue::{Queue, QueueConfig, Recovery};
use crate::supervise::{self, Health, Supervision};

/// How often the element list is tried again while none is in force (System Manager's list
/// failed to come at start; every line waits for it).
const FIRST_LIST_RETRY: Duration = Duration::from_secs(2);

/// How often a failed start of the service is tried again.
const RESTART_EVERY: Duration = Duration::from_secs(5);

/// Starts, restarts and stops one action's [`Service`].
pub struct Lifecycle {
    inner: Arc<LifecycleInner>,
}

struct LifecycleInner {
    config: Config,
    elements: Arc<Elements>,
    gate: Arc<Gate>,
    counters: Arc<Counters>,
    problems: Arc<Problems>,
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
    pub fn new(
        config: Config,
        elements: Arc<Elements>,
        gate: Arc<Gate>,
        counters: Arc<Counters>,
        problems: Arc<Problems>,
    ) -> Self {
        Lifecycle {
            inner: Arc::new(LifecycleInner {
                config,
                elements,
                gate,
                counters,
                problems,
                state: Mutex::default(),
                changed: Condvar::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LifecycleState> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
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
                if self.inner.elements.ready() && self.inner.gate.decides_now() {
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
            state = self
                .inner
                .changed
                .wait_timeout(state, left.min(Duration::from_millis(10)))
                .unwrap_or_else(|e| e.into_inner())
                .0;
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
        let result = Service::start(
            &self.config,
            self.elements.clone(),
            self.gate.clone(),
            self.counters.clone(),
            self.problems.clone(),
        );
        match &result {
            Ok(_) => self.problems.clear("state.dir"),
            Err(e) => self.problems.report(
                "state.dir",
                &format!("cannot start: {e}; rsyslog keeps the messages (the action is suspended) and the start is tried again every 5 s"),
            ),
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
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
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Service {
    /// Opens the queue in `state.dir` and starts delivery and supervision.
    pub fn start(
        config: &Config,
        elements: Arc<Elements>,
        gate: Arc<Gate>,
        counters: Arc<Counters>,
        problems: Arc<Problems>,
    ) -> Result<Service, String> {
        let dir = &config.state_dir;
        crate::private::create_dir_all(dir)
            .map_err(|e| format!("state.dir {}: {e}", dir.display()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let health = Arc::new(Health::default());
        let supervision = Supervision {
            counters: counters.clone(),
            health: health.clone(),
            stop: stop.clone(),
            problems: problems.clone(),
        };
        let queue_config = QueueConfig {
            dir: dir.clone(),
            window_ms: config.window.as_millis() as u64,
            fsync_every: config.fsync_every,
            burst_threshold: config.burst_threshold,
            supervision: supervision.clone(),
            fallback_elements: configured_elements(config),
            start_held: config.ha.standby_hold && config.ha.mode != HaMode::Always,
        };
        let queue = open_queue(&queue_config, &counters)?;
        let queue = Arc::new(queue);
        // One client (one TLS configuration) for the lanes and the supervisor.
        let client = Arc::new(SharedClient::new(config.client.clone(), problems.clone()));
        let deadletters = Arc::new(DeadLetters::new(
            &config.deadletter_file,
            config.deadletter_max,
            problems.clone(),
            counters.clone(),
        ));
        let deliverer = Arc::new(Deliverer::new(
            queue.clone(),
            client.clone(),
            config.delivery.clone(),
            deadletters.clone(),
            counters.clone(),
            stop.clone(),
        ));
        let control = Control {
            state_dir: dir.clone(),
            queue: queue.clone(),
            deliverer: deliverer.clone(),
            gate: gate.clone(),
            elements: elements.clone(),
            deadletters,
            types: crate::classify::ObjectTable::with_rules(config.rules.rules())
                .type_names()
                .map(str::to_owned)
                .collect(),
            trace_file: config.trace_file.clone(),
            counters: counters.clone(),
            problems: problems.clone(),
            stop: stop.clone(),
        };
        // The role has a thread of its own: a check that hangs (bounded by smgr.timeout.ms
        // or ha.interval.ms) holds up neither the element list nor HUP's reloads. Batches are
        // held until its first answer (`Lifecycle::queue`).
        let watch = RoleWatch {
            client: client.clone(),
            gate: gate.clone(),
            queue: queue.clone(),
            counters: counters.clone(),
            problems: problems.clone(),
            stop: stop.clone(),
        };
        let supervisor = Supervisor {
            client: client.clone(),
            problems,
            source: config.elements.clone(),
            refresh: config.elements_refresh,
            cache: dir.join("elements.json"),
            elements,
            counters,
            stop: stop.clone(),
        };
        let threads = vec![
            supervise::spawn("omcmsync-deliver", supervision.clone(), move || {
                deliverer.run()
            }),
            supervise::spawn("omcmsync-ha", supervision.clone(), move || watch.run()),
            supervise::spawn("omcmsync-supervise", supervision.clone(), move || {
                supervisor.run()
            }),
            supervise::spawn("omcmsync-control", supervision, move || control.run()),
        ]
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
        Ok(Service {
            queue,
            health,
            gate,
            client,
            stop,
            threads,
        })
    }
}

/// Opens and recovers the queue in `state.dir`, saying what recovery found.
fn open_queue(config: &QueueConfig, counters: &Counters) -> Result<Queue, String> {
    let dir = &config.dir;
    let (queue, recovery) =
        Queue::open(config).map_err(|e| format!("state.dir {}: {e}", dir.display()))?;
    let damaged = recovery.bad_lines as u64 + u64::from(recovery.missing);
    counters.queue_damaged.store(damaged, Ordering::Relaxed);
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
    /// module is never unloaded: `getKeepType`). The others see `stop` within 100 ms.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // No program the module started outlives it: a thread waiting for one ends at once.
        self.gate.kill_programs();
        self.client.kill_programs();
        let deadline = Instant::now() + Duration::from_millis(500);
        for t in self.threads.drain(..) {
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

/// Reads the HA role every `ha.interval.ms`, and holds or releases the queue to match: a
/// standby (`ha.standby="hold"`) keeps its keys, the moment it is active they are all due.
struct RoleWatch {
    client: Arc<SharedClient>,
    gate: Arc<Gate>,
    queue: Arc<Queue>,
    counters: Arc<Counters>,
    problems: Arc<Problems>,
    stop: Arc<AtomicBool>,
}

impl RoleWatch {
    fn run(&self) {
        // The retention walks every held key under the queue's lock: a tenth of the retention
        // apart (1 s to 1 min), not at every read of the role.
        let retain = self.gate.settings().standby_retain;
        let expire_every = (retain / 10).clamp(Duration::from_secs(1), Duration::from_secs(60));
        let mut next_expiry = Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            #[cfg(feature = "fault-hooks")]
            crate::faults::panic_once("omcmsync-ha");
            let reading = self.gate.check(self.client.get().as_deref());
            if reading.role == crate::ha::Role::Unknown {
                self.counters.ha_unknown.fetch_add(1, Ordering::Relaxed);
            }
            // Shown in status; the gate logs the role's switches itself.
            if let Some(param) = self.gate.source_param() {
                match &reading.why {
                    Some(why) => self.problems.note(param, why),
                    None => self.problems.forget(param),
                }
            }
            let holds = self.follow_role();
            if holds && Instant::now() >= next_expiry {
                self.expire(retain);
                next_expiry = Instant::now() + expire_every;
            }
            let next = Instant::now() + self.gate.interval();
            while !self.stop.load(Ordering::Relaxed) && Instant::now() < next {
                std::thread::sleep(Duration::from_millis(50).min(self.gate.interval()));
            }
        }
    }
}

impl RoleWatch {
    /// Holds or releases the queue as the role says; returns whether it holds.
    fn follow_role(&self) -> bool {
        let c = &self.counters;
        c.ha_role.store(self.gate.role() as u64, Ordering::Relaxed);
        let holds = self.gate.holds_delivery();
        match (holds, self.queue.held()) {
            (true, false) => {
                self.queue.hold();
                logging::info(&format!(
                    "standby: holding {} key(s) and what arrives until this node is active",
                    self.queue.len()
                ));
            }
            (false, true) => {
                let n = self.queue.release();
                c.standby_released.fetch_add(n as u64, Ordering::Relaxed);
                logging::info(&format!("active: {n} held key(s) released, delivering"));
            }
            _ => {}
        }
        holds
    }

    /// Drops held keys whose last change is older than `retain`.
    fn expire(&self, retain: Duration) {
        let cutoff = crate::clock::now_ms().saturating_sub(retain.as_millis() as u64);
        let expired = self.queue.expire(cutoff);
        if expired > 0 {
            self.counters
                .standby_expired
                .fetch_add(expired as u64, Ordering::Relaxed);
            logging::info(&format!(
                "standby: {expired} held key(s) older than ha.standby.retain.ms dropped (System Manager's daily sync covers them)"
            ));
        }
    }
}

/// Keeps the element list and the SMGR client current: the list read at start, on HUP, when
/// the file changes and every `elements.refresh.ms`; the client rebuilt on HUP.
struct Supervisor {
    client: Arc<SharedClient>,
    problems: Arc<Problems>,
    source: ElementsSource,
    refresh: Duration,
    cache: std::path::PathBuf,
    elements: Arc<Elements>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
}

impl Supervisor {
    fn run(&self) {
        if matches!(self.source, ElementsSource::Smgr) {
            self.load_cached_list();
        }
        let mut next_refresh = Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            #[cfg(feature = "fault-hooks")]
            crate::faults::panic_once("omcmsync-supervise");
            let now = Instant::now();
            // HUP asked for both: the element list, and the credentials and TLS files.
            let hup = self.elements.take_reload_request();
            if hup {
                self.client.reload();
            } else {
                self.client.retry_if_missing();
            }
            if now >= next_refresh || hup {
                match self.source {
                    ElementsSource::File { .. } => self.elements.reload(),
                    ElementsSource::Smgr => self.fetch_list(),
                }
                // Until a list is in force every line waits for one: tried again soon.
                next_refresh = now + self.refresh.min(FIRST_LIST_RETRY);
                if self.elements.ready() {
                    next_refresh = now + self.refresh;
                }
            } else {
                self.elements.reload_if_changed();
            }
            if let ElementsSource::File { .. } = self.source {
                match self.elements.file_problem() {
                    Some(why) => self.problems.note("elements.file", &why),
                    None => self.problems.forget("elements.file"),
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn load_cached_list(&self) {
        if let Ok(json) = std::fs::read_to_string(&self.cache) {
            if let Ok((specs, rejected)) = parse_elements_lenient(&json) {
                self.install_list(&specs, &rejected);
            }
        }
    }

    /// Installs System Manager's list: its good entries; each bad one, and each address two
    /// elements claim, logged once and counted.
    fn install_list(&self, specs: &[ElementSpec], rejected: &[String]) {
        let skipped: Vec<String> = rejected
            .iter()
            .map(|why| format!("element list from System Manager: skipped {why}"))
            .collect();
        self.elements
            .say_changes("rejected", logging::Level::Warning, &skipped);
        let conflicts = self.elements.install(specs);
        let d = &self.counters.delivery;
        d.elements_rejected
            .store(rejected.len() as u64, Ordering::Relaxed);
        d.elements_conflicts
            .store(conflicts as u64, Ordering::Relaxed);
    }

    /// Fetches the element list from SMGR; on success installs it and caches it on disk.
    /// Failures are reported under `elements.source`, summarised (a refresh a minute would
    /// otherwise log 1,440 lines a day).
    fn fetch_list(&self) {
        let Some(client) = self.client.get() else {
            return; // The client's own problem is reported.
        };
        let url = client.url(ELEMENTS_PATH);
        let result = client
            .get_json(&url, client.settings().timeout)
            .and_then(|v| {
                let json = v.to_string();
                let (specs, rejected) = parse_elements_lenient(&json)?;
                Ok(((self.elements.check_size(specs)?, rejected), json))
            });
        let in_force = if self.elements.ready() {
            "keeping the list in force"
        } else {
            "holding what arrives (rsyslog keeps it) until a list is read; tried again every few seconds"
        };
        self.problems.track(
            "elements.source",
            &result
                .as_ref()
                .map(|_| ())
                .map_err(|e| format!("element list from {url}: {e}; {in_force}")),
        );
        if let Ok(((specs, rejected), json)) = result {
            self.install_list(&specs, &rejected);
            if crate::private::replace(&self.cache, json.as_bytes()).is_err() {
                logging::warning(&format!(
                    "could not cache the element list in {}",
                    self.cache.display()
                ));
            }
        }
    }
}
