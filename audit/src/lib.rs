//! partida-audit: verifies Partida's log without trusting the services.
//!
//! [`verify`] reads a log from a [`source::Source`] record by record and checks, in one pass:
//! the chain (dense positions, every hash recomputed, every link, time never running
//! backwards; [`ledger::log::ChainCheck`]) and the history (every event re-decided by the
//! domain; [`replay::Replay`]). Then double entry per asset, and, when asked, the services'
//! tables against the replay ([`compare`]). The first failure stops the pass and names its
//! position.

pub mod compare;
pub mod progress;
pub mod replay;
pub mod report;
pub mod source;

use ledger::log::ChainCheck;

use crate::progress::Progress;
use crate::replay::Replay;
use crate::report::{Failure, Report};
use crate::source::{Source, SourceError};

/// What to compare the replay with, besides checking the log itself.
#[derive(Debug, Default, Clone)]
pub struct Compare {
    /// query-api's base URL: its read tables are compared account by account.
    pub query_url: Option<String>,
}

/// Verifies everything `source` yields. `Err` only when the input is unusable; a log that fails
/// verification is an `Ok` report with failures.
pub async fn verify(mut source: Source, compare: &Compare, progress: &mut Progress) -> Result<Report, SourceError> {
    let mut report = Report::new(source.describe());
    let mut chain = ChainCheck::from_genesis();
    let mut replay = Replay::default();
    let mut last_time = None;
    while let Some(record) = source.next().await? {
        if let Err(error) = chain.check(&record.fields(), &record.hash) {
            report.fail(Failure::new("chain", Some(record.position), error.to_string()));
            break;
        }
        if let Err(message) = replay.apply(&record) {
            report.fail(Failure::new("replay", Some(record.position), message));
            break;
        }
        last_time = Some(record.recorded_at.clone());
        progress.advance(record.position);
    }
    progress.finish();
    report.events = chain.position();
    report.head_hash = hex::encode(chain.head_hash());
    report.last_recorded_at = last_time;
    if !report.ok() {
        return Ok(report);
    }
    let (assets, problems) = replay.finish();
    report.assets = assets;
    for problem in problems {
        report.fail(Failure::new("double entry", None, problem));
    }
    if let Some(connection) = source.connection() {
        match compare::write_side(connection, replay.state()).await {
            Ok(comparison) => report.compared("write side (write_accounts, write_assets)", comparison),
            Err(error) => report.fail(Failure::new("write side", None, format!("cannot read it: {error}"))),
        }
    }
    if let Some(url) = &compare.query_url {
        match compare::read_tables(url, replay.state(), report.events).await {
            Ok(comparison) => report.compared("read tables (query-api)", comparison),
            Err(error) => report.fail(Failure::new("read tables", None, format!("cannot read them: {error}"))),
        }
    }
    Ok(report)
}
