//! Signing rounds and what they store: checkpoints, the keys that signed them, and the Merkle
//! tree's perfect subtrees (for proofs).
//!
//! A round runs in one transaction under an advisory lock, so rounds from several command-api
//! instances never interleave: it reads the last checkpoint and its Merkle frontier, folds in
//! every event after it (re-checking the chain: a broken chain is never signed), stores the
//! completed subtrees, waits until the configured number of standbys has replayed the log that
//! far, and inserts the signed checkpoint.

use std::time::Duration;

use ledger::checkpoint::{Checkpoint, key_id, public_key};
use std::collections::HashMap;

use ledger::log::{ChainCheck, Hash};
use ledger::merkle::{self, Frontier, Nodes, leaf_hash};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgExecutor, PgPool, Row};
use time::OffsetDateTime;

use crate::log::events_after;
use crate::time::{datetime_to_micros, format_timestamp, micros_to_datetime};

/// The advisory lock key of signing rounds ("partida-checkpoint").
const ROUND_LOCK: i64 = 0x7061_7274_6964_6163;
/// Events folded per query.
const PAGE: i64 = 5_000;

/// A checkpoint as served and published: hashes and signature in hex, time in RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = Checkpoint)]
pub struct StoredCheckpoint {
    /// The log's head when signed: the checkpoint covers positions 1 to this.
    #[schema(minimum = 1)]
    pub position: i64,
    /// The `hash` of the event at `position`.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub chain_hash: String,
    /// The root of the Merkle tree over the records 1 to `position` (RFC 9162).
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub merkle_root: String,
    #[schema(format = DateTime)]
    pub signed_at: String,
    /// The signing key (see `/v1/audit/keys`).
    pub key_id: String,
    /// Ed25519 over the checkpoint's canonical form (docs/AUDITING.md), 128 hex digits.
    #[schema(pattern = "^[0-9a-f]{128}$")]
    pub signature: String,
}

/// A signing key's public half, as served and published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PublicKey {
    pub key_id: String,
    /// `ed25519`.
    pub algorithm: String,
    /// 64 hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub public_key: String,
}

impl StoredCheckpoint {
    pub fn from_checkpoint(checkpoint: &Checkpoint) -> Self {
        Self {
            position: checkpoint.position,
            chain_hash: hex::encode(checkpoint.chain_hash),
            merkle_root: hex::encode(checkpoint.merkle_root),
            signed_at: format_timestamp(micros_to_datetime(checkpoint.signed_at)),
            key_id: checkpoint.key_id.clone(),
            signature: hex::encode(checkpoint.signature),
        }
    }

    /// Back to the signed form; `None` when a field is malformed.
    pub fn to_checkpoint(&self) -> Option<Checkpoint> {
        Some(Checkpoint {
            position: self.position,
            chain_hash: hex_array(&self.chain_hash)?,
            merkle_root: hex_array(&self.merkle_root)?,
            signed_at: crate::time::parse_timestamp(&self.signed_at)?,
            key_id: self.key_id.clone(),
            signature: hex_array(&self.signature)?,
        })
    }
}

impl PublicKey {
    pub fn bytes(&self) -> Option<[u8; 32]> {
        hex_array(&self.public_key)
    }
}

fn hex_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut bytes = [0u8; N];
    hex::decode_to_slice(text, &mut bytes).ok()?;
    Some(bytes)
}

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("the log does not verify, so it is not signed: {0}")]
    BrokenChain(String),
    #[error("{wanted} standby(s) must replay position {position} before it is signed; {replayed} did in time")]
    NotReplicated {
        position: i64,
        wanted: usize,
        replayed: i64,
    },
    #[error("the last checkpoint's stored frontier does not fit its position {0}")]
    BadFrontier(i64),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Signs checkpoints with one Ed25519 key.
