//! Loads the write-side state a batch touches, under the head lock. Whatever is not loaded is, for
//! `decide`, nonexistent, so this must bring every id any command of the batch names.

use std::collections::{BTreeSet, HashMap};

use ledger::{
    Account, AccountFlags, AccountId, AccountStatus, Asset, AssetCode, Command, Event, NormalSide, Scale, State,
    StreamId, Transfer, TransferId,
};
use sqlx::{PgConnection, Row};

use crate::writer::Unit;

pub(crate) struct Loaded {
    pub state: State,
    /// The position of each loaded stream's first event: what an identical replay answers.
    pub origins: HashMap<StreamId, i64>,
    pub keys: HashMap<String, KeyRecord>,
}

/// What an `Idempotency-Key` recorded: the request's hash, the first position written, and for a
/// keyed batch the answers given.
#[derive(Debug, Clone)]
pub(crate) struct KeyRecord {
    pub request_hash: [u8; 32],
    pub position: i64,
    pub response: Option<serde_json::Value>,
}

#[derive(Default)]
struct Wanted {
    accounts: BTreeSet<String>,
    assets: BTreeSet<String>,
    transfers: BTreeSet<String>,
    keys: BTreeSet<String>,
}

impl Wanted {
    fn of(units: &[Unit<'_>]) -> Self {
        let mut wanted = Self::default();
        for key in units.iter().filter_map(|u| u.key) {
            wanted.keys.insert(key.key.clone());
        }
        for submission in units.iter().flat_map(|u| u.submissions) {
            if let Some(key) = &submission.idempotency_key {
                wanted.keys.insert(key.key.clone());
            }
            match &submission.command {
                Command::RegisterAsset(c) => {
                    wanted.assets.insert(c.code.to_string());
                }
                Command::OpenAccount(c) => {
                    wanted.accounts.insert(c.id.to_string());
                    wanted.assets.insert(c.asset.to_string());
                }
                Command::ChangeAccount { account, .. } => {
                    wanted.accounts.insert(account.to_string());
                }
                Command::PostTransfer(c) => {
                    wanted.transfers.insert(StreamId::Transfer(c.id.clone()).to_string());
                    if let Some(original) = &c.reverses {
                        wanted
                            .transfers
                            .insert(StreamId::Transfer(original.clone()).to_string());
                    }
                    for posting in c.postings() {
                        wanted.accounts.insert(posting.debit.to_string());
                        wanted.accounts.insert(posting.credit.to_string());
                    }
                }
            }
        }
        wanted
    }
}

fn corrupt(what: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("write-side state holds an invalid {what}").into())
}

