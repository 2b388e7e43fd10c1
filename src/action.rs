//! One omcmsync action, as rsyslog (or the omprog tool) drives it: the [`Pipeline`] that reads
//! a batch and turns it into changes, and the [`Lifecycle`] of the service that keeps and
//! delivers them. The action owns both and joins them per batch; neither knows the other
//! (as in mini-redis, where `Listener` owns the lifecycle and `Handler` only does the work).

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, ElementsSource};
use crate::counters::Counters;
use crate::elements::{system_lookup, Elements};
use crate::ha::Gate;
use crate::pipeline::Pipeline;
use crate::problems::Problems;
use crate::reconcile::{Memory, Requests};
use crate::service::{Lifecycle, Shared};
use crate::supervise::Hup;

/// How long a batch waits for the service to be ready before it is answered SUSPENDED
/// (rsyslog keeps it and retries; docs/design.md, "The start"). Short: rsyslog's shutdown
/// waits for a worker inside the module.
const BATCH_WAIT: Duration = Duration::from_secs(1);

/// How long [`Action::start`] waits for the service (the tools and tests).
const START_WAIT: Duration = Duration::from_secs(60);

/// The batch could not be taken now; rsyslog keeps it and retries later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suspend;

pub struct Action {
    pipeline: Arc<Pipeline>,
    /// What reconciliation remembers: the action tells it what was heard.
    memory: Arc<Memory>,
    service: Lifecycle,
    /// Set by [`Action::reopen`], taken by the service's element refresher.
    hup: Arc<Hup>,
    counters: Arc<Counters>,
    problems: Arc<Problems>,
}

impl Action {
    /// Builds the action. Opens nothing and starts nothing (this runs in `rsyslogd -N1` too):
    /// see [`Action::start_in_background`].
    pub fn new(config: Config) -> Self {
        let elements = Arc::new(
            match &config.elements {
                ElementsSource::File { path, list } => {
                    Elements::new(Some(path), system_lookup).with_first_list(list.clone())
                }
                ElementsSource::Smgr => Elements::new(None, system_lookup),
            }
            .with_max(config.elements_max),
        );
        let gate = Arc::new(Gate::new(config.ha.clone()));
        let counters: Arc<Counters> = Arc::default();
        let problems = Arc::new(Problems::new(counters.clone()));
        let pipeline = Arc::new(Pipeline::new(
            &config,
            elements.clone(),
            gate.clone(),
            counters.clone(),
            problems.clone(),
        ));
        let reconcile: Arc<Requests> = Arc::default();
        let memory = Arc::new(Memory::new(config.reconcile.silence, reconcile.clone()));
        let hup = Arc::new(Hup::default());
        let shared = Shared {
            elements,
            gate,
            counters: counters.clone(),
            problems: problems.clone(),
            hup: hup.clone(),
            memory: memory.clone(),
            reader: pipeline.clone(),
            reconcile,
        };
        Action {
            pipeline,
            memory,
            service: Lifecycle::new(config, shared),
            hup,
            counters,
            problems,
        }
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// What the host lacks for this action now.
    pub fn problems(&self) -> &Problems {
        &self.problems
    }

    /// Starts the background service (queue, delivery, element list, HA role) in a thread of
    /// its own and returns at once: rsyslog's main thread never waits for DNS, an HA check or
    /// the queue's recovery.
    pub fn start_in_background(&self) {
        self.service.start();
    }

    /// Starts the background service and waits until batches can be taken (the command-line
    /// tools, tests); false when that did not happen within [`START_WAIT`] (the messages above
    /// say why).
    pub fn start(&self) -> bool {
        self.start_within(START_WAIT)
    }

    /// As [`Action::start`], waiting at most `wait`.
    pub fn start_within(&self, wait: Duration) -> bool {
        self.service.start();
        self.service.queue(wait).is_some()
    }

    /// Stops the background service (what is queued stays on disk).
    pub fn stop(&self) {
        self.service.stop();
    }

    /// Takes one rsyslog transaction. `worker` identifies the calling worker in the trace.
    /// Returns only once the batch's changes are durable: the lines are borrowed for this call.
    pub fn process_batch<'a>(
        &self,
        worker: u64,
        lines: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(), Suspend> {
        if !self.pipeline.ready() {
            return Err(Suspend);
        }
        let queue = self.service.queue(BATCH_WAIT).ok_or(Suspend)?;
        let mut batch = self.pipeline.read(worker, lines).ok_or(Suspend)?;
        // A write that failed was reported by the queue (summarised: a full disk would
        // otherwise log at every retry).
        let changes = batch.take_changes();
        let heard = self.memory.heard_in(&changes);
        queue.submit(changes).map_err(|_| Suspend)?;
        self.memory.note(heard);
        self.memory.spoke(batch.spoke(), crate::clock::now_ms());
        self.pipeline.committed(batch);
        Ok(())
    }

    /// HUP: reopen the record files so that log rotation works, and ask for the element list,
    /// the SMGR credentials and the TLS files to be read again. The supervisor thread reads
    /// them (names resolve there, never on rsyslog's main thread, where HUP runs).
    pub fn reopen(&self) {
        self.pipeline.reopen_records();
        self.hup.request();
    }

    /// Keys waiting for delivery (0 before start).
    pub fn keys_pending(&self) -> usize {
        self.service.keys_pending()
    }
}

#[cfg(test)]
mod tests;
