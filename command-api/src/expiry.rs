//! The expiry sweeper: appends the expiry of every hold past its timeout. One command-api
//! instance sweeps at a time (a session advisory lock on a dedicated connection, as the
//! projector leads); the others stand by and take over when its session ends.
//!
//! It reads `write_pending` (the open holds that can expire, kept by the writer) and submits
//! `Expire` commands through the same writer as every request. A client's post racing the sweep
//! is decided in the writer's order: whichever comes first resolves the hold, and the other is
//! refused (`pending_resolved`) or finds nothing left to expire.

use std::time::Duration;

use anyhow::Context;
use ledger::{Command, HoldAction, ResolveHold, TransferId};
use partida_eventstore::{CommandContext, Reply, Submission, Writer, micros_to_datetime};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgConnection};

/// The sweeper's advisory lock ("partida" + expiry 1).
const SWEEPER_LOCK: i64 = 0x7061_7274_6964_6501;

/// The most holds one sweep expires; a full sweep is followed by another at once.
const SWEEP_LIMIT: i64 = 1_000;

/// Who the expiries are recorded as, in their events' metadata.
const ACTOR: &str = "system:expiry-sweeper";

pub(crate) struct Sweeper {
    pub writer: Writer,
    pub options: PgConnectOptions,
    pub interval: Duration,
}

impl Sweeper {
    /// Sweeps, or stands by to sweep, until the task is dropped; starts over after any failure.
    pub async fn run(self) {
        loop {
            if let Err(error) = self.lead().await {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "expiry sweeper lost its session; starting over"
                );
            }
            tokio::time::sleep(self.interval).await;
        }
    }

    async fn lead(&self) -> anyhow::Result<()> {
        let mut session = self
            .options
            .connect()
            .await
            .context("connecting for the sweeper lock")?;
        loop {
            let leader: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(SWEEPER_LOCK)
                .fetch_one(&mut session)
                .await?;
            if leader {
                break;
            }
            tokio::time::sleep(self.interval).await;
        }
        tracing::info!("this instance sweeps expired holds");
        loop {
            let swept = self.sweep(&mut session).await?;
            if swept < SWEEP_LIMIT {
                tokio::time::sleep(self.interval).await;
            }
        }
    }

    /// Expires the holds due by this instance's clock, which the writer's batch time never
    /// precedes; returns how many were due.
    async fn sweep(&self, session: &mut PgConnection) -> anyhow::Result<i64> {
        let now = micros_to_datetime(partida_eventstore::now_micros());
        let due: Vec<String> =
            sqlx::query_scalar("SELECT id FROM write_pending WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2")
                .bind(now)
                .bind(SWEEP_LIMIT)
                .fetch_all(&mut *session)
                .await?;
        if due.is_empty() {
            return Ok(0);
        }
        let count = due.len() as i64;
        let context = CommandContext {
            actor: Some(ACTOR.to_owned()),
            ..CommandContext::default()
        };
        let submissions = due
            .into_iter()
            .filter_map(|id| TransferId::parse(id).ok())
            .map(|id| Submission {
                command: Command::ResolveHold(ResolveHold {
                    id,
                    action: HoldAction::Expire,
                }),
                context: context.clone(),
                idempotency_key: None,
                chain: None,
            })
            .collect();
        let replies = self.writer.submit_all(submissions).await;
        let expired = replies
            .iter()
            .filter(|r| matches!(r, Ok(Reply::Written { .. })))
            .count();
        let failed: Vec<_> = replies
            .iter()
            .filter(|r| !matches!(r, Ok(Reply::Written { .. } | Reply::Replayed { .. })))
            .collect();
        if let Some(first) = failed.first() {
            tracing::warn!(
                failed = failed.len(),
                ?first,
                "some holds could not be expired; the next sweep retries them"
            );
        }
        tracing::info!(expired, "expired holds");
        Ok(count)
    }
}
