use axum::extract::State;
use axum::response::Response;
use ledger::{AssetCode, Command, RegisterAsset, Scale};
use partida_service::{ApiError, Json};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::request::{WriteMeta, respond};

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RegisterAssetBody {
    code: AssetCode,
    scale: Scale,
}

/// `POST /v1/assets`: the code is the natural key; `Idempotency-Key` is honoured too.
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
