//! Signed checkpoints for a verification: where they come from, which keys are trusted, and
//! the check of each against the log as it is replayed.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use ledger::log::Hash;
use partida_eventstore::checkpoint::{PublicKey, StoredCheckpoint};
use serde::Deserialize;
use sqlx::PgConnection;

use crate::api::QueryApi;

/// The checkpoints to check, by position, and the keys to check them with.
#[derive(Debug, Default)]
pub struct Checkpoints {
    pub by_position: BTreeMap<i64, StoredCheckpoint>,
    pub keys: HashMap<String, [u8; 32]>,
    /// Where the keys came from: a file the auditor trusts, or the service itself.
    pub keys_from: String,
    /// Whether the log source is the whole log (a checkpoint beyond its end is then a failure).
    pub whole_log: bool,
}

#[derive(Deserialize)]
struct KeyList {
    keys: Vec<PublicKey>,
}

#[derive(Deserialize)]
struct CheckpointPage {
    checkpoints: Vec<StoredCheckpoint>,
    next: Option<i64>,
}

impl Checkpoints {
    /// From query-api: every checkpoint and every key it serves.
    pub async fn from_query_api(api: &QueryApi) -> anyhow::Result<Self> {
        let http = api.http();
        let mut found = Self {
            whole_log: true,
            ..Self::default()
        };
        let mut after = 0;
        loop {
            let page: CheckpointPage = http
                .get(api.url("/v1/audit/checkpoints"))
                .query(&[("after", after), ("limit", 1000)])
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            found.add(page.checkpoints);
            match page.next {
                Some(next) => after = next,
                None => break,
            }
        }
        let keys: KeyList = http
            .get(api.url("/v1/audit/keys"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        found.set_keys(
            keys.keys,
            format!("{} (the service's own list)", api.url("/v1/audit/keys")),
        );
        Ok(found)
    }

    /// From the database, in the snapshot the log is read in.
    pub async fn from_database(connection: &mut PgConnection) -> anyhow::Result<Self> {
        let checkpoints = partida_eventstore::checkpoint::checkpoints(&mut *connection, 0, i64::MAX).await?;
        let keys = partida_eventstore::checkpoint::public_keys(&mut *connection).await?;
        let mut found = Self {
            whole_log: true,
            ..Self::default()
        };
        found.add(checkpoints);
        found.set_keys(keys, "the database's signing_keys table".into());
        Ok(found)
    }

    /// From a publication directory: `checkpoint-*.json` files and `keys.json`.
    pub fn from_dir(dir: &Path) -> anyhow::Result<Self> {
        let mut found = Self::default();
        let mut checkpoints = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if name.starts_with("checkpoint-") && name.ends_with(".json") {
                checkpoints.push(serde_json::from_slice(&std::fs::read(&path)?)?);
            }
        }
        found.add(checkpoints);
        let keys_file = dir.join("keys.json");
        if keys_file.is_file() {
            let keys: KeyList = serde_json::from_slice(&std::fs::read(&keys_file)?)?;
            found.set_keys(keys.keys, keys_file.display().to_string());
        }
        Ok(found)
    }

    /// Replaces the keys with the ones in a file the auditor trusts.
    pub fn trust_keys_file(&mut self, path: &Path) -> anyhow::Result<()> {
        let keys: KeyList = serde_json::from_slice(&std::fs::read(path)?)?;
        self.keys.clear();
        self.set_keys(keys.keys, format!("{} (trusted)", path.display()));
        Ok(())
    }

    fn add(&mut self, checkpoints: impl IntoIterator<Item = StoredCheckpoint>) {
        for checkpoint in checkpoints {
            self.by_position.insert(checkpoint.position, checkpoint);
        }
    }

    fn set_keys(&mut self, keys: impl IntoIterator<Item = PublicKey>, from: String) {
        for key in keys {
            if let Some(bytes) = key.bytes() {
                self.keys.insert(key.key_id, bytes);
            }
        }
        self.keys_from = from;
    }

    /// Checks the checkpoint at `position`, if there is one, against the log's chain hash and
    /// Merkle root there, and its signature against the trusted keys.
    pub fn check(&self, position: i64, chain_hash: &Hash, merkle_root: &Hash) -> Result<bool, String> {
        let Some(stored) = self.by_position.get(&position) else {
            return Ok(false);
        };
        let signed = stored
            .to_checkpoint()
            .ok_or_else(|| format!("checkpoint at position {position}: malformed"))?;
        let key = self.keys.get(&signed.key_id).ok_or_else(|| {
            format!(
                "checkpoint at position {position}: signed by key {}, which is not among the keys from {}",
                signed.key_id, self.keys_from
            )
        })?;
        signed
            .verify(key)
            .map_err(|e| format!("checkpoint at position {position}: {e}"))?;
        if signed.chain_hash != *chain_hash {
            return Err(format!(
                "position {position}: the log no longer matches the checkpoint signed there: chain hash {} in the log, {} signed",
                hex::encode(chain_hash),
                stored.chain_hash
            ));
        }
        if signed.merkle_root != *merkle_root {
            return Err(format!(
                "position {position}: the Merkle root of the log is {}, but {} was signed",
                hex::encode(merkle_root),
                stored.merkle_root
            ));
        }
        Ok(true)
    }

    /// Checkpoints after `last`: the log ends before what was signed.
    pub fn beyond(&self, last: i64) -> impl Iterator<Item = &StoredCheckpoint> {
        self.by_position.range(last + 1..).map(|(_, checkpoint)| checkpoint)
    }
}
