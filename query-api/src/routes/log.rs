use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use ledger::StreamId;
use partida_eventstore::{LogPage, StoredEvent};
use partida_service::Json;
use partida_service::openapi::ErrorBody;
use partida_service::{ApiError, Query};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::{db_error, page};
use crate::AppState;
use crate::consistency::{MinPosition, MinPositionQuery, Source};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventParams {
    /// The position of the last event seen: the previous page's `next`.
    #[param(minimum = 0)]
    after: Option<i64>,
    /// 1 to 1,000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    #[serde(default)]
    #[param(inline)]
    order: page::Order,
    /// Only events of this type, e.g. `TransferPosted`.
    #[serde(rename = "type")]
    #[param(min_length = 1, max_length = 64)]
    event_type: Option<String>,
}

/// A page of the log.
#[derive(Serialize, ToSchema)]
pub(crate) struct EventPage {
    events: Vec<StoredEvent>,
    /// Pass as `after` for the next page; null on the last.
    next: Option<i64>,
}

/// The log itself: every hashed field, hashes in hex.
#[utoipa::path(
    get,
    path = "/v1/events",
    operation_id = "listEvents",
    tag = "log",
    params(EventParams, MinPositionQuery),
    responses((status = 200, body = EventPage))
)]
pub(crate) async fn events(
    State(state): State<AppState>,
    min: MinPosition,
    Query(params): Query<EventParams>,
) -> Result<Json<EventPage>, ApiError> {
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
    Ok(Json(EventPage { events, next }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct StreamParams {
    /// The stream version of the last event seen: the previous page's `next`.
    after_version: Option<i64>,
    /// 1 to 1,000; default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

/// A page of one stream.
#[derive(Serialize, ToSchema)]
pub(crate) struct StreamPage {
    stream: String,
    events: Vec<StoredEvent>,
    /// Pass as `after_version` for the next page; null on the last.
    next: Option<i64>,
}

/// One stream's events: `account:{id}`, `transfer:{id}` or `asset:{code}`.
#[utoipa::path(
    get,
    path = "/v1/streams/{id}",
    operation_id = "getStream",
    tag = "log",
    params(
        ("id" = String, Path, description = "`account:{id}`, `transfer:{id}` or `asset:{code}`.", example = "asset:EUR"),
        StreamParams, MinPositionQuery,
    ),
    responses(
        (status = 200, body = StreamPage),
        (status = 404, description = "`stream_not_found`.", body = ErrorBody),
    )
)]
pub(crate) async fn stream(
    State(state): State<AppState>,
    min: MinPosition,
    path: Result<Path<String>, PathRejection>,
    Query(params): Query<StreamParams>,
) -> Result<Json<StreamPage>, ApiError> {
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
    Ok(Json(StreamPage {
        stream: stream_id,
        events,
        next,
    }))
}
