//! Buffers handed back once used, so a long verification cycles through a few of them instead
//! of faulting in fresh memory for every block: on this kind of machine, first touches of new
//! pages were a fifth of a verification's time (docs/PERFORMANCE.md, W6).

use std::sync::{Arc, Mutex};

/// A shared stack of emptied vectors; clones share it.
pub struct Spare<T>(Arc<Mutex<Vec<Vec<T>>>>);

impl<T> Spare<T> {
    /// At most this many are kept: the blocks that can be in flight at once, and then some.
    const KEPT: usize = 64;

    /// An empty vector, recycled when one was given back.
    pub fn take(&self) -> Vec<T> {
        self.0.lock().ok().and_then(|mut spare| spare.pop()).unwrap_or_default()
    }

    /// Empties `vector` and keeps it for a later [`take`](Self::take).
    pub fn give(&self, mut vector: Vec<T>) {
        vector.clear();
        if let Ok(mut spare) = self.0.lock()
            && spare.len() < Self::KEPT
        {
            spare.push(vector);
        }
    }
}

impl<T> Default for Spare<T> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

impl<T> Clone for Spare<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::Spare;

    #[test]
    fn a_vector_given_back_is_taken_again_empty_with_its_room() {
        let spare = Spare::default();
        let mut vector = spare.take();
        vector.extend([1, 2, 3]);
        let room = vector.capacity();
        spare.clone().give(vector);
        let again = spare.take();
        assert!(again.is_empty());
        assert_eq!(again.capacity(), room);
        assert_eq!(spare.take().capacity(), 0, "only one was given back");
    }
}
