//! The log of requests refused for good: one line when an element's refusals start, then at
//! most one a minute with how many followed, so that a System Manager refusing everything for
//! days writes a line a minute, not one per request.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

use crate::logging;

/// How often a burst of refusals is summarised.
const SUMMARY_MS: u64 = 60_000;

/// One element's refusals since its last line.
struct Burst {
    logged_ms: u64,
    more: u64,
    last: String,
}

#[derive(Default)]
pub struct RefusalLog {
    bursts: Mutex<HashMap<Arc<str>, Burst>>,
}

impl RefusalLog {
    /// A request of `element` refused for good (`why`) and recorded, at `now_ms`.
    pub fn refused(&self, element: &Arc<str>, why: String, now_ms: u64) {
        let mut bursts = self.bursts.lock();
        match bursts.get_mut(element) {
            Some(burst) => {
                burst.more += 1;
                burst.last = why;
            }
            None => {
                logging::error(&format!(
                    "{element}: {why}; written to deadletter.file (more refusals are summarised \
                     once a minute)"
                ));
                let burst = Burst {
                    logged_ms: now_ms,
                    more: 0,
                    last: why,
                };
                bursts.insert(element.clone(), burst);
            }
        }
    }

    /// Summarises the bursts whose minute is up; a burst with nothing new in its minute ends.
    pub fn tick(&self, now_ms: u64) {
        let mut bursts = self.bursts.lock();
        bursts.retain(|element, burst| {
            if now_ms.saturating_sub(burst.logged_ms) < SUMMARY_MS {
                return true;
            }
            if burst.more == 0 {
                return false;
            }
            logging::error(&format!(
                "{element}: {} more request(s) refused for good in the last {} s, written to \
                 deadletter.file (the last: {})",
                burst.more,
                now_ms.saturating_sub(burst.logged_ms) / 1000,
                burst.last
            ));
            (burst.logged_ms, burst.more) = (now_ms, 0);
            true
        });
    }

    /// When [`RefusalLog::tick`] has something to do next (scheduling clock), if ever.
    pub fn next_tick_ms(&self) -> Option<u64> {
        let bursts = self.bursts.lock();
        bursts.values().map(|b| b.logged_ms + SUMMARY_MS).min()
    }

    /// Elements with a burst open (for tests).
    #[cfg(test)]
    fn open(&self) -> Vec<(String, u64)> {
        let bursts = self.bursts.lock();
        let mut v: Vec<_> = bursts
            .iter()
            .map(|(e, b)| (e.to_string(), b.more))
            .collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_one_line_then_one_a_minute_then_ends() {
        let log = RefusalLog::default();
        let east: Arc<str> = "cm-east".into();
        for i in 0..50 {
            log.refused(&east, format!("HTTP 400 #{i}"), 1_000 + i);
        }
        assert_eq!(log.open(), [("cm-east".to_string(), 49)]);
        log.tick(30_000);
        assert_eq!(
            log.open(),
            [("cm-east".to_string(), 49)],
            "not a minute yet"
        );
        log.tick(61_000);
        assert_eq!(
            log.open(),
            [("cm-east".to_string(), 0)],
            "summarised, still open"
        );
        log.tick(122_000);
        assert!(log.open().is_empty(), "a quiet minute ends the burst");
    }
}
