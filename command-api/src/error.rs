//! How the writer's answers become HTTP errors in the one error shape.

use std::time::Duration;

use axum::http::StatusCode;
use ledger::Rejection;
use partida_eventstore::AppendError;
use partida_service::ApiError;

/// Business rules are 422; a conflict with an earlier write is 409.
pub(crate) fn rejection(rejection: &Rejection) -> ApiError {
    let status = if rejection.is_conflict() {
        StatusCode::CONFLICT
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    ApiError::new(status, rejection.code(), rejection.to_string()).with_details(rejection.details())
}

pub(crate) fn append(error: AppendError) -> ApiError {
    let retry = Duration::from_secs(1);
    match error {
        AppendError::Overloaded => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", "the writer queue is full; retry shortly")
                .retry_after(retry)
        }
        AppendError::Unavailable | AppendError::ShuttingDown => ApiError::unavailable(error.to_string()),
        AppendError::OutcomeUnknown => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "outcome_unknown",
            "the outcome of the commit is unknown; retry with the same id or Idempotency-Key: it is written at most once",
        )
        .retry_after(retry),
        // The writer logged the cause when it isolated the command.
        AppendError::Internal => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the command could not be written")
        }
    }
}
