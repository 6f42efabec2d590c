//! Leader election only: a group of nodes that agree on who leads, with no replicated
//! commands of the application's.
//!
//! [`start`] runs one node of the group in a tokio task and returns its [`ElectionHandle`].
//! The application supplies the transport by implementing [`ElectionPeer`] (send one
//! [`ElectionMessage`] to one peer) and hands what arrives to [`ElectionHandle::inbox`]. It
//! tells the node which nodes exist on [`ElectionHandle::control`] —
//! [`Control::AddNode`] with a peer's handle, [`Control::RemoveNode`] for one that left for
//! good — and learns who leads on [`ElectionHandle::changes`] (every change, once) and
//! [`ElectionHandle::status`] (the latest, with the role and the configuration).
//!
//! # Forming a group
//! Every node starts knowing nobody. Exactly one node of the group, once in the group's life,
//! is the [`founder`](ElectionConfig::founder): once it has been told of
//! [`min_voters`](ElectionConfig::min_voters) nodes (itself included) it writes the group's
//! first configuration and campaigns. Announce nodes to every node, in any order, as often as
//! convenient: announcements are idempotent. A leader adds every node announced to it through
//! the log (a learner, then a voter within [`max_voters`](ElectionConfig::max_voters)) and
//! removes departed ones (a voter only while `min_voters` remain). See the `stepraft` crate
//! documentation, "Bootstrap", for why one founder makes this safe.
//!
//! Announcements need not be repeated for the node to act on them later: the core keeps them
//! for the node's life (the task never restarts it) and a leader reconciles the configuration
//! with them after every step, so a node announced to a follower is added once that follower
//! leads. A node sends only to peers it was given a handle for: messages from any node are
//! stepped (the core decides what they are worth), but its replies to a node it has no handle
//! for are dropped and counted in [`ElectionHandle::dropped`] until that node is announced.
//!
//! # What is kept: nothing, past the process
//! The node's term, vote and log live in its memory and end with its task. A process that
//! restarts must therefore join under a **new id** (and its old id be announced with
//! `RemoveNode`): under its old id it could vote a second time in a term it had voted in, and
//! two leaders of one term could follow. A restarted founder likewise comes back as an
//! ordinary node under a new id, never as a founder again.
//!
//! So a group survives the loss of a minority of its voters at a time: the others elect a
//! leader, which adds the replacements announced to it and removes the departed (a voter only
//! while `min_voters` remain: announce the replacement first). A node can campaign only once
//! it holds the configuration ([`ElectionStatus::membership`] not empty); a group that loses
//! a majority of its voters at once, or its founder before the first configuration reached
//! another node, cannot elect again, and the application starts a new one with a new founder.
//!
//! # What leadership means here
//! A node's leadership is what it believes. An old leader cut off from its group keeps
//! believing it leads until its election timeout tells it otherwise (it then steps down, as
//! CheckQuorum requires), while the others may already have elected a successor of a higher
//! term. An application that must never act twice at once uses the term as a fencing token:
//! the resource it guards refuses actions of a term lower than one it has seen.
//!
//! # Example
//! A founder that needs nobody else (`min_voters` 1) elects itself, then adds a second node
//! announced to it. The three-node example, `runtime/examples/election_only.rs`
//! (`cargo run -p stepraft-tokio --example election_only`), forms a group of `min_voters` 3
//! and replaces a leader that stops.
//!
//! ```
//! use stepraft::NodeId;
//! use stepraft_tokio::election::{self, Control, ElectionConfig, ElectionMessage, ElectionPeer};
//! use tokio::sync::mpsc;
//!
//! /// A peer in the same process: its node's inbox.
//! struct Local { id: NodeId, inbox: mpsc::Sender<ElectionMessage> }
//!
//! impl ElectionPeer for Local {
//!     fn id(&self) -> NodeId { self.id }
//!     async fn send(&self, message: ElectionMessage) {
//!         // A stopped peer loses the message, as a network would.
//!         let _ = self.inbox.send(message).await;
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = ElectionConfig::new(NodeId(1));
//! config.founder = true;
//! let mut node = election::start::<Local>(config)?;
//! loop {
//!     let change = node.changes.recv().await.ok_or("the node stopped")?;
//!     if change.leader == Some(NodeId(1)) {
//!         println!("node 1 leads term {}", change.term.0);
//!         break;
//!     }
//! }
//! // A second node is announced with its handle; the leader adds it to the group.
//! let second = election::start::<Local>(ElectionConfig::new(NodeId(2)))?;
//! node.control.send(Control::AddNode(Local { id: NodeId(2), inbox: second.inbox.clone() })).await?;
//! second.control.send(Control::AddNode(Local { id: NodeId(1), inbox: node.inbox.clone() })).await?;
//! let mut status = second.status.clone();
//! status.wait_for(|status| status.leader == Some(NodeId(1))).await?;
//! # Ok(())
//! # }
//! ```

