use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use partida_service::health::Health;

use crate::AppState;

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
        (StatusCode::OK, Json(Health::ready()))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health::unavailable("writer has no database connection")),
        )
    }
}
