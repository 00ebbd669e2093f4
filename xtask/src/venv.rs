//! Python virtualenvs under target/ with pinned packages from PyPI: the browser tests' driver,
//! the deployment validators. Made once, rebuilt only when the pins change.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The venv `target/partida/<name>` with exactly `packages` installed; returns its `bin/`.
pub fn ensure(target: &Path, name: &str, packages: &[&str]) -> Result<PathBuf> {
    let dir = target.join("partida").join(name);
    let bin = dir.join("bin");
    let stamp = dir.join("installed.txt");
    let wanted = packages.join("\n");
    if std::fs::read_to_string(&stamp).is_ok_and(|installed| installed == wanted) {
        return Ok(bin);
    }
    note!("installing {} into {}", packages.join(", "), dir.display());
    let status = Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(&dir)
        .status()
        .context("running python3 -m venv (Debian: apt-get install python3-venv)")?;
    if !status.success() {
        bail!("python3 -m venv failed ({status})");
    }
    let status = Command::new(bin.join("python"))
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
        .args(packages)
        .status()
        .context("running pip")?;
    if !status.success() {
        bail!("pip install {} failed ({status})", packages.join(" "));
    }
    std::fs::write(&stamp, wanted).context("writing the venv's stamp")?;
    Ok(bin)
}
