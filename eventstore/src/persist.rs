//! Writes a decided batch: every statement is set-based, one per table, whatever the batch size.

use sqlx::PgConnection;

use crate::EVENTS_CHANNEL;
use crate::batch::Pending;
use crate::load::Loaded;
use crate::time::micros_to_datetime;
use ledger::{NormalSide, StreamId};

pub(crate) async fn write(conn: &mut PgConnection, loaded: &Loaded, pending: &Pending) -> Result<(), sqlx::Error> {
    insert_events(conn, pending).await?;
    upsert_assets(conn, loaded, pending).await?;
    upsert_accounts(conn, loaded, pending).await?;
    insert_keys(conn, pending).await?;
    let head = pending.head_position();
    sqlx::query("UPDATE event_head SET position = $1, hash = $2, recorded_at = $3")
        .bind(head)
        .bind(&pending.head_hash[..])
        .bind(micros_to_datetime(pending.recorded_at))
        .execute(&mut *conn)
        .await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(EVENTS_CHANNEL)
        .bind(head.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn insert_events(conn: &mut PgConnection, pending: &Pending) -> Result<(), sqlx::Error> {
    let rows = &pending.rows;
    let data: Vec<String> = rows.iter().map(|r| r.data.to_string()).collect();
    let metadata: Vec<String> = rows.iter().map(|r| r.metadata.to_string()).collect();
    sqlx::query(
        "INSERT INTO events (position, event_id, stream_id, stream_version, event_type, schema_version, \
                             data, metadata, recorded_at, prev_hash, hash) \
         SELECT p, i, s, v, t, $6, d::jsonb, m::jsonb, $7, ph, h \
           FROM UNNEST($1::int8[], $2::uuid[], $3::text[], $4::int8[], $5::text[], \
                       $8::text[], $9::text[], $10::bytea[], $11::bytea[]) AS u(p, i, s, v, t, d, m, ph, h)",
    )
    .bind(rows.iter().map(|r| r.position).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.event_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.stream_id.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.stream_version).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.event_type).collect::<Vec<_>>())
    .bind(ledger::SCHEMA_VERSION)
    .bind(micros_to_datetime(pending.recorded_at))
    .bind(data)
    .bind(metadata)
    .bind(rows.iter().map(|r| &r.prev_hash[..]).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| &r.hash[..]).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn upsert_assets(conn: &mut PgConnection, loaded: &Loaded, pending: &Pending) -> Result<(), sqlx::Error> {
    if pending.dirty_assets.is_empty() {
        return Ok(());
    }
    let mut codes = Vec::new();
    let mut scales = Vec::new();
    let mut posted = Vec::new();
    let mut positions = Vec::new();
    for code in &pending.dirty_assets {
        let Some(asset) = loaded.state.assets.get(code) else {
            continue;
        };
        codes.push(code.as_str());
        scales.push(i16::from(asset.scale.get()));
        posted.push(asset.posted);
        positions.push(loaded.origins.get(&StreamId::Asset(code.clone())).copied().unwrap_or(0));
    }
    sqlx::query(
        "INSERT INTO write_assets (code, scale, posted, position) \
         SELECT * FROM UNNEST($1::text[], $2::int2[], $3::int8[], $4::int8[]) \
         ON CONFLICT (code) DO UPDATE SET posted = EXCLUDED.posted",
    )
    .bind(codes)
    .bind(scales)
    .bind(posted)
    .bind(positions)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn upsert_accounts(conn: &mut PgConnection, loaded: &Loaded, pending: &Pending) -> Result<(), sqlx::Error> {
    if pending.dirty_accounts.is_empty() {
        return Ok(());
    }
    let n = pending.dirty_accounts.len();
    let (mut ids, mut assets, mut sides, mut no_overdraft, mut no_credit) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut statuses, mut debits, mut credits, mut versions, mut fingerprints, mut positions) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for id in &pending.dirty_accounts {
        let Some(account) = loaded.state.accounts.get(id) else {
            continue;
        };
        ids.push(id.as_str());
        assets.push(account.asset.as_str());
        sides.push(match account.normal_side {
            NormalSide::Debit => "debit",
            NormalSide::Credit => "credit",
        });
        no_overdraft.push(account.flags.debits_must_not_exceed_credits);
        no_credit.push(account.flags.credits_must_not_exceed_debits);
        statuses.push(account.status.as_str());
        debits.push(account.debits);
        credits.push(account.credits);
        versions.push(account.version);
        fingerprints.push(&account.fingerprint[..]);
        positions.push(loaded.origins.get(&StreamId::Account(id.clone())).copied().unwrap_or(0));
    }
    sqlx::query(
        "INSERT INTO write_accounts (id, asset, normal_side, debits_must_not_exceed_credits, \
                                     credits_must_not_exceed_debits, status, debits, credits, version, \
                                     fingerprint, position) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bool[], $5::bool[], $6::text[], \
                              $7::int8[], $8::int8[], $9::int8[], $10::bytea[], $11::int8[]) \
         ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, debits = EXCLUDED.debits, \
                                        credits = EXCLUDED.credits, version = EXCLUDED.version",
    )
    .bind(ids)
    .bind(assets)
    .bind(sides)
    .bind(no_overdraft)
    .bind(no_credit)
    .bind(statuses)
    .bind(debits)
    .bind(credits)
    .bind(versions)
    .bind(fingerprints)
    .bind(positions)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn insert_keys(conn: &mut PgConnection, pending: &Pending) -> Result<(), sqlx::Error> {
    let keys = &pending.new_keys;
    if keys.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO idempotency_keys (key, request_hash, position, response, created_at) \
         SELECT k, h, p, r::jsonb, $5 FROM UNNEST($1::text[], $2::bytea[], $3::int8[], $4::text[]) AS u(k, h, p, r)",
    )
    .bind(keys.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>())
    .bind(keys.iter().map(|(_, r)| &r.request_hash[..]).collect::<Vec<_>>())
    .bind(keys.iter().map(|(_, r)| r.position).collect::<Vec<_>>())
    .bind(
        keys.iter()
            .map(|(_, r)| r.response.as_ref().map(ToString::to_string))
            .collect::<Vec<_>>(),
    )
    .bind(micros_to_datetime(pending.recorded_at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}
