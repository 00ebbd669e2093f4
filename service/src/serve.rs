//! Serving a router: request ids, tracing spans, metrics, graceful shutdown.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tower_http::cors::CorsLayer;

use crate::edge::EdgeLayer;

/// How long a request may take to produce its response (a stream's body may last longer).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Wraps an app's router with what every service wants in front of it ([`EdgeLayer`]: request
/// ids, spans, the time limit, latency metrics), and the CORS layer when the service allows
/// other origins: outermost, so it answers preflights before authentication, and a browser may
/// read the time limit's 503 too.
pub fn standard_layers(router: Router, cors: Option<CorsLayer>) -> Router {
    // Install the recorder now: anything recorded before it exists is lost.
    let _ = crate::metrics::handle();
    let router = router.layer(EdgeLayer::new(REQUEST_TIMEOUT));
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
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
