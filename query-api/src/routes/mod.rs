//! The HTTP surface of query-api.

mod accounts;
mod assets;
mod audit;
mod books;
mod live;
mod log;
mod page;
mod projections;
mod transfers;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use partida_auth::{Authenticator, Permission, guarded};
use partida_service::ApiError;
use serde_json::{Value, json};

use crate::AppState;

pub(crate) fn router(state: AppState, auth: &Authenticator) -> Router {
    let read = Router::new()
        .route("/v1/assets", get(assets::list))
        .route("/v1/accounts", get(accounts::list))
        .route("/v1/accounts/{id}", get(accounts::get))
        .route("/v1/accounts/{id}/entries", get(accounts::entries))
        .route("/v1/accounts/{id}/balance", get(accounts::balance))
        .route("/v1/transfers", get(transfers::list))
        .route("/v1/transfers/{id}", get(transfers::get))
        .route("/v1/events", get(log::events))
        .route("/v1/streams/{id}", get(log::stream))
        .route("/v1/projections", get(projections::list))
        .route("/v1/trial-balance", get(books::trial_balance))
        .route("/v1/live", get(live::live));
    let audit = Router::new()
        .route("/v1/audit/export", get(audit::export))
        .route("/v1/audit/checkpoints", get(audit::checkpoints))
        .route("/v1/audit/checkpoints/latest", get(audit::latest_checkpoint))
        .route("/v1/audit/keys", get(audit::keys))
        .route("/v1/audit/proof/inclusion", get(audit::inclusion))
        .route("/v1/audit/proof/consistency", get(audit::consistency));
    let anyone = Router::new().route("/v1/whoami", get(partida_auth::whoami));
    let api = Router::new()
        .merge(guarded(read, auth, Permission::Read))
        .merge(guarded(audit, auth, Permission::Audit))
        .merge(guarded(anyone, auth, Permission::Authenticated))
        .route("/healthz", get(|| async { axum::Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(partida_service::metrics::render))
        .fallback(|| async { ApiError::not_found("not_found", "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "query-api only reads",
            )
        })
        .with_state(state);
    partida_service::standard_layers(api)
}

/// Ready when the database answers.
async fn readyz(State(state): State<AppState>) -> Result<axum::Json<Value>, ApiError> {
    sqlx::query("SELECT 1")
        .execute(&state.pool)
        .await
        .map_err(|e| db_error(&e))?;
    Ok(axum::Json(json!({"status": "ready"})))
}

/// A database failure: 503 (retryable) when the database is unreachable, busy, or cancelled the
/// query (a hot standby does, on recovery conflicts), or a dropped generation was read; 500 otherwise.
pub(crate) fn db_error(error: &sqlx::Error) -> ApiError {
    let retryable = match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            ["08", "40", "53", "57"].iter().any(|class| code.starts_with(class)) || code == "42P01"
        }),
        _ => false,
    };
    if retryable {
        tracing::warn!(%error, "read failed; answered 503");
        ApiError::unavailable("the database is unavailable; retry shortly")
    } else {
        ApiError::internal(error)
    }
}

/// Timestamps as RFC 3339 in UTC with microseconds, like the log.
pub(crate) mod timestamp {
    use serde::Serializer;
    use time::OffsetDateTime;

    pub fn serialize<S: Serializer>(at: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&partida_eventstore::format_timestamp(*at))
    }
}
