//! The projector under crashes, lost notifications and failover: the read tables always end equal
//! to a fresh replay of the log, every event applied exactly once.

use std::time::Duration;

use partida_e2e::{
    Stack, assert_read_model_matches_log, eventually, open_books, snapshot, start_projector_with, transfer,
};
use partida_testkit::{ServiceRole, TestDb};

const PATIENCE: Duration = Duration::from_secs(30);

fn config(db: &TestDb) -> projector::Config {
    let mut config = projector::Config::for_database(db.url_as(ServiceRole::Projector));
    config.batch_size = 7;
    config
}

async fn write_history(stack: &Stack, transfers: usize) -> i64 {
    open_books(stack).await;
    let mut last = transfer(stack, "seed", &[("bank", "alice", 1_000_000)]).await;
    for i in 0..transfers {
        let legs: &[(&str, &str, i64)] = if i % 3 == 0 {
            &[("alice", "bob", 7), ("alice", "bank", 1)]
        } else {
            &[("bank", "bob", 3)]
        };
        last = transfer(stack, &format!("t{i}"), legs).await;
    }
    let (status, _) = stack
        .post("/v1/transfers", serde_json::json!({"id": "undo-t1", "reverses": "t1", "postings": [{"debit": "bob", "credit": "bank", "amount": 3}]}))
        .await;
    assert_eq!(status.as_u16(), 201);
    last + 1
}

async fn checkpoint(db: &TestDb) -> i64 {
    sqlx::query_scalar("SELECT checkpoint FROM projections WHERE name = 'ledger'")
        .fetch_one(db.pool())
        .await
        .unwrap_or(-1)
}

