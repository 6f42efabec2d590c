//! A fault-injection wrapper for tests: storage whose every write waits while a file exists,
//! as a disk stuck inside an fsync would hold it.

use std::path::PathBuf;
use std::time::Duration;

use stepraft::{DurableState, Persist};

use super::{Storage, StorageError};

/// How often a stalled write looks whether the stall has ended.
const POLL: Duration = Duration::from_millis(2);

/// Storage `S` whose [`Storage::persist`] first waits as long as the file `stall_while`
/// exists; with `None` it is `S` itself. A fault-injecting test (the nemesis suite) creates
/// the file to freeze the node's storage thread mid-batch and removes it to let the write go
/// on, which exercises what a slow or stuck disk does to the driver and to lease reads.
#[derive(Debug)]
pub struct StallableStorage<S> {
    inner: S,
    stall_while: Option<PathBuf>,
}

impl<S> StallableStorage<S> {
    /// Wraps `inner`; writes stall while `stall_while` exists.
    pub fn new(inner: S, stall_while: Option<PathBuf>) -> StallableStorage<S> {
        StallableStorage { inner, stall_while }
    }
}

impl<T, S: Storage<T>> Storage<T> for StallableStorage<S> {
    fn load(&self) -> Result<DurableState<T>, StorageError> {
        self.inner.load()
    }

    fn persist(&self, changes: &[Persist<T>]) -> Result<(), StorageError> {
        if let Some(path) = &self.stall_while {
            while path.exists() {
                std::thread::sleep(POLL);
            }
        }
        self.inner.persist(changes)
    }

    fn stage_snapshot(&self, snapshot: &stepraft::Snapshot) -> Result<(), StorageError> {
        self.inner.stage_snapshot(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;
    use std::sync::Arc;
    use std::time::Instant;
    use stepraft::{HardState, LogIndex, NodeId, Term};

    #[test]
    fn a_write_waits_while_the_stall_file_exists() {
        let path = std::env::temp_dir().join(format!("stepraft-kv-stall-{}", std::process::id()));
        std::fs::write(&path, b"").expect("stall file");
        let storage =
            Arc::new(StallableStorage::new(MemoryStorage::<String>::default(), Some(path.clone())));
        let writer = {
            let storage = Arc::clone(&storage);
            std::thread::spawn(move || {
                let hard_state =
                    HardState { term: Term(2), voted_for: Some(NodeId(1)), commit: LogIndex(0) };
                storage.persist(&[Persist::HardState(hard_state)])
            })
        };
        let started = Instant::now();
        std::thread::sleep(Duration::from_millis(100));
        assert!(!writer.is_finished(), "the write went through a stalled disk");
        std::fs::remove_file(&path).expect("end the stall");
        writer.join().expect("writer").expect("the write completes after the stall");
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert_eq!(storage.load().expect("load").hard_state.term, Term(2));
    }
}
