//! The thread that keeps the element list in force current (and, on HUP, the SMGR client).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{parse_elements_lenient, ElementSpec, Elements};
use crate::config::{ElementsSource, ELEMENTS_PATH};
use crate::logging;
use crate::smgr::SharedClient;
use crate::supervise::{Context, Hup};

/// A HUP is handled this long after it came, once rsyslog is done with it: rsyslog 8.2102
/// writes the internal messages logged while it runs its HUP (what the reload says) only when
/// its main loop next wakes, which can be minutes later; after the HUP the line wakes it.
const HUP_SETTLE: Duration = Duration::from_millis(200);

/// How often the refresher looks at the file's time stamp, at late DNS answers and, while none
/// could be built, at the SMGR client's files.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// How often the element list is tried again while none is in force (System Manager's list
/// failed to come at start; every line waits for it).
const FIRST_LIST_RETRY: Duration = Duration::from_secs(2);

/// Keeps the element list and the SMGR client current: the list read at start, on HUP, when
/// the file changes and every `elements.refresh.ms`; the client rebuilt on HUP.
pub struct Refresher {
    pub client: Arc<SharedClient>,
    pub source: ElementsSource,
    pub refresh: Duration,
    /// Where System Manager's list is kept for the next start (`state.dir/elements.json`).
    pub cache: PathBuf,
    pub elements: Arc<Elements>,
    /// The action's HUP: read the list and the client's files again.
    pub hup: Arc<Hup>,
    pub context: Context,
}

impl Refresher {
    /// The thread `omcmsync-supervise`: until the service stops.
    pub fn run(&self) {
        let ctx = &self.context;
        if matches!(self.source, ElementsSource::Smgr) {
            self.load_cached_list();
        }
        let mut next_refresh = Instant::now();
        while !ctx.shutdown.is_set() {
            #[cfg(feature = "fault-hooks")]
            crate::faults::panic_once("omcmsync-supervise");
            let now = Instant::now();
            // HUP asked for both: the element list, and the credentials and TLS files.
            let hup = self.hup.take();
            if hup && ctx.shutdown.wait(HUP_SETTLE) {
                return;
            }
            if hup {
                // The calls of a HUP's other actions, come meanwhile, are this one.
                self.hup.take();
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
                    Some(why) => ctx.problems.note("elements.file", &why),
                    None => ctx.problems.forget("elements.file"),
                }
            }
            // A HUP or a stop wakes it at once; the file's changes, late DNS answers and a
            // client that could not be built are looked at every second.
            self.hup.wait(LOOK_EVERY);
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
        let d = &self.context.counters.delivery;
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
        let api = client.api();
        let url = api.url(ELEMENTS_PATH);
        let got = api.get_text(&url, api.settings().timeout);
        let result = got.map_err(|e| e.to_string()).and_then(|json| {
            let (specs, rejected) = parse_elements_lenient(&json)?;
            Ok(((self.elements.check_size(specs)?, rejected), json))
        });
        let in_force = if self.elements.ready() {
            "keeping the list in force"
        } else {
            "holding what arrives (rsyslog keeps it) until a list is read; tried again every few seconds"
        };
        self.context.problems.track(
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
