//! A whole Partida stack in one test process: command-api, projector and query-api, each the real
//! application on its own port, over one fresh database. Tests talk to them over real HTTP.
#![expect(clippy::expect_used, reason = "test support: a failure here is a failed test")]

use std::future::Future;
use std::time::{Duration, Instant};

pub use partida_auth::Role;
use partida_testkit::{ServiceRole, TestDb};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running service: its base URL and a way to stop it.
pub struct Service {
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Service {
    fn spawn<F>(addr: std::net::SocketAddr, run: impl FnOnce(oneshot::Receiver<()>) -> F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(run(stopped));
        Self {
            url: format!("http://{addr}"),
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Graceful stop: in-flight work finishes.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// A crash: the task is dropped wherever it is, its connections closed mid-transaction.
    pub async fn kill(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// command-api's defaults over `db`, logged in as the writer's least-privilege role.
pub fn command_config(db: &TestDb) -> command_api::Config {
    command_api::Config::for_database(db.url_as(ServiceRole::Writer))
}

/// query-api's defaults over `db`, logged in as the reader's select-only role.
pub fn query_config(db: &TestDb) -> query_api::Config {
    query_api::Config::for_database(db.url_as(ServiceRole::Reader))
}

pub async fn start_command_api(db: &TestDb) -> Service {
    start_command_api_with(command_config(db)).await
}

pub async fn start_command_api_with(config: command_api::Config) -> Service {
    let app = command_api::Application::build(config).await.expect("command-api");
    Service::spawn(app.local_addr(), |stopped| async move {
        app.run_until_stopped(async move {
            let _ = stopped.await;
        })
        .await
        .expect("command-api ran");
    })
}

pub async fn start_query_api(db: &TestDb) -> Service {
    start_query_api_with(query_config(db)).await
}

pub async fn start_query_api_with(config: query_api::Config) -> Service {
    let app = query_api::Application::build(config).await.expect("query-api");
    Service::spawn(app.local_addr(), |stopped| async move {
        app.run_until_stopped(async move {
            let _ = stopped.await;
        })
        .await
        .expect("query-api ran");
    })
}

pub async fn start_projector_with(config: projector::Config) -> (Service, std::sync::Arc<projector::Status>) {
    let app = projector::Application::build(config).await.expect("projector");
    let status = app.status();
    let service = Service::spawn(app.local_addr(), |stopped| async move {
        app.run_until_stopped(async move {
            let _ = stopped.await;
        })
        .await
        .expect("projector ran");
    });
    (service, status)
}

pub async fn start_projector(db: &TestDb) -> (Service, std::sync::Arc<projector::Status>) {
    start_projector_with(projector::Config::for_database(db.url_as(ServiceRole::Projector))).await
}

/// The three services over one fresh database.
pub struct Stack {
    pub db: TestDb,
    pub command: Service,
    pub query: Service,
    /// `None` when the test runs its own projectors.
    pub projector: Option<Service>,
    /// An admin's API token; `http` sends it with every request.
    pub token: String,
    pub http: Http,
}

impl Stack {
    pub async fn start() -> Self {
        let mut stack = Self::without_projector().await;
        stack.projector = Some(start_projector(&stack.db).await.0);
        stack
    }

    pub async fn without_projector() -> Self {
        let db = TestDb::new().await;
        let command = start_command_api(&db).await;
        let query = start_query_api(&db).await;
        Self::assemble(db, command, query, None).await
    }

    /// A stack of services the test started itself, with an admin token to call them.
    pub async fn assemble(db: TestDb, command: Service, query: Service, projector: Option<Service>) -> Self {
        let token = issue_token(&db, Role::Admin, "e2e-admin").await;
        Self {
            http: Http::with_token(&token),
            db,
            command,
            query,
            projector,
            token,
        }
    }

    /// A fresh API token with `role` on this stack's database.
    pub async fn token(&self, role: Role) -> String {
        issue_token(&self.db, role, &format!("e2e-{role}")).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.http.post(&format!("{}{path}", self.command.url), body).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.http.get(&format!("{}{path}", self.query.url)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.http.patch(&format!("{}{path}", self.command.url), body).await
    }

    /// Reads `path` once the projection has reached `position` (read-your-writes).
    pub async fn get_at(&self, path: &str, position: i64) -> (StatusCode, Value) {
        let separator = if path.contains('?') { '&' } else { '?' };
        self.get(&format!("{path}{separator}min_position={position}")).await
    }
}

/// Creates an API token for `subject` with `role`, straight in the database.
pub async fn issue_token(db: &TestDb, role: Role, subject: &str) -> String {
    partida_auth::token::create(db.pool(), subject, role, None)
        .await
        .expect("creating a token")
        .token
}

/// A client; with a token, every request carries it as its bearer credential.
#[derive(Default, Clone)]
pub struct Http {
    client: reqwest::Client,
}

impl Http {
    pub fn with_token(token: &str) -> Self {
        let mut headers = reqwest::header::HeaderMap::new();
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).expect("a header value");
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
        Self {
            client: reqwest::Client::builder()
                .default_headers(headers)
                .build()
                .expect("an HTTP client"),
        }
    }

    pub async fn post(&self, url: &str, body: Value) -> (StatusCode, Value) {
        let response = self.client.post(url).json(&body).send().await.expect("POST");
        decode(response).await
    }

    pub async fn get(&self, url: &str) -> (StatusCode, Value) {
        decode(self.client.get(url).send().await.expect("GET")).await
    }

    pub async fn patch(&self, url: &str, body: Value) -> (StatusCode, Value) {
        decode(self.client.patch(url).json(&body).send().await.expect("PATCH")).await
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

pub async fn decode(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let bytes = response.bytes().await.expect("body");
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, body)
}

/// Waits until `condition` holds, polling; panics with `what` after `timeout`.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Asserts an error response in the one error shape and returns its details.
#[track_caller]
pub fn assert_error(response: &(StatusCode, Value), status: u16, code: &str) -> Value {
    let (actual, body) = response;
    assert_eq!(actual.as_u16(), status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body["error"]["details"].clone()
}

/// Registers EUR and USD and opens `bank` (EUR), `alice` and `bob` (EUR, no overdraft), `usd` (USD).
/// Returns the position of the last write.
pub async fn open_books(stack: &Stack) -> i64 {
    let mut last = 0;
    for (path, body) in [
        ("/v1/assets", serde_json::json!({"code": "EUR", "scale": 2})),
        ("/v1/assets", serde_json::json!({"code": "USD", "scale": 2})),
        (
            "/v1/accounts",
            serde_json::json!({"id": "bank", "asset": "EUR", "name": "Bank"}),
        ),
        (
            "/v1/accounts",
            serde_json::json!({"id": "alice", "asset": "EUR", "name": "Alice", "flags": {"debits_must_not_exceed_credits": true}}),
        ),
        (
            "/v1/accounts",
            serde_json::json!({"id": "bob", "asset": "EUR", "name": "Bob", "flags": {"debits_must_not_exceed_credits": true}}),
        ),
        (
            "/v1/accounts",
            serde_json::json!({"id": "usd", "asset": "USD", "name": "Dollars"}),
        ),
    ] {
        let (status, reply) = stack.post(path, body).await;
        assert_eq!(status, StatusCode::CREATED, "{path}: {reply}");
        last = reply["position"].as_i64().expect("position");
    }
    last
}

/// Posts a transfer and returns its position.
pub async fn transfer(stack: &Stack, id: &str, legs: &[(&str, &str, i64)]) -> i64 {
    let postings: Vec<Value> = legs
        .iter()
        .map(|(d, c, a)| serde_json::json!({"debit": d, "credit": c, "amount": a}))
        .collect();
    let (status, reply) = stack
        .post("/v1/transfers", serde_json::json!({"id": id, "postings": postings}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{id}: {reply}");
    reply["position"].as_i64().expect("position")
}

/// Asserts the read tables say exactly what a fresh replay of the whole log through the domain
/// says: every account's totals and status, one entry per leg per account with the right final
/// running balance, every transfer and reversal link, the per-asset totals.
pub async fn assert_read_model_matches_log(db: &TestDb) {
    use ledger::{Event, State};
    let pool = db.pool();
    let events = partida_eventstore::events_after(pool, 0, i64::MAX)
        .await
        .expect("events");
    partida_eventstore::verify_chain(&events).expect("a valid chain");
    let head = events.last().map_or(0, |e| e.position);
    let (generation, checkpoint): (i32, i64) =
        sqlx::query_as("SELECT generation, checkpoint FROM projections WHERE name = 'ledger'")
            .fetch_one(pool)
            .await
            .expect("checkpoint");
    let schema = format!("ledger_g{generation}");
    assert_eq!(checkpoint, head, "the projection has caught up");
    let mut state = State::default();
    let mut legs = 0;
    // (position, effective time) of each dated leg's entries, two per leg.
    let mut dated = Vec::new();
    // Every account's and transfer's metadata: as opened, then patched.
    let mut metadata: std::collections::HashMap<String, ledger::Metadata> = std::collections::HashMap::new();
    // Personal data is compared as the read tables hold it: opened with the subjects' keys, or
    // erased.
    let mut decoded: Vec<Event> = events
        .iter()
        .map(|stored| Event::decode(&stored.event_type, stored.schema_version, &stored.data).expect("decodes"))
        .collect();
    let keys = partida_eventstore::personal::Keys::for_events(pool, &decoded)
        .await
        .expect("subject keys");
    for (stored, event) in events.iter().zip(&mut decoded) {
        if let Some(metadata) = event.metadata_mut() {
            keys.open(metadata);
        }
        let event = &*event;
        match event {
            Event::AccountOpened(e) => {
                metadata.insert(format!("account {}", e.id), e.metadata.clone());
            }
            Event::TransferPending(e) => {
                metadata.insert(format!("transfer {}", e.id), e.metadata.clone());
            }
            Event::AccountMetadataSet(e) => {
                ledger::apply_patch(metadata.entry(format!("account {}", e.id)).or_default(), &e.metadata);
            }
            Event::TransferMetadataSet(e) => {
                ledger::apply_patch(metadata.entry(format!("transfer {}", e.id)).or_default(), &e.metadata);
            }
            _ => {}
        }
        match event {
            Event::TransferPosted(t) => {
                metadata.insert(format!("transfer {}", t.id), t.metadata.clone());
                legs += t.postings.len() as i64;
                if let Some(at) = t.effective_at_micros {
                    dated.extend(std::iter::repeat_n((stored.position, at), t.postings.len() * 2));
                }
            }
            Event::PendingPosted(t) => legs += t.postings.len() as i64,
            _ => {}
        }
        state.apply(event);
    }
    type AccountTotals = (String, i64, i64, i64, String, i64, i64, i64);
    let rows: Vec<AccountTotals> = sqlx::query_as(&format!(
        "SELECT id, debits, credits, balance, status, pending_debits, pending_credits, revision \
           FROM {schema}.accounts ORDER BY id"
    ))
    .fetch_all(pool)
    .await
    .expect("accounts");
    assert_eq!(rows.len(), state.accounts.len(), "one row per account");
    for (id, debits, credits, balance, status, pending_debits, pending_credits, revision) in rows {
        let account = &state.accounts[&ledger::AccountId::parse(id.as_str()).expect("id")];
        assert_eq!(
            (debits, credits, balance, pending_debits, pending_credits, revision),
            (
                account.debits,
                account.credits,
                account.balance(),
                account.pending_debits,
                account.pending_credits,
                account.revision
            ),
            "account {id}"
        );
        assert_eq!(status, account.status.as_str(), "account {id}");
        let last: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT balance FROM {schema}.entries WHERE account_id = $1 ORDER BY position DESC, seq DESC LIMIT 1"
        ))
        .bind(&id)
        .fetch_optional(pool)
        .await
        .expect("entries");
        assert_eq!(last.unwrap_or(0), account.balance(), "running balance of {id}");
    }
    // The write side's revisions, which `revision` conditions are decided on, and its stream
    // versions agree too.
    let revisions: Vec<(String, i64, i64)> = sqlx::query_as("SELECT id, revision, version FROM write_accounts")
        .fetch_all(pool)
        .await
        .expect("write_accounts");
    assert_eq!(revisions.len(), state.accounts.len(), "one write-side row per account");
    for (id, revision, version) in revisions {
        let account = &state.accounts[&ledger::AccountId::parse(id.as_str()).expect("id")];
        assert_eq!(
            (revision, version),
            (account.revision, account.version),
            "write-side revision and version of {id}"
        );
    }
    // Metadata, folded from the log's openings and patches.
    let stored: Vec<(String, Value)> = sqlx::query_as(&format!(
        "SELECT 'account ' || id, metadata FROM {schema}.accounts \
         UNION ALL SELECT 'transfer ' || id, metadata FROM {schema}.transfers"
    ))
    .fetch_all(pool)
    .await
    .expect("metadata");
    assert_eq!(stored.len(), metadata.len(), "one metadata per account and transfer");
    for (subject, stored) in stored {
        assert_eq!(
            stored,
            Value::Object(metadata[&subject].clone()),
            "metadata of {subject}"
        );
    }
    // Migration 0012's backfill (for logs written before revisions) computes the same from the
    // log alone, on both sides; tried in a transaction that is rolled back.
    let mut tx = pool.begin().await.expect("begin");
    sqlx::raw_sql(&format!(
        "UPDATE {schema}.accounts SET revision = 0; UPDATE write_accounts SET revision = 0; \
         SELECT partida_backfill_revisions();"
    ))
    .execute(&mut *tx)
    .await
    .expect("backfill");
    let backfilled: Vec<(String, i64, i64)> = sqlx::query_as(&format!(
        "SELECT a.id, a.revision, w.revision FROM {schema}.accounts a JOIN write_accounts w USING (id)"
    ))
    .fetch_all(&mut *tx)
    .await
    .expect("backfilled");
    tx.rollback().await.expect("rollback");
    for (id, read, write) in backfilled {
        let account = &state.accounts[&ledger::AccountId::parse(id.as_str()).expect("id")];
        assert_eq!(
            (read, write),
            (account.revision, account.revision),
            "backfilled revisions of {id}"
        );
    }
    let entries: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {schema}.entries"))
        .fetch_one(pool)
        .await
        .expect("count");
    assert_eq!(entries, legs * 2, "one entry per leg per side");
    // Only the entries of dated transfers keep an effective time, and it is the transfer's.
    let stored_dated: Vec<(i64, i64)> = sqlx::query_as(&format!(
        "SELECT position, (extract(epoch FROM effective_at) * 1000000)::int8 FROM {schema}.entries \
          WHERE effective_at IS NOT NULL ORDER BY position"
    ))
    .fetch_all(pool)
    .await
    .expect("dated entries");
    assert_eq!(stored_dated, dated, "effective times of the dated entries");
    let transfers: Vec<(String, Option<String>, String)> =
        sqlx::query_as(&format!("SELECT id, reversed_by, status FROM {schema}.transfers"))
            .fetch_all(pool)
            .await
            .expect("transfers");
    assert_eq!(transfers.len(), state.transfers.len());
    for (id, reversed_by, status) in transfers {
        let transfer = &state.transfers[&ledger::TransferId::parse(id.as_str()).expect("id")];
        let expected = transfer.reversed_by.as_ref().map(ToString::to_string);
        assert_eq!(reversed_by, expected, "reversal link of {id}");
        let expected_status = match &transfer.hold {
            None => "posted",
            Some(hold) => hold.resolution.as_ref().map_or("pending", ledger::Resolution::as_str),
        };
        assert_eq!(status, expected_status, "status of {id}");
    }
    let totals: Vec<(String, i64)> = sqlx::query_as(&format!("SELECT asset, posted FROM {schema}.totals"))
        .fetch_all(pool)
        .await
        .expect("totals");
    for (asset, posted) in totals {
        assert_eq!(
            posted,
            state.assets[&ledger::AssetCode::parse(asset.as_str()).expect("code")].posted,
            "total of {asset}"
        );
    }
}

/// Every row of every read table of `schema`, as sorted JSON text: two generations that say the
/// same thing compare equal.
pub async fn snapshot(db: &TestDb, schema: &str) -> Vec<String> {
    let mut rows = Vec::new();
    for table in ["assets", "accounts", "entries", "transfers", "totals"] {
        let sql = format!("SELECT '{table} ' || to_jsonb(t)::text AS r FROM {schema}.{table} t ORDER BY r");
        rows.extend(
            sqlx::query_scalar::<_, String>(&sql)
                .fetch_all(db.pool())
                .await
                .expect("snapshot"),
        );
    }
    rows
}
