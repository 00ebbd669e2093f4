//! The console's browser tests (a step of `cargo xtask test`): the whole stack on a fresh
//! database, then pytest + Playwright driving Debian's Chromium through web/tests/browser.
//! Screenshots of each page land in target/browser/screenshots.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::services::{ServiceSpec, Supervisor};
use crate::{bench, pg, shutdown, up, web, workspace};

/// The browser driver and test runner, pinned; installed into a venv under target/.
const PYTHON_PACKAGES: [&str; 2] = ["playwright==1.65.2", "pytest==9.2.0"];
const CHROMIUM: &str = "/usr/bin/chromium";

pub fn run(admin_url: &str) -> Result<()> {
    if !Path::new(CHROMIUM).is_file() {
        bail!("{CHROMIUM} is missing: `apt-get install chromium` (.ci/run does)");
    }
    let target = workspace::target_dir()?;
    let python = crate::venv::ensure(&target, "browser-venv", &PYTHON_PACKAGES)?.join("python");
    let bin_dir = up::build(false, &up::STACK)?;
    let site = web::build_site(false)?;
    let database_url = pg::fresh_database(admin_url, "partida_browser")?;
    up::migrate(&bin_dir, &database_url)?;
    let admin_token = up::issue_token(&bin_dir, &database_url, "browser-admin", "admin")?;
    let reader_token = up::issue_token(&bin_dir, &database_url, "browser-reader", "reader")?;

    let [command, query, projector, console] = [
        bench::free_addr()?,
        bench::free_addr()?,
        bench::free_addr()?,
        bench::free_addr()?,
    ];
    let database = ("DATABASE_URL", database_url);
    let signing_key = (
        "PARTIDA_SIGNING_KEY_FILE",
        up::dev_signing_key(&target)?.display().to_string(),
    );
    let services = [
        (
            "command-api",
            "COMMAND_API_ADDR",
            command,
            // Checkpoints only on demand: the tests decide when one is signed.
            vec![
                database.clone(),
                signing_key,
                ("PARTIDA_CHECKPOINT_INTERVAL_SECS", "86400".to_owned()),
            ],
        ),
        ("projector", "PROJECTOR_ADDR", projector, vec![database.clone()]),
        ("query-api", "QUERY_API_ADDR", query, vec![database]),
        (
            "web",
            "WEB_ADDR",
            console,
            vec![
                ("COMMAND_API_URL", format!("http://{command}")),
                ("QUERY_API_URL", format!("http://{query}")),
                ("PROJECTOR_URL", format!("http://{projector}")),
                ("WEB_SITE_ROOT", site.display().to_string()),
            ],
        ),
    ];
    let mut supervisor = start(&bin_dir, services)?;

    let screenshots = target.join("browser").join("screenshots");
    let mut pytest = Command::new(&python);
    pytest
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(workspace::root().join("web/tests/browser"))
        .env("PARTIDA_WEB_URL", format!("http://{console}"))
        .env("PARTIDA_COMMAND_URL", format!("http://{command}"))
        .env("PARTIDA_QUERY_URL", format!("http://{query}"))
        .env("PARTIDA_ADMIN_TOKEN", &admin_token)
        .env("PARTIDA_READER_TOKEN", &reader_token)
        .env("PARTIDA_SCREENSHOTS", &screenshots)
        .env("PARTIDA_CHROMIUM", CHROMIUM);
    let status = shutdown::run_to_completion(&mut pytest).context("running pytest")?;
    supervisor.stop_all();
    if shutdown::requested() {
        bail!("interrupted");
    }
    if !status.success() {
        bail!(
            "the browser tests failed ({status}); screenshots in {}",
            screenshots.display()
        );
    }
    note!("screenshots of each page: {}", screenshots.display());
    Ok(())
}

/// One service to start: its binary's name, the variable of its listen address, that address,
/// and its environment.
pub type Service = (&'static str, &'static str, SocketAddr, Vec<(&'static str, String)>);

/// Starts `services` from `bin_dir`, quiet unless RUST_LOG says otherwise; returns once each
/// answers its health check.
pub fn start(bin_dir: &Path, services: impl IntoIterator<Item = Service>) -> Result<Supervisor> {
    let mut supervisor = Supervisor::default();
    let quiet = ("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()));
    for (name, addr_var, addr, mut env) in services {
        env.push((addr_var, addr.to_string()));
        env.push(quiet.clone());
        supervisor.spawn(ServiceSpec {
            name: name.into(),
            program: bin_dir.join(name),
            args: Vec::new(),
            env,
            health_addr: addr,
        })?;
    }
    supervisor.wait_until_healthy(Duration::from_secs(30))?;
    Ok(supervisor)
}
