//! Every error code through real HTTP, in the one error shape; bad input never a 5xx.

use std::time::Duration;

use partida_e2e::{Stack, assert_error, decode, open_books, start_command_api_with, start_query_api_with, transfer};
use serde_json::{Value, json};

fn legs(legs: &[(&str, &str, i64)]) -> Value {
    legs.iter()
        .map(|(d, c, a)| json!({"debit": d, "credit": c, "amount": a}))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_oversized_and_wrong_typed_bodies_get_their_4xx() {
    let stack = Stack::start().await;
    open_books(&stack).await;
    let client = stack.http.client();
    let url = format!("{}/v1/transfers", stack.command.url);
    let raw = |body: &'static str, content_type: &'static str| {
        let request = client.post(&url).header("content-type", content_type).body(body);
        async move { decode(request.send().await.expect("POST")).await }
    };
    assert_error(&raw("{\"id\": ", "application/json").await, 400, "malformed_json");
    assert_error(&raw("{}", "text/plain").await, 415, "unsupported_media_type");
    let big = client
        .post(&url)
        .json(&json!({"id": "big", "postings": [], "metadata": {"x": "a".repeat(300_000)}}));
    assert_error(&decode(big.send().await.expect("POST")).await, 413, "payload_too_large");

    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"id": "t", "postings": legs(&[("bank", "alice", 1)]), "extra": 1}),
            "",
        ),
        (
            json!({"id": "t", "postings": [{"debit": "bank", "credit": "alice", "amount": "10"}]}),
            "postings[0].amount",
        ),
        (
            json!({"id": "t", "postings": [{"debit": "bank", "credit": "alice", "amount": 1.5}]}),
            "postings[0].amount",
        ),
        (
            json!({"id": "t", "postings": legs(&[("bank", "alice", 0)])}),
            "postings[0].amount",
        ),
        (
            json!({"id": "t", "postings": legs(&[("bank", "alice", -3)])}),
            "postings[0].amount",
        ),
        (json!({"id": "t", "postings": []}), "postings"),
        (
            json!({"id": "t", "postings": legs(&[("bank", "bank", 1)])}),
            "postings[0]",
        ),
        (
            json!({"id": "no spaces", "postings": legs(&[("bank", "alice", 1)])}),
            "id",
        ),
        (
            json!({"id": "t", "postings": legs(&[("bank", "alice", 1)]), "metadata": {"n": "\u{0}"}}),
            "metadata.n",
        ),
        (
            json!({"id": "t", "postings": legs(&[("bank", "alice", 1)]), "metadata": [1]}),
            "metadata",
        ),
        (
            json!({"id": "t", "postings": legs(&[("bank", "alice", 1)]), "metadata": {"k": "x".repeat(9_000)}}),
            "metadata",
        ),
        (
            json!({"id": "t", "postings": legs(&[("bank", "alice", 1)]), "metadata": {"k": [[[[[[[[1]]]]]]]]}}),
            "metadata",
        ),
        (
            json!({"id": "t", "postings": vec![json!({"debit": "bank", "credit": "alice", "amount": 1}); 65]}),
            "postings",
        ),
        (json!({"postings": legs(&[("bank", "alice", 1)])}), ""),
        // Objects only: serde would take a struct's fields as an array, in order.
        (json!({"id": "t", "postings": [["bank", "alice", 1]]}), "postings[0]"),
        (json!(["t", legs(&[("bank", "alice", 1)])]), ""),
    ];
    for (body, field) in cases {
        let details = assert_error(
            &stack.post("/v1/transfers", body.clone()).await,
            400,
            "validation_failed",
        );
        if !field.is_empty() {
            assert_eq!(details["field"], field, "{body}");
        }
    }
    for body in [
        json!({"id": "x", "asset": "EUR", "name": "X", "flags": {"debits_must_not_exceed_credits": true, "credits_must_not_exceed_debits": true}}),
        json!({"id": "x", "asset": "EUR", "name": "  "}),
        json!({"id": "x", "asset": "eur", "name": "X"}),
        json!({"id": "x", "asset": "EUR", "name": "X", "normal_side": "left"}),
    ] {
        assert_error(&stack.post("/v1/accounts", body).await, 400, "validation_failed");
    }
    // Found by schemathesis: flags given as an array were taken for the defaults.
    let details = assert_error(
        &stack
            .post(
                "/v1/accounts",
                json!({"id": "x", "asset": "EUR", "name": "X", "flags": []}),
            )
            .await,
        400,
        "validation_failed",
    );
    assert_eq!(details["field"], "flags");
    let deep = json!({"id": "x", "asset": "EUR", "name": "X", "metadata": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}});
    let details = assert_error(&stack.post("/v1/accounts", deep).await, 400, "validation_failed");
    assert_eq!(details["field"], "metadata");
    // Tracing headers go into every event's metadata: bounded too.
    let long_header = client
        .post(format!("{}/v1/accounts", stack.command.url))
        .header("x-correlation-id", "c".repeat(201))
        .json(&json!({"id": "x", "asset": "EUR", "name": "X"}));
    let details = assert_error(
        &decode(long_header.send().await.expect("POST")).await,
        400,
        "validation_failed",
    );
    assert_eq!(details["field"], "x-correlation-id");
    assert_error(
        &stack.post("/v1/assets", json!({"code": "EUR", "scale": 19})).await,
        400,
        "validation_failed",
    );
    let bad_key = client
        .post(format!("{}/v1/accounts/bob/freeze", stack.command.url))
        .header("Idempotency-Key", "");
    assert_error(
        &decode(bad_key.send().await.expect("POST")).await,
        400,
        "validation_failed",
    );
    assert_error(&stack.post("/v1/nothing", json!({})).await, 404, "not_found");
    let get = client.get(&url).send().await.expect("GET");
    assert_error(&decode(get).await, 405, "method_not_allowed");

    let too_many: Vec<Value> = (0..1_001)
        .map(|i| json!({"id": format!("b{i}"), "postings": legs(&[("bank", "alice", 1)])}))
        .collect();
    assert_error(
        &stack.post("/v1/transfers/batch", json!({"transfers": too_many})).await,
        413,
        "payload_too_large",
    );
    let many_postings: Vec<Value> =
        (0..200).map(|i| json!({"id": format!("b{i}"), "postings": vec![json!({"debit": "bank", "credit": "alice", "amount": 1}); 60]})).collect();
    assert_error(
        &stack
            .post("/v1/transfers/batch", json!({"transfers": many_postings}))
            .await,
        413,
        "payload_too_large",
    );

    // Nothing above was written.
    let (_, log) = stack.get("/v1/events?limit=1000").await;
    assert_eq!(log["events"].as_array().map(Vec::len), Some(6));

    // Found by schemathesis: a U+0000 in a query parameter reached PostgreSQL, which cannot hold
    // it in text, and came back a 500.
    for (path, field) in [
        ("/v1/events?type=a%00b", "type"),
        ("/v1/accounts?asset=EUR&status=%00", "status"),
        ("/v1/accounts?prefix%00=x", "prefix\\u0000"),
    ] {
        let details = assert_error(&stack.get(path).await, 400, "validation_failed");
        assert_eq!(details["field"], field, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn business_rejections_are_422_and_conflicts_409() {
    let stack = Stack::start().await;
    open_books(&stack).await;
    transfer(&stack, "fund", &[("bank", "alice", 100)]).await;
    let post = |id: &str, l: &[(&str, &str, i64)]| stack.post("/v1/transfers", json!({"id": id, "postings": legs(l)}));

    let details = assert_error(&post("t1", &[("alice", "bob", 101)]).await, 422, "limit_exceeded");
    assert_eq!(
        (details["account"].as_str(), details["flag"].as_str()),
        (Some("alice"), Some("debits_must_not_exceed_credits"))
    );
    assert_eq!(
        assert_error(&post("t1", &[("alice", "nobody", 1)]).await, 422, "account_not_found")["account"],
        "nobody"
    );
    assert_error(&post("t1", &[("usd", "bank", 1)]).await, 422, "asset_mismatch");
    assert_error(
        &stack
            .post("/v1/accounts", json!({"id": "y", "asset": "GBP", "name": "Y"}))
            .await,
        422,
        "asset_not_found",
    );
    assert_error(
        &post("fund", &[("bank", "alice", 99)]).await,
        409,
        "idempotency_conflict",
    );
    assert_error(
        &stack
            .post("/v1/accounts", json!({"id": "bank", "asset": "EUR", "name": "Other"}))
            .await,
        409,
        "idempotency_conflict",
    );
    assert_error(
        &stack.post("/v1/assets", json!({"code": "EUR", "scale": 3})).await,
        409,
        "idempotency_conflict",
    );

    assert_error(
        &stack.post("/v1/accounts/bob/unfreeze", json!(null)).await,
        422,
        "account_not_frozen",
    );
    assert_error(
        &stack.post("/v1/accounts/alice/close", json!(null)).await,
        422,
        "account_not_empty",
    );
    let (status, _) = stack.post("/v1/accounts/bob/freeze", json!(null)).await;
    assert_eq!(status.as_u16(), 201);
    assert_error(&post("t2", &[("alice", "bob", 1)]).await, 422, "account_frozen");
    let (status, _) = stack.post("/v1/accounts/bob/close", json!(null)).await;
    assert_eq!(status.as_u16(), 201);
    assert_error(&post("t2", &[("alice", "bob", 1)]).await, 422, "account_closed");
    assert_error(
        &stack.post("/v1/accounts/ghost/freeze", json!(null)).await,
        422,
        "account_not_found",
    );

    let reverse = |id: &str, of: &str, l: &[(&str, &str, i64)]| {
        stack.post("/v1/transfers", json!({"id": id, "postings": legs(l), "reverses": of}))
    };
    assert_error(
        &reverse("r1", "nothing", &[("alice", "bank", 100)]).await,
        422,
        "transfer_not_found",
    );
    assert_error(
        &reverse("r1", "fund", &[("alice", "bank", 99)]).await,
        422,
        "reversal_mismatch",
    );
    let (status, _) = reverse("r1", "fund", &[("alice", "bank", 100)]).await;
    assert_eq!(status.as_u16(), 201);
    assert_error(
        &reverse("r2", "fund", &[("alice", "bank", 100)]).await,
        422,
        "already_reversed",
    );

    transfer(&stack, "huge", &[("bank", "alice", i64::MAX - 200)]).await;
    assert_error(&post("t3", &[("bank", "alice", 1_000)]).await, 422, "overflow");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_503_unavailable_with_retry_after() {
    let mut config = command_api::Config::for_database("postgres://postgres@127.0.0.1:1/none");
    config.queue_capacity = 4;
    let api = start_command_api_with(config).await;
    // A well-formed token: checking it needs the database, which is as unreachable as the writer.
    let token = format!("ptk_{}", "0".repeat(64));
    let response = reqwest::Client::new()
        .post(format!("{}/v1/assets", api.url))
        .bearer_auth(token)
        .json(&json!({"code": "EUR", "scale": 2}))
        .send()
        .await
        .expect("POST");
    assert!(response.headers().contains_key("retry-after"));
    assert_error(&decode(response).await, 503, "unavailable");
    let (status, _) = decode(reqwest::get(format!("{}/readyz", api.url)).await.expect("GET")).await;
    assert_eq!(status.as_u16(), 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_writer_queue_answers_503_overloaded() {
    let db = partida_testkit::TestDb::new().await;
    let mut config = partida_e2e::command_config(&db);
    config.queue_capacity = 1;
    let api = start_command_api_with(config).await;
    // Hold the head row so the writer blocks inside its first batch.
    let mut blocker = db.pool().begin().await.expect("begin");
    sqlx::query("SELECT 1 FROM event_head FOR UPDATE")
        .execute(&mut *blocker)
        .await
        .expect("lock");
    let client = partida_e2e::Http::with_token(&partida_e2e::issue_token(&db, partida_e2e::Role::Admin, "e2e").await)
        .client()
        .clone();
    let send = |code: String| {
        let request = client
            .post(format!("{}/v1/assets", api.url))
            .json(&json!({"code": code, "scale": 2}));
        tokio::spawn(async move { decode(request.send().await.expect("POST")).await })
    };
    let first = send("A".into());
    partida_e2e::eventually("the writer waits on the head lock", Duration::from_secs(10), || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            .fetch_one(db.pool())
            .await
            .unwrap_or(0)
            == 1
    })
    .await;
    // One request fits the queue; the other four find it full and are answered at once.
    let rest: Vec<_> = ["B", "C", "D", "E", "F"].into_iter().map(|c| send(c.into())).collect();
    partida_e2e::eventually("four requests answered", Duration::from_secs(10), || {
        let finished = rest.iter().filter(|t| t.is_finished()).count();
        async move { finished == 4 }
    })
    .await;
    let (done, queued): (Vec<_>, Vec<_>) = rest.into_iter().partition(|t| t.is_finished());
    for task in done {
        let response = task.await.expect("task");
        assert!(response.0.as_u16() == 503);
        assert_error(&response, 503, "overloaded");
    }
    blocker.rollback().await.expect("rollback");
    let mut statuses = vec![first.await.expect("task").0.as_u16()];
    for task in queued {
        statuses.push(task.await.expect("task").0.as_u16());
    }
    let written = statuses.iter().filter(|s| **s == 201).count();
    assert_eq!(written, 2, "the in-flight request and the one queued: {statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_that_cannot_catch_up_in_time_are_503_not_caught_up() {
    let stack = Stack::start().await;
    open_books(&stack).await;
    let mut config = partida_e2e::query_config(&stack.db);
    config.min_position_wait_ms = 100;
    let query = start_query_api_with(config).await;
    let (status, body) = stack
        .http
        .get(&format!("{}/v1/accounts/bank?min_position=999999", query.url))
        .await;
    assert_error(&(status, body), 503, "not_caught_up");
    let header = stack
        .http
        .client()
        .get(format!("{}/v1/accounts/bank", query.url))
        .header("X-Min-Position", "999999");
    assert_error(&decode(header.send().await.expect("GET")).await, 503, "not_caught_up");
    assert_error(&stack.get("/v1/accounts/nobody").await, 404, "account_not_found");
    assert_error(&stack.get("/v1/transfers/nothing").await, 404, "transfer_not_found");
    assert_error(&stack.get("/v1/streams/account:nobody").await, 404, "stream_not_found");
    assert_error(&stack.get("/v1/streams/nonsense").await, 400, "validation_failed");
    assert_error(&stack.get("/v1/accounts?limit=0").await, 400, "validation_failed");
    assert_error(
        &stack.get("/v1/accounts?status=sleeping").await,
        400,
        "validation_failed",
    );
    assert_error(
        &stack.get("/v1/accounts?min_position=-1").await,
        400,
        "validation_failed",
    );
    assert_error(
        &stack.get("/v1/accounts/alice/entries?after=zz").await,
        400,
        "validation_failed",
    );
    assert_error(&stack.get("/v1/events?limit=abc").await, 400, "validation_failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_the_database_refuses_is_500_alone_and_its_batch_mates_are_written() {
    let stack = Stack::start().await;
    open_books(&stack).await;
    // Something only the database objects to, as a corrupted row or a bug would.
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_cursed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           IF NEW.id = 'cursed' THEN RAISE EXCEPTION 'cursed account'; END IF; RETURN NEW; END $$; \
         CREATE TRIGGER refuse_cursed BEFORE INSERT ON write_accounts FOR EACH ROW EXECUTE FUNCTION refuse_cursed();",
    )
    .execute(stack.db.pool())
    .await
    .expect("trigger");
    let open = |id: &str| stack.post("/v1/accounts", json!({"id": id, "asset": "EUR", "name": id}));
    let (first, cursed, last) = tokio::join!(open("before"), open("cursed"), open("after"));
    assert_error(&cursed, 500, "internal");
    assert_eq!((first.0.as_u16(), last.0.as_u16()), (201, 201), "{first:?} {last:?}");
    let (_, log) = stack.get("/v1/events?limit=1000").await;
    assert_eq!(log["events"].as_array().map(Vec::len), Some(8));
}
