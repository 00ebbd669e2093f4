//! Limits that protect the service: per-credential rates; reads cut off by the database's
//! `statement_timeout`, reads finding every connection busy, and writes held past the request
//! timeout, answered as retryable 503s with nothing half-written.

use std::time::Duration;

use partida_e2e::{Http, Role, Stack, assert_error, decode, eventually, open_books};
use partida_testkit::ServiceRole;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_over_its_rate_gets_429_with_retry_after_and_others_do_not() {
    let db = partida_testkit::TestDb::new().await;
    let mut config = partida_e2e::command_config(&db);
    config.auth.rate_limit_per_sec = 1;
    config.auth.rate_limit_burst = 3;
    let command = partida_e2e::start_command_api_with(config).await;
    let query = partida_e2e::start_query_api(&db).await;
    let stack = Stack::assemble(db, command, query, None).await;
    let url = format!("{}/v1/whoami", stack.command.url);
    let busy = Http::with_token(&stack.token(Role::Reader).await);
    for _ in 0..3 {
        assert_eq!(busy.get(&url).await.0, StatusCode::OK);
    }
    let response = busy.client().get(&url).send().await.expect("GET");
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_error(&decode(response).await, 429, "rate_limited");
    // Another credential has its own budget.
    assert_eq!(stack.http.get(&url).await.0, StatusCode::OK);
}

/// `url` with `statement_timeout` set for every connection made through it.
fn with_statement_timeout(url: &str, millis: u32) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20statement_timeout%3D{millis}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_cut_off_by_statement_timeout_is_503_unavailable() {
    let stack = Stack::without_projector().await;
    let mut config = partida_e2e::query_config(&stack.db);
    config.statement_timeout_ms = 200;
    config.auth.auth_cache_secs = 60;
    let query = partida_e2e::start_query_api_with(config).await;
    let url = format!("{}/v1/projections", query.url);
    // Authenticate once, so the token is cached before the table is locked.
    assert_eq!(stack.http.get(&url).await.0, StatusCode::OK);
    let mut blocker = stack.db.pool().begin().await.expect("begin");
    sqlx::query("LOCK TABLE projections IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *blocker)
        .await
        .expect("lock");
    let response = stack.http.client().get(&url).send().await.expect("GET");
    assert!(response.headers().contains_key("retry-after"));
    assert_error(&decode(response).await, 503, "unavailable");
    blocker.rollback().await.expect("rollback");
    assert_eq!(stack.http.get(&url).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_held_past_the_request_timeout_is_503_and_written_once() {
    // The writer has no statement timeout by design (its wait for the head lock is how writers
    // queue), even when the database URL sets one: the request timeout bounds the wait instead.
    let stack = Stack::start().await;
    open_books(&stack).await;
    let command = partida_e2e::start_command_api_with(command_api::Config::for_database(with_statement_timeout(
        &stack.db.url_as(ServiceRole::Writer),
        200,
    )))
    .await;
    let url = format!("{}/v1/transfers", command.url);
    let post = || {
        stack.http.post(
            &url,
            json!({"id": "slow", "postings": [{"debit": "bank", "credit": "alice", "amount": 7}]}),
        )
    };
    assert_eq!(
        stack.http.get(&format!("{}/v1/whoami", command.url)).await.0,
        StatusCode::OK
    );
    let mut blocker = stack.db.pool().begin().await.expect("begin");
    sqlx::query("SELECT 1 FROM event_head FOR UPDATE")
        .execute(&mut *blocker)
        .await
        .expect("lock the head");
    assert_error(&post().await, 503, "timeout");
    blocker.rollback().await.expect("rollback");
    // The command stayed queued and is written once the head is free; the retry finds it.
    let (status, body) = post().await;
    assert!(matches!(status.as_u16(), 200 | 201), "{status} {body}");
    let position = body["position"].as_i64().expect("position");
    let (_, alice) = stack.get_at("/v1/accounts/alice", position).await;
    assert_eq!(alice["credits"], 7, "written once: {alice}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_finding_every_connection_busy_is_503_not_a_hang() {
    let stack = Stack::without_projector().await;
    let mut config = partida_e2e::query_config(&stack.db);
    config.max_connections = 1;
    config.acquire_timeout_ms = 300;
    config.auth.auth_cache_secs = 60;
    let query = partida_e2e::start_query_api_with(config).await;
    // A table only this endpoint reads (query-api's own poller reads the projections).
    let url = format!("{}/v1/audit/checkpoints", query.url);
    let auditor = Http::with_token(&stack.token(Role::Auditor).await);
    assert_eq!(auditor.get(&url).await.0, StatusCode::OK);
    let mut blocker = stack.db.pool().begin().await.expect("begin");
    sqlx::query("LOCK TABLE checkpoints IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *blocker)
        .await
        .expect("lock");
    // A read takes the pool's only connection and waits on the lock with it.
    let held = tokio::spawn(auditor.client().get(&url).send());
    eventually("a read waiting on the lock", Duration::from_secs(10), || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock')",
        )
        .fetch_one(stack.db.pool())
        .await
        .expect("pg_stat_activity")
    })
    .await;
    let response = auditor.client().get(&url).send().await.expect("GET");
    assert!(response.headers().contains_key("retry-after"));
    assert_error(&decode(response).await, 503, "unavailable");
    blocker.rollback().await.expect("rollback");
    // The waiting read then gets its answer, and the pool serves again.
    let held = held.await.expect("joined").expect("GET");
    assert_eq!(held.status(), StatusCode::OK);
    assert_eq!(auditor.get(&url).await.0, StatusCode::OK);
}
