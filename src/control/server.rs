//! The module's side of the control socket: a supervised thread (`omcmsync-control`) that
//! accepts connections and answers each on a short-lived thread of its own (at most
//! [`MAX_CLIENTS`] at once), so an idle or slow client holds up nobody else. Requests are
//! rare and small: each connection has [`CONNECTION_BUDGET`] in all to send its request and
//! take its answer.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::value::RawValue;

use super::wire::{
    Answer, DeadLetterList, ElementStatus, Failure, ProblemStatus, QueueStatus, Queued,
    ReconcileAsked, ReconcileStatus, Requeued, Status,
};
use super::{socket_path, Request, MAX_REQUEST};
use crate::classify::Verb;
use crate::clock::{now_ms, rfc3339};
use crate::deliver::{DeadLetters, Deliverer, Filter, MAX_LISTED};
use crate::elements::Elements;
use crate::ha::Gate;
use crate::logging;
use crate::queue::Queue;
use crate::reconcile::{Asked, Memory, Requests};
use crate::records::{OperatorRecord, RecordFile};
use crate::resync::{Change, Key, Origin, Scope};
use crate::supervise::Context;

/// Connections served at once; one more is answered "busy" and closed.
const MAX_CLIENTS: usize = 64;

/// Configured elements with nothing to show (no key, no delivery state, no dead letter)
/// listed in `status`; the rest are counted: a list of 100,000 idle rows helps nobody and
/// costs the daemon seconds.
const IDLE_SHOWN: usize = 1000;

/// How long one connection may take, from accept to its answer written.
const CONNECTION_BUDGET: Duration = Duration::from_secs(2);

/// The control socket as the service's stop reaches it: shut down for reading, the control
/// thread's blocking `accept` returns, whatever became of the socket's path meanwhile.
#[derive(Default)]
pub struct Listening(parking_lot::Mutex<Option<UnixListener>>);

impl Listening {
    fn listen(&self, listener: &UnixListener) {
        *self.0.lock() = listener.try_clone().ok();
    }

    /// Ends the control thread's `accept` (the service stops).
    pub fn close(&self) {
        if let Some(listener) = self.0.lock().take() {
            let _ = rustix::net::shutdown(&listener, rustix::net::Shutdown::Read);
        }
    }
}

/// What the control thread answers from.
pub struct Control {
    pub state_dir: PathBuf,
    pub queue: Arc<Queue>,
    pub deliverer: Arc<Deliverer>,
    pub gate: Arc<Gate>,
    pub elements: Arc<Elements>,
    pub deadletters: Arc<DeadLetters>,
    /// The object types requests may name (built-in and `rules.file`'s).
    pub types: Vec<String>,
    pub trace_file: Option<PathBuf>,
    pub context: Context,
    /// Closed by the service's stop.
    pub listening: Arc<Listening>,
    /// Reconciliation: what it remembers, and where an operator's request goes.
    pub memory: Arc<Memory>,
    pub reconcile: Arc<Requests>,
}

impl Control {
    /// Listens until `stop`; the socket is removed when it ends. A socket that cannot be made
    /// is logged and tried again every 10 s: the module runs on without it.
    pub fn run(&self) {
        let path = socket_path(&self.state_dir);
        let mut logged = false;
        loop {
            match self.bind() {
                Ok(listener) => {
                    self.listening.listen(&listener);
                    self.serve(&listener);
                    let _ = std::fs::remove_file(&path);
                    return;
                }
                Err(e) => {
                    if !logged {
                        logging::warning(&format!(
                            "control socket {}: {e}; omcmsync status, deadletter and resync cannot reach this module (tried again every 10 s)",
                            path.display()
                        ));
                        logged = true;
                    }
                    if self.context.shutdown.wait(Duration::from_secs(10)) {
                        return;
                    }
                }
            }
        }
    }

