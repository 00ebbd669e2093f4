use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use partida_eventstore::checkpoint::SignError;
use partida_eventstore::checkpoint::StoredCheckpoint;
use partida_service::ApiError;
use partida_service::openapi::ErrorBody;
use serde_json::Value;

use crate::AppState;

/// Signs a checkpoint at the log's head now: 201 with the new checkpoint; 200 with the latest
/// when nothing was written since.
#[utoipa::path(
    post,
    path = "/v1/audit/checkpoints",
    operation_id = "signCheckpoint",
    tag = "audit",
    responses(
        (status = 201, description = "Signed.", body = StoredCheckpoint),
        (status = 200, description = "Nothing new since the latest, which this is.", body = StoredCheckpoint),
        (status = 409, description = "`signing_not_configured` or `nothing_to_sign`.", body = ErrorBody),
    )
)]
pub(crate) async fn sign(State(state): State<AppState>) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Some(signing) = &state.signing else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "signing_not_configured",
            "this command-api has no signing key (PARTIDA_SIGNING_KEY_FILE)",
        ));
    };
    match signing.round().await {
        Ok(Some(checkpoint)) => Ok((
            StatusCode::CREATED,
            Json(serde_json::to_value(checkpoint).unwrap_or_default()),
        )),
        Ok(None) => match signing.latest().await {
            Ok(Some(latest)) => Ok((StatusCode::OK, Json(serde_json::to_value(latest).unwrap_or_default()))),
            Ok(None) => Err(ApiError::new(
                StatusCode::CONFLICT,
                "nothing_to_sign",
                "the log is empty: there is nothing to sign yet",
            )),
            Err(error) => Err(ApiError::unavailable(format!(
                "reading the latest checkpoint failed: {error}"
            ))),
        },
        Err(SignError::NotReplicated { .. }) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_replicated",
            "the standbys have not replayed the log that far yet; retry shortly",
        )
        .retry_after(Duration::from_secs(1))),
        Err(SignError::Database(error)) => {
            tracing::warn!(%error, "signing round failed");
            Err(ApiError::unavailable("the database is unavailable; retry shortly"))
        }
        Err(error) => {
            tracing::error!(%error, "refused to sign");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "log_does_not_verify",
                error.to_string(),
            ))
        }
    }
}
