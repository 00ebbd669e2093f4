//! Private PostgreSQL clusters for development and tests.
//!
//! Each cluster lives under the cargo target directory (`target/partida/<name>/{data,sock,log}`),
//! listens on 127.0.0.1 only and trusts local connections. Nothing depends on a system
//! PostgreSQL service, a Debian cluster or Docker: only the server binaries of the Debian package
//! `postgresql` (or any PostgreSQL install that `pg_config --bindir` points at).
//!
//! PostgreSQL refuses to run as root. When xtask runs as root (CI, containers), the server tools
//! run as the `postgres` user through `runuser`, and every directory the server writes is owned
//! by that user.

mod bin;
mod cluster;
mod replicated;

use std::env;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, anyhow, bail};

use cluster::Cluster;
pub use replicated::Replicated;

/// The dev cluster's port unless `PARTIDA_PG_PORT` says otherwise; far from 5432 so that a
/// system PostgreSQL never collides with it.
const DEFAULT_DEV_PORT: u16 = 55432;
/// The dev cluster's application database.
const DEV_DATABASE: &str = "partida";
/// The superuser created by initdb; authentication is `trust`, so no password.
const SUPERUSER: &str = "postgres";
/// Extra settings of the throw-away test cluster: durability buys nothing there, speed does.
const TEST_SETTINGS: &[(&str, &str)] = &[
    ("fsync", "off"),
    ("synchronous_commit", "off"),
    ("full_page_writes", "off"),
];

/// The dev cluster: reused across runs, so data survives `cargo xtask up` restarts.
pub struct DevCluster {
    cluster: Cluster,
    port: u16,
    started_here: bool,
}

impl DevCluster {
    /// Initializes the dev cluster if it does not exist yet, starts it if it is not running and
    /// creates the `partida` database if it is missing.
    pub fn ensure_running(target_dir: &Path) -> Result<Self> {
        let cluster = Cluster::new(dev_dir(target_dir), dev_port()?)?;
        if cluster.is_initialized() {
            cluster.check_version()?;
        } else {
            cluster.init(&[])?;
        }
        let (port, started_here) = match cluster.running_port()? {
            Some(port) => {
                if port != cluster.port {
                    note!(
                        "the dev PostgreSQL is already running on port {port} (not {}); using it",
                        cluster.port
                    );
                }
                (port, false)
            }
            None => {
                cluster.start()?;
                (cluster.port, true)
            }
        };
        let dev = Self {
            cluster,
            port,
            started_here,
        };
        dev.cluster.ensure_database(port, DEV_DATABASE)?;
        Ok(dev)
    }

    /// `pg-stop`: stops the dev cluster if it runs.
    pub fn stop(target_dir: &Path) -> Result<()> {
        let cluster = Cluster::new(dev_dir(target_dir), dev_port()?)?;
        if !cluster.is_initialized() {
            note!("there is no dev PostgreSQL at {}", cluster.dir.display());
            return Ok(());
        }
        if cluster.running_port()?.is_none() {
            note!("the dev PostgreSQL is not running");
            return Ok(());
        }
        cluster.stop()
    }

    pub fn database_url(&self) -> String {
        database_url(self.port, DEV_DATABASE)
    }

    /// Hands over responsibility for stopping the cluster: stopped when the guard drops if, and
    /// only if, this process started it (a cluster the developer started stays up).
    pub fn into_guard(self) -> StopOnDrop {
        StopOnDrop(self.started_here.then_some(self.cluster))
    }
}

/// Creates a brand-new test cluster on a free port (removing the previous run's) and returns its
/// admin URL (database `postgres`) with the guard that stops it.
pub fn start_fresh_test_cluster(target_dir: &Path) -> Result<(String, StopOnDrop)> {
    start_fresh_cluster(target_dir, "test-pg", TEST_SETTINGS)
}

/// Settings of the benchmark cluster: durable (fsync and synchronous commit on, as in
/// production), memory for a 24 GiB machine, no checkpoint in the middle of a run, and room for
/// pgbench's 256 clients next to the services.
const BENCH_SETTINGS: &[(&str, &str)] = &[
    ("max_connections", "400"),
    ("shared_buffers", "'2GB'"),
    ("max_wal_size", "'16GB'"),
    ("checkpoint_timeout", "'30min'"),
    ("wal_buffers", "'64MB'"),
];

/// The benchmark cluster's directory under `<target>/partida`.
pub const BENCH_CLUSTER: &str = "bench-pg";

