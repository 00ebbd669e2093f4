//! `cargo xtask test`: the checks CI runs, in order, against a real PostgreSQL.
//!
//! The run is a list of [`Step`]s; a step that needs a database gets one (DATABASE_URL from the
//! environment, or a fresh private cluster started just before the first such step and stopped
//! at the end, on failure and on Ctrl-C too). Later steps (browser tests, deployment checks)
//! slot into [`plan`].

use std::env;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Args;

use crate::{pg, shutdown, workspace};

#[derive(Args)]
pub struct TestArgs {
    /// Skip cargo fmt and cargo clippy (quick local loops).
    #[arg(long)]
    no_lint: bool,
    /// Skip the console's browser tests (they build the wasm and start the whole stack).
    #[arg(long)]
    no_browser: bool,
    /// Skip the API fuzz step (schemathesis against both APIs from their OpenAPI documents).
    #[arg(long)]
    no_fuzz: bool,
    /// The API fuzz step's seed: pinned, so a run is repeatable and a commit passes or fails for
    /// what it changed; `random` explores new input (and prints the seed to replay a finding).
    #[arg(long, default_value = crate::fuzz::PINNED_SEED, value_parser = crate::fuzz::parse_seed)]
    fuzz_seed: crate::fuzz::Seed,
    /// Skip the multi-instance topology's fault drills (`cargo xtask cluster --drills`).
    #[arg(long)]
    no_cluster: bool,
    /// Skip the offline checks of compose.yaml, the Dockerfile and k8s/.
    #[arg(long)]
    no_deploy: bool,
    /// Passed to `cargo test`, e.g. `-- -p partida-testkit` or `-- -p partida-ledger -- --nocapture`.
    /// Packages selected with -p also narrow fmt and clippy to them.
    #[arg(last = true)]
    cargo_test_args: Vec<String>,
}

/// One check: a cargo command, or the browser tests; and whether it needs DATABASE_URL.
struct Step {
    name: &'static str,
    args: Vec<String>,
    needs_database: bool,
}

/// Steps run by xtask itself rather than by one cargo command.
const BROWSER: &str = "browser";
const CLUSTER: &str = "cluster";
const DEPLOY: &str = "deploy";
const FUZZ: &str = "api-fuzz";

/// The steps of a run, in order.
fn plan(args: &TestArgs) -> Vec<Step> {
    let selection = Selection::parse(&args.cargo_test_args);
    let mut steps = Vec::new();
    if !args.no_lint {
        steps.push(Step {
            name: "fmt",
            args: strings(["fmt"])
                .chain(selection.fmt_args())
                .chain(strings(["--", "--check"]))
                .collect(),
            needs_database: false,
        });
        steps.push(Step {
            name: "clippy",
            args: strings(["clippy"])
                .chain(selection.clippy_args())
                .chain(strings(["--all-targets", "--", "-D", "warnings"]))
                .collect(),
            needs_database: false,
        });
    }
    let web_selected = !selection.has_selection || selection.packages.iter().any(|p| p == "web");
    if !args.no_lint && web_selected {
        // The console's browser half compiles only for wasm32 with `hydrate`: lint it there too.
        steps.push(Step {
            name: "clippy-wasm",
            args: strings([
                "clippy",
                "-p",
                "web",
                "--lib",
                "--target",
                "wasm32-unknown-unknown",
                "--no-default-features",
                "--features",
                "hydrate",
                "--",
                "-D",
                "warnings",
            ])
            .collect(),
            needs_database: false,
        });
    }
    if !args.no_deploy && !selection.has_selection {
        steps.push(Step {
            name: DEPLOY,
            args: Vec::new(),
            needs_database: false,
        });
    }
    let mut test = vec!["test".to_owned()];
    if !selection.has_selection {
        test.push("--workspace".to_owned());
    }
    test.extend(args.cargo_test_args.iter().cloned());
    steps.push(Step {
        name: "test",
        args: test,
        needs_database: true,
    });
    if !args.no_browser && web_selected {
        steps.push(Step {
            name: BROWSER,
            args: Vec::new(),
            needs_database: true,
        });
    }
    if !args.no_fuzz && !selection.has_selection {
        steps.push(Step {
            name: FUZZ,
            args: Vec::new(),
            needs_database: true,
        });
    }
    if !args.no_cluster && !selection.has_selection {
        // It brings its own primary and standby.
        steps.push(Step {
            name: CLUSTER,
            args: Vec::new(),
            needs_database: false,
        });
    }
    steps
}

