//! `partida-bench`: runs the workloads against running services and the baselines on the same
//! PostgreSQL, then writes `report.json` and `report.md`. `cargo xtask bench` starts everything it
//! needs (a fresh cluster, release builds of the services) and runs it.

mod api;
mod audit;
mod cpu;
mod load;
mod peer;
mod pgbench;
mod rebuild;
mod report;
mod stats;
mod workloads;

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::api::Shape;
use crate::pgbench::{Pgbench, Script};
use crate::report::{Machine, Measurement, Report, Target};
use crate::workloads::Timing;

#[derive(Parser)]
// A flag given twice counts once: `cargo xtask bench --full -- --full` passes `--full` from both.
#[command(
    name = "partida-bench",
    about = "Partida's benchmark workloads and baselines",
    args_override_self = true
)]
struct Args {
    #[arg(long)]
    command_url: String,
    /// An admin's API token.
    #[arg(long, env = "PARTIDA_TOKEN", hide_env_values = true)]
    token: String,
    #[arg(long)]
    query_url: String,
    /// The services' database.
    #[arg(long)]
    database_url: String,
    /// An admin URL of the same cluster (database `postgres`), for the baselines' scratch database.
    #[arg(long)]
    admin_url: String,
    #[arg(long)]
    pgbench: PathBuf,
    /// The projector binary, for the rebuild workload.
    #[arg(long)]
    projector: PathBuf,
    /// The partida-audit binary, for the audit workload (W6).
    #[arg(long)]
    audit: PathBuf,
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Long runs (30 s per measurement, a million events for the rebuild).
    #[arg(long)]
    full: bool,
    /// The peer-library benchmark binary (bench/peer); measured beside W1 at 64 clients when given.
    #[arg(long)]
    peer: Option<PathBuf>,
    /// Only W5's reads (for profiling), after about 100,000 transfers (`--fill-seconds 6`) so that
    /// the entries pages are full; skips the other workloads.
    #[arg(long)]
    only_reads: bool,
    /// Before an `--only-...` workload: W2's batches of 8,000 for this many seconds, so that it
    /// runs on a log about as large as in a full run (`--only-reads` fills for 6 s by default).
    #[arg(long)]
    fill_seconds: Option<u64>,
    /// Only this W1 client count (for profiling one load); skips the other workloads.
    #[arg(long)]
    only_w1_clients: Option<usize>,
    /// With `--only-w1-clients`: transfers that also pay a fee to one hot account, taking turns
    /// with uniform ones (both are printed).
    #[arg(long, requires = "only_w1_clients")]
    hot: bool,
    /// Only W3's lag at this rate (transfers/s, for profiling); skips the other workloads.
    #[arg(long)]
    only_lag_rate: Option<f64>,
    /// Only W2's batches of this size (for profiling); skips the other workloads.
    #[arg(long)]
    only_batches: Option<usize>,
    /// Keep W6's export (`<out>/export.ndjson`), e.g. to profile `partida-audit verify` on it.
    #[arg(long)]
    keep_export: bool,
}

