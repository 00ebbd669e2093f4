//! Which generation of the read tables is live. A rebuild flips the pointer in `projections`;
//! readers follow it within a second, and the old generation stays readable meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use sqlx::PgPool;

pub(crate) struct ReadModel {
    generation: AtomicI32,
}

impl Default for ReadModel {
    fn default() -> Self {
        Self {
            generation: AtomicI32::new(1),
        }
    }
}

impl ReadModel {
    /// The schema to read the `ledger` projection's tables from.
    pub fn schema(&self) -> String {
        format!("ledger_g{}", self.generation.load(Ordering::Relaxed))
    }

    /// Generations only move forward: a slow reader reporting an older one must not send the
    /// others back to tables that no longer follow the log.
    pub fn observe(&self, generation: i32) {
        self.generation.fetch_max(generation, Ordering::Relaxed);
    }
}

pub(crate) async fn follow_generation(model: Arc<ReadModel>, pool: PgPool) {
    loop {
        let generation: Result<i32, _> = sqlx::query_scalar("SELECT generation FROM projections WHERE name = 'ledger'")
            .fetch_one(&pool)
            .await;
        if let Ok(generation) = generation {
            model.observe(generation);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
