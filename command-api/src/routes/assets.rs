use axum::extract::State;
use axum::response::Response;
use ledger::{AssetCode, Command, RegisterAsset, Scale};
use partida_service::openapi::{self, ErrorBody};
use partida_service::{ApiError, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::request::{IdempotencyKeyHeader, WriteMeta, Written, respond};

/// An asset to register.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RegisterAssetBody {
    #[schema(value_type = openapi::AssetCode)]
    code: AssetCode,
    /// Decimal places of the minor unit (`EUR`: 2); amounts are integers of minor units.
    #[schema(value_type = u8, minimum = 0, maximum = 18)]
    scale: Scale,
}

/// Registers an asset. The code is the natural key: registering it again with the same scale
/// answers 200 with the first write.
#[utoipa::path(
    post,
    path = "/v1/assets",
    operation_id = "registerAsset",
    tag = "assets",
    params(IdempotencyKeyHeader),
    request_body = RegisterAssetBody,
    responses(
        (status = 201, description = "Registered.", body = Written),
        (status = 200, description = "Already registered so: the first write.", body = Written),
        (status = 409, description = "Registered with another scale, or the key was used for another request.", body = ErrorBody),
    )
)]
pub(super) async fn register(
    State(state): State<AppState>,
    meta: WriteMeta,
    Json(body): Json<RegisterAssetBody>,
) -> Result<Response, ApiError> {
    let hashed = serde_json::to_value(&body).unwrap_or_default();
    let command = Command::RegisterAsset(RegisterAsset {
        code: body.code.clone(),
        scale: body.scale,
    });
    let reply = state
        .writer
        .submit(meta.submission(command, "POST /v1/assets", &hashed))
        .await;
    respond(body.code.as_str(), reply)
}
