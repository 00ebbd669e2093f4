use axum::extract::State;
use partida_service::Json;
use partida_service::{ApiError, openapi};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::db_error;
use crate::AppState;
use crate::consistency::{MinPosition, MinPositionQuery, Source};

/// A registered asset with its totals.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[schema(as = Asset)]
pub(crate) struct AssetView {
    #[schema(value_type = openapi::AssetCode)]
    code: String,
    #[schema(minimum = 0, maximum = 18)]
    scale: i16,
    position: i64,
    #[serde(with = "super::timestamp")]
    #[schema(value_type = openapi::Timestamp)]
    registered_at: OffsetDateTime,
    /// Everything ever posted in the asset (total debits, which equal total credits).
    posted: i64,
    accounts: i64,
    transfers: i64,
}

/// Every asset.
#[derive(Serialize, ToSchema)]
pub(crate) struct AssetList {
    assets: Vec<AssetView>,
}

/// Every asset with its totals.
#[utoipa::path(
    get,
    path = "/v1/assets",
    operation_id = "listAssets",
    tag = "assets",
    params(MinPositionQuery),
    responses((status = 200, body = AssetList))
)]
pub(crate) async fn list(State(state): State<AppState>, min: MinPosition) -> Result<Json<AssetList>, ApiError> {
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
    Ok(Json(AssetList { assets }))
}
