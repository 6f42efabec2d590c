//! Snapshots: the application's state machine at one applied index, which lets the log drop
//! everything before it (thesis chapter 5).
//!
//! The core never looks inside the data. It keeps the latest snapshot (shared, `Arc`) so that
//! a leader can send it, in chunks, to a follower whose next entries were compacted away.

use std::sync::Arc;

#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

use crate::membership::Membership;
use crate::types::{LogIndex, Term};

/// What a snapshot covers: the log up to and including `index`, whose entry had `term`, and
/// the configuration in force at that index.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct SnapshotMeta {
    /// The last log index the snapshot covers.
    pub index: LogIndex,
    /// The term of the entry at `index`.
    pub term: Term,
    /// The configuration in force at `index`: the latest configuration entry at or before it.
    /// Shared, so that every chunk of a transfer carries it without copying the sets.
    pub membership: Arc<Membership>,
}

/// A snapshot: its metadata and the application's serialized state machine.
///
/// The data is opaque bytes, serialized however the application likes, so that the core can
/// send it in chunks of [`Config::snapshot_chunk_bytes`](crate::Config::snapshot_chunk_bytes)
/// without knowing its type. It is shared: cloning a snapshot into an output or a message
/// copies a pointer, not the data.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct Snapshot {
    /// What the snapshot covers.
    pub meta: SnapshotMeta,
    /// The application's state machine at `meta.index`.
    pub data: Arc<[u8]>,
}

/// A snapshot being received in chunks by a follower.
#[derive(Clone, Debug)]
pub(crate) struct IncomingSnapshot {
    /// The snapshot being received; chunks of another one restart the transfer.
    pub(crate) meta: SnapshotMeta,
    /// The size the leader announced.
    pub(crate) total_bytes: u64,
    /// The bytes received so far, in order.
    pub(crate) data: Vec<u8>,
}
