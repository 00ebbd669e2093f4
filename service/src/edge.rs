//! What every request passes through on its way in and out, in one layer: its request id, its
//! tracing span, its time limit and its latency metric.
//!
//! One hand-written layer instead of a stack of five (two `from_fn` middlewares and three from
//! tower-http): axum wraps every route in each layer, and each of those cloned and boxed the
//! service and the future below it for every request. Under W5's reads of one account the stack
//! was about a fifth of query-api's CPU per request (docs/PERFORMANCE.md).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::MatchedPath;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};
use tracing::Instrument;

use crate::ApiError;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The layer: `time_limit` is how long a handler may take to produce its response (a stream's
/// body may last longer).
#[derive(Debug, Clone, Copy)]
pub struct EdgeLayer {
    time_limit: Duration,
}

impl EdgeLayer {
    pub fn new(time_limit: Duration) -> Self {
        Self { time_limit }
    }
}

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge {
            inner,
            time_limit: self.time_limit,
        }
    }
}

/// A request's way through the layer:
/// - its `x-request-id`: the caller's, or a new UUID when it sent none, in the request (handlers
///   record it) and in the response;
/// - a span `http` (method, route template, request id) around everything the handler logs;
/// - `503 timeout` when the handler has not answered within the time limit (a write cut off this
///   way may still commit: retrying it with the same id or key is safe);
/// - its latency in `partida_http_request_duration_seconds` by method, route and status; a
///   debug event for every answer, a warning for a server error.
#[derive(Debug, Clone)]
pub struct Edge<S> {
    inner: S,
    time_limit: Duration,
}

impl<S> Service<Request<Body>> for Edge<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let started = Instant::now();
        let request_id = match request.headers().get(&REQUEST_ID) {
            Some(given) => given.clone(),
            None => {
                let id = new_request_id();
                request.headers_mut().insert(REQUEST_ID.clone(), id.clone());
                id
            }
        };
        let method = request.method().clone();
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", MatchedPath::as_str)
            .to_owned();
        let span = tracing::info_span!(
            "http",
            method = %method,
            route = route.as_str(),
            request_id = request_id.to_str().ok()
        );
        let answer = tokio::time::timeout(self.time_limit, self.inner.call(request));
        Box::pin(
            async move {
                let mut response = match answer.await {
                    Ok(Ok(response)) => response,
                    Err(_) => ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "timeout",
                        "the request took too long; retrying it is safe (a write is done at most once)",
                    )
                    .retry_after(Duration::from_secs(1))
                    .into_response(),
                };
                let status = response.status();
                let latency = started.elapsed();
                let labels = [
                    ("method", method.to_string()),
                    ("route", route),
                    ("status", status.as_u16().to_string()),
                ];
                metrics::histogram!(crate::metrics::HTTP_REQUEST_DURATION, &labels).record(latency.as_secs_f64());
                if status.is_server_error() {
                    tracing::warn!(
                        status = status.as_u16(),
                        latency_ms = latency.as_millis(),
                        "answered with a server error"
                    );
                } else {
                    tracing::debug!(status = status.as_u16(), latency_ms = latency.as_millis(), "answered");
                }
                response.headers_mut().insert(REQUEST_ID.clone(), request_id);
                Ok(response)
            }
            .instrument(span),
        )
    }
}

fn new_request_id() -> HeaderValue {
    let mut text = uuid::Uuid::encode_buffer();
    let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text);
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    fn app(time_limit: Duration) -> Router {
        let echo = |request: Request<Body>| async move {
            let id = request.headers().get(&REQUEST_ID).cloned();
            id.map_or_else(String::new, |id| id.to_str().unwrap_or_default().to_owned())
        };
        Router::new()
            .route("/v1/echo/{id}", get(echo))
            .route("/v1/stuck", get(std::future::pending::<&'static str>))
            .layer(EdgeLayer::new(time_limit))
    }

    async fn body(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    async fn answer(time_limit: Duration, request: Request<Body>) -> Response {
        app(time_limit)
            .oneshot(request)
            .await
            .unwrap_or_else(|never| match never {})
    }

    fn get_request(path: &str, id: Option<&'static str>) -> Request<Body> {
        let mut request = Request::get(path).body(Body::empty()).unwrap_or_default();
        if let Some(id) = id {
            request
                .headers_mut()
                .insert(REQUEST_ID.clone(), HeaderValue::from_static(id));
        }
        request
    }

    #[tokio::test]
    async fn a_request_without_an_id_gets_one_that_its_handler_and_its_caller_both_see() {
        let response = answer(Duration::from_secs(5), get_request("/v1/echo/a", None)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let answered = response.headers().get(&REQUEST_ID).cloned();
        let seen = body(response).await;
        assert!(uuid::Uuid::parse_str(&seen).is_ok(), "a new UUID, got {seen:?}");
        assert_eq!(answered.as_ref().and_then(|v| v.to_str().ok()), Some(seen.as_str()));
    }

    #[tokio::test]
    async fn a_callers_request_id_is_kept() {
        let response = answer(Duration::from_secs(5), get_request("/v1/echo/a", Some("trace-me-7"))).await;
        assert_eq!(
            response.headers().get(&REQUEST_ID),
            Some(&HeaderValue::from_static("trace-me-7"))
        );
        assert_eq!(body(response).await, "trace-me-7");
    }

    #[tokio::test]
    async fn a_handler_past_the_time_limit_is_answered_503_timeout_with_its_request_id() {
        let response = answer(Duration::from_millis(50), get_request("/v1/stuck", Some("slow-1"))).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key("retry-after"));
        assert_eq!(
            response.headers().get(&REQUEST_ID),
            Some(&HeaderValue::from_static("slow-1"))
        );
        let error: serde_json::Value = serde_json::from_str(&body(response).await).unwrap_or_default();
        assert_eq!(error["error"]["code"], "timeout", "the one error shape: {error}");
    }

    #[tokio::test]
    async fn every_answer_counts_in_the_latency_histogram_by_route_template() {
        let _ = crate::metrics::handle();
        let response = answer(Duration::from_secs(5), get_request("/v1/echo/counted-42", None)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let rendered = crate::metrics::handle().map(|h| h.render()).unwrap_or_default();
        assert!(
            rendered
                .lines()
                .any(|line| line.starts_with(crate::metrics::HTTP_REQUEST_DURATION)
                    && line.contains("route=\"/v1/echo/{id}\"")
                    && line.contains("status=\"200\"")),
            "{rendered}"
        );
    }
}
