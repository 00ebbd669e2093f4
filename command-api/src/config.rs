//! Configuration, parsed once from flags and environment.

use std::net::SocketAddr;

#[derive(Debug, clap::Parser)]
#[command(name = "command-api", about = "Partida's write API")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Subcommand>,
    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Subcommand {
    /// Apply the database migrations and exit.
    Migrate,
    /// Create, list and revoke API tokens.
    Tokens {
        #[command(subcommand)]
        command: partida_auth::cli::TokensCommand,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    #[arg(long, env = "COMMAND_API_ADDR", default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
    /// The primary's URL: the writer appends to the log there.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Requests that may wait for the writer before new ones get 503 `overloaded`.
    #[arg(long, env = "PARTIDA_WRITER_QUEUE", default_value_t = 4_096)]
    pub queue_capacity: usize,
    /// Commands per writer transaction.
    #[arg(long, env = "PARTIDA_WRITER_MAX_COMMANDS", default_value_t = 4_000)]
    pub max_batch_commands: usize,
    /// Postings per writer transaction.
    #[arg(long, env = "PARTIDA_WRITER_MAX_POSTINGS", default_value_t = 40_000)]
    pub max_batch_postings: usize,
    /// Transfers accepted by one `POST /v1/transfers/batch`.
    #[arg(long, env = "PARTIDA_BATCH_MAX_TRANSFERS", default_value_t = 1_000)]
    pub batch_max_transfers: usize,
    /// Postings accepted by one `POST /v1/transfers/batch`.
    #[arg(long, env = "PARTIDA_BATCH_MAX_POSTINGS", default_value_t = 10_000)]
    pub batch_max_postings: usize,
    /// A file holding the Ed25519 secret seed (64 hex digits) that signs checkpoints; no
    /// signing without it.
    #[arg(long, env = "PARTIDA_SIGNING_KEY_FILE")]
    pub signing_key_file: Option<std::path::PathBuf>,
    /// Seconds between signing rounds (a round signs only when the log grew).
    #[arg(long, env = "PARTIDA_CHECKPOINT_INTERVAL_SECS", default_value_t = 60)]
    pub checkpoint_interval_secs: u64,
    /// A directory where each checkpoint and the public keys are published as files.
    #[arg(long, env = "PARTIDA_CHECKPOINT_DIR")]
    pub checkpoint_dir: Option<std::path::PathBuf>,
    /// A URL each new checkpoint is POSTed to as JSON.
    #[arg(long, env = "PARTIDA_CHECKPOINT_WEBHOOK")]
    pub checkpoint_webhook: Option<String>,
    /// Standbys that must have replayed a position before it is signed (0 when none is set up).
    #[arg(long, env = "PARTIDA_CHECKPOINT_MIN_STANDBYS", default_value_t = 0)]
    pub checkpoint_min_standbys: usize,
    /// How long a signing round waits for those standbys before it answers `not_replicated`.
    #[arg(long, env = "PARTIDA_CHECKPOINT_REPLICATION_WAIT_MS", default_value_t = 10_000)]
    pub checkpoint_replication_wait_ms: u64,
    /// Milliseconds a statement may run before PostgreSQL cancels it (503 `unavailable`); 0: no
    /// bound. Not the writer's: its wait for the head lock is unbounded by design.
    #[arg(long, env = "PARTIDA_DB_STATEMENT_TIMEOUT_MS", default_value_t = 10_000)]
    pub statement_timeout_ms: u64,
    /// Milliseconds a session may sit idle inside a transaction before PostgreSQL ends it.
    #[arg(long, env = "PARTIDA_DB_IDLE_IN_TRANSACTION_TIMEOUT_MS", default_value_t = 30_000)]
    pub idle_in_transaction_timeout_ms: u64,
    /// Browser origins that may call this API from their pages (CORS), comma-separated, each
    /// `scheme://host[:port]`, e.g. `https://console.example.com`. None by default.
    #[arg(long, env = "PARTIDA_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    #[command(flatten)]
    pub auth: partida_auth::AuthConfig,
    /// How often the expiry sweeper looks for holds past their timeout, in milliseconds. One
    /// command-api instance sweeps at a time (the others stand by).
    #[arg(long, env = "PARTIDA_EXPIRY_INTERVAL_MS", default_value_t = 1_000)]
    pub expiry_interval_ms: u64,
    /// Log as JSON lines.
    #[arg(long, env = "LOG_JSON")]
    pub log_json: bool,
}

impl Config {
    /// Defaults for everything but the database; what tests start from.
    pub fn for_database(database_url: impl Into<String>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: database_url.into(),
            queue_capacity: 4_096,
            max_batch_commands: 4_000,
            max_batch_postings: 40_000,
            batch_max_transfers: 1_000,
            batch_max_postings: 10_000,
            signing_key_file: None,
            checkpoint_interval_secs: 60,
            checkpoint_dir: None,
            checkpoint_webhook: None,
            checkpoint_min_standbys: 0,
            checkpoint_replication_wait_ms: 10_000,
            statement_timeout_ms: 10_000,
            idle_in_transaction_timeout_ms: 30_000,
            cors_origins: Vec::new(),
            auth: partida_auth::AuthConfig::default(),
            expiry_interval_ms: 1_000,
            log_json: false,
        }
    }

    pub(crate) fn limits(&self) -> Limits {
        Limits {
            batch_max_transfers: self.batch_max_transfers,
            batch_max_postings: self.batch_max_postings,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub batch_max_transfers: usize,
    pub batch_max_postings: usize,
}

impl Limits {
    /// A body limit comfortably above the largest valid batch, so oversized batches get a
    /// precise 413 from the count check rather than a cut-off body.
    pub fn batch_body_bytes(&self) -> usize {
        (self.batch_max_postings * 400 + self.batch_max_transfers * 4_096).max(1 << 20)
    }
}
