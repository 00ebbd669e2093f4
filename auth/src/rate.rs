//! Per-credential rate limits: a token bucket for each credential, in each API instance. A caller
//! over its rate gets `429 rate_limited` with `Retry-After`, and nothing it sent was done.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Beyond this many tracked credentials the table starts over (each bucket then starts full).
const TRACKED_LIMIT: usize = 10_000;

#[derive(Clone)]
pub struct RateLimiter {
    /// Requests per second a credential may sustain; `None`: no limit.
    rate: Option<f64>,
    burst: f64,
    buckets: Arc<Mutex<HashMap<String, Bucket>>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// `per_second` requests sustained (0: unlimited) with bursts of `burst`.
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            rate: (per_second > 0).then_some(f64::from(per_second)),
            burst: f64::from(burst.max(1)),
            buckets: Arc::default(),
        }
    }

    /// Takes one request from `credential`'s bucket; `Err(wait)` when it is empty.
    pub fn check(&self, credential: &str) -> Result<(), Duration> {
        self.check_at(credential, Instant::now())
    }

    fn check_at(&self, credential: &str, now: Instant) -> Result<(), Duration> {
        let Some(rate) = self.rate else {
            return Ok(());
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= TRACKED_LIMIT && !buckets.contains_key(credential) {
            buckets.clear();
        }
        // A known credential (the common case) costs no allocation.
        let Some(bucket) = buckets.get_mut(credential) else {
            buckets.insert(
                credential.to_owned(),
                Bucket {
                    tokens: self.burst - 1.0,
                    at: now,
                },
            );
            return Ok(());
        };
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_rate_holds_per_credential() {
        let limiter = RateLimiter::new(10, 3);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at("a", start).is_ok());
        }
        let wait = limiter.check_at("a", start).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(100), "{wait:?}");
        assert!(
            limiter.check_at("b", start).is_ok(),
            "another credential has its own bucket"
        );
        assert!(limiter.check_at("a", start + Duration::from_millis(100)).is_ok());
        assert!(limiter.check_at("a", start + Duration::from_millis(100)).is_err());
    }

    #[test]
    fn zero_means_unlimited() {
        let limiter = RateLimiter::new(0, 1);
        let now = Instant::now();
        assert!((0..10_000).all(|_| limiter.check_at("a", now).is_ok()));
    }
}
