//! The driver: a tokio task that owns a [`stepraft::Node`] and is its whole IO layer.
//!
//! [`spawn_node`] starts it and returns the seeds' interface: a request sender and an event
//! receiver. The task feeds the node ticks from a monotonic clock (after any stall, the ticks
//! that elapsed come before every other input: see `clock.rs`), messages from its [`Inbound`] queue
//! and requests from the sender, and executes the outputs in contract order: **persist**
//! (one write + one fsync per batch) → **send** → **apply** and answers.

mod batch;
mod clock;
mod run;

use std::time::Duration;

use stepraft::{
    Config, Entry, LogIndex, Membership, MembershipChange, NodeId, NodeStats, ProposeError,
    RangeError, ReadError, RestoreError, Role, Snapshot, SnapshotError, Term, TransferError,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::network::{Inbound, Outbox};
use crate::storage::{Storage, StorageError};

/// A caller-chosen number that ties a [`Request`] to its [`Event::Response`]. The driver keeps
/// its own proposal and read ids for the core, so reusing a number only confuses the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// What a client can ask of a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request<T> {
    /// Append commands (on the leader). Answered with [`Response::Committed`] once they are
    /// applied, or [`Response::Failed`].
    Propose(Vec<T>),
    /// Append commands only if the leader's last entry is `(last_index, last_term)` — the
    /// blog seed's `AppendEntries { prev_log_index, prev_log_term, .. }`.
    ConditionalAppend {
        /// The commands.
        commands: Vec<T>,
        /// The index the leader's last entry must have.
        last_index: LogIndex,
        /// The term the leader's last entry must have.
        last_term: Term,
    },
    /// The committed entries `start..=end` — the blog seed's `IndexRange`. Answered with
    /// [`Response::Entries`].
    ReadRange {
        /// The first index.
        start: LogIndex,
        /// The last index.
        end: LogIndex,
    },
    /// A linearizable read point (ReadIndex). Answered with [`Response::ReadReady`] after
    /// every entry up to its index was delivered as [`Event::Applied`].
    LinearizableRead,
    /// Change the membership (add or remove a node, promote a learner, ...). Answered like a
    /// proposal.
    ChangeMembership(MembershipChange),
    /// Hand leadership to a voter. Answered with [`Response::TransferStarted`] or a failure;
    /// the new leader shows up as [`Event::LeaderChanged`].
    TransferLeadership(NodeId),
    /// The node's current state. Answered with [`Response::Status`].
    Status,
    /// The application serialized its state machine as of the applied `index`: record it as
    /// a snapshot and compact the log. Answered with [`Response::SnapshotTaken`] or a failure.
    Snapshot {
        /// The last applied index the data covers.
        index: LogIndex,
        /// The serialized state machine.
        data: Vec<u8>,
    },
}

impl<T> Request<T> {
    /// Adds `node` as a voter (the leader-election seed's `ControlAddNode`).
    pub fn add_node(node: NodeId) -> Request<T> {
        Request::ChangeMembership(MembershipChange::AddVoter(node))
    }

    /// Removes `node` (the seed's `ControlRemoveNode`).
    pub fn remove_node(node: NodeId) -> Request<T> {
        Request::ChangeMembership(MembershipChange::RemoveNode(node))
    }
}

/// A request with its id, as sent to the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRequest<T> {
    /// Echoed in the response.
    pub id: RequestId,
    /// The request.
    pub request: Request<T>,
}

/// What the driver tells its application, in the order it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event<T> {
    /// The known leader or this node's role changed.
    LeaderChanged {
        /// The node's term.
        term: Term,
        /// The leader of that term, if known.
        leader: Option<NodeId>,
        /// This node's role.
        role: Role,
    },
    /// Committed entries, consecutive, each delivered once per node lifetime (after a
    /// restart, from the snapshot's index + 1, or from index 1 without one).
    Applied(Vec<Entry<T>>),
    /// Replace the state machine with this snapshot's data (installed from the leader, or
    /// found in storage at startup); the next `Applied` continues after its index.
    Restore(Snapshot),
    /// The answer to a request.
    Response {
        /// The request's id.
        id: RequestId,
        /// The answer.
        response: Response<T>,
    },
}

