//! Applying events to the `ledger` projection's read tables.

mod changes;
mod write;

use ledger::Event;
use partida_eventstore::personal::Keys;
use partida_eventstore::{Payload, payloads_after};
use sqlx::{Executor, PgConnection};
use time::OffsetDateTime;

use changes::LiveAccounts;
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
    accounts: LiveAccounts,
}

impl Projection {
    pub async fn load(conn: &mut PgConnection) -> Result<Self, ApplyError> {
        let (generation, checkpoint): (i32, i64) =
            sqlx::query_as("SELECT generation, checkpoint FROM projections WHERE name = $1")
                .bind(PROJECTION)
                .fetch_one(&mut *conn)
                .await?;
        Ok(Self {
            generation,
            checkpoint,
            accounts: LiveAccounts::default(),
        })
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
            let started = std::time::Instant::now();
            let events = read_after(&mut *conn, self.checkpoint, batch_size).await?;
            let Some(&(last, ..)) = events.last() else {
                status.set_progress(self.checkpoint, self.checkpoint);
                return Ok(());
            };
            self.apply(conn, &events).await?;
            status.set_progress(last, last);
            status.batch_applied();
            metrics::histogram!("partida_projector_batch_events").record(events.len() as f64);
            metrics::histogram!("partida_projector_batch_seconds").record(started.elapsed().as_secs_f64());
            if (events.len() as i64) < batch_size {
                // That read reached the head: nothing more until the next wake-up.
                return Ok(());
            }
        }
    }

    /// One commit: the batch's effects, written only if the checkpoint moves from where this
    /// projector left it (compare-and-set in the same statement). A concurrent projector's
    /// statement waits on the pointer row, then finds it moved and writes nothing.
    async fn apply(&mut self, conn: &mut PgConnection, events: &Decoded) -> Result<(), ApplyError> {
        let (Some(&(first, ..)), Some(&(last, ..))) = (events.first(), events.last()) else {
            return Ok(());
        };
        if first != self.checkpoint + 1 {
            return Err(ApplyError::Gap {
                expected: self.checkpoint + 1,
                found: first,
            });
        }
        let written = self.write(conn, events, last).await;
        if written.is_err() {
            self.accounts.clear();
        }
        written
    }

    async fn write(&mut self, conn: &mut PgConnection, events: &Decoded, last: i64) -> Result<(), ApplyError> {
        let schema = schema_name(self.generation);
        // Read outside the write's transaction: whatever changed these rows since moved the
        // checkpoint too, and then the guarded write below writes nothing.
        let changes = changes::Changes::compute(conn, &schema, events, &self.accounts).await?;
        let guard = write::Move {
            generation: self.generation,
            from: self.checkpoint,
            to: last,
        };
        let moved = if changes.erased.is_empty() {
            // One statement, its own transaction.
            write::write(conn, &schema, &changes, Some(guard)).await?
        } else {
            // Erasures take more statements: one transaction around them all.
            conn.execute(sqlx::raw_sql("BEGIN")).await?;
            let written = write::write(conn, &schema, &changes, Some(guard)).await;
            let end = if matches!(written, Ok(true)) {
                "COMMIT"
            } else {
                "ROLLBACK"
            };
            // If this fails, the connection is broken and the follower starts over.
            let ended = conn.execute(sqlx::raw_sql(end)).await;
            let written = written?;
            ended?;
            written
        };
        if !moved {
            return Err(ApplyError::LostRace {
                expected: self.checkpoint,
            });
        }
        self.accounts.written(&changes);
        self.checkpoint = last;
        Ok(())
    }
}

/// Events read back into domain events, with their position and time.
pub(crate) type Decoded = Vec<(i64, OffsetDateTime, Event)>;

/// Up to `limit` events after `after`, decoded, with the personal data they seal opened: the
/// subjects' keys are read after the events, on the same connection, so an erasure committed
/// before that read is seen there or in the events of a later batch.
pub(crate) async fn read_after(conn: &mut PgConnection, after: i64, limit: i64) -> Result<Decoded, ApplyError> {
    let payloads = payloads_after(&mut *conn, after, limit).await?;
    let mut decoded = payloads.iter().map(decode).collect::<Result<Decoded, _>>()?;
    let keys = Keys::for_events(&mut *conn, decoded.iter().map(|(_, _, event)| event)).await?;
    for (_, _, event) in &mut decoded {
        if let Some(metadata) = event.metadata_mut() {
            keys.open(metadata);
        }
    }
    Ok(decoded)
}

/// One event's payload read back into its domain event, straight from the JSON text.
fn decode(payload: &Payload) -> Result<(i64, OffsetDateTime, Event), ApplyError> {
    let event = Event::decode_text(&payload.event_type, payload.schema_version, &payload.data).map_err(|source| {
        ApplyError::Decode {
            position: payload.position,
            source,
        }
    })?;
    Ok((payload.position, payload.recorded_at, event))
}

/// Writes the effects of `events` into the tables in `schema`, inside the caller's transaction.
pub(crate) async fn apply_events(conn: &mut PgConnection, schema: &str, events: &Decoded) -> Result<(), ApplyError> {
    let changes = changes::Changes::compute(conn, schema, events, &LiveAccounts::default()).await?;
    write::write(conn, schema, &changes, None).await?;
    Ok(())
}

/// Writes already computed changes into the tables in `schema`, inside the caller's transaction.
pub(crate) async fn write_changes(conn: &mut PgConnection, schema: &str, changes: &Changes) -> Result<(), ApplyError> {
    write::write(conn, schema, changes, None).await?;
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
