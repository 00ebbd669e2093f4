//! The group-commit writer: one task per command-api instance, on a thread of its own, with one
//! dedicated connection, fed by a bounded queue. Whatever is queued when it wakes becomes one
//! transaction (up to the caps), so batches grow with load and an fsync is shared by every command
//! in them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ledger::{Command, Rejection};
use serde_json::{Map, Value};
use sqlx::{ConnectOptions, Connection, PgConnection, postgres::PgConnectOptions};
use tokio::sync::{mpsc, oneshot};

use crate::batch::{self, Failure};
use crate::known::Known;

#[derive(Debug, Clone)]
pub struct WriterConfig {
    pub connect_options: PgConnectOptions,
    /// Requests (single commands or whole batches) that may wait; beyond it callers get `Overloaded`.
    pub queue_capacity: usize,
    /// Commands per transaction; a batch stops growing once it reaches either cap.
    pub max_batch_commands: usize,
    /// Postings per transaction.
    pub max_batch_postings: usize,
    pub connect_timeout: Duration,
    /// Accounts the writer keeps in memory as its batches leave them (`known`), so that a batch
    /// of transfers between them is decided without loading them.
    pub known_accounts: usize,
}

impl WriterConfig {
    pub fn new(connect_options: PgConnectOptions) -> Self {
        // Role or database defaults must not cut the writer's wait for the head lock short: that
        // wait is how writers queue. Its transactions never wait on the application between
        // statements, so one idle in a transaction is a stuck writer: PostgreSQL ends it and
        // frees the head for the other instances (its commands are answered as failed).
        let connect_options = crate::probing_keys(connect_options.application_name("partida-writer")).options([
            ("lock_timeout", "0"),
            ("statement_timeout", "0"),
            ("idle_in_transaction_session_timeout", "30s"),
        ]);
        Self {
            connect_options,
            queue_capacity: 4_096,
            max_batch_commands: 4_000,
            max_batch_postings: 40_000,
            connect_timeout: Duration::from_secs(5),
            // About 25 MB at most.
            known_accounts: 100_000,
        }
    }
}

/// Who asked, recorded in each event's metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommandContext {
    pub request_id: Option<String>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    /// The authenticated subject the command was sent as.
    pub actor: Option<String>,
    /// The credential it authenticated with (`token:<id>`, `jwt:<issuer>`).
    pub credential: Option<String>,
}

impl CommandContext {
    pub(crate) fn metadata(&self, idempotency_key: Option<&str>) -> Value {
        let mut map = Map::new();
        let fields = [
            ("request_id", self.request_id.as_deref()),
            ("correlation_id", self.correlation_id.as_deref()),
            ("causation_id", self.causation_id.as_deref()),
            ("actor", self.actor.as_deref()),
            ("credential", self.credential.as_deref()),
            ("idempotency_key", idempotency_key),
        ];
        for (name, value) in fields {
            if let Some(value) = value {
                map.insert(name.to_owned(), Value::String(value.to_owned()));
            }
        }
        Value::Object(map)
    }
}

/// An `Idempotency-Key` header with a hash of the request it came with.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotencyKey {
    pub key: String,
    pub request_hash: [u8; 32],
}

#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    pub command: Command,
    pub context: CommandContext,
    pub idempotency_key: Option<IdempotencyKey>,
    /// A chain's label: consecutive submissions of one request with the same label are written
    /// all or none. Chain members carry no `idempotency_key` of their own.
    pub chain: Option<String>,
}

impl Submission {
    pub fn new(command: Command) -> Self {
        Self {
            command,
            context: CommandContext::default(),
            idempotency_key: None,
            chain: None,
        }
    }

    /// This submission as a member of the chain `label`. A member's idempotency is its
    /// command's own (a transfer's id, a hold's single resolution): any `idempotency_key` is
    /// dropped, as the writer never checks one for a chain member.
    pub fn in_chain(mut self, label: String) -> Self {
        self.chain = Some(label);
        self.idempotency_key = None;
        self
    }

    fn postings(&self) -> usize {
        self.command.legs()
    }
}

/// The writer's answer to one command, known only after its batch committed.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// New events were written; `position` is the first of them.
    Written {
        position: i64,
    },
    /// An identical command was written before, at `position`.
    Replayed {
        position: i64,
    },
    Rejected(Rejection),
    /// The answer recorded with an `Idempotency-Key` when its batch was first written:
    /// `{"position": N}` or `{"error": {"code", "message", "details"}}`.
    Recorded(Value),
}

