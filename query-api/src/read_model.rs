//! What query-api knows of the projection: the live generation of its tables and how far it has
//! applied the log, and the log's head. One watcher per instance keeps it current and wakes the
//! reads waiting for a position, instead of every waiting read polling the database itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::time::Duration;

use partida_eventstore::ReadPool;
use tokio::sync::{Notify, watch};

/// How often the watcher polls while reads are waiting (a standby cannot LISTEN).
const WAITING_POLL: Duration = Duration::from_millis(2);
/// How often it polls while live streams follow the log: a person watching needs no faster.
const FOLLOWING_POLL: Duration = Duration::from_millis(100);
/// How often it polls otherwise, to notice a rebuild's generation switch.
const IDLE_POLL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Reached {
    pub checkpoint: i64,
    pub head: i64,
}

pub(crate) struct ReadModel {
    generation: AtomicI32,
    reached: watch::Sender<Reached>,
    waiters: AtomicUsize,
    followers: Arc<AtomicUsize>,
    wake: Notify,
}

/// Keeps the watcher polling at the live-stream pace while held.
pub(crate) struct Following(Arc<AtomicUsize>);

impl Drop for Following {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Default for ReadModel {
    fn default() -> Self {
        Self {
            generation: AtomicI32::new(1),
            reached: watch::Sender::new(Reached::default()),
            waiters: AtomicUsize::new(0),
            followers: Arc::default(),
            wake: Notify::new(),
        }
    }
}

impl ReadModel {
    /// The schema to read the `ledger` projection's tables from.
    pub fn schema(&self) -> String {
        format!("ledger_g{}", self.generation.load(Ordering::Relaxed))
    }

    /// What the watcher saw last. It only ever lags the truth, never leads it, so a position it
    /// shows as reached is reached.
    pub fn reached(&self) -> Reached {
        *self.reached.borrow()
    }

    /// Waits until `done` holds for what has been reached, or `bound` passes; returns the last seen.
    pub async fn wait_until(&self, bound: Duration, done: impl Fn(&Reached) -> bool) -> (bool, Reached) {
        let mut updates = self.reached.subscribe();
        self.waiters.fetch_add(1, Ordering::SeqCst);
        self.wake.notify_one();
        let done = tokio::time::timeout(bound, updates.wait_for(|reached| done(reached)))
            .await
            .is_ok_and(|r| r.is_ok());
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        (done, self.reached())
    }

    /// Progress updates for a live stream, and the guard that keeps them coming at its pace.
    pub fn follow(&self) -> (watch::Receiver<Reached>, Following) {
        self.followers.fetch_add(1, Ordering::SeqCst);
        self.wake.notify_one();
        (self.reached.subscribe(), Following(self.followers.clone()))
    }

    fn observe(&self, generation: i32, reached: Reached) {
        // Generations only move forward: a slow poll must not send readers back to tables that
        // no longer follow the log.
        self.generation.fetch_max(generation, Ordering::Relaxed);
        self.reached.send_if_modified(|current| {
            let next = Reached {
                checkpoint: current.checkpoint.max(reached.checkpoint),
                head: current.head.max(reached.head),
            };
            let changed = next != *current;
            *current = next;
            changed
        });
    }
}

/// Polls the pointer and the head: every few milliseconds while reads wait, ten times a second
/// while live streams follow, once a second otherwise.
pub(crate) async fn watch(model: Arc<ReadModel>, pool: ReadPool) {
    loop {
        let polled: Result<(i32, i64, i64), _> = sqlx::query_as(
            "SELECT p.generation, p.checkpoint, h.position FROM projections p CROSS JOIN event_head h \
              WHERE p.name = 'ledger'",
        )
        .fetch_one(&pool)
        .await;
        if let Ok((generation, checkpoint, head)) = polled {
            model.observe(generation, Reached { checkpoint, head });
        }
        if model.waiters.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(WAITING_POLL).await;
        } else {
            let pace = if model.followers.load(Ordering::SeqCst) > 0 {
                FOLLOWING_POLL
            } else {
                IDLE_POLL
            };
            let _ = tokio::time::timeout(pace, model.wake.notified()).await;
        }
    }
}
