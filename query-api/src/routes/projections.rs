use axum::Json;
use axum::extract::State;
use partida_service::ApiError;
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::db_error;
use crate::AppState;

#[derive(Debug, Serialize, sqlx::FromRow)]
struct ProjectionView {
    name: String,
    generation: i32,
    checkpoint: i64,
    head: i64,
    lag: i64,
    #[serde(with = "super::timestamp")]
    updated_at: OffsetDateTime,
}

/// `GET /v1/projections`: each projection's checkpoint, the log's head, and the lag between.
pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let projections: Vec<ProjectionView> = sqlx::query_as(
        "SELECT p.name, p.generation, p.checkpoint, h.position AS head, \
                greatest(h.position - p.checkpoint, 0) AS lag, p.updated_at \
           FROM projections p CROSS JOIN event_head h ORDER BY p.name",
    )
    .fetch_all(&state.pool)
    .await
    .map_err(|e| db_error(&e))?;
    Ok(Json(json!({ "projections": projections })))
}
