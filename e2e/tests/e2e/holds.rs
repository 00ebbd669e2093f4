//! Two-phase transfers through every layer: a hold reserves at once (limits and available
//! balances count it), resolves exactly once (posted in part or in full, voided, or expired by
//! the sweeper), and the read tables say what the log says.

use std::time::Duration;

use partida_e2e::{
    Stack, assert_error, assert_read_model_matches_log, command_config, eventually, open_books, start_command_api_with,
    start_projector, start_query_api, transfer,
};
use partida_testkit::TestDb;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn hold(id: &str, legs: &[(&str, &str, i64)], timeout_secs: Option<u32>) -> Value {
    let postings: Vec<Value> = legs
        .iter()
        .map(|(d, c, a)| json!({"debit": d, "credit": c, "amount": a}))
        .collect();
    let mut body = json!({"id": id, "postings": postings, "pending": true});
    if let Some(timeout) = timeout_secs {
        body["timeout_secs"] = json!(timeout);
    }
    body
}

fn position(reply: &(StatusCode, Value)) -> i64 {
    reply.1["position"].as_i64().unwrap_or_default()
}

/// (balance, pending_debits, available) of an account, once the projection has reached `at`.
async fn totals(stack: &Stack, account: &str, at: i64) -> (i64, i64, i64) {
    let (status, body) = stack.get_at(&format!("/v1/accounts/{account}/balance"), at).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let number = |field: &str| body[field].as_i64().unwrap_or(i64::MIN);
    (number("balance"), number("pending_debits"), number("available"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_reserves_at_once_and_posts_in_part_exactly_once() {
    let stack = Stack::start().await;
    open_books(&stack).await;
    transfer(&stack, "fund", &[("bank", "alice", 10_000)]).await;

    let held = stack
        .post("/v1/transfers", hold("h1", &[("alice", "bob", 6_000)], Some(3_600)))
        .await;
    assert_eq!(held.0, StatusCode::CREATED, "{}", held.1);
    assert_eq!(totals(&stack, "alice", position(&held)).await, (10_000, 6_000, 4_000));
    let (_, detail) = stack.get_at("/v1/transfers/h1", position(&held)).await;
    assert_eq!(detail["status"], "pending", "{detail}");
    assert_eq!(detail["postings"], json!([]));
    assert_eq!(detail["held"][0]["amount"], 6_000);
    assert!(detail["expires_at"].is_string(), "{detail}");

    // The hold counts against the limit: neither a second hold nor a transfer can overspend.
    let details = assert_error(
        &stack
            .post("/v1/transfers", hold("h2", &[("alice", "bob", 4_001)], None))
            .await,
        422,
        "limit_exceeded",
    );
    assert_eq!(details["pending_debits"], 10_001);
    let over = json!({"id": "t", "postings": [{"debit": "alice", "credit": "bob", "amount": 4_001}]});
    assert_error(&stack.post("/v1/transfers", over).await, 422, "limit_exceeded");
    // A retry of the hold is the same hold.
    let retry = stack
        .post("/v1/transfers", hold("h1", &[("alice", "bob", 6_000)], Some(3_600)))
        .await;
    assert_eq!((retry.0, position(&retry)), (StatusCode::OK, position(&held)));

    // Posting more than held, or between other accounts, is refused and changes nothing.
    let too_much = json!({"postings": [{"debit": "alice", "credit": "bob", "amount": 6_001}]});
    let details = assert_error(
        &stack.post("/v1/transfers/h1/post", too_much).await,
        422,
        "pending_amount_exceeded",
    );
    assert_eq!(details["posting"], 0);
    let part = json!({"postings": [{"debit": "alice", "credit": "bob", "amount": 2_500}]});
    let posted = stack.post("/v1/transfers/h1/post", part.clone()).await;
    assert_eq!(posted.0, StatusCode::CREATED, "{}", posted.1);
    // Exactly once: the same post answers the first; anything else is refused.
    let again = stack.post("/v1/transfers/h1/post", part).await;
    assert_eq!((again.0, position(&again)), (StatusCode::OK, position(&posted)));
    let details = assert_error(
        &stack.post("/v1/transfers/h1/void", json!({})).await,
        422,
        "pending_resolved",
    );
    assert_eq!(details["resolution"], "posted");
    assert_error(
        &stack.post("/v1/transfers/h1/post", json!({})).await,
        422,
        "pending_resolved",
    );

    assert_eq!(totals(&stack, "alice", position(&posted)).await, (7_500, 0, 7_500));
    let (_, detail) = stack.get("/v1/transfers/h1").await;
    assert_eq!(detail["status"], "posted");
    assert_eq!(
        detail["postings"],
        json!([{"debit": "alice", "credit": "bob", "amount": 2_500}])
    );
    assert_eq!(detail["resolved_position"], position(&posted));
    let (_, entries) = stack.get("/v1/accounts/bob/entries").await;
    assert_eq!(entries["entries"][0]["transfer_id"], "h1", "{entries}");
    assert_eq!(entries["entries"][0]["position"], position(&posted));

    // A posted hold is reversed by what it moved.
    let undo =
        json!({"id": "undo", "reverses": "h1", "postings": [{"debit": "bob", "credit": "alice", "amount": 2_500}]});
    let (status, body) = stack.post("/v1/transfers", undo).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // A hold voided; one left open, which keeps its account from closing.
    let voided = stack
        .post("/v1/transfers", hold("h3", &[("alice", "bank", 100)], None))
        .await;
    assert_eq!(voided.0, StatusCode::CREATED);
    assert_error(
        &stack
            .post("/v1/transfers", json!({"id": "r3", "reverses": "h3", "postings": [{"debit": "bank", "credit": "alice", "amount": 100}]}))
            .await,
        422,
        "transfer_not_posted",
    );
    let void = stack.post("/v1/transfers/h3/void", json!({})).await;
    assert_eq!(void.0, StatusCode::CREATED, "{}", void.1);
    let open = stack
        .post("/v1/transfers", hold("h4", &[("bank", "bob", 50)], None))
        .await;
    assert_eq!(open.0, StatusCode::CREATED);
    let details = assert_error(
        &stack.post("/v1/accounts/bob/close", json!({})).await,
        422,
        "account_has_pending",
    );
    assert_eq!(details["pending_credits"], 50);
    let (_, pending) = stack.get_at("/v1/transfers?status=pending", position(&open)).await;
    let ids: Vec<&str> = pending["transfers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(ids, ["h4"]);
    let (_, voided) = stack.get("/v1/transfers/h3").await;
    assert_eq!(
        (voided["status"].as_str(), &voided["postings"]),
        (Some("voided"), &json!([]))
    );

    assert_read_model_matches_log(&stack.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_holds_and_resolutions_are_refused_with_the_field() {
    let stack = Stack::without_projector().await;
    open_books(&stack).await;
    let mut body = hold("h", &[("bank", "alice", 1)], None);
    body["pending"] = json!(false);
    body["timeout_secs"] = json!(5);
    let details = assert_error(&stack.post("/v1/transfers", body).await, 400, "validation_failed");
    assert_eq!(details["field"], "timeout_secs");
    let details = assert_error(
        &stack
            .post("/v1/transfers", hold("h", &[("bank", "alice", 1)], Some(0)))
            .await,
        400,
        "validation_failed",
    );
    assert_eq!(details["field"], "timeout_secs");
    let mut reversal = hold("h", &[("bank", "alice", 1)], None);
    reversal["reverses"] = json!("x");
    let details = assert_error(&stack.post("/v1/transfers", reversal).await, 400, "validation_failed");
    assert_eq!(details["field"], "pending");
    let empty = json!({"postings": []});
    assert_error(
        &stack.post("/v1/transfers/h/post", empty).await,
        400,
        "validation_failed",
    );
    let unknown = json!({"amount": 5});
    assert_error(
        &stack.post("/v1/transfers/h/post", unknown).await,
        400,
        "validation_failed",
    );
    assert_error(
        &stack.post("/v1/transfers/h/void", json!({})).await,
        422,
        "transfer_not_found",
    );
    assert_error(
        &stack.post("/v1/transfers/bad%20id/void", json!({})).await,
        400,
        "validation_failed",
    );
    transfer(&stack, "plain", &[("bank", "alice", 1)]).await;
    assert_error(
        &stack.post("/v1/transfers/plain/void", json!({})).await,
        422,
        "transfer_not_pending",
    );
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE stream_id = 'transfer:h'")
        .fetch_one(stack.db.pool())
        .await
        .expect("count");
    assert_eq!(count, 0, "nothing refused was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_expires_holds_at_their_timeout_and_a_late_post_is_refused() {
    let db = TestDb::new().await;
    let mut config = command_config(&db);
    config.expiry_interval_ms = 50;
    let command = start_command_api_with(config).await;
    let query = start_query_api(&db).await;
    let projector = start_projector(&db).await.0;
    let stack = Stack::assemble(db, command, query, Some(projector)).await;
    open_books(&stack).await;
    transfer(&stack, "fund", &[("bank", "alice", 1_000)]).await;
    let short = stack
        .post("/v1/transfers", hold("short", &[("alice", "bob", 600)], Some(1)))
        .await;
    assert_eq!(short.0, StatusCode::CREATED, "{}", short.1);
    let long = stack
        .post("/v1/transfers", hold("long", &[("alice", "bob", 100)], Some(3_600)))
        .await;
    assert_eq!(long.0, StatusCode::CREATED, "{}", long.1);

    eventually("the short hold expires", Duration::from_secs(20), || async {
        stack.get("/v1/transfers/short").await.1["status"] == "expired"
    })
    .await;
    let details = assert_error(
        &stack.post("/v1/transfers/short/post", json!({})).await,
        422,
        "pending_resolved",
    );
    assert_eq!(details["resolution"], "expired");
    let (_, detail) = stack.get("/v1/transfers/short").await;
    let expired_at = detail["resolved_position"].as_i64().unwrap_or_default();
    assert_eq!(totals(&stack, "alice", expired_at).await, (1_000, 100, 900));
    let (_, long) = stack.get("/v1/transfers/long").await;
    assert_eq!(long["status"], "pending");
    let (metadata,): (Value,) =
        sqlx::query_as("SELECT metadata FROM events WHERE stream_id = 'transfer:short' AND stream_version = 2")
            .fetch_one(stack.db.pool())
            .await
            .expect("the expiry");
    assert_eq!(metadata["actor"], "system:expiry-sweeper");
    let left: Vec<String> = sqlx::query_scalar("SELECT id FROM write_pending ORDER BY id")
        .fetch_all(stack.db.pool())
        .await
        .expect("write_pending");
    assert_eq!(left, ["long"], "only the open hold can still expire");
    assert_read_model_matches_log(&stack.db).await;
}
