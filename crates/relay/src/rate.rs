//! Per-connection rate limiting: a token bucket, pure over a caller-given
//! clock so its behaviour is tested without sleeping.

use std::time::{Duration, Instant};

/// A token bucket: holds up to `capacity` tokens, refilled at `rate` per
/// second; each admitted unit of work takes tokens.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    rate_per_sec: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(capacity: u64, rate_per_sec: u64, now: Instant) -> Self {
        TokenBucket {
            capacity: capacity as f64,
            rate_per_sec: rate_per_sec as f64,
            tokens: capacity as f64,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate_per_sec).min(self.capacity);
        self.updated = now;
    }

    /// Takes `cost` tokens if there are enough; otherwise takes nothing and
    /// says how long until there will be.
    ///
    /// # Errors
    /// The wait before `cost` tokens are available (a cost above the
    /// capacity waits for a full bucket).
    pub fn try_take(&mut self, cost: u64, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        let cost = (cost as f64).min(self.capacity);
        if self.tokens >= cost {
            self.tokens -= cost;
            Ok(())
        } else {
            let missing = cost - self.tokens;
            Err(Duration::from_secs_f64(missing / self.rate_per_sec.max(f64::MIN_POSITIVE)))
        }
    }
}

/// The two buckets of one connection: frames and bytes.
#[derive(Debug, Clone)]
pub struct ConnectionBudget {
    frames: TokenBucket,
    bytes: TokenBucket,
}

impl ConnectionBudget {
    /// Full buckets from the configured limits.
    pub fn new(limits: &crate::config::Limits, now: Instant) -> Self {
        ConnectionBudget {
            frames: TokenBucket::new(u64::from(limits.rate_burst_frames), u64::from(limits.rate_frames_per_sec), now),
            bytes: TokenBucket::new(limits.rate_burst_bytes, limits.rate_bytes_per_sec, now),
        }
    }

    /// Admits one frame of `len` bytes, or says how long to wait. A refused
    /// frame takes nothing from either bucket.
    ///
    /// # Errors
    /// The wait before the frame would be admitted.
    pub fn admit(&mut self, len: usize, now: Instant) -> Result<(), Duration> {
        let mut frames = self.frames.clone();
        frames.try_take(1, now)?;
        self.bytes.try_take(len as u64, now)?;
        self.frames = frames;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_bucket_admits_its_burst_then_refuses_with_the_wait() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(3, 10, t0);
        assert!(b.try_take(1, t0).is_ok());
        assert!(b.try_take(1, t0).is_ok());
        assert!(b.try_take(1, t0).is_ok());
        let wait = b.try_take(1, t0).expect_err("bucket is empty");
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
    }

    #[test]
    fn tokens_come_back_at_the_rate_up_to_the_capacity() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(2, 10, t0);
        assert!(b.try_take(2, t0).is_ok());
        assert!(b.try_take(1, t0 + Duration::from_millis(100)).is_ok());
        assert!(b.try_take(1, t0 + Duration::from_millis(100)).is_err());
        // A long pause refills only to the capacity.
        let later = t0 + Duration::from_secs(60);
        assert!(b.try_take(2, later).is_ok());
        assert!(b.try_take(1, later).is_err());
    }

    #[test]
    fn a_refused_frame_costs_nothing() {
        let limits = crate::config::Limits {
            rate_burst_frames: 10,
            rate_frames_per_sec: 1,
            rate_burst_bytes: 100,
            rate_bytes_per_sec: 1,
            ..crate::config::Limits::default()
        };
        let t0 = Instant::now();
        let mut budget = ConnectionBudget::new(&limits, t0);
        assert!(budget.admit(101, t0).is_ok(), "capped at capacity");
        assert!(budget.admit(50, t0).is_err());
        // The frame bucket was not charged for the refused frame: 9 left.
        for _ in 0..9 {
            assert!(budget.admit(0, t0).is_ok());
        }
        assert!(budget.admit(0, t0).is_err());
    }
}
