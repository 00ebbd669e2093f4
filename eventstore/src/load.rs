//! Loads the write-side state a batch touches and the log's head, from one snapshot. Whatever is
//! not loaded is, for `decide`, nonexistent, so this must bring every id any command of the batch
//! names.

use ledger::{
    Account, AccountFlags, AccountId, AccountStatus, Asset, AssetCode, Command, Event, Map, NormalSide, Resolution,
    Scale, SetMetadata, State, StreamId, Subject, Transfer, TransferId,
};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::writer::Unit;

pub(crate) struct Loaded {
    /// The head the state was read with: a batch decided on it may only be written on it.
    pub head: Head,
    pub state: State,
    /// The position of each loaded stream's first event: what an identical replay answers.
    pub origins: Map<StreamId, i64>,
    /// The position of each loaded hold's resolution: what an identical repeat of it answers.
    pub resolutions: Map<TransferId, i64>,
    pub keys: Map<String, KeyRecord>,
}

/// The log's last event, as `event_head` holds it.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Head {
    /// The transaction that wrote this version of the row: any update of the row changes it.
    pub xmin: String,
    pub position: i64,
    pub hash: [u8; 32],
    pub recorded_at: i64,
}

/// What an `Idempotency-Key` recorded: the request's hash, the first position written, and for a
/// keyed batch the answers given.
#[derive(Debug, Clone)]
pub(crate) struct KeyRecord {
    pub request_hash: [u8; 32],
    pub position: i64,
    pub response: Option<serde_json::Value>,
}

/// The ids a batch names, by kind (transfers as stream ids), each list sorted and without
/// repeats. Borrowed from the commands where the id is the key itself.
#[derive(Default)]
struct Wanted<'a> {
    accounts: Vec<&'a str>,
    assets: Vec<&'a str>,
    transfers: Vec<String>,
    subjects: Vec<String>,
    keys: Vec<&'a str>,
}

impl<'a> Wanted<'a> {
    fn of(units: &'a [Unit<'a>]) -> Self {
        let mut wanted = Self::default();
        for key in units.iter().filter_map(|u| u.key) {
            wanted.keys.push(&key.key);
        }
        for submission in units.iter().flat_map(|u| u.submissions) {
            if let Some(key) = &submission.idempotency_key {
                wanted.keys.push(&key.key);
            }
            match &submission.command {
                Command::RegisterAsset(c) => wanted.assets.push(c.code.as_str()),
                Command::OpenAccount(c) => {
                    wanted.accounts.push(c.id.as_str());
                    wanted.assets.push(c.asset.as_str());
                }
                Command::ChangeAccount { account, .. }
                | Command::SetMetadata(SetMetadata {
                    subject: Subject::Account(account),
                    ..
                }) => wanted.accounts.push(account.as_str()),
                Command::SetMetadata(SetMetadata {
                    subject: Subject::Transfer(id),
                    ..
                }) => wanted.transfers.push(StreamId::Transfer(id.clone()).to_string()),
                Command::ErasePersonalData(subject) => {
                    wanted.subjects.push(StreamId::Subject(subject.clone()).to_string());
                }
                Command::ResolveHold(c) => {
                    // The hold's legs name its accounts, which `LOAD_STATE` brings with it; a
                    // post's legs must be between those same accounts, or it is refused.
                    wanted.transfers.push(StreamId::Transfer(c.id.clone()).to_string());
                }
                Command::PostTransfer(c) => {
                    wanted.transfers.push(StreamId::Transfer(c.id.clone()).to_string());
                    if let Some(original) = &c.reverses {
                        wanted.transfers.push(StreamId::Transfer(original.clone()).to_string());
                    }
                    for posting in c.postings() {
                        wanted.accounts.push(posting.debit.as_str());
                        wanted.accounts.push(posting.credit.as_str());
                    }
                    for condition in c.conditions() {
                        wanted.accounts.push(condition.account.as_str());
                    }
                }
            }
        }
        for ids in [&mut wanted.accounts, &mut wanted.assets, &mut wanted.keys] {
            sort_dedup(ids);
        }
        for ids in [&mut wanted.transfers, &mut wanted.subjects] {
            sort_dedup(ids);
        }
        wanted
    }
}

fn sort_dedup<T: Ord>(ids: &mut Vec<T>) {
    ids.sort_unstable();
    ids.dedup();
}

