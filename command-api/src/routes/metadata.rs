//! Metadata changes: `PATCH` an account's or a transfer's metadata with a patch object.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use ledger::{AccountId, Command, Metadata, SetMetadata, Subject, TransferId};
use partida_service::openapi::{self, ErrorBody};
use partida_service::{ApiError, Json};
use serde_json::Value;

use crate::AppState;
use crate::request::{IdempotencyKeyHeader, WriteMeta, Written, respond};

/// Changes an account's metadata, whatever its status: each key given replaces that key's
/// value, and a key given as `null` is removed. Each change is an event; `Idempotency-Key` makes
/// retries safe.
#[utoipa::path(
    patch,
    path = "/v1/accounts/{id}/metadata",
    operation_id = "setAccountMetadata",
    tag = "accounts",
    params(("id" = openapi::AccountId, Path, description = "The account."), IdempotencyKeyHeader),
    request_body = openapi::MetadataPatch,
    responses(
        (status = 201, description = "Changed.", body = Written),
        (status = 200, description = "A retry with the same `Idempotency-Key`: the first answer.", body = Written),
        (status = 409, description = "The key was used for another request.", body = ErrorBody),
        (status = 422, description = "Refused: `account_not_found`, `personal_data_erased`.", body = ErrorBody),
    )
)]
pub(super) async fn account(
    State(state): State<AppState>,
    meta: WriteMeta,
    id: Result<Path<String>, PathRejection>,
    Json(patch): Json<Metadata>,
) -> Result<Response, ApiError> {
    let id = super::path_id(id, AccountId::parse)?;
    let route = format!("PATCH /v1/accounts/{id}/metadata");
    set(
        &state,
        &meta,
        (Subject::Account(id.clone()), patch),
        &route,
        id.as_str(),
    )
    .await
}

/// Changes a transfer's metadata, whatever its status (a hold's too): each key given replaces
/// that key's value, and a key given as `null` is removed. What moved never changes.
#[utoipa::path(
    patch,
    path = "/v1/transfers/{id}/metadata",
    operation_id = "setTransferMetadata",
    tag = "transfers",
    params(("id" = openapi::TransferId, Path, description = "The transfer."), IdempotencyKeyHeader),
    request_body = openapi::MetadataPatch,
    responses(
        (status = 201, description = "Changed.", body = Written),
        (status = 200, description = "A retry with the same `Idempotency-Key`: the first answer.", body = Written),
        (status = 409, description = "The key was used for another request.", body = ErrorBody),
        (status = 422, description = "Refused: `transfer_not_found`, `personal_data_erased`.", body = ErrorBody),
    )
)]
pub(super) async fn transfer(
    State(state): State<AppState>,
    meta: WriteMeta,
    id: Result<Path<String>, PathRejection>,
    Json(patch): Json<Metadata>,
) -> Result<Response, ApiError> {
    let id = super::path_id(id, TransferId::parse)?;
    let route = format!("PATCH /v1/transfers/{id}/metadata");
    set(
        &state,
        &meta,
        (Subject::Transfer(id.clone()), patch),
        &route,
        id.as_str(),
    )
    .await
}

async fn set(
    state: &AppState,
    meta: &WriteMeta,
    (subject, mut patch): (Subject, Metadata),
    route: &str,
    id: &str,
) -> Result<Response, ApiError> {
    partida_service::metadata::check(&patch).map_err(|e| ApiError::validation(format!("metadata {e}"), "metadata"))?;
    super::personal::seal(state, &mut patch).await?;
    // The request's hash for `Idempotency-Key` covers the sealed patch: no digest of personal
    // data outlives an erasure.
    let body = Value::Object(patch.clone());
    let command = SetMetadata::new(subject, patch).map_err(|e| ApiError::validation(e.to_string(), "metadata"))?;
    let reply = state
        .writer
        .submit(meta.submission(Command::SetMetadata(command), route, &body))
        .await;
    respond(id, reply)
}
