//! Signing in to the console, and what guards its pages and forms.
//!
//! An operator signs in with their own API token (or a JWT from the single sign-on provider).
//! The console keeps it in an `HttpOnly`, `SameSite=Strict` cookie and forwards it as the bearer
//! credential of every API call it makes for them, so the APIs enforce the operator's own role
//! and record the operator, not the console, as each event's actor (docs/adr/0006). The console
//! itself holds no credential.
//!
//! Forms are protected against cross-site requests twice: the cookie is never sent on them
//! (`SameSite=Strict`), and any state-changing request whose `Origin` (or `Sec-Fetch-Site`) says
//! it came from another site is refused.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use leptos::prelude::use_context;
use partida_service::ApiError;

use crate::api::UiError;

/// The session cookie's name.
pub const COOKIE: &str = "partida_session";

/// How long a sign-in lasts in the browser (the credential may expire sooner).
const MAX_AGE_SECS: u32 = 12 * 60 * 60;

/// The credential in the request's session cookie, if any.
pub fn credential(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|cookies| cookies.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// `Set-Cookie` for a signed-in session; `secure` when the console is served over HTTPS.
pub fn set_cookie(credential: &str, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={credential}; Path=/; HttpOnly; SameSite=Strict; Max-Age={MAX_AGE_SECS}{secure}"
    ))
    .ok()
}

/// `Set-Cookie` that ends the session.
pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("partida_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Pages need a session: without one, a page request is sent to the sign-in page (and back
/// afterwards). Assets, health and the sign-in page itself are open; server functions answer
/// for themselves (the APIs refuse them without a credential).
pub async fn require_session(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let open = path == "/login"
        || path == "/healthz"
        || path == "/favicon.svg"
        || path.starts_with("/pkg/")
        || path.starts_with("/api/");
    if open || request.method() != Method::GET || credential(request.headers()).is_some() {
        return next.run(request).await;
    }
    let back = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
    Redirect::to(&format!("/login?next={}", encode(&back))).into_response()
}

/// Refuses state-changing requests from other sites (cross-site request forgery).
pub async fn same_origin(request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) || !cross_site(request.headers()) {
        return next.run(request).await;
    }
    ApiError::new(
        StatusCode::FORBIDDEN,
        "cross_site_request",
        "this form may only be submitted from the console's own pages",
    )
    .into_response()
}

fn cross_site(headers: &HeaderMap) -> bool {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if text(header::HeaderName::from_static("sec-fetch-site")).is_some_and(|site| site == "cross-site") {
        return true;
    }
    match (text(header::ORIGIN), text(header::HOST)) {
        // Browsers send Origin on every cross-origin POST; a request without one is not a
        // browser's cross-site form.
        (None, _) => false,
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_none_or(|(_, authority)| !authority.eq_ignore_ascii_case(host)),
        (Some(_), None) => true,
    }
}

/// Signs in: the APIs must accept `credential`; it is then set as the session cookie and the
/// browser is sent on to `next`.
pub async fn login(credential: &str, next: Option<&str>) -> Result<(), UiError> {
    let cookie_safe = |c: &str| {
        !c.is_empty()
            && c.len() <= 8_192
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    };
    if !cookie_safe(credential) {
        return Err(UiError::field(
            "validation_failed",
            "token",
            "Paste an API token (ptk_...) or a sign-in token (JWT).",
        ));
    }
    let operator = super::backend()?.acting_as(Some(credential.to_owned())).whoami().await;
    if let Err(error) = operator {
        return Err(match error.code.as_str() {
            "unauthenticated" => UiError::field(
                "unauthenticated",
                "token",
                "The APIs do not accept this token: it is unknown, revoked or expired.",
            ),
            _ => error,
        });
    }
    let secure = use_context::<super::SecureCookies>().is_some_and(|s| s.0);
    if let (Some(response), Some(cookie)) = (
        use_context::<leptos_axum::ResponseOptions>(),
        set_cookie(credential, secure),
    ) {
        response.insert_header(header::SET_COOKIE, cookie);
    }
    leptos_axum::redirect(&safe_next(next));
    Ok(())
}

/// Signs out: the cookie is cleared and the browser sent to the sign-in page.
pub fn logout() {
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.insert_header(header::SET_COOKIE, clear_cookie());
    }
    leptos_axum::redirect("/login");
}

/// Percent-encodes a path for a query parameter.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Where to go after signing in: a path on this console only (never another site).
pub fn safe_next(next: Option<&str>) -> String {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
        .unwrap_or("/")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn finds_the_session_among_other_cookies() {
        let map = headers(&[("cookie", "a=1; partida_session=ptk_x ; b=2")]);
        assert_eq!(credential(&map).as_deref(), Some("ptk_x"));
        assert_eq!(credential(&headers(&[("cookie", "partida_session=")])), None);
        assert_eq!(credential(&HeaderMap::new()), None);
    }

    #[test]
    fn refuses_other_origins_only() {
        assert!(!cross_site(&headers(&[
            ("origin", "http://console:3000"),
            ("host", "console:3000")
        ])));
        assert!(cross_site(&headers(&[
            ("origin", "https://evil.example"),
            ("host", "console:3000")
        ])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(!cross_site(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(!cross_site(&HeaderMap::new()));
    }

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/accounts?after=a")), "/accounts?after=a");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
