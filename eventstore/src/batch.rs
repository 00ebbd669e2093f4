//! One batch: load what the commands touch and the head, decide them in order in memory, then write
//! everything set-based in one statement that moves the head only from where the load saw it. No
//! lock is held between the two round trips; if another writer moved the head in between, the
//! statement writes nothing and the batch is decided again under the head's row lock.
//!
//! A batch of plain transfers between accounts the writer knows skips the load: it is decided on
//! the state the writer's own batches left (`known`), in one round trip. If that is no longer the
//! log's state (the head moved), a transfer id is already in the log, or a transfer is refused,
//! nothing is written and the batch takes the loading path.

use std::collections::BTreeSet;

use ledger::canonical;
use ledger::log::{Hash, JsonField, RecordFields};
use ledger::{
    AccountId, AssetCode, Command, Event, PendingPosted, PendingReleased, Rejection, StreamId, SubjectId, Timestamp,
    TransferId,
};
use sqlx::{Executor, PgConnection};
use uuid::Uuid;

use crate::known::Known;
use crate::load::{self, Head, KeyRecord, Loaded};
use crate::persist;
use crate::writer::{CommandContext, IdempotencyKey, Reply, Submission, Unit, runs};

/// Why a batch was not written, which decides what the writer does next.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The database refused something in the batch: split it to find the culprit.
    Data(sqlx::Error),
    /// A serialization failure or deadlock: nothing was written, retry.
    Transient(sqlx::Error),
    /// The connection broke before COMMIT was sent: nothing was written.
    Disconnected(sqlx::Error),
    /// The connection broke while committing: the batch may or may not be in the log.
    CommitUnknown(sqlx::Error),
    NoConnection,
}

impl Failure {
    fn before_commit(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(db) => match db.code().as_deref() {
                Some(code) if code.starts_with("08") || code.starts_with("57") || code.starts_with("53") => {
                    Self::Disconnected(error)
                }
                // Serialization failures, deadlocks, and a lock wait cut short by a lock_timeout.
                Some(code) if code.starts_with("40") || code == "55P03" => Self::Transient(error),
                _ => Self::Data(error),
            },
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Self::Disconnected(error),
            _ => Self::Data(error),
        }
    }

    fn during_commit(error: sqlx::Error) -> Self {
        match Self::before_commit(error) {
            // The server answered COMMIT with an error: it rolled back.
            known @ (Self::Data(_) | Self::Transient(_)) => known,
            Self::Disconnected(error) | Self::CommitUnknown(error) => Self::CommitUnknown(error),
            Self::NoConnection => Self::NoConnection,
        }
    }
}

