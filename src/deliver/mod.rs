//! Delivery: a dispatcher takes due keys from the queue and hands each element's share to a
//! small pool of lanes (`delivery.parallel` threads) that post to System Manager, at most one
//! request in flight per element, so a slow, hung or backed-off element never delays another.
//! Failures back off per element (exponential with jitter, at least what Retry-After asks);
//! 401/403 mark the element unauthorized and are retried; a POST refused for good is split
//! until only the refused requests are left, and those are dead-lettered.

mod backoff;
mod deadletter;
mod refusals;
mod request;

use parking_lot::Mutex;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use std::time::Duration;

use self::backoff::Jitter;
pub use self::deadletter::{
    changes_of, DeadLetters, Filter, Listing, Record, Requeued, MAX_LISTED,
};
use self::refusals::RefusalLog;
use self::request::Request;
pub use self::request::{ResyncBody, ResyncItem};
use crate::clock::{now_ms, sched_now_ms};
use crate::config::DeliverySettings;
use crate::counters::Counters;
use crate::logging;
use crate::queue::{DueBatch, Entry, Queue};
use crate::resync::{Key, Scope, OPERATOR_RESYNC};
use crate::smgr::{Delivery, Outcome, SharedClient, LOAD_RETRY};
use crate::supervise::{self, Context, Shutdown};

/// Due keys are taken for up to this many POSTs per element at once: finding them walks every
/// pending key of the element, which with a backlog of 100,000 keys cost more than the POSTs.
const POSTS_PER_PASS: usize = 16;

/// When one element's POST succeeds after failures, the others backing off try again within
/// this many milliseconds (spread, so that a recovering System Manager is not hit at once).
const SPREAD_MS: u64 = 1000;

/// The dispatcher's longest sleep with nothing due: whatever changes wakes it sooner.
const IDLE_WAIT_MS: u64 = 3_600_000;

/// A refused request whose record could not be written is sent again after this long (and
/// recorded when System Manager refuses it again and the store can take it).
const UNRECORDED_RETRY: Duration = Duration::from_secs(5);

/// One element's delivery state, shared by the dispatcher and the lanes.
#[derive(Default)]
struct ElementState {
    failures: u32,
    next_try_ms: u64,
    /// Held by an [`InFlight`] mark: a lane has this element's keys.
    busy: bool,
    /// The 401/403 that marked the element unauthorized, until SMGR accepts again.
    unauthorized: Option<u16>,
    /// The last answer or error, and when (wall clock).
    last: Option<(u64, String)>,
    /// When the last element-level resync was delivered (scheduling clock).
    element_resync_ms: Option<u64>,
}

/// One element's delivery as `omcmsync status` shows it.
#[derive(Clone, Debug, Default)]
pub struct ElementView {
    /// Failed attempts in a row.
    pub failures: u32,
    /// Milliseconds until the next attempt may go out (0: now).
    pub next_attempt_in_ms: u64,
    pub unauthorized: Option<u16>,
    pub last: Option<(u64, String)>,
}

/// The dispatcher and its lanes: what they share, and the owner of the lanes' threads.
pub struct Deliverer {
    queue: Arc<Queue>,
    client: Arc<SharedClient>,
    settings: DeliverySettings,
    deadletter: Arc<DeadLetters>,
    refusals: RefusalLog,
    counters: Arc<Counters>,
    shutdown: Shutdown,
    elements: Mutex<HashMap<Arc<str>, ElementState>>,
}

impl Deliverer {
    pub fn new(
        queue: Arc<Queue>,
        client: Arc<SharedClient>,
        settings: DeliverySettings,
        deadletter: Arc<DeadLetters>,
        context: &Context,
    ) -> Self {
        Deliverer {
            queue,
            client,
            settings,
            deadletter,
            refusals: RefusalLog::default(),
            counters: context.counters.clone(),
            shutdown: context.shutdown.clone(),
            elements: Mutex::new(HashMap::new()),
        }
    }

