//! Writes a batch's changes in one statement: each read table's rows as arrays in data-modifying
//! CTEs, unnested in the select list as the writer's are (`partida_eventstore`'s `persist`: no
//! tuplestore in between). One round trip whatever the batch holds. Sibling CTEs cannot see each
//! other's rows, and one statement cannot update a row twice, so everything a batch does to a
//! row is gathered in memory first: a transfer opened in the batch is inserted as it ends the
//! batch, and one applied before gets a single update.

use ledger::Metadata;
use partida_eventstore::personal;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{PgConnection, Postgres, Row};

use super::changes::{AccountRow, Changes, EntryRow, Opening};
use crate::PROJECTION;

/// The projection pointer's move that a live batch's writes depend on: from checkpoint `from`
/// of generation `generation` to `to`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Move {
    pub generation: i32,
    pub from: i64,
    pub to: i64,
}

/// The tables a batch has rows for, by the statement's parts: a part with no rows would write
/// nothing, but its table and indexes would still be opened and locked at every execution. A
/// batch of plain transfers writes four of the seven.
#[derive(Clone, Copy)]
struct Parts {
    assets: bool,
    opened: bool,
    updated: bool,
    entries: bool,
    transfers: bool,
    earlier: bool,
    totals: bool,
}

/// Parameters are numbered table by table, in the order they are bound in [`write_rows`], and
/// every variant takes them all (those of the parts left out go unreferenced: sqlx sends each
/// parameter's type); a guarded statement's move is `$69`-`$71`. Guarded, the statement first
/// moves the pointer (compare-and-set) and writes every row only if that moved it: a batch is one
/// statement and, outside a transaction, one commit. Its one result row says whether it moved
/// the pointer (a rebuild's unguarded statement always says so).
fn statement(schema: &str, guarded: bool, parts: Parts) -> String {
    let guard = if guarded { "EXISTS (SELECT FROM moved)" } else { "true" };
    let moved = || {
        format!(
            "moved AS (
            UPDATE projections SET checkpoint = $69, updated_at = now()
             WHERE name = '{PROJECTION}' AND generation = $70 AND checkpoint = $71
            RETURNING 1
        )"
        )
    };
    let assets = || {
        format!(
            "assets AS (
            INSERT INTO {schema}.assets (code, scale, position, registered_at)
            SELECT unnest($1::text[]), unnest($2::int2[]), unnest($3::int8[]), unnest($4::timestamptz[]) WHERE {guard}
        )"
        )
    };
    let opened = || {
        format!(
            "opened AS (
            INSERT INTO {schema}.accounts (id, asset, name, normal_side, debits_must_not_exceed_credits,
                credits_must_not_exceed_debits, metadata, status, debits, credits, balance, pending_debits,
                pending_credits, revision, opened_position, last_position, opened_at, updated_at)
            SELECT unnest($5::text[]), unnest($6::text[]), unnest($7::text[]), unnest($8::text[]),
                   unnest($9::bool[]), unnest($10::bool[]), unnest($11::text[])::jsonb, unnest($12::text[]),
                   unnest($13::int8[]), unnest($14::int8[]), unnest($15::int8[]), unnest($16::int8[]),
                   unnest($17::int8[]), unnest($18::int8[]), unnest($19::int8[]), unnest($20::int8[]),
                   unnest($21::timestamptz[]), unnest($22::timestamptz[])
             WHERE {guard}
        )"
        )
    };
    let updated = || {
        format!(
            "updated AS (
            UPDATE {schema}.accounts a
               SET status = u.st, debits = u.d, credits = u.c, balance = u.b, pending_debits = u.pd,
                   pending_credits = u.pc, revision = u.rv, last_position = u.lp, updated_at = u.ua,
                   metadata = CASE WHEN u.m IS NULL THEN a.metadata ELSE metadata_patched(a.metadata, u.m::jsonb) END
              FROM (SELECT unnest($23::text[]) AS i, unnest($24::text[]) AS st, unnest($25::int8[]) AS d,
                           unnest($26::int8[]) AS c, unnest($27::int8[]) AS b, unnest($28::int8[]) AS pd,
                           unnest($29::int8[]) AS pc, unnest($30::int8[]) AS rv, unnest($31::int8[]) AS lp,
                           unnest($32::timestamptz[]) AS ua, unnest($33::text[]) AS m) AS u
             WHERE a.id = u.i AND {guard}
        )"
        )
    };
    let entries = || format!("entries AS ({} WHERE {guard})", insert_entries(schema, 34));
    let transfers = || {
        format!(
            "transfers AS (
            INSERT INTO {schema}.transfers (id, position, postings, metadata, reverses, reversed_by, recorded_at,
                                            effective_at, status, held, expires_at, resolved_position, resolved_at)
            SELECT unnest($45::text[]), unnest($46::int8[]), unnest($47::text[])::jsonb,
                   unnest($48::text[])::jsonb, unnest($49::text[]), unnest($50::text[]),
                   unnest($51::timestamptz[]), unnest($52::timestamptz[]), unnest($53::text[]),
                   unnest($54::text[])::jsonb, unnest($55::timestamptz[]), unnest($56::int8[]),
                   unnest($57::timestamptz[])
             WHERE {guard}
        )"
        )
    };
    let earlier = || {
        format!(
            "earlier AS (
            UPDATE {schema}.transfers t
               SET status = coalesce(u.st, t.status), postings = coalesce(u.ps::jsonb, t.postings),
                   resolved_position = coalesce(u.rp, t.resolved_position),
                   resolved_at = coalesce(u.ra, t.resolved_at), reversed_by = coalesce(u.rb, t.reversed_by),
                   metadata = CASE WHEN u.m IS NULL THEN t.metadata ELSE metadata_patched(t.metadata, u.m::jsonb) END
              FROM (SELECT unnest($58::text[]) AS i, unnest($59::text[]) AS st, unnest($60::text[]) AS ps,
                           unnest($61::int8[]) AS rp, unnest($62::timestamptz[]) AS ra,
                           unnest($63::text[]) AS rb, unnest($64::text[]) AS m) AS u
             WHERE t.id = u.i AND {guard}
        )"
        )
    };
    let totals = || {
        format!(
            "totals AS (
            INSERT INTO {schema}.totals AS t (asset, posted, accounts, transfers)
            SELECT unnest($65::text[]), unnest($66::int8[]), unnest($67::int8[]), unnest($68::int8[]) WHERE {guard}
            ON CONFLICT (asset) DO UPDATE SET posted = t.posted + EXCLUDED.posted,
                                              accounts = t.accounts + EXCLUDED.accounts,
                                              transfers = t.transfers + EXCLUDED.transfers
        )"
        )
    };
    let ctes: Vec<String> = [
        guarded.then(moved),
        parts.assets.then(assets),
        parts.opened.then(opened),
        parts.updated.then(updated),
        parts.entries.then(entries),
        parts.transfers.then(transfers),
        parts.earlier.then(earlier),
        parts.totals.then(totals),
    ]
    .into_iter()
    .flatten()
    .collect();
    if ctes.is_empty() {
        format!("SELECT {guard}")
    } else {
        format!("WITH {} SELECT {guard}", ctes.join(", "))
    }
}

