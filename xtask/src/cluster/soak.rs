//! `cargo xtask soak --minutes N`: steady mixed load on the multi-instance topology (release
//! builds) for N minutes, sampled every [`SAMPLE`]: transfers acknowledged, reads answered and
//! failed, the projection's lag, and every service's resident memory. It fails when a read fails,
//! a transfer is not acknowledged, a service's memory keeps growing after the warm-up, or the lag
//! does not drain once the load stops; then `partida-audit verify` checks the whole log. The
//! report goes to target/soak/report.md (docs/SOAK.md keeps the latest run worth keeping).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;

use super::drills::{open_accounts, sign_and_verify, users};
use super::load::{self, Readers, Writers};
use super::{Ports, Topology};
use crate::{shutdown, workspace};

const SAMPLE: Duration = Duration::from_secs(10);
/// Memory after the warm-up (the first fifth of the run) may grow by this factor, plus
/// [`MEMORY_SLACK_KB`], by the end: more is a leak, or a cache without a bound.
const MEMORY_GROWTH: f64 = 1.25;
const MEMORY_SLACK_KB: u64 = 16 * 1024;
/// How long the projection may take to catch up once the load stops.
const DRAIN: Duration = Duration::from_secs(60);

#[derive(Args)]
pub struct SoakArgs {
    /// How long the load runs.
    #[arg(long, default_value_t = 10)]
    minutes: u64,
    /// Writer threads (each posts one transfer at a time through nginx, retrying with its id).
    #[arg(long, default_value_t = 4)]
    writers: usize,
    /// Reader threads (accounts, entries, transfers and the trial balance through nginx).
    #[arg(long, default_value_t = 4)]
    readers: usize,
}

struct Sample {
    at: Duration,
    transfers: usize,
    reads: usize,
    failed_reads: usize,
    lag: i64,
    /// Resident memory of each service, in kB, in the supervisor's order.
    rss_kb: Vec<(String, u64)>,
}

pub fn run(args: &SoakArgs) -> Result<()> {
    shutdown::install()?;
    let duration = Duration::from_secs(args.minutes * 60);
    let topology = Topology::start(true, Ports::free()?)?;
    open_accounts(&topology)?;
    let users = users();
    let paths: Vec<String> = vec![
        format!("/v1/accounts/{}", users[0]),
        format!("/v1/accounts/{}/entries?limit=20", users[1]),
        "/v1/transfers?limit=20&order=desc".into(),
        "/v1/trial-balance".into(),
    ];
    note!(
        "soak: {} writers and {} readers for {} min, sampled every {} s",
        args.writers,
        args.readers,
        args.minutes,
        SAMPLE.as_secs()
    );
    let started = Instant::now();
    let writers = Writers::start("soak", &[topology.command_lb], &topology.token, args.writers, &users);
    let readers = Readers::start(topology.query_lb, &topology.token, args.readers, &paths);
    let mut samples = Vec::new();
    let mut next = started + SAMPLE;
    while started.elapsed() < duration {
        if shutdown::requested() {
            bail!("interrupted");
        }
        if Instant::now() < next {
            std::thread::sleep(Duration::from_millis(100).min(next - Instant::now()));
            continue;
        }
        next += SAMPLE;
        let sample = Sample {
            at: started.elapsed(),
            transfers: writers.acknowledged(),
            reads: readers.succeeded(),
            failed_reads: readers.failed(),
            lag: lag(&topology)?,
            rss_kb: topology
                .supervisor
                .names()
                .into_iter()
                .filter_map(|name| {
                    let pid = topology.supervisor.pid(&name)?;
                    Some((name, resident_kb(pid)?))
                })
                .collect(),
        };
        note!(
            "soak: {:>4} s: {} transfers, {} reads ({} failed), lag {}",
            sample.at.as_secs(),
            sample.transfers,
            sample.reads,
            sample.failed_reads,
            sample.lag
        );
        samples.push(sample);
    }
    let acks = writers.stop().context("a writer failed")?;
    let reads = readers.stop()?;
    let elapsed = started.elapsed();

    let drained = drain(&topology)?;
    let audit = sign_and_verify(&topology)?;

    let mut problems = Vec::new();
    if reads.failed > 0 {
        problems.push(format!("{} reads failed: {:?}", reads.failed, reads.errors));
    }
    problems.extend(memory_growth(&samples));
    let report = report(args, elapsed, acks.len(), &reads, &samples, drained, &audit, &problems);
    let dir = workspace::target_dir()?.join("soak");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("report.md");
    std::fs::write(&path, &report).with_context(|| format!("writing {}", path.display()))?;
    println!("{report}");
    note!("soak: report written to {}", path.display());
    if !problems.is_empty() {
        bail!("the soak failed:\n{}", problems.join("\n"));
    }
    Ok(())
}