/// The columns of `LOAD_STATE`'s rows, by position; each kind of row uses some of them.
mod col {
    pub const KIND: usize = 0;
    pub const KEY: usize = 1;
    pub const ASSET: usize = 2;
    pub const NORMAL_SIDE: usize = 3;
    pub const NO_OVERDRAFT: usize = 4;
    pub const NO_CREDIT: usize = 5;
    pub const STATUS: usize = 6;
    pub const DEBITS: usize = 7;
    pub const CREDITS: usize = 8;
    pub const PENDING_DEBITS: usize = 9;
    pub const PENDING_CREDITS: usize = 10;
    pub const VERSION: usize = 11;
    pub const FINGERPRINT: usize = 12;
    pub const POSITION: usize = 13;
    pub const SCALE: usize = 14;
    pub const EVENT_TYPE: usize = 15;
    pub const DATA: usize = 16;
    pub const REVERSED_BY: usize = 17;
    pub const RESOLUTION_TYPE: usize = 18;
    pub const RESOLUTION: usize = 19;
    pub const RESOLUTION_POSITION: usize = 20;
    pub const REQUEST_HASH: usize = 21;
    pub const RESPONSE: usize = 22;
    pub const REVISION: usize = 23;
    pub const SCHEMA_VERSION: usize = 24;
    pub const RESOLUTION_VERSION: usize = 25;
}

fn corrupt(what: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("write-side state holds an invalid {what}").into())
}

