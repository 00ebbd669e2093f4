//! The API fuzz step of `cargo xtask test`: schemathesis (from PyPI) against both running APIs,
//! from the OpenAPI documents they serve. The stack runs on a fresh database holding the demo
//! data and a signed checkpoint, so reads return real rows; schemathesis sends the documents'
//! examples, boundary values and random input, as an admin, and fails on any 5xx and any status,
//! content type, header or body the document does not allow (e2e/fuzz/schemathesis.toml).

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::{bench, browser, demo, http, pg, shutdown, up, workspace};

const PYTHON_PACKAGES: [&str; 1] = ["schemathesis==4.32.5"];
/// Examples per operation and phase: enough to find a crash on odd input, bounded for CI.
const MAX_EXAMPLES: &str = "50";

/// The seed `cargo xtask test` fuzzes with unless told otherwise.
pub const PINNED_SEED: &str = "20261123";

/// Which input schemathesis generates.
#[derive(Clone, Debug)]
pub enum Seed {
    /// The same input on every run (a decimal seed).
    Pinned(String),
    /// New input on every run.
    Random,
}

#[derive(clap::Args)]
pub struct FuzzArgs {
    /// A decimal seed, or `random` for new input on every run.
    #[arg(long, default_value = PINNED_SEED, value_parser = parse_seed)]
    seed: Seed,
}

/// `cargo xtask fuzz`: the `api-fuzz` step alone.
pub fn standalone(args: &FuzzArgs) -> Result<()> {
    let (admin_url, _stop) = crate::test::test_database()?;
    run(&admin_url, &args.seed)
}

/// Parses `--fuzz-seed`: a decimal integer, or `random`.
pub fn parse_seed(text: &str) -> Result<Seed, String> {
    if text == "random" {
        Ok(Seed::Random)
    } else if !text.is_empty() && text.len() <= 40 && text.bytes().all(|b| b.is_ascii_digit()) {
        Ok(Seed::Pinned(text.to_owned()))
    } else {
        Err(format!("`{text}` is neither a decimal seed nor `random`"))
    }
}

pub fn run(admin_url: &str, seed: &Seed) -> Result<()> {
    let target = workspace::target_dir()?;
    let bin = crate::venv::ensure(&target, "fuzz-venv", &PYTHON_PACKAGES)?;
    let bin_dir = up::build(false, &up::STACK)?;
    let database_url = pg::fresh_database(admin_url, "partida_fuzz")?;
    up::migrate(&bin_dir, &database_url)?;
    let token = up::issue_token(&bin_dir, &database_url, "fuzz-admin", "admin")?;

    let [command, query, projector] = [bench::free_addr()?, bench::free_addr()?, bench::free_addr()?];
    let database = ("DATABASE_URL", database_url);
    // Schemathesis sends as fast as it can: no rate limit, so no 429 to tell apart.
    let unlimited = ("PARTIDA_RATE_LIMIT_PER_SEC", "0".to_owned());
    let signing_key = (
        "PARTIDA_SIGNING_KEY_FILE",
        up::dev_signing_key(&target)?.display().to_string(),
    );
    let mut supervisor = browser::start(
        &bin_dir,
        [
            (
                "command-api",
                "COMMAND_API_ADDR",
                command,
                vec![
                    database.clone(),
                    unlimited.clone(),
                    signing_key,
                    ("PARTIDA_CHECKPOINT_INTERVAL_SECS", "86400".to_owned()),
                ],
            ),
            ("projector", "PROJECTOR_ADDR", projector, vec![database.clone()]),
            ("query-api", "QUERY_API_ADDR", query, vec![database, unlimited]),
        ],
    )?;
    demo::load(command, &token)?;
    let signed = http::post_json(command, "/v1/audit/checkpoints", "{}", &token, Duration::from_secs(30))?;
    if signed.status != 201 {
        bail!(
            "signing the first checkpoint answered {}: {}",
            signed.status,
            signed.body
        );
    }

    let schemathesis = bin.join("schemathesis");
    let outcome = fuzz(&schemathesis, "command-api", command, &token, seed)
        .and_then(|()| fuzz(&schemathesis, "query-api", query, &token, seed));
    supervisor.stop_all();
    outcome
}

/// Runs schemathesis against the API at `addr`.
fn fuzz(schemathesis: &std::path::Path, name: &str, addr: SocketAddr, token: &str, seed: &Seed) -> Result<()> {
    note!("schemathesis against {name}");
    let config = workspace::root().join("e2e/fuzz/schemathesis.toml");
    let mut run = Command::new(schemathesis);
    // Its caches (.schemathesis/, .hypothesis/) land in the working directory: keep them in target/.
    run.current_dir(workspace::target_dir()?)
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("http://{addr}/openapi.json"))
        .args(["--max-examples", MAX_EXAMPLES, "--phases", "examples,coverage,fuzzing"])
        .args(match seed {
            Seed::Pinned(seed) => vec!["--seed", seed.as_str()],
            Seed::Random => vec![],
        })
        .env("PARTIDA_TOKEN", token)
        .env("NO_COLOR", "1");
    let status = shutdown::run_to_completion(&mut run).context("running schemathesis")?;
    if shutdown::requested() {
        bail!("interrupted");
    }
    if !status.success() {
        bail!("schemathesis found failures in {name} ({status}); each is printed above with a curl to reproduce it");
    }
    Ok(())
}
