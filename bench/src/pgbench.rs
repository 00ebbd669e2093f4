//! Baselines: raw PostgreSQL doing the same work, measured by pgbench on the same cluster in the
//! same run, so the ratios hold however noisy the machine is.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::stats::Summary;

/// A scratch database on the benchmarked cluster, and pgbench pointed at it.
pub struct Pgbench {
    program: PathBuf,
    host: String,
    port: u16,
    user: String,
    database: String,
    work_dir: PathBuf,
}

/// Event rows shaped like the log's: the same columns, types, indexes and about the same size.
const RAW_EVENTS: &str = "
CREATE TABLE IF NOT EXISTS raw_events (
    position       bigserial PRIMARY KEY,
    event_id       uuid NOT NULL UNIQUE,
    stream_id      text NOT NULL,
    stream_version bigint NOT NULL,
    event_type     text NOT NULL,
    schema_version integer NOT NULL,
    data           jsonb NOT NULL,
    metadata       jsonb NOT NULL,
    recorded_at    timestamptz NOT NULL,
    prev_hash      bytea NOT NULL,
    hash           bytea NOT NULL,
    UNIQUE (stream_id, stream_version)
)";

/// The values of one event row, as pgbench script SQL (`:a`, `:b` are random accounts).
const ROW: &str = "gen_random_uuid(), 'transfer:' || gen_random_uuid(), 1, 'TransferPosted', 1, \
    jsonb_build_object('id', 'w1-' || gen_random_uuid(), 'metadata', '{}'::jsonb, 'postings', \
      jsonb_build_array(jsonb_build_object('debit', 'acc-' || lpad(:a::text, 5, '0'), \
                                           'credit', 'acc-' || lpad(:b::text, 5, '0'), 'amount', 100))), \
    jsonb_build_object('request_id', gen_random_uuid(), 'correlation_id', gen_random_uuid()), \
    clock_timestamp(), sha256(random()::text::bytea), sha256(random()::text::bytea)";

const COLUMNS: &str =
    "event_id, stream_id, stream_version, event_type, schema_version, data, metadata, recorded_at, prev_hash, hash";

/// The baseline transactions, each inserting event-shaped rows.
pub enum Script {
    /// One event row per transaction: what every client committing on its own costs.
    OneRow,
    /// The same, serialized by a transaction-level advisory lock: the naive gap-free writer.
    OneRowSerialized,
    /// 100 rows per INSERT statement and transaction.
    HundredRows,
}

impl Script {
    fn text(&self) -> String {
        let vars = "\\set a random(0, 9999)\n\\set b random(0, 9999)\n";
        match self {
            Self::OneRow => format!("{vars}INSERT INTO raw_events ({COLUMNS}) VALUES ({ROW});\n"),
            Self::OneRowSerialized => format!(
                "{vars}BEGIN;\nSELECT pg_advisory_xact_lock(1);\nINSERT INTO raw_events ({COLUMNS}) VALUES ({ROW});\nEND;\n"
            ),
            Self::HundredRows => {
                format!("{vars}INSERT INTO raw_events ({COLUMNS}) SELECT {ROW} FROM generate_series(1, 100);\n")
            }
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::OneRow => "insert-one",
            Self::OneRowSerialized => "insert-one-serialized",
            Self::HundredRows => "insert-hundred",
        }
    }
}

impl Pgbench {
    /// Creates the scratch database `partida_raw` with the raw event table and pgbench's own
    /// tables (for select-only).
    pub async fn prepare(program: PathBuf, admin_url: &str, work_dir: &Path) -> anyhow::Result<Self> {
        let options: sqlx::postgres::PgConnectOptions = admin_url.parse()?;
        let admin = sqlx::PgPool::connect(admin_url).await?;
        sqlx::query("DROP DATABASE IF EXISTS partida_raw")
            .execute(&admin)
            .await?;
        sqlx::query("CREATE DATABASE partida_raw").execute(&admin).await?;
        admin.close().await;
        let raw = sqlx::PgPool::connect_with(options.clone().database("partida_raw")).await?;
        sqlx::query(RAW_EVENTS).execute(&raw).await?;
        raw.close().await;
        std::fs::create_dir_all(work_dir)?;
        let pgbench = Self {
            program,
            host: options.get_host().to_owned(),
            port: options.get_port(),
            user: options.get_username().to_owned(),
            database: "partida_raw".into(),
            work_dir: work_dir.to_owned(),
        };
        pgbench.run(&["-i", "-q", "-s", "10"], "pgbench -i")?;
        Ok(pgbench)
    }

