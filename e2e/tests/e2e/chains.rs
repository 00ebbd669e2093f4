//! Conditions and chains through every layer: a transfer guarded by an account's revision or
//! available balance, and batch items written all or none; the read tables and the write side
//! keep the same revisions as a replay of the log.

use partida_e2e::{Stack, assert_error, assert_read_model_matches_log, decode, open_books, transfer};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn leg(debit: &str, credit: &str, amount: i64) -> Value {
    json!({"debit": debit, "credit": credit, "amount": amount})
}

/// A transfer of one leg with `extra` fields merged in.
fn guarded(id: &str, (debit, credit, amount): (&str, &str, i64), extra: Value) -> Value {
    let mut body = json!({"id": id, "postings": [leg(debit, credit, amount)]});
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    body
}

async fn revision(stack: &Stack, account: &str, at: i64) -> i64 {
    let (status, body) = stack.get_at(&format!("/v1/accounts/{account}"), at).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["revision"].as_i64().expect("a revision")
}

async fn head(stack: &Stack) -> i64 {
    sqlx::query_scalar("SELECT position FROM event_head")
        .fetch_one(stack.db.pool())
        .await
        .expect("head")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revision_or_an_available_balance_guards_a_transfer() {
    let stack = Stack::start().await;
    open_books(&stack).await;
    let funded = transfer(&stack, "fund", &[("bank", "alice", 10_000)]).await;
    // Opened, then funded: two events changed alice.
    let read = revision(&stack, "alice", funded).await;
    assert_eq!(read, 2);

    let pay = guarded(
        "pay",
        ("alice", "bob", 100),
        json!({"conditions": [{"account": "alice", "revision": read}]}),
    );
    let (status, written) = stack.post("/v1/transfers", pay.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{written}");
    // A retry is answered as the write it repeats, though the revision has moved since.
    let (status, again) = stack.post("/v1/transfers", pay).await;
    assert_eq!((status, &again["position"]), (StatusCode::OK, &written["position"]));
    let at = written["position"].as_i64().expect("position");
    assert_eq!(revision(&stack, "alice", at).await, 3);
    let (_, balance) = stack.get_at("/v1/accounts/alice/balance", at).await;
    assert_eq!(balance["revision"], 3, "{balance}");

    // A stale read is refused, naming the condition and what the account holds now.
    let before = head(&stack).await;
    let stale = guarded(
        "stale",
        ("alice", "bob", 100),
        json!({"conditions": [{"account": "alice", "revision": read}]}),
    );
    let details = assert_error(&stack.post("/v1/transfers", stale).await, 422, "condition_failed");
    assert_eq!(
        details,
        json!({"condition": 0, "account": "alice", "check": "revision", "expected": 2, "actual": 3})
    );
    let greedy = guarded(
        "greedy",
        ("bank", "bob", 1),
        json!({"conditions": [{"account": "bob", "available_at_least": 0}, {"account": "alice", "available_at_least": 9_901}]}),
    );
    let details = assert_error(&stack.post("/v1/transfers", greedy).await, 422, "condition_failed");
    assert_eq!((&details["condition"], &details["actual"]), (&json!(1), &json!(9_900)));
    let unknown = guarded(
        "u",
        ("alice", "bob", 1),
        json!({"conditions": [{"account": "carol", "revision": 1}]}),
    );
    assert_error(&stack.post("/v1/transfers", unknown).await, 422, "account_not_found");

    // Malformed conditions are 400s naming the field.
    for (extra, field) in [
        (
            json!({"conditions": [{"account": "alice", "revision": 1, "available_at_least": 1}]}),
            "conditions[0]",
        ),
        (json!({"conditions": [{"account": "alice"}]}), "conditions[0]"),
        (
            json!({"conditions": [{"account": "alice", "revision": -1}]}),
            "conditions[0].revision",
        ),
        (
            json!({"conditions": [{"account": "alice", "revision": 1, "other": 1}]}),
            "conditions[0]",
        ),
        (
            json!({ "conditions": vec![json!({"account": "alice", "revision": 1}); 17] }),
            "conditions",
        ),
        (json!({"chain": "c"}), "chain"),
    ] {
        let body = guarded("bad", ("alice", "bob", 1), extra);
        let details = assert_error(&stack.post("/v1/transfers", body).await, 400, "validation_failed");
        assert!(
            details["field"].as_str().is_some_and(|f| f.starts_with(field)),
            "{field}: {details}"
        );
    }
    assert_eq!(head(&stack).await, before, "nothing refused was written");

    // Revisions in the read tables and on the write side are a replay's, and so are those the
    // migration's backfill computes from the log alone.
    assert_read_model_matches_log(&stack.db).await;
}

fn batch_item(id: &str, legs: (&str, &str, i64), chain: Option<&str>) -> Value {
    match chain {
        Some(label) => guarded(id, legs, json!({ "chain": label })),
        None => guarded(id, legs, json!({})),
    }
}

/// Posts a batch and returns its `200` answer.
async fn batch(stack: &Stack, transfers: Value) -> Value {
    let (status, reply) = stack
        .post("/v1/transfers/batch", json!({ "transfers": transfers }))
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    reply
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_is_written_all_or_none_and_names_its_failed_member() {
    let stack = Stack::start().await;
    open_books(&stack).await;
    transfer(&stack, "fund", &[("bank", "alice", 1_000)]).await;

    // bob (no overdraft) can pay only what alice's transfer earlier in the chain gives him. The
    // chain also holds a hold.
    let reply = batch(
        &stack,
        json!([
            batch_item("in", ("alice", "bob", 600), Some("c1")),
            batch_item("out", ("bob", "bank", 600), Some("c1")),
            guarded("h", ("alice", "bank", 100), json!({"chain": "c1", "pending": true})),
        ]),
    )
    .await;
    let results = reply["results"].as_array().expect("results");
    assert!(results.iter().all(|r| r["position"].is_i64()), "{reply}");

    // One refused member refuses its chain; items outside it are decided on their own.
    let before = head(&stack).await;
    let reply = batch(
        &stack,
        json!([
            batch_item("a1", ("alice", "bob", 100), Some("c2")),
            batch_item("a2", ("alice", "bob", 201), Some("c2")),
            batch_item("alone", ("bank", "bob", 5), None),
        ]),
    )
    .await;
    let results = &reply["results"];
    assert_eq!(results[0]["error"]["code"], "linked_failed", "{reply}");
    assert_eq!(
        results[0]["error"]["details"],
        json!({"chain": "c2", "member": 1, "id": "a2", "code": "limit_exceeded"})
    );
    assert_eq!(results[1]["error"]["code"], "limit_exceeded", "{reply}");
    assert!(results[2]["position"].is_i64(), "{reply}");
    assert_eq!(
        head(&stack).await,
        before + 1,
        "only the item outside the chain was written"
    );
    let at = results[2]["position"].as_i64().expect("position");
    let (status, _) = stack.get_at("/v1/transfers/a1", at).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A malformed member fails its chain before anything is submitted.
    let reply = batch(
        &stack,
        json!([
            batch_item("m1", ("alice", "bob", 1), Some("c3")),
            batch_item("m2", ("alice", "bob", 0), Some("c3")),
        ]),
    )
    .await;
    assert_eq!(reply["results"][1]["error"]["code"], "validation_failed", "{reply}");
    assert_eq!(
        reply["results"][0]["error"]["details"],
        json!({"chain": "c3", "member": 1, "id": "m2", "code": "validation_failed"})
    );
    // A field given twice fails its item as a single transfer's body would, and so its chain;
    // the item answers under the last id it gives.
    let member = batch_item("d1", ("alice", "bob", 1), Some("c4")).to_string();
    let twice = format!(
        r#"{{"id": "d0", {}"#,
        batch_item("d2", ("alice", "bob", 1), Some("c4"))
            .to_string()
            .trim_start_matches('{')
    );
    let response = stack
        .http
        .client()
        .post(format!("{}/v1/transfers/batch", stack.command.url))
        .bearer_auth(&stack.token)
        .header("Content-Type", "application/json")
        .body(format!(r#"{{"transfers": [{member}, {twice}]}}"#))
        .send()
        .await
        .expect("sent");
    let (status, reply) = decode(response).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["results"][1]["id"], "d2", "{reply}");
    assert_eq!(reply["results"][1]["error"]["code"], "validation_failed", "{reply}");
    let message = reply["results"][1]["error"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("transfers[1]: duplicate field `id`"), "{reply}");
    assert!(
        !message.contains(" at line "),
        "no position in the item's text: {reply}"
    );
    assert_eq!(
        reply["results"][0]["error"]["details"],
        json!({"chain": "c4", "member": 1, "id": "d2", "code": "validation_failed"})
    );
    // A chain's members are consecutive, and a label has 1 to 64 characters.
    for (transfers, field) in [
        (
            json!([
                batch_item("x1", ("alice", "bob", 1), Some("p")),
                batch_item("y", ("alice", "bob", 1), None),
                batch_item("x2", ("alice", "bob", 1), Some("p"))
            ]),
            "transfers[2].chain",
        ),
        (
            json!([batch_item("x1", ("alice", "bob", 1), Some(""))]),
            "transfers[0].chain",
        ),
    ] {
        let (status, reply) = stack
            .post("/v1/transfers/batch", json!({ "transfers": transfers }))
            .await;
        let error = if status == StatusCode::BAD_REQUEST {
            &reply
        } else {
            &reply["results"][0]
        };
        assert_eq!(error["error"]["details"]["field"], field, "{reply}");
    }
    assert_eq!(head(&stack).await, before + 1);

    // Under an Idempotency-Key, a batch with a chain replays its first answers.
    let body = json!({"transfers": [
        batch_item("k1", ("alice", "bob", 10), Some("k")),
        batch_item("k2", ("bob", "alice", 10), Some("k")),
    ]});
    let keyed = || async {
        let response = stack
            .http
            .client()
            .post(format!("{}/v1/transfers/batch", stack.command.url))
            .bearer_auth(&stack.token)
            .header("Idempotency-Key", "chain-batch")
            .json(&body)
            .send()
            .await
            .expect("sent");
        decode(response).await
    };
    let first = keyed().await;
    assert!(first.1["results"][1]["position"].is_i64(), "{}", first.1);
    assert_eq!(keyed().await, first);

    let last = transfer(&stack, "last", &[("bank", "bob", 1)]).await;
    assert_eq!(stack.get_at("/v1/accounts/bob", last).await.0, StatusCode::OK);
    assert_read_model_matches_log(&stack.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_resolve_together_in_a_chain() {
    let stack = Stack::start().await;
    open_books(&stack).await;
    transfer(&stack, "fund", &[("bank", "alice", 1_000)]).await;
    let hold = |id: &str, amount: i64| guarded(id, ("alice", "bob", amount), json!({"pending": true}));
    let holds = batch(&stack, json!([hold("h1", 100), hold("h2", 200), hold("h3", 300)])).await;
    assert!(holds["results"][2]["position"].is_i64(), "{holds}");
    let void = |id: &str, chain: &str| json!({"resolve": id, "action": "void", "chain": chain});

    // h1 is voided alone first: a chain voiding h2 and posting h1 then fails on h1, and h2
    // stays open. (Voiding h1 again would be a replay of its void, not a failure.)
    let (status, _) = stack.post("/v1/transfers/h1/void", json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    let before = head(&stack).await;
    let post_h1 = json!({"resolve": "h1", "action": "post", "chain": "v"});
    let reply = batch(&stack, json!([void("h2", "v"), post_h1])).await;
    assert_eq!(
        reply["results"],
        json!([
            {"id": "h2", "error": {"code": "linked_failed", "message": reply["results"][0]["error"]["message"],
             "details": {"chain": "v", "member": 1, "id": "h1", "code": "pending_resolved"}}},
            {"id": "h1", "error": {"code": "pending_resolved", "message": reply["results"][1]["error"]["message"],
             "details": {"transfer": "h1", "resolution": "voided"}}},
        ])
    );
    assert_eq!(head(&stack).await, before, "nothing of the chain was written");

    // Posted in part and voided together; a void with legs is malformed, and fails alone.
    let reply = batch(
        &stack,
        json!([
            {"resolve": "h2", "action": "post", "chain": "w", "postings": [{"debit": "alice", "credit": "bob", "amount": 150}]},
            void("h3", "w"),
            {"resolve": "h3", "action": "void", "postings": [{"debit": "alice", "credit": "bob", "amount": 1}]},
        ]),
    )
    .await;
    let results = &reply["results"];
    assert!(
        results[0]["position"].is_i64() && results[1]["position"].is_i64(),
        "{reply}"
    );
    assert_eq!(
        results[2]["error"]["details"]["field"], "transfers[2].postings",
        "{reply}"
    );
    let at = results[1]["position"].as_i64().expect("position");
    let (_, alice) = stack.get_at("/v1/accounts/alice", at).await;
    assert_eq!(
        (&alice["balance"], &alice["pending_debits"]),
        (&json!(850), &json!(0)),
        "{alice}"
    );
    for (id, status) in [("h1", "voided"), ("h2", "posted"), ("h3", "voided")] {
        let (_, detail) = stack.get_at(&format!("/v1/transfers/{id}"), at).await;
        assert_eq!(detail["status"], status, "{detail}");
    }
    // A resolution naming no legs counts as a hold's most (64) against the postings cap.
    let voids: Vec<Value> = (0..157)
        .map(|i| json!({"resolve": format!("x{i}"), "action": "void"}))
        .collect();
    let details = assert_error(
        &stack.post("/v1/transfers/batch", json!({ "transfers": voids })).await,
        413,
        "payload_too_large",
    );
    assert_eq!(details["limit"], "postings");
    assert_read_model_matches_log(&stack.db).await;
}
