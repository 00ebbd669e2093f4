//! `GET /live`: query-api's live stream passed through to the browser, so the browser needs no
//! address but the console's. Ends when the console shuts down.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use partida_service::ApiError;

use super::AppState;

pub async fn proxy(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let last_event_id = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let Some(credential) = super::session::credential(&headers) else {
        return ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "sign in first").into_response();
    };
    let backend = state.backend.acting_as(Some(credential));
    let upstream = match backend.live(last_event_id).await {
        Ok(upstream) => upstream,
        Err(error) => {
            let body = serde_json::json!({"error": {"code": error.code, "message": error.message}});
            return (StatusCode::BAD_GATEWAY, axum::Json(body)).into_response();
        }
    };
    let mut stopping = state.stopping.clone();
    let stopped = async move {
        let _ = stopping.wait_for(|stopping| *stopping).await;
    };
    let body = Body::from_stream(upstream.bytes_stream().take_until(stopped));
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells nginx (when one is in front) not to buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}