#[derive(Clone)]
pub struct Signer {
    seed: [u8; 32],
    public_key: [u8; 32],
    key_id: String,
    /// Standbys that must have replayed a position before it is signed (0: none configured).
    min_standbys: usize,
    /// How long a round waits for them.
    replication_wait: Duration,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl Signer {
    pub fn new(seed: [u8; 32], min_standbys: usize) -> Self {
        let public_key = public_key(&seed);
        Self {
            seed,
            key_id: key_id(&public_key),
            public_key,
            min_standbys,
            replication_wait: Duration::from_secs(10),
        }
    }

    /// How long a round waits for the standbys before it gives up (default 10 s).
    pub fn with_replication_wait(mut self, wait: Duration) -> Self {
        self.replication_wait = wait;
        self
    }

    /// A key from a file holding the 32-byte secret seed as 64 hex digits.
    pub fn seed_from_file(path: &std::path::Path) -> Result<[u8; 32], String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        hex_array(text.trim()).ok_or_else(|| format!("{} must hold 64 hex digits (an Ed25519 seed)", path.display()))
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn public(&self) -> PublicKey {
        PublicKey {
            key_id: self.key_id.clone(),
            algorithm: "ed25519".into(),
            public_key: hex::encode(self.public_key),
        }
    }

    /// Records the public key (once); keys are never removed, so old checkpoints stay verifiable.
    pub async fn register(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO signing_keys (key_id, algorithm, public_key) VALUES ($1, 'ed25519', $2) \
             ON CONFLICT (key_id) DO NOTHING",
        )
        .bind(&self.key_id)
        .bind(self.public_key.as_slice())
        .execute(pool)
        .await?;
        Ok(())
    }

