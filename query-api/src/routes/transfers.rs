use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use ledger::TransferId;
use partida_service::Json;
use partida_service::openapi::{self, ErrorBody};
use partida_service::{ApiError, Query};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::select::{metadata_condition, metadata_filter};
use super::{db_error, page};
use crate::AppState;
use crate::consistency::{MinPosition, MinPositionQuery, Source};

/// A transfer: posted at once, or a two-phase transfer (a hold) and how it ended.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[schema(as = Transfer)]
pub(crate) struct TransferView {
    #[schema(value_type = openapi::TransferId)]
    id: String,
    position: i64,
    /// `posted`; for a hold `pending`, then `posted`, `voided` or `expired`.
    #[schema(pattern = "^(posted|pending|voided|expired)$")]
    status: String,
    /// What moved: for a hold, nothing until it is posted, then what its post moved.
    #[schema(value_type = Vec<openapi::Posting>)]
    postings: Value,
    /// What a hold reserved; absent for a transfer posted at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<openapi::Posting>>)]
    held: Option<Value>,
    /// When a hold expires unless resolved before.
    #[serde(with = "super::timestamp::option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<openapi::Timestamp>)]
    expires_at: Option<OffsetDateTime>,
    /// The position of the hold's resolution.
    #[serde(skip_serializing_if = "Option::is_none")]
    resolved_position: Option<i64>,
    #[serde(with = "super::timestamp::option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<openapi::Timestamp>)]
    resolved_at: Option<OffsetDateTime>,
    #[schema(value_type = openapi::Metadata)]
    metadata: Value,
    /// The transfer this one reverses.
    #[schema(value_type = Option<openapi::TransferId>)]
    reverses: Option<String>,
    /// The transfer that reversed this one.
    #[schema(value_type = Option<openapi::TransferId>)]
    reversed_by: Option<String>,
    #[serde(with = "super::timestamp")]
    #[schema(value_type = openapi::Timestamp)]
    recorded_at: OffsetDateTime,
    /// When what moved takes effect for the books: the time the transfer was posted with, or
    /// its recorded time; for a hold, when its post was recorded. Absent while nothing moved.
    #[serde(with = "super::timestamp::option", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<openapi::Timestamp>)]
    effective_at: Option<OffsetDateTime>,
}

/// A page of transfers.
#[derive(Serialize, ToSchema)]
pub(crate) struct TransferPage {
    transfers: Vec<TransferView>,
    /// Pass as `after` for the next page; null on the last.
    next: Option<i64>,
}

const COLUMNS: &str = "id, position, status, postings, held, expires_at, resolved_position, resolved_at, metadata, \
    reverses, reversed_by, recorded_at, \
    CASE WHEN status = 'posted' THEN coalesce(effective_at, resolved_at, recorded_at) END AS effective_at";

const STATUSES: [&str; 4] = ["posted", "pending", "voided", "expired"];

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// The position of the last transfer seen: the previous page's `next`.
    after: Option<i64>,
    /// 1 to 1,000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    #[serde(default)]
    #[param(inline)]
    order: page::Order,
    /// Only transfers in this state: `posted`, `pending`, `voided` or `expired`.
    #[param(pattern = "^(posted|pending|voided|expired)$")]
    status: Option<String>,
    /// Only transfers whose metadata contains this JSON object (`@>`).
    #[param(example = r#"{"order":"1042"}"#)]
    metadata: Option<String>,
}

/// Transfers by position, oldest first or (`order=desc`) newest first, filtered by status and
/// metadata.
#[utoipa::path(
    get,
    path = "/v1/transfers",
    operation_id = "listTransfers",
    tag = "transfers",
    params(ListParams, MinPositionQuery),
    responses((status = 200, body = TransferPage))
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    min: MinPosition,
    Query(params): Query<ListParams>,
) -> Result<Json<TransferPage>, ApiError> {
    let limit = page::limit(params.limit)?;
    let after = params.after.unwrap_or(match params.order {
        page::Order::Asc => 0,
        page::Order::Desc => i64::MAX,
    });
    if let Some(status) = &params.status
        && !STATUSES.contains(&status.as_str())
    {
        return Err(ApiError::validation(
            "status must be posted, pending, voided or expired",
            "status",
        ));
    }
    let metadata = metadata_filter(params.metadata.as_deref())?;
    min.wait(&state, Source::Projection).await?;
    let by_metadata = metadata_condition(metadata.as_deref(), "", 4);
    let sql = format!(
        "SELECT {COLUMNS} FROM {}.transfers WHERE position {} $1 AND ($3::text IS NULL OR status = $3) {by_metadata} \
          ORDER BY position {} LIMIT $2",
        state.model.schema(),
        params.order.after(),
        params.order.sql()
    );
    let transfers: Vec<TransferView> = sqlx::query_as(&sql)
        .bind(after)
        .bind(limit)
        .bind(&params.status)
        .bind(metadata)
        .fetch_all(&state.pool)
        .await
        .map_err(|e| db_error(&e))?;
    let next = (transfers.len() as i64 == limit)
        .then(|| transfers.last().map(|t| t.position))
        .flatten();
    Ok(Json(TransferPage { transfers, next }))
}

/// One transfer.
#[utoipa::path(
    get,
    path = "/v1/transfers/{id}",
    operation_id = "getTransfer",
    tag = "transfers",
    params(("id" = openapi::TransferId, Path, description = "The transfer."), MinPositionQuery),
    responses(
        (status = 200, body = TransferView),
        (status = 404, description = "`transfer_not_found`.", body = ErrorBody),
    )
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    min: MinPosition,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<TransferView>, ApiError> {
    let Path(raw) = path.map_err(|e| ApiError::validation(e.body_text(), "id"))?;
    let id = TransferId::parse(raw).map_err(|e| ApiError::validation(format!("id: {e}"), "id"))?;
    min.wait(&state, Source::Projection).await?;
    let sql = format!("SELECT {COLUMNS} FROM {}.transfers WHERE id = $1", state.model.schema());
    let transfer: TransferView = sqlx::query_as(&sql)
        .bind(id.as_str())
        .fetch_optional(&state.pool)
        .await
        .map_err(|e| db_error(&e))?
        .ok_or_else(|| {
            ApiError::not_found("transfer_not_found", format!("transfer {id} does not exist"))
                .with_details(json!({"transfer": id}))
        })?;
    Ok(Json(transfer))
}
