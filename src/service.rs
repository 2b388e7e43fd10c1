//! The background side of one action: the queue (and its fsync and compaction thread), the
//! delivery thread, and the supervisor thread that reads the HA role and refreshes the element
//! list. Started when rsyslog activates the configuration (never in `rsyslogd -N1`), stopped
//! when the action is freed; what is queued stays on disk for the next start.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::{Config, ElementsSource, ELEMENTS_PATH};
use crate::counters::Counters;
use crate::deliver::{Deliverer, SmgrClient};
use crate::elements::{parse_elements_lenient, ElementSpec, Elements};
use crate::ha::Gate;
use crate::logging;
use crate::queue::{Queue, QueueConfig};
use crate::records::RecordFile;
use crate::supervise::{self, Health, Supervision};

pub struct Service {
    pub queue: Arc<Queue>,
    /// Failed when a background thread could not be kept running.
    pub health: Arc<Health>,
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
        };
        let queue_config = QueueConfig {
            dir: dir.clone(),
            window_ms: config.window.as_millis() as u64,
            fsync_every: config.fsync_every,
            burst_threshold: config.burst_threshold,
            supervision: supervision.clone(),
        };
        let (queue, recovery) =
            Queue::open(&queue_config).map_err(|e| format!("state.dir {}: {e}", dir.display()))?;
        if recovery.bad_lines > 0 {
            logging::warning(&format!(
                "queue: skipped {} damaged line(s) of {}/queue.log",
                recovery.bad_lines,
                dir.display()
            ));
        }
        if !queue.is_empty() {
            logging::info(&format!(
                "queue: {} key(s) pending from before, delivering",
                queue.len()
            ));
        }
        let queue = Arc::new(queue);
        let deliverer = Deliverer::new(
            queue.clone(),
            SmgrClient::new(config.client.clone())?,
            config.delivery.clone(),
            RecordFile::new(&config.deadletter_file),
            counters.clone(),
            stop.clone(),
        );
        let client = SmgrClient::new(config.client.clone())?;
        // Know the role before the first batch is filtered.
        gate.check(&client);
        let supervisor = Supervisor {
            client,
            source: config.elements.clone(),
            refresh: config.elements_refresh,
            cache: dir.join("elements.json"),
            elements,
            gate,
            counters,
            stop: stop.clone(),
        };
        let threads = vec![
            supervise::spawn("omcmsync-deliver", supervision.clone(), move || {
                deliverer.run()
            }),
            supervise::spawn("omcmsync-supervise", supervision, move || supervisor.run()),
        ]
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
        Ok(Service {
            queue,
            health,
            stop,
            threads,
        })
    }
}

impl Drop for Service {
    /// Stops the threads; one stuck in a request to SMGR (bounded by smgr.timeout.ms) is left to
    /// finish on its own rather than holding up rsyslog's shutdown.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(2);
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

struct Supervisor {
    client: SmgrClient,
    source: ElementsSource,
    refresh: Duration,
    cache: std::path::PathBuf,
    elements: Arc<Elements>,
    gate: Arc<Gate>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
}

impl Supervisor {
    fn run(&self) {
        if matches!(self.source, ElementsSource::Smgr) {
            self.load_cached_list();
        }
        let mut next_role = Instant::now();
        let mut next_refresh = Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            #[cfg(feature = "fault-hooks")]
            crate::faults::panic_once("omcmsync-supervise");
            let now = Instant::now();
            if now >= next_role {
                self.gate.check(&self.client);
                next_role = now + self.gate.interval();
            }
            if now >= next_refresh || self.elements.take_reload_request() {
                match self.source {
                    ElementsSource::File(_) => self.elements.reload(),
                    ElementsSource::Smgr => self.fetch_list(),
                }
                next_refresh = now + self.refresh;
            } else if matches!(self.source, ElementsSource::File(_)) {
                self.elements.reload_if_changed();
            }
            std::thread::sleep(Duration::from_millis(100).min(self.gate.interval()));
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
        for why in rejected {
            self.elements.say_once(
                logging::Level::Warning,
                &format!("element list from System Manager: skipped {why}"),
            );
        }
        let conflicts = self.elements.install(specs);
        let d = &self.counters.delivery;
        d.elements_rejected
            .store(rejected.len() as u64, Ordering::Relaxed);
        d.elements_conflicts
            .store(conflicts as u64, Ordering::Relaxed);
    }

    /// Fetches the element list from SMGR; on success installs it and caches it on disk.
    fn fetch_list(&self) {
        let url = format!(
            "{}{ELEMENTS_PATH}",
            self.client.base_url().as_str().trim_end_matches('/')
        );
        let result = self.client.get_json(&url).and_then(|v| {
            let json = v.to_string();
            parse_elements_lenient(&json).map(|list| (list, json))
        });
        match result {
            Ok(((specs, rejected), json)) => {
                self.install_list(&specs, &rejected);
                let tmp = self.cache.with_extension("json.tmp");
                if crate::private::write(&tmp, json.as_bytes())
                    .and_then(|()| std::fs::rename(&tmp, &self.cache))
                    .is_err()
                {
                    logging::warning(&format!(
                        "could not cache the element list in {}",
                        self.cache.display()
                    ));
                }
            }
            Err(e) => logging::warning(&format!(
                "element list from {url}: {e}; keeping the list in force"
            )),
        }
    }
}
