//! The HTTP surface of command-api.

mod accounts;
mod assets;
mod audit;
mod health;
mod transfers;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use partida_auth::{Authenticator, Permission, guarded};
use partida_service::ApiError;

use crate::AppState;

/// Bodies of single commands; a transfer of 64 postings with metadata fits easily.
const SINGLE_BODY_BYTES: usize = 256 * 1024;

pub(crate) fn router(state: AppState, auth: &Authenticator) -> Router {
    let batch_limit = state.limits.batch_body_bytes();
    let administer = Router::new()
        .route("/v1/assets", post(assets::register))
        .route("/v1/accounts", post(accounts::open))
        .route("/v1/accounts/{id}/freeze", post(accounts::freeze))
        .route("/v1/accounts/{id}/unfreeze", post(accounts::unfreeze))
        .route("/v1/accounts/{id}/close", post(accounts::close));
    let transfer = Router::new().route("/v1/transfers", post(transfers::post)).route(
        "/v1/transfers/batch",
        post(transfers::batch).layer(DefaultBodyLimit::max(batch_limit)),
    );
    let audit = Router::new().route("/v1/audit/checkpoints", post(audit::sign));
    let anyone = Router::new().route("/v1/whoami", get(partida_auth::whoami));
    let api = Router::new()
        .merge(guarded(administer, auth, Permission::Administer))
        .merge(guarded(transfer, auth, Permission::Transfer))
        .merge(guarded(audit, auth, Permission::Audit))
        .merge(guarded(anyone, auth, Permission::Authenticated))
        .layer(DefaultBodyLimit::max(SINGLE_BODY_BYTES))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(partida_service::metrics::render))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    partida_service::standard_layers(api)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that method",
    )
}