pub fn run(args: &TestArgs) -> Result<()> {
    shutdown::install()?;
    let steps = plan(args);
    // Dropped at the end of this function, whatever happens: stops the test cluster.
    let mut database: Option<(String, Option<pg::StopOnDrop>)> = None;
    let mut summary: Vec<String> = Vec::new();
    let started = Instant::now();

    for step in &steps {
        if shutdown::requested() {
            bail!("interrupted before step `{}`", step.name);
        }
        if step.needs_database && database.is_none() {
            database = Some(test_database()?);
        }
        let admin_url = database.as_ref().map(|(url, _)| url.as_str()).unwrap_or_default();
        let (outcome, elapsed) = if step.name == BROWSER {
            let started = Instant::now();
            eprintln!("==> {BROWSER}: the console in Chromium against the whole stack");
            let outcome = crate::browser::run(admin_url);
            (outcome, started.elapsed())
        } else if step.name == DEPLOY {
            let started = Instant::now();
            eprintln!("==> {DEPLOY}: compose.yaml, the Dockerfile and k8s/, validated offline");
            let outcome = crate::deploy::run();
            (outcome, started.elapsed())
        } else if step.name == FUZZ {
            let started = Instant::now();
            eprintln!("==> {FUZZ}: schemathesis against both APIs, from their OpenAPI documents");
            let outcome = crate::fuzz::run(admin_url, &args.fuzz_seed);
            (outcome, started.elapsed())
        } else if step.name == CLUSTER {
            let started = Instant::now();
            eprintln!("==> {CLUSTER}: fault drills on primary + standby, replicas behind nginx");
            let outcome = crate::cluster::test();
            (outcome, started.elapsed())
        } else {
            let mut cargo = workspace::cargo();
            cargo.args(&step.args).env("SQLX_OFFLINE", "true");
            if step.needs_database {
                cargo.env("DATABASE_URL", admin_url);
            }
            run_step(step, &mut cargo)
        };
        summary.push(format!(
            "{} {} ({})",
            step.name,
            if outcome.is_ok() { "ok" } else { "FAILED" },
            secs(elapsed)
        ));
        if let Err(err) = outcome {
            eprintln!("xtask test: {}", summary.join(", "));
            if shutdown::requested() {
                bail!("interrupted during step `{}`", step.name);
            }
            return Err(err.context(format!("step `{}` failed", step.name)));
        }
    }
    drop(database);
    eprintln!(
        "xtask test: {}; all {} steps passed in {}",
        summary.join(", "),
        steps.len(),
        secs(started.elapsed())
    );
    Ok(())
}

fn run_step(step: &Step, cargo: &mut Command) -> (Result<()>, Duration) {
    eprintln!("==> {}: cargo {}", step.name, step.args.join(" "));
    let started = Instant::now();
    let outcome = shutdown::run_to_completion(cargo).and_then(|status| {
        if status.success() {
            Ok(())
        } else {
            Err(anyhow::anyhow!("cargo {} exited with {status}", step.args.join(" ")))
        }
    });
    let elapsed = started.elapsed();
    eprintln!(
        "<== {}: {} in {}",
        step.name,
        if outcome.is_ok() { "ok" } else { "failed" },
        secs(elapsed)
    );
    (outcome, elapsed)
}

/// The admin URL the tests get, and the guard of the cluster started for them (if any).
pub fn test_database() -> Result<(String, Option<pg::StopOnDrop>)> {
    match env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            note!("tests use DATABASE_URL from the environment as their admin URL");
            Ok((url, None))
        }
        _ => {
            let (url, guard) = pg::start_fresh_test_cluster(&workspace::target_dir()?)?;
            note!("tests use a fresh PostgreSQL: DATABASE_URL={url}");
            Ok((url, Some(guard)))
        }
    }
}

/// The packages picked in the pass-through args, so that `-- -p foo` lints only foo too.
#[derive(Debug, Default, PartialEq)]
struct Selection {
    packages: Vec<String>,
    excludes: Vec<String>,
    /// Whether the args already say which packages to test (then no `--workspace` is added).
    has_selection: bool,
}

