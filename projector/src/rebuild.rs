//! `projector rebuild <projection>`: replays the whole log into a fresh generation of the read
//! tables while the live one keeps serving, catches up, then flips the pointer.
//!
//! The flip is one row update under the pointer's row lock, which is also what every live apply
//! takes first: the live projector waits for the flip, then follows the new generation. Readers
//! switch by following the pointer, so no DDL touches a table anyone is reading (on a hot standby,
//! a rename or `CREATE OR REPLACE VIEW` would cancel running queries).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use std::str::FromStr;
use tokio::sync::mpsc;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

use crate::PROJECTION;
use crate::apply::{
    Cache, Changes, Decoded, EntryRow, TABLES, apply_events, read_after, schema_name, write_changes, write_entries,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    /// The generation now live.
    pub generation: i32,
    /// The position the new generation had reached when it went live.
    pub checkpoint: i64,
    pub elapsed: Duration,
}

/// Held by the one rebuild allowed to run ("partida" + rebuild 1).
const REBUILD_LOCK: i64 = 0x7061_7274_6964_6201;

pub async fn rebuild(database_url: &str, projection: &str, batch_size: i64) -> anyhow::Result<RebuildReport> {
    if projection != PROJECTION {
        bail!("unknown projection {projection:?}; the projections are: {PROJECTION}");
    }
    let started = Instant::now();
    // One rebuild at a time: a second one would drop and refill the generation the first just
    // made live. The lock is held by this session until the rebuild ends, however it ends.
    let mut guard = PgConnection::connect(database_url).await.context("connecting")?;
    let alone: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(REBUILD_LOCK)
        .fetch_one(&mut guard)
        .await?;
    if !alone {
        bail!("another rebuild of {projection} is running");
    }
    // Replaying tens of thousands of events per statement takes seconds by design: only warn
    // about statements slower than a minute.
    let options = PgConnectOptions::from_str(database_url)
        .context("parsing the database URL")?
        .log_slow_statements(log::LevelFilter::Warn, Duration::from_secs(60));
    // The reader, and the two writers of the replay.
    let pool = PgPoolOptions::new()
        .max_connections(3)
        .connect_with(options)
        .await
        .context("connecting")?;
    let live: i32 = sqlx::query_scalar("SELECT generation FROM projections WHERE name = $1")
        .bind(PROJECTION)
        .fetch_one(&pool)
        .await?;
    let next = live + 1;
    drop_generations_before(&pool, live).await?;
    create_generation(&pool, live, next).await?;
    let shadow = schema_name(next);

    // Replay in batches of their own while the live tables keep serving.
    // The entries table, the largest, gets its key after the bulk load: one sorted build instead
    // of a random insert into the index per row. It is back before anyone can read the tables.
    let entries_key = drop_entries_key(&pool, &shadow).await?;
    let mut checkpoint = replay(&pool, &shadow, batch_size).await?;
    restore_entries_key(&pool, &shadow, &entries_key).await?;
    tracing::info!(
        checkpoint,
        "replayed into {shadow}; catching up under the pointer's lock"
    );

    // The last stretch and the flip, under the pointer's lock.
    let mut tx = pool.begin().await?;
    let generation: i32 = sqlx::query_scalar("SELECT generation FROM projections WHERE name = $1 FOR UPDATE")
        .bind(PROJECTION)
        .fetch_one(&mut *tx)
        .await?;
    if generation != live {
        bail!("another rebuild switched the projection to generation {generation} meanwhile");
    }
    loop {
        let reached = apply_after(&mut tx, &shadow, checkpoint, batch_size).await?;
        if reached == checkpoint {
            break;
        }
        checkpoint = reached;
    }
    sqlx::query("UPDATE projections SET generation = $1, checkpoint = $2, updated_at = now() WHERE name = $3")
        .bind(next)
        .bind(checkpoint)
        .bind(PROJECTION)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    pool.close().await;
    let _ = guard.close().await;
    Ok(RebuildReport {
        generation: next,
        checkpoint,
        elapsed: started.elapsed(),
    })
}

