//! Shared harness for stepraft's integration tests: a deterministic in-memory cluster, and the
//! helpers of the Raft-paper scenario tests.
//!
//! Every node's outputs are executed exactly as a runtime would — persists into a per-node
//! `DurableState` "disk", sends into one FIFO network queue, applies into a per-node record —
//! so tests observe what a user of the library would observe.
//!
//! The Raft-paper tests also drive single nodes by hand, and run nodes built with
//! `Node::restore` on the small `Net`.
#![forbid(unsafe_code)]

mod cluster;
mod net;

pub use cluster::{Cluster, Envelope};
pub use net::{
    append, append_response, applied, config, entry, fresh, hard, heartbeat, heartbeat_response,
    ids, log_of_terms, log_persists, noop, persisted_hard_states, persists, propose, receive,
    reply, request_vote, restored, sends, success, terms_of, vote, win_election, Net,
};