pub(crate) async fn load(conn: &mut PgConnection, units: &[Unit<'_>]) -> Result<Loaded, sqlx::Error> {
    let mut wanted = Wanted::of(units);
    let mut loaded = Loaded {
        state: State::default(),
        origins: HashMap::new(),
        keys: HashMap::new(),
    };
    if !wanted.accounts.is_empty() {
        load_accounts(conn, &wanted.accounts, &mut loaded).await?;
        // Transfers need their accounts' assets for the overflow check.
        wanted
            .assets
            .extend(loaded.state.accounts.values().map(|a| a.asset.to_string()));
    }
    if !wanted.assets.is_empty() {
        load_assets(conn, &wanted.assets, &mut loaded).await?;
    }
    if !wanted.transfers.is_empty() {
        load_transfers(conn, &wanted.transfers, &mut loaded).await?;
    }
    if !wanted.keys.is_empty() {
        load_keys(conn, &wanted.keys, &mut loaded).await?;
    }
    Ok(loaded)
}

async fn load_accounts(
    conn: &mut PgConnection,
    ids: &BTreeSet<String>,
    loaded: &mut Loaded,
) -> Result<(), sqlx::Error> {
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let rows = sqlx::query(
        "SELECT id, asset, normal_side, debits_must_not_exceed_credits, credits_must_not_exceed_debits, \
                status, debits, credits, version, fingerprint, position \
           FROM write_accounts WHERE id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    for row in rows {
        let id = AccountId::parse(row.try_get::<String, _>("id")?).map_err(|_| corrupt("account id"))?;
        let normal_side = match row.try_get::<&str, _>("normal_side")? {
            "credit" => NormalSide::Credit,
            _ => NormalSide::Debit,
        };
        let status = AccountStatus::parse(row.try_get("status")?).ok_or_else(|| corrupt("account status"))?;
        let fingerprint: Vec<u8> = row.try_get("fingerprint")?;
        let account = Account {
            asset: AssetCode::parse(row.try_get::<String, _>("asset")?).map_err(|_| corrupt("asset code"))?,
            normal_side,
            flags: AccountFlags {
                debits_must_not_exceed_credits: row.try_get("debits_must_not_exceed_credits")?,
                credits_must_not_exceed_debits: row.try_get("credits_must_not_exceed_debits")?,
            },
            status,
            debits: row.try_get("debits")?,
            credits: row.try_get("credits")?,
            version: row.try_get("version")?,
            fingerprint: fingerprint.try_into().map_err(|_| corrupt("fingerprint"))?,
        };
        loaded
            .origins
            .insert(StreamId::Account(id.clone()), row.try_get("position")?);
        loaded.state.accounts.insert(id, account);
    }
    Ok(())
}

async fn load_assets(
    conn: &mut PgConnection,
    codes: &BTreeSet<String>,
    loaded: &mut Loaded,
) -> Result<(), sqlx::Error> {
    let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
    let rows = sqlx::query("SELECT code, scale, posted, position FROM write_assets WHERE code = ANY($1)")
        .bind(&codes)
        .fetch_all(&mut *conn)
        .await?;
    for row in rows {
        let code = AssetCode::parse(row.try_get::<String, _>("code")?).map_err(|_| corrupt("asset code"))?;
        let scale = u8::try_from(row.try_get::<i16, _>("scale")?)
            .ok()
            .and_then(|s| Scale::new(s).ok());
        let asset = Asset {
            scale: scale.ok_or_else(|| corrupt("scale"))?,
            posted: row.try_get("posted")?,
        };
        loaded
            .origins
            .insert(StreamId::Asset(code.clone()), row.try_get("position")?);
        loaded.state.assets.insert(code, asset);
    }
    Ok(())
}

/// Transfers are read from the log itself; their reversals through the `events_reversals` index.
async fn load_transfers(
    conn: &mut PgConnection,
    streams: &BTreeSet<String>,
    loaded: &mut Loaded,
) -> Result<(), sqlx::Error> {
    let streams: Vec<&str> = streams.iter().map(String::as_str).collect();
    let rows = sqlx::query(
        "SELECT e.position, e.data, r.data ->> 'id' AS reversed_by \
           FROM events e \
           LEFT JOIN events r ON r.event_type = 'TransferPosted' AND r.data ? 'reverses' \
                             AND r.data ->> 'reverses' = e.data ->> 'id' \
          WHERE e.stream_id = ANY($1) AND e.stream_version = 1",
    )
    .bind(&streams)
    .fetch_all(&mut *conn)
    .await?;
    for row in rows {
        let data = row.try_get("data")?;
        let Ok(Event::TransferPosted(posted)) = Event::decode("TransferPosted", ledger::SCHEMA_VERSION, &data) else {
            return Err(corrupt("transfer event"));
        };
        let reversed_by = row
            .try_get::<Option<String>, _>("reversed_by")?
            .map(TransferId::parse)
            .transpose()
            .map_err(|_| corrupt("transfer id"))?;
        let transfer = Transfer {
            fingerprint: posted.fingerprint(),
            postings: posted.postings.clone(),
            reversed_by,
        };
        loaded
            .origins
            .insert(StreamId::Transfer(posted.id.clone()), row.try_get("position")?);
        loaded.state.transfers.insert(posted.id, transfer);
    }
    Ok(())
}

async fn load_keys(conn: &mut PgConnection, keys: &BTreeSet<String>, loaded: &mut Loaded) -> Result<(), sqlx::Error> {
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let rows = sqlx::query("SELECT key, request_hash, position, response FROM idempotency_keys WHERE key = ANY($1)")
        .bind(&keys)
        .fetch_all(&mut *conn)
        .await?;
    for row in rows {
        let hash: Vec<u8> = row.try_get("request_hash")?;
        let record = KeyRecord {
            request_hash: hash.try_into().map_err(|_| corrupt("request hash"))?,
            position: row.try_get("position")?,
            response: row.try_get("response")?,
        };
        loaded.keys.insert(row.try_get("key")?, record);
    }
    Ok(())
}
