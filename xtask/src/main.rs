//! Partida's dev task runner.
//!
//! One entry point for the things a developer and CI do every day, so that neither needs
//! Docker, a system PostgreSQL service or shell scripts that drift apart:
//!
//! - `cargo xtask up [--release] [--demo]`: a private PostgreSQL, migrations, the three services.
//! - `cargo xtask test [--no-lint] [-- <cargo test args>]`: fmt, clippy and the test suite against
//!   a fresh throw-away PostgreSQL cluster.
//! - `cargo xtask bench [--full]`: the benchmark workloads and their baselines.
//! - `cargo xtask soak [--minutes N]`: steady load on the cluster; memory, errors and lag.
//! - `cargo xtask check-deploy`: compose.yaml, the Dockerfile and k8s/ validated offline.
//! - `cargo xtask cluster [--drills]`: the multi-instance topology (primary + standby, replicas
//!   behind nginx) and its fault drills.
//! - `cargo xtask pg` / `cargo xtask pg-stop`: just the dev database.

/// Progress for the developer, on stderr so that stdout stays clean for values such as the URL
/// `cargo xtask pg` prints.
macro_rules! note {
    ($($arg:tt)*) => {
        eprintln!("xtask: {}", format_args!($($arg)*))
    };
}

mod bench;
mod browser;
mod cluster;
mod demo;
mod deploy;
mod fuzz;
mod http;
mod pg;
mod services;
mod shutdown;
mod test;
mod up;
mod venv;
mod web;
mod workspace;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "xtask",
    bin_name = "cargo xtask",
    about = "Partida's dev task runner",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole product locally: PostgreSQL, migrations, command-api, query-api, projector
    /// and the web console.
    ///
    /// Database: DATABASE_URL when set, otherwise a private cluster under target/partida/dev-pg
    /// (port PARTIDA_PG_PORT, default 55432). query-api also gets READ_DATABASE_URL (default:
    /// DATABASE_URL). Listen addresses: COMMAND_API_ADDR (default 127.0.0.1:8081),
    /// QUERY_API_ADDR (127.0.0.1:8082), PROJECTOR_ADDR (127.0.0.1:8083), WEB_ADDR
    /// (127.0.0.1:3000). The console needs the wasm32 target and wasm-bindgen-cli (see the
    /// README). RUST_LOG is passed
    /// through. Ctrl-C stops everything it started.
    Up(up::UpArgs),
    /// Run the checks CI runs: cargo fmt, cargo clippy and cargo test against a fresh PostgreSQL.
    ///
    /// The tests get DATABASE_URL as their admin URL: the one in the environment when set,
    /// otherwise a fresh cluster under target/partida/test-pg, stopped at the end.
    Test(test::TestArgs),
    /// Measure: the workloads of docs/PERFORMANCE.md against release builds on a fresh, durable
    /// PostgreSQL, with raw-PostgreSQL baselines from the same run; writes target/bench/report.{json,md}.
    Bench(bench::BenchArgs),
    /// Run the deployment topology with real processes: a PostgreSQL primary and hot standby,
    /// command-api x2 and query-api x3 behind nginx, projector x2 (one leads), web.
    ///
    /// nginx listens on 127.0.0.1:8081 (command-api) and 127.0.0.1:8082 (query-api), the console
    /// on 127.0.0.1:3000. `--drills` runs the fault drills instead (free ports), as `cargo xtask
    /// test` does. Needs Debian's nginx.
    Cluster(cluster::ClusterArgs),
    /// Steady mixed load on the `cluster` topology (release builds) for --minutes, checking that
    /// no request fails, memory stays flat and the projection keeps up; writes
    /// target/soak/report.md.
    Soak(cluster::soak::SoakArgs),
    /// Fuzz both APIs with schemathesis from their OpenAPI documents (the `api-fuzz` step of
    /// `cargo xtask test`), against DATABASE_URL or a fresh private cluster. `--seed random`
    /// explores new input; a finding prints its seed and a curl to replay it.
    Fuzz(fuzz::FuzzArgs),
    /// Validate compose.yaml, the Dockerfile, deploy/ and every k8s/ overlay offline (the
    /// `deploy` step of `cargo xtask test`). Needs kubectl for rendering.
    CheckDeploy,
    /// Start the private dev PostgreSQL (if needed), create database `partida`, print its URL.
    Pg,
    /// Stop the private dev PostgreSQL started by `cargo xtask pg` or `cargo xtask up`.
    PgStop,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(args) => up::run(&args),
        Command::Test(args) => test::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Cluster(args) => cluster::run(&args),
        Command::Fuzz(args) => fuzz::standalone(&args),
        Command::CheckDeploy => deploy::run(),
        Command::Soak(args) => cluster::soak::run(&args),
        Command::Pg => pg_start(),
        Command::PgStop => pg_stop(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// `cargo xtask pg`: the URL goes to stdout alone so that
/// `export DATABASE_URL=$(cargo xtask pg)` works; progress goes to stderr.
fn pg_start() -> anyhow::Result<()> {
    let dev = pg::DevCluster::ensure_running(&workspace::target_dir()?)?;
    println!("{}", dev.database_url());
    Ok(())
}

fn pg_stop() -> anyhow::Result<()> {
    pg::DevCluster::stop(&workspace::target_dir()?)
}