/// Replays the log from the start into `schema` in overlapping stages, until a read finds less
/// than a full batch; returns the position reached. Reading batch N+2, computing N+1 from the
/// account rows in memory and writing N overlap, and the writing itself takes two connections:
/// the entries (the most rows, only ever inserted) on one, everything else on the other. A
/// single writer's backend had bounded the rebuild with the machine a fifth idle.
async fn replay(pool: &PgPool, schema: &str, batch_size: i64) -> anyhow::Result<i64> {
    let (events_tx, mut events_rx) = mpsc::channel::<Decoded>(2);
    let (changes_tx, mut changes_rx) = mpsc::channel::<(i64, Changes)>(2);
    let (entries_tx, mut entries_rx) = mpsc::channel::<Vec<EntryRow>>(2);
    let reader = tokio::spawn({
        let pool = pool.clone();
        async move {
            let mut conn = pool.acquire().await?;
            let mut after = 0;
            loop {
                let events = read_after(&mut conn, after, batch_size).await?;
                let Some(&(last, ..)) = events.last() else {
                    break;
                };
                let full = events.len() as i64 == batch_size;
                after = last;
                if events_tx.send(events).await.is_err() || !full {
                    break;
                }
            }
            anyhow::Ok(())
        }
    });
    let computer = tokio::spawn(async move {
        let mut cache = Cache::default();
        while let Some(events) = events_rx.recv().await {
            let last = events.last().map_or(0, |&(position, ..)| position);
            let changes = Changes::compute_cached(&mut cache, &events);
            if changes_tx.send((last, changes)).await.is_err() {
                break;
            }
        }
        anyhow::Ok(())
    });
    let entries_writer = tokio::spawn({
        let (pool, schema) = (pool.clone(), schema.to_owned());
        async move {
            while let Some(entries) = entries_rx.recv().await {
                let mut tx = bulk_transaction(&pool).await?;
                write_entries(&mut tx, &schema, &entries).await?;
                tx.commit().await?;
            }
            anyhow::Ok(())
        }
    });
    let written = async {
        let mut checkpoint = 0;
        while let Some((last, mut changes)) = changes_rx.recv().await {
            let entries = std::mem::take(&mut changes.entries);
            if entries_tx.send(entries).await.is_err() {
                break;
            }
            let mut tx = bulk_transaction(pool).await?;
            write_changes(&mut tx, schema, &changes).await?;
            tx.commit().await?;
            checkpoint = last;
            tracing::info!(checkpoint, "rebuilding {schema}");
        }
        anyhow::Ok(checkpoint)
    }
    .await;
    if let Err(error) = written {
        // The other stages would go on filling a generation that will never be used.
        for stage in [&reader, &computer, &entries_writer] {
            stage.abort();
        }
        return Err(error);
    }
    drop(entries_tx);
    entries_writer.await.context("the entries writer panicked")??;
    reader.await.context("the reader panicked")??;
    computer.await.context("the replay panicked")??;
    written
}

/// A transaction for a rebuild's bulk writes. Nobody reads the new generation before the flip,
/// whose commit is synchronous and so makes everything written before it durable: these commits
/// need not wait for their WAL to reach the disk.
async fn bulk_transaction(pool: &PgPool) -> anyhow::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// Applies up to `limit` events after `checkpoint` into `schema`; returns the new checkpoint.
async fn apply_after(conn: &mut PgConnection, schema: &str, checkpoint: i64, limit: i64) -> anyhow::Result<i64> {
    let events = read_after(&mut *conn, checkpoint, limit).await?;
    let Some(&(last, ..)) = events.last() else {
        return Ok(checkpoint);
    };
    apply_events(conn, schema, &events).await?;
    Ok(last)
}

/// The entries table's key constraint as (name, definition); dropped until the bulk load is done.
async fn drop_entries_key(pool: &PgPool, schema: &str) -> anyhow::Result<(String, String)> {
    let (name, definition): (String, String) = sqlx::query_as(&format!(
        "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint \
          WHERE conrelid = '{schema}.entries'::regclass AND contype = 'p'"
    ))
    .fetch_one(pool)
    .await
    .context("reading the entries table's key")?;
    sqlx::query(&format!("ALTER TABLE {schema}.entries DROP CONSTRAINT {name}"))
        .execute(pool)
        .await?;
    Ok((name, definition))
}

async fn restore_entries_key(pool: &PgPool, schema: &str, (name, definition): &(String, String)) -> anyhow::Result<()> {
    sqlx::query(&format!(
        "ALTER TABLE {schema}.entries ADD CONSTRAINT {name} {definition}"
    ))
    .execute(pool)
    .await?;
    Ok(())
}

/// An empty copy of the live generation's tables, indexes included.
async fn create_generation(pool: &PgPool, live: i32, next: i32) -> anyhow::Result<()> {
    let (live, next) = (schema_name(live), schema_name(next));
    let mut tx = pool.begin().await?;
    // A rebuild that died half-way left its generation behind; nobody reads it.
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {next} CASCADE"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA {next}")).execute(&mut *tx).await?;
    for table in TABLES {
        sqlx::query(&format!(
            "CREATE TABLE {next}.{table} (LIKE {live}.{table} INCLUDING ALL)"
        ))
        .execute(&mut *tx)
        .await?;
        // LIKE copies columns, constraints and indexes but not storage options such as the
        // fillfactor that keeps balance updates heap-only.
        let options: Option<Vec<String>> = sqlx::query_scalar(&format!(
            "SELECT reloptions FROM pg_class WHERE oid = '{live}.{table}'::regclass"
        ))
        .fetch_one(&mut *tx)
        .await?;
        if let Some(options) = options.filter(|o| !o.is_empty()) {
            sqlx::query(&format!("ALTER TABLE {next}.{table} SET ({})", options.join(", ")))
                .execute(&mut *tx)
                .await?;
        }
    }
    // Grants are not copied by LIKE: query-api's role reads every generation, the following
    // projector's writes them (migrations 0010 and 0016).
    for grant in [
        format!("GRANT USAGE ON SCHEMA {next} TO partida_reader, partida_projector"),
        format!("GRANT SELECT ON ALL TABLES IN SCHEMA {next} TO partida_reader"),
        format!("GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA {next} TO partida_projector"),
    ] {
        sqlx::query(&grant).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Generations older than the live one stopped being read at the previous flip (readers follow
/// the pointer within a second), so they can go.
async fn drop_generations_before(pool: &PgPool, live: i32) -> anyhow::Result<()> {
    let schemas: Vec<String> =
        sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname ~ '^ledger_g[0-9]+$'")
            .fetch_all(pool)
            .await?;
    for schema in schemas {
        let generation: i32 = schema.trim_start_matches("ledger_g").parse().unwrap_or(i32::MAX);
        if generation < live {
            sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(pool)
                .await?;
        }
    }
    Ok(())
}
