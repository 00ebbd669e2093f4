//! Load generation: closed loops (N clients, each sending its next request when the previous one
//! is answered) and an open loop (requests started at a fixed rate, whatever the answers do).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::stats::Sample;

/// One request: `Ok` if it succeeded, `Err(reason)` otherwise.
pub type Outcome = Result<(), String>;

/// Runs `clients` closed loops for `warmup` (not measured), then for `duration` (measured).
pub async fn closed_loop<F, Fut>(clients: usize, warmup: Duration, duration: Duration, request: F) -> Sample
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send,
{
    let request = Arc::new(request);
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let mut tasks = Vec::with_capacity(clients);
    for client in 0..clients {
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let mut sample = Sample::default();
            let mut seq = 0u64;
            loop {
                let started = Instant::now();
                if started >= end {
                    break;
                }
                let outcome = request(client, seq).await;
                seq += 1;
                if started < measure_from {
                    continue;
                }
                sample.latencies_us.push(micros(started.elapsed()));
                if let Err(reason) = outcome {
                    sample.errors += 1;
                    sample.first_error.get_or_insert(reason);
                }
            }
            sample
        }));
    }
    let mut total = Sample::default();
    for task in tasks {
        if let Ok(sample) = task.await {
            total.merge(sample);
        }
    }
    total.elapsed = Instant::now()
        .saturating_duration_since(measure_from)
        .min(duration + Duration::from_secs(60));
    total
}

/// Starts `rate` requests per second for `duration`; each request reports its own latency (for
/// W3, the time from the write's answer to the read that sees it), or `None` when it was not
/// measured.
pub async fn open_loop<F, Fut>(rate: f64, duration: Duration, request: F) -> Sample
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<Duration>, String>> + Send + 'static,
{
    let request = Arc::new(request);
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let start = Instant::now();
    let mut tasks = Vec::new();
    let mut seq = 0u64;
    while start.elapsed() < duration {
        ticker.tick().await;
        let request = request.clone();
        tasks.push(tokio::spawn(async move { request(seq).await }));
        seq += 1;
    }
    let elapsed = start.elapsed();
    let mut sample = Sample {
        elapsed,
        ..Sample::default()
    };
    for task in tasks {
        match task.await {
            Ok(Ok(Some(latency))) => sample.latencies_us.push(micros(latency)),
            Ok(Ok(None)) => sample.unmeasured += 1,
            Ok(Err(reason)) => {
                sample.errors += 1;
                sample.latencies_us.push(u32::MAX);
                sample.first_error.get_or_insert(reason);
            }
            Err(join) => {
                sample.errors += 1;
                sample.first_error.get_or_insert(join.to_string());
            }
        }
    }
    sample
}

fn micros(duration: Duration) -> u32 {
    u32::try_from(duration.as_micros()).unwrap_or(u32::MAX)
}

/// A tiny deterministic generator for picking accounts: fast, no dependency, reproducible.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }

    /// Two different numbers below `n`.
    pub fn pair(&mut self, n: u64) -> (u64, u64) {
        let a = self.below(n);
        let b = self.below(n - 1);
        (a, if b >= a { b + 1 } else { b })
    }
}
