//! The reconciler's mailbox: what asks for a session (a promotion, an element heard after a
//! silence, an operator) and the stop, each ending its wait at once.

use parking_lot::{Condvar, Mutex};
use std::time::Duration;

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
    state: Mutex<State>,
    woken: Condvar,
}

#[derive(Default)]
struct State {
    asked: Vec<Asked>,
    nudged: bool,
}

impl Requests {
    /// An operator asks (`omcmsync reconcile`).
    pub fn ask(&self, asked: Asked) {
        self.state.lock().asked.push(asked);
        self.nudge();
    }

    /// Ends the reconciler's wait (its service stops, or something became due).
    pub fn nudge(&self) {
        self.state.lock().nudged = true;
        self.woken.notify_all();
    }

    /// Waits up to `timeout` for a request or a nudge; one since the last wait ends it at once.
    pub fn wait(&self, timeout: Duration) {
        let mut state = self.state.lock();
        if !state.nudged && state.asked.is_empty() {
            self.woken.wait_for(&mut state, timeout);
        }
        state.nudged = false;
    }

    pub fn take(&self) -> Vec<Asked> {
        std::mem::take(&mut self.state.lock().asked)
    }
}
