//! Effective dates through every layer: transfers dated before or a little after they are
//! recorded, balances and the trial balance by effective time as known at a position, and the
//! version 2 events they are written as.

use std::time::{SystemTime, UNIX_EPOCH};

use partida_e2e::{Stack, assert_error, assert_read_model_matches_log, open_books, transfer};
use partida_eventstore::{format_timestamp, micros_to_datetime};
use reqwest::StatusCode;
use serde_json::{Value, json};

const HOUR: i64 = 3_600_000_000;
/// Well before anything the test records.
const LAST_YEAR_END: &str = "2025-12-31T12:00:00.000000Z";

fn now_micros() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970");
    i64::try_from(since.as_micros()).expect("fits")
}

fn rfc3339(micros: i64) -> String {
    format_timestamp(micros_to_datetime(micros))
}

fn dated(id: &str, amount: i64, effective_at: &str) -> Value {
    json!({"id": id, "effective_at": effective_at,
           "postings": [{"debit": "alice", "credit": "bob", "amount": amount}]})
}

/// alice's (debits, credits, balance) from a balance or a trial balance line.
fn totals(body: &Value) -> (i64, i64, i64) {
    let get = |key: &str| body[key].as_i64().unwrap_or_else(|| panic!("{key} in {body}"));
    (get("debits"), get("credits"), get("balance"))
}