/// The answer to one [`Request`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response<T> {
    /// The proposal or membership change is committed and was delivered as `Applied`.
    Committed {
        /// Its first index.
        first: LogIndex,
        /// Its last index.
        last: LogIndex,
        /// The term it was appended in.
        term: Term,
    },
    /// The committed entries asked for.
    Entries(Vec<Entry<T>>),
    /// Reading the application state now is linearizable: every entry up to `index` has been
    /// delivered as `Applied`.
    ReadReady {
        /// The read index.
        index: LogIndex,
    },
    /// The leader started handing leadership over.
    TransferStarted,
    /// The snapshot is recorded and the log compacted up to it.
    SnapshotTaken {
        /// Its index.
        index: LogIndex,
    },
    /// The node's state.
    Status(NodeStatus),
    /// The request was not served.
    Failed(RequestError),
}

/// A snapshot of a node's state, for `/status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    /// The node's id.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its term.
    pub term: Term,
    /// The leader it knows.
    pub leader: Option<NodeId>,
    /// The commit index.
    pub commit: LogIndex,
    /// The last index delivered as `Applied`.
    pub applied: LogIndex,
    /// The last log index.
    pub last_index: LogIndex,
    /// The first index the log still holds (everything before is in the snapshot).
    pub first_index: LogIndex,
    /// The index of the latest snapshot (0 without one).
    pub snapshot_index: LogIndex,
    /// The configuration in force.
    pub membership: Membership,
    /// The core's counters.
    pub stats: NodeStats,
}

