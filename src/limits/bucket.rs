//! A token bucket: the arithmetic of an allowance (flood control,
//! `limits.rs`), pure, so that it is tested without waiting.
//!
//! Not here: who draws on which bucket, and how they share it (`limits.rs`).

use std::time::{Duration, Instant};

/// A token bucket: the pace a user may send at (flood control).
///
/// It holds up to `burst` tokens and gains `per_second` of them each second;
/// every line takes one. A person typing never empties it, a pasted block of
/// up to `burst` lines goes through at once, and a program sending in a loop
/// is held to `per_second` lines a second. Pure arithmetic on the instants
/// it is given, so it is tested without waiting.
pub struct TokenBucket {
    pub per_second: f64,
    pub burst: f64,
    /// Below zero when lines were let through on credit: the debt is the wait.
    pub tokens: f64,
    pub last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(per_second: f64, burst: f64, now: Instant) -> TokenBucket {
        TokenBucket { per_second, burst, tokens: burst, last: now }
    }

    /// An empty bucket, for a share: `fair_take` (`limits.rs`) sets its rate
    /// and burst.
    pub fn empty(now: Instant) -> TokenBucket {
        TokenBucket::new(0.0, 0.0, now)
    }

    /// Takes `tokens` (one per line, a fraction for part of a line's worth);
    /// returns how long to wait before going on (zero while tokens remain).
    pub fn take(&mut self, tokens: f64, now: Instant) -> Duration {
        self.refill(now);
        self.tokens -= tokens;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.per_second)
        }
    }

    /// [`take`](Self::take) for a bucket several draw on: its debt is kept
    /// within one burst, so that it is spent for no longer than a burst
    /// takes to refill once a flood stops.
    pub fn take_within_burst(&mut self, tokens: f64, now: Instant) -> Duration {
        self.take(tokens, now);
        self.tokens = self.tokens.max(-self.burst);
        Duration::from_secs_f64((-self.tokens).max(0.0) / self.per_second)
    }

    /// Whether the bucket has refilled completely by `now`: such a bucket
    /// behaves exactly like a new one, so it can be forgotten.
    pub fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.burst
    }

    /// Adds what `now` brings since the last call; returns the tokens.
    pub fn refill(&mut self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_lets_a_burst_through_at_once() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(20.0, 100.0, t0);
        for _ in 0..100 {
            assert_eq!(bucket.take(1.0, t0), Duration::ZERO);
        }
        // The 101st line, at the same instant, waits one token's time: 1/20 s.
        assert_eq!(bucket.take(1.0, t0), Duration::from_millis(50));
    }

    #[test]
    fn bucket_holds_a_flood_to_the_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(20.0, 100.0, t0);
        for _ in 0..100 {
            bucket.take(1.0, t0);
        }
        // A sender that waits as told gets exactly 20 lines a second.
        let mut now = t0;
        for _ in 0..40 {
            now += bucket.take(1.0, now);
        }
        let waited = now - t0;
        assert!(
            waited >= Duration::from_millis(1999) && waited <= Duration::from_millis(2001),
            "{waited:?}"
        );
    }

    #[test]
    fn bucket_refills_with_time_but_not_past_the_burst() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(20.0, 100.0, t0);
        for _ in 0..100 {
            bucket.take(1.0, t0);
        }
        // An hour later it holds 100 tokens again, not 72,000.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..100 {
            assert_eq!(bucket.take(1.0, later), Duration::ZERO);
        }
        assert!(bucket.take(1.0, later) > Duration::ZERO);
    }
}