const ACCOUNTS: u64 = 10_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let timing = if args.full {
        Timing {
            warmup: Duration::from_secs(3),
            measure: Duration::from_secs(30),
        }
    } else {
        Timing {
            warmup: Duration::from_secs(1),
            measure: Duration::from_secs(5),
        }
    };
    let seconds = timing.measure.as_secs();
    let api = api::Api::new(args.command_url.clone(), args.query_url.clone(), &args.token)?;
    let database = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&args.database_url)
        .await?;
    let postgres: String = sqlx::query_scalar("SELECT version()").fetch_one(&database).await?;
    let mut report = Report {
        mode: if args.full { "full" } else { "quick" },
        machine: Machine {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            postgres: postgres.split(" on ").next().unwrap_or_default().to_owned(),
        },
        measurements: Vec::new(),
        targets: Vec::new(),
        notes: Vec::new(),
    };

    progress("opening 10,000 accounts");
    workloads::open_books(&api, ACCOUNTS).await?;
    let pgbench = Pgbench::prepare(args.pgbench.clone(), &args.admin_url, &args.out.join("pgbench")).await?;

    // W1: single transfers, the projector running.
    let mut w1 = Vec::new();
    // Before a workload alone: a log about as large as a full run's by then.
    let fill_seconds = args.fill_seconds.or(args.only_reads.then_some(6)).unwrap_or(0);
    if fill_seconds > 0 {
        progress(&format!("filling the log: batches of 8,000 for {fill_seconds} s"));
        let fill = Timing {
            warmup: Duration::ZERO,
            measure: Duration::from_secs(fill_seconds),
        };
        workloads::batches(&api, "fill", 2, 8000, ACCOUNTS, fill).await;
        workloads::settle(&database).await?;
    }
    if args.only_reads {
        workloads::vacuum_read_model(&database).await?;
        progress("W5 reads, 64 clients");
        for entries in [false, true] {
            let ours = workloads::reads(&api, entries, 64, ACCOUNTS, timing).await;
            println!("{}", serde_json::to_string(&ours)?);
        }
        return Ok(());
    }
    if let Some(clients) = args.only_w1_clients {
        progress(&format!("W1 single transfers, {clients} clients"));
        let run = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let label = format!("w1-{run}");
        if args.hot {
            let [uniform, hot] = workloads::hot_and_uniform(&api, &label, clients, ACCOUNTS, timing).await;
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({"uniform": uniform, "hot": hot}))?
            );
        } else {
            let ours = workloads::single_transfers(&api, &label, clients, Shape::Plain, ACCOUNTS, timing).await;
            println!("{}", serde_json::to_string_pretty(&ours)?);
        }
        return Ok(());
    }
    if let Some(size) = args.only_batches {
        progress(&format!("W2 batches of {size}"));
        let ours = workloads::batches(&api, &format!("w2-{size}"), 2, size, ACCOUNTS, timing).await;
        println!("{}", serde_json::to_string_pretty(&ours)?);
        return Ok(());
    }
    if let Some(rate) = args.only_lag_rate {
        progress(&format!("W3 projection lag at {rate:.0} transfers/s"));
        let lag = workloads::projection_lag(&api, rate, ACCOUNTS, timing).await;
        println!("{}", serde_json::to_string_pretty(&lag)?);
        return Ok(());
    }
    let mut hot_ratio = None;
    for clients in [1, 16, 64, 256] {
        progress(&format!("W1 single transfers, {clients} clients"));
        let ours =
            workloads::single_transfers(&api, &format!("w1-{clients}"), clients, Shape::Plain, ACCOUNTS, timing).await;
        let uniform_64 = (clients == 64).then(|| ours.clone());
        workloads::settle(&database).await?;
        let raw = pgbench.script(&Script::OneRow, clients, seconds)?;
        let serialized = pgbench.script(&Script::OneRowSerialized, clients, seconds)?;
        w1.push((clients, ours.rate, raw.rate, serialized.rate, ours.p99_ms));
        report.measurements.push(
            Measurement::new(
                "W1",
                format!("single transfers, {clients} clients"),
                "transfers/s",
                ours,
            )
            .against("pgbench: one event row per transaction", "rows/s", raw)
            .against(
                "pgbench: the same under an advisory lock (naive gap-free writer)",
                "rows/s",
                serialized,
            ),
        );
        if let Some(uniform) = uniform_64 {
            hot_ratio = Some(variants_at_64(&api, &database, &uniform, timing, &mut report).await?);
        }
    }
    let peer_rate = match &args.peer {
        Some(peer) => {
            progress("peer library (cqrs-es + postgres-es), 64 clients");
            let peer = peer::run(peer, &args.admin_url, 64, seconds, ACCOUNTS).await?;
            let rate = peer.rate;
            report.measurements.push(Measurement::new(
                "W1",
                "peer: cqrs-es + postgres-es, in-process, a withdrawal and a deposit per transfer, 64 clients",
                "transfers/s",
                peer,
            ));
            Some(rate)
        }
        None => None,
    };

    // W2: batches.
    let raw_hundred = pgbench.script(&Script::HundredRows, 8, seconds)?.times(100.0);
    let mut w2_best: f64 = 0.0;
    for size in [1_000, 8_000] {
        progress(&format!("W2 batches of {size}"));
        let ours = workloads::batches(&api, &format!("w2-{size}"), 2, size, ACCOUNTS, timing).await;
        workloads::settle(&database).await?;
        w2_best = w2_best.max(ours.rate);
        report.measurements.push(
            Measurement::new(
                "W2",
                format!("batches of {size} transfers, 2 clients"),
                "transfers/s",
                ours,
            )
            .against("pgbench: 100-row INSERTs, 8 clients", "rows/s", raw_hundred.clone()),
        );
    }

    // W3: projection lag at half of W1's best throughput.
    let best_w1 = w1.iter().map(|(_, rate, ..)| *rate).fold(0.0, f64::max);
    let rate = (best_w1 / 2.0).max(1.0);
    progress(&format!("W3 projection lag at {rate:.0} transfers/s"));
    let lag = workloads::projection_lag(&api, rate, ACCOUNTS, timing).await;
    workloads::settle(&database).await?;
    let lag_p99 = lag.p99_ms;
    report.measurements.push(Measurement::new(
        "W3",
        format!(
            "write answered → visible through query-api, at {rate:.0} transfers/s (lag of 1 write in {})",
            workloads::LAG_SAMPLE_EVERY
        ),
        "transfers/s",
        lag,
    ));

    // W5: reads.
    workloads::vacuum_read_model(&database).await?;
    progress("W5 reads, 64 clients");
    let select_only = pgbench.select_only(64, seconds)?;
    let mut w5_worst = f64::MAX;
    for (entries, name) in [(false, "GET an account"), (true, "GET an account's latest 20 entries")] {
        let ours = workloads::reads(&api, entries, 64, ACCOUNTS, timing).await;
        w5_worst = w5_worst.min(ours.rate / select_only.rate.max(1e-9));
        report.measurements.push(
            Measurement::new("W5", format!("{name}, 64 clients"), "requests/s", ours).against(
                "pgbench -S (select-only), 64 clients",
                "transactions/s",
                select_only.clone(),
            ),
        );
    }

    // W4: rebuild whatever the log holds now.
    progress("W4 rebuild");
    let rebuild = rebuild::measure(&args.projector, &args.database_url, &database).await?;
    let rebuild_rate = rebuild.events as f64 / rebuild.rebuild.as_secs_f64().max(1e-9);
    let copy_rate = rebuild.events as f64 / rebuild.copy.as_secs_f64().max(1e-9);
    report.notes.push(format!(
        "W4 replayed {} events in {:.1} s ({:.0} events/s); COPY of the {} read rows they produce took {:.1} s \
         ({:.0} events' worth per second).",
        rebuild.events,
        rebuild.rebuild.as_secs_f64(),
        rebuild_rate,
        rebuild.rows,
        rebuild.copy.as_secs_f64(),
        copy_rate
    ));
    report.measurements.push(
        Measurement::new(
            "W4",
            format!("projector rebuild of {} events", rebuild.events),
            "events/s",
            stats::Summary::from_parts(rebuild.events as u64, 0, rebuild.rebuild.as_secs_f64(), Vec::new()),
        )
        .against(
            "COPY of the same read rows",
            "events/s",
            stats::Summary::from_parts(rebuild.events as u64, 0, rebuild.copy.as_secs_f64(), Vec::new()),
        ),
    );

    // W6: verify an export of the whole log offline.
    progress("W6 audit verification");
    let audit = audit::measure(&args.audit, &api, &args.out, args.keep_export).await?;
    let verify_rate = audit.events as f64 / audit.verify.as_secs_f64().max(1e-9);
    report.notes.push(format!(
        "W6 exported {} events ({:.1} MB) in {:.1} s; partida-audit verified them in {:.2} s ({:.0} events/s: chain, \
         Merkle tree, replay through the domain, double entry); sha256sum of the file took {:.2} s (medians of 3 runs each).",
        audit.events,
        audit.bytes as f64 / 1e6,
        audit.export.as_secs_f64(),
        audit.verify.as_secs_f64(),
        verify_rate,
        audit.sha256.as_secs_f64()
    ));
    report.measurements.push(
        Measurement::new(
            "W6",
            format!("partida-audit verify of an export of {} events", audit.events),
            "events/s",
            stats::Summary::from_parts(audit.events as u64, 0, audit.verify.as_secs_f64(), Vec::new()),
        )
        .against(
            "sha256sum of the same export file",
            "events/s",
            stats::Summary::from_parts(audit.events as u64, 0, audit.sha256.as_secs_f64(), Vec::new()),
        ),
    );

    let at_64 = w1.iter().find(|(clients, ..)| *clients == 64).copied();
    report.targets = vec![
        Target::at_least(
            "W1 @64 clients / raw one-row inserts @64",
            at_64.map(|w| w.1 / w.2),
            1.0,
        ),
        Target::at_least(
            "W1 @64 clients / advisory-lock writer @64",
            at_64.map(|w| w.1 / w.3),
            5.0,
        ),
        Target::at_most("W1 @64 clients p99 (ms)", at_64.map(|w| w.4), 25.0),
        Target::at_least("W1 hot account / uniform @64 (taking turns in one run)", hot_ratio, 0.8),
        Target::at_least(
            "W2 transfers/s / raw 100-row insert rows/s",
            Some(w2_best / raw_hundred.rate.max(1e-9)),
            0.5,
        ),
        Target::at_most("W3 projection lag p99 (ms)", Some(lag_p99), 50.0),
        Target::at_least("W4 rebuild events/s", Some(rebuild_rate), 50_000.0),
        Target::at_least(
            "W4 rebuild / COPY of the read rows",
            Some(rebuild_rate / copy_rate.max(1e-9)),
            0.5,
        ),
        Target::at_least("W5 reads / pgbench select-only (worst of the two)", Some(w5_worst), 0.5),
        Target::at_least(
            "W1 @64 / peer library (cqrs-es) @64",
            at_64.zip(peer_rate).map(|(w, p)| w.1 / p.max(1e-9)),
            10.0,
        ),
    ];
    if args.peer.is_none() {
        report
            .notes
            .push("The peer library (cqrs-es) was not measured (no --peer).".into());
    }
    report.write(&args.out)?;
    print!("{}", report.markdown());
    Ok(())
}

