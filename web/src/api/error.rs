//! The console's one error: what an API refused (its code, in plain words, and the field it
//! names) or why the console could not ask. Server functions return it; forms show it inline.

use std::collections::BTreeMap;

use leptos::prelude::{FromServerFnError, ServerFnErrorErr};
use leptos::server_fn::codec::JsonEncoding;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UiError {
    /// The API's stable code (`limit_exceeded`, ...) or the console's own (`unreachable`, ...).
    pub code: String,
    /// A sentence for the person at the screen.
    pub message: String,
    /// The form field it concerns, when there is one (the API's `details.field`, or a form
    /// field such as `legs[1].amount`).
    pub field: Option<String>,
    /// What the person had typed, by form field name, so that a form re-rendered after the
    /// error (with JavaScript off, after a redirect) still shows it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub input: BTreeMap<String, String>,
    /// The API's `details`, for the console's server to word them better than the code can alone
    /// (boxed: errors travel in every `Result`). Not sent to the browser.
    #[serde(skip)]
    pub details: Option<Box<Value>>,
    /// The HTTP status the API answered with, when an API refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

impl UiError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            field: None,
            input: BTreeMap::new(),
            details: None,
            status: None,
        }
    }

    pub fn field(code: &str, field: &str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.to_owned()),
            ..Self::new(code, message)
        }
    }

    /// The HTTP status the console answers this error with: the API's when an API refused (bad
    /// input stays a 4xx), 400 for what the console itself refused, 502 or 503 when it could not
    /// get an answer, 500 otherwise.
    pub fn http_status(&self) -> u16 {
        self.status.unwrap_or(match self.code.as_str() {
            "validation_failed" => 400,
            "unauthenticated" => 401,
            "unexpected_answer" => 502,
            "unreachable" => 503,
            _ => 500,
        })
    }

    /// The same error, remembering what was typed.
    pub fn with_input(mut self, input: BTreeMap<String, String>) -> Self {
        self.input = input;
        self
    }

    /// An API's error body (`{"error": {code, message, details}}`) in plain words.
    pub fn from_api(body: &Value) -> Self {
        let error = body.get("error").unwrap_or(&Value::Null);
        let code = error.get("code").and_then(Value::as_str).unwrap_or("unexpected_answer");
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("the service gave no reason");
        let details = error.get("details").unwrap_or(&Value::Null);
        let detail = |key: &str| details.get(key).and_then(Value::as_str).unwrap_or("?").to_owned();
        let plain = match code {
            "limit_exceeded" => match details.get("flag").and_then(Value::as_str) {
                Some("debits_must_not_exceed_credits") => format!(
                    "Insufficient funds: account {} cannot pay this; its debits would exceed its credits.",
                    detail("account")
                ),
                Some("credits_must_not_exceed_debits") => format!(
                    "Limit reached: account {} cannot receive this; its credits would exceed its debits.",
                    detail("account")
                ),
                _ => format!("The transfer would break the limit of account {}.", detail("account")),
            },
            "account_not_found" => format!("There is no account {}.", detail("account")),
            "asset_not_found" => format!("The asset {} is not registered.", detail("asset")),
            "asset_mismatch" => format!(
                "Asset mismatch: {} holds {} but {} holds {}; a posting moves one asset.",
                detail("debit"),
                detail("debit_asset"),
                detail("credit"),
                detail("credit_asset")
            ),
            "account_frozen" => format!("Account {} is frozen.", detail("account")),
            "account_not_frozen" => format!("Account {} is not frozen.", detail("account")),
            "account_closed" => format!("Account {} is closed.", detail("account")),
            "account_not_empty" => format!(
                "Account {} still holds a balance; only an empty account can be closed.",
                detail("account")
            ),
            "already_reversed" => format!(
                "Transfer {} was already reversed by {}.",
                detail("transfer"),
                detail("reversed_by")
            ),
            "idempotency_conflict" => format!(
                "The id {} is already used by a different {}; choose another id.",
                detail("id"),
                detail("kind")
            ),
            "overloaded" | "unavailable" | "outcome_unknown" => {
                format!("{message} Submitting again is safe: it is written at most once.")
            }
            _ => message.to_owned(),
        };
        Self {
            code: code.to_owned(),
            message: plain,
            field: details.get("field").and_then(Value::as_str).map(str::to_owned),
            input: BTreeMap::new(),
            details: Some(details).filter(|d| !d.is_null()).map(|d| Box::new(d.clone())),
            status: None,
        }
    }
}

impl std::fmt::Display for UiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UiError {}

impl FromServerFnError for UiError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(error: ServerFnErrorErr) -> Self {
        match &error {
            ServerFnErrorErr::Request(_) | ServerFnErrorErr::Response(_) => Self::new(
                "console_unreachable",
                "The console's server cannot be reached. Check the connection and submit again; \
                 nothing is posted twice.",
            ),
            // What the browser sent does not fit the form's fields: bad input, not a failure.
            ServerFnErrorErr::Args(_) | ServerFnErrorErr::MissingArg(_) | ServerFnErrorErr::Deserialization(_) => {
                Self::new(
                    "validation_failed",
                    format!("The form's fields are not as expected: {error}"),
                )
            }
            other => Self::new("console_failed", format!("The console failed: {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_overdraft_reads_as_insufficient_funds() {
        let error = UiError::from_api(&json!({"error": {
            "code": "limit_exceeded",
            "message": "limit",
            "details": {"account": "alice", "flag": "debits_must_not_exceed_credits", "debits": 5, "credits": 0}
        }}));
        assert_eq!(error.code, "limit_exceeded");
        assert!(
            error.message.starts_with("Insufficient funds: account alice"),
            "{}",
            error.message
        );
    }

    #[test]
    fn answers_with_the_status_of_what_refused() {
        let mut refused = UiError::from_api(&json!({"error": {"code": "condition_failed", "message": "no"}}));
        refused.status = Some(422);
        assert_eq!(refused.http_status(), 422);
        assert_eq!(UiError::field("validation_failed", "id", "bad").http_status(), 400);
        assert_eq!(UiError::new("unreachable", "down").http_status(), 503);
        assert_eq!(UiError::new("internal", "broken").http_status(), 500);
    }

    #[test]
    fn keeps_the_field_an_api_names() {
        let error = UiError::from_api(&json!({"error": {
            "code": "validation_failed", "message": "id: bad", "details": {"field": "id"}
        }}));
        assert_eq!(error.field.as_deref(), Some("id"));
        assert_eq!(error.message, "id: bad");
    }
}
