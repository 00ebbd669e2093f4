//! Serving a router: request ids, tracing spans, metrics, graceful shutdown.

use std::future::Future;
use std::time::Duration;

use axum::body::Body;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use axum::Router;
use axum::extract::MatchedPath;
use axum::http::Request;
use tokio::net::TcpListener;

use crate::ApiError;
use tower_http::cors::CorsLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// How long a request may take to produce its response (a stream's body may last longer).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Wraps an app's router with what every service wants in front of it, and the CORS layer
/// when the service allows other origins (it answers preflights before authentication).
pub fn standard_layers(router: Router, cors: Option<CorsLayer>) -> Router {
    // Install the recorder now: anything recorded before it exists is lost.
    let _ = crate::metrics::handle();
    let router = router.layer(axum::middleware::from_fn(time_limit));
    // Outside the time limit, so a browser may read its 503 too.
    let router = match cors {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router
        .layer(axum::middleware::from_fn(crate::metrics::track))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let route = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
            let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok());
            tracing::info_span!("http", method = %request.method(), route, request_id)
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// Answers `503 timeout` when a handler has not produced a response within [`REQUEST_TIMEOUT`].
/// A write cut off this way may still commit: retrying it with the same id or key is safe.
async fn time_limit(request: Request<Body>, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the request took too long; retrying it is safe (a write is done at most once)",
        )
        .retry_after(Duration::from_secs(1))
        .into_response(),
    }
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutdown requested");
}
