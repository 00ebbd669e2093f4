//! `cargo xtask up`: the whole product on this machine, one command, one Ctrl-C to stop it.

use std::env;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::services::{ServiceSpec, Supervisor};
use crate::{demo, http, pg, shutdown, workspace};

/// How long the services get to answer `/healthz` after they were spawned.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
pub(crate) const BINARIES: [&str; 3] = ["command-api", "query-api", "projector"];
/// What a running stack needs, built in one cargo invocation (one feature resolution, so one
/// set of artifacts) by `up`, the browser tests and the cluster: the services, the console and
/// the auditors' CLI. The Dockerfile builds the same set (checked by `check-deploy`).
pub(crate) const STACK: [&str; 5] = ["command-api", "query-api", "projector", "web", "partida-audit"];

#[derive(Args)]
pub struct UpArgs {
    /// Build and run the release binaries.
    #[arg(long)]
    release: bool,
    /// Load demo data (EUR and USD accounts, ~50 transfers) once the services are ready.
    #[arg(long)]
    demo: bool,
}

/// A service's listen address: passed to the service in `env_var`, and polled by us.
struct Listen {
    env_var: &'static str,
    value: String,
    addr: SocketAddr,
}

impl Listen {
    fn from_env(env_var: &'static str, default: &str) -> Result<Self> {
        let value = env_var_or(env_var, default);
        let addr = http::connect_addr(&value).with_context(|| format!("reading {env_var}"))?;
        Ok(Self { env_var, value, addr })
    }

    /// Fails early (before a long build) when something already listens there: the health
    /// checks would otherwise talk to that other program.
    fn ensure_free(&self) -> Result<()> {
        match TcpListener::bind(&self.value) {
            Ok(_) => Ok(()),
            Err(err) if err.kind() == ErrorKind::AddrInUse => bail!(
                "{}={} is already in use (another `cargo xtask up`?); stop that program or set \
                 {} to another address",
                self.env_var,
                self.value,
                self.env_var
            ),
            Err(err) => Err(err).with_context(|| format!("cannot listen on {}={}", self.env_var, self.value)),
        }
    }

    fn env(&self) -> (&'static str, String) {
        (self.env_var, self.value.clone())
    }
}

pub fn run(args: &UpArgs) -> Result<()> {
    shutdown::install()?;
    let command_api = Listen::from_env("COMMAND_API_ADDR", "127.0.0.1:8081")?;
    let query_api = Listen::from_env("QUERY_API_ADDR", "127.0.0.1:8082")?;
    let projector = Listen::from_env("PROJECTOR_ADDR", "127.0.0.1:8083")?;
    let web = Listen::from_env("WEB_ADDR", "127.0.0.1:3000")?;
    for listen in [&command_api, &query_api, &projector, &web] {
        listen.ensure_free()?;
    }

    // Declared before the supervisor so that it is dropped after it: services stop first,
    // then the PostgreSQL they use (only if this run started it).
    let (database_url, _postgres) = match env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            note!("using DATABASE_URL from the environment");
            (url, None)
        }
        _ => {
            let dev = pg::DevCluster::ensure_running(&workspace::target_dir()?)?;
            (dev.database_url(), Some(dev.into_guard()))
        }
    };
    let read_database_url = env_var_or("READ_DATABASE_URL", &database_url);

    let bin_dir = build(args.release, &STACK)?;
    let site = crate::web::build_site(args.release)?;
    migrate(&bin_dir, &database_url)?;
    let target = workspace::target_dir()?;
    let admin_token = issue_token(&bin_dir, &database_url, "dev-admin", "admin")?;
    let token_file = target.join("partida").join("admin.token");
    std::fs::create_dir_all(target.join("partida"))?;
    std::fs::write(&token_file, format!("{admin_token}\n"))?;

    let mut supervisor = Supervisor::default();
    let database = ("DATABASE_URL", database_url.clone());
    let signing_key = dev_signing_key(&target)?;
    let published = target.join("partida").join("checkpoints");
    supervisor.spawn(ServiceSpec {
        name: "command-api".into(),
        program: bin_dir.join("command-api"),
        args: Vec::new(),
        env: vec![
            database.clone(),
            command_api.env(),
            ("PARTIDA_SIGNING_KEY_FILE", signing_key.display().to_string()),
            ("PARTIDA_CHECKPOINT_DIR", published.display().to_string()),
            ("PARTIDA_CHECKPOINT_INTERVAL_SECS", "30".to_owned()),
        ],
        health_addr: command_api.addr,
    })?;
    supervisor.spawn(ServiceSpec {
        name: "projector".into(),
        program: bin_dir.join("projector"),
        args: Vec::new(),
        env: vec![database.clone(), projector.env()],
        health_addr: projector.addr,
    })?;
    supervisor.spawn(ServiceSpec {
        name: "query-api".into(),
        program: bin_dir.join("query-api"),
        args: Vec::new(),
        env: vec![
            database,
            ("READ_DATABASE_URL", read_database_url.clone()),
            query_api.env(),
        ],
        health_addr: query_api.addr,
    })?;
    supervisor.spawn(ServiceSpec {
        name: "web".into(),
        program: bin_dir.join("web"),
        args: Vec::new(),
        env: vec![
            web.env(),
            ("COMMAND_API_URL", format!("http://{}", command_api.addr)),
            ("QUERY_API_URL", format!("http://{}", query_api.addr)),
            ("PROJECTOR_URL", format!("http://{}", projector.addr)),
            ("WEB_SITE_ROOT", site.display().to_string()),
        ],
        health_addr: web.addr,
    })?;
    supervisor.wait_until_healthy(READY_TIMEOUT)?;

    if args.demo {
        demo::load(command_api.addr, &admin_token)?;
    }

    println!();
    println!("Partida is running:");
    println!("  console (web)      http://{}", web.addr);
    println!("  command-api        http://{}", command_api.addr);
    println!("  query-api          http://{}", query_api.addr);
    println!("  projector metrics  http://{}/metrics", projector.addr);
    println!("  DATABASE_URL       {database_url}");
    println!("  admin token        {admin_token}");
    println!(
        "                     (also in {}; sign in to the console with it, or send it as",
        token_file.display()
    );
    println!("                     `Authorization: Bearer`; more: `command-api tokens --help`)");
    println!(
        "  checkpoints        signed every 30 s with the dev key {}",
        signing_key.display()
    );
    println!("                     published in {}", published.display());
    if read_database_url != database_url {
        println!("  READ_DATABASE_URL  {read_database_url}");
    }
    println!("Press Ctrl-C to stop.");
    println!();

    let outcome = supervisor.watch();
    supervisor.stop_all();
    outcome
}