/// W1's variants at 64 clients, run right after the uniform run at 64 clients. The hot account's
/// target is a ratio to uniform transfers, so its transfers take turns with uniform ones within
/// one run ([`workloads::hot_and_uniform`]), and it is divided by those: a ratio of two runs, each
/// in its own phase of the machine, swung 0.68-1.24× over six full runs, and 0.79-1.00× even
/// with the two runs back to back. The other variants are against the uniform run. Returns the
/// hot account's ratio.
async fn variants_at_64(
    api: &api::Api,
    database: &sqlx::PgPool,
    uniform: &stats::Summary,
    timing: Timing,
    report: &mut Report,
) -> anyhow::Result<f64> {
    progress("W1 w1-hot, 64 clients, taking turns with uniform transfers");
    let [plain, hot] = workloads::hot_and_uniform(api, "w1-hot", 64, ACCOUNTS, timing).await;
    workloads::settle(database).await?;
    let hot_ratio = hot.rate / plain.rate.max(1e-9);
    report.measurements.push(
        Measurement::new(
            "W1",
            "transfers with a fee to one hot account, 64 clients",
            "transfers/s",
            hot,
        )
        .against(
            "single transfers, 64 clients, in the turns between (same run)",
            "transfers/s",
            plain,
        ),
    );
    let variants = [
        (
            Shape::Rich,
            "w1-rich",
            "transfers with metadata, an effective time and a condition, 64 clients",
            "transfers/s",
        ),
        (
            Shape::Hold,
            "w1-hold",
            "holds placed, then posted (two requests), 64 clients",
            "holds/s",
        ),
    ];
    for (shape, label, what, unit) in variants {
        progress(&format!("W1 {label}, 64 clients"));
        let ours = workloads::single_transfers(api, label, 64, shape, ACCOUNTS, timing).await;
        workloads::settle(database).await?;
        report
            .measurements
            .push(Measurement::new("W1", what, unit, ours).against(
                "single transfers, 64 clients (this run)",
                "transfers/s",
                uniform.clone(),
            ));
    }
    Ok(hot_ratio)
}

/// A step of the run, stamped with the wall-clock time (UTC) so it can be matched against
/// PostgreSQL's log and a profiler's samples.
fn progress(what: &str) {
    let now = time::OffsetDateTime::now_utc();
    let (hour, minute, second, milli) = now.to_hms_milli();
    eprintln!("partida-bench {hour:02}:{minute:02}:{second:02}.{milli:03}: {what}");
}
