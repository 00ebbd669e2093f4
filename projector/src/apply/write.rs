//! Writes a batch's changes in one statement: each read table's rows as `UNNEST` arrays in
//! data-modifying CTEs. One round trip whatever the batch holds. (Sibling CTEs cannot see each
//! other's rows, which is why a reversal in the same batch as its original is resolved in memory.)

use sqlx::PgConnection;

use super::changes::{AccountRow, Changes, Opening};

fn statement(schema: &str) -> String {
    format!(
        "WITH assets AS (
            INSERT INTO {schema}.assets (code, scale, position, registered_at)
            SELECT * FROM UNNEST($1::text[], $2::int2[], $3::int8[], $4::timestamptz[])
        ), opened AS (
            INSERT INTO {schema}.accounts (id, asset, name, normal_side, debits_must_not_exceed_credits,
                credits_must_not_exceed_debits, metadata, status, debits, credits, balance, opened_position,
                last_position, opened_at, updated_at, pending_debits, pending_credits, revision)
            SELECT i, a, n, s, f1, f2, m::jsonb, st, d, c, b, op, lp, oa, ua, pd, pc, rv
              FROM UNNEST($5::text[], $6::text[], $7::text[], $8::text[], $9::bool[], $10::bool[], $11::text[],
                          $12::text[], $13::int8[], $14::int8[], $15::int8[], $16::int8[], $17::int8[],
                          $18::timestamptz[], $19::timestamptz[], $62::int8[], $63::int8[], $64::int8[])
                AS u(i, a, n, s, f1, f2, m, st, d, c, b, op, lp, oa, ua, pd, pc, rv)
        ), updated AS (
            UPDATE {schema}.accounts a
               SET status = u.st, debits = u.d, credits = u.c, balance = u.b, last_position = u.lp, updated_at = u.ua,
                   pending_debits = u.pd, pending_credits = u.pc, revision = u.rv
              FROM UNNEST($20::text[], $21::text[], $22::int8[], $23::int8[], $24::int8[], $25::int8[],
                          $26::timestamptz[], $50::int8[], $51::int8[], $65::int8[])
                AS u(i, st, d, c, b, lp, ua, pd, pc, rv)
             WHERE a.id = u.i
        ), entries AS (
            INSERT INTO {schema}.entries (account_id, position, seq, transfer_id, side, amount, debits, credits,
                                          balance, recorded_at, effective_at)
            SELECT * FROM UNNEST($27::text[], $28::int8[], $29::int4[], $30::text[], $31::text[], $32::int8[],
                                 $33::int8[], $34::int8[], $35::int8[], $36::timestamptz[], $66::timestamptz[])
        ), transfers AS (
            INSERT INTO {schema}.transfers (id, position, postings, metadata, reverses, reversed_by, recorded_at,
                                            status, held, expires_at, resolved_position, resolved_at, effective_at)
            SELECT i, p, ps::jsonb, m::jsonb, r, rb, at, st, h::jsonb, x, rp, ra, ea
              FROM UNNEST($37::text[], $38::int8[], $39::text[], $40::text[], $41::text[], $42::text[],
                          $43::timestamptz[], $52::text[], $53::text[], $54::timestamptz[], $55::int8[],
                          $56::timestamptz[], $67::timestamptz[]) AS u(i, p, ps, m, r, rb, at, st, h, x, rp, ra, ea)
        ), resolved AS (
            UPDATE {schema}.transfers t
               SET status = u.st, postings = u.ps::jsonb, resolved_position = u.rp, resolved_at = u.ra
              FROM UNNEST($57::text[], $58::text[], $59::text[], $60::int8[], $61::timestamptz[])
                AS u(i, st, ps, rp, ra)
             WHERE t.id = u.i
        ), reversed AS (
            UPDATE {schema}.transfers t SET reversed_by = u.by
              FROM UNNEST($44::text[], $45::text[]) AS u(original, by) WHERE t.id = u.original
        )
        INSERT INTO {schema}.totals AS t (asset, posted, accounts, transfers)
        SELECT * FROM UNNEST($46::text[], $47::int8[], $48::int8[], $49::int8[])
        ON CONFLICT (asset) DO UPDATE SET posted = t.posted + EXCLUDED.posted,
                                          accounts = t.accounts + EXCLUDED.accounts,
                                          transfers = t.transfers + EXCLUDED.transfers"
    )
}

