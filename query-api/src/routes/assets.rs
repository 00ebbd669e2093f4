use axum::Json;
use axum::extract::State;
use partida_service::ApiError;
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::db_error;
use crate::AppState;
use crate::consistency::{MinPosition, Source};

#[derive(Debug, Serialize, sqlx::FromRow)]
struct AssetView {
    code: String,
    scale: i16,
    position: i64,
    #[serde(with = "super::timestamp")]
    registered_at: OffsetDateTime,
    /// Everything ever posted in the asset (total debits, which equal total credits).
    posted: i64,
    accounts: i64,
    transfers: i64,
}

/// `GET /v1/assets`: every asset with its totals.
pub(crate) async fn list(State(state): State<AppState>, min: MinPosition) -> Result<Json<Value>, ApiError> {
    min.wait(&state, Source::Projection).await?;
    let schema = state.model.schema();
    let sql = format!(
        "SELECT a.code, a.scale, a.position, a.registered_at, \
                coalesce(t.posted, 0) AS posted, coalesce(t.accounts, 0) AS accounts, \
                coalesce(t.transfers, 0) AS transfers \
           FROM {schema}.assets a LEFT JOIN {schema}.totals t ON t.asset = a.code ORDER BY a.code"
    );
    let assets: Vec<AssetView> = sqlx::query_as(&sql)
        .fetch_all(&state.pool)
        .await
        .map_err(|e| db_error(&e))?;
    Ok(Json(json!({ "assets": assets })))
}