/// Why a request was not served.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The proposal or membership change was refused (not leader, condition failed, ...).
    #[error(transparent)]
    Propose(#[from] ProposeError),
    /// The read could not be served.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The index range cannot be read.
    #[error(transparent)]
    Range(#[from] RangeError),
    /// The transfer was refused.
    #[error(transparent)]
    Transfer(#[from] TransferError),
    /// The entries were appended but a later leader overwrote them: they are not committed
    /// and never will be; retrying is safe.
    #[error("the entry at {index:?} was overwritten by another leader; not committed")]
    Lost {
        /// The index the proposal's last entry had.
        index: LogIndex,
    },
    /// A snapshot from the leader replaced the state machine past this proposal's index, so
    /// whether it committed is unknown here; read before retrying a non-idempotent write.
    #[error("a snapshot covered index {index:?}: outcome unknown")]
    CoveredBySnapshot {
        /// The index the proposal's last entry had.
        index: LogIndex,
    },
    /// The snapshot was not recorded.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The membership change would make more learners than [`NodeSetup::learners_max`].
    #[error("the change would make {learners} learners; at most {max} are allowed")]
    TooManyLearners {
        /// The learners the change would make.
        learners: usize,
        /// The limit.
        max: usize,
    },
}

/// The driver stopped or could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// Storage failed: the node stops, since it can no longer promise durability.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// The stored state cannot restore a node.
    #[error("stored state rejected by the core: {0}")]
    Restore(#[from] RestoreError),
    /// The blocking storage thread was lost.
    #[error("storage thread failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Everything a driver needs.
pub struct NodeSetup<T, S, O> {
    /// The node's configuration.
    pub config: Config,
    /// Its durable storage; the node restarts from whatever it holds.
    pub storage: S,
    /// Where its messages go.
    pub outbox: O,
    /// Where its peers' messages arrive.
    pub inbound: Inbound<T>,
    /// The real length of one logical tick.
    pub tick: Duration,
    /// Membership changes that would make more learners than this are refused with
    /// [`RequestError::TooManyLearners`] (`usize::MAX`: no limit). The core bounds voters
    /// ([`Config::max_voters`]); this bounds the rest of a configuration, which every snapshot
    /// message carries, for transports whose messages must fit a fixed size.
    pub learners_max: usize,
}

/// A running node: the seeds' request sender and event receiver, and the task itself.
#[derive(Debug)]
pub struct NodeHandle<T> {
    /// Send requests here. Dropping every sender stops the driver.
    pub requests: mpsc::Sender<ClientRequest<T>>,
    /// Events arrive here, in order. Consume them: a full queue holds the driver back.
    pub events: mpsc::Receiver<Event<T>>,
    /// The driver task; it ends with an error when storage fails.
    pub task: JoinHandle<Result<(), DriverError>>,
}

/// Bound of the request and event queues.
const QUEUE_CAPACITY: usize = 4096;

/// Restores the node from `setup.storage` and spawns its driver on the current tokio runtime.
///
/// # Errors
/// [`DriverError`] when the stored state cannot be loaded or restored.
///
/// # Panics
/// Outside a tokio runtime.
pub fn spawn_node<T, S, O>(setup: NodeSetup<T, S, O>) -> Result<NodeHandle<T>, DriverError>
where
    T: stepraft::Command + Send + Sync + 'static,
    S: Storage<T>,
    O: Outbox<T>,
{
    let durable = setup.storage.load()?;
    let node = stepraft::Node::restore(setup.config, durable)?;
    let (request_sender, requests) = mpsc::channel(QUEUE_CAPACITY);
    let (event_sender, events) = mpsc::channel(QUEUE_CAPACITY);
    let driver =
        run::Driver::new(node, setup.storage, setup.outbox, event_sender, setup.learners_max);
    let task = tokio::spawn(driver.run(setup.inbound, requests, setup.tick));
    Ok(NodeHandle { requests: request_sender, events, task })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::channel_network;
    use crate::storage::MemoryStorage;

    /// Spawns node 1 of a cluster of `size` voters on an in-memory network (the others are
    /// never started).
    fn spawn_first_of(size: u64, tick: Duration, learners_max: usize) -> NodeHandle<String> {
        let ids: Vec<NodeId> = (1..=size).map(NodeId).collect();
        let (outbox, inbound) = channel_network::<String>(&ids, 16).swap_remove(0);
        let setup = NodeSetup {
            config: Config::new(NodeId(1), ids),
            storage: MemoryStorage::<String>::default(),
            outbox,
            inbound,
            tick,
            learners_max,
        };
        spawn_node(setup).expect("starts")
    }

    async fn answer(
        node: &mut NodeHandle<String>,
        id: u64,
        request: Request<String>,
    ) -> Response<String> {
        let request = ClientRequest { id: RequestId(id), request };
        node.requests.send(request).await.expect("the driver runs");
        loop {
            match node.events.recv().await.expect("the driver runs") {
                Event::Response { id: answered, response } if answered == RequestId(id) => {
                    return response
                }
                _ => {}
            }
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_change_past_learners_max_is_refused_and_one_within_is_not() {
        let mut node = spawn_first_of(1, Duration::from_millis(1), 1);
        while !matches!(
            node.events.recv().await,
            Some(Event::LeaderChanged { leader: Some(NodeId(1)), .. })
        ) {}
        let add = |id| Request::ChangeMembership(MembershipChange::AddLearner(NodeId(id)));
        let first = answer(&mut node, 1, add(2)).await;
        assert!(matches!(first, Response::Committed { .. }), "{first:?}");
        let second = answer(&mut node, 2, add(3)).await;
        let expected = RequestError::TooManyLearners { learners: 2, max: 1 };
        assert_eq!(second, Response::Failed(expected));
        // Removing a learner shrinks the set: never refused by the limit.
        let remove = Request::ChangeMembership(MembershipChange::RemoveNode(NodeId(2)));
        let third = answer(&mut node, 3, remove).await;
        assert!(matches!(third, Response::Committed { .. }), "{third:?}");
    }

    /// After a stall, the elapsed ticks are stepped before the request that waited through
    /// it: the node has already timed out its leader when it answers. (Stepping one missed
    /// tick per loop pass answered the request from a node that had seen one tick.)
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_request_after_a_stall_sees_the_time_that_passed() {
        let mut node = spawn_first_of(3, Duration::from_millis(10), usize::MAX);
        let role = |response: Response<String>| match response {
            Response::Status(status) => status.role,
            other => panic!("not a status: {other:?}"),
        };
        assert_eq!(role(answer(&mut node, 1, Request::Status).await), stepraft::Role::Follower);
        // The driver does not run while the clock moves on: a stall of 2 s (200 ticks, more
        // than any election timeout).
        tokio::time::advance(Duration::from_secs(2)).await;
        let after = role(answer(&mut node, 2, Request::Status).await);
        assert_ne!(after, stepraft::Role::Follower, "the stall's ticks came first");
    }
}
