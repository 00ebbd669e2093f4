use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use ledger::{
    AccountId, Check, Command, Condition, HoldAction, Metadata, PostTransfer, Posting, PostingsError, ResolveHold,
    Timestamp, TransferId,
};
use partida_service::openapi::{self, ErrorBody};
use partida_service::{ApiError, Json};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::request::{WriteMeta, Written, respond};

/// A balanced transfer: each posting moves `amount` from `credit` to `debit`, all in one asset.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TransferBody {
    #[schema(value_type = openapi::TransferId)]
    id: TransferId,
    /// 1 to 64 legs, applied atomically.
    #[serde(deserialize_with = "partida_service::objects")]
    #[schema(value_type = Vec<openapi::Posting>, min_items = 1, max_items = 64)]
    postings: Vec<Posting>,
    #[serde(default, deserialize_with = "partida_service::metadata::bounded")]
    #[schema(value_type = Option<openapi::Metadata>)]
    metadata: Metadata,
    /// The transfer this one reverses: its postings with debit and credit swapped (for a
    /// two-phase transfer, what its post moved).
    #[serde(default)]
    #[schema(value_type = Option<openapi::TransferId>)]
    reverses: Option<TransferId>,
    /// A two-phase transfer: the amounts are reserved (they count against the accounts' limits
    /// and available balances at once) until `POST /v1/transfers/{id}/post` moves them, or
    /// `/void` or the timeout releases them. It resolves exactly once.
    #[serde(default)]
    pending: bool,
    /// With `pending`: seconds until the hold expires on its own (1 to 31,622,400); never
    /// when absent.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_622_400)]
    timeout_secs: Option<u32>,
    /// When the transfer takes effect for the books, if not when it is recorded (RFC 3339, to
    /// the microsecond): any time before, or up to a day after (`effective_too_late`). Balances
    /// and the trial balance `as_of_effective` count it from then; limits, conditions and the
    /// current balances count it at once. Not for a pending transfer: its post takes effect
    /// when recorded.
    #[serde(default)]
    #[schema(value_type = Option<openapi::Timestamp>)]
    effective_at: Option<String>,
    /// Preconditions checked when the transfer is decided, against the state before it (and
    /// after the earlier transfers of its batch): at most 16. Any that fails refuses the
    /// transfer with `condition_failed`, naming it. A retry of a transfer already written is
    /// answered as such whatever its conditions say now.
    #[serde(default, deserialize_with = "partida_service::objects")]
    #[schema(max_items = 16)]
    conditions: Vec<ConditionBody>,
    /// Batch items only: the label of a chain. The consecutive items with the same label are
    /// written all or none; if one is refused, it answers its own error and every other member
    /// `linked_failed`, naming it. 1 to 64 characters.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 64)]
    chain: Option<String>,
}

/// A precondition on one account: exactly one of `available_at_least` and `revision`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ConditionBody {
    #[schema(value_type = openapi::AccountId)]
    account: AccountId,
    /// The account's available balance (its balance less what open holds reserve against it)
    /// is at least this many minor units.
    #[serde(default)]
    available_at_least: Option<i64>,
    /// The account's revision (served with the account) is exactly this: nothing changed the
    /// account since it was read.
    #[serde(default)]
    #[schema(minimum = 0)]
    revision: Option<i64>,
}

/// The most characters a chain's label has.
const MAX_CHAIN_LABEL: usize = 64;