    /// Binds under a temporary name, makes it 0600, then renames it into place: the socket is
    /// never reachable with a wider mode. Any socket found there is stale (this process holds
    /// the state directory's lock).
    fn bind(&self) -> std::io::Result<UnixListener> {
        let path = socket_path(&self.state_dir);
        let tmp = path.with_extension("sock.new");
        let _ = std::fs::remove_file(&tmp);
        let listener = UnixListener::bind(&tmp)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&tmp, &path)?;
        Ok(listener)
    }

    fn serve(&self, listener: &UnixListener) {
        let clients = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            // accept blocks: the service's stop ends it (`Listening::close`).
            while !self.context.shutdown.is_set() {
                let Ok((mut stream, _)) = listener.accept() else {
                    // Shut down, or out of descriptors: not a reason to spin.
                    self.context.shutdown.wait(Duration::from_millis(100));
                    continue;
                };
                if clients.fetch_add(1, Ordering::Relaxed) >= MAX_CLIENTS {
                    clients.fetch_sub(1, Ordering::Relaxed);
                    let busy = Failure::json("busy: too many operator commands at once, try again");
                    let _ = stream.set_nonblocking(true);
                    let _ = stream.write_all(format!("{busy}\n").as_bytes());
                    continue;
                }
                let clients = &clients;
                let spawned = std::thread::Builder::new()
                    .name("omcmsync-ctl".into())
                    .spawn_scoped(scope, move || {
                        self.answer(stream);
                        clients.fetch_sub(1, Ordering::Relaxed);
                    });
                if spawned.is_err() {
                    clients.fetch_sub(1, Ordering::Relaxed);
                }
            }
        });
    }

    /// One connection: a request line, an answer line, within [`CONNECTION_BUDGET`].
    fn answer(&self, stream: UnixStream) {
        let deadline = Instant::now() + CONNECTION_BUDGET;
        if stream.set_nonblocking(false).is_err() {
            return;
        }
        let answer = match read_request(&stream, deadline) {
            Ok(line) => match serde_json::from_str(&line) {
                Ok(request) => self.handle(request),
                Err(e) => Failure::json(&format!("not a request: {e}")),
            },
            Err(e) => Failure::json(&e),
        };
        let mut out = answer;
        out.push('\n');
        let left = deadline.saturating_duration_since(Instant::now());
        let mut writer = &stream;
        if stream
            .set_write_timeout(Some(left.max(Duration::from_millis(100))))
            .is_ok()
        {
            let _ = writer.write_all(out.as_bytes());
        }
    }

    /// The answer's JSON text.
    fn handle(&self, request: Request) -> String {
        match request {
            Request::Status => Answer::json(self.status()),
            Request::DeadLetters { filter, limit } => self.dead_letters(&filter, limit),
            Request::Requeue { filter } => self.requeue(&filter),
            Request::Resync { element, scope } => self.resync(element, scope),
            Request::Reconcile { element, since_ms } => self.reconcile(element, since_ms),
        }
    }

    /// The newest `limit` records `filter` selects, as the store holds them.
    fn dead_letters(&self, filter: &Filter, limit: usize) -> String {
        match self.deadletters.list(filter, limit.min(MAX_LISTED)) {
            Ok(l) => Answer::json(DeadLetterList {
                matched: l.matched,
                // A line that is not JSON was never ours: left out.
                records: l
                    .records
                    .into_iter()
                    .filter_map(|r| RawValue::from_string(r).ok())
                    .collect(),
            }),
            Err(e) => Failure::json(&format!("{}: {e}", self.deadletters.path().display())),
        }
    }

    /// Per element: its keys, its delivery, its dead letters; and the module's own state.
    fn status(&self) -> Status {
        let dead = self.deadletters.counts();
        let elements = self.element_rows(dead.as_ref().cloned().unwrap_or_default());
        let configured = self.elements.current().names().count();
        let shown_configured = elements.iter().filter(|e| e.configured).count();
        Status {
            version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
            state_dir: self.state_dir.display().to_string(),
            role: match self.gate.known() {
                true => self.gate.role().as_str().into(),
                false => "not read yet".into(),
            },
            queue: QueueStatus {
                keys: self.queue.len(),
                log_bytes: self.queue.log_bytes(),
                held: self.queue.held(),
            },
            deadletter_file: self.deadletters.path().display().to_string(),
            deadletter_error: dead.err().map(|e| e.to_string()),
            elements_configured: configured,
            elements_not_shown: configured - shown_configured,
            elements,
            counters: self
                .context
                .counters
                .named()
                .into_iter()
                .map(|(name, c)| (name, c.load(Ordering::Relaxed)))
                .collect(),
            problems: self
                .context
                .problems
                .list()
                .iter()
                .map(|p| ProblemStatus {
                    param: p.param.into(),
                    what: p.what.clone(),
                    since: rfc3339(p.since_ms),
                    seen: p.seen,
                })
                .collect(),
            reconcile: self.reconcile_rows(),
        }
    }

    fn reconcile_rows(&self) -> Vec<ReconcileStatus> {
        let rows = self.memory.summaries().into_iter();
        rows.map(|(element, (last_heard, last_run))| ReconcileStatus {
            element,
            last_heard: (last_heard > 0).then(|| rfc3339(last_heard)),
            last_run,
        })
        .collect()
    }

    /// One row per element: every configured one with something to show, idle ones up to
    /// [`IDLE_SHOWN`], then those only keys, deliveries or dead letters name.
    fn element_rows(&self, dead_by: BTreeMap<String, u64>) -> Vec<ElementStatus> {
        let keys = self.queue.summary();
        let delivery: BTreeMap<String, _> = self
            .deliverer
            .view()
            .into_iter()
            .map(|(e, v)| (e.to_string(), v))
            .collect();
        let table = self.elements.current();
        let configured: std::collections::HashSet<&str> = table.names().map(|n| &**n).collect();
        let active =
            |n: &str| keys.contains_key(n) || delivery.contains_key(n) || dead_by.contains_key(n);
        let mut idle = 0;
        let mut names: Vec<String> = Vec::new();
        for name in table.names() {
            if active(name) || idle < IDLE_SHOWN {
                idle += usize::from(!active(name));
                names.push(name.to_string());
            }
        }
        let mut listed: std::collections::HashSet<String> = names.iter().cloned().collect();
        for name in keys.keys().chain(delivery.keys()).chain(dead_by.keys()) {
            if listed.insert(name.clone()) {
                names.push(name.clone());
            }
        }
        let now = now_ms();
        names
            .into_iter()
            .map(|name| {
                let k = keys.get(&name).cloned().unwrap_or_default();
                let d = delivery.get(&name).cloned().unwrap_or_default();
                ElementStatus {
                    configured: configured.contains(name.as_str()),
                    pending: k.pending,
                    in_flight: k.in_flight,
                    held: k.held,
                    oldest_age_ms: k.oldest_ms.map(|o| now.saturating_sub(o)),
                    failures: d.failures,
                    next_attempt_in_ms: d.next_attempt_in_ms,
                    unauthorized: d.unauthorized,
                    last_answer: d.last.as_ref().map(|(_, text)| text.clone()),
                    last_answer_at: d.last.as_ref().map(|(at, _)| rfc3339(*at)),
                    deadletters: dead_by.get(&name).copied().unwrap_or(0),
                    name,
                }
            })
            .collect()
    }

    /// The selected dead letters' requests back into the queue (on disk before the records
    /// leave the file).
    fn requeue(&self, filter: &Filter) -> String {
        let mut changes = 0;
        let taken = self.deadletters.requeue(filter, |c| {
            changes = c.len();
            match self.queue.submit_synced(c) {
                Ok(()) => true,
                Err(e) => {
                    logging::error(&format!("operator requeue: the queue refused: {e}"));
                    false
                }
            }
        });
        match taken {
            Ok(taken) => {
                let n = taken.records;
                self.context
                    .counters
                    .operator_requeued
                    .fetch_add(n, Ordering::Relaxed);
                if n > 0 {
                    logging::info(&format!(
                        "operator: {n} dead-lettered request(s) requeued ({changes} key change(s)), by omcmsync deadletter requeue"
                    ));
                    for (element, key) in &taken.first {
                        self.trace("requeue", element, None, Some(key));
                    }
                }
                Answer::json(Requeued {
                    requeued: n,
                    changes,
                })
            }
            Err(e) => Failure::json(&format!(
                "requeue from {}: {e}; nothing was taken out of it",
                self.deadletters.path().display()
            )),
        }
    }

    /// An operator's own request, through the same durable path as a change from CM.
    /// Asks the reconciler for a session now; it runs on the reconciler's thread and its
    /// result shows in the status.
    fn reconcile(&self, element: Option<String>, since_ms: Option<u64>) -> String {
        if self.gate.admission() != crate::ha::Admission::Process {
            return Failure::json(
                "this node is not active: the active node reconciles (a standby never reads CM)",
            );
        }
        // Just after a start the reconciler may not have looked at the element list yet.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.memory.looked() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let reconciled: Vec<String> = self.memory.summaries().into_keys().collect();
        let elements = match element {
            Some(e) if reconciled.contains(&e) => vec![e],
            Some(e) => {
                return Failure::json(&format!(
                    "'{e}' is not reconciled: it needs a directory of its own under reconcile.dir (docs/configuration.md)"
                ))
            }
            None => reconciled,
        };
        for e in &elements {
            self.reconcile.ask(Asked {
                element: Some(e.clone()),
                since_ms,
            });
        }
        Answer::json(ReconcileAsked { elements })
    }

    fn resync(&self, element: String, scope: Scope) -> String {
        let table = self.elements.current();
        if !table.names().any(|n| **n == *element) {
            return Failure::json(&format!(
                "unknown element '{element}': not in the element list in force"
            ));
        }
        if let Scope::Object { ty, .. } | Scope::Type { ty } = &scope {
            if !self.types.iter().any(|t| **t == **ty) {
                return Failure::json(&format!(
                    "unknown object type '{ty}'; known: {}",
                    self.types.join(", ")
                ));
            }
        }
        let change = Change {
            key: Key {
                element: element.as_str().into(),
                scope: scope.clone(),
            },
            verb: Verb::Change,
            login: None,
            reason: (!matches!(scope, Scope::Object { .. }))
                .then(|| crate::resync::OPERATOR_RESYNC.into()),
            at_ms: now_ms(),
            origin: Origin::Heard,
        };
        if let Err(e) = self.queue.submit_synced(vec![change]) {
            return Failure::json(&format!("the queue refused the request: {e}"));
        }
        self.context
            .counters
            .operator_resyncs
            .fetch_add(1, Ordering::Relaxed);
        let what = serde_json::to_string(&scope).unwrap_or_default();
        logging::info(&format!(
            "operator: resync of {element} {what} queued, by omcmsync resync"
        ));
        self.trace("resync", &element, Some(scope.clone()), None);
        Answer::json(Queued { queued: scope })
    }

    /// An operator's action (queued) in `trace.file`, when one is set.
    fn trace(&self, op: &str, element: &str, scope: Option<Scope>, key: Option<&str>) {
        let Some(path) = &self.trace_file else {
            return;
        };
        let mut line = Vec::new();
        OperatorRecord {
            op: op.into(),
            element: element.into(),
            scope,
            idempotency_key: key.map(Into::into),
            outcome: "queued".into(),
            time: rfc3339(now_ms()),
            source: "operator".into(),
        }
        .write(&mut line);
        RecordFile::new(path, "trace.file", self.context.problems.clone()).append(&line, 1);
    }
}

