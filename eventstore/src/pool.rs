//! Connection pools for the services' request paths.

use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::PgPoolOptions;

/// A pooled connection idle for less than this is handed out unchecked; one idle longer is pinged
/// first, and replaced if the ping fails (the server restarted, a proxy dropped it).
pub const TRUSTED_IDLE: Duration = Duration::from_secs(1);

/// Pool options that check a connection's health only when it has sat idle. sqlx's default pings
/// every connection before handing it out: a round trip to PostgreSQL before every query, which
/// on a busy service checks connections that answered a moment ago.
pub fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move { Ok(meta.idle_for < TRUSTED_IDLE || conn.ping().await.is_ok()) })
        })
}