    /// One round: the new checkpoint, or `None` when nothing was written since the last one.
    pub async fn sign_round(&self, pool: &PgPool) -> Result<Option<StoredCheckpoint>, SignError> {
        let mut tx = pool.begin().await?;
        // Rounds of several instances queue on the lock, one possibly waiting out another's
        // replication wait: the pool's statement timeout must not cancel the queueing.
        sqlx::query("SET LOCAL statement_timeout = 0").execute(&mut *tx).await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(ROUND_LOCK)
            .execute(&mut *tx)
            .await?;
        let head: i64 = sqlx::query_scalar("SELECT position FROM event_head")
            .fetch_one(&mut *tx)
            .await?;
        let last = sqlx::query("SELECT position, chain_hash, frontier FROM checkpoints ORDER BY position DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
        let (mut chain, mut frontier) = match last {
            None => (ChainCheck::from_genesis(), Frontier::default()),
            Some(row) => {
                let position: i64 = row.try_get("position")?;
                let chain_hash: Vec<u8> = row.try_get("chain_hash")?;
                let peaks: Vec<u8> = row.try_get("frontier")?;
                let peaks: Vec<Hash> = peaks.chunks_exact(32).filter_map(|c| c.try_into().ok()).collect();
                let frontier = u64::try_from(position)
                    .ok()
                    .and_then(|size| Frontier::from_peaks(size, &peaks))
                    .ok_or(SignError::BadFrontier(position))?;
                let chain_hash: Hash = chain_hash.try_into().map_err(|_| SignError::BadFrontier(position))?;
                (ChainCheck::after(position, chain_hash, i64::MIN), frontier)
            }
        };
        if chain.position() >= head {
            return Ok(None);
        }
        self.wait_for_standbys(&mut tx, head).await?;
        while chain.position() < head {
            let limit = PAGE.min(head - chain.position());
            let events = events_after(&mut *tx, chain.position(), limit).await?;
            if events.is_empty() {
                return Err(SignError::BrokenChain(format!(
                    "position {} is missing below the head {head}",
                    chain.position() + 1
                )));
            }
            let mut nodes = (Vec::new(), Vec::new(), Vec::new());
            for event in &events {
                chain
                    .check(&event.fields(), &event.hash)
                    .map_err(|e| SignError::BrokenChain(e.to_string()))?;
                for (level, index, hash) in frontier.push(leaf_hash(&event.hash)) {
                    nodes.0.push(i16::try_from(level).unwrap_or(i16::MAX));
                    nodes.1.push(i64::try_from(index).unwrap_or(i64::MAX));
                    nodes.2.push(hash.to_vec());
                }
            }
            sqlx::query(
                "INSERT INTO merkle_nodes (level, index, hash) \
                 SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[]) ON CONFLICT DO NOTHING",
            )
            .bind(&nodes.0)
            .bind(&nodes.1)
            .bind(&nodes.2)
            .execute(&mut *tx)
            .await?;
        }
        let checkpoint = Checkpoint::sign(
            &self.seed,
            head,
            *chain.head_hash(),
            frontier.root(),
            datetime_to_micros(OffsetDateTime::now_utc()),
        );
        sqlx::query(
            "INSERT INTO checkpoints (position, chain_hash, merkle_root, signed_at, key_id, signature, frontier) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(checkpoint.position)
        .bind(checkpoint.chain_hash.as_slice())
        .bind(checkpoint.merkle_root.as_slice())
        .bind(micros_to_datetime(checkpoint.signed_at))
        .bind(&checkpoint.key_id)
        .bind(checkpoint.signature.as_slice())
        .bind(frontier.peaks().concat())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(StoredCheckpoint::from_checkpoint(&checkpoint)))
    }

    /// Waits until `min_standbys` standbys have replayed the WAL that holds `position`.
    async fn wait_for_standbys(&self, tx: &mut PgConnection, position: i64) -> Result<(), SignError> {
        if self.min_standbys == 0 {
            return Ok(());
        }
        // Everything up to the head was committed before this snapshot, so it lies before the
        // current WAL position.
        let lsn: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
            .fetch_one(&mut *tx)
            .await?;
        let deadline = tokio::time::Instant::now() + self.replication_wait;
        loop {
            let replayed: i64 =
                sqlx::query_scalar("SELECT count(*) FROM pg_stat_replication WHERE replay_lsn >= $1::pg_lsn")
                    .bind(&lsn)
                    .fetch_one(&mut *tx)
                    .await?;
            if replayed >= self.min_standbys as i64 {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(SignError::NotReplicated {
                    position,
                    wanted: self.min_standbys,
                    replayed,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Checkpoints by position, after `after`.
pub async fn checkpoints(
    db: impl PgExecutor<'_>,
    after: i64,
    limit: i64,
) -> Result<Vec<StoredCheckpoint>, sqlx::Error> {
    let sql = format!(
        "SELECT position, chain_hash, merkle_root, signed_at, key_id, signature FROM checkpoints \
         WHERE position > $1 ORDER BY position LIMIT {limit}"
    );
    let rows = sqlx::query(&sql).bind(after).fetch_all(db).await?;
    rows.iter()
        .map(|row| {
            let bytes = |name: &str| row.try_get::<Vec<u8>, _>(name).map(hex::encode);
            Ok(StoredCheckpoint {
                position: row.try_get("position")?,
                chain_hash: bytes("chain_hash")?,
                merkle_root: bytes("merkle_root")?,
                signed_at: format_timestamp(row.try_get("signed_at")?),
                key_id: row.try_get("key_id")?,
                signature: bytes("signature")?,
            })
        })
        .collect()
}

/// The checkpoint at `position`, if one was signed there.
pub async fn checkpoint_at(db: impl PgExecutor<'_>, position: i64) -> Result<Option<StoredCheckpoint>, sqlx::Error> {
    Ok(checkpoints(db, position.saturating_sub(1), 1)
        .await?
        .into_iter()
        .find(|c| c.position == position))
}

/// The latest checkpoint, if any.
pub async fn latest(db: impl PgExecutor<'_> + Copy) -> Result<Option<StoredCheckpoint>, sqlx::Error> {
    let position: Option<i64> = sqlx::query_scalar("SELECT max(position) FROM checkpoints")
        .fetch_one(db)
        .await?;
    match position {
        Some(position) => checkpoint_at(db, position).await,
        None => Ok(None),
    }
}

/// Every key that ever signed, oldest first.
pub async fn public_keys(db: impl PgExecutor<'_>) -> Result<Vec<PublicKey>, sqlx::Error> {
    let rows: Vec<(String, String, Vec<u8>)> =
        sqlx::query_as("SELECT key_id, algorithm, public_key FROM signing_keys ORDER BY first_used_at, key_id")
            .fetch_all(db)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(key_id, algorithm, public_key)| PublicKey {
            key_id,
            algorithm,
            public_key: hex::encode(public_key),
        })
        .collect())
}

/// Merkle node hashes by `(level, index)`, fetched in one query.
pub async fn merkle_nodes(
    db: impl PgExecutor<'_>,
    keys: &[(u32, u64)],
) -> Result<Vec<((u32, u64), Hash)>, sqlx::Error> {
    let levels: Vec<i16> = keys
        .iter()
        .map(|(l, _)| i16::try_from(*l).unwrap_or(i16::MAX))
        .collect();
    let indexes: Vec<i64> = keys
        .iter()
        .map(|(_, i)| i64::try_from(*i).unwrap_or(i64::MAX))
        .collect();
    let rows: Vec<(i16, i64, Vec<u8>)> = sqlx::query_as(
        "SELECT n.level, n.index, n.hash FROM merkle_nodes n \
         JOIN unnest($1::smallint[], $2::bigint[]) AS k(level, index) USING (level, index)",
    )
    .bind(&levels)
    .bind(&indexes)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(level, index, hash)| {
            Some((
                (u32::try_from(level).ok()?, u64::try_from(index).ok()?),
                hash.try_into().ok()?,
            ))
        })
        .collect())
}

/// Remembers which nodes a proof needs (answering with placeholders), so they can be fetched in
/// one query before the proof is built for real.
#[derive(Default)]
struct Wanted(std::sync::Mutex<Vec<(u32, u64)>>);

impl Nodes for Wanted {
    fn node(&self, level: u32, index: u64) -> Option<Hash> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((level, index));
        Some([0; 32])
    }
}

struct Fetched(HashMap<(u32, u64), Hash>);

impl Nodes for Fetched {
    fn node(&self, level: u32, index: u64) -> Option<Hash> {
        self.0.get(&(level, index)).copied()
    }
}

/// Builds a proof from stored nodes: `build` runs once to learn the nodes, once with them.
/// `None` when a node is missing (the tree has not been stored that far).
async fn prove(
    db: impl PgExecutor<'_>,
    build: impl Fn(&dyn Nodes) -> Option<Vec<Hash>>,
) -> Result<Option<Vec<Hash>>, sqlx::Error> {
    let wanted = Wanted::default();
    if build(&wanted).is_none() {
        return Ok(None);
    }
    let keys = wanted.0.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    let fetched = Fetched(merkle_nodes(db, &keys).await?.into_iter().collect());
    Ok(build(&fetched))
}

/// The audit path of the record at `position` in the tree of the first `size` records.
pub async fn inclusion_proof(
    db: impl PgExecutor<'_>,
    position: i64,
    size: i64,
) -> Result<Option<Vec<Hash>>, sqlx::Error> {
    let (Ok(index), Ok(size)) = (u64::try_from(position - 1), u64::try_from(size)) else {
        return Ok(None);
    };
    prove(db, |nodes| merkle::inclusion_proof(nodes, index, size)).await
}

/// The proof that the tree of the first `old` records is a prefix of the tree of `new`.
pub async fn consistency_proof(db: impl PgExecutor<'_>, old: i64, new: i64) -> Result<Option<Vec<Hash>>, sqlx::Error> {
    let (Ok(old), Ok(new)) = (u64::try_from(old), u64::try_from(new)) else {
        return Ok(None);
    };
    prove(db, |nodes| merkle::consistency_proof(nodes, old, new)).await
}
