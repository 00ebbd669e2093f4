use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use ledger::{AccountFlags, AccountId, AccountLifecycle, AssetCode, Command, Metadata, NormalSide, OpenAccount};
use partida_service::{ApiError, Json};
use serde::Deserialize;
use serde_json::Value;

use crate::AppState;
use crate::request::{WriteMeta, respond};

const MAX_NAME_CHARS: usize = 256;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OpenAccountBody {
    id: AccountId,
    asset: AssetCode,
    name: String,
    #[serde(default)]
    normal_side: Option<NormalSide>,
    #[serde(default)]
    flags: AccountFlags,
    #[serde(default)]
    metadata: Metadata,
}

/// `POST /v1/accounts`: the account id is the idempotency key.
pub(super) async fn open(
    State(state): State<AppState>,
    meta: WriteMeta,
    Json(body): Json<OpenAccountBody>,
) -> Result<Response, ApiError> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::validation(
            format!("name must be 1 to {MAX_NAME_CHARS} characters"),
            "name",
        ));
    }
    if body.flags.debits_must_not_exceed_credits && body.flags.credits_must_not_exceed_debits {
        return Err(ApiError::validation(
            "flags: debits_must_not_exceed_credits and credits_must_not_exceed_debits exclude each other",
            "flags",
        ));
    }
    let id = body.id.clone();
    let command = OpenAccount::new(
        body.id,
        body.asset,
        name.to_owned(),
        body.normal_side,
        body.flags,
        body.metadata,
    );
    let reply = state.writer.submit(meta.natural(Command::OpenAccount(command))).await;
    respond(id.as_str(), reply)
}

pub(super) async fn freeze(
    state: State<AppState>,
    meta: WriteMeta,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    change(state, meta, id, AccountLifecycle::Freeze).await
}

pub(super) async fn unfreeze(
    state: State<AppState>,
    meta: WriteMeta,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    change(state, meta, id, AccountLifecycle::Unfreeze).await
}

pub(super) async fn close(
    state: State<AppState>,
    meta: WriteMeta,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    change(state, meta, id, AccountLifecycle::Close).await
}

/// `POST /v1/accounts/{id}/{freeze|unfreeze|close}`: no body; `Idempotency-Key` makes retries safe.
async fn change(
    State(state): State<AppState>,
    meta: WriteMeta,
    id: Result<Path<String>, PathRejection>,
    change: AccountLifecycle,
) -> Result<Response, ApiError> {
    let Path(raw) = id.map_err(|e| ApiError::validation(e.body_text(), "id"))?;
    let account = AccountId::parse(raw).map_err(|e| ApiError::validation(format!("id: {e}"), "id"))?;
    let route = format!(
        "POST /v1/accounts/{account}/{}",
        serde_json::to_value(change).unwrap_or_default().as_str().unwrap_or("")
    );
    let command = Command::ChangeAccount {
        account: account.clone(),
        change,
    };
    let reply = state
        .writer
        .submit(meta.submission(command, &route, &Value::Null))
        .await;
    respond(account.as_str(), reply)
}
