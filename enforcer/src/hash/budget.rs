//! The hashing budget: a token bucket of bytes, so an exec storm of distinct (or large) files
//! cannot keep the daemon hashing forever. A file that does not fit the budget is reported as
//! `hash unavailable: hash budget exhausted` and not hashed.

use std::time::Instant;

/// A token bucket of bytes: `rate` bytes per second, at most `burst` saved up.
#[derive(Debug)]
pub struct ByteBudget {
    rate: u64,
    burst: u64,
    tokens: u64,
    last: Instant,
}

impl ByteBudget {
    /// A full bucket at `now`.
    pub fn new(rate: u64, burst: u64, now: Instant) -> Self {
        Self {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes `bytes` from the bucket at `now`; `false` (and nothing taken) when they are not
    /// there.
    pub fn take(&mut self, bytes: u64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last);
        let earned = elapsed.as_nanos().saturating_mul(u128::from(self.rate)) / 1_000_000_000;
        if earned > 0 {
            let earned = u64::try_from(earned).unwrap_or(u64::MAX);
            self.tokens = self.tokens.saturating_add(earned).min(self.burst);
            self.last = now;
        }
        if bytes > self.tokens {
            return false;
        }
        self.tokens -= bytes;
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_bucket_refills_at_its_rate_up_to_its_burst() {
        let t0 = Instant::now();
        let mut b = ByteBudget::new(1000, 1500, t0);
        assert!(b.take(1500, t0));
        assert!(!b.take(1, t0), "empty");
        let t1 = t0 + Duration::from_millis(500);
        assert!(b.take(500, t1), "half a second earns 500 bytes");
        assert!(!b.take(1, t1));
        let t2 = t1 + Duration::from_secs(60);
        assert!(!b.take(1501, t2), "never more than the burst");
        assert!(b.take(1500, t2));
    }
}
