//! Ctrl-C, SIGTERM and SIGHUP handling.
//!
//! The signals only set a flag: xtask then stops what it started (services, the PostgreSQL it
//! launched) in an orderly way instead of dying and leaving them behind.

use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Replaces the default "terminate" action of SIGINT, SIGTERM and SIGHUP by setting the flag.
///
/// Children that share our process group (cargo builds, cargo test) still get the terminal's
/// Ctrl-C and stop by themselves; long-running children get their own process group and are
/// stopped by us.
pub fn install() -> Result<()> {
    for signal in [SIGINT, SIGTERM, SIGHUP] {
        signal_hook::flag::register(signal, &REQUESTED)
            .with_context(|| format!("installing a handler for signal {signal}"))?;
    }
    Ok(())
}

/// Whether a stop was asked for since [`install`].
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Runs a foreground command (a cargo build or test run) to completion.
///
/// A Ctrl-C in the terminal reaches it directly (same process group); a SIGTERM sent to xtask
/// alone (a CI timeout, `kill`) is passed on to it, so that a stop request never waits for a
/// whole test suite.
pub fn run_to_completion(command: &mut Command) -> Result<ExitStatus> {
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command.spawn().with_context(|| format!("could not run {program}"))?;
    let mut passed_on = false;
    loop {
        if let Some(status) = child.try_wait().with_context(|| format!("waiting for {program}"))? {
            return Ok(status);
        }
        if requested() && !passed_on {
            passed_on = true;
            if let Ok(pid) = i32::try_from(child.id()) {
                // ESRCH: it has just exited, which try_wait sees next time round.
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
        }
        thread::sleep(Duration::from_millis(100));
    }
}
