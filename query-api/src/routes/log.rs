use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use ledger::StreamId;
use partida_eventstore::LogPage;
use partida_service::{ApiError, Query};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{db_error, page};
use crate::AppState;
use crate::consistency::{MinPosition, Source};

#[derive(Deserialize)]
pub(crate) struct EventParams {
    /// The position of the last event seen.
    after: Option<i64>,
    limit: Option<i64>,
    #[serde(default)]
    order: page::Order,
    /// Only events of this type, e.g. `TransferPosted`.
    #[serde(rename = "type")]
    event_type: Option<String>,
}

/// `GET /v1/events?after=N&limit=M&order=asc|desc&type=T`: the log itself, every hashed field,
/// hashes in hex.
pub(crate) async fn events(
    State(state): State<AppState>,
    min: MinPosition,
    Query(params): Query<EventParams>,
) -> Result<Json<Value>, ApiError> {
    let limit = page::limit(params.limit)?;
    if params.after.is_some_and(|after| after < 0) {
        return Err(ApiError::validation("after must be a non-negative position", "after"));
    }
    if let Some(event_type) = &params.event_type
        && !(1..=64).contains(&event_type.len())
    {
        return Err(ApiError::validation("type must be 1 to 64 characters", "type"));
    }
    min.wait(&state, Source::Log).await?;
    let query = LogPage {
        after: params.after,
        descending: params.order == page::Order::Desc,
        event_type: params.event_type.as_deref(),
        limit,
    };
    let events = partida_eventstore::events_page(&state.pool, query)
        .await
        .map_err(|e| db_error(&e))?;
    let next = (events.len() as i64 == limit)
        .then(|| events.last().map(|e| e.position))
        .flatten();
    Ok(Json(json!({ "events": events, "next": next })))
}

#[derive(Deserialize)]
pub(crate) struct StreamParams {
    after_version: Option<i64>,
    limit: Option<i64>,
}

/// `GET /v1/streams/{id}`: one stream's events (`account:{id}`, `transfer:{id}`, `asset:{code}`).
pub(crate) async fn stream(
    State(state): State<AppState>,
    min: MinPosition,
    path: Result<Path<String>, PathRejection>,
    Query(params): Query<StreamParams>,
) -> Result<Json<Value>, ApiError> {
    let Path(raw) = path.map_err(|e| ApiError::validation(e.body_text(), "id"))?;
    let stream = StreamId::parse(&raw).map_err(|_| {
        ApiError::validation(
            "the stream id must be account:{id}, transfer:{id} or asset:{code}",
            "id",
        )
    })?;
    let limit = page::limit(params.limit)?;
    let after = params.after_version.unwrap_or(0);
    min.wait(&state, Source::Log).await?;
    let stream_id = stream.to_string();
    let events = partida_eventstore::stream(&state.pool, &stream_id, after, limit)
        .await
        .map_err(|e| db_error(&e))?;
    if events.is_empty() && after == 0 {
        return Err(
            ApiError::not_found("stream_not_found", format!("stream {stream_id} has no events"))
                .with_details(json!({"stream": stream_id})),
        );
    }
    let next = (events.len() as i64 == limit)
        .then(|| events.last().map(|e| e.stream_version))
        .flatten();
    Ok(Json(json!({ "stream": stream_id, "events": events, "next": next })))
}