/// Binds the 11 arrays of the entries' columns, in the order of the table.
fn bind_entries<'q>(
    query: Query<'q, Postgres, PgArguments>,
    entries: &'q [EntryRow],
) -> Query<'q, Postgres, PgArguments> {
    query
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
        // set only where it differs from the recorded time
        .bind(entries.iter().map(|r| r.effective_at).collect::<Vec<_>>())
}

/// The insert of the entries bound by [`bind_entries`], their arrays numbered from `$first`.
fn insert_entries(schema: &str, first: usize) -> String {
    const TYPES: [&str; 11] = [
        "text",
        "int8",
        "int4",
        "text",
        "text",
        "int8",
        "int8",
        "int8",
        "int8",
        "timestamptz",
        "timestamptz",
    ];
    let arrays: Vec<String> = (first..)
        .zip(TYPES)
        .map(|(n, t)| format!("unnest(${n}::{t}[])"))
        .collect();
    format!(
        "INSERT INTO {schema}.entries (account_id, position, seq, transfer_id, side, amount, debits, credits,
                                       balance, recorded_at, effective_at)
         SELECT {}",
        arrays.join(", ")
    )
}

/// Inserts `entries` alone: for a rebuild, which writes them on a connection of their own
/// beside the other tables (entries are only ever inserted, so their order does not matter).
pub(super) async fn write_entries(
    conn: &mut PgConnection,
    schema: &str,
    entries: &[EntryRow],
) -> Result<(), sqlx::Error> {
    bind_entries(sqlx::query(&insert_entries(schema, 1)), entries)
        .execute(conn)
        .await?;
    Ok(())
}

