use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use ledger::TransferId;
use partida_service::{ApiError, Query};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::{db_error, page};
use crate::AppState;
use crate::consistency::{MinPosition, Source};

#[derive(Debug, Serialize, sqlx::FromRow)]
struct TransferView {
    id: String,
    position: i64,
    postings: Value,
    metadata: Value,
    reverses: Option<String>,
    reversed_by: Option<String>,
    #[serde(with = "super::timestamp")]
    recorded_at: OffsetDateTime,
}

const COLUMNS: &str = "id, position, postings, metadata, reverses, reversed_by, recorded_at";

#[derive(Deserialize)]
pub(crate) struct ListParams {
    /// The position of the last transfer seen.
    after: Option<i64>,
    limit: Option<i64>,
    #[serde(default)]
    order: page::Order,
}

/// `GET /v1/transfers`: by position, oldest first or (`order=desc`) newest first.
pub(crate) async fn list(
    State(state): State<AppState>,
    min: MinPosition,
    Query(params): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let limit = page::limit(params.limit)?;
    let after = params.after.unwrap_or(match params.order {
        page::Order::Asc => 0,
        page::Order::Desc => i64::MAX,
    });
    min.wait(&state, Source::Projection).await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM {}.transfers WHERE position {} $1 ORDER BY position {} LIMIT $2",
        state.model.schema(),
        params.order.after(),
        params.order.sql()
    );
    let transfers: Vec<TransferView> = sqlx::query_as(&sql)
        .bind(after)
        .bind(limit)
        .fetch_all(&state.pool)
        .await
        .map_err(|e| db_error(&e))?;
    let next = (transfers.len() as i64 == limit)
        .then(|| transfers.last().map(|t| t.position))
        .flatten();
    Ok(Json(json!({ "transfers": transfers, "next": next })))
}

/// `GET /v1/transfers/{id}`.
pub(crate) async fn get(
    State(state): State<AppState>,
    min: MinPosition,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(serde_json::to_value(transfer).unwrap_or_default()))
}