mod config;
mod peer;
mod task;

use std::sync::Arc;

use stepraft::{ConfigError, Membership, Node, NodeId, Role, Term};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use config::{ElectionConfig, TICK_MIN};
pub use peer::{DroppedSends, ElectionMessage, ElectionPeer, PEER_QUEUE};

/// Messages the inbox holds before [`ElectionHandle::inbox`] makes its senders wait.
pub const INBOX_QUEUE: usize = 1024;

/// Commands the control channel holds before [`ElectionHandle::control`] makes its senders
/// wait.
pub const CONTROL_QUEUE: usize = 256;

/// What the application tells a node about the group.
#[derive(Clone, Debug)]
pub enum Control<P> {
    /// A node exists and is reached through this handle: the node sends to it from now on
    /// (in place of any earlier handle for its id) and announces it to its core
    /// ([`Input::AddNode`](stepraft::Input::AddNode)). Repeating it changes nothing but the
    /// handle. A handle with the node's own id is ignored.
    AddNode(P),
    /// A node has left for good ([`Input::RemoveNode`](stepraft::Input::RemoveNode)): a
    /// leader removes it from the configuration. Its handle is dropped once it is no longer
    /// a member as this node knows the configuration (at once if it never was), so that a
    /// voter that cannot leave yet, below `min_voters`, still hears from its leader.
    RemoveNode(NodeId),
}

/// A change of who leads, as one node believes it: a new term (`leader` unknown yet, or
/// known) or the leader of the current term becoming known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaderChange {
    /// The node's term.
    pub term: Term,
    /// The leader of that term, when known (the node itself when it leads).
    pub leader: Option<NodeId>,
}

/// A node's view of the group now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElectionStatus {
    /// The node's term.
    pub term: Term,
    /// The leader of that term, when known (the node itself when it leads).
    pub leader: Option<NodeId>,
    /// The node's role.
    pub role: Role,
    /// The configuration the node follows: voters and learners (empty until a leader, or the
    /// founder's bootstrap, gives it one).
    pub membership: Membership,
}

impl ElectionStatus {
    fn of(node: &Node<()>) -> ElectionStatus {
        ElectionStatus {
            term: node.term(),
            leader: node.leader(),
            role: node.role(),
            membership: node.membership().clone(),
        }
    }
}

/// A running election node.
///
/// The node stops when every sender of [`control`](ElectionHandle::control) is dropped; abort
/// [`task`](ElectionHandle::task) to stop it at once (as a crash would).
#[derive(Debug)]
pub struct ElectionHandle<P> {
    /// Announces nodes and departures; clone it freely.
    pub control: mpsc::Sender<Control<P>>,
    /// Where the application hands the messages its transport received for this node; clone
    /// it freely. A transport that must not wait should use `try_send` and drop on a full
    /// inbox ([`INBOX_QUEUE`]), as a network would.
    pub inbox: mpsc::Sender<ElectionMessage>,
    /// Every leadership change of this node, once each, in order. Unbounded, so that a slow
    /// reader never holds back the node; it grows by one per change while unread (drop it if
    /// unused: changes are then discarded).
    pub changes: mpsc::UnboundedReceiver<LeaderChange>,
    /// The node's latest view of the group; `changed()` wakes when the term, leader, role or
    /// configuration changes.
    pub status: watch::Receiver<ElectionStatus>,
    /// Messages the node dropped instead of handing them to a peer.
    pub dropped: Arc<DroppedSends>,
    /// The node's task.
    pub task: JoinHandle<()>,
}

/// Starts an election node on the current tokio runtime. It knows nobody until nodes are
/// announced on [`ElectionHandle::control`].
///
/// # Errors
/// The [`ConfigError`] of [`Config::validate`](stepraft::Config::validate) for an invalid
/// configuration (voter limits, timers).
///
/// # Panics
/// Outside a tokio runtime.
pub fn start<P: ElectionPeer>(config: ElectionConfig) -> Result<ElectionHandle<P>, ConfigError> {
    let node = Node::new(config.core_config())?;
    let (control, control_queue) = mpsc::channel(CONTROL_QUEUE);
    let (inbox, inbox_queue) = mpsc::channel(INBOX_QUEUE);
    let (changes_sender, changes) = mpsc::unbounded_channel();
    let (status_sender, status) = watch::channel(ElectionStatus::of(&node));
    let dropped = Arc::new(DroppedSends::default());
    let links = peer::Links::new(config.id, Arc::clone(&dropped));
    let reports = task::Reports { changes: changes_sender, status: status_sender };
    let node = task::ElectionTask::new(node, links, reports);
    let task = tokio::spawn(node.run(inbox_queue, control_queue, config.tick_period()));
    Ok(ElectionHandle { control, inbox, changes, status, dropped, task })
}
