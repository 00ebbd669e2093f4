//! Applying events to the `ledger` projection's read tables.

mod changes;
mod write;

use partida_eventstore::{StoredEvent, events_after};
use sqlx::{Executor, PgConnection};

pub(crate) use changes::{Cache, Changes, EntryRow, TABLES};

use crate::{PROJECTION, Status};

#[derive(Debug, thiserror::Error)]
pub(crate) enum ApplyError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("the projection pointer moved away from checkpoint {expected}")]
    LostRace { expected: i64 },
    #[error("expected event {expected} next, read {found}")]
    Gap { expected: i64, found: i64 },
    #[error("event {position} cannot be read: {source}")]
    Decode { position: i64, source: ledger::DecodeError },
}

/// The projection's pointer: which generation of tables is live and how far it has applied.
pub(crate) struct Projection {
    generation: i32,
    checkpoint: i64,
}

impl Projection {
    pub async fn load(conn: &mut PgConnection) -> Result<Self, ApplyError> {
        let (generation, checkpoint): (i32, i64) =
            sqlx::query_as("SELECT generation, checkpoint FROM projections WHERE name = $1")
                .bind(PROJECTION)
                .fetch_one(&mut *conn)
                .await?;
        Ok(Self { generation, checkpoint })
    }

    /// Applies every event after the checkpoint, `batch_size` per transaction. When someone else
    /// moved the pointer (a rebuild switched generations, or another projector won a race), it
    /// reloads the pointer and goes on from there.
    pub async fn catch_up(
        &mut self,
        conn: &mut PgConnection,
        batch_size: i64,
        status: &Status,
    ) -> Result<(), ApplyError> {
        loop {
            match self.catch_up_once(conn, batch_size, status).await {
                Err(ApplyError::LostRace { expected }) => {
                    *self = Self::load(conn).await?;
                    tracing::info!(
                        expected,
                        generation = self.generation,
                        checkpoint = self.checkpoint,
                        "the projection pointer moved; following it"
                    );
                }
                other => return other,
            }
        }
    }

    async fn catch_up_once(
        &mut self,
        conn: &mut PgConnection,
        batch_size: i64,
        status: &Status,
    ) -> Result<(), ApplyError> {
        loop {
            let events = events_after(&mut *conn, self.checkpoint, batch_size).await?;
            let Some(last) = events.last().map(|e| e.position) else {
                status.set_progress(self.checkpoint, self.checkpoint);
                return Ok(());
            };
            self.apply(conn, &events).await?;
            status.set_progress(last, last);
            status.batch_applied();
            if (events.len() as i64) < batch_size {
                // That read reached the head: nothing more until the next wake-up.
                return Ok(());
            }
        }
    }

    /// One transaction: move the checkpoint (compare-and-set), then write the batch's effects.
    async fn apply(&mut self, conn: &mut PgConnection, events: &[StoredEvent]) -> Result<(), ApplyError> {
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return Ok(());
        };
        if first.position != self.checkpoint + 1 {
            return Err(ApplyError::Gap {
                expected: self.checkpoint + 1,
                found: first.position,
            });
        }
        let applied = self.apply_in_transaction(conn, events, last.position).await;
        if applied.is_err() {
            // A failed statement leaves the transaction aborted: end it before the connection is
            // used again (if this fails too, the connection is broken and the follower starts over).
            let _ = conn.execute(sqlx::raw_sql("ROLLBACK")).await;
        }
        applied?;
        self.checkpoint = last.position;
        Ok(())
    }

    async fn apply_in_transaction(
        &self,
        conn: &mut PgConnection,
        events: &[StoredEvent],
        last: i64,
    ) -> Result<(), ApplyError> {
        // BEGIN and the compare-and-set in one round trip (the values are integers). The pointer
        // row is the projection's lock: a concurrent writer blocks here, then finds the checkpoint
        // (or the generation) moved and applies nothing.
        let begin = format!(
            "BEGIN; UPDATE projections SET checkpoint = {last}, updated_at = now() \
              WHERE name = '{PROJECTION}' AND generation = {} AND checkpoint = {}",
            self.generation, self.checkpoint
        );
        let moved = conn.execute(sqlx::raw_sql(&begin)).await?.rows_affected();
        if moved != 1 {
            // The caller ends the transaction, as for every error.
            return Err(ApplyError::LostRace {
                expected: self.checkpoint,
            });
        }
        apply_events(conn, &schema_name(self.generation), events).await?;
        conn.execute(sqlx::raw_sql("COMMIT")).await?;
        Ok(())
    }
}

/// Writes the effects of `events` into the tables in `schema`, inside the caller's transaction.
pub(crate) async fn apply_events(
    conn: &mut PgConnection,
    schema: &str,
    events: &[StoredEvent],
) -> Result<(), ApplyError> {
    let changes = changes::Changes::compute(conn, schema, events).await?;
    write::write(conn, schema, &changes).await?;
    Ok(())
}

/// Writes already computed changes into the tables in `schema`, inside the caller's transaction.
pub(crate) async fn write_changes(conn: &mut PgConnection, schema: &str, changes: &Changes) -> Result<(), ApplyError> {
    write::write(conn, schema, changes).await?;
    Ok(())
}

/// Inserts entries alone, inside the caller's transaction (a rebuild's second writer).
pub(crate) async fn write_entries(
    conn: &mut PgConnection,
    schema: &str,
    entries: &[EntryRow],
) -> Result<(), ApplyError> {
    write::write_entries(conn, schema, entries).await?;
    Ok(())
}

/// The schema holding generation `generation` of the read tables.
pub(crate) fn schema_name(generation: i32) -> String {
    format!("ledger_g{generation}")
}
