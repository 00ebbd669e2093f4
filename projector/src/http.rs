use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::Status;

pub(crate) fn router(status: Arc<Status>) -> Router {
    let routes = Router::new()
        .route("/healthz", get(partida_service::health::healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(partida_service::metrics::render))
        .with_state(status);
    partida_service::standard_layers(routes, None)
}

/// Ready as leader or as standby; reports which, and the lag.
async fn readyz(State(status): State<Arc<Status>>) -> (StatusCode, Json<Value>) {
    let role = if status.is_leader() { "leader" } else { "standby" };
    let (checkpoint, head) = (status.checkpoint(), status.head());
    (
        StatusCode::OK,
        Json(
            json!({"status": "ready", "role": role, "checkpoint": checkpoint, "head": head, "lag": (head - checkpoint).max(0)}),
        ),
    )
}