impl TransferBody {
    pub(super) fn into_command(self, prefix: &str) -> Result<(PostTransfer, Option<String>), ApiError> {
        if self.timeout_secs.is_some() && !self.pending {
            let field = format!("{prefix}timeout_secs");
            return Err(ApiError::validation(
                format!("{field}: only a pending transfer has a timeout"),
                field,
            ));
        }
        check_chain_label(self.chain.as_deref(), prefix)?;
        let effective_at = self
            .effective_at
            .as_deref()
            .map(|text| {
                partida_eventstore::parse_timestamp(text).map(Timestamp).ok_or_else(|| {
                    let field = format!("{prefix}effective_at");
                    ApiError::validation(
                        format!("{field}: an RFC 3339 time to the microsecond, e.g. 2026-10-31T23:59:59Z"),
                        field,
                    )
                })
            })
            .transpose()?;
        let conditions = self
            .conditions
            .into_iter()
            .enumerate()
            .map(|(index, body)| body.into_condition(&format!("{prefix}conditions[{index}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let transfer = PostTransfer::new(self.id, self.postings, self.metadata, self.reverses)
            .and_then(|t| match effective_at {
                Some(at) => t.effective_at(at),
                None => Ok(t),
            })
            .and_then(|t| {
                if self.pending {
                    t.pending(self.timeout_secs)
                } else {
                    Ok(t)
                }
            })
            .and_then(|t| t.with_conditions(conditions));
        transfer
            .map(|t| (t, self.chain))
            .map_err(|e| postings_error(&e, prefix))
    }
}

/// A label of 1 to [`MAX_CHAIN_LABEL`] characters, if any.
fn check_chain_label(label: Option<&str>, prefix: &str) -> Result<(), ApiError> {
    match label {
        Some(label) if label.is_empty() || label.chars().count() > MAX_CHAIN_LABEL => {
            let field = format!("{prefix}chain");
            Err(ApiError::validation(
                format!("{field}: a chain's label has 1 to {MAX_CHAIN_LABEL} characters"),
                field,
            ))
        }
        _ => Ok(()),
    }
}

/// A batch item that resolves a hold, so that several holds can be posted or voided together
/// in a chain.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ResolutionItem {
    /// The hold to resolve.
    #[schema(value_type = openapi::TransferId)]
    resolve: TransferId,
    action: ResolveAction,
    /// With `post`: the amounts to move, as for `POST /v1/transfers/{id}/post`; absent, all.
    #[serde(default, deserialize_with = "partida_service::optional_objects")]
    #[schema(value_type = Option<Vec<openapi::Posting>>, min_items = 1, max_items = 64)]
    postings: Option<Vec<Posting>>,
    /// As for a transfer item: the label of its chain.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 64)]
    chain: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum ResolveAction {
    Post,
    Void,
}

impl ResolutionItem {
    /// The hold's id, the command, and the chain's label.
    pub(super) fn into_command(self, prefix: &str) -> Result<(TransferId, Command, Option<String>), ApiError> {
        check_chain_label(self.chain.as_deref(), prefix)?;
        let action = match self.action {
            ResolveAction::Post => HoldAction::post(self.postings).map_err(|e| postings_error(&e, prefix))?,
            ResolveAction::Void if self.postings.is_some() => {
                let field = format!("{prefix}postings");
                return Err(ApiError::validation(format!("{field}: a void moves nothing"), field));
            }
            ResolveAction::Void => HoldAction::Void,
        };
        let command = Command::ResolveHold(ResolveHold {
            id: self.resolve.clone(),
            action,
        });
        Ok((self.resolve, command, self.chain))
    }
}

impl ConditionBody {
    fn into_condition(self, field: &str) -> Result<Condition, ApiError> {
        let check = match (self.available_at_least, self.revision) {
            (Some(at_least), None) => Check::AvailableAtLeast(at_least),
            (None, Some(revision)) if revision >= 0 => Check::Revision(revision),
            (None, Some(_)) => {
                return Err(ApiError::validation(
                    format!("{field}.revision: a revision is not negative"),
                    format!("{field}.revision"),
                ));
            }
            _ => {
                return Err(ApiError::validation(
                    format!("{field}: a condition has exactly one of available_at_least and revision"),
                    field,
                ));
            }
        };
        Ok(Condition {
            account: self.account,
            check,
        })
    }
}

/// A refused shape of legs, naming the field.
fn postings_error(e: &PostingsError, prefix: &str) -> ApiError {
    let field = match e {
        PostingsError::Count { .. } => format!("{prefix}postings"),
        PostingsError::SameAccount { index } => format!("{prefix}postings[{index}]"),
        PostingsError::PendingReversal => format!("{prefix}pending"),
        PostingsError::Timeout { .. } => format!("{prefix}timeout_secs"),
        PostingsError::Conditions { .. } => format!("{prefix}conditions"),
        PostingsError::PendingEffective => format!("{prefix}effective_at"),
    };
    ApiError::validation(format!("{field}: {e}"), field)
}

/// How much of a hold to post.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PostPendingBody {
    /// The amounts to move, each leg within a held leg between the same accounts (the rest of
    /// the hold is released). Absent: everything held.
    #[serde(default, deserialize_with = "partida_service::optional_objects")]
    #[schema(value_type = Option<Vec<openapi::Posting>>, min_items = 1, max_items = 64)]
    postings: Option<Vec<Posting>>,
}

/// Posts a pending transfer, in full or in part. A hold resolves once: repeating the same post
/// answers 200 with the first; anything else after it is `pending_resolved`.
#[utoipa::path(
    post,
    path = "/v1/transfers/{id}/post",
    operation_id = "postPendingTransfer",
    tag = "transfers",
    params(("id" = openapi::TransferId, Path, description = "The pending transfer.")),
    request_body = PostPendingBody,
    responses(
        (status = 201, description = "Posted.", body = Written),
        (status = 200, description = "Already posted so: the first answer.", body = Written),
        (status = 422, description = "Refused: `transfer_not_found`, `transfer_not_pending`, `pending_resolved`, `pending_expired`, `pending_amount_exceeded`, `account_frozen`.", body = ErrorBody),
    )
)]
pub(super) async fn post_pending(
    State(state): State<AppState>,
    meta: WriteMeta,
    id: Result<Path<String>, PathRejection>,
    Json(body): Json<PostPendingBody>,
) -> Result<Response, ApiError> {
    let action = HoldAction::post(body.postings).map_err(|e| postings_error(&e, ""))?;
    resolve(&state, &meta, id, action).await
}

