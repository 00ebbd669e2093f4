//! What every write request carries besides its body: who sent it (the authenticated
//! principal), tracing context and an optional `Idempotency-Key`; and how the writer's reply
//! becomes the response.

use axum::extract::FromRequestParts;
use axum::http::{StatusCode, request::Parts};
use axum::response::{IntoResponse, Response};
use ledger::Command;
use partida_auth::Principal;
use partida_eventstore::{AppendError, CommandContext, IdempotencyKey, Reply, Submission};
use partida_service::ApiError;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use crate::error;

/// The `Idempotency-Key` header, as documented.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub(crate) struct IdempotencyKeyHeader {
    /// Makes retries of this request safe: a retry with the same key and request gets the first
    /// answer; the same key with another request is a 409. 1 to 255 visible ASCII characters.
    #[param(rename = "Idempotency-Key", min_length = 1, max_length = 255, pattern = "^[!-~]+$")]
    idempotency_key: Option<String>,
}

/// A write's answer: what was written and its position in the log.
#[derive(Serialize, ToSchema)]
pub(crate) struct Written {
    /// The id of what was written (transfer, account or asset code).
    id: String,
    /// The log position of the write's event; `X-Min-Position` / `min_position` on a read
    /// waits for it (read-your-writes).
    #[schema(minimum = 1)]
    position: i64,
}

/// Headers of a write request.
pub(crate) struct WriteMeta {
    context: CommandContext,
    idempotency_key: Option<String>,
}

/// The most characters a tracing header may bring into an event's metadata: every event of the
/// request records it, so it must not grow the log past the metadata bound.
const MAX_TRACING_HEADER: usize = 200;

/// The most characters of an `Idempotency-Key`.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// Header `name` when present: 1 to `max` visible ASCII characters, or the request is refused.
fn header(parts: &Parts, name: &str, max: usize) -> Result<Option<String>, ApiError> {
    let Some(value) = parts.headers.get(name) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .filter(|v| (1..=max).contains(&v.len()) && v.chars().all(|c| c.is_ascii_graphic()))
        .map(|v| Some(v.to_owned()))
        .ok_or_else(|| ApiError::validation(format!("{name} must be 1 to {max} visible ASCII characters"), name))
}

impl<S: Send + Sync> FromRequestParts<S> for WriteMeta {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let request_id = header(parts, "x-request-id", MAX_TRACING_HEADER)?;
        let principal = parts.extensions.get::<Principal>();
        let context = CommandContext {
            correlation_id: header(parts, "x-correlation-id", MAX_TRACING_HEADER)?.or_else(|| request_id.clone()),
            causation_id: header(parts, "x-causation-id", MAX_TRACING_HEADER)?,
            actor: principal.map(|p| p.subject.clone()),
            credential: principal.map(|p| p.credential.clone()),
            request_id,
        };
        let idempotency_key = header(parts, "Idempotency-Key", MAX_IDEMPOTENCY_KEY)?;
        Ok(Self {
            context,
            idempotency_key,
        })
    }
}

impl WriteMeta {
    /// A submission for `command`, under the request's `Idempotency-Key` if it has one.
    pub fn submission(&self, command: Command, route: &str, body: &Value) -> Submission {
        Submission {
            command,
            context: self.context.clone(),
            idempotency_key: self.key(route, || ledger::canonical::to_vec(body)),
            chain: None,
        }
    }

    /// The request's `Idempotency-Key`, bound to a hash of the route and the normalized body, so
    /// the same key with another request is a conflict.
    /// `canonical_body` gives the body's canonical JSON, and is called only when there is a key.
    pub fn key(&self, route: &str, canonical_body: impl FnOnce() -> Vec<u8>) -> Option<IdempotencyKey> {
        self.idempotency_key.as_ref().map(|key| {
            let mut hasher = Sha256::new();
            hasher.update(route.as_bytes());
            hasher.update([0]);
            hasher.update(canonical_body());
            IdempotencyKey {
                key: key.clone(),
                request_hash: hasher.finalize().into(),
            }
        })
    }

    /// For writes whose body carries their own idempotency key (an id), the header is not used.
    pub fn natural(&self, command: Command) -> Submission {
        Submission {
            command,
            context: self.context.clone(),
            idempotency_key: None,
            chain: None,
        }
    }
}

/// `201 {"id", "position"}` for a new write, `200` with the same body for an identical replay.
pub(crate) fn respond(id: &str, reply: Result<Reply, AppendError>) -> Result<Response, ApiError> {
    let written = |position| {
        axum::Json(Written {
            id: id.to_owned(),
            position,
        })
    };
    match reply.map_err(error::append)? {
        Reply::Written { position } => Ok((StatusCode::CREATED, written(position)).into_response()),
        Reply::Replayed { position } => Ok((StatusCode::OK, written(position)).into_response()),
        Reply::Rejected(rejection) => Err(error::rejection(&rejection)),
        // Only keyed batches are answered from a record; a single command never is.
        Reply::Recorded(answer) => Ok((StatusCode::OK, axum::Json(answer)).into_response()),
    }
}
