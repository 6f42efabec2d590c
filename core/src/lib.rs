//! # stepraft
//!
//! A Raft consensus core that is a pure, deterministic state machine. It does no IO, reads no
//! clock, spawns no thread and owns no socket: a runtime feeds it [`Input`]s and executes the
//! [`Output`]s it returns. That is what lets a whole cluster run inside one deterministic
//! simulation, and lets you wrap the core in the IO layer your service already has.
//!
//! ## The step contract
//!
//! * **One way in.** [`Node::step`] takes the node and one input — a [`Tick`](Input::Tick) of
//!   logical time, a message from a peer, a proposal, a request to campaign — and returns the
//!   node with the outputs of that step. Nothing happens between steps.
//! * **Determinism.** The same state and input always give the same state and outputs. Time
//!   enters only as ticks; the only randomness (election timeout jitter) comes from a ChaCha RNG
//!   inside the node, seeded from [`Config::rng_seed`].
//! * **Ordered outputs.** Execute the outputs in order. Every [`Output::Persist`] must be
//!   durable before any later output is executed: a message may only leave, and an entry may
//!   only be applied, once the persists before it are on stable storage. A step lists its
//!   persists first (so one write and one fsync per step suffice), then its sends, then
//!   [`RoleChanged`](Output::RoleChanged), [`LeaderChanged`](Output::LeaderChanged),
//!   [`Accepted`](Output::Accepted) and
//!   [`Rejected`](Output::Rejected) notices, then [`Apply`](Output::Apply).
//! * **Restart.** Whatever was persisted is all a node keeps: [`Node::restore`] rebuilds it
//!   from a [`DurableState`]. Anything not persisted is assumed lost by a crash.
//! * **Snapshots.** Report a snapshot of your state machine with
//!   [`Input::SnapshotTaken`]; the node persists it and compacts its log. Followers that need
//!   compacted entries receive the leader's snapshot in chunks and tell you to
//!   [`RestoreSnapshot`](Output::RestoreSnapshot) before the next [`Apply`](Output::Apply).
//! * **Hostile input.** No message a network can deliver makes `step` panic or corrupt the
//!   state: stale, duplicated, reordered or malformed messages are answered per the protocol or
//!   ignored (and counted in [`NodeStats`], by [`IgnoredReason`]). Refused proposals get a
//!   typed [`ProposeError`].
//!   Internal invariants are asserted at the end of every step: a panic there is a bug here.
//!
//! ## Bootstrap: forming a cluster from nodes that know nobody
//!
//! Two ways to start a cluster:
//! * **A fixed initial cluster.** Give every node the same [`Config::voters`]. The
//!   application must make the lists identical: two different lists can elect two leaders.
//! * **From nothing, with a founder.** Every node starts with no voters
//!   (`Config::new(id, [])`); exactly one of them has [`Config::founder`] set. The application
//!   announces nodes to each node as it discovers them, with [`Input::AddNode`] (and
//!   [`Input::RemoveNode`] for those that leave for good), in any order, lost or repeated —
//!   announcements are idempotent and should be repeated until the node is a member. Once
//!   the founder knows `min_voters` nodes (itself included), it writes the first configuration
//!   — those nodes as voters — to its log and campaigns. A leader adds every later announced
//!   node through the log: first as a learner, then, once it has caught up, as a voter while
//!   there are fewer than `max_voters`.
//!
//! **Why it is safe.** Only the founder ever writes a configuration nobody replicated to it,
//! once, with an empty log, before it sends anything that depends on it; every other node
//! can vote but never campaign until a leader of that configuration reaches it. So a cluster
//! has one first configuration, every later one follows from it by single-server changes in
//! the log, and Raft's one-vote-per-term and quorum-overlap arguments exclude two leaders in a
//! term or two disjoint clusters. **The application guarantees** one founder per cluster, once
//! in its life (a founder whose disk is lost must not found again under its id), and unique
//! node ids.
//!
//! Rules where every node bootstraps from what it has discovered (a `bootstrap_expect`-style
//! count) are not safe under arbitrary discovery: two groups that have each found enough of
//! each other, but not each other, both form clusters. The founder is the one piece of shared
//! knowledge that excludes that; it costs liveness only until the founder is up.
//!
//! ## Example: a three-node cluster in memory
//!
//! The runtime below is the whole job of an IO layer: feed inputs, execute outputs in order.
//!
//! ```
//! use std::collections::VecDeque;
//! use stepraft::{Config, DurableState, Input, LogIndex, Node, NodeId, Output, Proposal, ProposalId, Role};
//!
//! /// Three nodes, their "disks", what they applied, and a FIFO network.
//! struct Cluster {
//!     nodes: Vec<Node<String>>,
//!     disks: Vec<DurableState<String>>,
//!     applied: Vec<Vec<String>>,
//!     network: VecDeque<(NodeId, Input<String>)>,
//! }
//!
//! impl Cluster {
//!     fn step(&mut self, to: NodeId, input: Input<String>) {
//!         let at = (to.0 - 1) as usize;
//!         for output in self.nodes[at].step_in_place(input) {
//!             match output {
//!                 // Durable before anything after it is executed.
//!                 Output::Persist(change) => self.disks[at].apply(&change),
//!                 Output::Send { to: peer, message } => {
//!                     self.network.push_back((peer, Input::Receive { from: to, message }))
//!                 }
//!                 Output::Apply(entries) => self.applied[at]
//!                     .extend(entries.iter().filter_map(|entry| entry.command().cloned())),
//!                 _ => {} // RoleChanged, LeaderChanged, Accepted, Rejected: notifications
//!             }
//!         }
//!     }
//!
//!     fn deliver_all(&mut self) {
//!         while let Some((to, input)) = self.network.pop_front() {
//!             self.step(to, input);
//!         }
//!     }
//! }
//!
//! let ids = [NodeId(1), NodeId(2), NodeId(3)];
//! let mut cluster = Cluster {
//!     nodes: ids.iter().map(|&id| Node::new(Config::new(id, ids))).collect::<Result<_, _>>()?,
//!     disks: vec![DurableState::default(); 3],
//!     applied: vec![Vec::new(); 3],
//!     network: VecDeque::new(),
//! };
//!
//! // Node 1 campaigns (as it would after an election timeout) and wins.
//! cluster.step(NodeId(1), Input::Campaign);
//! cluster.deliver_all();
//! assert_eq!(cluster.nodes[0].role(), Role::Leader);
//!
//! // A proposal on the leader commits once a majority stores it.
//! cluster.step(NodeId(1), Input::Propose(Proposal::one(ProposalId(1), "hello".into())));
//! cluster.deliver_all();
//! assert_eq!(cluster.nodes[0].commit_index(), LogIndex(2)); // the leader's no-op, then "hello"
//!
//! // Followers learn the commit index with the next heartbeat, and apply.
//! cluster.step(NodeId(1), Input::Tick);
//! cluster.deliver_all();
//! assert!(cluster.applied.iter().all(|applied| applied == &["hello"]));
//! # Ok::<(), stepraft::ConfigError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod entry;
mod error;
mod io;
mod log;
mod membership;
mod message;
mod node;
mod peer_map;
mod progress;
pub mod quorum;
mod snapshot;
mod stats;
mod types;

pub use config::Config;
pub use entry::{Command, Entry, Internal, Payload};
pub use error::{
    CampaignError, ConfigError, MembershipError, ProposeError, RangeError, ReadError, RestoreError,
    SnapshotError, TermError, TransferError,
};
pub use io::{
    AppendCondition, DurableState, HardState, Input, Output, Persist, Proposal, ProposalId, Role,
};
pub use membership::{Membership, MembershipChange};
pub use message::{
    AppendEntries, AppendEntriesResponse, AppendOutcome, ConflictHint, Heartbeat,
    HeartbeatResponse, InstallSnapshot, InstallSnapshotResponse, Message, ReadIndexRequest,
    ReadIndexResponse, RequestVote, RequestVoteResponse, SnapshotOutcome, TimeoutNow,
};
pub use node::Node;
pub use progress::{Progress, ReplicationState};
pub use snapshot::{Snapshot, SnapshotMeta};
pub use stats::{IgnoredCounts, IgnoredReason, NodeStats};
pub use types::{LogIndex, NodeId, ReadId, Term};

#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
