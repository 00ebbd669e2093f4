//! Writes a decided batch in one statement: every table's rows as arrays in data-modifying CTEs,
//! the head moved and the notification sent in the same statement. The head moves only from the
//! row version the batch was decided on (compare-and-set on its position and `xmin`), and every
//! other CTE writes only if it moved: a batch decided on a state another writer (or a rebuild of
//! the write side) has since changed writes nothing. The arrays are unnested in the
//! select list (`SELECT unnest($1), unnest($2), ...`, zipped as a multi-argument `UNNEST` zips
//! them): a `FROM UNNEST(...)` first copies its rows into a tuplestore, which took longer than the
//! insert itself for 16,000 rows (`EXPLAIN ANALYZE`: 24-26 ms against 10 ms). One round
//! trip whatever the batch size; the database's checks (the chain trigger, the head trigger, the
//! limit constraints) run at its end, over everything it wrote. An erasure destroys its subject's
//! key in the same statement, so the event and the key's destruction commit together. A table a
//! batch has no rows for is left out of its statement ([`Parts`]).

use std::sync::OnceLock;

use ledger::{Account, AccountId, AssetCode, Map, State, StreamId, SubjectId, TransferId};
use sqlx::{PgConnection, Row};

use crate::EVENTS_CHANNEL;
use crate::batch::Pending;
use crate::load::Loaded;
use crate::time::micros_to_datetime;

/// The head's compare-and-set and the events: every batch writes them.
const HEAD_AND_EVENTS: &str = "
WITH head AS (
    UPDATE event_head SET position = $31, hash = $32, recorded_at = $7
     WHERE position = $42 AND xmin = $43::text::xid RETURNING xmin
), new_events AS (
    INSERT INTO events (position, event_id, stream_id, stream_version, event_type, schema_version,
                        data, metadata, recorded_at, prev_hash, hash)
    SELECT unnest($1::int8[]), unnest($2::uuid[]), unnest($3::text[]), unnest($4::int8[]), unnest($5::text[]),
           unnest($6::int4[]), unnest($8::text[])::jsonb, (SELECT $9::text[]::jsonb[])[unnest($52::int4[])], $7,
           unnest($10::bytea[]), unnest($11::bytea[])
     WHERE EXISTS (SELECT FROM head)
)";

/// The statement's parts that a batch may have no rows for, in the order of [`Parts`]' bits.
const PARTS: [&str; 7] = [
    ", assets AS (
    INSERT INTO write_assets (code, scale, posted, position, held)
    SELECT unnest($12::text[]), unnest($13::int2[]), unnest($14::int8[]), unnest($15::int8[]), unnest($36::int8[])
     WHERE EXISTS (SELECT FROM head)
    ON CONFLICT (code) DO UPDATE SET posted = EXCLUDED.posted, held = EXCLUDED.held
)",
    ", opened AS (
    INSERT INTO write_accounts (id, asset, normal_side, debits_must_not_exceed_credits,
                                credits_must_not_exceed_debits, status, debits, credits, version,
                                fingerprint, position, pending_debits, pending_credits, revision)
    SELECT unnest($16::text[]), unnest($17::text[]), unnest($18::text[]), unnest($19::bool[]), unnest($20::bool[]),
           unnest($21::text[]), unnest($22::int8[]), unnest($23::int8[]), unnest($24::int8[]), unnest($25::bytea[]),
           unnest($26::int8[]), unnest($34::int8[]), unnest($35::int8[]), unnest($40::int8[])
     WHERE EXISTS (SELECT FROM head)
    ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, debits = EXCLUDED.debits,
                                   credits = EXCLUDED.credits, version = EXCLUDED.version,
                                   pending_debits = EXCLUDED.pending_debits,
                                   pending_credits = EXCLUDED.pending_credits,
                                   revision = EXCLUDED.revision
)",
    // The accounts that existed before the batch: their balances, status and versions (a plain
    // update, where an upsert also locked each row first and sent the columns that never change).
    ", accounts AS (
    UPDATE write_accounts w
       SET status = u.status, debits = u.debits, credits = u.credits, version = u.version,
           pending_debits = u.pending_debits, pending_credits = u.pending_credits, revision = u.revision
      FROM (SELECT unnest($44::text[]) AS id, unnest($45::text[]) AS status, unnest($46::int8[]) AS debits,
                   unnest($47::int8[]) AS credits, unnest($48::int8[]) AS version,
                   unnest($49::int8[]) AS pending_debits, unnest($50::int8[]) AS pending_credits,
                   unnest($51::int8[]) AS revision) AS u
     WHERE w.id = u.id AND EXISTS (SELECT FROM head)
)",
    ", holds AS (
    INSERT INTO write_pending (id, expires_at)
    SELECT unnest($37::text[]), unnest($38::timestamptz[]) WHERE EXISTS (SELECT FROM head)
)",
    ", resolved AS (
    DELETE FROM write_pending WHERE id = ANY($39::text[]) AND EXISTS (SELECT FROM head)
)",
    ", keys AS (
    INSERT INTO idempotency_keys (key, request_hash, position, response, created_at)
    SELECT unnest($27::text[]), unnest($28::bytea[]), unnest($29::int8[]), unnest($30::text[])::jsonb, $7
     WHERE EXISTS (SELECT FROM head)
)",
    ", erased AS (
    INSERT INTO subject_keys (subject, key, erased_at)
    SELECT unnest($41::text[]), NULL, $7 WHERE EXISTS (SELECT FROM head)
    ON CONFLICT (subject) DO UPDATE SET key = NULL, erased_at = EXCLUDED.erased_at
)",
];

