//! What every Partida service shares: the one JSON error shape and the extractors that map bad
//! input into it, the shared parts of the OpenAPI documents, telemetry, Prometheus metrics, CORS, and serving with graceful shutdown.

pub mod cors;
mod edge;
mod error;
mod extract;
pub mod health;
pub mod metadata;
pub mod metrics;
pub mod openapi;
mod serve;
pub mod telemetry;

pub use error::ApiError;
pub use extract::{Json, Object, Query, from_text, object, objects, optional_objects, parse, reject_nul};
pub use serve::{serve, shutdown_signal, standard_layers};
