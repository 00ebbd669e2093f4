use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use ledger::{AccountFlags, AccountId, AccountLifecycle, AssetCode, Command, Metadata, NormalSide, OpenAccount};
use partida_service::openapi::{self, ErrorBody};
use partida_service::{ApiError, Json};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::AppState;
use crate::request::{IdempotencyKeyHeader, WriteMeta, Written, respond};

const MAX_NAME_CHARS: usize = 256;

/// An account to open.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct OpenAccountBody {
    #[schema(value_type = openapi::AccountId)]
    id: AccountId,
    #[schema(value_type = openapi::AssetCode)]
    asset: AssetCode,
    /// 1 to 256 characters after trimming.
    #[schema(min_length = 1, max_length = 256, example = "Alice's wallet")]
    name: String,
    /// The side whose activity makes the balance grow: `debit` (assets, expenses) or `credit`
    /// (liabilities, equity, income). Default: `debit`.
    #[serde(default)]
    #[schema(value_type = Option<NormalSideDoc>)]
    normal_side: Option<NormalSide>,
    #[serde(default, deserialize_with = "partida_service::object")]
    #[schema(value_type = Option<FlagsDoc>)]
    flags: AccountFlags,
    #[serde(default, deserialize_with = "partida_service::metadata::bounded")]
    #[schema(value_type = Option<openapi::Metadata>)]
    metadata: Metadata,
}

/// Which side of an account's balance grows with its normal activity.
#[derive(ToSchema)]
#[schema(as = NormalSide)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub(crate) enum NormalSideDoc {
    Debit,
    Credit,
}

/// Balance limits the account enforces on every transfer; at most one may be set.
#[derive(ToSchema)]
#[schema(as = AccountFlags)]
#[allow(dead_code)]
pub(crate) struct FlagsDoc {
    /// No overdraft: the account's debits never exceed its credits.
    #[schema(default = false)]
    debits_must_not_exceed_credits: Option<bool>,
    /// Never a credit balance: the account's credits never exceed its debits.
    #[schema(default = false)]
    credits_must_not_exceed_debits: Option<bool>,
}

/// Opens an account. The id is its idempotency key: opening it again with the same request
/// answers 200 with the first write.
#[utoipa::path(
    post,
    path = "/v1/accounts",
    operation_id = "openAccount",
    tag = "accounts",
    request_body = OpenAccountBody,
    responses(
        (status = 201, description = "Opened.", body = Written),
        (status = 200, description = "Already opened so: the first write.", body = Written),
        (status = 409, description = "The id is taken by another account.", body = ErrorBody),
        (status = 422, description = "Refused: `asset_not_found`, `personal_data_erased`.", body = ErrorBody),
    )
)]
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
    let mut command = OpenAccount::new(
        body.id,
        body.asset,
        name.to_owned(),
        body.normal_side,
        body.flags,
        body.metadata,
    );
    super::personal::seal(&state, &mut command.metadata).await?;
    let reply = state.writer.submit(meta.natural(Command::OpenAccount(command))).await;
    respond(id.as_str(), reply)
}

/// Freezes an account: it takes part in no transfer until unfrozen.
#[utoipa::path(
    post,
    path = "/v1/accounts/{id}/freeze",
    operation_id = "freezeAccount",
    tag = "accounts",
    params(("id" = openapi::AccountId, Path, description = "The account."), IdempotencyKeyHeader),
    responses(
        (status = 201, description = "Done.", body = Written),
        (status = 200, description = "A retry with the same `Idempotency-Key`: the first answer.", body = Written),
        (status = 409, description = "The key was used for another request.", body = ErrorBody),
        (status = 422, description = "Refused: `account_not_found`, `account_frozen`, `account_closed`.", body = ErrorBody),
    )
)]
pub(super) async fn freeze(
    state: State<AppState>,
    meta: WriteMeta,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    change(state, meta, id, AccountLifecycle::Freeze).await
}

/// Unfreezes a frozen account.
#[utoipa::path(
    post,
    path = "/v1/accounts/{id}/unfreeze",
    operation_id = "unfreezeAccount",
    tag = "accounts",
    params(("id" = openapi::AccountId, Path, description = "The account."), IdempotencyKeyHeader),
    responses(
        (status = 201, description = "Done.", body = Written),
        (status = 200, description = "A retry with the same `Idempotency-Key`: the first answer.", body = Written),
        (status = 409, description = "The key was used for another request.", body = ErrorBody),
        (status = 422, description = "Refused: `account_not_found`, `account_not_frozen`, `account_closed`.", body = ErrorBody),
    )
)]
pub(super) async fn unfreeze(
    state: State<AppState>,
    meta: WriteMeta,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    change(state, meta, id, AccountLifecycle::Unfreeze).await
}

/// Closes an account for good; its balance must be zero.
#[utoipa::path(
    post,
    path = "/v1/accounts/{id}/close",
    operation_id = "closeAccount",
    tag = "accounts",
    params(("id" = openapi::AccountId, Path, description = "The account."), IdempotencyKeyHeader),
    responses(
        (status = 201, description = "Done.", body = Written),
        (status = 200, description = "A retry with the same `Idempotency-Key`: the first answer.", body = Written),
        (status = 409, description = "The key was used for another request.", body = ErrorBody),
        (status = 422, description = "Refused: `account_not_found`, `account_not_empty`, `account_closed`.", body = ErrorBody),
    )
)]
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
    let account = super::path_id(id, AccountId::parse)?;
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
