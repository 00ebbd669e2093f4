//! The happy paths a client walks, with read-your-writes.

use partida_e2e::{Stack, open_books, transfer};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_is_read_back_with_balances_entries_and_history() {
    let stack = Stack::start().await;
    open_books(&stack).await;
    transfer(&stack, "fund", &[("bank", "alice", 10_000)]).await;
    let position = transfer(&stack, "pay", &[("alice", "bob", 2_500), ("alice", "bank", 100)]).await;

    let (status, alice) = stack.get_at("/v1/accounts/alice", position).await;
    assert_eq!(status, StatusCode::OK, "{alice}");
    assert_eq!(
        (
            alice["debits"].as_i64(),
            alice["credits"].as_i64(),
            alice["balance"].as_i64()
        ),
        (Some(2_600), Some(10_000), Some(7_400))
    );
    assert_eq!(alice["normal_side"], "credit");
    assert_eq!(alice["flags"]["debits_must_not_exceed_credits"], true);
    let (_, bank) = stack.get("/v1/accounts/bank").await;
    assert_eq!(bank["balance"], 10_000 - 100, "debit-normal bank: {bank}");

    let (_, entries) = stack.get("/v1/accounts/alice/entries").await;
    let balances: Vec<i64> = entries["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["balance"].as_i64())
        .collect();
    assert_eq!(balances, vec![10_000, 7_500, 7_400]);
    let (_, newest) = stack.get("/v1/accounts/alice/entries?order=desc&limit=1").await;
    assert_eq!(newest["entries"][0]["balance"], 7_400);
    let cursor = newest["next"].as_str().unwrap_or_default().to_owned();
    let (_, older) = stack
        .get(&format!("/v1/accounts/alice/entries?order=desc&limit=1&after={cursor}"))
        .await;
    assert_eq!(older["entries"][0]["balance"], 7_500);

    let (_, before) = stack
        .get(&format!("/v1/accounts/alice/balance?at_position={}", position - 1))
        .await;
    assert_eq!(before["balance"], 10_000);
    let (_, now) = stack.get("/v1/accounts/alice/balance").await;
    assert_eq!(now["balance"], 7_400);

    let (_, detail) = stack.get("/v1/transfers/pay").await;
    assert_eq!(detail["position"], position);
    assert_eq!(
        detail["postings"][0],
        json!({"debit": "alice", "credit": "bob", "amount": 2_500})
    );
    let (_, list) = stack.get("/v1/transfers?order=desc&limit=1").await;
    assert_eq!(list["transfers"][0]["id"], "pay");

    let (_, assets) = stack.get("/v1/assets").await;
    assert_eq!(
        assets["assets"][0],
        json!({
            "code": "EUR", "scale": 2, "position": 1, "registered_at": assets["assets"][0]["registered_at"],
            "posted": 12_600, "accounts": 3, "transfers": 2
        })
    );
    let (_, accounts) = stack.get("/v1/accounts?asset=EUR&prefix=b").await;
    let ids: Vec<&str> = accounts["accounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["id"].as_str())
        .collect();
    assert_eq!(ids, vec!["bank", "bob"]);

    let (_, log) = stack.get("/v1/events?after=0&limit=1000").await;
    let events = log["events"].as_array().cloned().unwrap_or_default();
    assert_eq!(events.len() as i64, position);
    assert_eq!(events[0]["prev_hash"], "0".repeat(64));
    assert!(events.windows(2).all(|w| w[0]["hash"] == w[1]["prev_hash"]));
    let (_, stream) = stack.get("/v1/streams/transfer:pay").await;
    assert_eq!(stream["events"][0]["event_type"], "TransferPosted");
    let (_, projections) = stack.get_at("/v1/projections", position).await;
    assert_eq!(projections["projections"][0]["checkpoint"], position);
    assert_eq!(projections["projections"][0]["lag"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_writes_replay_and_keys_make_lifecycle_retries_safe() {
    let stack = Stack::start().await;
    open_books(&stack).await;
    let body = json!({"id": "t-1", "postings": [{"debit": "bank", "credit": "alice", "amount": 5}], "metadata": {"ref": 1.50}});
    let (first_status, first) = stack.post("/v1/transfers", body.clone()).await;
    assert_eq!(first_status, StatusCode::CREATED);
    let (again_status, again) = stack.post("/v1/transfers", body).await;
    assert_eq!((again_status, &again), (StatusCode::OK, &first));

    let freeze = |key: &'static str| {
        let client = stack.http.client().clone();
        let url = format!("{}/v1/accounts/bob/freeze", stack.command.url);
        async move {
            partida_e2e::decode(
                client
                    .post(url)
                    .header("Idempotency-Key", key)
                    .send()
                    .await
                    .expect("POST"),
            )
            .await
        }
    };
    let (status, frozen) = freeze("freeze-bob-1").await;
    assert_eq!(status, StatusCode::CREATED, "{frozen}");
    let (status, replay) = freeze("freeze-bob-1").await;
    assert_eq!((status, &replay), (StatusCode::OK, &frozen));
    // A new key is a new request: bob is already frozen.
    partida_e2e::assert_error(&freeze("freeze-bob-2").await, 422, "account_frozen");
    let other = stack
        .http
        .client()
        .post(format!("{}/v1/accounts/alice/freeze", stack.command.url))
        .header("Idempotency-Key", "freeze-bob-1");
    partida_e2e::assert_error(
        &partida_e2e::decode(other.send().await.expect("POST")).await,
        409,
        "idempotency_conflict",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_answers_each_transfer_in_order() {
    let stack = Stack::start().await;
    open_books(&stack).await;
    let (status, reply) = stack
        .post(
            "/v1/transfers/batch",
            json!({"transfers": [
                {"id": "b-1", "postings": [{"debit": "bank", "credit": "alice", "amount": 10}]},
                {"id": "b-2", "postings": [{"debit": "alice", "credit": "bob", "amount": 11}]},
                {"id": "b-3", "postings": [{"debit": "alice", "credit": "bob", "amount": 0}]},
                {"id": "b-4", "postings": [{"debit": "alice", "credit": "bob", "amount": 10}]},
                {"id": "b-1", "postings": [{"debit": "bank", "credit": "alice", "amount": 10}]},
                ["b-5", [{"debit": "bank", "credit": "alice", "amount": 1}]]
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let results = reply["results"].as_array().cloned().unwrap_or_default();
    assert_eq!(results.len(), 6);
    // An item must be an object: serde alone would read a struct's fields from an array in order.
    assert_eq!(results[5]["error"]["code"], "validation_failed", "{reply}");
    assert_eq!(results[5]["error"]["details"]["field"], "transfers[5]");
    assert!(results[0]["position"].is_i64());
    assert_eq!(results[1]["error"]["code"], "limit_exceeded");
    assert_eq!(results[2]["error"]["code"], "validation_failed");
    assert_eq!(
        results[2]["error"]["details"]["field"],
        "transfers[2].postings[0].amount"
    );
    assert!(results[3]["position"].as_i64() > results[0]["position"].as_i64());
    assert_eq!(results[4], results[0]);
    let (_, bob) = stack
        .get_at("/v1/accounts/bob", results[3]["position"].as_i64().unwrap_or(0))
        .await;
    assert_eq!(bob["balance"], 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyed_batch_gets_the_same_answers_on_retry_rejections_included() {
    let stack = Stack::start().await;
    open_books(&stack).await;
    transfer(&stack, "fund", &[("bank", "alice", 10)]).await;
    let client = stack.http.client();
    let url = format!("{}/v1/transfers/batch", stack.command.url);
    let send = |key: &'static str, body: serde_json::Value| {
        let request = client.post(&url).header("Idempotency-Key", key).json(&body);
        async move { partida_e2e::decode(request.send().await.expect("POST")).await }
    };
    let body = json!({"transfers": [
        {"id": "k-1", "postings": [{"debit": "alice", "credit": "bob", "amount": 5}]},
        {"id": "k-2", "postings": [{"debit": "alice", "credit": "bob", "amount": 100}]},
        {"id": "k-3", "postings": [{"debit": "alice", "credit": "bob", "amount": 0}]}
    ]});
    let (status, first) = send("batch-1", body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert!(first["results"][0]["position"].is_i64());
    assert_eq!(first["results"][1]["error"]["code"], "limit_exceeded");
    assert_eq!(first["results"][2]["error"]["code"], "validation_failed");

    // Alice can now afford k-2, but the key answers what it answered.
    transfer(&stack, "more", &[("bank", "alice", 1_000)]).await;
    let (status, again) = send("batch-1", body.clone()).await;
    assert_eq!((status, &again), (StatusCode::OK, &first));
    partida_e2e::assert_error(
        &send("batch-1", json!({"transfers": [body["transfers"][0]]})).await,
        409,
        "idempotency_conflict",
    );

    // Without the key, each transfer stands on its id: k-1 replays, k-2 is decided afresh.
    let (_, fresh) = stack.post("/v1/transfers/batch", body.clone()).await;
    assert_eq!(fresh["results"][0], first["results"][0]);
    assert!(fresh["results"][1]["position"].is_i64(), "{fresh}");

    // A keyed batch that wrote nothing records nothing: its key stays free.
    let broke =
        json!({"transfers": [{"id": "k-9", "postings": [{"debit": "bob", "credit": "alice", "amount": 1_000_000}]}]});
    let (_, refused) = send("batch-2", broke.clone()).await;
    assert_eq!(refused["results"][0]["error"]["code"], "limit_exceeded");
    transfer(&stack, "rich", &[("bank", "bob", 1_000_000)]).await;
    let (_, written) = send("batch-2", broke).await;
    assert!(written["results"][0]["position"].is_i64(), "{written}");
}
