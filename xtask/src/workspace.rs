//! Where things are: the workspace root, the cargo target directory, the cargo binary.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

/// The workspace root. xtask lives one level below it; the path is fixed at compile time,
/// which is what `cargo xtask` (an alias for `cargo run -p xtask`) guarantees to be current.
pub fn root() -> &'static Path {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir)
}

/// The cargo target directory, honouring `CARGO_TARGET_DIR` like cargo does (a relative value is
/// relative to the directory cargo was started from, which is our current directory).
pub fn target_dir() -> Result<PathBuf> {
    match env::var_os("CARGO_TARGET_DIR").filter(|dir| !dir.is_empty()) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                Ok(dir)
            } else {
                Ok(env::current_dir().context("reading the current directory")?.join(dir))
            }
        }
        None => Ok(root().join("target")),
    }
}

/// A `cargo` command run from the workspace root. Uses the same cargo that runs xtask (cargo sets
/// `CARGO` for `cargo run`), so a rustup toolchain override applies to the nested builds too.
pub fn cargo() -> Command {
    let program = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut command = Command::new(program);
    command.current_dir(root());
    command
}
