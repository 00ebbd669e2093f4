//! query-api's connection pool against a real PostgreSQL: connections come back without a round
//! trip when their query ran to the end, and a query cut short never leaves its answer behind for
//! the next one.

use std::str::FromStr;
use std::time::Duration;

use partida_eventstore::ReadPool;
use partida_testkit::TestDb;
use sqlx::postgres::PgConnectOptions;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn pool(db: &TestDb, max_connections: u32, acquire_timeout: Duration) -> Result<ReadPool, sqlx::Error> {
    Ok(ReadPool::new(
        PgConnectOptions::from_str(db.url())?,
        max_connections,
        acquire_timeout,
    ))
}

async fn backend(pool: &ReadPool) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(pool).await
}

/// Returns once another session runs a statement containing `marker`.
async fn until_running(db: &TestDb, marker: &str) {
    loop {
        let running: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%' || $1 || '%' \
                               AND pid <> pg_backend_pid())",
        )
        .bind(marker)
        .fetch_one(db.pool())
        .await
        .unwrap_or(false);
        if running {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn consecutive_queries_share_one_connection() -> TestResult {
    let db = TestDb::new().await;
    let pool = pool(&db, 4, Duration::from_secs(5))?;
    let first = backend(&pool).await?;
    for _ in 0..5 {
        assert_eq!(backend(&pool).await?, first);
    }
    let rows: Vec<(i32,)> = sqlx::query_as("SELECT generate_series(1, 3)").fetch_all(&pool).await?;
    assert_eq!(rows, [(1,), (2,), (3,)]);
    assert_eq!(backend(&pool).await?, first);
    pool.close().await;
    db.drop_database().await;
    Ok(())
}

#[tokio::test]
async fn a_cancelled_query_leaves_no_answer_behind() -> TestResult {
    let db = TestDb::new().await;
    let pool = pool(&db, 1, Duration::from_secs(30))?;
    let before = backend(&pool).await?;
    let cancelled = sqlx::query_scalar::<_, i32>("SELECT 1 FROM pg_sleep(2) /* to cancel */").fetch_one(&pool);
    tokio::select! {
        answer = cancelled => panic!("the query answered before it was cancelled: {answer:?}"),
        () = until_running(&db, "to cancel */") => {}
    }
    // The one connection is checked, then answers its next question, not the cancelled one.
    let two: i32 = sqlx::query_scalar("SELECT 2").fetch_one(&pool).await?;
    assert_eq!(two, 2);
    assert_eq!(backend(&pool).await?, before);
    pool.close().await;
    db.drop_database().await;
    Ok(())
}

#[tokio::test]
async fn a_failed_query_leaves_the_connection_usable() -> TestResult {
    let db = TestDb::new().await;
    let pool = pool(&db, 1, Duration::from_secs(5))?;
    let failed = sqlx::query_scalar::<_, i32>("SELECT 1 / 0").fetch_one(&pool).await;
    let code = failed
        .err()
        .and_then(|e| e.as_database_error().and_then(|d| d.code()).map(|c| c.into_owned()));
    assert_eq!(code.as_deref(), Some("22012"));
    let three: i32 = sqlx::query_scalar("SELECT 3").fetch_one(&pool).await?;
    assert_eq!(three, 3);
    pool.close().await;
    db.drop_database().await;
    Ok(())
}

#[tokio::test]
async fn a_full_pool_times_out_and_a_closed_one_refuses() -> TestResult {
    let db = TestDb::new().await;
    let pool = pool(&db, 1, Duration::from_secs(1))?;
    let mut held = pool.acquire().await?;
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *held)
        .await?;
    let waited = pool.acquire().await;
    assert!(matches!(waited, Err(sqlx::Error::PoolTimedOut)), "{:?}", waited.err());
    // Dropped without being marked settled: checked, then handed out again.
    drop(held);
    assert_eq!(
        sqlx::query_scalar::<_, i32>("SELECT pg_backend_pid()")
            .fetch_one(&pool)
            .await?,
        pid
    );
    pool.close().await;
    assert!(matches!(pool.acquire().await, Err(sqlx::Error::PoolClosed)));
    db.drop_database().await;
    Ok(())
}
