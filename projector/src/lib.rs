//! The projector: follows the log and maintains the read tables, exactly once.
//!
//! One instance leads (a session advisory lock on a dedicated connection); others wait and take
//! over when the leader's session ends. The leader wakes on NOTIFY, also polls, and catches up
//! after every reconnect, so a lost notification only delays. Each batch of events is applied in
//! one transaction that also moves the checkpoint with a compare-and-set, so a second writer
//! aborts instead of applying twice.

mod apply;
mod config;
mod follow;
mod http;
mod rebuild;
mod status;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::{Cli, Command, Config};
pub use rebuild::{RebuildReport, rebuild};
pub use status::Status;

/// The projection this projector maintains.
pub const PROJECTION: &str = "ledger";

pub struct Application {
    config: Config,
    listener: TcpListener,
    status: Arc<Status>,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        Ok(Self {
            config,
            listener,
            status: Arc::new(Status::default()),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn status(&self) -> Arc<Status> {
        self.status.clone()
    }

    /// Follows the log and serves health and metrics until `shutdown`.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let (stop, stopped) = watch::channel(false);
        let follower = tokio::spawn(follow::run(self.config.clone(), self.status.clone(), stopped));
        let router = http::router(self.status.clone());
        partida_service::serve(self.listener, router, shutdown).await?;
        let _ = stop.send(true);
        follower.await.context("the follower task panicked")?;
        Ok(())
    }
}
