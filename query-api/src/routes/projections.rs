use axum::extract::State;
use partida_service::ApiError;
use partida_service::Json;
use partida_service::openapi;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::db_error;
use crate::AppState;

/// A projection's progress through the log.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[schema(as = Projection)]
pub(crate) struct ProjectionView {
    name: String,
    /// Bumped by each rebuild.
    generation: i32,
    /// The last position applied.
    checkpoint: i64,
    /// The log's last position.
    head: i64,
    /// `head - checkpoint`, never negative.
    #[schema(minimum = 0)]
    lag: i64,
    #[serde(with = "super::timestamp")]
    #[schema(value_type = openapi::Timestamp)]
    updated_at: OffsetDateTime,
}

/// Every projection.
#[derive(Serialize, ToSchema)]
pub(crate) struct ProjectionList {
    projections: Vec<ProjectionView>,
}

/// Each projection's checkpoint, the log's head, and the lag between.
#[utoipa::path(get, path = "/v1/projections", operation_id = "listProjections", tag = "log", responses((status = 200, body = ProjectionList)))]
pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<ProjectionList>, ApiError> {
    let projections: Vec<ProjectionView> = sqlx::query_as(
        "SELECT p.name, p.generation, p.checkpoint, h.position AS head, \
                greatest(h.position - p.checkpoint, 0) AS lag, p.updated_at \
           FROM projections p CROSS JOIN event_head h ORDER BY p.name",
    )
    .fetch_all(&state.pool)
    .await
    .map_err(|e| db_error(&e))?;
    Ok(Json(ProjectionList { projections }))
}
