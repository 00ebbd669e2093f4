//! Metadata through every layer: patches recorded as events on the subject's stream, folded by
//! the projector, filtered by containment, and balances summed by id pattern and metadata key.

use partida_e2e::{Stack, assert_error, assert_read_model_matches_log, open_books, transfer};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn open(stack: &Stack, id: &str, asset: &str, metadata: Value) {
    let body = json!({"id": id, "asset": asset, "name": id, "metadata": metadata});
    let (status, reply) = stack.post("/v1/accounts", body).await;
    assert_eq!(status, StatusCode::CREATED, "{id}: {reply}");
}

async fn patch(stack: &Stack, path: &str, body: Value) -> i64 {
    let (status, reply) = stack.patch(path, body).await;
    assert_eq!(status, StatusCode::CREATED, "{path}: {reply}");
    reply["position"].as_i64().expect("position")
}

/// The ids a list answers, in order.
fn ids(body: &Value, list: &str) -> Vec<String> {
    body[list]
        .as_array()
        .unwrap_or_else(|| panic!("{list} in {body}"))
        .iter()
        .map(|row| row["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Each group's (asset, value, accounts, balance).
fn groups(body: &Value) -> Vec<(String, Value, i64, i64)> {
    body["groups"]
        .as_array()
        .unwrap_or_else(|| panic!("groups in {body}"))
        .iter()
        .map(|g| {
            let number = |key: &str| g[key].as_i64().unwrap_or_else(|| panic!("{key} in {g}"));
            (
                g["asset"].as_str().unwrap_or_default().to_owned(),
                g["value"].clone(),
                number("accounts"),
                number("balance"),
            )
        })
        .collect()
}

fn query(value: &Value) -> String {
    url_escape(&value.to_string())
}

fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_changes_are_events_that_filters_and_aggregated_balances_see() {
    let stack = Stack::start().await;
    open_books(&stack).await;
    open(
        &stack,
        "users:ann:wallet",
        "EUR",
        json!({"tier": "gold", "region": "eu"}),
    )
    .await;
    open(
        &stack,
        "users:bo:wallet",
        "EUR",
        json!({"tier": "silver", "region": "eu"}),
    )
    .await;
    open(&stack, "users:cy:wallet", "EUR", json!({})).await;
    open(&stack, "users:ann:savings:wallet", "EUR", json!({"tier": "gold"})).await;
    open(&stack, "users:dee:wallet", "USD", json!({"region": "us"})).await;
    transfer(&stack, "t-ann", &[("bank", "users:ann:wallet", 100)]).await;
    transfer(&stack, "t-bo", &[("bank", "users:bo:wallet", 20)]).await;
    transfer(&stack, "t-cy", &[("bank", "users:cy:wallet", 3)]).await;
    transfer(&stack, "t-sav", &[("bank", "users:ann:savings:wallet", 4000)]).await;
    transfer(&stack, "t-dee", &[("usd", "users:dee:wallet", 7)]).await;

    // A patch sets keys and removes those given as null; other keys stay.
    patch(
        &stack,
        "/v1/accounts/users:cy:wallet/metadata",
        json!({"tier": "gold", "region": "us"}),
    )
    .await;
    patch(&stack, "/v1/accounts/users:bo:wallet/metadata", json!({"tier": null})).await;
    patch(
        &stack,
        "/v1/transfers/t-bo/metadata",
        json!({"order": "o-2", "lines": [1, 2]}),
    )
    .await;
    let last = patch(
        &stack,
        "/v1/transfers/t-bo/metadata",
        json!({"note": "refund", "lines": null}),
    )
    .await;

    let (_, bo) = stack.get_at("/v1/accounts/users:bo:wallet", last).await;
    assert_eq!(bo["metadata"], json!({"region": "eu"}), "{bo}");
    assert_eq!(bo["balance"], -20, "debit-normal, credited");
    assert_eq!(bo["revision"], 2, "the opening and the transfer, not the patch: {bo}");
    assert_eq!(bo["last_position"], last - 2, "the patch touched the account: {bo}");
    let (_, t_bo) = stack.get("/v1/transfers/t-bo").await;
    assert_eq!(t_bo["metadata"], json!({"order": "o-2", "note": "refund"}), "{t_bo}");

    // Containment filters.
    let gold = query(&json!({"tier": "gold"}));
    let (status, list) = stack.get(&format!("/v1/accounts?metadata={gold}")).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(
        ids(&list, "accounts"),
        ["users:ann:savings:wallet", "users:ann:wallet", "users:cy:wallet"]
    );
    let (_, list) = stack.get(&format!("/v1/accounts?metadata={gold}&prefix=users:c")).await;
    assert_eq!(ids(&list, "accounts"), ["users:cy:wallet"]);
    let (_, list) = stack
        .get(&format!("/v1/transfers?metadata={}", query(&json!({"order": "o-2"}))))
        .await;
    assert_eq!(ids(&list, "transfers"), ["t-bo"]);
    let (_, list) = stack.get("/v1/transfers?metadata=%7B%7D&limit=2").await;
    assert_eq!(ids(&list, "transfers"), ["t-ann", "t-bo"], "{{}} filters nothing");

    // Balances summed by id pattern: `*` is one segment, so the savings wallet is left out.
    let (status, sums) = stack.get("/v1/balances?accounts=users:*:wallet").await;
    assert_eq!(status, StatusCode::OK, "{sums}");
    assert_eq!(sums["at_position"], last, "{sums}");
    assert_eq!(
        groups(&sums),
        [
            ("EUR".to_owned(), Value::Null, 3, -123),
            ("USD".to_owned(), Value::Null, 1, -7)
        ],
        "debit-normal wallets credited: negative balances"
    );
    // ... and by a metadata key, accounts without it in the null group.
    let (_, sums) = stack
        .get("/v1/balances?accounts=users:*:wallet&group_by=tier&asset=EUR")
        .await;
    assert_eq!(
        groups(&sums),
        [
            ("EUR".to_owned(), json!("gold"), 2, -103),
            ("EUR".to_owned(), Value::Null, 1, -20)
        ],
        "{sums}"
    );
    let eu = query(&json!({"region": "eu"}));
    let (_, sums) = stack.get(&format!("/v1/balances?metadata={eu}&group_by=region")).await;
    assert_eq!(groups(&sums), [("EUR".to_owned(), json!("eu"), 2, -120)], "{sums}");
    let (_, sums) = stack.get("/v1/balances?accounts=nobody:*").await;
    assert_eq!((groups(&sums).len(), &sums["at_position"]), (0, &json!(last)), "{sums}");

    // The events sit on the subjects' streams.
    let streams: Vec<(String, i64, String)> = sqlx::query_as(
        "SELECT stream_id, stream_version, event_type FROM events \
          WHERE event_type LIKE '%MetadataSet' ORDER BY position",
    )
    .fetch_all(stack.db.pool())
    .await
    .expect("events");
    assert_eq!(
        streams,
        [
            ("account:users:cy:wallet".to_owned(), 2, "AccountMetadataSet".to_owned()),
            ("account:users:bo:wallet".to_owned(), 2, "AccountMetadataSet".to_owned()),
            ("transfer:t-bo".to_owned(), 2, "TransferMetadataSet".to_owned()),
            ("transfer:t-bo".to_owned(), 3, "TransferMetadataSet".to_owned()),
        ]
    );
    assert_read_model_matches_log(&stack.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_metadata_changes_and_selections_are_refused_and_write_nothing() {
    let stack = Stack::start().await;
    let before = open_books(&stack).await;
    for (path, body, field) in [
        ("/v1/accounts/alice/metadata", json!({}), "metadata"),
        ("/v1/accounts/alice/metadata", json!([1]), "body"),
        ("/v1/accounts/al%20ice/metadata", json!({"k": 1}), "id"),
        ("/v1/transfers/t/metadata", json!({"k": "x".repeat(9_000)}), "metadata"),
    ] {
        let (status, reply) = stack.patch(path, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {reply}");
        assert_eq!(reply["error"]["code"], "validation_failed", "{reply}");
        if field != "body" {
            assert_eq!(reply["error"]["details"]["field"], field, "{path}: {reply}");
        }
    }
    let details = assert_error(
        &stack.patch("/v1/accounts/nobody/metadata", json!({"k": 1})).await,
        422,
        "account_not_found",
    );
    assert_eq!(details["account"], "nobody");
    assert_error(
        &stack.patch("/v1/transfers/nothing/metadata", json!({"k": 1})).await,
        422,
        "transfer_not_found",
    );
    let head: i64 = sqlx::query_scalar("SELECT position FROM event_head")
        .fetch_one(stack.db.pool())
        .await
        .expect("head");
    assert_eq!(head, before, "nothing refused was written");

    // An Idempotency-Key makes a retry safe; the same key with another patch is a conflict.
    let url = format!("{}/v1/accounts/alice/metadata", stack.command.url);
    let send = |body: Value| {
        stack
            .http
            .client()
            .patch(&url)
            .header("Idempotency-Key", "tag-alice")
            .json(&body)
            .send()
    };
    let first = partida_e2e::decode(send(json!({"k": 1})).await.expect("PATCH")).await;
    let again = partida_e2e::decode(send(json!({"k": 1})).await.expect("PATCH")).await;
    assert_eq!(first.0, StatusCode::CREATED, "{}", first.1);
    assert_eq!((again.0, &again.1), (StatusCode::OK, &first.1));
    assert_error(
        &partida_e2e::decode(send(json!({"k": 2})).await.expect("PATCH")).await,
        409,
        "idempotency_conflict",
    );

    for (query, field) in [
        ("/v1/accounts?metadata=tier%3Dgold", "metadata"),
        ("/v1/transfers?metadata=%5B1%5D", "metadata"),
        ("/v1/accounts?metadata=%7B%22a%22%3A%22%5Cu0000%22%7D", "metadata.a"),
        ("/v1/balances?accounts=users%3A%25", "accounts"),
        ("/v1/balances?group_by=", "group_by"),
        ("/v1/balances?asset=eur", "asset"),
    ] {
        let details = assert_error(&stack.get(query).await, 400, "validation_failed");
        assert_eq!(details["field"], field, "{query}");
    }
}

/// A hold applied by an earlier projector batch, then posted and reversed by one batch (so one
/// projector batch, which cannot update a row twice in its one statement, does both), then
/// annotated: its row keeps every change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_posted_and_reversed_in_one_batch_then_annotated_keeps_every_change() {
    let stack = Stack::start().await;
    open_books(&stack).await;
    transfer(&stack, "fund", &[("bank", "alice", 100)]).await;
    let hold = json!({"id": "h", "pending": true, "metadata": {"order": "o-9"},
                      "postings": [{"debit": "alice", "credit": "bob", "amount": 30}]});
    let (status, held) = stack.post("/v1/transfers", hold).await;
    assert_eq!(status, StatusCode::CREATED, "{held}");
    stack
        .get_at("/v1/transfers/h", held["position"].as_i64().expect("position"))
        .await;
    let (status, reply) = stack
        .post(
            "/v1/transfers/batch",
            json!({"transfers": [
                {"resolve": "h", "action": "post"},
                {"id": "r", "reverses": "h", "postings": [{"debit": "bob", "credit": "alice", "amount": 30}]},
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let last = patch(&stack, "/v1/transfers/h/metadata", json!({"refunded": true})).await;
    let (_, h) = stack.get_at("/v1/transfers/h", last).await;
    assert_eq!(
        (&h["status"], &h["reversed_by"], &h["metadata"]),
        (
            &json!("posted"),
            &json!("r"),
            &json!({"order": "o-9", "refunded": true})
        ),
        "{h}"
    );
    assert_read_model_matches_log(&stack.db).await;
}
