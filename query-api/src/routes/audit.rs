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

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use partida_eventstore::checkpoint::{PublicKey, StoredCheckpoint};
use partida_service::Json;
use partida_service::openapi::{self, ErrorBody};
use partida_service::{ApiError, Query};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::db_error;
use crate::AppState;

/// Events read per query.
const PAGE: i64 = 2_000;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ExportParams {
    /// The first position; default 1.
    #[param(minimum = 1)]
    from: Option<i64>,
    /// The last position; default the head when the request arrives.
    to: Option<i64>,
}

/// The log as NDJSON, one event per line in the `/v1/events` shape, for auditors to verify
/// offline (`partida-audit verify`). Streamed; a failure part-way aborts the response, so a
/// truncated export never looks complete.
#[utoipa::path(
    get,
    path = "/v1/audit/export",
    operation_id = "exportLog",
    tag = "audit",
    params(ExportParams),
    responses((
        status = 200,
        description = "One event per line; `X-Partida-Export-Range` is `from-to`.",
        content_type = "application/x-ndjson",
        body = String,
        headers(("X-Partida-Export-Range" = String, description = "The positions exported: `from-to`.")),
    ))
)]
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct CheckpointParams {
    /// The position of the last checkpoint seen: the previous page's `next`.
    after: Option<i64>,
    /// 1 to 1,000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// A page of checkpoints.
#[derive(Serialize, ToSchema)]
pub(crate) struct CheckpointPage {
    checkpoints: Vec<StoredCheckpoint>,
    /// Pass as `after` for the next page; null on the last.
    next: Option<i64>,
}

/// Signed checkpoints by position.
#[utoipa::path(
    get,
    path = "/v1/audit/checkpoints",
    operation_id = "listCheckpoints",
    tag = "audit",
    params(CheckpointParams),
    responses((status = 200, body = CheckpointPage))
)]
pub(crate) async fn checkpoints(
    State(state): State<AppState>,
    Query(params): Query<CheckpointParams>,
) -> Result<Json<CheckpointPage>, ApiError> {
    let limit = super::page::limit(params.limit)?;
    let after = params.after.unwrap_or(0);
    let checkpoints = partida_eventstore::checkpoint::checkpoints(&state.pool, after, limit)
        .await
        .map_err(|e| db_error(&e))?;
    let next = (checkpoints.len() as i64 == limit)
        .then(|| checkpoints.last().map(|c| c.position))
        .flatten();
    Ok(Json(CheckpointPage { checkpoints, next }))
}

/// The most recent signed checkpoint.
#[utoipa::path(
    get,
    path = "/v1/audit/checkpoints/latest",
    operation_id = "getLatestCheckpoint",
    tag = "audit",
    responses(
        (status = 200, body = StoredCheckpoint),
        (status = 404, description = "`checkpoint_not_found`: none was signed yet.", body = ErrorBody),
    )
)]
pub(crate) async fn latest_checkpoint(State(state): State<AppState>) -> Result<Json<StoredCheckpoint>, ApiError> {
    Ok(Json(checkpoint(&state, None, "checkpoint").await?))
}

/// Every key that signed checkpoints.
#[derive(Serialize, ToSchema)]
pub(crate) struct KeyList {
    keys: Vec<PublicKey>,
}

/// Every public key that ever signed a checkpoint.
#[utoipa::path(get, path = "/v1/audit/keys", operation_id = "listSigningKeys", tag = "audit", responses((status = 200, body = KeyList)))]
pub(crate) async fn keys(State(state): State<AppState>) -> Result<Json<KeyList>, ApiError> {
    let keys = partida_eventstore::checkpoint::public_keys(&state.pool)
        .await
        .map_err(|e| db_error(&e))?;
    Ok(Json(KeyList { keys }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct InclusionParams {
    /// The record's position.
    #[param(minimum = 1)]
    position: Option<i64>,
    /// The checkpoint's position; default the latest.
    checkpoint: Option<i64>,
}

/// A Merkle audit path (RFC 9162) of one record in a signed tree.
#[derive(Serialize, ToSchema)]
pub(crate) struct InclusionProof {
    position: i64,
    /// The event's `hash`.
    #[schema(value_type = openapi::Hash)]
    record_hash: String,
    /// The leaf: SHA-256(0x00 || record hash).
    #[schema(value_type = openapi::Hash)]
    leaf_hash: String,
    /// `position - 1`.
    leaf_index: i64,
    /// The checkpoint's position.
    tree_size: i64,
    checkpoint: StoredCheckpoint,
    /// The sibling hashes from the leaf up.
    #[schema(value_type = Vec<openapi::Hash>)]
    proof: Vec<String>,
}

/// The audit path of the record at `position` in the Merkle tree signed at `checkpoint`
/// (default: the latest).
#[utoipa::path(
    get,
    path = "/v1/audit/proof/inclusion",
    operation_id = "getInclusionProof",
    tag = "audit",
    params(InclusionParams),
    responses(
        (status = 200, body = InclusionProof),
        (status = 404, description = "`checkpoint_not_found`.", body = ErrorBody),
    )
)]
pub(crate) async fn inclusion(
    State(state): State<AppState>,
    Query(params): Query<InclusionParams>,
) -> Result<Json<InclusionProof>, ApiError> {
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
    Ok(Json(InclusionProof {
        position,
        record_hash: hex::encode(record.hash),
        leaf_hash: hex::encode(ledger::merkle::leaf_hash(&record.hash)),
        leaf_index: position - 1,
        tree_size: checkpoint.position,
        checkpoint,
        proof: proof.iter().map(hex::encode).collect(),
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ConsistencyParams {
    /// The older checkpoint's position.
    from: Option<i64>,
    /// The newer checkpoint's position; default the latest.
    to: Option<i64>,
}

/// A Merkle consistency proof (RFC 9162) between two signed trees.
#[derive(Serialize, ToSchema)]
pub(crate) struct ConsistencyProof {
    from: StoredCheckpoint,
    to: StoredCheckpoint,
    #[schema(value_type = Vec<openapi::Hash>)]
    proof: Vec<String>,
}

/// The proof that the tree signed at checkpoint `from` is a prefix of the tree signed at `to`
/// (default: the latest).
#[utoipa::path(
    get,
    path = "/v1/audit/proof/consistency",
    operation_id = "getConsistencyProof",
    tag = "audit",
    params(ConsistencyParams),
    responses(
        (status = 200, body = ConsistencyProof),
        (status = 404, description = "`checkpoint_not_found`.", body = ErrorBody),
    )
)]
pub(crate) async fn consistency(
    State(state): State<AppState>,
    Query(params): Query<ConsistencyParams>,
) -> Result<Json<ConsistencyProof>, ApiError> {
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
    Ok(Json(ConsistencyProof {
        from: old,
        to: new,
        proof: proof.iter().map(hex::encode).collect(),
    }))
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