async fn balance(stack: &Stack, query: &str) -> (i64, i64, i64) {
    let (status, body) = stack.get(&format!("/v1/accounts/alice/balance?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    totals(&body)
}

async fn books(stack: &Stack, query: &str) -> Value {
    let (status, body) = stack.get(&format!("/v1/trial-balance?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    let eur = body["assets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["asset"] == "EUR")
        .cloned()
        .unwrap_or_else(|| panic!("EUR in {body}"));
    assert_eq!(eur["balanced"], true, "{body}");
    eur
}

fn line<'a>(books: &'a Value, account: &str) -> &'a Value {
    books["accounts"]
        .as_array()
        .and_then(|lines| lines.iter().find(|l| l["id"] == account))
        .unwrap_or_else(|| panic!("{account} in {books}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balances_and_books_by_effective_time_as_known_at_a_position() {
    let stack = Stack::start().await;
    open_books(&stack).await;
    let funded = transfer(&stack, "fund", &[("bank", "alice", 10_000)]).await;

    // Back-dated to last year, and dated half a day ahead.
    let (status, back) = stack.post("/v1/transfers", dated("back", 300, LAST_YEAR_END)).await;
    assert_eq!(status, StatusCode::CREATED, "{back}");
    let back_at = back["position"].as_i64().expect("position");
    let ahead_time = rfc3339(now_micros() + 12 * HOUR);
    let ahead = dated("ahead", 200, &ahead_time);
    let (status, written) = stack.post("/v1/transfers", ahead.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{written}");
    let last = written["position"].as_i64().expect("position");

    // The same effective time is the same transfer; another one, or none, is a conflict.
    let (status, again) = stack.post("/v1/transfers", ahead).await;
    assert_eq!((status, &again["position"]), (StatusCode::OK, &written["position"]));
    let other = dated("ahead", 200, &rfc3339(now_micros()));
    assert_error(&stack.post("/v1/transfers", other).await, 409, "idempotency_conflict");
    let undated = json!({"id": "ahead", "postings": [{"debit": "alice", "credit": "bob", "amount": 200}]});
    assert_error(&stack.post("/v1/transfers", undated).await, 409, "idempotency_conflict");

    // More than a day ahead is refused and writes nothing; malformed times and dated holds are 400s.
    let too_late = rfc3339(now_micros() + 48 * HOUR);
    let details = assert_error(
        &stack.post("/v1/transfers", dated("late", 1, &too_late)).await,
        422,
        "effective_too_late",
    );
    assert_eq!(details["transfer"], "late");
    // Not a time, or one RFC 3339 cannot write in UTC (year 0).
    for bad in ["yesterday", "0001-01-01T00:30:00+01:00"] {
        let details = assert_error(
            &stack.post("/v1/transfers", dated("bad", 1, bad)).await,
            400,
            "validation_failed",
        );
        assert_eq!(details["field"], "effective_at", "{bad}");
    }
    let mut dated_hold = dated("hold", 1, LAST_YEAR_END);
    dated_hold["pending"] = json!(true);
    let details = assert_error(&stack.post("/v1/transfers", dated_hold).await, 400, "validation_failed");
    assert_eq!(details["field"], "effective_at");
    let head: i64 = sqlx::query_scalar("SELECT position FROM event_head")
        .fetch_one(stack.db.pool())
        .await
        .expect("head");
    assert_eq!(head, last, "nothing refused was written");

    // Now: everything recorded counts, whatever its effective time.
    stack.get_at("/v1/accounts/alice", last).await;
    assert_eq!(balance(&stack, "").await, (500, 10_000, 9_500));
    // By effective time, as known now: last year holds only the back-dated leg; now holds
    // everything but the leg dated ahead; tomorrow everything.
    assert_eq!(
        balance(&stack, &format!("as_of_effective={LAST_YEAR_END}")).await,
        (300, 0, -300)
    );
    let now = rfc3339(now_micros());
    assert_eq!(
        balance(&stack, &format!("as_of_effective={now}")).await,
        (300, 10_000, 9_700)
    );
    let tomorrow = rfc3339(now_micros() + 24 * HOUR);
    assert_eq!(
        balance(&stack, &format!("as_of_effective={tomorrow}")).await,
        (500, 10_000, 9_500)
    );
    // Bi-temporal: what was known at the funding about last year (nothing), and about now.
    assert_eq!(
        balance(&stack, &format!("as_of_effective={LAST_YEAR_END}&at_position={funded}")).await,
        (0, 0, 0)
    );
    assert_eq!(
        balance(&stack, &format!("as_of_effective={now}&at_position={back_at}")).await,
        (300, 10_000, 9_700)
    );
    let (_, body) = stack
        .get(&format!(
            "/v1/accounts/alice/balance?as_of_effective={now}&at_position={funded}"
        ))
        .await;
    assert_eq!(
        (&body["at_position"], &body["as_of_effective"]),
        (&json!(funded), &json!(now))
    );

    // The books agree line by line with the balances, and stay balanced per asset.
    let by_now = books(&stack, &format!("as_of_effective={now}")).await;
    assert_eq!(totals(line(&by_now, "alice")), (300, 10_000, 9_700));
    assert_eq!(totals(line(&by_now, "bob")), (0, 300, 300));
    let last_year = books(&stack, &format!("as_of_effective={LAST_YEAR_END}&at_position={last}")).await;
    assert_eq!(totals(line(&last_year, "alice")), (300, 0, -300));
    assert_eq!(totals(line(&last_year, "bank")), (0, 0, 0));
    assert_eq!(
        (&last_year["debits"], &last_year["credits"]),
        (&json!(300), &json!(300))
    );
    // Year 10000 in UTC is no time either, rather than a silent 1970.
    for bad in ["soon", "9999-12-31T23:00:00-05:00"] {
        let details = assert_error(
            &stack.get(&format!("/v1/trial-balance?as_of_effective={bad}")).await,
            400,
            "validation_failed",
        );
        assert_eq!(details["field"], "as_of_effective", "{bad}");
    }

    // Entries and transfers say when they take effect.
    let (_, entries) = stack.get("/v1/accounts/alice/entries").await;
    let effective: Vec<(&str, &str)> = entries["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| Some((e["transfer_id"].as_str()?, e["effective_at"].as_str()?)))
        .collect();
    assert_eq!(effective[1], ("back", LAST_YEAR_END));
    assert_eq!(effective[2], ("ahead", ahead_time.as_str()));
    assert_eq!(
        entries["entries"][0]["effective_at"],
        entries["entries"][0]["recorded_at"]
    );
    let (_, back_view) = stack.get("/v1/transfers/back").await;
    assert_eq!(back_view["effective_at"], LAST_YEAR_END);

    // Dated transfers are version 2 events; undated ones stay version 1, readable by older readers.
    let versions: Vec<(String, i32)> = sqlx::query_as(
        "SELECT stream_id, schema_version FROM events WHERE event_type = 'TransferPosted' ORDER BY position",
    )
    .fetch_all(stack.db.pool())
    .await
    .expect("versions");
    assert_eq!(
        versions,
        vec![
            ("transfer:fund".to_owned(), 1),
            ("transfer:back".to_owned(), 2),
            ("transfer:ahead".to_owned(), 2)
        ]
    );
    assert_read_model_matches_log(&stack.db).await;
}
