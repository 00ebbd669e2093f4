//! The console's server: renders pages, answers the browser's server-function calls by asking
//! command-api and query-api, passes the live stream on, and serves the wasm and CSS.

mod backend;
pub mod headers;
mod live;
pub mod ops;
pub mod session;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use axum::Router;
use axum::extract::FromRef;
use axum::routing::get;
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tokio::sync::watch;

pub use backend::{AssetOf, Backend, segment};

use crate::app::{App, shell};

#[derive(clap::Parser, Debug, Clone)]
#[command(name = "web", about = "Partida's console", version)]
pub struct Config {
    /// Where the console listens.
    #[arg(long, env = "WEB_ADDR", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// command-api's base URL, as this server reaches it.
    #[arg(long, env = "COMMAND_API_URL", default_value = "http://127.0.0.1:8081")]
    pub command_api_url: String,
    /// query-api's base URL (or the load balancer's in front of its replicas).
    #[arg(long, env = "QUERY_API_URL", default_value = "http://127.0.0.1:8082")]
    pub query_api_url: String,
    /// The projector's base URL, for the health view.
    #[arg(long, env = "PROJECTOR_URL", default_value = "http://127.0.0.1:8083")]
    pub projector_url: String,
    /// The directory holding `pkg/web.js`, `pkg/web_bg.wasm` and `pkg/web.css` (`cargo xtask`
    /// builds it under target/site).
    #[arg(long, env = "WEB_SITE_ROOT", default_value = "target/site")]
    pub site_root: PathBuf,
    /// Mark the session cookie `Secure`: set it when the console is served over HTTPS.
    #[arg(long, env = "WEB_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// Log as JSON lines.
    #[arg(long, env = "LOG_JSON")]
    pub log_json: bool,
}

/// What every request handler and server function can reach.
#[derive(Clone)]
pub struct AppState {
    pub options: LeptosOptions,
    pub backend: Backend,
    /// Turns true when shutdown starts; the live streams end on it.
    pub stopping: watch::Receiver<bool>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.options.clone()
    }
}

/// Whether the session cookie is marked `Secure` (in context for the sign-in function).
#[derive(Clone, Copy)]
pub struct SecureCookies(pub bool);

/// The backend, inside a server function or a page rendered on the server, acting as the
/// operator whose session cookie came with the request.
pub fn backend() -> Result<Backend, crate::api::UiError> {
    let backend =
        use_context::<Backend>().ok_or_else(|| crate::api::UiError::new("internal", "the console is misconfigured"))?;
    let credential = use_context::<axum::http::request::Parts>().and_then(|parts| session::credential(&parts.headers));
    Ok(backend.acting_as(credential))
}

/// After a write, on to the page of what was written, read at the write's position so it shows
/// (a client-side navigation with JavaScript, a 302 without).
pub fn redirect_to_written(pages: &str, id: &str, written: &crate::api::types::Written) {
    leptos_axum::redirect(&format!("{pages}/{}?min_position={}", segment(id), written.position));
}

pub async fn main() -> anyhow::Result<()> {
    use clap::Parser;
    let config = Config::parse();
    partida_service::telemetry::init(config.log_json);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let (stopping, stopping_rx) = watch::channel(false);
    let router = router(&config, stopping_rx)?;
    tracing::info!(addr = %config.listen, "web listening");
    let shutdown = async move {
        partida_service::shutdown_signal().await;
        stopping.send_replace(true);
    };
    partida_service::serve(listener, router, shutdown).await?;
    Ok(())
}

pub fn router(config: &Config, stopping: watch::Receiver<bool>) -> anyhow::Result<Router> {
    let site_root = config.site_root.to_string_lossy().into_owned();
    let options = LeptosOptions::builder()
        .output_name("web")
        .site_root(site_root)
        .site_pkg_dir("pkg")
        .site_addr(config.listen)
        .build();
    let backend = Backend::new(&config.command_api_url, &config.query_api_url, &config.projector_url)?;
    let state = AppState {
        options,
        backend: backend.clone(),
        stopping,
    };
    let secure = SecureCookies(config.secure_cookies);
    let routes = generate_route_list(App);
    let pages = Router::new()
        .route("/live", get(live::proxy))
        .route("/healthz", get(partida_service::health::healthz))
        .leptos_routes_with_context(
            &state,
            routes,
            move || {
                provide_context(backend.clone());
                provide_context(secure);
                headers::provide_request_nonce();
            },
            {
                let options = state.options.clone();
                move || shell(options.clone())
            },
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .with_state(state)
        .layer(axum::middleware::from_fn(headers::server_fn_error_status))
        .layer(axum::middleware::from_fn(session::require_session))
        .layer(axum::middleware::from_fn(session::same_origin))
        .layer(axum::middleware::from_fn(headers::security_headers));
    Ok(partida_service::standard_layers(pages, None))
}
