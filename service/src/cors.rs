//! Cross-origin access for browsers: only the origins an operator configures may call an API
//! from a page of theirs. With none configured (the default) no CORS header is sent, so browsers
//! keep every other site's pages out; clients that are not browsers are unaffected either way.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, Uri, header};
use tower_http::cors::AllowOrigin;
pub use tower_http::cors::CorsLayer;

/// Request headers a cross-origin page may send.
const ALLOWED_HEADERS: [&str; 7] = [
    "authorization",
    "content-type",
    "idempotency-key",
    "x-min-position",
    "x-request-id",
    "x-correlation-id",
    "x-causation-id",
];

/// Response headers a cross-origin page may read.
const EXPOSED_HEADERS: [&str; 4] = [
    "x-request-id",
    "retry-after",
    "www-authenticate",
    "x-partida-export-range",
];

/// How long a browser may cache a preflight's answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(3_600);

/// The CORS layer for `origins` (each `scheme://host[:port]`), allowing `methods`; `None` when
/// no origin is configured. An origin that is not of that form is an error naming it.
pub fn layer(origins: &[String], methods: &[Method]) -> Result<Option<CorsLayer>, String> {
    let origins = origins
        .iter()
        .map(String::as_str)
        .map(str::trim)
        .filter(|origin| !origin.is_empty())
        .map(origin)
        .collect::<Result<Vec<_>, _>>()?;
    if origins.is_empty() {
        return Ok(None);
    }
    let names = |list: &[&'static str]| {
        list.iter()
            .map(|name| HeaderName::from_static(name))
            .collect::<Vec<_>>()
    };
    Ok(Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods(methods.to_vec())
            .allow_headers(names(&ALLOWED_HEADERS))
            .expose_headers(names(&EXPOSED_HEADERS))
            .max_age(PREFLIGHT_MAX_AGE)
            .vary([header::ORIGIN]),
    ))
}

/// An origin as browsers send it: `http` or `https`, a host, an optional port, nothing else (a
/// trailing `/` is forgiven).
fn origin(text: &str) -> Result<HeaderValue, String> {
    let invalid = |why: &str| format!("CORS origin `{text}` is not valid: {why}");
    let trimmed = text.strip_suffix('/').unwrap_or(text);
    if trimmed.contains('#') {
        return Err(invalid("an origin has no fragment"));
    }
    let uri: Uri = trimmed.parse().map_err(|_| invalid("expected scheme://host[:port]"))?;
    let (scheme, default_port) = match uri.scheme_str() {
        Some("http") => ("http", 80),
        Some("https") => ("https", 443),
        _ => return Err(invalid("the scheme must be http or https")),
    };
    let Some(authority) = uri.authority() else {
        return Err(invalid("it has no host"));
    };
    if authority.as_str().contains('@') || authority.host().is_empty() {
        return Err(invalid("expected scheme://host[:port]"));
    }
    if uri
        .path_and_query()
        .is_some_and(|p| !p.as_str().is_empty() && p.as_str() != "/")
    {
        return Err(invalid("an origin has no path or query"));
    }
    // Browsers leave the scheme's default port out of the Origin they send.
    let host = authority.host();
    let origin = match authority.port_u16() {
        Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    };
    HeaderValue::from_str(&origin.to_ascii_lowercase()).map_err(|_| invalid("expected scheme://host[:port]"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        let origin = |text: &str| origin(text).map(|v| v.to_str().map(str::to_owned).unwrap_or_default());
        assert_eq!(
            origin("https://console.example.com").as_deref(),
            Ok("https://console.example.com")
        );
        assert_eq!(origin("http://LOCALHOST:3000/").as_deref(), Ok("http://localhost:3000"));
        assert_eq!(origin("https://x.example:443").as_deref(), Ok("https://x.example"));
        assert_eq!(origin("http://x.example:80").as_deref(), Ok("http://x.example"));
        assert_eq!(origin("http://x.example:443").as_deref(), Ok("http://x.example:443"));
        for bad in [
            "console.example.com",
            "ftp://x.example",
            "https://x.example/app",
            "https://x.example?a=1",
            "https://x.example#top",
            "https://user@x.example",
            "*",
        ] {
            assert!(origin(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn no_origin_means_no_layer() -> Result<(), String> {
        assert!(layer(&[], &[Method::GET])?.is_none());
        assert!(layer(&[" ".to_owned()], &[Method::GET])?.is_none());
        assert!(layer(&["https://a.example".to_owned()], &[Method::GET])?.is_some());
        Ok(())
    }
}
