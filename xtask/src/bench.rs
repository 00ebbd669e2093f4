//! `cargo xtask bench`: release builds of the services on a fresh, durable PostgreSQL, then
//! `partida-bench`, which runs the workloads and the raw-PostgreSQL baselines against that same
//! cluster and writes `target/bench/report.{json,md}`.

use std::net::{Ipv4Addr, TcpListener};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::services::{ServiceSpec, Supervisor};
use crate::{pg, shutdown, up, workspace};

#[derive(Args)]
pub struct BenchArgs {
    /// Long runs: 30 s per measurement instead of 5.
    #[arg(long)]
    full: bool,
    /// Runs the release binaries already in this directory instead of building them: to compare
    /// two builds, keep a copy of each and alternate runs.
    #[arg(long, value_name = "DIR")]
    binaries: Option<std::path::PathBuf>,
    /// Passed on to partida-bench (`cargo xtask bench -- --help` lists them), e.g.
    /// `-- --keep-export` or `-- --only-w1-clients 64`.
    #[arg(last = true)]
    bench_args: Vec<String>,
}

pub fn run(args: &BenchArgs) -> Result<()> {
    shutdown::install()?;
    let target = workspace::target_dir()?;
    check_free_space(&target, args)?;
    let mut binaries = up::BINARIES.to_vec();
    binaries.push("partida-bench");
    binaries.push("partida-audit");
    let bin_dir = match &args.binaries {
        Some(dir) => {
            if let Some(missing) = binaries.iter().find(|b| !dir.join(b).is_file()) {
                bail!("{} has no {missing}", dir.display());
            }
            dir.clone()
        }
        None => up::build(true, &binaries)?,
    };
    let peer = build_peer(&target)?;

    // Declared before the supervisor: dropped after it, so services stop before PostgreSQL.
    let (admin_url, port, _postgres) = pg::start_fresh_bench_cluster(&target)?;
    pg::create_database(&target, "bench-pg", port, "partida")?;
    let database_url = format!("postgres://postgres@127.0.0.1:{port}/partida");
    up::migrate(&bin_dir, &database_url)?;
    let token = up::issue_token(&bin_dir, &database_url, "bench", "admin")?;

    let [command, query, projector] = [free_addr()?, free_addr()?, free_addr()?];
    let common = [
        ("DATABASE_URL", database_url.clone()),
        // One token drives every workload: no per-credential limit while measuring.
        ("PARTIDA_RATE_LIMIT_PER_SEC", "0".to_owned()),
        ("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into())),
    ];
    let mut supervisor = Supervisor::default();
    let mut spawn =
        |name: &'static str, addr_var: &'static str, addr: std::net::SocketAddr, extra: &[(&'static str, &str)]| {
            let mut env: Vec<(&'static str, String)> = common.to_vec();
            env.push((addr_var, addr.to_string()));
            env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
            supervisor.spawn(ServiceSpec {
                name: name.into(),
                program: bin_dir.join(name),
                args: Vec::new(),
                env,
                health_addr: addr,
            })
        };
    // W2 sends batches of 8,000 transfers: raise the batch endpoint's limits to fit.
    spawn(
        "command-api",
        "COMMAND_API_ADDR",
        command,
        &[
            ("PARTIDA_BATCH_MAX_TRANSFERS", "8000"),
            ("PARTIDA_BATCH_MAX_POSTINGS", "80000"),
        ],
    )?;
    spawn("projector", "PROJECTOR_ADDR", projector, &[])?;
    spawn(
        "query-api",
        "QUERY_API_ADDR",
        query,
        &[("PARTIDA_QUERY_MAX_CONNECTIONS", "32")],
    )?;
    supervisor.wait_until_healthy(Duration::from_secs(30))?;

    let out = target.join("bench");
    let mut bench = Command::new(bin_dir.join("partida-bench"));
    bench
        .env("PARTIDA_TOKEN", &token)
        .args(["--command-url", &format!("http://{command}")])
        .args(["--query-url", &format!("http://{query}")])
        .args(["--database-url", &database_url])
        .args(["--admin-url", &admin_url])
        .arg("--pgbench")
        .arg(pg::tool("pgbench")?)
        .arg("--projector")
        .arg(bin_dir.join("projector"))
        .arg("--audit")
        .arg(bin_dir.join("partida-audit"))
        .arg("--peer")
        .arg(&peer)
        .arg("--out")
        .arg(&out);
    if args.full {
        bench.arg("--full");
    }
    bench.args(&args.bench_args);
    let status = shutdown::run_to_completion(&mut bench).context("running partida-bench")?;
    supervisor.stop_all();
    if shutdown::requested() {
        bail!("interrupted");
    }
    if !status.success() {
        bail!("partida-bench failed ({status})");
    }
    note!("report: {}", out.join("report.md").display());
    Ok(())
}

/// Free space a run needs in the target directory: the cluster's tables and WAL (no checkpoint
/// recycles it during a run), pgbench's per-transaction logs and W6's export. A full run needs
/// about 25 GB; one that ran out had PostgreSQL stop in the middle of W4, unable to write WAL.
const FULL_RUN_BYTES: u64 = 25 << 30;
/// A quick run, or one workload alone (`-- --only-...`): a quick run's cluster held 5.4 GB.
const QUICK_RUN_BYTES: u64 = 8 << 30;

/// Refuses to start a run that the disk cannot hold, rather than fail in its middle. The last
/// run's cluster, which this run replaces, counts as free.
fn check_free_space(target: &std::path::Path, args: &BenchArgs) -> Result<()> {
    let alone = args.bench_args.iter().any(|arg| arg.starts_with("--only-"));
    let needed = if args.full && !alone {
        FULL_RUN_BYTES
    } else {
        QUICK_RUN_BYTES
    };
    let stat = nix::sys::statvfs::statvfs(target).context("reading the free space of the target directory")?;
    // Both are u64 on 64-bit Linux, narrower elsewhere.
    #[allow(clippy::useless_conversion)]
    let free = u64::from(stat.blocks_available()).saturating_mul(u64::from(stat.fragment_size()))
        + size_of_tree(&target.join("partida").join(pg::BENCH_CLUSTER));
    if free < needed {
        bail!(
            "this run needs about {} GB free in {}, and {} GB are: free some space (or point CARGO_TARGET_DIR elsewhere)",
            needed >> 30,
            target.display(),
            free >> 30
        );
    }
    Ok(())
}

/// The bytes of the files under `dir` (0 if it does not exist).
fn size_of_tree(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => size_of_tree(&entry.path()),
            Ok(kind) if kind.is_file() => entry.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// The peer library's benchmark lives in its own workspace (bench/peer) with its own target
/// directory, so its dependencies never enter the product's build.
fn build_peer(target: &std::path::Path) -> Result<std::path::PathBuf> {
    note!("building the peer-library benchmark (bench/peer, release)");
    let peer_target = target.join("peer");
    let mut cargo = workspace::cargo();
    cargo
        .args(["build", "--release", "--manifest-path"])
        .arg(workspace::root().join("bench/peer/Cargo.toml"))
        .env("CARGO_TARGET_DIR", &peer_target);
    let status = shutdown::run_to_completion(&mut cargo)?;
    if !status.success() {
        bail!("building bench/peer failed ({status})");
    }
    Ok(peer_target.join("release").join("peer-cqrs-es"))
}

/// Ports handed out for services and clusters come from below the kernel's ephemeral range
/// (32768 and up): a port the kernel picks for a throw-away listener can be taken, before the
/// service binds it, as the local port of one of the many connections the tests open.
const PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A local address nobody listens on right now, never the same twice in one run.
pub(crate) fn free_addr() -> Result<std::net::SocketAddr> {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU32, Ordering};
    static START: OnceLock<u32> = OnceLock::new();
    static HANDED: AtomicU32 = AtomicU32::new(0);
    let span = u32::from(PORTS.end - PORTS.start);
    // A different start in each run, so that runs one after another do not meet in TIME_WAIT.
    let start = *START.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
            % span
    });
    for _ in 0..span {
        let offset = (start + HANDED.fetch_add(1, Ordering::Relaxed)) % span;
        let port = PORTS.start + u16::try_from(offset).unwrap_or_default();
        if let Ok(listener) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            return Ok(listener.local_addr()?);
        }
    }
    bail!("no free port between {} and {}", PORTS.start, PORTS.end)
}
