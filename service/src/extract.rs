//! Extractors whose rejections speak the one error shape, so bad input never leaves as axum's
//! plain-text errors.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeOwned, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ApiError;

/// A JSON body: `application/json` only, unknown fields rejected by the target type, errors
/// naming the offending field, and no string may contain U+0000 (PostgreSQL cannot store it).
/// As a response, a JSON body written in one pass.
pub struct Json<T>(pub T);

/// What a response body is first given room for. axum's `Json` starts at 128 bytes and writes
/// through `BufMut`; under W5's entries pages (about 5 KB each) `BytesMut::put_slice` alone was
/// 4% of query-api's samples.
const RESPONSE_CAPACITY: usize = 4096;

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(RESPONSE_CAPACITY);
        match serde_json::to_writer(&mut body, &self.0) {
            Ok(()) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
            Err(error) => ApiError::internal(&error).into_response(),
        }
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim();
                mime.eq_ignore_ascii_case("application/json") || mime.to_ascii_lowercase().ends_with("+json")
            });
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON (Content-Type: application/json)",
            ));
        }
        let bytes = Bytes::from_request(request, state).await.map_err(body_rejection)?;
        parse(&bytes).map(Json)
    }
}

fn body_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the body is larger than this endpoint accepts",
        )
    } else {
        ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", rejection.body_text())
    }
}

/// Parses a JSON body into `T` with the same rules as the [`Json`] extractor, in one pass: no
/// intermediate `Value`, unless the body holds a `\u0000` escape and the field must be named.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let malformed = |e: serde_json::Error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the body is not valid JSON: {e}"),
        )
    };
    if contains_nul_escape(bytes) {
        let value: Value = serde_json::from_slice(bytes).map_err(malformed)?;
        reject_nul(&value, "")?;
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let Object(parsed) = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        if matches!(e.inner().classify(), serde_json::error::Category::Data) {
            field_error(e.path().clone(), &e.inner().to_string(), "")
        } else {
            malformed(e.into_inner())
        }
    })?;
    deserializer.end().map_err(malformed)?;
    Ok(parsed)
}

/// Whether the JSON text holds an escaped U+0000 (a raw NUL byte is not valid JSON anyway).
fn contains_nul_escape(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    while let Some(at) = rest.iter().position(|b| *b == b'\\') {
        let escape = &rest[at..];
        if escape.get(1) == Some(&b'u') && escape.get(2..6) == Some(b"0000".as_slice()) {
            return true;
        }
        // Skip the escaped character, so `\\u0000` (a backslash, then text) is not a NUL.
        rest = escape.get(2..).unwrap_or_default();
    }
    false
}

/// A validation error naming the field, under `prefix` (e.g. `transfers[3]`) when there is one.
fn field_error(path: serde_path_to_error::Path, message: &str, prefix: &str) -> ApiError {
    let path = path.to_string();
    let field = match (prefix.is_empty(), path.as_str()) {
        (_, ".") => prefix.to_owned(),
        (true, _) => path,
        (false, _) => format!("{prefix}.{path}"),
    };
    let message = if field.is_empty() {
        message.to_owned()
    } else {
        format!("{field}: {message}")
    };
    ApiError::validation(message, field)
}

/// Deserializes `T` from the JSON text of one item of a body [`parse`] has read (a `RawValue`:
/// valid JSON, its escapes checked). Errors name the field under `prefix` (e.g. `transfers[3]`),
/// without the position in the item's text that serde adds.
pub fn from_text<T: DeserializeOwned>(text: &str, prefix: &str) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut deserializer)
        .map(|Object(parsed)| parsed)
        .map_err(|e| {
            let path = e.path().clone();
            let inner = e.into_inner();
            let message = inner.to_string();
            let position = format!(" at line {} column {}", inner.line(), inner.column());
            let message = message.strip_suffix(&position).unwrap_or(&message);
            field_error(path, message, prefix)
        })
}

/// `T` from a JSON object only. serde's derived structs also accept an array of their fields
/// in order (`[1, 2]` for `{"a": 1, "b": 2}`), which no client means and the documents forbid.
pub struct Object<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }

        deserializer.deserialize_map(ObjectVisitor(PhantomData)).map(Object)
    }
}

