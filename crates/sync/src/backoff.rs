//! Reconnect delays: exponential back-off with jitter, the jitter drawn from
//! the caller's randomness so tests are deterministic.
//!
//! Attempt `n` (counting from 0) waits a delay drawn uniformly from
//! `[d/2, d]` where `d = min(max_ms, base_ms * 2^n)` ("equal jitter"): the
//! delay grows until the cap, and devices that lost the relay at the same
//! moment do not all come back at the same moment.

/// Back-off settings and the count of failed attempts so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    base_ms: u64,
    max_ms: u64,
    attempts: u32,
}

impl Backoff {
    /// A back-off starting at `base_ms` and capped at `max_ms` (both at least
    /// 1 ms; a cap below the base is raised to it).
    pub fn new(base_ms: u64, max_ms: u64) -> Self {
        let base_ms = base_ms.max(1);
        Self { base_ms, max_ms: max_ms.max(base_ms), attempts: 0 }
    }

    /// The delay before the next attempt, given 4 random bytes; counts the
    /// attempt.
    pub fn next_delay(&mut self, random: [u8; 4]) -> u64 {
        let ceiling = self.ceiling();
        self.attempts = self.attempts.saturating_add(1);
        let floor = ceiling / 2;
        let span = ceiling - floor;
        floor + u64::from(u32::from_le_bytes(random)) % (span + 1)
    }

    /// The longest delay allowed, for problems that retrying soon cannot fix.
    pub fn max_delay(&self, random: [u8; 4]) -> u64 {
        let floor = self.max_ms / 2;
        floor + u64::from(u32::from_le_bytes(random)) % (self.max_ms - floor + 1)
    }

    /// The upper bound of the next delay, before jitter.
    pub fn ceiling(&self) -> u64 {
        let factor = 1u64.checked_shl(self.attempts.min(63)).unwrap_or(u64::MAX);
        self.base_ms.saturating_mul(factor).min(self.max_ms)
    }

    /// Failed attempts since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Starts again from the base delay (after a successful sync).
    pub fn reset(&mut self) {
        self.attempts = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_until_the_cap_and_stay_within_the_jitter_window() {
        let mut b = Backoff::new(100, 5_000);
        let ceilings: Vec<u64> = (0..10)
            .map(|i| {
                let c = b.ceiling();
                let d = b.next_delay([(i as u8).wrapping_mul(37), 1, 2, 3]);
                assert!(d >= c / 2 && d <= c, "{d} outside [{}, {c}]", c / 2);
                c
            })
            .collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000]);
        b.reset();
        assert_eq!(b.ceiling(), 100);
    }

    #[test]
    fn extreme_settings_and_many_attempts_do_not_overflow() {
        let mut b = Backoff::new(u64::MAX, 0);
        for _ in 0..200 {
            assert!(b.next_delay([0xff; 4]) >= u64::MAX / 2, "no overflow panics, no wrap-around");
        }
        let mut b = Backoff::new(0, 60_000);
        for _ in 0..200 {
            assert!(b.next_delay([0xff; 4]) <= 60_000);
        }
        assert!(b.max_delay([0xff; 4]) >= 30_000);
    }
}
