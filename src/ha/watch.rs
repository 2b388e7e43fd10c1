//! The thread that follows the HA role: the [`Gate`] reads it, the queue is held or released
//! to match.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Gate;
use crate::logging;
use crate::queue::Queue;
use crate::reconcile::Requests;
use crate::smgr::SharedClient;
use crate::supervise::Context;

/// Reads the HA role every `ha.interval.ms`, and holds or releases the queue to match: a
/// standby (`ha.standby="hold"`) keeps its keys, the moment it is active they are all due.
pub struct Watch {
    pub client: Arc<SharedClient>,
    pub gate: Arc<Gate>,
    pub queue: Arc<Queue>,
    /// Woken when the role changes: a promotion reconciles.
    pub reconcile: Arc<Requests>,
    pub context: Context,
}

impl Watch {
    /// The thread `omcmsync-ha`: until the service stops.
    pub fn run(&self) {
        let ctx = &self.context;
        // The retention walks every held key under the queue's lock: a tenth of the retention
        // apart (1 s to 1 min), not at every read of the role.
        let retain = self.gate.settings().standby_retain;
        let expire_every = (retain / 10).clamp(Duration::from_secs(1), Duration::from_secs(60));
        let mut next_expiry = Instant::now();
        while !ctx.shutdown.is_set() {
            #[cfg(feature = "fault-hooks")]
            crate::faults::panic_once("omcmsync-ha");
            let before = self.gate.role();
            let reading = self.gate.check(self.client.get().as_deref());
            if self.gate.role() != before {
                self.reconcile.nudge();
            }
            if reading.role == crate::ha::Role::Unknown {
                ctx.counters.ha_unknown.fetch_add(1, Ordering::Relaxed);
            }
            // Shown in status; the gate logs the role's switches itself.
            if let Some(param) = self.gate.source_param() {
                match &reading.why {
                    Some(why) => ctx.problems.note(param, why),
                    None => ctx.problems.forget(param),
                }
            }
            let holds = self.follow_role();
            if holds && Instant::now() >= next_expiry {
                self.expire(retain);
                next_expiry = Instant::now() + expire_every;
            }
            ctx.shutdown.wait(self.gate.interval());
        }
    }
}

impl Watch {
    /// Holds or releases the queue as the role says; returns whether it holds.
    fn follow_role(&self) -> bool {
        let c = &self.context.counters;
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
            self.context
                .counters
                .standby_expired
                .fetch_add(expired as u64, Ordering::Relaxed);
            logging::info(&format!(
                "standby: {expired} held key(s) older than ha.standby.retain.ms dropped (System Manager's daily sync covers them)"
            ));
        }
    }
}