impl Selection {
    /// Reads cargo's package options up to the `--` that starts the test binaries' own args.
    fn parse(args: &[String]) -> Self {
        let mut selection = Self::default();
        let mut args = args.iter().take_while(|arg| *arg != "--");
        while let Some(arg) = args.next() {
            let arg = arg.as_str();
            let (list, value) = if let Some(value) = arg.strip_prefix("--package=") {
                (&mut selection.packages, Some(value.to_owned()))
            } else if let Some(value) = arg.strip_prefix("--exclude=") {
                (&mut selection.excludes, Some(value.to_owned()))
            } else if arg == "-p" || arg == "--package" {
                (&mut selection.packages, args.next().cloned())
            } else if arg == "--exclude" {
                (&mut selection.excludes, args.next().cloned())
            } else if let Some(value) = arg.strip_prefix("-p") {
                (&mut selection.packages, Some(value.to_owned()))
            } else {
                if matches!(arg, "--workspace" | "--all") {
                    selection.has_selection = true;
                }
                continue;
            };
            list.extend(value);
        }
        selection.has_selection |= !selection.packages.is_empty();
        selection
    }

    fn fmt_args(&self) -> Vec<String> {
        if self.packages.is_empty() {
            vec!["--all".to_owned()]
        } else {
            self.package_args()
        }
    }

    fn clippy_args(&self) -> Vec<String> {
        if self.packages.is_empty() {
            let mut args = vec!["--workspace".to_owned()];
            for exclude in &self.excludes {
                args.extend(["--exclude".to_owned(), exclude.clone()]);
            }
            args
        } else {
            self.package_args()
        }
    }

    fn package_args(&self) -> Vec<String> {
        self.packages
            .iter()
            .flat_map(|package| ["-p".to_owned(), package.clone()])
            .collect()
    }
}

fn strings<const N: usize>(items: [&str; N]) -> impl Iterator<Item = String> {
    items.into_iter().map(str::to_owned)
}

fn secs(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn the_fuzz_seed_is_a_number_or_random() {
        assert!(matches!(
            crate::fuzz::parse_seed("random"),
            Ok(crate::fuzz::Seed::Random)
        ));
        assert!(matches!(
            crate::fuzz::parse_seed(crate::fuzz::PINNED_SEED),
            Ok(crate::fuzz::Seed::Pinned(_))
        ));
        for bad in ["", "-1", "0x10", "twelve"] {
            assert!(crate::fuzz::parse_seed(bad).is_err(), "{bad}");
        }
    }

    fn commands(no_lint: bool, extra: &str) -> Vec<String> {
        plan(&TestArgs {
            no_lint,
            no_browser: false,
            no_cluster: false,
            no_fuzz: false,
            fuzz_seed: crate::fuzz::Seed::Random,
            no_deploy: false,
            cargo_test_args: args(extra),
        })
        .iter()
        .map(|step| {
            if step.args.is_empty() {
                step.name.to_owned()
            } else {
                step.args.join(" ")
            }
        })
        .collect()
    }

    #[test]
    fn runs_everything_over_the_workspace_by_default() {
        assert_eq!(
            commands(false, ""),
            [
                "fmt --all -- --check",
                "clippy --workspace --all-targets -- -D warnings",
                "clippy -p web --lib --target wasm32-unknown-unknown --no-default-features --features hydrate -- -D warnings",
                "deploy",
                "test --workspace",
                "browser",
                "api-fuzz",
                "cluster",
            ]
        );
    }

    #[test]
    fn narrows_every_step_to_the_selected_packages() {
        assert_eq!(
            commands(false, "-p partida-testkit --package=xtask -- --nocapture -p ignored"),
            [
                "fmt -p partida-testkit -p xtask -- --check",
                "clippy -p partida-testkit -p xtask --all-targets -- -D warnings",
                "test -p partida-testkit --package=xtask -- --nocapture -p ignored",
            ]
        );
    }

    #[test]
    fn keeps_excludes_in_workspace_runs() {
        assert_eq!(
            commands(true, "--exclude e2e"),
            [
                "deploy",
                "test --workspace --exclude e2e",
                "browser",
                "api-fuzz",
                "cluster"
            ]
        );
        assert_eq!(commands(true, "-p web"), ["test -p web", "browser"]);
        assert_eq!(
            Selection::parse(&args("--workspace --exclude e2e")).clippy_args(),
            args("--workspace --exclude e2e")
        );
    }
}
