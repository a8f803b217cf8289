//! Rate limiting: a token bucket, and the budget of one connection with
//! its refusal policy, pure over a caller-given clock so their behaviour is
//! tested without sleeping.
//!
//! A connection's frames (requests and WebSocket pings/pongs alike) are
//! counted before they are decoded. A refused frame is answered only while
//! the client seems to listen (the first [`ANSWERED_REFUSALS`] since its
//! last admitted frame); each refusal costs a strike, strikes come back at
//! [`STRIKES_PER_SEC`], and a client out of strikes is closed.

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

    /// A full bucket of `per_hour` tokens refilled evenly over an hour.
    pub fn per_hour(per_hour: u64, now: Instant) -> Self {
        TokenBucket {
            capacity: per_hour as f64,
            rate_per_sec: per_hour as f64 / 3600.0,
            tokens: per_hour as f64,
            updated: now,
        }
    }

    /// Returns `n` tokens taken for work that turned out free (up to the
    /// capacity).
    pub fn give_back(&mut self, n: u64) {
        self.tokens = (self.tokens + n as f64).min(self.capacity);
    }

    /// Whether the bucket would be full at `now` (then it is as good as new
    /// and need not be remembered).
    pub fn is_full(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens + elapsed * self.rate_per_sec >= self.capacity
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

/// Refused frames answered since the last admitted one; later ones in the
/// same run are dropped unanswered.
pub const ANSWERED_REFUSALS: u32 = 4;
/// Refusals a connection may accumulate before it is closed.
pub const MAX_STRIKES: u64 = 32;
/// Strikes forgiven per second.
pub const STRIKES_PER_SEC: u64 = 1;

/// What to do with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limits: handle it.
    Admit,
    /// Over the limits: drop it, answering `RateLimited` if `answer`.
    Refuse {
        /// When the frame would have been admitted.
        wait: Duration,
        /// Whether to tell the client (it may be listening).
        answer: bool,
    },
    /// Over the limits too often: close the connection.
    Close {
        /// When a frame would have been admitted.
        wait: Duration,
    },
}

/// The buckets of one connection (frames and bytes) and its strikes.
#[derive(Debug, Clone)]
pub struct ConnectionBudget {
    frames: TokenBucket,
    bytes: TokenBucket,
    strikes: TokenBucket,
    answered: u32,
}

impl ConnectionBudget {
    /// Full buckets from the configured limits.
    pub fn new(limits: &crate::config::Limits, now: Instant) -> Self {
        ConnectionBudget {
            frames: TokenBucket::new(u64::from(limits.rate_burst_frames), u64::from(limits.rate_frames_per_sec), now),
            bytes: TokenBucket::new(limits.rate_burst_bytes, limits.rate_bytes_per_sec, now),
            strikes: TokenBucket::new(MAX_STRIKES, STRIKES_PER_SEC, now),
            answered: 0,
        }
    }

    /// Judges one received frame of `len` bytes (a request, a ping or a
    /// pong), before it is decoded.
    pub fn judge(&mut self, len: usize, now: Instant) -> Verdict {
        match self.admit(len, now) {
            Ok(()) => {
                self.answered = 0;
                Verdict::Admit
            }
            Err(wait) => {
                if self.strikes.try_take(1, now).is_err() {
                    return Verdict::Close { wait };
                }
                let answer = self.answered < ANSWERED_REFUSALS;
                self.answered = self.answered.saturating_add(1);
                Verdict::Refuse { wait, answer }
            }
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

    fn tight() -> crate::config::Limits {
        crate::config::Limits { rate_burst_frames: 2, rate_frames_per_sec: 1, ..crate::config::Limits::default() }
    }

    #[test]
    fn a_flood_is_answered_a_few_times_then_ignored_then_closed() {
        let t0 = Instant::now();
        let mut budget = ConnectionBudget::new(&tight(), t0);
        assert_eq!(budget.judge(10, t0), Verdict::Admit);
        assert_eq!(budget.judge(10, t0), Verdict::Admit);
        let mut answered = 0;
        let mut silent = 0;
        let mut closed_at = None;
        for i in 0..1000 {
            match budget.judge(10, t0) {
                Verdict::Refuse { answer: true, .. } => answered += 1,
                Verdict::Refuse { answer: false, .. } => silent += 1,
                Verdict::Close { .. } => {
                    closed_at = Some(i);
                    break;
                }
                Verdict::Admit => panic!("the bucket is empty"),
            }
        }
        assert_eq!(answered, ANSWERED_REFUSALS);
        assert_eq!(answered + silent, MAX_STRIKES as u32);
        assert_eq!(closed_at, Some(MAX_STRIKES as usize));
    }

    #[test]
    fn a_client_that_waits_as_told_is_answered_every_time_and_never_closed() {
        let t0 = Instant::now();
        let mut budget = ConnectionBudget::new(&tight(), t0);
        let mut now = t0;
        // Ten minutes of sending as fast as allowed: each refused frame is
        // sent again once the announced wait is over.
        let mut admitted = 0;
        while now < t0 + Duration::from_secs(600) {
            match budget.judge(10, now) {
                Verdict::Admit => admitted += 1,
                Verdict::Refuse { wait, answer } => {
                    assert!(answer, "a listening client is answered");
                    now += wait + Duration::from_millis(1);
                }
                Verdict::Close { .. } => panic!("an obedient client is never closed"),
            }
        }
        assert!(admitted >= 590, "{admitted}");
    }

    #[test]
    fn keep_alives_count_like_frames() {
        let t0 = Instant::now();
        let mut budget = ConnectionBudget::new(&tight(), t0);
        // Pings (empty frames) take from the same frame bucket.
        assert_eq!(budget.judge(0, t0), Verdict::Admit);
        assert_eq!(budget.judge(0, t0), Verdict::Admit);
        assert!(matches!(budget.judge(0, t0), Verdict::Refuse { .. }));
    }
}
