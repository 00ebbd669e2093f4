//! `GET /v1/live`: the log as it grows, as server-sent events, for consoles and dashboards.
//!
//! Each event is sent once the `ledger` projection has applied it, so a client that reads the
//! accounts an event touches sees them updated. Events:
//! - `log`: one log event (the `/v1/events` shape), with `id:` its position, so a reconnecting
//!   browser resumes with `Last-Event-ID`;
//! - `progress`: `{"checkpoint", "head"}` whenever either moves (the projection's lag).
//!
//! Start: `after=N` or `Last-Event-ID: N`, else the current checkpoint (only new events).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use partida_service::{ApiError, Query};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;

use crate::AppState;
use crate::read_model::{Following, Reached};

/// Events read from the log per query while catching up.
const CHUNK: i64 = 200;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct LiveParams {
    /// Start after this position (or `Last-Event-ID`); default: only new events.
    #[param(minimum = 0)]
    after: Option<i64>,
}

/// The log as it grows, as server-sent events: `log` (one event, `id:` its position) once the
/// projection has applied it, and `progress` (`{checkpoint, head, lag}`).
#[utoipa::path(
    get,
    path = "/v1/live",
    operation_id = "followLog",
    tag = "log",
    params(
        LiveParams,
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this position."),
    ),
    responses((status = 200, description = "An endless event stream.", content_type = "text/event-stream", body = String))
)]
pub(crate) async fn live(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<LiveParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let resume = match headers.get("last-event-id") {
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|n| *n >= 0)
                .ok_or_else(|| ApiError::validation("Last-Event-ID must be a position", "Last-Event-ID"))?,
        ),
        None => None,
    };
    if params.after.is_some_and(|after| after < 0) {
        return Err(ApiError::validation("after must be a non-negative position", "after"));
    }
    let (updates, following) = state.model.follow();
    let sent = resume
        .or(params.after)
        .unwrap_or_else(|| state.model.reached().checkpoint);
    let feed = Feed {
        stopping: state.stopping.clone(),
        state,
        updates,
        _following: following,
        sent,
        last_progress: None,
        pending: VecDeque::new(),
    };
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        let event = feed.next().await?;
        Some((Ok(event), feed))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// One client's position in the log and what is queued for it.
struct Feed {
    state: AppState,
    updates: watch::Receiver<Reached>,
    _following: Following,
    /// Turns true when the service shuts down: the stream ends so the shutdown is not held up.
    stopping: watch::Receiver<bool>,
    /// The last position queued.
    sent: i64,
    last_progress: Option<Reached>,
    pending: VecDeque<Event>,
}

impl Feed {
    /// The next event to send; waits for the projection to move when there is none. `None` ends
    /// the stream (the service is stopping).
    async fn next(&mut self) -> Option<Event> {
        loop {
            if *self.stopping.borrow() {
                return None;
            }
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            let reached = *self.updates.borrow_and_update();
            if self.sent < reached.checkpoint {
                self.queue_events(reached.checkpoint).await;
                continue;
            }
            if self.last_progress != Some(reached) {
                self.last_progress = Some(reached);
                return Some(progress(reached));
            }
            tokio::select! {
                changed = self.updates.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                _ = self.stopping.changed() => {}
            }
        }
    }

    /// Queues the next chunk of events up to `until`; on a read failure, an `error` event and a
    /// pause, then the stream goes on from where it was.
    async fn queue_events(&mut self, until: i64) {
        let limit = CHUNK.min(until - self.sent);
        match partida_eventstore::events_after(&self.state.pool, self.sent, limit).await {
            Ok(events) => {
                for stored in events {
                    self.sent = stored.position;
                    let event = Event::default()
                        .event("log")
                        .id(stored.position.to_string())
                        .json_data(&stored)
                        .unwrap_or_else(|_| Event::default().comment("unserializable event"));
                    self.pending.push_back(event);
                }
            }
            Err(error) => {
                tracing::warn!(%error, "live stream read failed; retrying");
                self.pending.push_back(
                    Event::default().event("error").data(
                        json!({"code": "unavailable", "message": "the log cannot be read; retrying"}).to_string(),
                    ),
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

fn progress(reached: Reached) -> Event {
    Event::default().event("progress").data(
        json!({
            "checkpoint": reached.checkpoint,
            "head": reached.head,
            "lag": (reached.head - reached.checkpoint).max(0),
        })
        .to_string(),
    )
}
