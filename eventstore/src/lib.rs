//! The PostgreSQL event store: the gap-free, hash-chained log, the write-side state the writer
//! decides against, and the group-commit writer that appends to it.
//!
//! `docs/ARCHITECTURE.md` explains why positions come from a locked head row and what the database
//! itself refuses.

mod batch;
pub mod checkpoint;
mod export_line;
mod known;
mod load;
mod log;
mod persist;
pub mod personal;
mod pool;
mod probing;
mod rebuild;
mod time;
mod writer;

pub use log::{
    LogPage, Payload, RecordLine, StoredEvent, events_after, events_page, head, payloads_after, stream, verify_chain,
};
pub use pool::{Lease, ReadPool, TRUSTED_IDLE, pool_options};
pub use probing::{PLAN_LIFETIME, probing_keys};
pub use rebuild::{RebuildError, WriteSideRebuild, rebuild_write_side};
pub use time::{
    datetime_to_micros, format_timestamp, micros_to_datetime, now_micros, parse_timestamp, with_timestamp_text,
};
pub use writer::{AppendError, CommandContext, IdempotencyKey, Reply, Submission, Writer, WriterConfig, WriterTask};

/// Every migration of the product, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// The channel the writer notifies after every commit; the payload is the new head position.
pub const EVENTS_CHANNEL: &str = "partida_events";

/// Bounds every session made with `options`: PostgreSQL cancels a statement running longer than
/// `statement_ms` and ends a session idle in a transaction longer than `idle_in_transaction_ms`
/// (0: no bound). Set by each service on its own connections, so they hold whatever the roles'
/// defaults are.
pub fn with_session_timeouts(
    options: sqlx::postgres::PgConnectOptions,
    statement_ms: u64,
    idle_in_transaction_ms: u64,
) -> sqlx::postgres::PgConnectOptions {
    options.options([
        ("statement_timeout", statement_ms.to_string()),
        (
            "idle_in_transaction_session_timeout",
            idle_in_transaction_ms.to_string(),
        ),
    ])
}