    /// Starts the lanes and dispatches until the service stops; returns when every lane has ended
    /// (a lane inside a request ends within `smgr.timeout.ms`). Runs again after a panic
    /// ([`crate::supervise`]): keys a lost run had in flight are due again.
    pub fn run(&self) {
        self.queue.release_in_flight();
        let (jobs, rx) = crossbeam_channel::unbounded::<Job>();
        std::thread::scope(|scope| {
            // Lanes start as they are needed (one per element with keys in flight, at most
            // `delivery.parallel`): a site with one System Manager path runs one.
            let add_lane = |i: usize| {
                let rx = rx.clone();
                std::thread::Builder::new()
                    .name(format!("omcmsync-post{i}"))
                    .spawn_scoped(scope, move || self.work(&rx, i as u64))
                    .map_err(|e| logging::error(&format!("delivery: cannot start lane {i}: {e}")))
                    .is_ok()
            };
            self.dispatch(&jobs, add_lane);
            // The lanes finish what was handed out (at stop: back to the queue) and end.
            drop(jobs);
        });
    }
}

/// One element's due keys on their way to a lane, with the element's in-flight mark.
struct Job<'l> {
    batch: DueBatch,
    mark: InFlight<'l>,
}

/// "A lane has this element's keys": no second request in flight for it. Set when the
/// dispatcher takes the element's keys; cleared when the mark is dropped (the lane's pass
/// ended, panicked, or the batch never reached a lane), which wakes the dispatcher to look
/// at the element again.
struct InFlight<'l> {
    lanes: &'l Deliverer,
    element: Arc<str>,
}

impl<'l> InFlight<'l> {
    /// Marks `element` busy; returns the mark and how many elements are busy now.
    fn mark(lanes: &'l Deliverer, element: &Arc<str>) -> (Self, usize) {
        let mut state = lanes.state();
        state.entry(element.clone()).or_default().busy = true;
        let busy = state.values().filter(|s| s.busy).count();
        let element = element.clone();
        (InFlight { lanes, element }, busy)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.lanes
            .state()
            .entry(self.element.clone())
            .or_default()
            .busy = false;
        self.lanes.queue.wake();
    }
}

impl Deliverer {
    /// Each element's delivery state now, by name.
    pub fn view(&self) -> Vec<(Arc<str>, ElementView)> {
        let now = sched_now_ms();
        self.state()
            .iter()
            .map(|(el, s)| {
                let view = ElementView {
                    failures: s.failures,
                    next_attempt_in_ms: s.next_try_ms.saturating_sub(now),
                    unauthorized: s.unauthorized,
                    last: s.last.clone(),
                };
                (el.clone(), view)
            })
            .collect()
    }
}