/// Builds `binaries` (each a package of the same name) in one cargo invocation (one dependency
/// graph, one lock) and returns the directory they are in.
pub(crate) fn build(release: bool, binaries: &[&str]) -> Result<PathBuf> {
    let profile = if release { "release" } else { "debug" };
    note!("building {} ({profile})", binaries.join(", "));
    let mut cargo = workspace::cargo();
    cargo.arg("build");
    if release {
        cargo.arg("--release");
    }
    for binary in binaries {
        cargo.args(["-p", binary]);
    }
    let status = shutdown::run_to_completion(&mut cargo)?;
    if shutdown::requested() {
        bail!("interrupted");
    }
    if !status.success() {
        bail!("cargo build of the services failed ({status})");
    }
    let bin_dir = workspace::target_dir()?.join(profile);
    for binary in binaries {
        if !bin_dir.join(binary).is_file() {
            bail!(
                "cargo build succeeded but {} is missing",
                bin_dir.join(binary).display()
            );
        }
    }
    Ok(bin_dir)
}

/// `command-api migrate` applies the migrations and exits; services never race to migrate.
pub(crate) fn migrate(bin_dir: &Path, database_url: &str) -> Result<()> {
    note!("applying migrations (command-api migrate)");
    let status = shutdown::run_to_completion(
        Command::new(bin_dir.join("command-api"))
            .arg("migrate")
            .env("DATABASE_URL", database_url),
    )?;
    if shutdown::requested() {
        bail!("interrupted");
    }
    if !status.success() {
        bail!("`command-api migrate` failed ({status}); see its output above");
    }
    Ok(())
}

/// `command-api tokens create`: a new API token for `subject` with `role`, as printed.
pub(crate) fn issue_token(bin_dir: &Path, database_url: &str, subject: &str, role: &str) -> Result<String> {
    let output = Command::new(bin_dir.join("command-api"))
        .args(["tokens", "create", "--subject", subject, "--role", role])
        .env("DATABASE_URL", database_url)
        .output()
        .context("running `command-api tokens create`")?;
    let token = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() || !token.starts_with("ptk_") {
        bail!(
            "`command-api tokens create` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(token)
}

fn env_var_or(name: &str, default: &str) -> String {
    env::var(name)
        .ok()
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// The dev signing key (an Ed25519 seed in hex), made once under target/: fine for a laptop,
/// never for production, where the key comes from a secret store.
pub(crate) fn dev_signing_key(target: &Path) -> Result<PathBuf> {
    let path = target.join("partida").join("dev-signing.key");
    if path.is_file() {
        return Ok(path);
    }
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| std::io::Read::read_exact(&mut random, &mut seed))
        .context("reading /dev/urandom for the dev signing key")?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let hex: String = seed.iter().map(|byte| format!("{byte:02x}")).collect();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    std::io::Write::write_all(&mut file, hex.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    note!("generated a dev signing key: {}", path.display());
    Ok(path)
}
