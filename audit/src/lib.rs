//! partida-audit: verifies Partida's log without trusting the services.
//!
//! [`verify`] reads a log from a [`source::Source`] record by record and checks, in one pass:
//! the chain (dense positions, every hash recomputed, every link, time never running
//! backwards; [`ledger::log::ChainCheck`]) and the history (every event re-decided by the
//! domain; [`replay::Replay`]). Then double entry per asset, and, when asked, the services'
//! tables against the replay ([`compare`]). The first failure stops the pass and names its
//! position.

pub mod api;
pub mod books;
pub mod checkpoints;
pub mod compare;
pub mod lines;
pub mod prepare;
pub mod progress;
pub mod proof;
pub mod replay;
pub mod report;
pub mod source;
pub mod spare;

use std::path::PathBuf;

use ledger::log::ChainCheck;
use ledger::merkle::{Frontier, leaf_hash};

pub use crate::api::QueryApi;
use crate::checkpoints::Checkpoints;
use crate::prepare::Prepared;
use crate::progress::Progress;
use crate::replay::Replay;
use crate::report::{Failure, Report};
use crate::source::{Source, SourceError};

/// What to compare the replay with, besides checking the log itself.
#[derive(Debug, Default, Clone)]
pub struct Compare {
    /// A query-api whose read tables are compared account by account.
    pub query_api: Option<QueryApi>,
    /// Where the signed checkpoints come from.
    pub checkpoints: CheckpointSource,
    /// A key list the auditor trusts (`keys.json` as published); otherwise the source's own.
    pub trusted_keys: Option<PathBuf>,
}

#[derive(Debug, Default, Clone)]
pub enum CheckpointSource {
    #[default]
    None,
    /// `GET /v1/audit/checkpoints` and `/v1/audit/keys` of this query-api.
    QueryApi(QueryApi),
    /// The database being verified (its `checkpoints` and `signing_keys`).
    Database,
    /// A publication directory.
    Dir(PathBuf),
}

/// Verifies everything `source` yields. `Err` only when the input is unusable; a log that fails
/// verification is an `Ok` report with failures.
pub async fn verify(mut source: Source, compare: &Compare, progress: &mut Progress) -> Result<Report, SourceError> {
    let mut report = Report::new(source.describe());
    let checkpoints = match load_checkpoints(&mut source, compare).await {
        Ok(checkpoints) => checkpoints,
        Err(error) => {
            report.fail(Failure::new(
                "checkpoints",
                None,
                format!("cannot read them: {error:#}"),
            ));
            return Ok(report);
        }
    };
    let mut chain = ChainCheck::from_genesis();
    let mut tree = Frontier::default();
    let mut replay = Replay::default();
    let (mut batches, reader) = prepare::spawn(source);
    'records: while let Some(batch) = batches.next().await {
        let mut batch = batch?;
        for Prepared {
            placed,
            hashed,
            hash,
            event,
        } in batch.drain(..)
        {
            let position = placed.position;
            if let Err(error) = chain.check_hashed(&hashed, &hash) {
                report.fail(Failure::new("chain", Some(position), error.to_string()));
                break 'records;
            }
            tree.append(leaf_hash(&hash));
            // The root costs log(n) hashes: only where a checkpoint was signed.
            if let Some(checkpoints) = checkpoints.as_ref().filter(|c| c.by_position.contains_key(&position)) {
                match checkpoints.check(position, &hash, &tree.root()) {
                    Ok(checked) => report.checkpoints_verified += usize::from(checked),
                    Err(message) => {
                        report.fail(Failure::new("checkpoint", Some(position), message));
                        break 'records;
                    }
                }
            }
            if let Err(message) = replay.apply_decoded(placed, event) {
                report.fail(Failure::new("replay", Some(position), message));
                break 'records;
            }
            progress.advance(position);
        }
        batches.recycle(batch);
    }
    // Stops the reader if the loop stopped early, and gives the source back.
    drop(batches);
    let mut source = reader
        .await
        .map_err(|e| SourceError::Unreadable(format!("the reader stopped: {e}")))?;
    progress.finish();
    report.events = chain.position();
    report.head_hash = hex::encode(chain.head_hash());
    report.merkle_root = hex::encode(tree.root());
    // The time of the last record the chain accepted (each record's time is checked there).
    report.last_recorded_at = (chain.position() > 0)
        .then(|| partida_eventstore::format_timestamp(partida_eventstore::micros_to_datetime(chain.head_time())));
    if let Some(checkpoints) = &checkpoints {
        report.keys_from = Some(checkpoints.keys_from.clone());
        if report.ok() {
            for beyond in checkpoints.beyond(report.events) {
                if checkpoints.whole_log {
                    report.fail(Failure::new(
                        "checkpoint",
                        Some(beyond.position),
                        format!(
                            "a checkpoint was signed at position {} but the log ends at {}: it was cut short",
                            beyond.position, report.events
                        ),
                    ));
                } else {
                    report.checkpoints_beyond += 1;
                }
            }
        }
    }
    if !report.ok() {
        return Ok(report);
    }
    let (assets, problems) = replay.finish();
    report.assets = assets;
    report.personal_data = replay.personal_data();
    for problem in problems {
        report.fail(Failure::new("double entry", None, problem));
    }
    if let Some(connection) = source.connection() {
        match compare::write_side(connection, replay.state()).await {
            Ok(comparison) => report.compared("write side (write_accounts, write_assets)", comparison),
            Err(error) => report.fail(Failure::new("write side", None, format!("cannot read it: {error}"))),
        }
    }
    if let Some(api) = &compare.query_api {
        match compare::read_tables(api, replay.state(), report.events).await {
            Ok(comparison) => report.compared("read tables (query-api)", comparison),
            Err(error) => report.fail(Failure::new("read tables", None, format!("cannot read them: {error}"))),
        }
    }
    Ok(report)
}

/// The checkpoints to check, or `None` when none were asked for.
async fn load_checkpoints(source: &mut Source, compare: &Compare) -> anyhow::Result<Option<Checkpoints>> {
    let mut checkpoints = match &compare.checkpoints {
        CheckpointSource::None => return Ok(None),
        CheckpointSource::QueryApi(api) => Checkpoints::from_query_api(api).await?,
        CheckpointSource::Dir(dir) => Checkpoints::from_dir(dir)?,
        CheckpointSource::Database => match source.connection() {
            Some(connection) => Checkpoints::from_database(connection).await?,
            None => anyhow::bail!("checkpoints from the database need --database-url"),
        },
    };
    if let Some(path) = &compare.trusted_keys {
        checkpoints.trust_keys_file(path)?;
    }
    Ok(Some(checkpoints))
}
