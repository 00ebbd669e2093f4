//! Checking one record's inclusion in a signed checkpoint, and one checkpoint's extension by a
//! later one, from query-api's Merkle proofs: a logarithmic number of hashes instead of the log.

use std::path::Path;

use ledger::log::Hash;
use ledger::merkle::{leaf_hash, verify_consistency, verify_inclusion};
use partida_eventstore::StoredEvent;
use partida_eventstore::checkpoint::{PublicKey, StoredCheckpoint};
use serde::Deserialize;

use crate::api::QueryApi;

#[derive(Deserialize)]
struct InclusionAnswer {
    position: i64,
    tree_size: i64,
    checkpoint: StoredCheckpoint,
    proof: Vec<String>,
}

#[derive(Deserialize)]
struct ConsistencyAnswer {
    from: StoredCheckpoint,
    to: StoredCheckpoint,
    proof: Vec<String>,
}

#[derive(Deserialize)]
struct Keys {
    keys: Vec<PublicKey>,
}

#[derive(Deserialize)]
struct Events {
    events: Vec<StoredEvent>,
}

/// What a proof established, in a sentence.
pub type Verdict = Result<String, String>;

/// Proves that the record at `position` (its every field, re-hashed here) is in the log signed at
/// `checkpoint` (default: the latest).
pub async fn inclusion(
    api: &QueryApi,
    position: i64,
    checkpoint: Option<i64>,
    keys: Option<&Path>,
) -> anyhow::Result<Verdict> {
    let mut query = vec![("position", position)];
    query.extend(checkpoint.map(|c| ("checkpoint", c)));
    let answer: InclusionAnswer = get(api, "/v1/audit/proof/inclusion", &query).await?;
    let events: Events = get(api, "/v1/events", &[("after", position - 1), ("limit", 1)]).await?;
    let Some(record) = events.events.into_iter().next().filter(|e| e.position == position) else {
        return Ok(Err(format!(
            "query-api did not serve the record at position {position}"
        )));
    };
    if !record.hash_matches() {
        return Ok(Err(format!(
            "position {position}: the record does not match its own hash"
        )));
    }
    if let Err(message) = check_signature(api, keys, &answer.checkpoint).await? {
        return Ok(Err(message));
    }
    let (Some(proof), Some(signed)) = (hashes(&answer.proof), answer.checkpoint.to_checkpoint()) else {
        return Ok(Err("the proof is malformed".into()));
    };
    let (Ok(index), Ok(size)) = (u64::try_from(answer.position - 1), u64::try_from(answer.tree_size)) else {
        return Ok(Err("the proof names impossible positions".into()));
    };
    if answer.position != position || answer.tree_size != signed.position {
        return Ok(Err("the proof is for another position or tree".into()));
    }
    Ok(
        if verify_inclusion(&leaf_hash(&record.hash), index, size, &proof, &signed.merkle_root) {
            Ok(format!(
                "position {position} ({} {}) is included in the log signed at position {} by {}",
                record.event_type, record.stream_id, signed.position, signed.key_id
            ))
        } else {
            Err(format!(
                "position {position}: the inclusion proof does not lead to the Merkle root signed at {}",
                signed.position
            ))
        },
    )
}

/// Proves that the log signed at `from` is a prefix of the log signed at `to` (default: the latest).
pub async fn consistency(api: &QueryApi, from: i64, to: Option<i64>, keys: Option<&Path>) -> anyhow::Result<Verdict> {
    let mut query = vec![("from", from)];
    query.extend(to.map(|t| ("to", t)));
    let answer: ConsistencyAnswer = get(api, "/v1/audit/proof/consistency", &query).await?;
    for checkpoint in [&answer.from, &answer.to] {
        if let Err(message) = check_signature(api, keys, checkpoint).await? {
            return Ok(Err(message));
        }
    }
    let (Some(proof), Some(old), Some(new)) = (
        hashes(&answer.proof),
        answer.from.to_checkpoint(),
        answer.to.to_checkpoint(),
    ) else {
        return Ok(Err("the proof is malformed".into()));
    };
    let (Ok(old_size), Ok(new_size)) = (u64::try_from(old.position), u64::try_from(new.position)) else {
        return Ok(Err("the proof names impossible positions".into()));
    };
    Ok(
        if verify_consistency(old_size, new_size, &old.merkle_root, &new.merkle_root, &proof) {
            Ok(format!(
                "the log signed at position {} is a prefix of the log signed at position {}",
                old.position, new.position
            ))
        } else {
            Err(format!(
                "the log signed at {} is NOT a prefix of the log signed at {}: history was rewritten",
                old.position, new.position
            ))
        },
    )
}

async fn check_signature(
    api: &QueryApi,
    keys: Option<&Path>,
    checkpoint: &StoredCheckpoint,
) -> anyhow::Result<Result<(), String>> {
    let keys: Keys = match keys {
        Some(path) => serde_json::from_slice(&std::fs::read(path)?)?,
        None => get(api, "/v1/audit/keys", &[] as &[(&str, i64)]).await?,
    };
    let Some(signed) = checkpoint.to_checkpoint() else {
        return Ok(Err(format!(
            "checkpoint at position {}: malformed",
            checkpoint.position
        )));
    };
    let Some(key) = keys
        .keys
        .iter()
        .find(|k| k.key_id == signed.key_id)
        .and_then(PublicKey::bytes)
    else {
        return Ok(Err(format!(
            "checkpoint at position {}: its key {} is not trusted",
            checkpoint.position, signed.key_id
        )));
    };
    Ok(signed.verify(&key).map_err(|e| e.to_string()))
}

fn hashes(hex_hashes: &[String]) -> Option<Vec<Hash>> {
    hex_hashes
        .iter()
        .map(|text| {
            let mut hash = [0u8; 32];
            hex::decode_to_slice(text, &mut hash).ok()?;
            Some(hash)
        })
        .collect()
}

async fn get<T: serde::de::DeserializeOwned>(api: &QueryApi, path: &str, query: &[(&str, i64)]) -> anyhow::Result<T> {
    let url = api.url(path);
    let response = api.http().get(&url).query(query).send().await?;
    let status = response.status();
    if !status.is_success() {
        anyhow::bail!("{url} answered {status}: {}", response.text().await.unwrap_or_default());
    }
    Ok(response.json().await?)
}