pub(super) async fn write(conn: &mut PgConnection, schema: &str, changes: &Changes) -> Result<(), sqlx::Error> {
    let assets = &changes.assets;
    let opened: Vec<(&String, &AccountRow, &Opening)> = changes
        .accounts
        .iter()
        .filter_map(|(id, row)| row.opening.as_ref().map(|o| (id, row, o)))
        .collect();
    let updated: Vec<(&String, &AccountRow)> = changes
        .accounts
        .iter()
        .filter(|(_, row)| row.opening.is_none())
        .collect();
    let entries = &changes.entries;
    let transfers = &changes.transfers;
    let totals = &changes.totals;
    let resolutions = &changes.resolutions;
    let sql = statement(schema);
    sqlx::query(&sql)
        // assets
        .bind(assets.iter().map(|r| r.code.as_str()).collect::<Vec<_>>())
        .bind(assets.iter().map(|r| r.scale).collect::<Vec<_>>())
        .bind(assets.iter().map(|r| r.position).collect::<Vec<_>>())
        .bind(assets.iter().map(|r| r.registered_at).collect::<Vec<_>>())
        // accounts opened in this batch
        .bind(opened.iter().map(|(id, _, _)| id.as_str()).collect::<Vec<_>>())
        .bind(opened.iter().map(|(_, r, _)| r.asset.as_str()).collect::<Vec<_>>())
        .bind(opened.iter().map(|(_, _, o)| o.name.as_str()).collect::<Vec<_>>())
        .bind(
            opened
                .iter()
                .map(|(_, r, _)| r.normal_side.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            opened
                .iter()
                .map(|(_, _, o)| o.flags.debits_must_not_exceed_credits)
                .collect::<Vec<_>>(),
        )
        .bind(
            opened
                .iter()
                .map(|(_, _, o)| o.flags.credits_must_not_exceed_debits)
                .collect::<Vec<_>>(),
        )
        .bind(
            opened
                .iter()
                .map(|(_, _, o)| serde_json::Value::Object(o.metadata.clone()).to_string())
                .collect::<Vec<_>>(),
        )
        .bind(opened.iter().map(|(_, r, _)| r.status.as_str()).collect::<Vec<_>>())
        .bind(opened.iter().map(|(_, r, _)| r.debits).collect::<Vec<_>>())
        .bind(opened.iter().map(|(_, r, _)| r.credits).collect::<Vec<_>>())
        .bind(opened.iter().map(|(_, r, _)| r.balance()).collect::<Vec<_>>())
        .bind(opened.iter().map(|(_, _, o)| o.opened_position).collect::<Vec<_>>())
        .bind(opened.iter().map(|(_, r, _)| r.last_position).collect::<Vec<_>>())
        .bind(opened.iter().map(|(_, _, o)| o.opened_at).collect::<Vec<_>>())
        .bind(opened.iter().map(|(_, r, _)| r.updated_at).collect::<Vec<_>>())
        // accounts changed
        .bind(updated.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>())
        .bind(updated.iter().map(|(_, r)| r.status.as_str()).collect::<Vec<_>>())
        .bind(updated.iter().map(|(_, r)| r.debits).collect::<Vec<_>>())
        .bind(updated.iter().map(|(_, r)| r.credits).collect::<Vec<_>>())
        .bind(updated.iter().map(|(_, r)| r.balance()).collect::<Vec<_>>())
        .bind(updated.iter().map(|(_, r)| r.last_position).collect::<Vec<_>>())
        .bind(updated.iter().map(|(_, r)| r.updated_at).collect::<Vec<_>>())
        // entries
        .bind(entries.iter().map(|r| r.account_id.as_str()).collect::<Vec<_>>())
        .bind(entries.iter().map(|r| r.position).collect::<Vec<_>>())
        .bind(entries.iter().map(|r| r.seq).collect::<Vec<_>>())
        .bind(entries.iter().map(|r| r.transfer_id.as_str()).collect::<Vec<_>>())
        .bind(entries.iter().map(|r| r.side).collect::<Vec<_>>())
        .bind(entries.iter().map(|r| r.amount).collect::<Vec<_>>())
        .bind(entries.iter().map(|r| r.debits).collect::<Vec<_>>())
        .bind(entries.iter().map(|r| r.credits).collect::<Vec<_>>())
        .bind(entries.iter().map(|r| r.balance).collect::<Vec<_>>())
        .bind(entries.iter().map(|r| r.recorded_at).collect::<Vec<_>>())
        // transfers
        .bind(transfers.iter().map(|r| r.id.as_str()).collect::<Vec<_>>())
        .bind(transfers.iter().map(|r| r.position).collect::<Vec<_>>())
        .bind(
            transfers
                .iter()
                .map(|r| r.resolution.as_ref().map_or(&r.postings, |o| &o.postings).to_string())
                .collect::<Vec<_>>(),
        )
        .bind(transfers.iter().map(|r| r.metadata.to_string()).collect::<Vec<_>>())
        .bind(transfers.iter().map(|r| r.reverses.as_deref()).collect::<Vec<_>>())
        .bind(transfers.iter().map(|r| r.reversed_by.as_deref()).collect::<Vec<_>>())
        .bind(transfers.iter().map(|r| r.recorded_at).collect::<Vec<_>>())
        // reversals of earlier transfers
        .bind(
            changes
                .reversals
                .iter()
                .map(|(original, _)| original.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(changes.reversals.iter().map(|(_, by)| by.as_str()).collect::<Vec<_>>())
        // totals
        .bind(totals.keys().map(String::as_str).collect::<Vec<_>>())
        .bind(totals.values().map(|t| t.posted).collect::<Vec<_>>())
        .bind(totals.values().map(|t| t.accounts).collect::<Vec<_>>())
        .bind(totals.values().map(|t| t.transfers).collect::<Vec<_>>())
        // added with holds: the changed accounts' pending amounts
        .bind(updated.iter().map(|(_, r)| r.pending_debits).collect::<Vec<_>>())
        .bind(updated.iter().map(|(_, r)| r.pending_credits).collect::<Vec<_>>())
        // the transfers' status, holds and resolutions in this batch
        .bind(
            transfers
                .iter()
                .map(|r| r.resolution.as_ref().map_or(r.status, |o| o.status))
                .collect::<Vec<_>>(),
        )
        .bind(
            transfers
                .iter()
                .map(|r| r.held.as_ref().map(ToString::to_string))
                .collect::<Vec<_>>(),
        )
        .bind(transfers.iter().map(|r| r.expires_at).collect::<Vec<_>>())
        .bind(
            transfers
                .iter()
                .map(|r| r.resolution.as_ref().map(|o| o.position))
                .collect::<Vec<_>>(),
        )
        .bind(
            transfers
                .iter()
                .map(|r| r.resolution.as_ref().map(|o| o.at))
                .collect::<Vec<_>>(),
        )
        // resolutions of earlier holds
        .bind(resolutions.iter().map(|r| r.id.as_str()).collect::<Vec<_>>())
        .bind(resolutions.iter().map(|r| r.status).collect::<Vec<_>>())
        .bind(resolutions.iter().map(|r| r.postings.to_string()).collect::<Vec<_>>())
        .bind(resolutions.iter().map(|r| r.position).collect::<Vec<_>>())
        .bind(resolutions.iter().map(|r| r.at).collect::<Vec<_>>())
        // the opened accounts' pending amounts
        .bind(opened.iter().map(|(_, r, _)| r.pending_debits).collect::<Vec<_>>())
        .bind(opened.iter().map(|(_, r, _)| r.pending_credits).collect::<Vec<_>>())
        // added with conditions: revisions
        .bind(opened.iter().map(|(_, r, _)| r.revision).collect::<Vec<_>>())
        .bind(updated.iter().map(|(_, r)| r.revision).collect::<Vec<_>>())
        // added with effective dates: set only where they differ from the recorded time
        .bind(entries.iter().map(|r| r.effective_at).collect::<Vec<_>>())
        .bind(transfers.iter().map(|r| r.effective_at).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    Ok(())
}
