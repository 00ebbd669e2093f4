//! The auditors' reads: the export, signed checkpoints and their keys, Merkle proofs.
//!
//! `GET /v1/audit/export`: the log as NDJSON, for auditors to verify offline.
//!
//! One event per line, in the `/v1/events` shape (every hashed field, hashes in hex), from `from`
//! (default 1) to `to` (default: the head when the request arrives, so the export is a fixed,
//! verifiable prefix even while the log grows). It is read page by page and streamed, so memory
//! stays flat for any length; it reads only the log, so a hot standby serves it too. A failure
//! part-way aborts the response instead of ending it cleanly: a truncated export never looks
//! complete.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use partida_service::{ApiError, Query};
use serde::Deserialize;
use serde_json::{Value, json};

use super::db_error;
use crate::AppState;

/// Events read per query.
const PAGE: i64 = 2_000;

#[derive(Deserialize)]
pub(crate) struct ExportParams {
    from: Option<i64>,
    to: Option<i64>,
}

pub(crate) async fn export(
    State(state): State<AppState>,
    Query(params): Query<ExportParams>,
) -> Result<Response, ApiError> {
    let from = params.from.unwrap_or(1);
    if from < 1 {
        return Err(ApiError::validation("from must be a position of 1 or more", "from"));
    }
    let head = partida_eventstore::head(&state.pool).await.map_err(|e| db_error(&e))?;
    let to = match params.to {
        Some(to) if to < from => {
            return Err(ApiError::validation("to must not be before from", "to"));
        }
        Some(to) => to.min(head),
        None => head,
    };
    let pages = futures_util::stream::unfold(from - 1, move |after| {
        let pool = state.pool.clone();
        async move {
            if after >= to {
                return None;
            }
            let limit = PAGE.min(to - after);
            match partida_eventstore::events_after(&pool, after, limit).await {
                Ok(events) if events.is_empty() => None,
                Ok(events) => {
                    let last = events.last().map_or(after, |e| e.position);
                    let mut chunk = Vec::with_capacity(events.len() * 512);
                    for event in &events {
                        if serde_json::to_writer(&mut chunk, event).is_err() {
                            return Some((Err(std::io::Error::other("an event could not be encoded")), to));
                        }
                        chunk.push(b'\n');
                    }
                    Some((Ok(Bytes::from(chunk)), last))
                }
                Err(error) => {
                    tracing::warn!(%error, after, "export aborted: the log could not be read");
                    Some((Err(std::io::Error::other(error)), to))
                }
            }
        }
    });
    let mut response = Response::new(Body::from_stream(pages));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    if let Ok(range) = HeaderValue::from_str(&format!("{from}-{to}")) {
        headers.insert("x-partida-export-range", range);
    }
    Ok(response)
}

#[derive(Deserialize)]
pub(crate) struct CheckpointParams {
    after: Option<i64>,
    limit: Option<i64>,
}

/// `GET /v1/audit/checkpoints?after=&limit=`: signed checkpoints by position.
pub(crate) async fn checkpoints(
    State(state): State<AppState>,
    Query(params): Query<CheckpointParams>,
) -> Result<Json<Value>, ApiError> {
    let limit = super::page::limit(params.limit)?;
    let after = params.after.unwrap_or(0);
    let checkpoints = partida_eventstore::checkpoint::checkpoints(&state.pool, after, limit)
        .await
        .map_err(|e| db_error(&e))?;
    let next = (checkpoints.len() as i64 == limit)
        .then(|| checkpoints.last().map(|c| c.position))
        .flatten();
    Ok(Json(json!({ "checkpoints": checkpoints, "next": next })))
}

/// `GET /v1/audit/checkpoints/latest`: the most recent signed checkpoint.
pub(crate) async fn latest_checkpoint(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let latest = checkpoint(&state, None, "checkpoint").await?;
    Ok(Json(serde_json::to_value(latest).unwrap_or_default()))
}

