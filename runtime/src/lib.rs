//! # stepraft-tokio
//!
//! A tokio runtime for the [`stepraft`] core. The core is a pure state machine; this crate is
//! the IO layer a real deployment needs:
//!
//! * [`driver`]: a tokio task that owns a [`stepraft::Node`], feeds it ticks, peer messages and
//!   client requests, and executes its outputs in contract order — persist (fsync'd, one write
//!   per batch) → send → apply. [`driver::spawn_node`] hands back a request sender and an
//!   event receiver.
//! * [`election`]: leader election only, for an application with no commands to replicate:
//!   it implements one small trait to send a message to a peer, announces nodes at run time,
//!   and receives every leadership change.
//! * [`network`]: the [`network::Outbox`] trait the driver sends through and the inbound queue
//!   it reads; in-process channels, TCP (feature `tcp`: length-delimited frames, reconnect
//!   with backoff, a bounded queue per peer) and UDP (feature `udp`); every message carries a
//!   wire version ([`codec`]).
//! * [`storage`]: the [`storage::Storage`] trait, an in-memory storage for tests, and (feature
//!   `redb`) the log, hard state and snapshot in one redb file, every record checksummed,
//!   durable before anything is acknowledged, with a clear error on a damaged or foreign data
//!   directory.
//! * Observability: [`tracing`](https://docs.rs/tracing) events from the driver and the
//!   transports (fields `node`, `term`, `index`, ...; see the driver's module documentation),
//!   and (feature `metrics`) the module `metrics`: every node's counters in the Prometheus
//!   text format.
//!
//! ## Example: three nodes wired with channels only
//!
//! ```
//! use std::time::Duration;
//! use stepraft::{Config, LogIndex, NodeId, Payload};
//! use stepraft_tokio::driver::{spawn_node, Applied, NodeSetup};
//! use stepraft_tokio::network::channel_network;
//! use stepraft_tokio::storage::MemoryStorage;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let ids = [NodeId(1), NodeId(2), NodeId(3)];
//! let mut nodes = Vec::new();
//! for ((outbox, inbound), &id) in channel_network(&ids, 1024).into_iter().zip(&ids) {
//!     let setup = NodeSetup::new(Config::new(id, ids), MemoryStorage::<String>::default(), outbox, inbound);
//!     nodes.push(spawn_node(NodeSetup { tick: Duration::from_millis(10), ..setup })?);
//! }
//!
//! // Wait until node 1 knows a leader: the leadership watch wakes on every change.
//! let leader = nodes[0].leadership.wait_for(|l| l.leader.is_some()).await?.leader;
//! let leader = &mut nodes[(leader.expect("known").0 - 1) as usize];
//!
//! // Propose on the leader: the answer comes once the entry is committed and delivered.
//! let committed = leader.client.propose(vec!["hello".to_string()]).await?;
//! // The state machine's input: committed entries (and snapshots to restore), in log order.
//! loop {
//!     match leader.applied.recv().await {
//!         Some(Applied::Entries(entries)) if entries.iter().any(|e| e.index == committed.last) => break,
//!         Some(_) => {}
//!         None => return Err("the node stopped".into()),
//!     }
//! }
//! // Read the committed log back by index range, without the leader's no-op.
//! let commands = leader.client.read_range(LogIndex(1), committed.last, true).await?;
//! assert!(matches!(&commands[..], [entry] if entry.payload == Payload::Command("hello".to_string())));
//! # Ok(())
//! # }
//! ```
//!
//! ## The replicated log, the way an application uses it
//!
//! * **Append** entries of any serde type with [`NodeClient::propose`](driver::NodeClient::propose),
//!   or only if the log's last entry is a given (index, term) with
//!   [`NodeClient::append_if_last`](driver::NodeClient::append_if_last): the answer says where
//!   they landed once committed.
//! * **Read committed index ranges** with
//!   [`NodeClient::read_range`](driver::NodeClient::read_range), optionally commands only.
//! * **Apply** what arrives on [`NodeHandle::applied`](driver::NodeHandle::applied); learn of
//!   leadership changes on [`NodeHandle::leadership`](driver::NodeHandle::leadership).
//! * **Change membership** at run time with
//!   [`NodeClient::change_membership`](driver::NodeClient::change_membership)
//!   (`MembershipChange::AddVoter`, `AddLearner`, `RemoveNode`, ...).
//!
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod codec;
pub mod driver;
pub mod election;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod network;
pub mod storage;
