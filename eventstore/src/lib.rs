//! The PostgreSQL event store: the gap-free, hash-chained log, the write-side state the writer
//! decides against, and the group-commit writer that appends to it.
//!
//! `docs/ARCHITECTURE.md` explains why positions come from a locked head row and what the database
//! itself refuses.

mod batch;
pub mod checkpoint;
mod load;
mod log;
mod persist;
mod rebuild;
mod time;
mod writer;

pub use log::{LogPage, StoredEvent, events_after, events_page, head, stream, verify_chain};
pub use rebuild::{RebuildError, WriteSideRebuild, rebuild_write_side};
pub use time::{datetime_to_micros, format_timestamp, micros_to_datetime, parse_timestamp};
pub use writer::{AppendError, CommandContext, IdempotencyKey, Reply, Submission, Writer, WriterConfig, WriterTask};

/// Every migration of the product, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// The channel the writer notifies after every commit; the payload is the new head position.
pub const EVENTS_CHANNEL: &str = "partida_events";