/// `GET /v1/audit/keys`: every public key that ever signed a checkpoint.
pub(crate) async fn keys(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let keys = partida_eventstore::checkpoint::public_keys(&state.pool)
        .await
        .map_err(|e| db_error(&e))?;
    Ok(Json(json!({ "keys": keys })))
}

#[derive(Deserialize)]
pub(crate) struct InclusionParams {
    position: Option<i64>,
    checkpoint: Option<i64>,
}

/// `GET /v1/audit/proof/inclusion?position=N&checkpoint=M`: the audit path of the record at N
/// in the Merkle tree signed at checkpoint M (default: the latest).
pub(crate) async fn inclusion(
    State(state): State<AppState>,
    Query(params): Query<InclusionParams>,
) -> Result<Json<Value>, ApiError> {
    let position = params
        .position
        .filter(|p| *p >= 1)
        .ok_or_else(|| ApiError::validation("position must be a position of 1 or more", "position"))?;
    let checkpoint = checkpoint(&state, params.checkpoint, "checkpoint").await?;
    if position > checkpoint.position {
        return Err(ApiError::validation(
            format!("position {position} is after checkpoint {}", checkpoint.position),
            "position",
        ));
    }
    let record = partida_eventstore::events_after(&state.pool, position - 1, 1)
        .await
        .map_err(|e| db_error(&e))?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::unavailable("the log is not readable that far here yet; retry shortly"))?;
    let proof = partida_eventstore::checkpoint::inclusion_proof(&state.pool, position, checkpoint.position)
        .await
        .map_err(|e| db_error(&e))?
        .ok_or_else(not_yet_replicated)?;
    Ok(Json(json!({
        "position": position,
        "record_hash": hex::encode(record.hash),
        "leaf_hash": hex::encode(ledger::merkle::leaf_hash(&record.hash)),
        "leaf_index": position - 1,
        "tree_size": checkpoint.position,
        "checkpoint": checkpoint,
        "proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
pub(crate) struct ConsistencyParams {
    from: Option<i64>,
    to: Option<i64>,
}

/// `GET /v1/audit/proof/consistency?from=M1&to=M2`: the proof that the tree signed at checkpoint
/// M1 is a prefix of the tree signed at M2 (default: the latest).
pub(crate) async fn consistency(
    State(state): State<AppState>,
    Query(params): Query<ConsistencyParams>,
) -> Result<Json<Value>, ApiError> {
    let Some(from) = params.from else {
        return Err(ApiError::validation("from must name a checkpoint's position", "from"));
    };
    let old = checkpoint(&state, Some(from), "from").await?;
    let new = checkpoint(&state, params.to, "to").await?;
    if old.position > new.position {
        return Err(ApiError::validation("from must not be after to", "from"));
    }
    let proof = partida_eventstore::checkpoint::consistency_proof(&state.pool, old.position, new.position)
        .await
        .map_err(|e| db_error(&e))?
        .ok_or_else(not_yet_replicated)?;
    Ok(Json(json!({
        "from": old,
        "to": new,
        "proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
    })))
}

/// The checkpoint at `position`, or the latest; 404 when there is none.
async fn checkpoint(
    state: &AppState,
    position: Option<i64>,
    field: &str,
) -> Result<partida_eventstore::checkpoint::StoredCheckpoint, ApiError> {
    let found = match position {
        Some(position) => partida_eventstore::checkpoint::checkpoint_at(&state.pool, position).await,
        None => partida_eventstore::checkpoint::latest(&state.pool).await,
    }
    .map_err(|e| db_error(&e))?;
    found.ok_or_else(|| {
        let message = match position {
            Some(position) => format!("no checkpoint was signed at position {position}"),
            None => "no checkpoint has been signed yet".to_owned(),
        };
        ApiError::not_found("checkpoint_not_found", message).with_details(json!({ "field": field }))
    })
}

fn not_yet_replicated() -> ApiError {
    ApiError::unavailable("the Merkle tree is not readable that far here yet; retry shortly")
}
