//! query-api: serves the read tables and the log. It only reads, through its own database URL,
//! so it can run against a hot standby; read-your-writes comes from `min_position`, which it
//! waits for by polling (a standby cannot LISTEN).

mod config;
mod consistency;
mod read_model;
mod routes;

use std::future::Future;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::http::Method;
use sqlx::postgres::PgConnectOptions;
use tokio::net::TcpListener;

pub use config::{Cli, Config};
pub use routes::entries_page_sql;

#[derive(Clone)]
pub(crate) struct AppState {
    pub pool: partida_eventstore::ReadPool,
    pub model: Arc<read_model::ReadModel>,
    pub config: Arc<Config>,
    /// Turns true when shutdown starts; long-lived responses (live streams) end on it.
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    model: Arc<read_model::ReadModel>,
    pool: partida_eventstore::ReadPool,
    stopping: tokio::sync::watch::Sender<bool>,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let options = PgConnectOptions::from_str(config.read_url()).context("parsing the read database URL")?;
        let options = partida_eventstore::with_session_timeouts(
            options,
            config.statement_timeout_ms,
            config.idle_in_transaction_timeout_ms,
        );
        let acquire_timeout = std::time::Duration::from_millis(config.acquire_timeout_ms);
        let pool = partida_eventstore::ReadPool::new(options.clone(), config.max_connections, acquire_timeout);
        // Token lookups are cached and rare: a small pool of their own.
        let tokens = partida_eventstore::pool_options()
            .max_connections(2)
            .acquire_timeout(acquire_timeout)
            .connect_lazy_with(options);
        let auth = partida_auth::Authenticator::new(&config.auth, tokens)?;
        let cors = partida_service::cors::layer(&config.cors_origins, &[Method::GET]).map_err(anyhow::Error::msg)?;
        let model = Arc::new(read_model::ReadModel::default());
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let (stopping, stopping_rx) = tokio::sync::watch::channel(false);
        let state = AppState {
            pool: pool.clone(),
            model: model.clone(),
            config: Arc::new(config),
            stopping: stopping_rx,
        };
        Ok(Self {
            listener,
            router: routes::router(state, &auth, cors),
            model,
            pool,
            stopping,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let watcher = tokio::spawn(read_model::watch(self.model.clone(), self.pool.clone()));
        let stopping = self.stopping;
        let shutdown = async move {
            shutdown.await;
            stopping.send_replace(true);
        };
        let served = partida_service::serve(self.listener, self.router, shutdown).await;
        watcher.abort();
        self.pool.close().await;
        served
    }
}
