use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, clap::Parser)]
#[command(name = "query-api", about = "Partida's read API")]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    #[arg(long, env = "QUERY_API_ADDR", default_value = "127.0.0.1:8082")]
    pub listen: SocketAddr,
    /// Where to read: the primary or a hot standby.
    #[arg(long, env = "READ_DATABASE_URL", hide_env_values = true)]
    pub read_database_url: Option<String>,
    /// Used when no read URL is given.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    #[arg(long, env = "PARTIDA_QUERY_MAX_CONNECTIONS", default_value_t = 16)]
    pub max_connections: u32,
    /// How long a request waits for a free connection before it is answered 503 `unavailable`.
    #[arg(long, env = "PARTIDA_QUERY_ACQUIRE_TIMEOUT_MS", default_value_t = 3_000)]
    pub acquire_timeout_ms: u64,
    /// How long a read carrying `min_position` waits for the projection before 503 `not_caught_up`.
    #[arg(long, env = "PARTIDA_MIN_POSITION_WAIT_MS", default_value_t = 5_000)]
    pub min_position_wait_ms: u64,
    /// Milliseconds a statement may run before PostgreSQL cancels it (503 `unavailable`); 0: no
    /// bound. Below the 30 s request timeout, so a runaway read stops with its request.
    #[arg(long, env = "PARTIDA_DB_STATEMENT_TIMEOUT_MS", default_value_t = 20_000)]
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
    #[arg(long, env = "LOG_JSON")]
    pub log_json: bool,
}

impl Config {
    pub fn for_database(database_url: impl Into<String>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            read_database_url: Some(database_url.into()),
            database_url: None,
            max_connections: 4,
            acquire_timeout_ms: 3_000,
            min_position_wait_ms: 5_000,
            statement_timeout_ms: 20_000,
            idle_in_transaction_timeout_ms: 30_000,
            cors_origins: Vec::new(),
            auth: partida_auth::AuthConfig::default(),
            log_json: false,
        }
    }

    pub(crate) fn read_url(&self) -> &str {
        self.read_database_url
            .as_deref()
            .or(self.database_url.as_deref())
            .unwrap_or("postgres://localhost/partida")
    }

    pub(crate) fn min_position_wait(&self) -> Duration {
        Duration::from_millis(self.min_position_wait_ms)
    }
}
