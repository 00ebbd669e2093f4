//! Personal data (docs/PERSONAL-DATA.md): sealing what requests carry under `metadata.personal`,
//! and erasing a data subject.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use ledger::{Command, Metadata, SubjectId};
use partida_eventstore::personal::{self, SealError};
use partida_service::ApiError;
use partida_service::openapi::{self, ErrorBody};
use serde_json::json;

use crate::AppState;
use crate::request::{WriteMeta, Written, respond};

/// Seals `metadata.personal` in place, if the metadata has one.
pub(super) async fn seal(state: &AppState, metadata: &mut Metadata) -> Result<(), ApiError> {
    personal::seal(&state.pool, metadata)
        .await
        .map_err(|error| api_error(error, ""))
}

/// A failure to seal in the one error shape. `prefix` locates the metadata in the request (`""`,
/// or a batch item's `transfers[3].`).
pub(super) fn api_error(error: SealError, prefix: &str) -> ApiError {
    let field = format!("{prefix}metadata.{}", personal::PERSONAL);
    match error {
        SealError::Malformed(_) => ApiError::validation(format!("{field}: {error}"), field),
        SealError::Erased(subject) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "personal_data_erased",
            format!("the personal data of subject {subject} is erased; nothing can be recorded for it again"),
        )
        .with_details(json!({ "subject": subject.as_str() })),
        SealError::Database(cause) => {
            tracing::warn!(error = %cause, "the subject keys could not be read");
            ApiError::unavailable("the subject keys could not be read; retry shortly")
        }
    }
}

/// Erases a data subject's personal data (crypto-shredding): the subject's key is destroyed in
/// the transaction that records `PersonalDataErased`, so everything ever sealed for the subject
/// can no longer be read; the log and its hash chain are unchanged. The read tables replace the
/// subject's personal data with `{"subject", "erased": true}` as the projector passes the event.
/// From then on, personal data for the subject is refused (`personal_data_erased`). Erasing it
/// again answers `200` with the first erasure.
#[utoipa::path(
    post,
    path = "/v1/subjects/{id}/erase",
    operation_id = "erasePersonalData",
    tag = "subjects",
    params(("id" = inline(openapi::SubjectId), Path, description = "The data subject.")),
    responses(
        (status = 201, description = "Erased.", body = Written),
        (status = 200, description = "Already erased: the first erasure.", body = Written),
        (status = 400, description = "A malformed subject id.", body = ErrorBody),
    )
)]
pub(super) async fn erase(
    State(state): State<AppState>,
    meta: WriteMeta,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let subject = super::path_id(id, SubjectId::parse)?;
    let reply = state
        .writer
        .submit(meta.natural(Command::ErasePersonalData(subject.clone())))
        .await;
    respond(subject.as_str(), reply)
}
