//! `GET /v1/audit/export`: the log as NDJSON, for auditors to verify offline.
//!
//! One event per line, in the `/v1/events` shape (every hashed field, hashes in hex), from `from`
//! (default 1) to `to` (default: the head when the request arrives, so the export is a fixed,
//! verifiable prefix even while the log grows). It is read page by page and streamed, so memory
//! stays flat for any length; it reads only the log, so a hot standby serves it too. A failure
//! part-way aborts the response instead of ending it cleanly: a truncated export never looks
//! complete.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use partida_service::{ApiError, Query};
use serde::Deserialize;

use super::db_error;
use crate::AppState;

/// Events read per query.
const PAGE: i64 = 2_000;

#[derive(Deserialize)]
pub(crate) struct ExportParams {
    from: Option<i64>,
    to: Option<i64>,
}

pub(crate) async fn export(
    State(state): State<AppState>,
    Query(params): Query<ExportParams>,
) -> Result<Response, ApiError> {
    let from = params.from.unwrap_or(1);
    if from < 1 {
        return Err(ApiError::validation("from must be a position of 1 or more", "from"));
    }
    let head = partida_eventstore::head(&state.pool).await.map_err(|e| db_error(&e))?;
    let to = match params.to {
        Some(to) if to < from => {
            return Err(ApiError::validation("to must not be before from", "to"));
        }
        Some(to) => to.min(head),
        None => head,
    };
    let pages = futures_util::stream::unfold(from - 1, move |after| {
        let pool = state.pool.clone();
        async move {
            if after >= to {
                return None;
            }
            let limit = PAGE.min(to - after);
            match partida_eventstore::events_after(&pool, after, limit).await {
                Ok(events) if events.is_empty() => None,
                Ok(events) => {
                    let last = events.last().map_or(after, |e| e.position);
                    let mut chunk = Vec::with_capacity(events.len() * 512);
                    for event in &events {
                        if serde_json::to_writer(&mut chunk, event).is_err() {
                            return Some((Err(std::io::Error::other("an event could not be encoded")), to));
                        }
                        chunk.push(b'\n');
                    }
                    Some((Ok(Bytes::from(chunk)), last))
                }
                Err(error) => {
                    tracing::warn!(%error, after, "export aborted: the log could not be read");
                    Some((Err(std::io::Error::other(error)), to))
                }
            }
        }
    });
    let mut response = Response::new(Body::from_stream(pages));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    if let Ok(range) = HeaderValue::from_str(&format!("{from}-{to}")) {
        headers.insert("x-partida-export-range", range);
    }
    Ok(response)
}