impl Deliverer {
    fn state(&self) -> parking_lot::MutexGuard<'_, HashMap<Arc<str>, ElementState>> {
        self.elements.lock()
    }

    /// Takes due keys of the elements that may send now and hands each element's to a lane,
    /// starting another lane (`add_lane`) while there are more elements busy than lanes.
    fn dispatch<'l>(&'l self, jobs: &Sender<Job<'l>>, mut add_lane: impl FnMut(usize) -> bool) {
        let per_pass = self.settings.max_requests.saturating_mul(POSTS_PER_PASS);
        let mut running = 0;
        while !self.shutdown.is_set() {
            // Before looking: a change from here on ends the wait below at once.
            let seen = self.queue.changes();
            self.refusals.tick(sched_now_ms());
            if self.client.get().is_none() {
                // Degraded: no client can be built (a certificate, a secret, the program is
                // missing). The keys wait; the supervisor looks for the files meanwhile.
                self.shutdown.wait(Duration::from_millis(250));
                continue;
            }
            let now = sched_now_ms();
            let ready: HashMap<Arc<str>, u64> = self
                .state()
                .iter()
                .map(|(el, s)| (el.clone(), if s.busy { u64::MAX } else { s.next_try_ms }))
                .collect();
            let due = self
                .queue
                .take_due(now, per_pass, |el| ready.get(el).copied().unwrap_or(0));
            if due.is_empty() {
                // Nothing to send now: sleep until a key is due, a refusal summary is, or the
                // queue says something changed (a new key, a lane's end, a stop).
                self.queue.wait_for_changes(seen, self.idle_wait(now));
                continue;
            }
            // With keys just taken in flight: the restart must find them again.
            #[cfg(feature = "fault-hooks")]
            crate::faults::panic_once("omcmsync-deliver");
            for batch in due {
                let (mark, busy) = InFlight::mark(self, &batch.element);
                while running < busy.min(self.settings.parallel.max(1)) && add_lane(running) {
                    running += 1;
                }
                if running == 0 {
                    // No lane could start: the keys wait, and the next pass tries again.
                    let keys = batch.items.iter().map(|(k, _)| k);
                    self.queue.retry(keys, sched_now_ms() + 1000);
                    continue;
                }
                if jobs.send(Job { batch, mark }).is_err() {
                    return;
                }
            }
        }
    }

    /// How long the dispatcher may sleep at `now` with nothing to send: until the next due
    /// key (keys due already wait for a busy element's lane, whose end wakes the queue) or
    /// refusal summary; without either, until the queue wakes it.
    fn idle_wait(&self, now: u64) -> Duration {
        let next = [self.queue.next_due_ms(), self.refusals.next_tick_ms()]
            .into_iter()
            .flatten()
            .min();
        let ms = match next {
            Some(t) if t > now => t - now,
            Some(_) => 100,
            None => IDLE_WAIT_MS,
        };
        Duration::from_millis(ms.clamp(10, IDLE_WAIT_MS))
    }

    /// One lane: posts the batches it is handed until the dispatcher is gone and none is
    /// left (at stop, [`Deliverer::send_pass`] puts them back without a request).
    fn work(&self, jobs: &Receiver<Job<'_>>, lane: u64) {
        let mut jitter = Jitter::new(now_ms() ^ lane.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        for Job { batch, mark } in jobs.iter() {
            let keys: Vec<Key> = batch.items.iter().map(|(k, _)| k.clone()).collect();
            let posted = catch_unwind(AssertUnwindSafe(|| self.send_pass(&mut jitter, batch)));
            if let Err(payload) = posted {
                // The lane goes on; the element backs off and its keys wait for that.
                let name = format!("omcmsync-post{lane}");
                supervise::report(&name, &*payload, &self.counters, "its keys are retried");
                let (delay, _) = self.back_off(&mut jitter, &mark.element, None);
                self.queue
                    .retry(&keys, sched_now_ms() + delay.as_millis() as u64);
            }
            drop(mark);
        }
    }

    /// When `element` may send again (0: now).
    fn ready_at(&self, element: &str) -> u64 {
        self.state().get(element).map_or(0, |s| s.next_try_ms)
    }

    /// One element's keys of a pass, in POSTs of `max_requests`. After a failed POST the rest
    /// wait for the element's backoff too; at stop, what was not sent stays in the log.
    fn send_pass(&self, jitter: &mut Jitter, DueBatch { element, items }: DueBatch) {
        #[cfg(feature = "fault-hooks")]
        crate::faults::panic_once("omcmsync-post");
        let items = self.cool_down(&element, items);
        for chunk in items.chunks(self.settings.max_requests) {
            let ready = self.ready_at(&element);
            if self.shutdown.is_set() || ready > sched_now_ms() {
                // Back to waiting: until the backoff ends, or at once for the next start.
                self.queue.retry(chunk.iter().map(|(k, _)| k), ready);
            } else {
                self.send(jitter, &element, chunk);
            }
        }
    }

    /// Holds an element-level resync back until `resync.element.cooldown.ms` after the last
    /// one delivered for the element (an operator's own is never held); what asks for one
    /// meanwhile coalesces into the held key, sent once when the cooldown ends. Returns the
    /// items to send now.
    fn cool_down(&self, element: &Arc<str>, items: Vec<(Key, Entry)>) -> Vec<(Key, Entry)> {
        let cooldown = self.settings.element_cooldown.as_millis() as u64;
        let last = self.state().get(element).and_then(|s| s.element_resync_ms);
        let Some(until) = last.map(|t| t + cooldown).filter(|&t| t > sched_now_ms()) else {
            return items;
        };
        let (held, send): (Vec<_>, Vec<_>) = items.into_iter().partition(|(k, e)| {
            k.scope == Scope::Element && e.reason.as_deref() != Some(OPERATOR_RESYNC)
        });
        if !held.is_empty() {
            self.counters
                .delivery
                .element_resyncs_deferred
                .fetch_add(held.len() as u64, Ordering::Relaxed);
            self.queue.retry(held.iter().map(|(k, _)| k), until);
        }
        send
    }

    /// One POST, and what its answer does to the keys.
    fn send(&self, jitter: &mut Jitter, element: &Arc<str>, items: &[(Key, Entry)]) {
        let request = Request::new(self.queue.epoch(), element, items);
        let d = &self.counters.delivery;
        let Some(client) = self.client.get() else {
            // The client went away between the dispatch and now: the keys wait.
            self.retry_after(items, LOAD_RETRY);
            return;
        };
        let attempt = self.state().get(element).map_or(0, |s| s.failures) + 1;
        let outcome = client.deliver(&Delivery {
            element,
            body: &request.json(),
            idempotency_key: &request.idempotency_key,
            attempt,
        });
        self.state().entry(element.clone()).or_default().last =
            Some((now_ms(), client.describe(&outcome)));
        match outcome {
            Outcome::Done => self.delivered(element, items),
            Outcome::Retry { why, after } => {
                d.posts_retried.fetch_add(1, Ordering::Relaxed);
                let (delay, failures) = self.back_off(jitter, element, after);
                if failures == 1 || failures.is_multiple_of(20) {
                    logging::warning(&format!(
                        "{element}: {} failed ({why}); {} keys kept, retrying in {} ms (attempt {failures})",
                        client.target(element),
                        items.len(),
                        delay.as_millis(),
                    ));
                }
                self.retry_after(items, delay);
            }
            Outcome::Unauthorized { status, after } => {
                d.posts_unauthorized.fetch_add(1, Ordering::Relaxed);
                let (delay, _) = self.back_off(jitter, element, after);
                if self.mark_unauthorized(element, status) {
                    logging::error(&format!(
                        "{element}: System Manager answered HTTP {status} ({}): fix the credentials \
                         (smgr.tokenfile, or smgr.user and smgr.passwordfile) or their rights; \
                         every change is kept and retried, next in {} ms",
                        if status == 401 { "not authenticated" } else { "not allowed" },
                        delay.as_millis()
                    ));
                }
                self.retry_after(items, delay);
            }
            Outcome::Permanent { .. } if items.len() > 1 => {
                // Which of them? Each half again, until the refused requests stand alone.
                d.posts_split.fetch_add(1, Ordering::Relaxed);
                let (a, b) = items.split_at(items.len() / 2);
                self.send(jitter, element, a);
                self.send(jitter, element, b);
            }
            Outcome::Permanent { status, body } => {
                let why = client.refusal(status);
                self.dead_letter(element, items, request, status, body, why)
            }
        }
    }

    /// SMGR has the requests: counted, the keys done.
    fn delivered(&self, element: &Arc<str>, items: &[(Key, Entry)]) {
        let d = &self.counters.delivery;
        let now = now_ms();
        d.posts_ok.fetch_add(1, Ordering::Relaxed);
        d.requests_delivered
            .fetch_add(items.len() as u64, Ordering::Relaxed);
        for (_, e) in items {
            let latency = now.saturating_sub(e.first_ms);
            d.latency_ms_sum.fetch_add(latency, Ordering::Relaxed);
            d.latency_ms_max.fetch_max(latency, Ordering::Relaxed);
        }
        self.accepted(element);
        if items.iter().any(|(k, _)| k.scope == Scope::Element) {
            self.state()
                .entry(element.clone())
                .or_default()
                .element_resync_ms = Some(sched_now_ms());
        }
        self.queue
            .done(items.iter().map(|(k, e)| (k.clone(), e.seq)).collect());
    }

    /// The keys wait `delay` and are sent again.
    fn retry_after(&self, items: &[(Key, Entry)], delay: Duration) {
        self.queue.retry(
            items.iter().map(|(k, _)| k),
            sched_now_ms() + delay.as_millis() as u64,
        );
    }

    /// SMGR refused one request for good: recorded in the dead-letter store, the key done.
    /// A record that cannot be written keeps the key queued: sent again later, and recorded
    /// then (the store says why meanwhile, as a degraded `deadletter.file`).
    fn dead_letter(
        &self,
        element: &Arc<str>,
        items: &[(Key, Entry)],
        request: Request,
        status: u16,
        answer: String,
        why: String,
    ) {
        self.accepted(element);
        let d = &self.counters.delivery;
        let recorded = self.deadletter.append(
            element,
            &request.body,
            &request.idempotency_key,
            status,
            &answer,
        );
        if recorded.is_err() {
            d.deadletters_unwritten
                .fetch_add(items.len() as u64, Ordering::Relaxed);
            self.retry_after(items, UNRECORDED_RETRY);
            return;
        }
        d.requests_deadlettered
            .fetch_add(items.len() as u64, Ordering::Relaxed);
        self.refusals.refused(element, why, sched_now_ms());
        self.queue
            .done(items.iter().map(|(k, e)| (k.clone(), e.seq)).collect());
    }

    /// SMGR answered (2xx, or a refusal of the request itself): the element is reachable and
    /// authorized again.
    fn accepted(&self, element: &Arc<str>) {
        let mut state = self.state();
        let Some(s) = state.get_mut(element) else {
            return;
        };
        let was_down = s.failures > 0;
        let was_unauthorized = s.unauthorized.take().is_some();
        s.failures = 0;
        s.next_try_ms = 0;
        let unauthorized = state.values().filter(|s| s.unauthorized.is_some()).count();
        // The elements share System Manager: one that answers again says it is back, and the
        // others backing off try again now, spread over a second, not when their backoff ends.
        let backing_off: Vec<Arc<str>> = if was_down {
            state
                .iter_mut()
                .filter(|(_, s)| s.failures > 0 && s.unauthorized.is_none())
                .map(|(el, s)| {
                    s.failures = 1;
                    el.clone()
                })
                .collect()
        } else {
            Vec::new()
        };
        drop(state);
        for (i, el) in backing_off.iter().enumerate() {
            let at = sched_now_ms() + (i as u64 * SPREAD_MS / backing_off.len() as u64);
            self.state().entry(el.clone()).or_default().next_try_ms = at;
            self.queue.hasten(el, at);
        }
        self.counters
            .delivery
            .elements_unauthorized
            .store(unauthorized as u64, Ordering::Relaxed);
        if was_unauthorized {
            logging::info(&format!(
                "{element}: System Manager accepts the credentials again"
            ));
        } else if was_down {
            logging::info(&format!("{element}: System Manager reachable again"));
        }
    }

    /// Marks `element` unauthorized by `status`; true when that is news (log it once).
    fn mark_unauthorized(&self, element: &Arc<str>, status: u16) -> bool {
        let mut state = self.state();
        let s = state.entry(element.clone()).or_default();
        let news = s.unauthorized != Some(status);
        s.unauthorized = Some(status);
        let unauthorized = state.values().filter(|s| s.unauthorized.is_some()).count();
        self.counters
            .delivery
            .elements_unauthorized
            .store(unauthorized as u64, Ordering::Relaxed);
        news
    }

    /// Backs the element off ([`backoff::delay`]); returns the delay and the element's
    /// failures in a row.
    fn back_off(
        &self,
        jitter: &mut Jitter,
        element: &Arc<str>,
        after: Option<Duration>,
    ) -> (Duration, u32) {
        let mut state = self.state();
        let b = state.entry(element.clone()).or_default();
        b.failures += 1;
        let s = &self.settings;
        let delay = backoff::delay(jitter, b.failures, s.retry_initial, s.retry_max, after);
        b.next_try_ms = sched_now_ms() + delay.as_millis() as u64;
        (delay, b.failures)
    }
}
