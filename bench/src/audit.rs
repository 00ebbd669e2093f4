//! W6: offline audit verification. The log is exported through query-api to a file, then
//! `partida-audit verify --export` checks it (chain, Merkle tree, replay through the domain,
//! double entry); `sha256sum` of the same file is the raw-hashing baseline.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

/// Timed runs of the verifier and of the baseline.
const RUNS: usize = 3;

pub struct AuditResult {
    pub events: i64,
    pub bytes: u64,
    pub export: Duration,
    pub verify: Duration,
    pub sha256: Duration,
}

pub async fn measure(audit: &Path, api: &crate::api::Api, dir: &Path, keep: bool) -> anyhow::Result<AuditResult> {
    tokio::fs::create_dir_all(dir).await?;
    let path = dir.join("export.ndjson");
    let started = Instant::now();
    let response = api
        .client()
        .get(format!("{}/v1/audit/export", api.query_url().trim_end_matches('/')))
        .send()
        .await?
        .error_for_status()?;
    let mut file = tokio::fs::File::create(&path)
        .await
        .with_context(|| format!("creating {}", path.display()))?;
    let mut body = response.bytes_stream();
    let mut bytes = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        bytes += chunk.len() as u64;
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    let export = started.elapsed();

    // Each timed RUNS times, the median kept: a single run on this machine is now and then a
    // third slower (the kernel compacting memory for huge pages after the other workloads).
    let mut verify = Vec::new();
    let mut events = 0;
    for _ in 0..RUNS {
        let started = Instant::now();
        let output = Command::new(audit)
            .args(["verify", "--quiet", "--json", "--export"])
            .arg(&path)
            .output()
            .with_context(|| format!("running {}", audit.display()))?;
        verify.push(started.elapsed());
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
        if !output.status.success() || report["ok"] != true {
            bail!("partida-audit verify failed ({}): {report}", output.status);
        }
        events = report["events"].as_i64().unwrap_or(0);
    }
    let mut sha256 = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let status = Command::new("sha256sum")
            .arg(&path)
            .stdout(std::process::Stdio::null())
            .status()
            .context("running sha256sum")?;
        if !status.success() {
            bail!("sha256sum failed: {status}");
        }
        sha256.push(started.elapsed());
    }
    let (verify, sha256) = (median(verify), median(sha256));
    if !keep {
        let _ = std::fs::remove_file(&path);
    }
    Ok(AuditResult {
        events,
        bytes,
        export,
        verify,
        sha256,
    })
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs.get(runs.len() / 2).copied().unwrap_or_default()
}