/// The notification, and the head's new version as the statement's one row (none if the
/// compare-and-set missed).
const NOTIFY_AND_ANSWER: &str = ", notified AS (
    SELECT pg_notify($33, $31::text) FROM head
)
SELECT head.xmin::text FROM head, notified";

/// Which of [`PARTS`] a batch has rows for, one bit each. A part with no rows would write
/// nothing, but its table and indexes would still be opened and locked at every execution:
/// executor start-up of the whole statement was a tenth of the writer's backend in a profile of
/// single transfers, which write two of the seven (three with idempotency keys).
#[derive(Clone, Copy)]
struct Parts(usize);

impl Parts {
    fn of(present: [bool; PARTS.len()]) -> Self {
        Self(
            present
                .iter()
                .enumerate()
                .filter(|(_, present)| **present)
                .map(|(bit, _)| 1 << bit)
                .sum(),
        )
    }

    /// The statement writing these parts, composed once per set of parts. Every variant takes
    /// the same 52 parameters; those of the parts left out go unreferenced (sqlx sends each
    /// parameter's type, so PostgreSQL needs no reference to infer it).
    fn statement(self) -> &'static str {
        static STATEMENTS: [OnceLock<String>; 1 << PARTS.len()] = [const { OnceLock::new() }; 1 << PARTS.len()];
        STATEMENTS[self.0].get_or_init(|| {
            let parts = PARTS
                .iter()
                .enumerate()
                .filter(|(bit, _)| self.0 & (1 << bit) != 0)
                .map(|(_, part)| *part);
            std::iter::once(HEAD_AND_EVENTS)
                .chain(parts)
                .chain(std::iter::once(NOTIFY_AND_ANSWER))
                .collect()
        })
    }
}

