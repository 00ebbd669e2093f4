//! Throughput and latency percentiles of one measured run.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cpu::CpuUse;

/// What one run measured: every request's latency, exactly (no histogram buckets).
#[derive(Debug, Default)]
pub struct Sample {
    pub latencies_us: Vec<u32>,
    pub errors: u64,
    pub elapsed: Duration,
    /// The first error seen, to say what went wrong.
    pub first_error: Option<String>,
    /// Operations that succeeded without a latency of their own (W3 measures the lag of a
    /// sample of its writes): counted in the rate, not in the percentiles.
    pub unmeasured: u64,
    /// Where the machine's CPU went over the measured time.
    pub cpu: Option<CpuUse>,
}

impl Sample {
    pub fn merge(&mut self, other: Sample) {
        self.latencies_us.extend(other.latencies_us);
        self.errors += other.errors;
        self.unmeasured += other.unmeasured;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.cpu = self.cpu.take().or(other.cpu);
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// Successful operations (requests, or transactions for pgbench).
    pub count: u64,
    pub errors: u64,
    pub seconds: f64,
    /// Operations per second.
    pub rate: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Where the machine's CPU went meanwhile (Linux only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<CpuUse>,
}

impl Summary {
    pub fn of(mut sample: Sample) -> Self {
        sample.latencies_us.sort_unstable();
        let n = sample.latencies_us.len();
        let at = |q: f64| -> f64 {
            if n == 0 {
                return 0.0;
            }
            let index = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
            f64::from(sample.latencies_us[index]) / 1_000.0
        };
        let seconds = sample.elapsed.as_secs_f64().max(1e-9);
        let count = (n as u64).saturating_sub(sample.errors) + sample.unmeasured;
        Self {
            count,
            errors: sample.errors,
            seconds,
            rate: count as f64 / seconds,
            p50_ms: at(0.50),
            p95_ms: at(0.95),
            p99_ms: at(0.99),
            max_ms: at(1.0),
            first_error: sample.first_error,
            cpu: sample.cpu,
        }
    }

    /// For results whose latencies were measured elsewhere (pgbench logs them per transaction).
    pub fn from_parts(count: u64, errors: u64, seconds: f64, latencies_us: Vec<u32>) -> Self {
        let mut summary = Self::of(Sample {
            latencies_us,
            errors: 0,
            elapsed: Duration::from_secs_f64(seconds),
            ..Sample::default()
        });
        summary.count = count;
        summary.errors = errors;
        summary.rate = count as f64 / seconds.max(1e-9);
        summary
    }

    pub fn with_cpu(mut self, cpu: Option<CpuUse>) -> Self {
        self.cpu = cpu;
        self
    }

    /// Scales the rate, e.g. transfers per batch request, rows per multi-row insert.
    pub fn times(mut self, per_operation: f64) -> Self {
        self.rate *= per_operation;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let summary = Summary::of(Sample {
            latencies_us: (1..=100).rev().map(|ms| ms * 1_000).collect(),
            errors: 0,
            elapsed: Duration::from_secs(2),
            ..Sample::default()
        });
        assert_eq!(
            (summary.p50_ms, summary.p95_ms, summary.p99_ms, summary.max_ms),
            (50.0, 95.0, 99.0, 100.0)
        );
        assert_eq!(summary.rate, 50.0);
    }
}
