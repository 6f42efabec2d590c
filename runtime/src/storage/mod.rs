//! Durable storage for a node: what `Output::Persist` asks for, and what `Node::restore` needs.

mod memory;
#[cfg(feature = "redb")]
mod redb_store;
mod stall;

pub use memory::MemoryStorage;
#[cfg(feature = "redb")]
pub use redb_store::{RedbStorage, StoreIdentity};
pub use stall::StallableStorage;

use stepraft::{DurableState, LogIndex, Persist};

/// A node's stable storage.
///
/// `persist` receives every change of one driver batch, in order, and returns only once all
/// of them are durable: one write and one fsync per batch (the step contract allows it because
/// a step lists its persists first). The driver calls it from a blocking thread.
pub trait Storage<T>: Send + Sync + 'static {
    /// Everything persisted so far.
    ///
    /// # Errors
    /// [`StorageError`] when the stored state cannot be read or decoded.
    fn load(&self) -> Result<DurableState<T>, StorageError>;

    /// Makes `changes` durable, in order, atomically.
    ///
    /// # Errors
    /// [`StorageError`]; the driver stops on any, because after a failed fsync the state of the
    /// disk is unknown and acknowledging anything would be unsafe.
    fn persist(&self, changes: &[Persist<T>]) -> Result<(), StorageError>;

    /// Makes a snapshot's data durable ahead of the [`Persist::Snapshot`] that records it, so
    /// that `persist` need only record it. The driver calls it, from a thread of its own and
    /// possibly while `persist` runs, for snapshots the application took; the
    /// `Persist::Snapshot` follows unless a newer snapshot was persisted meanwhile. A storage
    /// that keeps snapshots inline does nothing (the default), and `persist` writes the data.
    ///
    /// # Errors
    /// [`StorageError`]; the driver stops on any.
    fn stage_snapshot(&self, snapshot: &stepraft::Snapshot) -> Result<(), StorageError> {
        let _ = snapshot;
        Ok(())
    }
}

/// Storage that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The storage backend reported an error (IO, corruption found by its own checks, a lock
    /// held by another process); the backend's error is the source.
    #[error("storage backend: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
    /// The data directory could not be created or listed.
    #[error("data directory {path}: {source}")]
    Directory {
        /// The directory.
        path: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// The directory holds files but no store of ours: refuse rather than start empty in it.
    #[error("data directory {path} is not empty and holds no stepraft-kv store; use an empty or new directory")]
    ForeignDirectory {
        /// The directory.
        path: String,
    },
    /// The store is not a stepraft-kv store of a format this build reads.
    #[error("{path} is not a stepraft-kv store of format {expected:?} (found {found:?})")]
    ForeignStore {
        /// The database file.
        path: String,
        /// The format marker this build writes.
        expected: String,
        /// The marker found, if any.
        found: Option<String>,
    },
    /// The store belongs to another node or cluster.
    #[error("the store belongs to node {found_node} of cluster {found_cluster}, not node {node} of cluster {cluster}")]
    WrongIdentity {
        /// The node id asked for.
        node: u64,
        /// The cluster id asked for.
        cluster: u64,
        /// The node id stored.
        found_node: u64,
        /// The cluster id stored.
        found_cluster: u64,
    },
    /// The database file is damaged in a way the database cannot describe (a file shorter
    /// than its header records, say): it is left as it is.
    #[error("{path} is damaged and was left as it is: {detail}")]
    Damaged {
        /// The database file.
        path: String,
        /// What the database found.
        detail: String,
    },
    /// A stored record fails its checksum or does not decode, or the log has a hole; the text
    /// names the record ("log entry 17: checksum mismatch").
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// A persist kind this storage does not implement yet.
    #[error("unsupported persist instruction: {0}")]
    Unsupported(String),
}

/// A snapshot as the store keeps it: where it ends, the configuration in force there, and the
/// application's bytes. The schema has a place for it now; the core's snapshots will fill it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredSnapshot {
    /// The last index the snapshot covers.
    pub index: LogIndex,
    /// The term of that entry.
    pub term: stepraft::Term,
    /// The configuration in force at `index`.
    pub membership: stepraft::Membership,
    /// The application's state.
    pub data: Vec<u8>,
}
