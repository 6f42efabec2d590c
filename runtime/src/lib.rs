//! # stepraft-tokio
//!
//! A tokio runtime for the [`stepraft`] core. The core is a pure state machine; this crate is
//! the IO layer a real deployment needs:
//!
//! * [`driver`]: a tokio task that owns a [`stepraft::Node`], feeds it ticks, peer messages and
//!   client requests, and executes its outputs in contract order — persist (fsync'd, one write
//!   per batch) → send → apply. [`driver::spawn_node`] hands back a request sender and an
//!   event receiver.
//! * [`network`]: the [`network::Outbox`] trait the driver sends through and the inbound queue
//!   it reads; in-process channels, TCP (feature `tcp`: length-delimited frames, reconnect
//!   with backoff, a bounded queue per peer) and UDP (feature `udp`); every message carries a
//!   wire version ([`codec`]).
//! * [`storage`]: the [`storage::Storage`] trait, an in-memory storage for tests, and (feature
//!   `redb`) the log, hard state and snapshot in one redb file, every record checksummed,
//!   durable before anything is acknowledged, with a clear error on a damaged or foreign data
//!   directory.
//!
//! ## Example: three nodes wired with channels only
//!
//! ```
//! use std::time::Duration;
//! use stepraft::{Config, NodeId};
//! use stepraft_tokio::driver::{spawn_node, ClientRequest, Event, NodeSetup, Request, RequestId, Response};
//! use stepraft_tokio::network::channel_network;
//! use stepraft_tokio::storage::MemoryStorage;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let ids = [NodeId(1), NodeId(2), NodeId(3)];
//! let mut nodes = Vec::new();
//! for ((outbox, inbound), &id) in channel_network(&ids, 1024).into_iter().zip(&ids) {
//!     let config = Config::new(id, ids);
//!     let storage = MemoryStorage::<String>::default();
//!     let tick = Duration::from_millis(10);
//!     nodes.push(spawn_node(NodeSetup { config, storage, outbox, inbound, tick, learners_max: usize::MAX })?);
//! }
//!
//! // Wait for a leader, as the leader-election seed's users did.
//! let leader = loop {
//!     if let Some(Event::LeaderChanged { leader: Some(leader), .. }) = nodes[0].events.recv().await {
//!         break leader;
//!     }
//! };
//!
//! // Propose on the leader; the answer comes once the entry is applied.
//! let on_leader = &mut nodes[(leader.0 - 1) as usize];
//! let request = Request::Propose(vec!["hello".to_string()]);
//! on_leader.requests.send(ClientRequest { id: RequestId(1), request }).await?;
//! loop {
//!     match on_leader.events.recv().await {
//!         Some(Event::Applied(entries)) => println!("applied up to {:?}", entries.last().map(|e| e.index)),
//!         Some(Event::Response { id: RequestId(1), response }) => {
//!             assert!(matches!(response, Response::Committed { .. }), "{response:?}");
//!             break;
//!         }
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod codec;
pub mod driver;
pub mod network;
pub mod storage;
