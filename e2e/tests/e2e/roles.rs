//! The database refuses what a service's role must never do, and the log's triggers refuse its
//! owner too. (Every other e2e test runs command-api, query-api and the projector as these
//! roles, so they also show the roles are enough to do the job.)

use partida_e2e::{Stack, open_books, transfer};
use partida_testkit::{LOGIN_PASSWORD, ServiceRole, TestDb};
use sqlx::{Connection, PgConnection};

async fn connect(url: &str) -> PgConnection {
    PgConnection::connect(url).await.expect("connect")
}

/// The SQLSTATE `statement` fails with, or `None` when it succeeds.
async fn refusal(conn: &mut PgConnection, statement: &str) -> Option<String> {
    match sqlx::raw_sql(statement).execute(&mut *conn).await {
        Ok(_) => None,
        Err(sqlx::Error::Database(e)) => e.code().map(|code| code.into_owned()),
        Err(e) => panic!("{statement}: {e}"),
    }
}

const PERMISSION_DENIED: &str = "42501";
const RESTRICT_VIOLATION: &str = "23001";
const CHECK_VIOLATION: &str = "23514";

async fn assert_refused(conn: &mut PgConnection, statement: &str, code: &str) {
    assert_eq!(refusal(conn, statement).await.as_deref(), Some(code), "{statement}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_appends_and_keeps_write_state_and_nothing_else() {
    let stack = Stack::start().await;
    open_books(&stack).await;
    transfer(&stack, "t1", &[("bank", "alice", 5)]).await;
    let mut writer = connect(&stack.db.url_as(ServiceRole::Writer)).await;
    assert_eq!(refusal(&mut writer, "SELECT count(*) FROM events").await, None);
    for statement in [
        "UPDATE events SET data = '{}' WHERE position = 1",
        "DELETE FROM events",
        "TRUNCATE events",
        "ALTER TABLE events DISABLE TRIGGER USER",
        "DELETE FROM write_accounts",
        "DELETE FROM checkpoints",
        "DELETE FROM subject_keys",
        "UPDATE api_tokens SET revoked_at = NULL",
        "INSERT INTO api_tokens (id, subject, role, token_hash) VALUES (gen_random_uuid(), 'x', 'admin', '\\x00')",
        "UPDATE projections SET checkpoint = 0",
        "UPDATE ledger_g1.accounts SET balance = 0",
        "CREATE TABLE public.anything (x int)",
    ] {
        assert_refused(&mut writer, statement, PERMISSION_DENIED).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reader_only_selects() {
    let stack = Stack::start().await;
    open_books(&stack).await;
    let mut reader = connect(&stack.db.url_as(ServiceRole::Reader)).await;
    for statement in [
        "SELECT count(*) FROM events",
        "SELECT count(*) FROM ledger_g1.accounts",
        "SELECT count(*) FROM checkpoints",
    ] {
        assert_eq!(refusal(&mut reader, statement).await, None, "{statement}");
    }
    for statement in [
        "INSERT INTO events SELECT * FROM events WHERE position = 1",
        "UPDATE event_head SET position = position",
        "UPDATE ledger_g1.accounts SET balance = 0",
        "DELETE FROM ledger_g1.entries",
        "UPDATE projections SET checkpoint = 0",
        "INSERT INTO idempotency_keys SELECT * FROM idempotency_keys",
        "SELECT count(*) FROM write_accounts",
        "SELECT count(*) FROM idempotency_keys",
        "SELECT count(*) FROM subject_keys",
    ] {
        assert_refused(&mut reader, statement, PERMISSION_DENIED).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_projector_writes_the_read_tables_and_nothing_else() {
    let stack = Stack::start().await;
    open_books(&stack).await;
    transfer(&stack, "t1", &[("bank", "alice", 5)]).await;
    let mut projector = connect(&stack.db.url_as(ServiceRole::Projector)).await;
    for statement in [
        "SELECT count(*) FROM events",
        "SELECT count(*) FROM subject_keys",
        "UPDATE projections SET updated_at = updated_at",
        "UPDATE ledger_g1.accounts SET updated_at = updated_at",
    ] {
        assert_eq!(refusal(&mut projector, statement).await, None, "{statement}");
    }
    for statement in [
        "INSERT INTO events SELECT * FROM events WHERE position = 1",
        "UPDATE event_head SET position = position",
        "UPDATE projections SET generation = 99",
        "UPDATE write_accounts SET debits = 0",
        "INSERT INTO subject_keys (subject, key) VALUES ('x', '\\x00')",
        "SELECT count(*) FROM api_tokens",
        "SELECT count(*) FROM idempotency_keys",
        "DELETE FROM ledger_g1.entries",
        "DROP SCHEMA ledger_g1 CASCADE",
        "CREATE SCHEMA ledger_g99",
        "CREATE TABLE public.anything (x int)",
    ] {
        assert_refused(&mut projector, statement, PERMISSION_DENIED).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_refuses_its_owner_too() {
    let db = TestDb::new().await;
    let owner = format!("{}_owner", db.name());
    let mut admin = connect(db.url()).await;
    for statement in [
        format!("CREATE ROLE \"{owner}\" LOGIN PASSWORD '{LOGIN_PASSWORD}'"),
        format!("GRANT USAGE ON SCHEMA public TO \"{owner}\""),
        format!("ALTER TABLE events OWNER TO \"{owner}\""),
        format!("ALTER TABLE event_head OWNER TO \"{owner}\""),
    ] {
        sqlx::raw_sql(&statement)
            .execute(&mut admin)
            .await
            .expect("set up the owner");
    }
    sqlx::raw_sql(
        "INSERT INTO events (position, event_id, stream_id, stream_version, event_type, schema_version, data, \
         metadata, recorded_at, prev_hash, hash) VALUES (1, gen_random_uuid(), 's', 1, 'T', 1, '{}', '{}', now(), \
         decode(repeat('00', 32), 'hex'), decode(repeat('11', 32), 'hex')); \
         UPDATE event_head SET position = 1, hash = decode(repeat('11', 32), 'hex'), recorded_at = now()",
    )
    .execute(&mut admin)
    .await
    .expect("one event");
    let mut owner_conn = connect(&db.url_for_user(&owner)).await;
    for statement in [
        "UPDATE events SET data = '{\"forged\": true}' WHERE position = 1",
        "DELETE FROM events WHERE position = 1",
        "TRUNCATE events",
    ] {
        assert_refused(&mut owner_conn, statement, RESTRICT_VIOLATION).await;
    }
    assert_refused(&mut owner_conn, "UPDATE event_head SET position = 0", CHECK_VIOLATION).await;
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(db.pool())
        .await
        .expect("count");
    assert_eq!(events, 1);
}
