//! The peer baseline: bench/peer (cqrs-es + postgres-es) run as a subprocess against its own
//! database on the same cluster.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use crate::stats::Summary;

pub async fn run(
    program: &Path,
    admin_url: &str,
    clients: usize,
    seconds: u64,
    accounts: u64,
) -> anyhow::Result<Summary> {
    let admin = sqlx::PgPool::connect(admin_url).await?;
    sqlx::query("DROP DATABASE IF EXISTS partida_peer")
        .execute(&admin)
        .await?;
    sqlx::query("CREATE DATABASE partida_peer").execute(&admin).await?;
    admin.close().await;
    let options: sqlx::postgres::PgConnectOptions = admin_url.parse()?;
    let url = format!(
        "postgres://{}@{}:{}/partida_peer",
        options.get_username(),
        options.get_host(),
        options.get_port()
    );
    let output = Command::new(program)
        .args([url, clients.to_string(), seconds.to_string(), accounts.to_string()])
        .output()
        .with_context(|| format!("running {}", program.display()))?;
    if !output.status.success() {
        bail!("the peer benchmark failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().context("the peer benchmark printed nothing")?;
    Ok(serde_json::from_str(line)?)
}
