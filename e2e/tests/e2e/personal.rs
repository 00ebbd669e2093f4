//! Personal data through every layer: sealed under its subject's key before the log, opened in
//! the read tables, and unreadable everywhere once the subject is erased, with the log and its
//! chain unchanged.

use partida_e2e::{Stack, assert_error, assert_read_model_matches_log, open_books, transfer};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ANN: &str = "Ann Example";
const ANN_EMAIL: &str = "ann@example.com";

fn ann() -> Value {
    json!({"subject": "customer-1", "data": {"name": ANN, "email": ANN_EMAIL}})
}

async fn head(stack: &Stack) -> i64 {
    sqlx::query_scalar("SELECT position FROM event_head")
        .fetch_one(stack.db.pool())
        .await
        .expect("head")
}

/// Every event's data as stored, as text.
async fn log_text(stack: &Stack) -> String {
    let rows: Vec<String> = sqlx::query_scalar("SELECT data::text FROM events ORDER BY position")
        .fetch_all(stack.db.pool())
        .await
        .expect("events");
    rows.join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_data_is_sealed_in_the_log_and_erased_for_good() {
    let stack = Stack::start().await;
    open_books(&stack).await;
    let account = json!({"id": "cust:ann", "asset": "EUR", "name": "Customer 1",
                         "metadata": {"tier": "gold", "personal": ann()}});
    let (status, opened) = stack.post("/v1/accounts", account.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    // Sealing is deterministic, so a retry is the same request: answered with the first write.
    let (status, again) = stack.post("/v1/accounts", account).await;
    assert_eq!(
        (status, &again["position"]),
        (StatusCode::OK, &opened["position"]),
        "{again}"
    );
    let (status, paid) = stack
        .post(
            "/v1/transfers",
            json!({"id": "t-ann", "postings": [{"debit": "bank", "credit": "cust:ann", "amount": 5}],
                   "metadata": {"personal": {"subject": "customer-1", "data": "refund for Ann"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    transfer(&stack, "t-bo", &[("bank", "bob", 7)]).await;
    let (status, _) = stack
        .patch(
            "/v1/transfers/t-bo/metadata",
            json!({"personal": {"subject": "customer-2", "data": "Bo"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    // The log holds only sealed values.
    let text = log_text(&stack).await;
    for clear in [ANN, ANN_EMAIL, "refund for Ann", "\"Bo\""] {
        assert!(!text.contains(clear), "{clear} is in the log");
    }
    let sealed: Value =
        sqlx::query_scalar("SELECT data -> 'metadata' -> 'personal' FROM events WHERE stream_id = 'account:cust:ann'")
            .fetch_one(stack.db.pool())
            .await
            .expect("the opening");
    assert_eq!(sealed["subject"], "customer-1", "{sealed}");
    assert!(sealed["sealed"].as_str().is_some_and(|s| s.len() > 20), "{sealed}");

    // The read tables show it opened, and filters find it by subject.
    let written = head(&stack).await;
    let (_, row) = stack.get_at("/v1/accounts/cust:ann", written).await;
    assert_eq!(row["metadata"], json!({"tier": "gold", "personal": ann()}), "{row}");
    let by_subject = "%7B%22personal%22%3A%7B%22subject%22%3A%22customer-1%22%7D%7D";
    let (_, list) = stack.get(&format!("/v1/accounts?metadata={by_subject}")).await;
    assert_eq!(list["accounts"][0]["id"], "cust:ann", "{list}");

    // Erased: once, then a replay of the first erasure.
    let (status, erased) = stack.post("/v1/subjects/customer-1/erase", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{erased}");
    let (status, again) = stack.post("/v1/subjects/customer-1/erase", json!({})).await;
    assert_eq!(
        (status, &again["position"]),
        (StatusCode::OK, &erased["position"]),
        "{again}"
    );
    let position = erased["position"].as_i64().expect("position");
    let gone = json!({"subject": "customer-1", "erased": true});
    let (_, row) = stack.get_at("/v1/accounts/cust:ann", position).await;
    assert_eq!(row["metadata"], json!({"tier": "gold", "personal": gone}), "{row}");
    let (_, t_ann) = stack.get("/v1/transfers/t-ann").await;
    assert_eq!(t_ann["metadata"]["personal"], gone, "{t_ann}");
    let (_, t_bo) = stack.get("/v1/transfers/t-bo").await;
    assert_eq!(
        t_bo["metadata"]["personal"],
        json!({"subject": "customer-2", "data": "Bo"}),
        "another subject is untouched"
    );
    let key: Option<Vec<u8>> = sqlx::query_scalar("SELECT key FROM subject_keys WHERE subject = 'customer-1'")
        .fetch_one(stack.db.pool())
        .await
        .expect("the subject's row");
    assert_eq!(key, None, "the key is destroyed");

    // Nothing can be sealed for the subject again, and nothing refused is written.
    let before = head(&stack).await;
    let reopened = stack
        .post(
            "/v1/accounts",
            json!({"id": "cust:ann2", "asset": "EUR", "name": "Again", "metadata": {"personal": ann()}}),
        )
        .await;
    let details = assert_error(&reopened, 422, "personal_data_erased");
    assert_eq!(details["subject"], "customer-1", "{details}");
    let patched = stack
        .patch("/v1/transfers/t-bo/metadata", json!({"personal": ann()}))
        .await;
    assert_error(&patched, 422, "personal_data_erased");
    let (status, batch) = stack
        .post(
            "/v1/transfers/batch",
            json!({"transfers": [{"id": "t-again", "postings": [{"debit": "bank", "credit": "cust:ann", "amount": 1}],
                                  "metadata": {"personal": ann()}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{batch}");
    assert_eq!(batch["results"][0]["error"]["code"], "personal_data_erased", "{batch}");
    assert_eq!(head(&stack).await, before);

    // The log is as it was (the chain verifies), and the read tables equal it opened with the
    // keys that are left.
    assert_read_model_matches_log(&stack.db).await;
    // A rebuild reads the erased subject as erased too.
    projector::rebuild(stack.db.url(), "ledger", 2).await.expect("rebuild");
    let (_, row) = stack.get_at("/v1/accounts/cust:ann", position).await;
    assert_eq!(row["metadata"]["personal"], gone, "{row}");
    let (_, t_bo) = stack.get("/v1/transfers/t-bo").await;
    assert_eq!(t_bo["metadata"]["personal"]["data"], "Bo", "{t_bo}");

    // An erasure after the rebuild reaches the generation it replaced too (readers may still
    // be on it until the next rebuild drops it).
    let (status, erased) = stack.post("/v1/subjects/customer-2/erase", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{erased}");
    let (_, t_bo) = stack
        .get_at("/v1/transfers/t-bo", erased["position"].as_i64().expect("position"))
        .await;
    let bo_gone = json!({"subject": "customer-2", "erased": true});
    assert_eq!(t_bo["metadata"]["personal"], bo_gone, "{t_bo}");
    let old: Value = sqlx::query_scalar("SELECT metadata -> 'personal' FROM ledger_g1.transfers WHERE id = 't-bo'")
        .fetch_one(stack.db.pool())
        .await
        .expect("the replaced generation's row");
    assert_eq!(old, bo_gone);

    // A patch removes personal data like any key, whoever its subject.
    let (status, removed) = stack
        .patch("/v1/transfers/t-bo/metadata", json!({"personal": null}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{removed}");
    let (_, t_bo) = stack
        .get_at("/v1/transfers/t-bo", removed["position"].as_i64().expect("position"))
        .await;
    assert_eq!(t_bo["metadata"], json!({}), "{t_bo}");
    assert_read_model_matches_log(&stack.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_personal_data_is_refused_naming_the_field_and_fails_its_chain() {
    let stack = Stack::start().await;
    let before = open_books(&stack).await;
    for personal in [
        json!("Ann"),
        json!({"subject": "customer-1"}),
        json!({"subject": "customer-1", "data": null}),
        json!({"subject": "not a pseudonym", "data": 1}),
        json!({"subject": "customer-1", "sealed": "AAAA"}),
        json!({"subject": "customer-1", "data": 1, "erased": true}),
    ] {
        let reply = stack
            .patch("/v1/accounts/alice/metadata", json!({"personal": personal}))
            .await;
        let details = assert_error(&reply, 400, "validation_failed");
        assert_eq!(details["field"], "metadata.personal", "{personal}: {details}");
    }
    let reply = stack.post("/v1/subjects/not%20a%20pseudonym/erase", json!({})).await;
    assert_eq!(assert_error(&reply, 400, "validation_failed")["field"], "id");
    assert_eq!(head(&stack).await, before, "nothing refused is written");

    // In a batch, the item fails alone, or with its chain.
    let item = |id: &str, personal: Value, chain: Option<&str>| {
        json!({"id": id, "postings": [{"debit": "bank", "credit": "alice", "amount": 1}],
               "metadata": {"personal": personal}, "chain": chain})
    };
    let (status, reply) = stack
        .post(
            "/v1/transfers/batch",
            json!({"transfers": [
                item("b-ok", json!({"subject": "customer-3", "data": "x"}), None),
                item("b-bad", json!("x"), None),
                item("c-ok", json!({"subject": "customer-3", "data": "y"}), Some("c")),
                item("c-bad", json!({"subject": "customer-3"}), Some("c")),
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let results = &reply["results"];
    assert!(results[0]["position"].is_i64(), "{reply}");
    assert_eq!(
        results[1]["error"]["details"]["field"], "transfers[1].metadata.personal",
        "{reply}"
    );
    assert_eq!(results[2]["error"]["code"], "linked_failed", "{reply}");
    assert_eq!(
        results[3]["error"]["details"]["field"], "transfers[3].metadata.personal",
        "{reply}"
    );
    assert_eq!(head(&stack).await, before + 1, "only b-ok is written");
}