pub(crate) async fn run(
    conn: &mut PgConnection,
    units: &[Unit<'_>],
    clock: i64,
    known: &mut Known,
) -> Result<Vec<Reply>, Failure> {
    let remembered = match known.recall(units) {
        Some(loaded) => from_memory(conn, units, clock, loaded, known).await,
        None => Ok(None),
    };
    let result = match remembered {
        Ok(Some(replies)) => Ok(replies),
        Ok(None) => loading(conn, units, clock, known).await,
        Err(failure) => Err(failure),
    };
    // What the writer knew may no longer be the log's state.
    if result.is_err() {
        known.forget();
    }
    result
}

/// A batch of plain transfers between accounts the writer knows (`Known::recall`), decided on
/// what it knows. It is written only if every transfer was accepted: a refusal may be a replay
/// of a transfer the log holds, which only the loading path sees. `None`: nothing was written
/// (a refusal, the head moved, or a transfer id the log already holds), and the batch takes the
/// loading path.
async fn from_memory(
    conn: &mut PgConnection,
    units: &[Unit<'_>],
    clock: i64,
    loaded: Loaded,
    known: &mut Known,
) -> Result<Option<Vec<Reply>>, Failure> {
    let (replies, loaded, pending) = decide_on(loaded, units, clock);
    if pending.rows.is_empty() || replies.iter().any(|reply| matches!(reply, Reply::Rejected(_))) {
        return Ok(None);
    }
    match write(conn, loaded, &pending, known).await {
        Ok(true) => {
            metrics::counter!("partida_writer_decided_from_memory_total").increment(1);
            Ok(Some(replies))
        }
        // What the writer knew is stale: another writer or a rebuild of the write side moved the head.
        Ok(false) => Ok(None),
        Err(error) if persist::is_stream_taken(&error) => Ok(None),
        Err(error) => Err(Failure::during_commit(error)),
    }
}

/// The batch decided on the state it loads, and written if the head has not moved since.
async fn loading(
    conn: &mut PgConnection,
    units: &[Unit<'_>],
    clock: i64,
    known: &mut Known,
) -> Result<Vec<Reply>, Failure> {
    let (replies, loaded, pending) = decide(conn, units, clock).await.map_err(Failure::before_commit)?;
    if pending.rows.is_empty() {
        known.remember(loaded, None);
        return Ok(replies);
    }
    // Outside a transaction the statement commits itself: an error from it may hide a commit.
    match write(conn, loaded, &pending, known).await {
        Ok(true) => Ok(replies),
        Ok(false) => {
            metrics::counter!("partida_writer_head_moved_total").increment(1);
            under_lock(conn, units, clock, known).await
        }
        Err(error) => Err(Failure::during_commit(error)),
    }
}

/// The batch again, for when another writer moved the head between its load and its write: the
/// head's row locked first, so that nobody can move it again before this commit.
async fn under_lock(
    conn: &mut PgConnection,
    units: &[Unit<'_>],
    clock: i64,
    known: &mut Known,
) -> Result<Vec<Reply>, Failure> {
    // BEGIN and the lock in one round trip. Under READ COMMITTED each later statement sees
    // everything committed before the lock was granted.
    conn.execute(sqlx::raw_sql(
        "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT FROM event_head FOR UPDATE",
    ))
    .await
    .map_err(Failure::before_commit)?;
    let staged = async {
        let (replies, loaded, pending) = decide(conn, units, clock).await?;
        let written = if pending.rows.is_empty() {
            None
        } else {
            // Remembered before COMMIT: if that fails, `run` forgets it all.
            Some(write(conn, loaded, &pending, known).await?)
        };
        Ok::<_, sqlx::Error>((replies, written))
    }
    .await;
    match staged {
        Ok((replies, Some(true))) => {
            conn.execute("COMMIT").await.map_err(Failure::during_commit)?;
            Ok(replies)
        }
        Ok((replies, None)) => {
            // Nothing was written, so the answers stand even if ROLLBACK fails; a broken
            // connection shows at the next batch, which is retried on a fresh one.
            let _ = conn.execute("ROLLBACK").await;
            Ok(replies)
        }
        Ok((_, Some(false))) => {
            let moved = sqlx::Error::Protocol("the event head moved while locked".into());
            rollback(conn, Failure::Transient(moved)).await
        }
        Err(error) => rollback(conn, Failure::before_commit(error)).await,
    }
}

/// Writes the batch (`persist::write`); if it was written, remembers the state it leaves.
async fn write(
    conn: &mut PgConnection,
    loaded: Loaded,
    pending: &Pending,
    known: &mut Known,
) -> Result<bool, sqlx::Error> {
    let Some(xmin) = persist::write(conn, &loaded, pending).await? else {
        return Ok(false);
    };
    known.remember(loaded, Some(pending.head(xmin)));
    Ok(true)
}

async fn rollback(conn: &mut PgConnection, failure: Failure) -> Result<Vec<Reply>, Failure> {
    match conn.execute("ROLLBACK").await {
        Ok(_) => Err(failure),
        Err(rollback) => Err(Failure::Disconnected(rollback)),
    }
}

/// Events decided in this batch, with their log fields, plus what write-side state they dirtied.
pub(crate) struct Pending {
    pub rows: Vec<NewRow>,
    pub head_hash: Hash,
    pub recorded_at: i64,
    next_position: i64,
    pub dirty_accounts: BTreeSet<AccountId>,
    /// The dirty accounts opened in this batch: inserted, where the others are updated.
    pub opened_accounts: BTreeSet<AccountId>,
    pub dirty_assets: BTreeSet<AssetCode>,
    pub new_keys: Vec<(String, KeyRecord)>,
    /// Holds with a timeout opened in this batch, for `write_pending`: (id, expires at).
    pub new_holds: Vec<(TransferId, i64)>,
    /// Holds resolved in this batch, to leave `write_pending`.
    pub resolved_holds: Vec<TransferId>,
    /// Data subjects erased in this batch, whose keys the same statement destroys.
    pub erased_subjects: Vec<SubjectId>,
    /// The batch's distinct event metadata, in canonical form: one request's commands share
    /// theirs, so each is encoded, sent and parsed once, and every row names its own by index.
    pub metadata: Vec<String>,
    /// Whose metadata was encoded last (the context and the idempotency key) and where it is.
    last_metadata: Option<(CommandContext, Option<String>, usize)>,
}

pub(crate) struct NewRow {
    pub position: i64,
    pub event_id: Uuid,
    pub stream_id: String,
    pub stream_version: i64,
    pub event_type: &'static str,
    pub schema_version: i32,
    /// `data` in canonical form: encoded once, hashed as it is and sent to the database as its
    /// `jsonb` input.
    pub data: String,
    /// Its metadata: an index into [`Pending::metadata`].
    pub metadata: usize,
    pub prev_hash: Hash,
    pub hash: Hash,
}

impl Pending {
    /// Where the metadata of a command sent with `context` (and `key`) is, encoded the first
    /// time it is met in a row of commands.
    fn metadata_of(&mut self, context: &CommandContext, key: Option<&str>) -> usize {
        if let Some((last, last_key, index)) = &self.last_metadata
            && last == context
            && last_key.as_deref() == key
        {
            return *index;
        }
        let index = self.metadata.len();
        self.metadata.push(canonical::to_string(&context.metadata(key)));
        self.last_metadata = Some((context.clone(), key.map(str::to_owned), index));
        index
    }

    fn push(&mut self, event: &Event, stream_version: i64, metadata: usize) {
        let data = canonical::to_string(&event.data());
        let stream_id = event.stream_id().to_string();
        let event_id = Uuid::now_v7();
        let hash = RecordFields {
            position: self.next_position,
            event_id: *event_id.as_bytes(),
            stream_id: &stream_id,
            stream_version,
            event_type: event.event_type(),
            schema_version: event.schema_version(),
            data: JsonField::Canonical(data.as_bytes()),
            metadata: JsonField::Canonical(self.metadata[metadata].as_bytes()),
            recorded_at: self.recorded_at,
            prev_hash: &self.head_hash,
        }
        .hash();
        self.rows.push(NewRow {
            position: self.next_position,
            event_id,
            stream_id,
            stream_version,
            event_type: event.event_type(),
            schema_version: event.schema_version(),
            data,
            metadata,
            prev_hash: self.head_hash,
            hash,
        });
        self.head_hash = hash;
        self.next_position += 1;
    }

    pub fn head_position(&self) -> i64 {
        self.next_position - 1
    }

    /// The head this batch leaves once written; `xmin` is its row version's.
    fn head(&self, xmin: String) -> Head {
        Head {
            xmin,
            position: self.head_position(),
            hash: self.head_hash,
            recorded_at: self.recorded_at,
        }
    }
}

/// Loads what `units` touch and decides them in order: the answers, the state they were decided
/// on, and the events to write.
async fn decide(
    conn: &mut PgConnection,
    units: &[Unit<'_>],
    clock: i64,
) -> Result<(Vec<Reply>, Loaded, Pending), sqlx::Error> {
    Ok(decide_on(load::load(conn, units).await?, units, clock))
}

/// Decides `units` in order on `loaded`, which holds everything they touch.
fn decide_on(mut loaded: Loaded, units: &[Unit<'_>], clock: i64) -> (Vec<Reply>, Loaded, Pending) {
    let head = &loaded.head;
    let mut pending = Pending {
        rows: Vec::new(),
        head_hash: head.hash,
        // One timestamp per batch, never before the previous one: time order follows position order.
        recorded_at: clock.max(head.recorded_at),
        next_position: head.position + 1,
        dirty_accounts: BTreeSet::new(),
        opened_accounts: BTreeSet::new(),
        dirty_assets: BTreeSet::new(),
        new_keys: Vec::new(),
        new_holds: Vec::new(),
        resolved_holds: Vec::new(),
        erased_subjects: Vec::new(),
        metadata: Vec::new(),
        last_metadata: None,
    };
    let mut replies = Vec::with_capacity(units.len());
    for unit in units {
        match unit.key {
            None => replies.extend(decide_all(&mut loaded, &mut pending, unit.submissions)),
            Some(key) => replies.extend(decide_keyed(&mut loaded, &mut pending, unit.submissions, key)),
        }
    }
    (replies, loaded, pending)
}

/// A batch under one `Idempotency-Key`: answered from the key's record when it is a replay,
/// otherwise decided command by command and, if it wrote anything, recorded with the key.
fn decide_keyed(
    loaded: &mut Loaded,
    pending: &mut Pending,
    submissions: &[Submission],
    key: &IdempotencyKey,
) -> Vec<Reply> {
    if let Some(record) = loaded.keys.get(&key.key) {
        let recorded = match &record.response {
            Some(serde_json::Value::Array(answers)) if answers.len() == submissions.len() => Some(answers),
            _ => None,
        };
        return match recorded {
            Some(answers) if record.request_hash == key.request_hash => {
                answers.iter().cloned().map(Reply::Recorded).collect()
            }
            _ => vec![Reply::Rejected(key_conflict(key)); submissions.len()],
        };
    }
    let first = pending.next_position;
    let replies = decide_all(loaded, pending, submissions);
    if pending.next_position > first {
        let record = KeyRecord {
            request_hash: key.request_hash,
            position: first,
            response: Some(serde_json::Value::Array(replies.iter().map(Reply::record).collect())),
        };
        loaded.keys.insert(key.key.clone(), record.clone());
        pending.new_keys.push((key.key.clone(), record));
    }
    replies
}

fn key_conflict(key: &IdempotencyKey) -> Rejection {
    Rejection::IdempotencyConflict {
        kind: "idempotency_key",
        id: key.key.clone(),
    }
}

/// Decides `submissions` in order: each command alone, a chain's members all or none.
fn decide_all(loaded: &mut Loaded, pending: &mut Pending, submissions: &[Submission]) -> Vec<Reply> {
    let mut replies = Vec::with_capacity(submissions.len());
    for run in runs(submissions) {
        match run {
            [Submission { chain: Some(label), .. }, ..] => replies.extend(decide_chain(loaded, pending, run, label)),
            _ => replies.extend(run.iter().map(|s| decide_one(loaded, pending, s))),
        }
    }
    replies
}

/// A chain: decided member by member against the state its earlier members leave, then staged
/// only if every member was accepted. Otherwise the refused member answers its rejection and
/// every other member `linked_failed`, naming it.
fn decide_chain(loaded: &mut Loaded, pending: &mut Pending, members: &[Submission], label: &str) -> Vec<Reply> {
    let now = Timestamp(pending.recorded_at);
    match ledger::decide_chain(&mut loaded.state, members.iter().map(|s| &s.command), now) {
        Ok(decided) => members
            .iter()
            .zip(decided)
            .map(|(member, events)| stage(loaded, pending, member, events))
            .collect(),
        Err((failed, rejection)) => {
            let linked = ledger::linked_failed(label, failed, &members[failed].command, &rejection);
            (0..members.len())
                .map(|member| {
                    Reply::Rejected(if member == failed {
                        rejection.clone()
                    } else {
                        linked.clone()
                    })
                })
                .collect()
        }
    }
}

fn decide_one(loaded: &mut Loaded, pending: &mut Pending, submission: &Submission) -> Reply {
    let key = submission.idempotency_key.as_ref();
    if let Some(key) = key
        && let Some(record) = loaded.keys.get(&key.key)
    {
        return if record.request_hash == key.request_hash && record.response.is_none() {
            Reply::Replayed {
                position: record.position,
            }
        } else {
            Reply::Rejected(key_conflict(key))
        };
    }
    match ledger::decide(&loaded.state, &submission.command, Timestamp(pending.recorded_at)) {
        Ok(events) => stage(loaded, pending, submission, events),
        Err(rejection) => Reply::Rejected(rejection),
    }
}

/// Stages a decided command's events (none: an identical replay, answered from the log).
fn stage(loaded: &mut Loaded, pending: &mut Pending, submission: &Submission, events: Vec<Event>) -> Reply {
    let key = submission.idempotency_key.as_ref();
    let origin = origin_stream(&submission.command);
    if events.is_empty() {
        let position = match &submission.command {
            Command::ResolveHold(c) => loaded.resolutions.get(&c.id).copied(),
            _ => origin.and_then(|stream| loaded.origins.get(&stream).copied()),
        };
        return Reply::Replayed {
            position: position.unwrap_or(0),
        };
    }
    let first = pending.next_position;
    let metadata = pending.metadata_of(&submission.context, key.map(|k| k.key.as_str()));
    for event in &events {
        // Before the event is applied: a resolution dirties the accounts its hold reserved on.
        mark_dirty(loaded, pending, event);
        loaded.state.apply(event);
        let version = loaded.state.stream_version(&event.stream_id());
        pending.push(event, version, metadata);
    }
    if let Command::ResolveHold(c) = &submission.command {
        loaded.resolutions.insert(c.id.clone(), first);
    }
    if let Some(stream) = origin {
        loaded.origins.entry(stream).or_insert(first);
    }
    if let Some(key) = key {
        let record = KeyRecord {
            request_hash: key.request_hash,
            position: first,
            response: None,
        };
        loaded.keys.insert(key.key.clone(), record.clone());
        pending.new_keys.push((key.key.clone(), record));
    }
    Reply::Written { position: first }
}

/// The stream whose first event answers an identical replay of `command`.
fn origin_stream(command: &Command) -> Option<StreamId> {
    match command {
        Command::RegisterAsset(c) => Some(StreamId::Asset(c.code.clone())),
        Command::OpenAccount(c) => Some(StreamId::Account(c.id.clone())),
        Command::PostTransfer(c) => Some(StreamId::Transfer(c.id.clone())),
        Command::ErasePersonalData(subject) => Some(StreamId::Subject(subject.clone())),
        Command::ChangeAccount { .. } | Command::ResolveHold(_) | Command::SetMetadata(_) => None,
    }
}

/// Records what `event` changes in the write-side state; called before it is applied.
fn mark_dirty(loaded: &Loaded, pending: &mut Pending, event: &Event) {
    let mut legs = |postings: &[ledger::Posting]| {
        for posting in postings {
            mark(&mut pending.dirty_accounts, &posting.debit);
            mark(&mut pending.dirty_accounts, &posting.credit);
            if let Some(account) = loaded.state.accounts.get(&posting.debit) {
                mark(&mut pending.dirty_assets, &account.asset);
            }
        }
    };
    match event {
        Event::AssetRegistered(e) => {
            pending.dirty_assets.insert(e.code.clone());
        }
        Event::AccountOpened(e) => {
            pending.dirty_accounts.insert(e.id.clone());
            pending.opened_accounts.insert(e.id.clone());
        }
        Event::AccountFrozen(e) | Event::AccountUnfrozen(e) | Event::AccountClosed(e) => {
            pending.dirty_accounts.insert(e.id.clone());
        }
        // The account's stream version moves; a transfer's lives in the log alone.
        Event::AccountMetadataSet(e) => {
            pending.dirty_accounts.insert(e.id.clone());
        }
        Event::TransferMetadataSet(_) => {}
        Event::PersonalDataErased(e) => pending.erased_subjects.push(e.subject.clone()),
        Event::TransferPosted(e) => legs(&e.postings),
        Event::TransferPending(e) => {
            legs(&e.postings);
            if let Some(expires_at) = e.expires_at_micros {
                pending.new_holds.push((e.id.clone(), expires_at));
            }
        }
        Event::PendingPosted(PendingPosted { id, .. })
        | Event::PendingVoided(PendingReleased { id })
        | Event::PendingExpired(PendingReleased { id }) => {
            // The posted legs are a subset of the held ones.
            if let Some(hold) = loaded.state.transfers.get(id) {
                legs(&hold.postings);
            }
            // Sibling CTEs cannot see each other's rows: a hold opened in this batch never
            // reaches the table.
            match pending.new_holds.iter().position(|(hold, _)| hold == id) {
                Some(index) => {
                    pending.new_holds.swap_remove(index);
                }
                None => pending.resolved_holds.push(id.clone()),
            }
        }
    }
}

/// Adds `id` to `set`, copying it only when it is not there yet (most legs of a large batch
/// name an account or asset an earlier leg already marked).
fn mark<T: Ord + Clone>(set: &mut BTreeSet<T>, id: &T) {
    if !set.contains(id) {
        set.insert(id.clone());
    }
}
