//! Finding PostgreSQL's server binaries.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Result, anyhow};

use super::run;

/// The directory with PostgreSQL's server binaries and their major version.
pub(super) struct PgBin {
    pub(super) dir: PathBuf,
    pub(super) major: String,
}

impl PgBin {
    pub(super) fn find() -> Result<Self> {
        let dir = bin_dir_candidates()
            .into_iter()
            .find(|dir| {
                ["initdb", "pg_ctl", "postgres"]
                    .iter()
                    .all(|tool| dir.join(tool).is_file())
            })
            .ok_or_else(|| {
                anyhow!(
                    "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in \
                     `pg_config --bindir` nor /usr/lib/postgresql/*/bin; install the Debian \
                     package `postgresql`: apt-get install -y postgresql"
                )
            })?;
        let version = run(Command::new(dir.join("pg_ctl")).arg("--version"), "pg_ctl --version")?;
        let major = major_version(&version)
            .ok_or_else(|| anyhow!("cannot read the version in {version:?}"))?
            .to_owned();
        Ok(Self { dir, major })
    }
}

/// `pg_config --bindir` first (it names the install the developer chose), then the Debian
/// layout, newest major version first.
fn bin_dir_candidates() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output()
        && output.status.success()
    {
        dirs.push(PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    }
    let mut versioned: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versioned.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    dirs.extend(versioned.into_iter().map(|(_, dir)| dir));
    dirs
}

/// "pg_ctl (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)" -> "15"; also "16beta1" -> "16".
fn major_version(version_output: &str) -> Option<&str> {
    let rest = version_output.split(") ").nth(1)?;
    let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_major_version() {
        assert_eq!(
            major_version("pg_ctl (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)\n"),
            Some("15")
        );
        assert_eq!(major_version("pg_ctl (PostgreSQL) 16beta1"), Some("16"));
        assert_eq!(major_version("pg_ctl 15"), None);
    }
}
