//! Load generation: closed loops (N clients, each sending its next request when the previous one
//! is answered) and an open loop (requests started at a fixed rate, whatever the answers do).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cpu::CpuUse;
use crate::stats::Sample;

/// One request: `Ok` if it succeeded, `Err(reason)` otherwise.
pub type Outcome = Result<(), String>;

/// Runs `clients` closed loops for `warmup` (not measured), then for `duration` (measured).
pub async fn closed_loop<F, Fut>(clients: usize, warmup: Duration, duration: Duration, request: F) -> Sample
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send,
{
    let [sample] = sliced_loop(clients, warmup, duration, duration, move |client, seq, _| {
        request(client, seq)
    })
    .await;
    sample
}

/// Runs `clients` closed loops as [`closed_loop`] does, the measured time cut into slices of
/// `slice` that take turns among `K` kinds of request (kind 0, 1, ..., K - 1, 0, ...): each
/// request is of the kind of the slice it starts in. The kinds then share every phase of the
/// machine, so their ratio is free of its drift. Returns each kind's sample over its own slices.
pub async fn sliced_loop<const K: usize, F, Fut>(
    clients: usize,
    warmup: Duration,
    duration: Duration,
    slice: Duration,
    request: F,
) -> [Sample; K]
where
    F: Fn(usize, u64, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send,
{
    let slice = slice.max(Duration::from_millis(1));
    let kind_at = move |since_measure: Duration| (since_measure.as_nanos() / slice.as_nanos()) as usize % K;
    let request = Arc::new(request);
    let cpu = crate::cpu::window(warmup, duration);
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let mut tasks = Vec::with_capacity(clients);
    for client in 0..clients {
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples: [Sample; K] = std::array::from_fn(|_| Sample::default());
            let mut seq = 0u64;
            loop {
                let started = Instant::now();
                if started >= end {
                    break;
                }
                let kind = kind_at(started.saturating_duration_since(measure_from));
                let outcome = request(client, seq, kind).await;
                seq += 1;
                if started < measure_from {
                    continue;
                }
                let sample = &mut samples[kind];
                sample.latencies_us.push(micros(started.elapsed()));
                if let Err(reason) = outcome {
                    sample.errors += 1;
                    sample.first_error.get_or_insert(reason);
                }
            }
            samples
        }));
    }
    let mut totals: [Sample; K] = std::array::from_fn(|_| Sample::default());
    for task in tasks {
        if let Ok(samples) = task.await {
            for (total, sample) in totals.iter_mut().zip(samples) {
                total.merge(sample);
            }
        }
    }
    // Each kind's time is that of its slices; the requests still answering when the measured
    // time ends count in it too, so the time they take past its end goes to the last slice.
    let measured = Instant::now()
        .saturating_duration_since(measure_from)
        .min(duration + Duration::from_secs(60));
    let (mut at, mut last) = (Duration::ZERO, 0);
    while at < duration {
        let until = (at + slice).min(duration);
        last = kind_at(at);
        totals[last].elapsed += until - at;
        at = until;
    }
    totals[last].elapsed += measured.saturating_sub(duration);
    // The kinds share the run, and so its CPU.
    let cpu = join(cpu).await;
    for total in &mut totals {
        total.cpu = cpu.clone();
    }
    totals
}

/// Starts `rate` requests per second for `warmup` (not measured), then for `duration`; each
/// request started in the measured time reports its own latency (for W3, the time from the
/// write's answer to the read that sees it), or `None` when it was not measured.
pub async fn open_loop<F, Fut>(rate: f64, warmup: Duration, duration: Duration, request: F) -> Sample
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<Duration>, String>> + Send + 'static,
{
    let request = Arc::new(request);
    let cpu = crate::cpu::window(warmup, duration);
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let start = Instant::now();
    let (measure_from, end) = (start + warmup, start + warmup + duration);
    let (mut warming, mut tasks) = (Vec::new(), Vec::new());
    let mut seq = 0u64;
    loop {
        let now = ticker.tick().await.into_std();
        if now >= end {
            break;
        }
        let request = request.clone();
        let task = tokio::spawn(async move { request(seq).await });
        let started_in = if now < measure_from { &mut warming } else { &mut tasks };
        started_in.push(task);
        seq += 1;
    }
    let elapsed = Instant::now().saturating_duration_since(measure_from);
    // The warm-up's requests end before the sample does, so none spills into the next workload.
    for task in warming {
        let _ = task.await;
    }
    let mut sample = Sample {
        elapsed,
        cpu: join(cpu).await,
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

/// The CPU read over a measured time, once it has passed (joined off the runtime's threads).
async fn join(window: std::thread::JoinHandle<Option<CpuUse>>) -> Option<CpuUse> {
    tokio::task::spawn_blocking(move || window.join().ok().flatten())
        .await
        .ok()
        .flatten()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slices_take_turns_and_each_kind_keeps_its_own_requests_and_time() {
        let slice = Duration::from_millis(25);
        let [first, second] = sliced_loop::<2, _, _>(2, Duration::ZERO, slice * 4, slice, |_, _, kind| async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            if kind == 1 {
                Err("the second kind".to_owned())
            } else {
                Ok(())
            }
        })
        .await;
        assert!(!first.latencies_us.is_empty());
        assert_eq!(first.errors, 0);
        assert!(!second.latencies_us.is_empty());
        assert_eq!(second.errors as usize, second.latencies_us.len());
        // Slices 0 and 2 are the first kind's; 1 and 3 the second's, which also takes the time
        // its last requests answer after the end.
        assert_eq!(first.elapsed, slice * 2);
        assert!(second.elapsed >= slice * 2);
    }
}