/// Voids a pending transfer: its reservation is released and nothing moves.
#[utoipa::path(
    post,
    path = "/v1/transfers/{id}/void",
    operation_id = "voidPendingTransfer",
    tag = "transfers",
    params(("id" = openapi::TransferId, Path, description = "The pending transfer.")),
    responses(
        (status = 201, description = "Voided.", body = Written),
        (status = 200, description = "Already voided: the first answer.", body = Written),
        (status = 422, description = "Refused: `transfer_not_found`, `transfer_not_pending`, `pending_resolved`.", body = ErrorBody),
    )
)]
pub(super) async fn void_pending(
    State(state): State<AppState>,
    meta: WriteMeta,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    resolve(&state, &meta, id, HoldAction::Void).await
}

/// A hold resolves once, so its resolution needs no `Idempotency-Key`: a repeat is answered
/// from the log.
async fn resolve(
    state: &AppState,
    meta: &WriteMeta,
    id: Result<Path<String>, PathRejection>,
    action: HoldAction,
) -> Result<Response, ApiError> {
    let id = super::path_id(id, TransferId::parse)?;
    let command = Command::ResolveHold(ResolveHold { id: id.clone(), action });
    let reply = state.writer.submit(meta.natural(command)).await;
    respond(id.as_str(), reply)
}

/// Posts a transfer. Its id is its idempotency key: posting it again with the same request
/// answers 200 with the first write.
#[utoipa::path(
    post,
    path = "/v1/transfers",
    operation_id = "postTransfer",
    tag = "transfers",
    request_body = TransferBody,
    responses(
        (status = 201, description = "Posted.", body = Written),
        (status = 200, description = "Already posted so: the first write.", body = Written),
        (status = 409, description = "The id is taken by another transfer.", body = ErrorBody),
        (status = 422, description = "Refused by a rule, e.g. `limit_exceeded` (a limit flag, counting what holds reserve), `condition_failed`, `effective_too_late`, `account_frozen`, `asset_mismatch`, `already_reversed`, `transfer_not_posted`, `personal_data_erased`.", body = ErrorBody),
    )
)]
pub(super) async fn post(
    State(state): State<AppState>,
    meta: WriteMeta,
    Json(body): Json<TransferBody>,
) -> Result<Response, ApiError> {
    let (mut transfer, chain) = body.into_command("")?;
    if chain.is_some() {
        return Err(ApiError::validation(
            "chain: only the items of a batch form chains",
            "chain",
        ));
    }
    super::personal::seal(&state, &mut transfer.metadata).await?;
    let id = transfer.id.clone();
    let reply = state.writer.submit(meta.natural(Command::PostTransfer(transfer))).await;
    respond(id.as_str(), reply)
}
