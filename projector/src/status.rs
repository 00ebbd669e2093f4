use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// What the projector reports at `/readyz`, updated by the follower.
#[derive(Debug, Default)]
pub struct Status {
    leader: AtomicBool,
    checkpoint: AtomicI64,
    head: AtomicI64,
    batches: AtomicI64,
}

impl Status {
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Relaxed)
    }

    pub fn checkpoint(&self) -> i64 {
        self.checkpoint.load(Ordering::Relaxed)
    }

    pub fn head(&self) -> i64 {
        self.head.load(Ordering::Relaxed)
    }

    /// Batches this instance has applied since it started.
    pub fn batches_applied(&self) -> i64 {
        self.batches.load(Ordering::Relaxed)
    }

    pub(crate) fn set_leader(&self, leader: bool) {
        self.leader.store(leader, Ordering::Relaxed);
    }

    pub(crate) fn set_progress(&self, checkpoint: i64, head: i64) {
        self.checkpoint.store(checkpoint, Ordering::Relaxed);
        self.head.fetch_max(head, Ordering::Relaxed);
        metrics::gauge!("partida_projector_checkpoint").set(checkpoint as f64);
        metrics::gauge!("partida_projector_lag").set((head - checkpoint).max(0) as f64);
    }

    pub(crate) fn batch_applied(&self) {
        self.batches.fetch_add(1, Ordering::Relaxed);
    }
}
