//! One private cluster directory and the PostgreSQL tools that manage it.

use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, anyhow, bail};

use super::bin::PgBin;
use super::{SUPERUSER, run};

/// How long pg_ctl may wait for a start or stop, in seconds.
const PG_CTL_TIMEOUT_SECS: &str = "60";

/// Settings of every private cluster. The replication settings let a hot standby be attached
/// with pg_basebackup (the local multi-instance setup); 200 connections leave room for several
/// services and parallel tests with their pools.
const COMMON_SETTINGS: &[(&str, &str)] = &[
    ("listen_addresses", "'127.0.0.1'"),
    ("max_connections", "200"),
    ("wal_level", "replica"),
    ("max_wal_senders", "10"),
    ("hot_standby", "on"),
];

/// One cluster directory: `data/` (PGDATA), `sock/` (unix sockets), `log/postgres.log`.
pub(super) struct Cluster {
    bin: PgBin,
    pub(super) dir: PathBuf,
    /// The port the cluster is configured for (and started on).
    pub(super) port: u16,
    /// PostgreSQL refuses root, so its server tools run as `postgres` when we are root.
    as_postgres: bool,
}

impl Cluster {
    pub(super) fn new(dir: PathBuf, port: u16) -> Result<Self> {
        let as_postgres = nix::unistd::geteuid().is_root();
        if as_postgres {
            let user = nix::unistd::User::from_name(SUPERUSER).context("looking up user postgres")?;
            if user.is_none() {
                bail!(
                    "running as root, but PostgreSQL refuses to run as root and there is no \
                     `postgres` user to run it as; install the Debian package `postgresql` \
                     (apt-get install -y postgresql), which creates it"
                );
            }
        }
        Ok(Self {
            bin: PgBin::find()?,
            dir,
            port,
            as_postgres,
        })
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn socket_dir(&self) -> PathBuf {
        self.dir.join("sock")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.join("log").join("postgres.log")
    }

    pub(super) fn is_initialized(&self) -> bool {
        self.data_dir().join("PG_VERSION").is_file()
    }

    /// initdb plus our settings. A data directory without PG_VERSION is a failed earlier
    /// initdb (nothing usable in it), so it is removed rather than making initdb refuse.
    pub(super) fn init(&self, extra_settings: &[(&str, &str)]) -> Result<()> {
        let data = self.data_dir();
        note!("creating a PostgreSQL cluster in {}", data.display());
        if data.exists() {
            fs::remove_dir_all(&data).with_context(|| format!("removing the incomplete {}", data.display()))?;
        }
        self.make_server_dirs()?;

        let mut initdb = self.server_tool("initdb");
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8"]);
        if !extra_settings.is_empty() {
            // Test clusters are thrown away: skip initdb's final fsync.
            initdb.arg("--no-sync");
        }
        run(&mut initdb, "initdb").map_err(|err| self.hint_permissions(err))?;

        let settings: Vec<(&str, &str)> = COMMON_SETTINGS.iter().chain(extra_settings).copied().collect();
        self.append_settings(&settings)
    }

    /// The port of the running server of this data directory, or None when it is stopped.
    pub(super) fn running_port(&self) -> Result<Option<u16>> {
        let output = self
            .server_tool("pg_ctl")
            .arg("status")
            .arg("-D")
            .arg(self.data_dir())
            .output()
            .with_context(|| format!("could not run pg_ctl status ({})", self.bin.dir.display()))?;
        match output.status.code() {
            Some(0) => {}
            // 3: not running; 4: no accessible data directory.
            Some(3 | 4) => return Ok(None),
            _ => bail!(
                "pg_ctl status failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        }
        // postmaster.pid: pid, data dir, start time, port, socket dir, ...
        let pid_file = self.data_dir().join("postmaster.pid");
        let text = fs::read_to_string(&pid_file).with_context(|| format!("reading {}", pid_file.display()))?;
        let port = text
            .lines()
            .nth(3)
            .and_then(|line| line.trim().parse().ok())
            .ok_or_else(|| anyhow!("no port in {}", pid_file.display()))?;
        Ok(Some(port))
    }

    pub(super) fn start(&self) -> Result<()> {
        if TcpListener::bind((Ipv4Addr::LOCALHOST, self.port)).is_err() {
            bail!(
                "port {} on 127.0.0.1 is already in use by another program, so PostgreSQL \
                 cannot start there; set PARTIDA_PG_PORT to a free port (or stop that program)",
                self.port
            );
        }
        note!(
            "starting PostgreSQL {} on 127.0.0.1:{} (log: {})",
            self.bin.major,
            self.port,
            self.log_file().display()
        );
        let mut pg_ctl = self.server_tool("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_file())
            .args(["-w", "-t", PG_CTL_TIMEOUT_SECS])
            .args(["-o", &format!("-p {}", self.port)])
            .arg("start");
        run(&mut pg_ctl, "pg_ctl start").map_err(|err| {
            anyhow!(
                "{err:#}\nlast lines of {}:\n{}",
                self.log_file().display(),
                tail_of_file(&self.log_file(), 20)
            )
        })?;
        Ok(())
    }

    pub(super) fn stop(&self) -> Result<()> {
        self.stop_with("fast")
    }

    /// `pg_ctl stop -m <mode>`: `fast` (clean shutdown) or `immediate` (as after a crash: no
    /// shutdown checkpoint, crash recovery on the next start).
    pub(super) fn stop_with(&self, mode: &str) -> Result<()> {
        note!("stopping PostgreSQL ({}, mode {mode})", self.data_dir().display());
        let mut pg_ctl = self.server_tool("pg_ctl");
        pg_ctl
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", mode, "-w", "-t", PG_CTL_TIMEOUT_SECS, "stop"]);
        run(&mut pg_ctl, "pg_ctl stop")?;
        Ok(())
    }

    /// Makes this cluster's data directory a streaming copy of the server on `primary_port`
    /// (pg_basebackup -R: a hot standby that follows it), with our settings on top.
    pub(super) fn init_standby_of(&self, primary_port: u16, settings: &[(&str, &str)]) -> Result<()> {
        note!(
            "cloning the primary on port {primary_port} into {}",
            self.data_dir().display()
        );
        self.make_server_dirs()?;
        let mut basebackup = self.server_tool("pg_basebackup");
        basebackup
            .args(["-h", "127.0.0.1", "-p", &primary_port.to_string(), "-U", SUPERUSER])
            .arg("-D")
            .arg(self.data_dir())
            .args(["-R", "-X", "stream", "-c", "fast"]);
        run(&mut basebackup, "pg_basebackup")?;
        self.append_settings(settings)
    }

    /// Makes this cluster's data directory a copy of `base_backup` set up for archive recovery
    /// from `restore_command`: it replays the archived WAL to its end, then promotes.
    pub(super) fn init_restored_from(
        &self,
        base_backup: &Path,
        restore_command: &str,
        settings: &[(&str, &str)],
    ) -> Result<()> {
        note!("restoring {} into {}", base_backup.display(), self.data_dir().display());
        self.make_server_dirs()?;
        let mut copy = self.as_server_user("cp");
        copy.arg("-a").arg(base_backup.join(".")).arg(self.data_dir());
        run(&mut copy, "cp -a (the base backup)")?;
        let mut signal = self.as_server_user("touch");
        signal.arg(self.data_dir().join("recovery.signal"));
        run(&mut signal, "touch recovery.signal")?;
        let restore = format!("'{restore_command}'");
        let mut all = vec![("restore_command", restore.as_str())];
        all.extend_from_slice(settings);
        self.append_settings(&all)
    }

    /// A directory the server user owns (a WAL archive, a base backup).
    pub(super) fn make_private_dir(&self, path: &Path) -> Result<()> {
        self.make_server_dir(path, true)
    }

    /// A plain-format base backup of this (running) server into `path`, with the WAL it needs.
    pub(super) fn base_backup(&self, path: &Path) -> Result<()> {
        note!("taking a base backup into {}", path.display());
        self.make_private_dir(path)?;
        let mut basebackup = self.server_tool("pg_basebackup");
        basebackup
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", SUPERUSER])
            .arg("-D")
            .arg(path)
            .args(["-X", "stream", "-c", "fast"]);
        run(&mut basebackup, "pg_basebackup")?;
        Ok(())
    }

    fn make_server_dirs(&self) -> Result<()> {
        fs::create_dir_all(&self.dir).with_context(|| format!("creating {}", self.dir.display()))?;
        self.make_server_dir(&self.socket_dir(), false)?;
        self.make_server_dir(&self.dir.join("log"), false)?;
        self.make_server_dir(&self.data_dir(), true)
    }

    /// Appends `port`, the socket directory and `settings` to postgresql.conf (later lines win).
    fn append_settings(&self, settings: &[(&str, &str)]) -> Result<()> {
        let mut conf = format!(
            "\n# Added by `cargo xtask` (xtask/src/pg).\nport = {}\nunix_socket_directories = '{}'\n",
            self.port,
            self.socket_dir().display()
        );
        for (name, value) in settings {
            conf.push_str(&format!("{name} = {value}\n"));
        }
        let conf_path = self.data_dir().join("postgresql.conf");
        let mut text = fs::read_to_string(&conf_path).with_context(|| format!("reading {}", conf_path.display()))?;
        text.push_str(&conf);
        fs::write(&conf_path, text).with_context(|| format!("writing {}", conf_path.display()))
    }

    /// Runs one SQL command with psql against `database` and returns its unaligned output.
    pub(super) fn psql(&self, database: &str, sql: &str) -> Result<String> {
        let mut psql = self.client_tool("psql", self.port);
        psql.args(["-X", "-v", "ON_ERROR_STOP=1", "-d", database, "-tAc", sql]);
        Ok(run(&mut psql, "psql")?.trim().to_owned())
    }

    pub(super) fn ensure_database(&self, port: u16, name: &str) -> Result<()> {
        let mut psql = self.client_tool("psql", port);
        psql.args(["-X", "-d", "postgres", "-tAc"])
            .arg(format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"));
        if run(&mut psql, "psql")?.trim() == "1" {
            return Ok(());
        }
        note!("creating database {name}");
        let mut createdb = self.client_tool("createdb", port);
        createdb.arg(name);
        run(&mut createdb, "createdb")?;
        Ok(())
    }

    /// A server tool (initdb, pg_ctl): as `postgres` when we are root, and in its own process
    /// group so that a Ctrl-C in the terminal does not reach the server behind our back; xtask
    /// decides when to stop it.
    fn server_tool(&self, name: &str) -> Command {
        self.as_server_user(self.bin.dir.join(name))
    }

    /// A program run as the user that owns the server's files.
    fn as_server_user(&self, path: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = if self.as_postgres {
            let mut runuser = Command::new(runuser());
            runuser.args(["-u", SUPERUSER, "--"]).arg(path);
            runuser
        } else {
            Command::new(path)
        };
        command.process_group(0);
        command
    }

    /// A client tool (psql, createdb) connecting over TCP as the superuser.
    fn client_tool(&self, name: &str, port: u16) -> Command {
        let mut command = Command::new(self.bin.dir.join(name));
        command
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", SUPERUSER])
            .env("PGCONNECT_TIMEOUT", "10");
        command
    }

    /// Creates a directory the server writes to: owned by `postgres` when we are root; the data
    /// directory must be private (mode 700) or the server refuses it.
    fn make_server_dir(&self, path: &Path, private: bool) -> Result<()> {
        let mut install = Command::new("install");
        install.arg("-d");
        if private {
            install.args(["-m", "700"]);
        }
        if self.as_postgres {
            install.args(["-o", SUPERUSER, "-g", SUPERUSER]);
        }
        install.arg(path);
        run(&mut install, "install -d")?;
        Ok(())
    }

    /// A data directory made by another major version cannot be started; say so instead of
    /// letting the server log a cryptic error.
    pub(super) fn check_version(&self) -> Result<()> {
        let Ok(version) = fs::read_to_string(self.data_dir().join("PG_VERSION")) else {
            return Ok(());
        };
        let version = version.trim();
        if version != self.bin.major {
            bail!(
                "the cluster in {} was created by PostgreSQL {version}, but the binaries found \
                 ({}) are PostgreSQL {}; stop it and remove that directory to start afresh",
                self.dir.display(),
                self.bin.dir.display(),
                self.bin.major
            );
        }
        Ok(())
    }

    fn hint_permissions(&self, err: anyhow::Error) -> anyhow::Error {
        if self.as_postgres && format!("{err:#}").contains("Permission denied") {
            err.context(format!(
                "the `postgres` user must be able to enter every parent directory of {}",
                self.dir.display()
            ))
        } else {
            err
        }
    }
}

/// `runuser` lives in /usr/sbin on Debian, which a non-login root shell (CI, `env -i`) may not
/// have on its PATH.
fn runuser() -> PathBuf {
    ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from("runuser"))
}

fn tail_of_file(path: &Path, lines: usize) -> String {
    match fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(err) => format!("(cannot read it: {err})"),
    }
}