    pub fn script(&self, script: &Script, clients: usize, seconds: u64) -> anyhow::Result<Summary> {
        let file = self.work_dir.join(format!("{}.sql", script.name()));
        std::fs::write(&file, script.text())?;
        let file = file.to_string_lossy().into_owned();
        self.measure(&["-n", "-f", &file], script.name(), clients, seconds)
    }

    /// pgbench's built-in select-only transaction (one primary-key lookup).
    pub fn select_only(&self, clients: usize, seconds: u64) -> anyhow::Result<Summary> {
        self.measure(&["-S"], "select-only", clients, seconds)
    }

    fn measure(&self, args: &[&str], name: &str, clients: usize, seconds: u64) -> anyhow::Result<Summary> {
        let prefix = self.work_dir.join(format!("log-{name}-{clients}"));
        for entry in std::fs::read_dir(&self.work_dir)? {
            let path = entry?.path();
            if path.to_string_lossy().starts_with(prefix.to_string_lossy().as_ref()) {
                std::fs::remove_file(path)?;
            }
        }
        let (clients_arg, threads, time) = (
            clients.to_string(),
            clients.clamp(1, 2).to_string(),
            seconds.to_string(),
        );
        let prefix_arg = prefix.to_string_lossy().into_owned();
        let mut full = args.to_vec();
        full.extend([
            "-c",
            &clients_arg,
            "-j",
            &threads,
            "-T",
            &time,
            "-l",
            "--log-prefix",
            &prefix_arg,
        ]);
        // pgbench connects its clients, then runs for `seconds`: the CPU is read over all but
        // its first and last half second.
        let cpu = crate::cpu::window(
            Duration::from_millis(500),
            Duration::from_secs(seconds).saturating_sub(Duration::from_secs(1)),
        );
        let output = self.run(&full, name);
        let cpu = cpu.join().ok().flatten();
        let output = output?;
        let field = |label: &str| -> Option<f64> {
            output
                .lines()
                .find_map(|line| line.trim().strip_prefix(label))
                .and_then(|rest| {
                    rest.split_whitespace()
                        .next()
                        .and_then(|n| n.trim_end_matches('%').parse().ok())
                })
        };
        let count = field("number of transactions actually processed:").context("pgbench printed no count")? as u64;
        let failed = field("number of failed transactions:").unwrap_or(0.0) as u64;
        let tps = field("tps =").context("pgbench printed no tps")?;
        let latencies = self.logged_latencies(&prefix)?;
        Ok(Summary::from_parts(count, failed, count as f64 / tps.max(1e-9), latencies).with_cpu(cpu))
    }

    /// pgbench -l writes one line per transaction: client, transaction, latency (µs), ...
    fn logged_latencies(&self, prefix: &Path) -> anyhow::Result<Vec<u32>> {
        let mut latencies = Vec::new();
        let prefix = prefix.to_string_lossy();
        for entry in std::fs::read_dir(&self.work_dir)? {
            let path = entry?.path();
            if !path.to_string_lossy().starts_with(prefix.as_ref()) {
                continue;
            }
            for line in std::fs::read_to_string(&path)?.lines() {
                if let Some(micros) = line.split_whitespace().nth(2).and_then(|v| v.parse().ok()) {
                    latencies.push(micros);
                }
            }
        }
        Ok(latencies)
    }

    fn run(&self, args: &[&str], what: &str) -> anyhow::Result<String> {
        let output = Command::new(&self.program)
            .args(["-h", &self.host, "-p", &self.port.to_string(), "-U", &self.user])
            .args(args)
            .arg(&self.database)
            .current_dir(&self.work_dir)
            .output()
            .with_context(|| format!("running {}", self.program.display()))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            bail!("{what} failed: {}{}", String::from_utf8_lossy(&output.stderr), stdout);
        }
        Ok(stdout)
    }
}
