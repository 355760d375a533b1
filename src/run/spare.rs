//! Emptied vectors handed back to the stage that fills them, so that a run fills the same
//! memory page after page. A page's vectors are large (at 2000 fully populated orders, ~0.8 MiB
//! of built orders and ~0.5 MiB of outcomes), and the stage that empties one runs on another
//! thread than the one that filled it: a fresh vector per page was faulted in again whenever
//! the allocator had handed the last one's memory back to the system meanwhile (half of a
//! fully populated run's page faults, issue 24).

use std::sync::{Arc, Mutex, PoisonError};

/// Vectors kept at most by default: the pages in flight between the two stages (the reader
/// reads one page ahead, `reader::PAGES_AHEAD`), and one more.
const KEPT: usize = 3;

/// A few emptied vectors of `T`, shared by the stage that fills them and the one that empties
/// them.
pub(super) struct Spare<T> {
    /// The vectors kept.
    vectors: Arc<Mutex<Vec<Vec<T>>>>,
    /// How many are kept at most.
    kept: usize,
}

impl<T> Spare<T> {
    /// Keeps at most `kept` vectors (one per vector in flight between the stages, say).
    pub(super) fn new(kept: usize) -> Self {
        Self {
            vectors: Arc::default(),
            kept,
        }
    }

    /// A kept vector, emptied, with room for at least `capacity` elements; a new one when
    /// none is kept.
    pub(super) fn take(&self, capacity: usize) -> Vec<T> {
        let mut vector = self
            .vectors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_default();
        vector.reserve(capacity);
        vector
    }

    /// Keeps `vector`, emptied (its elements are dropped here), unless as many as it keeps are
    /// kept already.
    pub(super) fn give(&self, mut vector: Vec<T>) {
        vector.clear();
        let mut kept = self.vectors.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() < self.kept && vector.capacity() > 0 {
            kept.push(vector);
        }
    }
}

impl<T> Clone for Spare<T> {
    fn clone(&self) -> Self {
        Self {
            vectors: Arc::clone(&self.vectors),
            kept: self.kept,
        }
    }
}

impl<T> Default for Spare<T> {
    fn default() -> Self {
        Self::new(KEPT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A vector given back is taken again, emptied, with its memory; no more than [`KEPT`]
    /// are kept, and one is made when none is.
    #[test]
    fn a_vector_given_back_is_taken_again_empty() {
        let spare: Spare<String> = Spare::default();
        let mut first = spare.take(10);
        assert!(first.capacity() >= 10);
        first.push("x".to_owned());
        let memory = first.as_ptr();
        let other = spare.clone();
        other.give(first);
        let again = spare.take(5);
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), memory);
        for _ in 0..KEPT + 2 {
            spare.give(Vec::with_capacity(1));
        }
        assert_eq!(spare.vectors.lock().map_or(0, |kept| kept.len()), KEPT);
        spare.give(Vec::new());
        assert!(spare.take(0).capacity() > 0);
    }
}