impl Reply {
    /// The form in which a keyed batch's answers are recorded with its key.
    pub(crate) fn record(&self) -> Value {
        match self {
            Self::Written { position } | Self::Replayed { position } => serde_json::json!({ "position": position }),
            Self::Rejected(rejection) => serde_json::json!({ "error": {
                "code": rejection.code(), "message": rejection.to_string(), "details": rejection.details()
            }}),
            Self::Recorded(value) => value.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    #[error("the writer queue is full")]
    Overloaded,
    #[error("the database is unavailable")]
    Unavailable,
    #[error("the connection was lost while committing; the outcome is unknown")]
    OutcomeUnknown,
    #[error("the command could not be written")]
    Internal,
    #[error("the writer is shutting down")]
    ShuttingDown,
}

type Results = Vec<Result<Reply, AppendError>>;

struct Job {
    submissions: Vec<Submission>,
    /// A batch under one `Idempotency-Key`: decided as one unit, its answers recorded with the key.
    key: Option<IdempotencyKey>,
    reply: oneshot::Sender<Results>,
}

/// The handle request handlers submit through. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Job>,
    connected: Arc<AtomicBool>,
}

/// The running writer. It stops once every [`Writer`] handle is dropped and the queue is drained.
pub struct WriterTask(oneshot::Receiver<()>);

impl WriterTask {
    /// Waits until every queued command has been answered.
    pub async fn drained(self) {
        let _ = self.0.await;
    }
}

impl Writer {
    pub fn spawn(config: WriterConfig) -> (Self, WriterTask) {
        let (queue, jobs) = mpsc::channel(config.queue_capacity.max(1));
        let connected = Arc::new(AtomicBool::new(false));
        let task = Task {
            known: Known::new(config.known_accounts),
            config,
            jobs,
            connection: None,
            connected: connected.clone(),
            planned_at: Instant::now(),
        };
        // The writer is the one serial stage: it runs on a thread of its own, so that its next
        // batch never waits in a queue behind the request handlers' tasks.
        let (done, drained) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("partida-writer".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime.block_on(task.run()),
                    Err(error) => tracing::error!(%error, "the writer's runtime cannot start"),
                }
                let _ = done.send(());
            });
        if let Err(error) = thread {
            tracing::error!(%error, "the writer's thread cannot start");
        }
        (Self { queue, connected }, WriterTask(drained))
    }

    pub async fn submit(&self, submission: Submission) -> Result<Reply, AppendError> {
        self.submit_all(vec![submission])
            .await
            .pop()
            .unwrap_or(Err(AppendError::Internal))
    }

    /// Submits commands to be decided in order within one transaction (barring failures that
    /// split it); answers one result per command, in order.
    pub async fn submit_all(&self, submissions: Vec<Submission>) -> Results {
        self.enqueue(submissions, None).await
    }

    /// Submits a batch under one `Idempotency-Key`. It is decided in one transaction, and its
    /// answers are recorded with the key and the request's hash in that transaction, if it wrote
    /// anything: the same key and request then get the same answers, another request a conflict.
    pub async fn submit_keyed(&self, submissions: Vec<Submission>, key: IdempotencyKey) -> Results {
        self.enqueue(submissions, Some(key)).await
    }

    async fn enqueue(&self, submissions: Vec<Submission>, key: Option<IdempotencyKey>) -> Results {
        let count = submissions.len();
        let (reply, answer) = oneshot::channel();
        match self.queue.try_send(Job {
            submissions,
            key,
            reply,
        }) {
            Ok(()) => answer
                .await
                .unwrap_or_else(|_| vec![Err(AppendError::ShuttingDown); count]),
            Err(mpsc::error::TrySendError::Full(_)) => vec![Err(AppendError::Overloaded); count],
            Err(mpsc::error::TrySendError::Closed(_)) => {
                vec![Err(AppendError::ShuttingDown); count]
            }
        }
    }

    /// Whether the writer's connection was up after its last attempt.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }
}

struct Task {
    config: WriterConfig,
    jobs: mpsc::Receiver<Job>,
    connection: Option<PgConnection>,
    connected: Arc<AtomicBool>,
    /// When the connection's statements were last prepared afresh.
    planned_at: Instant,
    known: Known,
}

impl Task {
    async fn run(mut self) {
        // Connect eagerly so readiness reflects the database, but a failure here only delays.
        self.connect().await;
        while let Some(first) = self.jobs.recv().await {
            let jobs = self.gather(first);
            let units: Vec<Unit<'_>> = jobs.iter().flat_map(Unit::of).collect();
            metrics::histogram!("partida_writer_batch_commands").record(commands(&units) as f64);
            let started = Instant::now();
            let mut results = self.write(&units).await.into_iter();
            metrics::histogram!("partida_writer_batch_seconds").record(started.elapsed().as_secs_f64());
            drop(units);
            for job in jobs {
                let answers: Results = results.by_ref().take(job.submissions.len()).collect();
                let _ = job.reply.send(answers);
            }
            self.replan_when_due().await;
        }
        if let Some(connection) = self.connection.take() {
            let _ = connection.close().await;
        }
    }

