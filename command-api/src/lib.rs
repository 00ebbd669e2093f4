//! command-api: the only way into the log. It parses requests into domain commands, hands them to
//! the group-commit writer, and answers once their batch has committed.

mod config;
mod error;
mod expiry;
mod request;
mod routes;
mod signing;

use std::future::Future;
use std::net::SocketAddr;
use std::str::FromStr;

use anyhow::Context;
use axum::Router;
use axum::http::Method;
use partida_eventstore::{Writer, WriterConfig, WriterTask};
use sqlx::postgres::PgConnectOptions;
use tokio::net::TcpListener;

pub use config::{Cli, Config, Subcommand};

/// Shared by every handler.
#[derive(Clone)]
pub(crate) struct AppState {
    pub writer: Writer,
    /// For what is not the writer's: subject keys.
    pub pool: sqlx::PgPool,
    pub limits: config::Limits,
    /// Present when a signing key is configured.
    pub signing: Option<std::sync::Arc<signing::Signing>>,
}

/// Applies every pending migration, then returns.
pub async fn migrate(database_url: &str) -> anyhow::Result<()> {
    let pool = sqlx::PgPool::connect(database_url)
        .await
        .context("connecting to the database")?;
    partida_eventstore::MIGRATOR
        .run(&pool)
        .await
        .context("applying migrations")?;
    tracing::info!("migrations applied");
    Ok(())
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    writer: WriterTask,
    signing: Option<std::sync::Arc<signing::Signing>>,
    sweeper: expiry::Sweeper,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let options = PgConnectOptions::from_str(&config.database_url).context("parsing DATABASE_URL")?;
        let mut writer_config = WriterConfig::new(options.clone());
        writer_config.queue_capacity = config.queue_capacity;
        writer_config.max_batch_commands = config.max_batch_commands;
        writer_config.max_batch_postings = config.max_batch_postings;
        // For what is not the writer's: token lookups, subject keys and signing rounds.
        let pool = partida_eventstore::pool_options()
            .max_connections(4)
            .acquire_timeout(std::time::Duration::from_secs(3))
            .connect_lazy_with(partida_eventstore::with_session_timeouts(
                options.clone(),
                config.statement_timeout_ms,
                config.idle_in_transaction_timeout_ms,
            ));
        let auth = partida_auth::Authenticator::new(&config.auth, pool.clone())?;
        let signing = match &config.signing_key_file {
            Some(path) => {
                let seed = partida_eventstore::checkpoint::Signer::seed_from_file(path).map_err(anyhow::Error::msg)?;
                let signer = partida_eventstore::checkpoint::Signer::new(seed, config.checkpoint_min_standbys)
                    .with_replication_wait(std::time::Duration::from_millis(config.checkpoint_replication_wait_ms));
                tracing::info!(key_id = signer.key_id(), "checkpoints are signed");
                Some(std::sync::Arc::new(signing::Signing::new(
                    signer,
                    pool.clone(),
                    std::time::Duration::from_secs(config.checkpoint_interval_secs.max(1)),
                    config.checkpoint_dir.clone(),
                    config.checkpoint_webhook.clone(),
                )))
            }
            None => None,
        };
        let cors = partida_service::cors::layer(&config.cors_origins, &[Method::GET, Method::POST, Method::PATCH])
            .map_err(anyhow::Error::msg)?;
        let (writer, task) = Writer::spawn(writer_config);
        let sweeper = expiry::Sweeper {
            writer: writer.clone(),
            options,
            interval: std::time::Duration::from_millis(config.expiry_interval_ms.max(10)),
        };
        let state = AppState {
            writer,
            pool,
            limits: config.limits(),
            signing: signing.clone(),
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        Ok(Self {
            listener,
            router: routes::router(state, &auth, cors),
            writer: task,
            signing,
            sweeper,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Serves until `shutdown`, finishes in-flight requests, then drains the writer so every
    /// accepted command is answered before the process exits.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let rounds = self.signing.map(|signing| tokio::spawn(signing.run()));
        let sweeper = tokio::spawn(self.sweeper.run());
        partida_service::serve(self.listener, self.router, shutdown).await?;
        if let Some(rounds) = rounds {
            rounds.abort();
        }
        // Its session ends with the task, releasing the lock for another instance; its handle on
        // the writer goes with it, so the writer can drain.
        sweeper.abort();
        let _ = sweeper.await;
        self.writer.drained().await;
        Ok(())
    }
}
