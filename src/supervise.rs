//! One way to run a background thread. A panic is caught, logged through rsyslog's error log
//! with the thread's name and the panic's message, counted (`threads.restarted`), and the
//! thread's loop runs again after a short pause. A thread that keeps panicking (more than
//! [`RESTARTS_MAX`] times within [`RESTART_WINDOW`]) is given up: its service is marked failed,
//! and batches are answered SUSPENDED (rsyslog keeps them) instead of being committed into a
//! queue that nothing drains or syncs.

use parking_lot::{Condvar, Mutex};
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::counters::Counters;
use crate::logging;

pub const RESTARTS_MAX: usize = 5;
pub const RESTART_WINDOW: Duration = Duration::from_secs(60);
const PAUSE: Duration = Duration::from_millis(200);

/// Whether a service's threads are all still running.
#[derive(Default)]
pub struct Health {
    failed: AtomicBool,
}

impl Health {
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }
}

/// What every background thread of a service shares besides its own work: where it counts,
/// where it reports what the host lacks, its service's health and the one stop signal.
#[derive(Clone, Default)]
pub struct Context {
    pub counters: Arc<Counters>,
    pub health: Arc<Health>,
    pub shutdown: Shutdown,
    /// Where a thread reports what the host lacks (a full disk, say), summarised.
    pub problems: Arc<crate::problems::Problems>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Context {{ failed: {} }}", self.health.failed())
    }
}

/// A thread's wake-up: [`Wake::nudge`] ends its current or next [`Wake::wait`] (one nudge per
/// wait, none lost between two waits). What the thread is woken for is its owner's business.
#[derive(Default)]
pub struct Wake {
    /// A nudge not yet seen by [`Wake::wait`].
    nudged: Mutex<bool>,
    woken: Condvar,
}

impl Wake {
    pub fn nudge(&self) {
        *self.nudged.lock() = true;
        self.woken.notify_all();
    }

    /// Waits up to `timeout` for a nudge; one that came since the last wait ends it at once.
    pub fn wait(&self, timeout: Duration) {
        let mut nudged = self.nudged.lock();
        if !*nudged {
            self.woken.wait_for(&mut nudged, timeout);
        }
        *nudged = false;
    }
}

/// A HUP for the service: requested by the action on rsyslog's main thread, taken by the
/// element refresher's thread, which reads the element list and the SMGR client's files again
/// (DNS and file reads never on rsyslog's main thread). The refresher sleeps on it.
#[derive(Default)]
pub struct Hup {
    requested: AtomicBool,
    wake: Wake,
}

impl Hup {
    pub fn request(&self) {
        self.requested.store(true, Ordering::Relaxed);
        self.nudge();
    }

    /// Ends the refresher's current or next [`Hup::wait`] without a HUP (its service stops).
    pub fn nudge(&self) {
        self.wake.nudge();
    }

    /// Whether a HUP came since the last call.
    pub fn take(&self) -> bool {
        self.requested.swap(false, Ordering::Relaxed)
    }

    /// Waits up to `timeout` for a HUP or a nudge; one that came since the last wait ends it
    /// at once.
    pub fn wait(&self, timeout: Duration) {
        self.wake.wait(timeout);
    }
}

/// A service's stop signal: set once, and waited on where a thread would otherwise sleep, so
/// that a stop ends every wait at once instead of at the next poll.
#[derive(Clone, Default)]
pub struct Shutdown(Arc<ShutdownState>);

#[derive(Default)]
struct ShutdownState {
    set: AtomicBool,
    lock: Mutex<()>,
    changed: Condvar,
}

impl Shutdown {
    /// Stops: every [`Shutdown::wait`] returns now and every later one at once.
    pub fn trigger(&self) {
        let _guard = self.0.lock.lock();
        self.0.set.store(true, Ordering::Relaxed);
        self.0.changed.notify_all();
    }

    pub fn is_set(&self) -> bool {
        self.0.set.load(Ordering::Relaxed)
    }

    /// Waits up to `timeout` for the stop; true when stopping.
    pub fn wait(&self, timeout: Duration) -> bool {
        let mut guard = self.0.lock.lock();
        let state = &self.0;
        state
            .changed
            .wait_while_for(&mut guard, |_| !state.set.load(Ordering::Relaxed), timeout);
        self.is_set()
    }
}

/// The text of a panic's payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// Logs and counts a panic caught in `thread`.
pub fn report(thread: &str, payload: &(dyn Any + Send), counters: &Counters, what_next: &str) {
    counters.threads_restarted.fetch_add(1, Ordering::Relaxed);
    logging::error(&format!(
        "thread {thread} panicked: {}; {what_next}",
        panic_message(payload)
    ));
}

/// Joins each of `threads` that ends before `deadline`; one that does not is left to finish
/// on its own (detached), so that a stop never waits longer than the caller allows.
pub fn join_until(threads: impl IntoIterator<Item = JoinHandle<()>>, deadline: Instant) {
    for t in threads {
        while !t.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if t.is_finished() {
            let _ = t.join();
        }
    }
}

/// Spawns `body` as thread `name` and runs it again whenever it panics, until it returns or
/// the service stops; gives up (marking the service failed) when it keeps panicking.
pub fn spawn(
    name: &str,
    s: Context,
    body: impl Fn() + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    let thread = name.to_owned();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let mut restarts: Vec<Instant> = Vec::new();
            loop {
                let Err(payload) = catch_unwind(AssertUnwindSafe(&body)) else {
                    return;
                };
                restarts.retain(|t| t.elapsed() < RESTART_WINDOW);
                restarts.push(Instant::now());
                if restarts.len() > RESTARTS_MAX {
                    s.health.failed.store(true, Ordering::Relaxed);
                    report(
                        &thread,
                        &*payload,
                        &s.counters,
                        "it keeps failing: the action suspends new batches (rsyslog keeps them) until rsyslogd restarts",
                    );
                    return;
                }
                report(&thread, &*payload, &s.counters, "restarting it");
                if s.shutdown.wait(PAUSE) {
                    return;
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn supervision() -> Context {
        Context::default()
    }

    #[test]
    fn a_stop_ends_every_wait_at_once() {
        let shutdown = Shutdown::default();
        assert!(!shutdown.wait(Duration::from_millis(1)));
        let waiter = {
            let shutdown = shutdown.clone();
            std::thread::spawn(move || {
                let t = Instant::now();
                (shutdown.wait(Duration::from_secs(30)), t.elapsed())
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        shutdown.trigger();
        let (stopped, waited) = waiter.join().unwrap();
        assert!(stopped && waited < Duration::from_secs(10), "{waited:?}");
        assert!(shutdown.wait(Duration::from_secs(30)), "at once once set");
    }

    #[test]
    fn a_panic_is_counted_and_the_thread_runs_again() {
        let s = supervision();
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        let t = spawn("t-once", s.clone(), move || {
            if r.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("first run");
            }
        })
        .unwrap();
        t.join().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert_eq!(s.counters.threads_restarted.load(Ordering::SeqCst), 1);
        assert!(!s.health.failed());
    }

    #[test]
    fn a_thread_that_keeps_panicking_fails_the_service() {
        let s = supervision();
        let t = spawn("t-always", s.clone(), || panic!("always")).unwrap();
        t.join().unwrap();
        assert!(s.health.failed());
        assert_eq!(
            s.counters.threads_restarted.load(Ordering::SeqCst),
            RESTARTS_MAX as u64 + 1
        );
    }
}
