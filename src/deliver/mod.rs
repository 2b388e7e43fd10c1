//! Delivery: one thread takes due keys from the queue, posts them to System Manager per element,
//! and reports back. Failures back off per element (exponential with jitter, at least what
//! Retry-After asks) so that one unreachable CM element's SMGR path never holds up the others;
//! permanent refusals are dead-lettered and never block other keys.

mod client;
mod tls;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

pub use self::client::{idempotency_key, Auth, ClientSettings, Outcome, SmgrClient};
pub use self::tls::{client_config, TlsFiles};
use crate::counters::Counters;
use crate::logging;
use crate::queue::{DueBatch, Entry, Queue};
use crate::records::RecordFile;
use crate::resync::{now_ms, request_body, rfc3339, Key, Scope};
use crate::sample::Rng;

/// Due keys are taken for up to this many POSTs per element at once: finding them walks every
/// pending key of the element, which with a backlog of 100,000 keys cost more than the POSTs.
const POSTS_PER_PASS: usize = 16;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliverySettings {
    pub max_requests: usize,
    pub retry_initial: Duration,
    pub retry_max: Duration,
}

/// Per-element retry state.
#[derive(Default)]
struct Backoff {
    failures: u32,
    next_try_ms: u64,
}

pub struct Deliverer {
    queue: Arc<Queue>,
    client: SmgrClient,
    settings: DeliverySettings,
    deadletter: RecordFile,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    backoff: HashMap<Arc<str>, Backoff>,
    rng: Rng,
}

impl Deliverer {
    pub fn new(
        queue: Arc<Queue>,
        client: SmgrClient,
        settings: DeliverySettings,
        deadletter: RecordFile,
        counters: Arc<Counters>,
        stop: Arc<AtomicBool>,
    ) -> Self {
        Deliverer {
            queue,
            client,
            settings,
            deadletter,
            counters,
            stop,
            backoff: HashMap::new(),
            rng: Rng::new(now_ms()),
        }
    }

    /// Runs until `stop` is set.
    pub fn run(mut self) {
        while !self.stop.load(Ordering::Relaxed) {
            self.counters
                .set_queue_gauges(self.queue.len() as u64, self.queue.log_bytes());
            let now = now_ms();
            let backoff = &self.backoff;
            let ready_at = |el: &str| backoff.get(el).map_or(0, |b| b.next_try_ms);
            let per_pass = self.settings.max_requests.saturating_mul(POSTS_PER_PASS);
            let due = self.queue.take_due(now, per_pass, ready_at);
            if due.is_empty() {
                let next = self.queue.next_due_ms().unwrap_or(now + 1000).max(now + 10);
                self.queue
                    .wait_for_changes(Duration::from_millis((next - now).min(250)));
                continue;
            }
            for batch in due {
                self.send_pass(batch);
            }
        }
    }

    /// One element's keys of a pass, in POSTs of `max_requests`. After a failed POST the rest
    /// wait for the element's backoff too; at stop, what was not sent stays in the log.
    fn send_pass(&mut self, (element, items): DueBatch) {
        for chunk in items.chunks(self.settings.max_requests) {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            match self.backoff.get(&element) {
                Some(b) if b.next_try_ms > now_ms() => {
                    self.queue
                        .retry(chunk.iter().map(|(k, _)| k), b.next_try_ms);
                }
                _ => self.send(&element, chunk),
            }
        }
    }

    fn send(&mut self, element: &Arc<str>, items: &[(Key, Entry)]) {
        let requests: Vec<Value> = items.iter().map(|(k, e)| e.request(&k.scope)).collect();
        let idem = idempotency_key(
            element,
            items.iter().map(|(k, e)| (scope_id(&k.scope), e.seq)),
        );
        let body = request_body(element, &requests);
        let sent: Vec<_> = items.iter().map(|(k, e)| (k.clone(), e.seq)).collect();
        match self.client.post(element, &body, &idem) {
            Outcome::Done => {
                let now = now_ms();
                self.counters
                    .delivery
                    .posts_ok
                    .fetch_add(1, Ordering::Relaxed);
                self.counters
                    .delivery
                    .requests_delivered
                    .fetch_add(items.len() as u64, Ordering::Relaxed);
                for (_, e) in items {
                    let latency = now.saturating_sub(e.first_ms);
                    self.counters
                        .delivery
                        .latency_ms_sum
                        .fetch_add(latency, Ordering::Relaxed);
                    self.counters
                        .delivery
                        .latency_ms_max
                        .fetch_max(latency, Ordering::Relaxed);
                }
                if self.backoff.remove(element).is_some() {
                    logging::info(&format!("{element}: System Manager reachable again"));
                }
                self.queue.delivered(sent);
            }
            Outcome::Retry { why, after } => {
                self.counters
                    .delivery
                    .posts_retried
                    .fetch_add(1, Ordering::Relaxed);
                let delay = self.next_delay(element, after);
                let b = self.backoff.entry(element.clone()).or_default();
                if b.failures == 1 || b.failures.is_multiple_of(20) {
                    logging::warning(&format!(
                        "{element}: POST {} failed ({why}); {} keys kept, retrying in {} ms (attempt {})",
                        self.client.resync_url(element),
                        items.len(),
                        delay.as_millis(),
                        b.failures
                    ));
                }
                let retry_at = now_ms() + delay.as_millis() as u64;
                self.queue.retry(items.iter().map(|(k, _)| k), retry_at);
            }
            Outcome::Permanent {
                status,
                body: answer,
            } => {
                self.counters
                    .delivery
                    .requests_deadlettered
                    .fetch_add(items.len() as u64, Ordering::Relaxed);
                logging::error(&format!(
                    "{element}: System Manager refused {} requests with HTTP {status}; written to deadletter.file",
                    items.len()
                ));
                let record = json!({
                    "time": rfc3339(now_ms()), "element": &**element, "status": status,
                    "answer": answer, "idempotency_key": idem, "body": body,
                });
                let mut line = record.to_string().into_bytes();
                line.push(b'\n');
                self.deadletter.append(&line, 1);
                self.queue.delivered(sent);
            }
        }
    }

    /// Exponential backoff with jitter, at least what Retry-After asked, at most retry.max.
    fn next_delay(&mut self, element: &Arc<str>, after: Option<Duration>) -> Duration {
        let b = self.backoff.entry(element.clone()).or_default();
        b.failures += 1;
        let base = self.settings.retry_initial.as_millis() as u64;
        let exp = base.saturating_mul(1 << (b.failures - 1).min(20));
        let max = self.settings.retry_max.as_millis() as u64;
        let jittered = exp.min(max) / 2 + self.rng.below(exp.min(max) / 2 + 1);
        let delay = jittered
            .max(after.map_or(0, |a| a.as_millis() as u64))
            .min(max.max(1));
        b.next_try_ms = now_ms() + delay;
        Duration::from_millis(delay)
    }
}

fn scope_id(scope: &Scope) -> String {
    match scope {
        Scope::Object { ty, id } => format!("{ty}/{id}"),
        Scope::Type { ty } => format!("{ty}/*"),
        Scope::Element => "*".into(),
    }
}
