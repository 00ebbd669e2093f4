//! W4: replaying the log into fresh read tables (`projector rebuild`), against a raw COPY of the
//! rows that replay produces.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::TryStreamExt;
use sqlx::PgPool;
use sqlx::postgres::PgPoolCopyExt;

const TABLES: [&str; 5] = ["assets", "accounts", "entries", "transfers", "totals"];

pub struct RebuildResult {
    pub events: i64,
    pub rebuild: Duration,
    pub rows: u64,
    pub copy: Duration,
}

pub async fn measure(projector: &Path, database_url: &str, database: &PgPool) -> anyhow::Result<RebuildResult> {
    let events: i64 = sqlx::query_scalar("SELECT position FROM event_head")
        .fetch_one(database)
        .await?;
    let started = Instant::now();
    let status = Command::new(projector)
        .args(["rebuild", "ledger"])
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .status()
        .with_context(|| format!("running {} rebuild", projector.display()))?;
    if !status.success() {
        bail!("projector rebuild failed: {status}");
    }
    let rebuild = started.elapsed();
    let schema = crate::workloads::live_schema(database).await?;
    let (rows, copy) = copy_read_rows(database, &schema).await?;
    Ok(RebuildResult {
        events,
        rebuild,
        rows,
        copy,
    })
}

/// COPYs every row of the read tables of `schema` into empty copies (indexes included); only the
/// COPY FROM is timed.
async fn copy_read_rows(database: &PgPool, schema: &str) -> anyhow::Result<(u64, Duration)> {
    sqlx::query("DROP SCHEMA IF EXISTS bench_copy CASCADE")
        .execute(database)
        .await?;
    sqlx::query("CREATE SCHEMA bench_copy").execute(database).await?;
    let mut dumps = Vec::new();
    for table in TABLES {
        sqlx::query(&format!(
            "CREATE TABLE bench_copy.{table} (LIKE {schema}.{table} INCLUDING ALL)"
        ))
        .execute(database)
        .await?;
        let chunks: Vec<_> = database
            .copy_out_raw(&format!("COPY {schema}.{table} TO STDOUT (FORMAT binary)"))
            .await?
            .try_collect()
            .await?;
        dumps.push((table, chunks));
    }
    let started = Instant::now();
    let mut rows = 0;
    for (table, chunks) in dumps {
        let mut copy = database
            .copy_in_raw(&format!("COPY bench_copy.{table} FROM STDIN (FORMAT binary)"))
            .await?;
        for chunk in chunks {
            copy.send(chunk).await?;
        }
        rows += copy.finish().await?;
    }
    let elapsed = started.elapsed();
    sqlx::query("DROP SCHEMA bench_copy CASCADE").execute(database).await?;
    Ok((rows, elapsed))
}
