//! TestDb against a real PostgreSQL: run with `cargo xtask test -- -p partida-testkit`.

use partida_eventstore::MIGRATOR;
use partida_testkit::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_test_databases_are_distinct_migrated_and_isolated() {
    let (a, b) = tokio::join!(TestDb::new(), TestDb::new());
    assert_ne!(a.name(), b.name());
    assert_ne!(a.url(), b.url());

    let migrations = MIGRATOR
        .iter()
        .filter(|migration| migration.migration_type.is_up_migration())
        .count();
    for db in [&a, &b] {
        let current: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(db.pool())
            .await
            .expect("current_database()");
        assert_eq!(current, db.name());
        let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(db.pool())
            .await
            .expect("reading _sqlx_migrations");
        assert_eq!(usize::try_from(applied).ok(), Some(migrations));
    }

    sqlx::query("CREATE TABLE only_in_a (id int)")
        .execute(a.pool())
        .await
        .expect("creating a table in a");
    let in_b: Option<String> = sqlx::query_scalar("SELECT to_regclass('only_in_a')::text")
        .fetch_one(b.pool())
        .await
        .expect("looking for the table in b");
    assert_eq!(in_b, None, "a table created in one test database leaked into another");

    a.drop_database().await;
    b.drop_database().await;
}

/// A second test in the same binary runs on its own Tokio runtime: the template found by the
/// first one must still be usable (no connection is shared between runtimes).
#[tokio::test]
async fn the_url_reaches_the_same_database_as_the_pool() {
    let db = TestDb::new().await;
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(db.url())
        .await
        .expect("connecting with url()");
    let current: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut conn)
        .await
        .expect("current_database()");
    assert_eq!(current, db.name());
    assert_ne!(db.admin_url(), db.url());
}
