//! Rebuilding the write-side state (`write_accounts`, `write_assets`, `write_pending`) from the log: the state
//! that decides overdrafts is derived data, so when it is found to differ from a replay
//! (`partida-audit verify --database-url`), the log wins.
//!
//! One transaction holds the head row lock for its whole length, so no writer commits between the
//! replay and the rewrite; writers wait, then continue on the rebuilt state.

use ledger::{Event, Map, State, StreamId};
use sqlx::PgPool;

use crate::log::events_after;
use crate::persist::{Accounts, Assets};

const PAGE: i64 = 10_000;

/// What a rebuild replayed and wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteSideRebuild {
    pub events: i64,
    pub assets: usize,
    pub accounts: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("position {position}: {message}")]
    Unreadable { position: i64, message: String },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub async fn rebuild_write_side(pool: &PgPool) -> Result<WriteSideRebuild, RebuildError> {
    let mut tx = pool.begin().await?;
    // Locks the head and gives its row a new version, so that a batch a writer decided on the
    // write side as it was before this rebuild cannot be written after it (see `persist`).
    let head: i64 = sqlx::query_scalar("UPDATE event_head SET position = position RETURNING position")
        .fetch_one(&mut *tx)
        .await?;
    let mut state = State::default();
    // Where each stream began: the write side records it with the row.
    let mut origins: Map<StreamId, i64> = Map::default();
    let mut after = 0;
    while after < head {
        let events = events_after(&mut *tx, after, PAGE.min(head - after)).await?;
        let Some(last) = events.last() else { break };
        after = last.position;
        for stored in &events {
            let event = Event::decode(&stored.event_type, stored.schema_version, &stored.data).map_err(|e| {
                RebuildError::Unreadable {
                    position: stored.position,
                    message: e.to_string(),
                }
            })?;
            origins.entry(event.stream_id()).or_insert(stored.position);
            state.apply(&event);
        }
    }
    sqlx::query("DELETE FROM write_accounts").execute(&mut *tx).await?;
    sqlx::query("DELETE FROM write_assets").execute(&mut *tx).await?;
    let assets = Assets::of(&state, &origins, state.assets.keys());
    sqlx::query(
        "INSERT INTO write_assets (code, scale, posted, position, held) \
         SELECT * FROM unnest($1::text[], $2::int2[], $3::int8[], $4::int8[], $5::int8[])",
    )
    .bind(&assets.codes)
    .bind(&assets.scales)
    .bind(&assets.posted)
    .bind(&assets.positions)
    .bind(&assets.held)
    .execute(&mut *tx)
    .await?;
    let accounts = Accounts::of(&state, &origins, state.accounts.keys());
    sqlx::query(
        "INSERT INTO write_accounts (id, asset, normal_side, debits_must_not_exceed_credits, \
             credits_must_not_exceed_debits, status, debits, credits, version, fingerprint, position, \
             pending_debits, pending_credits, revision) \
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[], $5::bool[], $6::text[], \
                              $7::int8[], $8::int8[], $9::int8[], $10::bytea[], $11::int8[], $12::int8[], \
                              $13::int8[], $14::int8[])",
    )
    .bind(&accounts.balances.ids)
    .bind(&accounts.assets)
    .bind(&accounts.sides)
    .bind(&accounts.no_overdraft)
    .bind(&accounts.no_credit)
    .bind(&accounts.balances.statuses)
    .bind(&accounts.balances.debits)
    .bind(&accounts.balances.credits)
    .bind(&accounts.balances.versions)
    .bind(&accounts.fingerprints)
    .bind(&accounts.positions)
    .bind(&accounts.balances.pending_debits)
    .bind(&accounts.balances.pending_credits)
    .bind(&accounts.balances.revisions)
    .execute(&mut *tx)
    .await?;
    // The holds that can still expire.
    let (ids, expiries): (Vec<&str>, Vec<_>) = state
        .transfers
        .iter()
        .filter_map(|(id, t)| {
            let hold = t.hold.as_ref().filter(|h| h.resolution.is_none())?;
            Some((id.as_str(), crate::time::micros_to_datetime(hold.expires_at_micros?)))
        })
        .unzip();
    sqlx::query("DELETE FROM write_pending").execute(&mut *tx).await?;
    sqlx::query("INSERT INTO write_pending (id, expires_at) SELECT * FROM unnest($1::text[], $2::timestamptz[])")
        .bind(ids)
        .bind(expiries)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(WriteSideRebuild {
        events: head,
        assets: assets.codes.len(),
        accounts: accounts.balances.ids.len(),
    })
}