/// For `#[serde(deserialize_with = ...)]`: a struct field that must be a JSON object.
pub fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<T, D::Error> {
    Object::deserialize(deserializer).map(|Object(value)| value)
}

/// For `#[serde(deserialize_with = ...)]`: a list whose items must be JSON objects.
pub fn objects<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Vec<T>, D::Error> {
    Vec::<Object<T>>::deserialize(deserializer).map(|items| items.into_iter().map(|Object(item)| item).collect())
}

/// [`objects`] for an optional list: absent or `null` is `None`.
pub fn optional_objects<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Vec<T>>, D::Error> {
    Option::<Vec<Object<T>>>::deserialize(deserializer)
        .map(|items| items.map(|items| items.into_iter().map(|Object(item)| item).collect()))
}

/// Refuses U+0000 anywhere in strings or keys: PostgreSQL's text and jsonb cannot hold it.
pub fn reject_nul(value: &Value, path: &str) -> Result<(), ApiError> {
    let nul = |field: String| ApiError::validation("strings must not contain U+0000", field);
    match value {
        Value::String(s) if s.contains('\0') => Err(nul(path.to_owned())),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| reject_nul(item, &format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().try_for_each(|(key, item)| {
            let field = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if key.contains('\0') {
                return Err(nul(field));
            }
            reject_nul(item, &field)
        }),
        _ => Ok(()),
    }
}

/// A query string, with rejections in the one error shape; no parameter may contain U+0000.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if let Some(name) = parts.uri.query().and_then(parameter_with_nul) {
            return Err(ApiError::validation("query parameters must not contain U+0000", name));
        }
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Query(value))
            .map_err(|rejection: QueryRejection| ApiError::validation(rejection.body_text(), "query"))
    }
}

/// The name of the first query parameter whose name or value decodes to text holding U+0000.
fn parameter_with_nul(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, value)| name.contains('\0') || value.contains('\0'))
        .map(|(name, _)| name.replace('\0', "\\u0000"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_anywhere_in_the_query_names_its_parameter() {
        assert_eq!(parameter_with_nul("a=1&type=x%00y"), Some("type".to_owned()));
        assert_eq!(parameter_with_nul("b%00=1").as_deref(), Some("b\\u0000"));
        assert_eq!(parameter_with_nul("a=%2500&b=%5C0"), None);
    }

    #[test]
    fn only_real_nul_escapes_are_found() {
        assert!(contains_nul_escape(br#"{"a": "x\u0000y"}"#));
        assert!(contains_nul_escape(br#"{"a": "\\\u0000"}"#));
        assert!(!contains_nul_escape(br#"{"a": "x\\u0000y"}"#));
        assert!(!contains_nul_escape(br#"{"a": "\u0001", "b": "\\"}"#));
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[expect(dead_code, reason = "only its parsing is tested")]
        n: u8,
    }

    #[test]
    fn syntax_and_data_errors_get_their_codes() {
        let code = |body: &[u8]| parse::<Body>(body).map(|_| "ok").unwrap_or_else(|e| e.code);
        assert_eq!(code(br#"{"n": 1}"#), "ok");
        assert_eq!(code(br#"{"n": "#), "malformed_json");
        assert_eq!(code(br#"{"n": 1} trailing"#), "malformed_json");
        assert_eq!(code(br#"{"n": 300}"#), "validation_failed");
        assert_eq!(code(br#"{"n": 1, "m": 2}"#), "validation_failed");
        assert_eq!(code(br#"{"n": 1, "m": "\u0000"}"#), "validation_failed");
    }

    #[tokio::test]
    async fn a_response_is_its_value_as_json_however_large() {
        let page: Vec<String> = (0..1_000).map(|i| format!("entry \"{i}\"")).collect();
        let response = Json(serde_json::json!({ "page": page })).into_response();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
        assert!(
            body.len() > RESPONSE_CAPACITY,
            "grown past its first room: {}",
            body.len()
        );
        let back: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(back["page"][999], "entry \"999\"");
        assert_eq!(back["page"].as_array().map(Vec::len), Some(1_000));
    }
}
