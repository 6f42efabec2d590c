//! Volatile storage for in-process examples and tests: durable only as long as the process.

use std::sync::Mutex;

use stepraft::{DurableState, Persist};

use super::{Storage, StorageError};

/// Keeps the durable state in memory. A node restarted from a clone of it behaves as after a
/// crash that lost nothing; a process exit loses everything.
#[derive(Debug)]
pub struct MemoryStorage<T> {
    state: Mutex<DurableState<T>>,
}

impl<T> Default for MemoryStorage<T> {
    fn default() -> Self {
        MemoryStorage { state: Mutex::new(DurableState::default()) }
    }
}

impl<T: Clone + Send + 'static> Storage<T> for MemoryStorage<T> {
    fn load(&self) -> Result<DurableState<T>, StorageError> {
        Ok(self.state.lock().expect("invariant: no panic while the lock is held").clone())
    }

    fn persist(&self, changes: &[Persist<T>]) -> Result<(), StorageError> {
        let mut state = self.state.lock().expect("invariant: no panic while the lock is held");
        for change in changes {
            state.apply(change);
        }
        Ok(())
    }
}