/// The projection's lag through query-api (`GET /v1/projections`).
fn lag(topology: &Topology) -> Result<i64> {
    let projections = load::json_ok(topology.read("/v1/projections")?, "GET /v1/projections")?;
    Ok(projections["projections"][0]["lag"].as_i64().unwrap_or_default())
}

/// Waits until the projection has caught up with the log; how long it took.
fn drain(topology: &Topology) -> Result<Duration> {
    let started = Instant::now();
    loop {
        let lag = lag(topology)?;
        if lag == 0 {
            return Ok(started.elapsed());
        }
        if started.elapsed() > DRAIN {
            bail!(
                "the projection still lags by {lag} events {} s after the load stopped",
                DRAIN.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// VmRSS from /proc, in kB.
fn resident_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Services whose memory at the end exceeds what they held after the warm-up by more than
/// [`MEMORY_GROWTH`] and [`MEMORY_SLACK_KB`].
fn memory_growth(samples: &[Sample]) -> Vec<String> {
    let (Some(warm), Some(last)) = (samples.get(samples.len() / 5), samples.last()) else {
        return vec!["too short to judge memory: run at least a minute".into()];
    };
    let mut problems = Vec::new();
    for (name, end) in &last.rss_kb {
        let Some((_, start)) = warm.rss_kb.iter().find(|(n, _)| n == name) else {
            continue;
        };
        let allowed = (*start as f64 * MEMORY_GROWTH) as u64 + MEMORY_SLACK_KB;
        if *end > allowed {
            problems.push(format!(
                "{name}: resident memory grew from {start} kB after the warm-up to {end} kB (at most {allowed} kB allowed)"
            ));
        }
    }
    problems
}

#[allow(clippy::too_many_arguments)]
fn report(
    args: &SoakArgs,
    elapsed: Duration,
    transfers: usize,
    reads: &load::Reads,
    samples: &[Sample],
    drained: Duration,
    audit: &str,
    problems: &[String],
) -> String {
    let secs = elapsed.as_secs_f64();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Soak: {} min, {} writers, {} readers",
        args.minutes, args.writers, args.readers
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "- transfers acknowledged: {transfers} ({:.0}/s); reads: {} ({:.0}/s), failed: {}",
        transfers as f64 / secs,
        reads.ok,
        reads.ok as f64 / secs,
        reads.failed
    );
    let max_lag = samples.iter().map(|s| s.lag).max().unwrap_or_default();
    let _ = writeln!(
        out,
        "- projection lag: at most {max_lag} events in the samples; caught up {:.1} s after the load stopped",
        drained.as_secs_f64()
    );
    let _ = writeln!(out, "- {audit}");
    let _ = writeln!(
        out,
        "- verdict: {}",
        if problems.is_empty() {
            "passed".to_owned()
        } else {
            format!("FAILED: {}", problems.join("; "))
        }
    );
    let _ = writeln!(out);
    let names: Vec<&str> = samples
        .first()
        .map(|s| s.rss_kb.iter().map(|(n, _)| n.as_str()).collect())
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "| t (s) | transfers | reads | lag | {} |",
        names
            .iter()
            .map(|n| format!("{n} RSS (MB)"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(out, "|{}", "---|".repeat(4 + names.len()));
    // About a dozen rows whatever the length of the run.
    let every = (samples.len() / 12).max(1);
    for (i, sample) in samples.iter().enumerate() {
        if i % every != 0 && i + 1 != samples.len() {
            continue;
        }
        let rss: Vec<String> = sample
            .rss_kb
            .iter()
            .map(|(_, kb)| format!("{:.1}", *kb as f64 / 1024.0))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            sample.at.as_secs(),
            sample.transfers,
            sample.reads,
            sample.lag,
            rss.join(" | ")
        );
    }
    out
}
