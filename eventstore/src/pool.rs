//! Connection pools for the services' request paths.
//!
//! [`ReadPool`] serves query-api's reads. sqlx's own pool sends every connection a ping when it
//! comes back from a query (version 0.8 has no way to turn that off), to find the connections a
//! cancelled query left mid-protocol: a second round trip to PostgreSQL for every read. A
//! [`Lease`] knows whether its query ran to the end, and only a connection whose query did not
//! is checked before it is used again.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgQueryResult, PgRow, PgStatement, PgTypeInfo};
use sqlx::{Connection, Describe, Either, Execute, Executor, PgConnection, Postgres};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A pooled connection idle for less than this is handed out unchecked; one idle longer is pinged
/// first, and replaced if the ping fails (the server restarted, a proxy dropped it).
pub const TRUSTED_IDLE: Duration = Duration::from_secs(1);

/// sqlx pool options that check a connection's health only when it has sat idle. sqlx's default
/// pings every connection before handing it out: a round trip to PostgreSQL before every query,
/// which on a busy service checks connections that answered a moment ago.
pub fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move { Ok(meta.idle_for < TRUSTED_IDLE || conn.ping().await.is_ok()) })
        })
}

/// A pool of up to `max_connections` connections, opened as needed, most recently used first.
/// `&ReadPool` is an sqlx executor: each query leases a connection for itself.
#[derive(Clone)]
pub struct ReadPool(Arc<Shared>);

struct Shared {
    connect: PgConnectOptions,
    acquire_timeout: Duration,
    /// One permit per connection that may exist, leased or idle.
    slots: Arc<Semaphore>,
    idle: Mutex<Vec<Idle>>,
}

struct Idle {
    conn: PgConnection,
    since: Instant,
}

impl ReadPool {
    /// Opens no connection yet.
    pub fn new(connect: PgConnectOptions, max_connections: u32, acquire_timeout: Duration) -> Self {
        Self(Arc::new(Shared {
            connect,
            acquire_timeout,
            slots: Arc::new(Semaphore::new(max_connections.max(1) as usize)),
            idle: Mutex::new(Vec::new()),
        }))
    }

    /// A connection of its own until the lease drops. Waits at most the acquire timeout for a
    /// free slot and, if there is no idle connection, for a new one to open.
    pub async fn acquire(&self) -> Result<Lease, sqlx::Error> {
        tokio::time::timeout(self.0.acquire_timeout, self.lease())
            .await
            .unwrap_or(Err(sqlx::Error::PoolTimedOut))
    }

    async fn lease(&self) -> Result<Lease, sqlx::Error> {
        let slot = self
            .0
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        while let Some(Idle { mut conn, since }) = self.0.take_idle() {
            if since.elapsed() < TRUSTED_IDLE || conn.ping().await.is_ok() {
                return Ok(Lease::new(conn, &self.0, slot));
            }
        }
        let conn = PgConnection::connect_with(&self.0.connect).await?;
        Ok(Lease::new(conn, &self.0, slot))
    }

    /// Refuses new leases and closes the idle connections; leased ones close as they come back.
    pub async fn close(&self) {
        self.0.slots.close();
        let idle = std::mem::take(&mut *self.0.idle.lock().unwrap_or_else(PoisonError::into_inner));
        for Idle { conn, .. } in idle {
            let _ = conn.close().await;
        }
    }
}

impl Shared {
    fn take_idle(&self) -> Option<Idle> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop()
    }

    fn give_back(&self, conn: PgConnection) {
        if !self.slots.is_closed() {
            let idle = Idle {
                conn,
                since: Instant::now(),
            };
            self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(idle);
        }
    }
}

impl fmt::Debug for ReadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadPool")
            .field("free_slots", &self.0.slots.available_permits())
            .finish_non_exhaustive()
    }
}

/// A leased connection. Call [`settle`](Lease::settle) once its last query has been read to
/// the end; dropped unsettled (its query failed or was cancelled), it is pinged before anyone
/// else may use it, and closed if that fails.
pub struct Lease {
    conn: Option<PgConnection>,
    pool: Arc<Shared>,
    slot: Option<OwnedSemaphorePermit>,
    settled: bool,
}

impl Lease {
    fn new(conn: PgConnection, pool: &Arc<Shared>, slot: OwnedSemaphorePermit) -> Self {
        Self {
            conn: Some(conn),
            pool: pool.clone(),
            slot: Some(slot),
            settled: false,
        }
    }

    /// Says the connection is idle again: every query sent on it has been answered in full.
    pub fn settle(&mut self) {
        self.settled = true;
    }
}

impl Deref for Lease {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        // Only `drop` takes the connection out.
        self.conn.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.settled = false;
        self.conn.as_mut().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let (Some(mut conn), Some(slot)) = (self.conn.take(), self.slot.take()) else {
            return;
        };
        if self.settled {
            self.pool.give_back(conn);
            return;
        }
        // Outside a runtime there is nothing to ping it on: the connection just closes.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let pool = self.pool.clone();
            runtime.spawn(async move {
                if conn.ping().await.is_ok() {
                    pool.give_back(conn);
                }
                drop(slot);
            });
        }
    }
}

impl<'c> Executor<'c> for &'c ReadPool {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Either<PgQueryResult, PgRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        // Read whole before the lease goes back: a stream holding the lease across its consumer's
        // awaits could not say when it ends. query-api reads every answer whole anyway.
        let all = async move {
            let mut lease = self.acquire().await?;
            let all: Vec<_> = lease.fetch_many(query).try_collect().await?;
            lease.settle();
            Ok::<_, sqlx::Error>(stream::iter(all.into_iter().map(Ok)))
        };
        stream::once(all).try_flatten().boxed()
    }

    fn fetch_all<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Vec<PgRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        Box::pin(async move {
            let mut lease = self.acquire().await?;
            let rows = lease.fetch_all(query).await?;
            lease.settle();
            Ok(rows)
        })
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        Box::pin(async move {
            let mut lease = self.acquire().await?;
            let row = lease.fetch_optional(query).await?;
            lease.settle();
            Ok(row)
        })
    }

    fn execute<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<PgQueryResult, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        Box::pin(async move {
            let mut lease = self.acquire().await?;
            let done = lease.execute(query).await?;
            lease.settle();
            Ok(done)
        })
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, Result<PgStatement<'q>, sqlx::Error>>
    where
        'c: 'e,
    {
        Box::pin(async move {
            let mut lease = self.acquire().await?;
            let statement = lease.prepare_with(sql, parameters).await?;
            lease.settle();
            Ok(statement)
        })
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, Result<Describe<Postgres>, sqlx::Error>>
    where
        'c: 'e,
    {
        Box::pin(async move {
            let mut lease = self.acquire().await?;
            let described = lease.describe(sql).await?;
            lease.settle();
            Ok(described)
        })
    }
}
