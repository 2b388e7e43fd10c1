//! Element host names to addresses, without ever making the caller wait long for DNS.
//!
//! A round asks for every name at once, on short-lived threads (at most [`LOOKUPS`] at a time),
//! and waits at most its own bound: a hung DNS server costs one lookup's time, not one per
//! name, and never more than the bound. An answer that comes after its round ended is kept and
//! flagged, so the table is rebuilt as soon as it arrives. A name whose lookup fails keeps the
//! addresses it had: a DNS outage must not make a CM's lines unknown.

use parking_lot::{Condvar, Mutex, MutexGuard};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::line::canonical;

/// Lookups running at once.
const LOOKUPS: usize = 16;

/// Turns a host name into addresses (the system resolver, or a test's table).
pub type Lookup = fn(&str) -> Vec<IpAddr>;

pub struct Resolver {
    lookup: Lookup,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    answered: Condvar,
}

#[derive(Default)]
struct State {
    /// Every name that was answered at least once: its addresses (empty: never resolved).
    known: HashMap<String, Vec<IpAddr>>,
    /// Names whose last lookup failed while they kept earlier addresses.
    stale: HashSet<String>,
    /// Lookups asked for and not answered yet (queued or running).
    in_flight: HashSet<String>,
    queue: Vec<String>,
    workers: usize,
    /// An answer arrived after its round had stopped waiting.
    late: bool,
}

impl Resolver {
    pub fn new(lookup: Lookup) -> Self {
        Resolver {
            lookup,
            shared: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock()
    }

    /// Looks every name up again (a name still being looked up is not asked twice) and waits
    /// until all have answered or `wait` has passed.
    pub fn round(&self, names: &[&str], wait: Duration) {
        let deadline = Instant::now() + wait;
        let mut state = self.lock();
        for name in names {
            if state.in_flight.insert((*name).to_owned()) {
                state.queue.push((*name).to_owned());
            }
        }
        while state.workers < LOOKUPS.min(state.queue.len()) {
            let shared = self.shared.clone();
            let lookup = self.lookup;
            let spawned = std::thread::Builder::new()
                .name("omcmsync-resolve".into())
                .spawn(move || resolve_queued(&shared, lookup));
            if spawned.is_err() {
                break; // retried at the next round; names in flight stay unanswered
            }
            state.workers += 1;
        }
        while names.iter().any(|n| state.in_flight.contains(*n)) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            self.shared.answered.wait_for(&mut state, left);
        }
        state.late = false;
    }

    /// The addresses a name has now (none: not answered yet, or never resolved).
    pub fn addresses(&self, name: &str) -> Vec<IpAddr> {
        self.lock().known.get(name).cloned().unwrap_or_default()
    }

    /// Every name has been answered at least once (resolved or not).
    pub fn answered(&self, names: &[&str]) -> bool {
        let state = self.lock();
        names.iter().all(|n| state.known.contains_key(*n))
    }

    /// Names whose last lookup failed; they keep their earlier addresses.
    pub fn stale(&self, names: &[&str]) -> Vec<String> {
        let state = self.lock();
        names
            .iter()
            .filter(|n| state.stale.contains(**n))
            .map(|n| (*n).to_owned())
            .collect()
    }

    /// Whether an answer came in after its round stopped waiting, since the last call.
    pub fn take_late(&self) -> bool {
        std::mem::take(&mut self.lock().late)
    }
}

/// A lookup thread: answers queued names until none is left.
fn resolve_queued(shared: &Shared, lookup: Lookup) {
    let lock = || shared.state.lock();
    loop {
        let Some(name) = ({
            let mut state = lock();
            let next = state.queue.pop();
            if next.is_none() {
                state.workers -= 1;
            }
            next
        }) else {
            return;
        };
        let addrs: Vec<IpAddr> = lookup(&name).into_iter().map(canonical).collect();
        let mut state = lock();
        state.in_flight.remove(&name);
        let had = state.known.get(&name).is_some_and(|a| !a.is_empty());
        if addrs.is_empty() && had {
            state.stale.insert(name);
        } else {
            state.stale.remove(&name);
            state.known.insert(name, addrs);
        }
        state.late = true;
        drop(state);
        shared.answered.notify_all();
    }
}

/// Resolves a host name with the system resolver.
pub fn system_lookup(host: &str) -> Vec<IpAddr> {
    #[cfg(feature = "fault-hooks")]
    crate::faults::hang("resolve");
    (host, 0)
        .to_socket_addrs()
        .map(|a| a.map(|s| s.ip()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slow(host: &str) -> Vec<IpAddr> {
        std::thread::sleep(Duration::from_millis(300));
        match host {
            "gone" => vec![],
            h => vec![format!("10.0.0.{}", h.len()).parse().unwrap()],
        }
    }

    #[test]
    fn names_are_looked_up_at_once_not_one_after_another() {
        let r = Resolver::new(slow);
        let names: Vec<String> = (1..=10).map(|n| "h".repeat(n)).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let started = Instant::now();
        r.round(&names, Duration::from_secs(10));
        assert!(r.answered(&names));
        assert!(
            started.elapsed() < Duration::from_millis(2000),
            "ten 300 ms lookups took {:?}",
            started.elapsed()
        );
        assert_eq!(r.addresses("hhh"), ["10.0.0.3".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn a_round_stops_waiting_and_late_answers_are_flagged() {
        let r = Resolver::new(slow);
        r.round(&["a"], Duration::from_millis(10));
        assert!(!r.answered(&["a"]));
        std::thread::sleep(Duration::from_millis(600));
        assert!(r.answered(&["a"]) && r.take_late());
        assert!(!r.take_late());
    }

    #[test]
    fn a_failed_lookup_keeps_the_last_addresses() {
        fn flaky(host: &str) -> Vec<IpAddr> {
            use std::sync::atomic::{AtomicBool, Ordering};
            static DOWN: AtomicBool = AtomicBool::new(false);
            match DOWN.swap(true, Ordering::SeqCst) {
                false => vec!["::ffff:10.0.0.7".parse().unwrap()],
                true => {
                    assert_eq!(host, "cm");
                    vec![]
                }
            }
        }
        let r = Resolver::new(flaky);
        r.round(&["cm"], Duration::from_secs(5));
        assert_eq!(r.addresses("cm"), ["10.0.0.7".parse::<IpAddr>().unwrap()]);
        r.round(&["cm"], Duration::from_secs(5));
        assert_eq!(r.addresses("cm"), ["10.0.0.7".parse::<IpAddr>().unwrap()]);
        assert_eq!(r.stale(&["cm"]), ["cm"]);
    }

    #[test]
    fn a_name_that_never_resolves_is_answered_empty() {
        let r = Resolver::new(slow);
        r.round(&["gone"], Duration::from_secs(5));
        assert!(r.answered(&["gone"]) && r.addresses("gone").is_empty());
    }
}