/// The columns of `schema`'s tables that compare in byte order ("table.column").
async fn byte_order_columns(db: &TestDb, schema: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT table_name || '.' || column_name FROM information_schema.columns \
          WHERE table_schema = $1 AND collation_name = 'C' ORDER BY 1",
    )
    .bind(schema)
    .fetch_all(db.pool())
    .await
    .expect("collations")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projector_killed_mid_stream_leaves_tables_equal_to_a_fresh_replay() {
    let stack = Stack::without_projector().await;
    // About 90 batches of 7: far more than it can apply between two polls below.
    let head = write_history(&stack, 600).await;

    let (first, status) = start_projector_with(config(&stack.db)).await;
    eventually("a few batches applied", PATIENCE, || {
        let applied = status.batches_applied();
        async move { applied >= 3 }
    })
    .await;
    // Holding the pointer row stops the projector inside its next batch (its compare-and-set
    // waits for the row): the kill lands mid-batch, whatever the machine's speed.
    let mut pointer = stack.db.pool().begin().await.unwrap();
    sqlx::query("SELECT checkpoint FROM projections WHERE name = 'ledger' FOR UPDATE")
        .execute(&mut *pointer)
        .await
        .unwrap();
    first.kill().await;
    let stopped_at = checkpoint(&stack.db).await;
    pointer.rollback().await.unwrap();
    assert!(stopped_at < head, "killed before the end ({stopped_at} of {head})");

    let (_second, _) = start_projector_with(config(&stack.db)).await;
    eventually("caught up after the crash", PATIENCE, || async {
        checkpoint(&stack.db).await == head
    })
    .await;
    assert_read_model_matches_log(&stack.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_notifications_polling_alone_catches_up() {
    let mut stack = Stack::without_projector().await;
    let mut polling = config(&stack.db);
    polling.listen_notifications = false;
    polling.poll_ms = 50;
    stack.projector = Some(start_projector_with(polling).await.0);
    let head = write_history(&stack, 10).await;
    let (status, bob) = stack.get_at("/v1/accounts/bob", head).await;
    assert_eq!(status.as_u16(), 200, "{bob}");
    assert_read_model_matches_log(&stack.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_and_nothing_is_applied_twice() {
    let mut stack = Stack::without_projector().await;
    let (a, a_status) = start_projector_with(config(&stack.db)).await;
    let (b, b_status) = start_projector_with(config(&stack.db)).await;
    eventually("one leader", PATIENCE, || {
        let leaders = [a_status.is_leader(), b_status.is_leader()]
            .iter()
            .filter(|l| **l)
            .count();
        async move { leaders == 1 }
    })
    .await;
    let (leader, standby_status, standby) = if a_status.is_leader() {
        (a, b_status.clone(), b)
    } else {
        (b, a_status.clone(), a)
    };
    stack.projector = Some(standby);
    let middle = write_history(&stack, 40).await;
    leader.kill().await;
    eventually("the standby leads", PATIENCE, || {
        let leads = standby_status.is_leader();
        async move { leads }
    })
    .await;
    let mut head = middle;
    for i in 0..20 {
        head = transfer(&stack, &format!("after-{i}"), &[("bank", "alice", 1)]).await;
    }
    eventually("caught up after failover", PATIENCE, || async {
        checkpoint(&stack.db).await == head
    })
    .await;
    assert_read_model_matches_log(&stack.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entries_page_is_read_from_the_key_alone() {
    let stack = Stack::start().await;
    let head = write_history(&stack, 30).await;
    eventually("caught up", PATIENCE, || async { checkpoint(&stack.db).await == head }).await;
    // The table is two pages here, which a scan would read as cheaply: ask for the index, and
    // check that PostgreSQL can answer the page from it alone (no column missing from the key).
    // Whether it then visits the heap depends on the visibility map, that is on vacuums and on
    // the oldest snapshot anywhere that holds them back, which this shared cluster does not fix.
    let mut conn = stack.db.pool().acquire().await.expect("connection");
    sqlx::raw_sql("SET enable_seqscan = off; SET enable_bitmapscan = off")
        .execute(&mut *conn)
        .await
        .expect("settings");
    for descending in [true, false] {
        let sql = query_api::entries_page_sql("ledger_g1", descending, 20);
        let (plan,): (serde_json::Value,) = sqlx::query_as(&format!("EXPLAIN (ANALYZE, FORMAT JSON) {sql}"))
            .bind("bob")
            .bind(if descending { i64::MAX } else { -1 })
            .bind(if descending { i32::MAX } else { -1 })
            .fetch_one(&mut *conn)
            .await
            .expect("explain");
        let scan = &plan[0]["Plan"]["Plans"][0];
        assert_eq!(scan["Node Type"], "Index Only Scan", "{plan}");
        assert_eq!(scan["Actual Rows"], 20, "{plan}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_equals_the_live_tables_and_readers_follow_it() {
    let stack = Stack::start().await;
    let head = write_history(&stack, 60).await;
    eventually("caught up", PATIENCE, || async { checkpoint(&stack.db).await == head }).await;
    let live = snapshot(&stack.db, "ledger_g1").await;
    assert!(live.len() > 100);

    let report = projector::rebuild(stack.db.url(), "ledger", 7).await.expect("rebuild");
    assert_eq!((report.generation, report.checkpoint), (2, head));
    assert_eq!(
        snapshot(&stack.db, "ledger_g2").await,
        live,
        "the rebuilt generation equals the live one"
    );
    for (table, expected) in [
        ("accounts", "fillfactor=50"),
        ("entries", "autovacuum_vacuum_insert_scale_factor=0.02"),
    ] {
        let options: Option<Vec<String>> = sqlx::query_scalar(&format!(
            "SELECT reloptions FROM pg_class WHERE oid = 'ledger_g2.{table}'::regclass"
        ))
        .fetch_one(stack.db.pool())
        .await
        .expect("reloptions");
        assert_eq!(
            options,
            Some(vec![expected.to_owned()]),
            "{table}'s options carried over"
        );
    }
    let key: Option<String> = sqlx::query_scalar(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint \
          WHERE conrelid = 'ledger_g2.entries'::regclass AND contype = 'p'",
    )
    .fetch_optional(stack.db.pool())
    .await
    .expect("constraint");
    assert_eq!(
        key.as_deref(),
        Some(
            "PRIMARY KEY (account_id, \"position\", seq) \
             INCLUDE (transfer_id, side, amount, debits, credits, balance, recorded_at, effective_at)"
        ),
        "the entries key is back, with the columns a page is read from"
    );
    let identifiers = byte_order_columns(&stack.db, "ledger_g1").await;
    assert!(
        identifiers.contains(&"entries.account_id".to_owned()),
        "{identifiers:?}"
    );
    assert_eq!(
        byte_order_columns(&stack.db, "ledger_g2").await,
        identifiers,
        "identifiers keep byte order"
    );

    // The running projector follows the flip, and a read-your-writes read sees the new generation.
    let next = transfer(&stack, "after-rebuild", &[("bank", "bob", 5)]).await;
    let (_, bob) = stack.get_at("/v1/accounts/bob", next).await;
    assert_eq!(bob["last_position"], next, "{bob}");
    assert_read_model_matches_log(&stack.db).await;

    // A second rebuild drops the generation no reader uses any more.
    let again = projector::rebuild(stack.db.url(), "ledger", 1_000)
        .await
        .expect("rebuild");
    assert_eq!(again.generation, 3);
    let schemas: Vec<String> =
        sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'ledger_g%' ORDER BY 1")
            .fetch_all(stack.db.pool())
            .await
            .unwrap_or_default();
    assert_eq!(schemas, vec!["ledger_g2", "ledger_g3"]);
    assert!(projector::rebuild(stack.db.url(), "nope", 10).await.is_err());

    // One rebuild at a time.
    let mut other = stack.db.pool().acquire().await.expect("connection");
    sqlx::query("SELECT pg_advisory_lock(x'7061727469646201'::bigint)")
        .execute(&mut *other)
        .await
        .expect("lock");
    let refused = projector::rebuild(stack.db.url(), "ledger", 1_000)
        .await
        .expect_err("a second rebuild");
    assert!(refused.to_string().contains("another rebuild"), "{refused}");
}