fn json_text(metadata: &Metadata) -> String {
    // A map of JSON values always encodes.
    serde_json::to_string(metadata).unwrap_or_default()
}

/// Replaces the personal data of a subject with the erased form in every row holding it; the
/// partial metadata indexes serve the containment.
fn erase_statement(schema: &str) -> String {
    format!(
        "WITH accounts AS (
             UPDATE {schema}.accounts SET metadata = jsonb_set(metadata, '{{personal}}', $2)
              WHERE metadata <> '{{}}'::jsonb AND metadata @> $1
         )
         UPDATE {schema}.transfers SET metadata = jsonb_set(metadata, '{{personal}}', $2)
          WHERE metadata <> '{{}}'::jsonb AND metadata @> $1"
    )
}

/// Writes `changes` into the tables in `schema`, guarded by `guard` when given; `false` when the
/// guard's move failed and nothing was written. With erasures it takes more than one statement,
/// so the caller must have opened a transaction.
pub(super) async fn write(
    conn: &mut PgConnection,
    schema: &str,
    changes: &Changes,
    guard: Option<Move>,
) -> Result<bool, sqlx::Error> {
    if !write_rows(conn, schema, changes, guard).await? {
        return Ok(false);
    }
    if changes.erased.is_empty() {
        return Ok(true);
    }
    // After the rows: the batch's own rows may hold what it erases (opened while the key
    // still existed, when an earlier batch's read raced the erasure). In every generation, not
    // only `schema`: the one a rebuild replaced stays readable until the next rebuild drops it,
    // and one being rebuilt may already hold the subject's rows.
    let generations: Vec<String> =
        sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname ~ '^ledger_g[0-9]+$'")
            .fetch_all(&mut *conn)
            .await?;
    for subject in &changes.erased {
        for generation in &generations {
            sqlx::query(&erase_statement(generation))
                .bind(serde_json::json!({ personal::PERSONAL: { "subject": subject } }))
                .bind(serde_json::json!({ "subject": subject, "erased": true }))
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(true)
}

async fn write_rows(
    conn: &mut PgConnection,
    schema: &str,
    changes: &Changes,
    guard: Option<Move>,
) -> Result<bool, sqlx::Error> {
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
    let earlier = &changes.earlier;
    let totals = &changes.totals;
    let parts = Parts {
        assets: !assets.is_empty(),
        opened: !opened.is_empty(),
        updated: !updated.is_empty(),
        entries: !entries.is_empty(),
        transfers: !transfers.is_empty(),
        earlier: !earlier.is_empty(),
        totals: !totals.is_empty(),
    };
    let sql = statement(schema, guard.is_some(), parts);
    let query = sqlx::query(&sql)
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
                .map(|(_, _, o)| json_text(&o.metadata))
                .collect::<Vec<_>>(),
        )
        .bind(opened.iter().map(|(_, r, _)| r.status.as_str()).collect::<Vec<_>>())
        .bind(opened.iter().map(|(_, r, _)| r.debits).collect::<Vec<_>>())
        .bind(opened.iter().map(|(_, r, _)| r.credits).collect::<Vec<_>>())
        .bind(opened.iter().map(|(_, r, _)| r.balance()).collect::<Vec<_>>())
        .bind(opened.iter().map(|(_, r, _)| r.pending_debits).collect::<Vec<_>>())
        .bind(opened.iter().map(|(_, r, _)| r.pending_credits).collect::<Vec<_>>())
        .bind(opened.iter().map(|(_, r, _)| r.revision).collect::<Vec<_>>())
        .bind(opened.iter().map(|(_, _, o)| o.opened_position).collect::<Vec<_>>())
        .bind(opened.iter().map(|(_, r, _)| r.last_position).collect::<Vec<_>>())
        .bind(opened.iter().map(|(_, _, o)| o.opened_at).collect::<Vec<_>>())
        .bind(opened.iter().map(|(_, r, _)| r.updated_at).collect::<Vec<_>>())
        // accounts opened before
        .bind(updated.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>())
        .bind(updated.iter().map(|(_, r)| r.status.as_str()).collect::<Vec<_>>())
        .bind(updated.iter().map(|(_, r)| r.debits).collect::<Vec<_>>())
        .bind(updated.iter().map(|(_, r)| r.credits).collect::<Vec<_>>())
        .bind(updated.iter().map(|(_, r)| r.balance()).collect::<Vec<_>>())
        .bind(updated.iter().map(|(_, r)| r.pending_debits).collect::<Vec<_>>())
        .bind(updated.iter().map(|(_, r)| r.pending_credits).collect::<Vec<_>>())
        .bind(updated.iter().map(|(_, r)| r.revision).collect::<Vec<_>>())
        .bind(updated.iter().map(|(_, r)| r.last_position).collect::<Vec<_>>())
        .bind(updated.iter().map(|(_, r)| r.updated_at).collect::<Vec<_>>())
        .bind(
            updated
                .iter()
                .map(|(_, r)| r.metadata_patch.as_ref().map(json_text))
                .collect::<Vec<_>>(),
        );
    let query = bind_entries(query, entries)
        // transfers applied in this batch, as it leaves them
        .bind(transfers.iter().map(|r| r.id.as_str()).collect::<Vec<_>>())
        .bind(transfers.iter().map(|r| r.position).collect::<Vec<_>>())
        .bind(
            transfers
                .iter()
                .map(|r| {
                    r.resolution
                        .as_ref()
                        .map_or(r.postings.as_str(), |o| o.postings.as_str())
                })
                .collect::<Vec<_>>(),
        )
        .bind(transfers.iter().map(|r| json_text(&r.metadata)).collect::<Vec<_>>())
        .bind(transfers.iter().map(|r| r.reverses.as_deref()).collect::<Vec<_>>())
        .bind(transfers.iter().map(|r| r.reversed_by.as_deref()).collect::<Vec<_>>())
        .bind(transfers.iter().map(|r| r.recorded_at).collect::<Vec<_>>())
        .bind(transfers.iter().map(|r| r.effective_at).collect::<Vec<_>>())
        .bind(
            transfers
                .iter()
                .map(|r| r.resolution.as_ref().map_or(r.status, |o| o.status))
                .collect::<Vec<_>>(),
        )
        .bind(transfers.iter().map(|r| r.held.as_deref()).collect::<Vec<_>>())
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
        // transfers applied before: resolved, reversed or annotated
        .bind(earlier.keys().map(String::as_str).collect::<Vec<_>>())
        .bind(
            earlier
                .values()
                .map(|u| u.resolution.as_ref().map(|o| o.status))
                .collect::<Vec<_>>(),
        )
        .bind(
            earlier
                .values()
                .map(|u| u.resolution.as_ref().map(|o| o.postings.as_str()))
                .collect::<Vec<_>>(),
        )
        .bind(
            earlier
                .values()
                .map(|u| u.resolution.as_ref().map(|o| o.position))
                .collect::<Vec<_>>(),
        )
        .bind(
            earlier
                .values()
                .map(|u| u.resolution.as_ref().map(|o| o.at))
                .collect::<Vec<_>>(),
        )
        .bind(earlier.values().map(|u| u.reversed_by.as_deref()).collect::<Vec<_>>())
        .bind(
            earlier
                .values()
                .map(|u| u.metadata_patch.as_ref().map(json_text))
                .collect::<Vec<_>>(),
        )
        // totals
        .bind(totals.keys().map(String::as_str).collect::<Vec<_>>())
        .bind(totals.values().map(|t| t.posted).collect::<Vec<_>>())
        .bind(totals.values().map(|t| t.accounts).collect::<Vec<_>>())
        .bind(totals.values().map(|t| t.transfers).collect::<Vec<_>>());
    let query = match guard {
        Some(Move { generation, from, to }) => query.bind(to).bind(generation).bind(from),
        None => query,
    };
    query.fetch_one(&mut *conn).await?.try_get(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_writes_the_tables_its_batch_has_rows_for_and_no_other() {
        let transfers_only = Parts {
            assets: false,
            opened: false,
            updated: true,
            entries: true,
            transfers: true,
            earlier: false,
            totals: true,
        };
        let guarded = statement("ledger_g1", true, transfers_only);
        assert!(guarded.starts_with("WITH moved AS ("));
        for table in ["updated AS", "entries AS", "transfers AS", "totals AS"] {
            assert!(guarded.contains(table), "{table} in {guarded}");
        }
        for table in ["assets AS", "opened AS", "earlier AS"] {
            assert!(!guarded.contains(table), "{table} in {guarded}");
        }
        let nothing = Parts {
            updated: false,
            entries: false,
            transfers: false,
            totals: false,
            ..transfers_only
        };
        assert!(statement("ledger_g1", true, nothing).ends_with("SELECT EXISTS (SELECT FROM moved)"));
        assert_eq!(statement("ledger_g1", false, nothing), "SELECT true");
    }
}
