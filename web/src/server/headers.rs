//! Headers on every console response: a Content Security Policy without inline-script exceptions
//! (each page's own inline scripts carry a fresh nonce), no framing, no sniffing; and the status a
//! server function's error stands for.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

/// This request's CSP nonce, for the page renderer to put on its inline scripts.
#[derive(Clone, Debug)]
pub struct CspNonce(pub String);

pub async fn security_headers(mut request: Request, next: Next) -> Response {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    request.extensions_mut().insert(CspNonce(nonce.clone()));
    let mut response = next.run(request).await;
    let policy = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    );
    let headers = response.headers_mut();
    if let Ok(policy) = HeaderValue::from_str(&policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

/// Puts the request's nonce where Leptos looks for it (`use_nonce`), before the document's
/// scripts are rendered. Runs inside the page's reactive owner.
pub fn provide_request_nonce() {
    use leptos::prelude::{provide_context, use_context};
    let nonce = use_context::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<CspNonce>().map(|n| n.0.clone()));
    if let Some(nonce) = nonce {
        provide_context(leptos::nonce::Nonce::from_value(nonce));
    }
}

/// The largest error body a server function answers (an error and what was typed in its form:
/// 64 legs of long ids fit many times over).
const MAX_ERROR_BODY: usize = 1024 * 1024;

/// Server functions answer every error with 500; this gives it the status it stands for (bad
/// input a 4xx, as from the APIs), from the `UiError` in the body. A form posted without
/// JavaScript is redirected back instead, and is left alone.
pub async fn server_fn_error_status(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let is_error = response.status() == StatusCode::INTERNAL_SERVER_ERROR
        && response
            .headers()
            .contains_key(leptos::server_fn::error::SERVER_FN_ERROR_HEADER);
    if !is_error {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_ERROR_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => {
            let error = crate::api::UiError::new("console_failed", "The console's answer was too large.");
            serde_json::to_vec(&error).unwrap_or_default().into()
        }
    };
    if let Ok(error) = serde_json::from_slice::<crate::api::UiError>(&bytes) {
        // Only 4xx and 5xx read as errors in the browser.
        let status = error.http_status().clamp(400, 599);
        parts.status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    }
    Response::from_parts(parts, Body::from(bytes))
}