/// Reads one request line (at most [`MAX_REQUEST`] bytes) before `deadline`, however slowly
/// the client sends it.
fn read_request(mut stream: &UnixStream, deadline: Instant) -> Result<String, String> {
    let mut line = Vec::new();
    let mut buf = [0u8; 4096];
    while !line.contains(&b'\n') {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("no whole request within the connection's budget".into());
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => line.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
        if line.len() as u64 > MAX_REQUEST {
            return Err(format!("request longer than {MAX_REQUEST} bytes"));
        }
    }
    let end = line.iter().position(|&b| b == b'\n').unwrap_or(line.len());
    String::from_utf8(line[..end].to_vec()).map_err(|_| "request is not UTF-8".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stop's shutdown ends a blocking accept, though nothing connects.
    #[test]
    fn closing_ends_a_blocking_accept() {
        let dir = tempfile::tempdir().unwrap();
        let listener = UnixListener::bind(dir.path().join("s")).unwrap();
        let listening = Arc::new(Listening::default());
        listening.listen(&listener);
        let accepting = std::thread::spawn(move || listener.accept().is_err());
        std::thread::sleep(Duration::from_millis(100));
        listening.close();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !accepting.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(accepting.is_finished(), "accept still blocked");
        assert!(accepting.join().unwrap(), "accept returned a connection");
    }
}
