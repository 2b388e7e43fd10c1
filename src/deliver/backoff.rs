//! How long an element waits after a failed POST: exponential from `retry.initial.ms`, capped
//! at `retry.max.ms`, with jitter so that many elements failing together (System Manager went
//! down) do not come back in step, and never shorter than System Manager's Retry-After.

use std::time::Duration;

/// The delay after the `failures`-th failure in a row: uniform in the upper half of the
/// exponential step, at least `after`, at most `max`.
pub fn delay(
    jitter: &mut Jitter,
    failures: u32,
    initial: Duration,
    max: Duration,
    after: Option<Duration>,
) -> Duration {
    let base = initial.as_millis() as u64;
    let max = max.as_millis() as u64;
    let step = base
        .saturating_mul(1 << failures.saturating_sub(1).min(20))
        .min(max);
    let jittered = step / 2 + jitter.below(step / 2 + 1);
    let ms = jittered
        .max(after.map_or(0, |a| a.as_millis() as u64))
        .min(max.max(1));
    Duration::from_millis(ms)
}

/// A small pseudo-random source for the jitter (xorshift64*): no cryptographic strength is
/// needed, only lanes that do not draw the same numbers.
pub struct Jitter(u64);

impl Jitter {
    pub fn new(seed: u64) -> Self {
        Jitter(seed.max(1))
    }

    /// Uniform enough in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn doubles_with_jitter_up_to_the_cap_and_honours_retry_after() {
        let mut j = Jitter::new(7);
        for failures in 1..=12 {
            let step = (100u64 << (failures - 1)).min(5000);
            let d = delay(&mut j, failures, MS(100), MS(5000), None);
            assert!(d >= MS(step / 2) && d <= MS(step), "{failures}: {d:?}");
        }
        assert_eq!(
            delay(&mut j, 1, MS(100), MS(5000), Some(MS(3000))),
            MS(3000)
        );
        assert_eq!(
            delay(&mut j, 1, MS(100), MS(5000), Some(MS(60_000))),
            MS(5000),
            "retry.max.ms caps even Retry-After"
        );
    }
}
