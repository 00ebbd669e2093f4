//! Read-your-writes: a read carrying `min_position=N` (query) or `X-Min-Position: N` (header)
//! waits, bounded, until what it reads has reached N.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::{StatusCode, request::Parts};
use partida_service::ApiError;
use serde::Deserialize;

use crate::AppState;
use crate::read_model::Reached;

/// What a read depends on: the projection's read tables, or the log itself.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source {
    Projection,
    Log,
}

pub(crate) struct MinPosition(pub Option<i64>);

/// Read-your-writes, as documented: the query parameter and the header (the larger wins).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct MinPositionQuery {
    /// Wait (bounded, `PARTIDA_MIN_POSITION_WAIT_MS`) until the data read has reached this log
    /// position, e.g. the `position` a write answered; 503 `not_caught_up` when it does not. The
    /// header `X-Min-Position` does the same (the larger of the two wins).
    #[param(minimum = 0)]
    min_position: Option<i64>,
}

#[derive(Deserialize)]
struct RawMinPosition {
    min_position: Option<String>,
}

fn parse(raw: &str) -> Result<i64, ApiError> {
    raw.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| ApiError::validation("min_position must be a non-negative integer", "min_position"))
}

impl<S: Send + Sync> FromRequestParts<S> for MinPosition {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = axum::extract::Query::<RawMinPosition>::try_from_uri(&parts.uri)
            .map_err(|_| ApiError::validation("min_position must be given at most once", "min_position"))?;
        let from_query = query.0.min_position.as_deref().map(parse).transpose()?;
        let from_header = match parts.headers.get("x-min-position") {
            Some(value) => Some(parse(value.to_str().unwrap_or("-"))?),
            None => None,
        };
        Ok(Self(from_query.max(from_header)))
    }
}

impl MinPosition {
    /// Returns once `source` has reached the position, or 503 `not_caught_up` after the bound.
    pub async fn wait(&self, state: &AppState, source: Source) -> Result<(), ApiError> {
        let Some(wanted) = self.0 else { return Ok(()) };
        let reached_by = move |reached: &Reached| match source {
            Source::Projection => reached.checkpoint >= wanted,
            Source::Log => reached.head >= wanted,
        };
        if reached_by(&state.model.reached()) {
            return Ok(());
        }
        let (done, reached) = state
            .model
            .wait_until(state.config.min_position_wait(), reached_by)
            .await;
        if done {
            return Ok(());
        }
        let reached = match source {
            Source::Projection => reached.checkpoint,
            Source::Log => reached.head,
        };
        Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_caught_up",
            format!("the data has reached position {reached}, not yet {wanted}; retry shortly"),
        )
        .with_details(serde_json::json!({"reached": reached, "wanted": wanted}))
        .retry_after(Duration::from_secs(1)))
    }
}
