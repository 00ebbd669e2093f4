//! The HTTP surface of command-api.

mod accounts;
mod assets;
mod audit;
mod batch;
mod health;
mod metadata;
mod personal;
mod transfers;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, Path};
use axum::http::StatusCode;
use axum::routing::get;
use partida_auth::{Authenticator, Permission, guarded};
use partida_service::cors::CorsLayer;
use partida_service::{ApiError, openapi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// Bodies of single commands; a transfer of 64 postings with metadata fits easily.
const SINGLE_BODY_BYTES: usize = 256 * 1024;

const DESCRIPTION: &str = "Partida's write side. Every write is decided by the ledger's rules and \
appended to one hash-chained log; the answer is the write's position in it. Writes are idempotent: \
by their id (transfers, accounts, assets) or by `Idempotency-Key`. Errors share one shape.";

pub(crate) fn router(state: AppState, auth: &Authenticator, cors: Option<CorsLayer>) -> Router {
    let (api, document) = api(state.limits.batch_body_bytes(), auth).split_for_parts();
    let document = openapi::finish(document, "Partida command-api", DESCRIPTION);
    let api = api
        .layer(DefaultBodyLimit::max(SINGLE_BODY_BYTES))
        .route("/metrics", get(partida_service::metrics::render))
        .merge(openapi::docs(document))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    partida_service::standard_layers(api, cors)
}

/// The documented routes, each group behind the permission it needs.
fn api(batch_body_bytes: usize, auth: &Authenticator) -> OpenApiRouter<AppState> {
    let administer = OpenApiRouter::new()
        .routes(routes!(assets::register))
        .routes(routes!(accounts::open))
        .routes(routes!(accounts::freeze))
        .routes(routes!(accounts::unfreeze))
        .routes(routes!(accounts::close))
        .routes(routes!(metadata::account))
        .routes(routes!(personal::erase));
    let (schemas, paths, batch) = routes!(batch::batch);
    let transfer = OpenApiRouter::new()
        .routes(routes!(transfers::post))
        .routes(routes!(transfers::post_pending))
        .routes(routes!(transfers::void_pending))
        .routes(routes!(metadata::transfer))
        .routes((schemas, paths, batch.layer(DefaultBodyLimit::max(batch_body_bytes))));
    let audit = OpenApiRouter::new().routes(routes!(audit::sign));
    OpenApiRouter::new()
        .merge(guarded(administer, auth, Permission::Administer))
        .merge(guarded(transfer, auth, Permission::Transfer))
        .merge(guarded(audit, auth, Permission::Audit))
        .merge(partida_auth::whoami_router(auth))
        .routes(routes!(partida_service::health::healthz))
        .routes(routes!(health::readyz))
}

/// The id in the path, read by `parse` (`AccountId::parse`, `TransferId::parse`); a `400` naming
/// `id` when it is missing or malformed.
fn path_id<I>(
    path: Result<Path<String>, PathRejection>,
    parse: impl FnOnce(String) -> Result<I, ledger::IdError>,
) -> Result<I, ApiError> {
    let Path(raw) = path.map_err(|e| ApiError::validation(e.body_text(), "id"))?;
    parse(raw).map_err(|e| ApiError::validation(format!("id: {e}"), "id"))
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
