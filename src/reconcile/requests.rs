//! The reconciler's mailbox: what asks for a session (a promotion, an element heard after a
//! silence, an operator) and the stop, each ending its wait at once.

use parking_lot::Mutex;
use std::time::Duration;

use crate::supervise::Wake;

/// What started a session, as `omcmsync status` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    /// The first session after a start, the element not compared for longer than the interval.
    Start,
    Promotion,
    Silence,
    Operator,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Start => "start",
            Trigger::Promotion => "promotion",
            Trigger::Silence => "silence",
            Trigger::Operator => "operator",
        }
    }
}

/// An operator's request: one element (or all), compared from `since_ms` (or from where the
/// last session ended).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Asked {
    pub element: Option<String>,
    pub since_ms: Option<u64>,
}

#[derive(Default)]
pub struct Requests {
    asked: Mutex<Vec<Asked>>,
    wake: Wake,
}

impl Requests {
    /// An operator asks (`omcmsync reconcile`).
    pub fn ask(&self, asked: Asked) {
        self.asked.lock().push(asked);
        self.nudge();
    }

    /// Ends the reconciler's wait (its service stops, or something became due).
    pub fn nudge(&self) {
        self.wake.nudge();
    }

    /// Waits up to `timeout` for a request or a nudge; one since the last wait ends it at once.
    pub fn wait(&self, timeout: Duration) {
        self.wake.wait(timeout);
    }

    pub fn take(&self) -> Vec<Asked> {
        std::mem::take(&mut *self.asked.lock())
    }
}
