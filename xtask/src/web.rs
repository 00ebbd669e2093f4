//! The console's browser half: the `web` library built for wasm32 with `hydrate`, bound with
//! `wasm-bindgen`, and the CSS, laid out as the site `web` serves (`<site>/pkg/web.js`,
//! `web_bg.wasm`, `web.css`). cargo-leptos does this too; doing it here avoids a 16-minute tool
//! install on every fresh machine (docs/adr/0005-web-build.md).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{shutdown, workspace};

const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// Builds the site under `<target>/site` and returns that directory.
pub fn build_site(release: bool) -> Result<PathBuf> {
    let target = workspace::target_dir()?;
    let bindgen = wasm_bindgen()?;
    note!(
        "building the console's wasm ({})",
        if release { "release" } else { "debug" }
    );
    let mut cargo = workspace::cargo();
    cargo.args([
        "build",
        "-p",
        "web",
        "--lib",
        "--target",
        WASM_TARGET,
        "--no-default-features",
        "--features",
        "hydrate",
    ]);
    if release {
        cargo.arg("--release");
    }
    let status = shutdown::run_to_completion(&mut cargo)?;
    if shutdown::requested() {
        bail!("interrupted");
    }
    if !status.success() {
        bail!("building the console's wasm failed ({status})");
    }
    let profile = if release { "release" } else { "debug" };
    let wasm = target.join(WASM_TARGET).join(profile).join("web.wasm");
    let site = target.join("site");
    let pkg = site.join("pkg");
    fs::create_dir_all(&pkg).with_context(|| format!("creating {}", pkg.display()))?;
    let status = Command::new(&bindgen)
        .args(["--target", "web", "--out-name", "web", "--no-typescript", "--out-dir"])
        .arg(&pkg)
        .arg(&wasm)
        .status()
        .with_context(|| format!("running {}", bindgen.display()))?;
    if !status.success() {
        bail!("wasm-bindgen failed ({status})");
    }
    let css = workspace::root().join("web/style/main.css");
    fs::copy(&css, pkg.join("web.css")).with_context(|| format!("copying {}", css.display()))?;
    copy_dir(&workspace::root().join("web/public"), &site)?;
    note!("console site ready in {}", site.display());
    Ok(site)
}

/// The `wasm-bindgen` CLI, which must be the version of the wasm-bindgen crate in Cargo.lock.
fn wasm_bindgen() -> Result<PathBuf> {
    let wanted = locked_version("wasm-bindgen")?;
    let program = PathBuf::from("wasm-bindgen");
    let install = format!("cargo install wasm-bindgen-cli --version {wanted}");
    let output = Command::new(&program)
        .arg("--version")
        .output()
        .with_context(|| format!("wasm-bindgen is not installed; run `{install}`"))?;
    let found = String::from_utf8_lossy(&output.stdout);
    if !found.split_whitespace().any(|word| word == wanted) {
        bail!(
            "wasm-bindgen {wanted} is needed (Cargo.lock), found `{}`; run `{install}`",
            found.trim()
        );
    }
    Ok(program)
}

/// A package's version as Cargo.lock pins it.
fn locked_version(package: &str) -> Result<String> {
    let lock = fs::read_to_string(workspace::root().join("Cargo.lock")).context("reading Cargo.lock")?;
    let needle = format!("name = \"{package}\"\nversion = \"");
    let start = lock
        .find(&needle)
        .with_context(|| format!("{package} is not in Cargo.lock"))?
        + needle.len();
    let version = lock[start..].split('"').next().unwrap_or_default();
    Ok(version.to_owned())
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    let Ok(entries) = fs::read_dir(from) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry?;
        let destination = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            fs::create_dir_all(&destination)?;
            copy_dir(&entry.path(), &destination)?;
        } else {
            fs::copy(entry.path(), &destination).with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}