/// Writes the batch if the head's row is still the version the batch was decided on
/// (`loaded.head`: the same position, and not updated since), moving it in the same
/// statement; returns the `xmin` of the head's new version if it did, `None` if it wrote
/// nothing. Outside a transaction the statement is its own, committed when it answers.
pub(crate) async fn write(
    conn: &mut PgConnection,
    loaded: &Loaded,
    pending: &Pending,
) -> Result<Option<String>, sqlx::Error> {
    let rows = &pending.rows;
    let assets = Assets::of(&loaded.state, &loaded.origins, &pending.dirty_assets);
    let (opened, existing): (Vec<&AccountId>, Vec<&AccountId>) = pending
        .dirty_accounts
        .iter()
        .partition(|id| pending.opened_accounts.contains(*id));
    let accounts = Accounts::of(&loaded.state, &loaded.origins, opened);
    let balances = Balances::of(&loaded.state, existing);
    let keys = &pending.new_keys;
    let parts = Parts::of([
        !assets.codes.is_empty(),
        !accounts.balances.ids.is_empty(),
        !balances.ids.is_empty(),
        !pending.new_holds.is_empty(),
        !pending.resolved_holds.is_empty(),
        !keys.is_empty(),
        !pending.erased_subjects.is_empty(),
    ]);
    sqlx::query(parts.statement())
        // events
        .bind(rows.iter().map(|r| r.position).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.event_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.stream_id.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.stream_version).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.event_type).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.schema_version).collect::<Vec<_>>())
        .bind(micros_to_datetime(pending.recorded_at))
        .bind(rows.iter().map(|r| r.data.as_str()).collect::<Vec<_>>())
        // the batch's distinct metadata, parsed once each; each row's index into it is $52
        .bind(&pending.metadata)
        .bind(rows.iter().map(|r| &r.prev_hash[..]).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| &r.hash[..]).collect::<Vec<_>>())
        // write_assets
        .bind(assets.codes)
        .bind(assets.scales)
        .bind(assets.posted)
        .bind(assets.positions)
        // write_accounts
        .bind(accounts.balances.ids)
        .bind(accounts.assets)
        .bind(accounts.sides)
        .bind(accounts.no_overdraft)
        .bind(accounts.no_credit)
        .bind(accounts.balances.statuses)
        .bind(accounts.balances.debits)
        .bind(accounts.balances.credits)
        .bind(accounts.balances.versions)
        .bind(accounts.fingerprints)
        .bind(accounts.positions)
        // idempotency_keys
        .bind(keys.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>())
        .bind(keys.iter().map(|(_, r)| &r.request_hash[..]).collect::<Vec<_>>())
        .bind(keys.iter().map(|(_, r)| r.position).collect::<Vec<_>>())
        .bind(
            keys.iter()
                .map(|(_, r)| r.response.as_ref().map(ToString::to_string))
                .collect::<Vec<_>>(),
        )
        // head and notification
        .bind(pending.head_position())
        .bind(&pending.head_hash[..])
        .bind(EVENTS_CHANNEL)
        // added with holds: pending amounts, held totals, the holds that can expire
        .bind(accounts.balances.pending_debits)
        .bind(accounts.balances.pending_credits)
        .bind(assets.held)
        .bind(pending.new_holds.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>())
        .bind(
            pending
                .new_holds
                .iter()
                .map(|(_, at)| micros_to_datetime(*at))
                .collect::<Vec<_>>(),
        )
        .bind(
            pending
                .resolved_holds
                .iter()
                .map(TransferId::as_str)
                .collect::<Vec<_>>(),
        )
        // added with conditions: revisions
        .bind(accounts.balances.revisions)
        // added with personal data: the subjects whose keys are destroyed
        .bind(
            pending
                .erased_subjects
                .iter()
                .map(SubjectId::as_str)
                .collect::<Vec<_>>(),
        )
        // added with the unlocked write: the head's row as the batch was decided on it
        .bind(loaded.head.position)
        .bind(&loaded.head.xmin)
        // added with the plain update of the accounts that existed before the batch
        .bind(balances.ids)
        .bind(balances.statuses)
        .bind(balances.debits)
        .bind(balances.credits)
        .bind(balances.versions)
        .bind(balances.pending_debits)
        .bind(balances.pending_credits)
        .bind(balances.revisions)
        // added with the distinct metadata: each event's, as a (1-based) index into $9
        .bind(rows.iter().map(|r| metadata_index(r.metadata)).collect::<Vec<_>>())
        .fetch_optional(&mut *conn)
        .await?
        .map(|row| row.try_get(0))
        .transpose()
}

/// Whether `error` is the log's refusal of a second first event in a stream: a command decided
/// as new whose stream the log already holds (a transfer id used before).
pub(crate) fn is_stream_taken(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db)
        if db.code().as_deref() == Some("23505") && db.constraint() == Some("events_stream_id_stream_version_key"))
}

/// A row's metadata as a PostgreSQL array subscript: 1-based. A batch holds far fewer than
/// 2^31 events.
fn metadata_index(index: usize) -> i32 {
    i32::try_from(index + 1).unwrap_or(i32::MAX)
}

/// Assets as `write_assets` columns (also what the write-side rebuild inserts).
#[derive(Default)]
pub(crate) struct Assets<'a> {
    pub codes: Vec<&'a str>,
    pub scales: Vec<i16>,
    pub posted: Vec<i64>,
    pub positions: Vec<i64>,
    pub held: Vec<i64>,
}

