//! The HTTP surface of query-api.

mod accounts;
mod assets;
mod audit;
mod balances;
mod books;
mod live;
mod log;
mod page;
mod projections;
mod select;
mod transfers;

pub use accounts::entries_page_sql;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use partida_auth::{Authenticator, Permission, guarded};
use partida_service::cors::CorsLayer;
use partida_service::health::Health;
use partida_service::{ApiError, openapi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

const DESCRIPTION: &str = "Partida's read side: the books as the projection has applied the log, and \
the log itself. Reads may lag the writes; `min_position` (or `X-Min-Position`) waits for a write's \
position (read-your-writes). Lists are keyset-paged: pass `next` back as `after`. Errors share one shape.";

pub(crate) fn router(state: AppState, auth: &Authenticator, cors: Option<CorsLayer>) -> Router {
    let (api, document) = api(auth).split_for_parts();
    let document = openapi::finish(document, "Partida query-api", DESCRIPTION);
    let api = api
        .route("/metrics", get(partida_service::metrics::render))
        .merge(openapi::docs(document))
        .fallback(|| async { ApiError::not_found("not_found", "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "query-api only reads",
            )
        })
        .with_state(state);
    partida_service::standard_layers(api, cors)
}

/// The documented routes, each group behind the permission it needs.
fn api(auth: &Authenticator) -> OpenApiRouter<AppState> {
    let read = OpenApiRouter::new()
        .routes(routes!(assets::list))
        .routes(routes!(accounts::list))
        .routes(routes!(accounts::get))
        .routes(routes!(accounts::entries))
        .routes(routes!(accounts::balance))
        .routes(routes!(transfers::list))
        .routes(routes!(transfers::get))
        .routes(routes!(log::events))
        .routes(routes!(log::stream))
        .routes(routes!(projections::list))
        .routes(routes!(books::trial_balance))
        .routes(routes!(balances::balances))
        .routes(routes!(live::live));
    let audit = OpenApiRouter::new()
        .routes(routes!(audit::export))
        .routes(routes!(audit::checkpoints))
        .routes(routes!(audit::latest_checkpoint))
        .routes(routes!(audit::keys))
        .routes(routes!(audit::inclusion))
        .routes(routes!(audit::consistency));
    OpenApiRouter::new()
        .merge(guarded(read, auth, Permission::Read))
        .merge(guarded(audit, auth, Permission::Audit))
        .merge(partida_auth::whoami_router(auth))
        .routes(routes!(partida_service::health::healthz))
        .routes(routes!(readyz))
}

/// Ready when the database answers.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "operations", responses((status = 200, body = Health)))]
async fn readyz(State(state): State<AppState>) -> Result<axum::Json<Health>, ApiError> {
    sqlx::query("SELECT 1")
        .execute(&state.pool)
        .await
        .map_err(|e| db_error(&e))?;
    Ok(axum::Json(Health::ready()))
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
        partida_eventstore::with_timestamp_text(*at, |text| s.serialize_str(text))
    }

    /// For optional timestamps (skipped when absent).
    pub mod option {
        use serde::Serializer;
        use time::OffsetDateTime;

        pub fn serialize<S: Serializer>(at: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
            match at {
                Some(at) => super::serialize(at, s),
                None => s.serialize_none(),
            }
        }
    }
}