/// Everything a batch touches, in one round trip: the accounts (named, or held by the holds it
/// names), the assets named or held by those accounts, the transfers (from the log: the first
/// event of each stream, its resolution, its reversal and its last version), the erased subjects
/// (their streams' one event), the idempotency keys, and the head (the row version's `xmin` in the
/// `key` column, its time in microseconds in `debits`, its hash in `fingerprint`).
const LOAD_STATE: &str = "
WITH transfers AS (
    SELECT e.stream_id, e.position, e.event_type, e.schema_version, e.data, r.data ->> 'id' AS reversed_by,
           s.event_type AS resolution_type, s.schema_version AS resolution_version, s.data AS resolution,
           s.position AS resolution_position,
           (SELECT max(v.stream_version) FROM events v WHERE v.stream_id = e.stream_id) AS version
      FROM events e
      LEFT JOIN events r ON r.event_type = 'TransferPosted' AND r.data ? 'reverses'
                        AND r.data ->> 'reverses' = e.data ->> 'id'
      -- A hold's one resolution, probed by key for each transfer: as a plain join, planned with
      -- the log's statistics out of date (it grows faster than autovacuum analyses it), this
      -- was a hash join over a sequential scan of the whole log, ~190 ms on each batch posting
      -- a hold (the bench's holds tail).
      LEFT JOIN LATERAL (
          SELECT s.event_type, s.schema_version, s.data, s.position FROM events s
           WHERE s.stream_id = e.stream_id AND s.stream_version > 1
             AND s.event_type IN ('PendingPosted', 'PendingVoided', 'PendingExpired')
           ORDER BY s.stream_version LIMIT 1
      ) s ON true
     WHERE e.stream_id = ANY($3) AND e.stream_version = 1
), accounts AS (
    -- One array, so the primary key is probed for each id (an OR with a subquery scans).
    SELECT * FROM write_accounts
     WHERE id = ANY($1::text[] || ARRAY(
               SELECT p ->> leg FROM transfers t, jsonb_array_elements(t.data -> 'postings') p,
                                     (VALUES ('debit'), ('credit')) AS l(leg)
                WHERE t.event_type = 'TransferPending'))
)
SELECT 'account' AS kind, id AS key, asset, normal_side,
       debits_must_not_exceed_credits AS no_overdraft, credits_must_not_exceed_debits AS no_credit,
       status, debits, credits, pending_debits, pending_credits, version, fingerprint, position,
       NULL::int2 AS scale, NULL::text AS event_type, NULL::jsonb AS data, NULL::text AS reversed_by,
       NULL::text AS resolution_type, NULL::jsonb AS resolution, NULL::int8 AS resolution_position,
       NULL::bytea AS request_hash, NULL::jsonb AS response, revision, NULL::int4 AS schema_version,
       NULL::int4 AS resolution_version
  FROM accounts
UNION ALL
SELECT 'asset', code, NULL, NULL, NULL, NULL, NULL, posted, held, NULL, NULL, NULL, NULL, position, scale,
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
  FROM write_assets
 WHERE code = ANY($2) OR code IN (SELECT asset FROM accounts)
UNION ALL
SELECT 'transfer', stream_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, version, NULL, position, NULL,
       event_type, data, reversed_by, resolution_type, resolution, resolution_position, NULL, NULL, NULL,
       schema_version, resolution_version
  FROM transfers
UNION ALL
SELECT 'key', key, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, position, NULL,
       NULL, NULL, NULL, NULL, NULL, NULL, request_hash, response, NULL, NULL, NULL
  FROM idempotency_keys WHERE key = ANY($4)
UNION ALL
SELECT 'subject', stream_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, position, NULL,
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
  FROM events WHERE stream_id = ANY($5) AND stream_version = 1
UNION ALL
SELECT 'head', xmin::text, NULL, NULL, NULL, NULL, NULL, (extract(epoch FROM recorded_at) * 1000000)::int8, NULL, NULL,
       NULL, NULL, hash, position, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
  FROM event_head";

pub(crate) async fn load(conn: &mut PgConnection, units: &[Unit<'_>]) -> Result<Loaded, sqlx::Error> {
    let wanted = Wanted::of(units);
    // A generic plan, made again every `PLAN_LIFETIME` (see `probing`).
    let rows = sqlx::query(LOAD_STATE)
        .bind(&wanted.accounts)
        .bind(&wanted.assets)
        .bind(&wanted.transfers)
        .bind(&wanted.keys)
        .bind(&wanted.subjects)
        .fetch_all(&mut *conn)
        .await?;
    let mut head = None;
    let mut loaded = Loaded {
        head: Head::default(),
        state: State::default(),
        origins: Map::default(),
        resolutions: Map::default(),
        keys: Map::default(),
    };
    for row in rows {
        match row.try_get::<&str, _>(col::KIND)? {
            "account" => add_account(&row, &mut loaded)?,
            "asset" => add_asset(&row, &mut loaded)?,
            "transfer" => add_transfer(&row, &mut loaded)?,
            "subject" => add_subject(&row, &mut loaded)?,
            "head" => head = Some(read_head(&row)?),
            _ => add_key(&row, &mut loaded)?,
        }
    }
    loaded.head = head.ok_or_else(|| sqlx::Error::Decode("event_head has no row".into()))?;
    Ok(loaded)
}

fn read_head(row: &PgRow) -> Result<Head, sqlx::Error> {
    let hash: &[u8] = row.try_get(col::FINGERPRINT)?;
    Ok(Head {
        xmin: row.try_get(col::KEY)?,
        position: row.try_get(col::POSITION)?,
        hash: hash.try_into().map_err(|_| corrupt("head hash"))?,
        recorded_at: row.try_get(col::DEBITS)?,
    })
}

fn add_account(row: &PgRow, loaded: &mut Loaded) -> Result<(), sqlx::Error> {
    let id = AccountId::parse(row.try_get::<String, _>(col::KEY)?).map_err(|_| corrupt("account id"))?;
    let normal_side = match row.try_get::<Option<&str>, _>(col::NORMAL_SIDE)? {
        Some("credit") => NormalSide::Credit,
        _ => NormalSide::Debit,
    };
    let status = row
        .try_get::<Option<&str>, _>(col::STATUS)?
        .and_then(AccountStatus::parse);
    let fingerprint: &[u8] = row.try_get::<Option<&[u8]>, _>(col::FINGERPRINT)?.unwrap_or_default();
    let asset: Option<String> = row.try_get(col::ASSET)?;
    let account = Account {
        asset: AssetCode::parse(asset.unwrap_or_default()).map_err(|_| corrupt("asset code"))?,
        normal_side,
        flags: AccountFlags {
            debits_must_not_exceed_credits: row.try_get::<Option<bool>, _>(col::NO_OVERDRAFT)?.unwrap_or(false),
            credits_must_not_exceed_debits: row.try_get::<Option<bool>, _>(col::NO_CREDIT)?.unwrap_or(false),
        },
        status: status.ok_or_else(|| corrupt("account status"))?,
        debits: row.try_get::<Option<i64>, _>(col::DEBITS)?.unwrap_or(0),
        credits: row.try_get::<Option<i64>, _>(col::CREDITS)?.unwrap_or(0),
        pending_debits: row.try_get::<Option<i64>, _>(col::PENDING_DEBITS)?.unwrap_or(0),
        pending_credits: row.try_get::<Option<i64>, _>(col::PENDING_CREDITS)?.unwrap_or(0),
        version: row.try_get::<Option<i64>, _>(col::VERSION)?.unwrap_or(0),
        revision: row.try_get::<Option<i64>, _>(col::REVISION)?.unwrap_or(0),
        fingerprint: fingerprint.try_into().map_err(|_| corrupt("fingerprint"))?,
    };
    loaded
        .origins
        .insert(StreamId::Account(id.clone()), row.try_get(col::POSITION)?);
    loaded.state.accounts.insert(id, account);
    Ok(())
}

fn add_asset(row: &PgRow, loaded: &mut Loaded) -> Result<(), sqlx::Error> {
    let code = AssetCode::parse(row.try_get::<String, _>(col::KEY)?).map_err(|_| corrupt("asset code"))?;
    let scale = row
        .try_get::<Option<i16>, _>(col::SCALE)?
        .and_then(|s| u8::try_from(s).ok())
        .and_then(|s| Scale::new(s).ok());
    let asset = Asset {
        scale: scale.ok_or_else(|| corrupt("scale"))?,
        // The posted and held totals travel in the `debits` and `credits` columns of this union.
        posted: row.try_get::<Option<i64>, _>(col::DEBITS)?.unwrap_or(0),
        held: row.try_get::<Option<i64>, _>(col::CREDITS)?.unwrap_or(0),
    };
    loaded
        .origins
        .insert(StreamId::Asset(code.clone()), row.try_get(col::POSITION)?);
    loaded.state.assets.insert(code, asset);
    Ok(())
}

/// Transfers are read from the log itself: the first event of the stream, its resolution (by
/// type), its reversal (through the `events_reversals` index) and its last version.
fn add_transfer(row: &PgRow, loaded: &mut Loaded) -> Result<(), sqlx::Error> {
    let event =
        stored_event(row, col::EVENT_TYPE, col::SCHEMA_VERSION, col::DATA)?.ok_or_else(|| corrupt("transfer event"))?;
    let mut transfer = Transfer::opened_by(&event).ok_or_else(|| corrupt("transfer event"))?;
    transfer.reversed_by = row
        .try_get::<Option<String>, _>(col::REVERSED_BY)?
        .map(TransferId::parse)
        .transpose()
        .map_err(|_| corrupt("transfer id"))?;
    transfer.version = row.try_get::<Option<i64>, _>(col::VERSION)?.unwrap_or(1);
    let StreamId::Transfer(id) = event.stream_id() else {
        return Err(corrupt("transfer event"));
    };
    if let Some(resolution) = stored_event(row, col::RESOLUTION_TYPE, col::RESOLUTION_VERSION, col::RESOLUTION)? {
        let hold = transfer.hold.as_mut().ok_or_else(|| corrupt("hold resolution"))?;
        hold.resolution = Some(Resolution::of(&resolution).ok_or_else(|| corrupt("hold resolution"))?);
        loaded.resolutions.insert(
            id.clone(),
            row.try_get::<Option<i64>, _>(col::RESOLUTION_POSITION)?.unwrap_or(0),
        );
    }
    loaded
        .origins
        .insert(StreamId::Transfer(id.clone()), row.try_get(col::POSITION)?);
    loaded.state.transfers.insert(id, Box::new(transfer));
    Ok(())
}

/// The event in columns `type_column`, `version_column` and `data_column`, when the row has one.
fn stored_event(
    row: &PgRow,
    type_column: usize,
    version_column: usize,
    data_column: usize,
) -> Result<Option<Event>, sqlx::Error> {
    let Some(event_type) = row.try_get::<Option<&str>, _>(type_column)? else {
        return Ok(None);
    };
    let version: i32 = row
        .try_get::<Option<i32>, _>(version_column)?
        .unwrap_or(ledger::SCHEMA_VERSION);
    let data: serde_json::Value = row
        .try_get::<Option<serde_json::Value>, _>(data_column)?
        .unwrap_or_default();
    Event::decode(event_type, version, &data)
        .map(Some)
        .map_err(|_| corrupt("transfer event"))
}

fn add_subject(row: &PgRow, loaded: &mut Loaded) -> Result<(), sqlx::Error> {
    let stream = StreamId::parse(row.try_get::<&str, _>(col::KEY)?).map_err(|_| corrupt("subject stream"))?;
    let StreamId::Subject(subject) = &stream else {
        return Err(corrupt("subject stream"));
    };
    loaded.state.erased.insert(subject.clone());
    loaded.origins.insert(stream, row.try_get(col::POSITION)?);
    Ok(())
}

fn add_key(row: &PgRow, loaded: &mut Loaded) -> Result<(), sqlx::Error> {
    let hash: Vec<u8> = row
        .try_get::<Option<Vec<u8>>, _>(col::REQUEST_HASH)?
        .unwrap_or_default();
    let record = KeyRecord {
        request_hash: hash.try_into().map_err(|_| corrupt("request hash"))?,
        position: row.try_get(col::POSITION)?,
        response: row.try_get(col::RESPONSE)?,
    };
    loaded.keys.insert(row.try_get(col::KEY)?, record);
    Ok(())
}
