use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;

/// A service's state, for probes.
#[derive(Serialize, ToSchema)]
pub(crate) struct Health {
    /// `ok`, `ready` or `unavailable`.
    status: &'static str,
    /// Why it is unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "operations", responses((status = 200, body = Health)))]
pub(super) async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        reason: None,
    })
}

/// The writer holds a database connection, so writes can be taken.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Writes can be taken.", body = Health),
        (status = 503, description = "The writer has no database connection.", body = Health),
    )
)]
pub(super) async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    if state.writer.is_connected() {
        (
            StatusCode::OK,
            Json(Health {
                status: "ready",
                reason: None,
            }),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "unavailable",
                reason: Some("writer has no database connection"),
            }),
        )
    }
}
