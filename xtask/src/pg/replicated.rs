//! A primary with a streaming hot standby and a WAL archive: the database of the local
//! multi-instance topology (`cargo xtask cluster`), and what its restore drill restores from.
//!
//! Layout under `target/partida/<name>/`: `primary/`, `standby/` (pg_basebackup -R of the
//! primary), `archive/` (every WAL segment the primary completes, by `archive_command`),
//! `base-backup/` (taken right after the primary was created, so that a restore replays the whole
//! history from the archive), and `restored/` (the restore drill's new cluster).

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::cluster::Cluster;
use super::{database_url, database_url_as, free_port};

/// How long to wait for replication, archiving or recovery to get somewhere.
const WAIT: Duration = Duration::from_secs(60);

pub struct Replicated {
    primary: Cluster,
    standby: Cluster,
    dir: PathBuf,
}

impl Replicated {
    /// Creates (afresh) and starts a primary with database `database`, its base backup, and a
    /// hot standby; then makes replication synchronous, as in production, so that an
    /// acknowledged write is on both servers.
    pub fn start_fresh(target_dir: &Path, name: &str, database: &str) -> Result<Self> {
        let dir = target_dir.join("partida").join(name);
        let pair = Self {
            primary: Cluster::new(dir.join("primary"), free_port()?)?,
            standby: Cluster::new(dir.join("standby"), free_port()?)?,
            dir,
        };
        for leftover in [&pair.standby, &pair.primary, &pair.restored_cluster(0)?] {
            if leftover.is_initialized() && leftover.running_port()?.is_some() {
                note!(
                    "stopping a PostgreSQL left over from an earlier run ({})",
                    leftover.dir.display()
                );
                leftover.stop()?;
            }
        }
        match fs::remove_dir_all(&pair.dir) {
            Err(err) if err.kind() != ErrorKind::NotFound => {
                return Err(err).with_context(|| format!("removing {}", pair.dir.display()));
            }
            _ => {}
        }

        let archive = pair.archive_dir();
        let archive_command = format!("'test ! -f {0}/%f && cp %p {0}/%f'", archive.display());
        // Durable, as in production: the drills crash the primary and count acknowledged writes.
        pair.primary.init(&[
            ("archive_mode", "on"),
            ("archive_command", &archive_command),
            ("wal_keep_size", "'256MB'"),
        ])?;
        pair.primary.make_private_dir(&archive)?;
        pair.primary.start()?;
        pair.primary.ensure_database(pair.primary.port, database)?;
        pair.primary.base_backup(&pair.base_backup_dir())?;
        // Long reads on the standby are not cancelled by the primary's vacuum.
        pair.standby
            .init_standby_of(pair.primary.port, &[("hot_standby_feedback", "on")])?;
        pair.standby.start()?;
        pair.wait_for_streaming()?;
        pair.primary
            .psql("postgres", "ALTER SYSTEM SET synchronous_standby_names = '*'")?;
        pair.primary.psql("postgres", "SELECT pg_reload_conf()")?;
        Ok(pair)
    }

    pub fn primary_url(&self, database: &str) -> String {
        database_url(self.primary.port, database)
    }

    pub fn standby_url(&self, database: &str) -> String {
        database_url(self.standby.port, database)
    }

    /// The primary's URL logging in as `user` (trusted, like the superuser).
    pub fn primary_url_as(&self, database: &str, user: &str) -> String {
        database_url_as(self.primary.port, database, user)
    }

    /// The standby's URL logging in as `user`.
    pub fn standby_url_as(&self, database: &str, user: &str) -> String {
        database_url_as(self.standby.port, database, user)
    }

    /// One SQL command on the primary; its unaligned output.
    pub fn primary_sql(&self, database: &str, sql: &str) -> Result<String> {
        self.primary.psql(database, sql)
    }

    /// Stops the primary as a crash would (`-m immediate`: no shutdown checkpoint) and starts it
    /// again; it runs crash recovery, and the standby reconnects by itself.
    pub fn crash_and_restart_primary(&self) -> Result<()> {
        self.primary.stop_with("immediate")?;
        self.primary.start()?;
        self.wait_for_streaming()
    }

    /// The restore drill: closes the current WAL segment, waits until it is archived, then
    /// restores the base backup plus the archive into a new cluster and waits until it has
    /// replayed everything and been promoted. Returns it (stopped when dropped).
    pub fn restore(&self) -> Result<Restored> {
        let segment = self
            .primary
            .psql("postgres", "SELECT pg_walfile_name(pg_switch_wal())")?;
        let archived = self.archive_dir().join(&segment);
        let deadline = Instant::now() + WAIT;
        while !archived.is_file() {
            if Instant::now() > deadline {
                bail!("{} was not archived within {} s", archived.display(), WAIT.as_secs());
            }
            thread::sleep(Duration::from_millis(50));
        }
        let restored = self.restored_cluster(free_port()?)?;
        let restore_command = format!("cp {}/%f %p", self.archive_dir().display());
        restored.init_restored_from(
            &self.base_backup_dir(),
            &restore_command,
            // A restored copy must neither archive into the original's archive nor wait for a
            // synchronous standby it does not have.
            &[("archive_mode", "off"), ("synchronous_standby_names", "''")],
        )?;
        restored.start()?;
        let deadline = Instant::now() + WAIT;
        while restored.psql("postgres", "SELECT pg_is_in_recovery()")? != "f" {
            if Instant::now() > deadline {
                bail!("the restored cluster was still recovering after {} s", WAIT.as_secs());
            }
            thread::sleep(Duration::from_millis(100));
        }
        note!("restored up to WAL segment {segment} and promoted");
        Ok(Restored(Some(restored)))
    }

    fn wait_for_streaming(&self) -> Result<()> {
        let deadline = Instant::now() + WAIT;
        loop {
            let streaming = self.primary.psql(
                "postgres",
                "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'",
            );
            if streaming.as_deref().is_ok_and(|count| count == "1") {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the standby is not streaming from the primary after {} s (last: {streaming:?})",
                    WAIT.as_secs()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn archive_dir(&self) -> PathBuf {
        self.dir.join("archive")
    }

    fn base_backup_dir(&self) -> PathBuf {
        self.dir.join("base-backup")
    }

    fn restored_cluster(&self, port: u16) -> Result<Cluster> {
        Cluster::new(self.dir.join("restored"), port)
    }
}

impl Drop for Replicated {
    fn drop(&mut self) {
        for cluster in [&self.primary, &self.standby] {
            if cluster.is_initialized()
                && matches!(cluster.running_port(), Ok(Some(_)))
                && let Err(err) = cluster.stop()
            {
                eprintln!("xtask: error: {err:#}");
            }
        }
    }
}

/// A cluster restored from the archive; stopped when dropped.
pub struct Restored(Option<Cluster>);

impl Restored {
    pub fn url(&self, database: &str) -> String {
        database_url(self.0.as_ref().map_or(0, |cluster| cluster.port), database)
    }

    pub fn sql(&self, database: &str, sql: &str) -> Result<String> {
        match &self.0 {
            Some(cluster) => cluster.psql(database, sql),
            None => bail!("the restored cluster is gone"),
        }
    }
}

impl Drop for Restored {
    fn drop(&mut self) {
        if let Some(cluster) = self.0.take()
            && let Err(err) = cluster.stop()
        {
            eprintln!("xtask: error: {err:#}");
        }
    }
}
