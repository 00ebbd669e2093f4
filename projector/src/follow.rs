//! Leadership and the follow loop.

use std::str::FromStr;
use std::sync::Arc;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgListener};
use sqlx::{Connection, PgConnection};
use tokio::sync::watch;

use crate::apply::Projection;
use crate::{Config, Status};

/// The session advisory lock that makes one projector the leader ("partida" + projection 1).
const LEADER_LOCK: i64 = 0x7061_7274_6964_6101;

/// How often the leader checks that its lock's session is alive, and drops its follower session's
/// plans (so they follow the read tables' sizes).
const CHECK_INTERVAL: std::time::Duration = partida_eventstore::PLAN_LIFETIME;

/// Leads or waits to lead until `stop`; recovers from every database failure by starting over.
pub(crate) async fn run(config: Config, status: Arc<Status>, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        match lead(&config, &status, &mut stop).await {
            Ok(()) => return,
            Err(error) => {
                status.set_leader(false);
                tracing::warn!(
                    error = format!("{error:#}"),
                    "projector lost its database session; starting over"
                );
                tokio::select! {
                    () = tokio::time::sleep(config.standby_interval()) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    }
}

/// Waits for the leadership lock, then follows the log while holding it. `Ok` means stopped.
async fn lead(config: &Config, status: &Status, stop: &mut watch::Receiver<bool>) -> anyhow::Result<()> {
    let mut lock = PgConnection::connect(&config.database_url)
        .await
        .context("connecting for the leader lock")?;
    loop {
        let acquired: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(LEADER_LOCK)
            .fetch_one(&mut lock)
            .await?;
        if acquired {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(config.standby_interval()) => {}
            _ = stop.changed() => return Ok(()),
        }
    }
    status.set_leader(true);
    tracing::info!("projector is the leader");
    let result = follow(config, status, &mut lock, stop).await;
    status.set_leader(false);
    // Closing the session releases the lock for a standby.
    let _ = lock.close().await;
    result
}

async fn follow(
    config: &Config,
    status: &Status,
    lock: &mut PgConnection,
    stop: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    // The follower's own session reads and applies every batch; its statements only probe keys
    // (`partida_eventstore::probing_keys`). A generic plan kept from while the read tables were
    // small (a fresh ledger opening its accounts) had scanned the whole read `accounts` table on
    // every batch for the rest of a bench run.
    let options = partida_eventstore::probing_keys(PgConnectOptions::from_str(&config.database_url)?);
    let mut session = PgConnection::connect_with(&options)
        .await
        .context("connecting the follower's session")?;
    let mut listener = match config.listen_notifications {
        true => {
            let mut listener = PgListener::connect(&config.database_url).await?;
            listener.listen(partida_eventstore::EVENTS_CHANNEL).await?;
            Some(listener)
        }
        false => None,
    };
    let mut projection = Projection::load(&mut session).await?;
    let mut checked = std::time::Instant::now();
    loop {
        let started = tokio::time::Instant::now();
        projection.catch_up(&mut session, config.batch_size, status).await?;
        let earliest_next = started + config.gather_after(started.elapsed());
        if checked.elapsed() >= CHECK_INTERVAL {
            // The lock lives exactly as long as its session: check that the session is still
            // there. (Between checks, the compare-and-set keeps a second leader from applying
            // anything twice.)
            sqlx::query("SELECT 1")
                .execute(&mut *lock)
                .await
                .context("the leader lock session is gone")?;
            session
                .clear_cached_statements()
                .await
                .context("dropping the follower's plans")?;
            checked = std::time::Instant::now();
        }
        let notified = async {
            match listener.as_mut() {
                // `None` means the listener lost its connection; it reconnects on the next call
                // and the loop catches up first, so nothing missed meanwhile is lost.
                Some(listener) => listener.try_recv().await.map(|_| ()),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            woke = notified => woke?,
            () = tokio::time::sleep(config.poll_interval()) => {}
            _ = stop.changed() => return Ok(()),
        }
        // Woken soon after the last catch-up: let more events gather first. Whatever notified
        // meanwhile is read by the next catch-up, so its notifications need no wake-up of their own.
        tokio::select! {
            () = tokio::time::sleep_until(earliest_next) => {}
            _ = stop.changed() => return Ok(()),
        }
        if let Some(listener) = listener.as_mut() {
            while listener.next_buffered().is_some() {}
        }
    }
}