    /// Takes what is already queued, up to the caps; never waits for more.
    fn gather(&mut self, first: Job) -> Vec<Job> {
        let mut commands = first.submissions.len();
        let mut postings: usize = first.submissions.iter().map(Submission::postings).sum();
        let mut jobs = vec![first];
        while commands < self.config.max_batch_commands && postings < self.config.max_batch_postings {
            match self.jobs.try_recv() {
                Ok(job) => {
                    commands += job.submissions.len();
                    postings += job.submissions.iter().map(Submission::postings).sum::<usize>();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        jobs
    }

    /// Writes `units` in order. A database error splits the batch in halves until the failing
    /// unit is isolated: it alone fails, the others are written.
    fn write<'a>(&'a mut self, units: &'a [Unit<'a>]) -> Pin<Box<dyn Future<Output = Results> + Send + 'a>> {
        Box::pin(async move {
            let count = commands(units);
            let failure = match self.attempt(units).await {
                Ok(replies) => return replies.into_iter().map(Ok).collect(),
                Err(Failure::Disconnected(_) | Failure::Transient(_)) => {
                    // Nothing was committed: try once more on a fresh connection.
                    match self.attempt(units).await {
                        Ok(replies) => return replies.into_iter().map(Ok).collect(),
                        Err(failure) => failure,
                    }
                }
                Err(failure) => failure,
            };
            match failure {
                Failure::Data(_) if units.len() > 1 => {
                    let (left, right) = units.split_at(units.len() / 2);
                    let mut results = self.write(left).await;
                    results.extend(self.write(right).await);
                    results
                }
                Failure::Data(error) => {
                    tracing::error!(%error, commands = count, "a command failed to write and was isolated");
                    vec![Err(AppendError::Internal); count]
                }
                Failure::CommitUnknown(error) => {
                    tracing::error!(%error, commands = count, "connection lost during COMMIT");
                    vec![Err(AppendError::OutcomeUnknown); count]
                }
                Failure::Disconnected(error) | Failure::Transient(error) => {
                    tracing::warn!(%error, commands = count, "batch not written: database unavailable");
                    vec![Err(AppendError::Unavailable); count]
                }
                Failure::NoConnection => vec![Err(AppendError::Unavailable); count],
            }
        })
    }

    async fn attempt(&mut self, units: &[Unit<'_>]) -> Result<Vec<Reply>, Failure> {
        self.connect().await;
        let connection = self.connection.as_mut().ok_or(Failure::NoConnection)?;
        let result = batch::run(connection, units, crate::time::now_micros(), &mut self.known).await;
        if matches!(result, Err(Failure::Disconnected(_) | Failure::CommitUnknown(_))) {
            self.connection = None;
            self.connected.store(false, Ordering::Relaxed);
        }
        result
    }

    /// Drops the connection's prepared statements once their plans are [`crate::PLAN_LIFETIME`]
    /// old, so the next batch plans them with the tables as they are now.
    async fn replan_when_due(&mut self) {
        if self.planned_at.elapsed() < crate::PLAN_LIFETIME {
            return;
        }
        self.planned_at = Instant::now();
        if let Some(connection) = self.connection.as_mut()
            && let Err(error) = connection.clear_cached_statements().await
        {
            tracing::warn!(%error, "writer connection lost while dropping its plans");
            self.connection = None;
            self.connected.store(false, Ordering::Relaxed);
        }
    }

    /// Connects if the writer has no connection; a failure is logged, and the next batch tries again.
    async fn connect(&mut self) {
        if self.connection.is_none() {
            let connect = self.config.connect_options.connect();
            match tokio::time::timeout(self.config.connect_timeout, connect).await {
                Ok(Ok(connection)) => {
                    self.connection = Some(connection);
                    self.planned_at = Instant::now();
                }
                Ok(Err(error)) => tracing::warn!(%error, "writer cannot connect"),
                Err(_) => tracing::warn!("writer connection attempt timed out"),
            }
        }
        self.connected.store(self.connection.is_some(), Ordering::Relaxed);
    }
}

/// What the writer never splits: one command, a chain, or a keyed batch (its answers are recorded
/// with its key in one transaction).
pub(crate) struct Unit<'a> {
    pub submissions: &'a [Submission],
    pub key: Option<&'a IdempotencyKey>,
}

impl<'a> Unit<'a> {
    fn of(job: &'a Job) -> Vec<Self> {
        match &job.key {
            Some(key) => vec![Self {
                submissions: &job.submissions,
                key: Some(key),
            }],
            None => runs(&job.submissions)
                .map(|submissions| Self { submissions, key: None })
                .collect(),
        }
    }
}

/// `submissions` cut into what is decided together: a single command, or a chain's members
/// (consecutive submissions with the same label).
pub(crate) fn runs(submissions: &[Submission]) -> impl Iterator<Item = &[Submission]> {
    let mut rest = submissions;
    std::iter::from_fn(move || {
        let first = rest.first()?;
        let len = match &first.chain {
            None => 1,
            Some(label) => rest.iter().take_while(|s| s.chain.as_ref() == Some(label)).count(),
        };
        let (run, tail) = rest.split_at(len);
        rest = tail;
        Some(run)
    })
}

fn commands(units: &[Unit<'_>]) -> usize {
    units.iter().map(|u| u.submissions.len()).sum()
}