/// A brand-new cluster for `cargo xtask bench`, the same for the product and every baseline.
pub fn start_fresh_bench_cluster(target_dir: &Path) -> Result<(String, u16, StopOnDrop)> {
    let (url, guard) = start_fresh_cluster(target_dir, BENCH_CLUSTER, BENCH_SETTINGS)?;
    let port = guard.0.as_ref().map_or(0, |c| c.port);
    Ok((url, port, guard))
}

/// A PostgreSQL client tool from the server's own bin directory (pgbench, psql, ...).
pub fn tool(name: &str) -> Result<PathBuf> {
    Ok(bin::PgBin::find()?.dir.join(name))
}

/// Creates database `name` on the cluster at `port`.
pub fn create_database(target_dir: &Path, cluster: &str, port: u16, name: &str) -> Result<()> {
    Cluster::new(target_dir.join("partida").join(cluster), port)?.ensure_database(port, name)
}

fn start_fresh_cluster(target_dir: &Path, name: &str, settings: &[(&str, &str)]) -> Result<(String, StopOnDrop)> {
    let dir = target_dir.join("partida").join(name);
    let cluster = Cluster::new(dir, free_port()?)?;
    if cluster.is_initialized() && cluster.running_port()?.is_some() {
        note!("stopping a {name} PostgreSQL left over from an earlier run");
        cluster.stop()?;
    }
    match fs::remove_dir_all(&cluster.dir) {
        Err(err) if err.kind() != ErrorKind::NotFound => {
            return Err(err).with_context(|| format!("removing {}", cluster.dir.display()));
        }
        _ => {}
    }
    cluster.init(settings)?;
    cluster.start()?;
    let url = database_url(cluster.port, "postgres");
    Ok((url, StopOnDrop(Some(cluster))))
}

/// Stops the cluster it holds (if any) when dropped: on success, on errors and after Ctrl-C.
pub struct StopOnDrop(Option<Cluster>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(cluster) = self.0.take()
            && let Err(err) = cluster.stop()
        {
            eprintln!("xtask: error: {err:#}");
        }
    }
}

fn dev_dir(target_dir: &Path) -> PathBuf {
    target_dir.join("partida").join("dev-pg")
}

fn dev_port() -> Result<u16> {
    match env::var("PARTIDA_PG_PORT") {
        Ok(value) => value
            .trim()
            .parse()
            .map_err(|_| anyhow!("PARTIDA_PG_PORT must be a TCP port number, got {value:?}")),
        Err(_) => Ok(DEFAULT_DEV_PORT),
    }
}

fn database_url(port: u16, database: &str) -> String {
    database_url_as(port, database, SUPERUSER)
}

/// Local connections are trusted: a user name is all a URL needs.
fn database_url_as(port: u16, database: &str, user: &str) -> String {
    format!("postgres://{user}@127.0.0.1:{port}/{database}")
}

/// A port nobody listens on right now (see `bench::free_addr`).
fn free_port() -> Result<u16> {
    Ok(crate::bench::free_addr()?.port())
}

/// Runs a command to completion and returns its stdout; on failure the error carries what the
/// command printed, which is where PostgreSQL tools explain themselves.
fn run(command: &mut Command, what: &str) -> Result<String> {
    let output = command
        .output()
        .with_context(|| format!("could not run {what} ({:?})", command.get_program()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        bail!(
            "{what} failed ({}):\n{}{}",
            output.status,
            stderr.trim_end(),
            if stdout.trim().is_empty() {
                String::new()
            } else {
                format!("\n{}", stdout.trim_end())
            }
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Drops (if there) and creates database `name` through `admin_url`; returns the new database's URL.
pub fn fresh_database(admin_url: &str, name: &str) -> Result<String> {
    let psql = tool("psql")?;
    let status = Command::new(&psql)
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", admin_url])
        .args(["-c", &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")])
        .args(["-c", &format!("CREATE DATABASE {name}")])
        .status()
        .with_context(|| format!("running {}", psql.display()))?;
    if !status.success() {
        bail!("creating database {name} failed ({status})");
    }
    Ok(with_database(admin_url, name))
}

/// `admin_url` with its database replaced by `name` (query parameters kept).
fn with_database(admin_url: &str, name: &str) -> String {
    let (base, query) = admin_url
        .split_once('?')
        .map_or((admin_url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
    let mut url = format!("{}/{name}", &base[..host_end]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

#[cfg(test)]
mod url_tests {
    use super::with_database;

    #[test]
    fn replaces_only_the_database() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "b"),
            "postgres://postgres@127.0.0.1:5432/b"
        );
        assert_eq!(
            with_database("postgres://u:p@h:1/db?sslmode=disable", "b"),
            "postgres://u:p@h:1/b?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "b"), "postgres://h/b");
    }
}
