//! Shared harness for stepraft's integration tests: a deterministic in-memory cluster.
//!
//! Every node's outputs are executed exactly as a runtime would — persists into a per-node
//! `DurableState` "disk", sends into one FIFO network queue, applies into a per-node record —
//! so tests observe what a user of the library would observe.
#![forbid(unsafe_code)]

mod cluster;

pub use cluster::{Cluster, Envelope};