impl<'a> Assets<'a> {
    /// The rows of `codes` (those the state holds); `origins` gives each stream's first position.
    pub fn of(state: &'a State, origins: &Map<StreamId, i64>, codes: impl IntoIterator<Item = &'a AssetCode>) -> Self {
        let mut columns = Self::default();
        for code in codes {
            let Some(asset) = state.assets.get(code) else {
                continue;
            };
            columns.codes.push(code.as_str());
            columns.scales.push(i16::from(asset.scale.get()));
            columns.posted.push(asset.posted);
            columns.held.push(asset.held);
            columns
                .positions
                .push(origins.get(&StreamId::Asset(code.clone())).copied().unwrap_or(0));
        }
        columns
    }
}

/// Accounts as `write_accounts` columns (also what the write-side rebuild inserts): what opening
/// them fixes, and the columns that change after.
#[derive(Default)]
pub(crate) struct Accounts<'a> {
    pub balances: Balances<'a>,
    pub assets: Vec<&'a str>,
    pub sides: Vec<&'static str>,
    pub no_overdraft: Vec<bool>,
    pub no_credit: Vec<bool>,
    pub fingerprints: Vec<&'a [u8]>,
    pub positions: Vec<i64>,
}

impl<'a> Accounts<'a> {
    /// The rows of `ids` (those the state holds); `origins` gives each stream's first position.
    pub fn of(state: &'a State, origins: &Map<StreamId, i64>, ids: impl IntoIterator<Item = &'a AccountId>) -> Self {
        let mut columns = Self::default();
        for id in ids {
            let Some(account) = state.accounts.get(id) else {
                continue;
            };
            columns.balances.push(id, account);
            columns.assets.push(account.asset.as_str());
            columns.sides.push(account.normal_side.as_str());
            columns.no_overdraft.push(account.flags.debits_must_not_exceed_credits);
            columns.no_credit.push(account.flags.credits_must_not_exceed_debits);
            columns.fingerprints.push(&account.fingerprint[..]);
            columns
                .positions
                .push(origins.get(&StreamId::Account(id.clone())).copied().unwrap_or(0));
        }
        columns
    }
}

/// The `write_accounts` columns a batch changes on an account: all it writes for one that existed
/// before it.
#[derive(Default)]
pub(crate) struct Balances<'a> {
    pub ids: Vec<&'a str>,
    pub statuses: Vec<&'static str>,
    pub debits: Vec<i64>,
    pub credits: Vec<i64>,
    pub versions: Vec<i64>,
    pub pending_debits: Vec<i64>,
    pub pending_credits: Vec<i64>,
    pub revisions: Vec<i64>,
}

impl<'a> Balances<'a> {
    /// The rows of `ids` (those the state holds).
    fn of(state: &'a State, ids: impl IntoIterator<Item = &'a AccountId>) -> Self {
        let mut columns = Self::default();
        for id in ids {
            if let Some(account) = state.accounts.get(id) {
                columns.push(id, account);
            }
        }
        columns
    }

    fn push(&mut self, id: &'a AccountId, account: &Account) {
        self.ids.push(id.as_str());
        self.statuses.push(account.status.as_str());
        self.debits.push(account.debits);
        self.credits.push(account.credits);
        self.versions.push(account.version);
        self.pending_debits.push(account.pending_debits);
        self.pending_credits.push(account.pending_credits);
        self.revisions.push(account.revision);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_writes_the_parts_its_batch_has_rows_for_and_no_other() {
        let names = [
            "assets AS",
            "opened AS",
            "accounts AS",
            "holds AS",
            "resolved AS",
            "keys AS",
            "erased AS",
        ];
        for bits in 0..1 << PARTS.len() {
            let present: [bool; PARTS.len()] = std::array::from_fn(|bit| bits & (1 << bit) != 0);
            let statement = Parts::of(present).statement();
            for (name, present) in names.iter().zip(present) {
                assert_eq!(statement.contains(name), present, "{name} in {statement}");
            }
            assert!(statement.starts_with("\nWITH head AS ("));
            assert!(statement.ends_with("SELECT head.xmin::text FROM head, notified"));
        }
    }
}
