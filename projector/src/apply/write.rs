//! Writes a batch's changes: one set-based statement per table.

use ledger::NormalSide;
use sqlx::PgConnection;

use super::changes::Changes;

fn side(normal_side: NormalSide) -> &'static str {
    match normal_side {
        NormalSide::Debit => "debit",
        NormalSide::Credit => "credit",
    }
}

pub(super) async fn write(conn: &mut PgConnection, schema: &str, changes: &Changes) -> Result<(), sqlx::Error> {
    insert_assets(conn, schema, changes).await?;
    write_accounts(conn, schema, changes).await?;
    insert_entries(conn, schema, changes).await?;
    write_transfers(conn, schema, changes).await?;
    add_totals(conn, schema, changes).await?;
    Ok(())
}

async fn insert_assets(conn: &mut PgConnection, schema: &str, changes: &Changes) -> Result<(), sqlx::Error> {
    if changes.assets.is_empty() {
        return Ok(());
    }
    let rows = &changes.assets;
    sqlx::query(&format!(
        "INSERT INTO {schema}.assets (code, scale, position, registered_at) \
         SELECT * FROM UNNEST($1::text[], $2::int2[], $3::int8[], $4::timestamptz[])"
    ))
    .bind(rows.iter().map(|r| r.code.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.scale).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.position).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.registered_at).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn write_accounts(conn: &mut PgConnection, schema: &str, changes: &Changes) -> Result<(), sqlx::Error> {
    let (opened, updated): (Vec<_>, Vec<_>) = changes.accounts.iter().partition(|(_, row)| row.opening.is_some());
    if !opened.is_empty() {
        let openings: Vec<_> = opened
            .iter()
            .filter_map(|(id, row)| row.opening.as_ref().map(|o| (id, row, o)))
            .collect();
        sqlx::query(&format!(
            "INSERT INTO {schema}.accounts (id, asset, name, normal_side, debits_must_not_exceed_credits, \
                 credits_must_not_exceed_debits, metadata, status, debits, credits, balance, opened_position, \
                 last_position, opened_at, updated_at) \
             SELECT i, a, n, s, f1, f2, m::jsonb, st, d, c, b, op, lp, oa, ua \
               FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bool[], $6::bool[], $7::text[], \
                           $8::text[], $9::int8[], $10::int8[], $11::int8[], $12::int8[], $13::int8[], \
                           $14::timestamptz[], $15::timestamptz[]) \
                 AS u(i, a, n, s, f1, f2, m, st, d, c, b, op, lp, oa, ua)"
        ))
        .bind(openings.iter().map(|(id, _, _)| id.as_str()).collect::<Vec<_>>())
        .bind(openings.iter().map(|(_, r, _)| r.asset.as_str()).collect::<Vec<_>>())
        .bind(openings.iter().map(|(_, _, o)| o.name.as_str()).collect::<Vec<_>>())
        .bind(openings.iter().map(|(_, r, _)| side(r.normal_side)).collect::<Vec<_>>())
        .bind(
            openings
                .iter()
                .map(|(_, _, o)| o.flags.debits_must_not_exceed_credits)
                .collect::<Vec<_>>(),
        )
        .bind(
            openings
                .iter()
                .map(|(_, _, o)| o.flags.credits_must_not_exceed_debits)
                .collect::<Vec<_>>(),
        )
        .bind(
            openings
                .iter()
                .map(|(_, _, o)| serde_json::Value::Object(o.metadata.clone()).to_string())
                .collect::<Vec<_>>(),
        )
        .bind(openings.iter().map(|(_, r, _)| r.status.as_str()).collect::<Vec<_>>())
        .bind(openings.iter().map(|(_, r, _)| r.debits).collect::<Vec<_>>())
        .bind(openings.iter().map(|(_, r, _)| r.credits).collect::<Vec<_>>())
        .bind(openings.iter().map(|(_, r, _)| r.balance()).collect::<Vec<_>>())
        .bind(openings.iter().map(|(_, _, o)| o.opened_position).collect::<Vec<_>>())
        .bind(openings.iter().map(|(_, r, _)| r.last_position).collect::<Vec<_>>())
        .bind(openings.iter().map(|(_, _, o)| o.opened_at).collect::<Vec<_>>())
        .bind(openings.iter().map(|(_, r, _)| r.updated_at).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    if !updated.is_empty() {
        sqlx::query(&format!(
            "UPDATE {schema}.accounts a \
                SET status = u.st, debits = u.d, credits = u.c, balance = u.b, last_position = u.lp, updated_at = u.ua \
               FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[], $5::int8[], $6::int8[], $7::timestamptz[]) \
                 AS u(i, st, d, c, b, lp, ua) \
              WHERE a.id = u.i"
        ))
        .bind(updated.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>())
        .bind(updated.iter().map(|(_, r)| r.status.as_str()).collect::<Vec<_>>())
        .bind(updated.iter().map(|(_, r)| r.debits).collect::<Vec<_>>())
        .bind(updated.iter().map(|(_, r)| r.credits).collect::<Vec<_>>())
        .bind(updated.iter().map(|(_, r)| r.balance()).collect::<Vec<_>>())
        .bind(updated.iter().map(|(_, r)| r.last_position).collect::<Vec<_>>())
        .bind(updated.iter().map(|(_, r)| r.updated_at).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn insert_entries(conn: &mut PgConnection, schema: &str, changes: &Changes) -> Result<(), sqlx::Error> {
    let rows = &changes.entries;
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(&format!(
        "INSERT INTO {schema}.entries (account_id, position, seq, transfer_id, side, amount, debits, credits, \
                                       balance, recorded_at) \
         SELECT * FROM UNNEST($1::text[], $2::int8[], $3::int4[], $4::text[], $5::text[], $6::int8[], $7::int8[], \
                              $8::int8[], $9::int8[], $10::timestamptz[])"
    ))
    .bind(rows.iter().map(|r| r.account_id.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.position).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.seq).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.transfer_id.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.side).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.amount).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.debits).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.credits).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.balance).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.recorded_at).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn write_transfers(conn: &mut PgConnection, schema: &str, changes: &Changes) -> Result<(), sqlx::Error> {
    let rows = &changes.transfers;
    if !rows.is_empty() {
        sqlx::query(&format!(
            "INSERT INTO {schema}.transfers (id, position, postings, metadata, reverses, recorded_at) \
             SELECT i, p, ps::jsonb, m::jsonb, r, at \
               FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::timestamptz[]) \
                 AS u(i, p, ps, m, r, at)"
        ))
        .bind(rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.position).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.postings.to_string()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.metadata.to_string()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.reverses.as_deref()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.recorded_at).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    if !changes.reversals.is_empty() {
        sqlx::query(&format!(
            "UPDATE {schema}.transfers t SET reversed_by = u.by \
               FROM UNNEST($1::text[], $2::text[]) AS u(original, by) WHERE t.id = u.original"
        ))
        .bind(
            changes
                .reversals
                .iter()
                .map(|(original, _)| original.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(changes.reversals.iter().map(|(_, by)| by.as_str()).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn add_totals(conn: &mut PgConnection, schema: &str, changes: &Changes) -> Result<(), sqlx::Error> {
    if changes.totals.is_empty() {
        return Ok(());
    }
    let totals = &changes.totals;
    sqlx::query(&format!(
        "INSERT INTO {schema}.totals AS t (asset, posted, accounts, transfers) \
         SELECT * FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::int8[]) \
         ON CONFLICT (asset) DO UPDATE SET posted = t.posted + EXCLUDED.posted, \
                                           accounts = t.accounts + EXCLUDED.accounts, \
                                           transfers = t.transfers + EXCLUDED.transfers"
    ))
    .bind(totals.keys().map(String::as_str).collect::<Vec<_>>())
    .bind(totals.values().map(|t| t.posted).collect::<Vec<_>>())
    .bind(totals.values().map(|t| t.accounts).collect::<Vec<_>>())
    .bind(totals.values().map(|t| t.transfers).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
}
