//! What a node is asked and what it answers: requests, responses, the applied stream and the
//! leadership watch.

use stepraft::{
    Entry, LogIndex, Membership, MembershipChange, NodeId, NodeStats, ProposeError, RangeError,
    ReadError, Role, Snapshot, SnapshotError, Term, TransferError,
};

/// What a client can ask of a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request<T> {
    /// Append commands (on the leader). Answered with [`Response::Committed`] once they are
    /// applied, or [`Response::Failed`]: refused by the core ([`RequestError::Propose`]),
    /// overwritten by a later leader ([`RequestError::Lost`]), or covered by a snapshot before
    /// this node applied them ([`RequestError::CoveredBySnapshot`], outcome unknown). An
    /// appended proposal stays pending across lost leadership and new terms until one of
    /// these happens; the caller bounds the wait.
    Propose(Vec<T>),
    /// Append commands only if the leader's last entry is `(last_index, last_term)`: an
    /// optimistic append that fails with `ConditionFailed` when another entry came first.
    ConditionalAppend {
        /// The commands.
        commands: Vec<T>,
        /// The index the leader's last entry must have.
        last_index: LogIndex,
        /// The term the leader's last entry must have.
        last_term: Term,
    },
    /// The committed entries `start..=end`, in the log (not yet compacted away). Answered
    /// with [`Response::Entries`].
    ReadRange {
        /// The first index.
        start: LogIndex,
        /// The last index.
        end: LogIndex,
        /// Leave out the log's own entries (a new leader's no-op, configuration changes): only
        /// the application's commands.
        commands_only: bool,
    },
    /// A linearizable read point (ReadIndex). Answered with [`Response::ReadReady`] once every
    /// entry up to its index has been delivered on the [`Applied`] stream: the application
    /// reads its state once it has applied up to that index.
    LinearizableRead,
    /// Change the membership (add or remove a node, promote a learner, ...). Answered like a
    /// proposal.
    ChangeMembership(MembershipChange),
    /// Hand leadership to a voter. Answered with [`Response::TransferStarted`] or a failure;
    /// the new leader shows up on the [`Leadership`] watch.
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
    /// Adds `node` as a voter.
    pub fn add_node(node: NodeId) -> Request<T> {
        Request::ChangeMembership(MembershipChange::AddVoter(node))
    }

    /// Removes `node`.
    pub fn remove_node(node: NodeId) -> Request<T> {
        Request::ChangeMembership(MembershipChange::RemoveNode(node))
    }
}

/// What the driver delivers to the state machine, in log order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied<T> {
    /// Committed entries, consecutive, each delivered once per node lifetime (after a
    /// restart, from the snapshot's index + 1, or from index 1 without one). The log's own
    /// entries (no-ops, configuration changes) are among them: apply the commands.
    Entries(Vec<Entry<T>>),
    /// Replace the state machine with this snapshot's data (installed from the leader, or
    /// found in storage at startup); the next entries continue after its index.
    Restore(Snapshot),
}

/// Who leads, as this node knows it, and its own role. The watch of it changes when the
/// node's `(term, leader)` or its role changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leadership {
    /// The node's term.
    pub term: Term,
    /// The leader of that term, if known.
    pub leader: Option<NodeId>,
    /// This node's role.
    pub role: Role,
}

/// Where a committed proposal landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Committed {
    /// Its first index.
    pub first: LogIndex,
    /// Its last index.
    pub last: LogIndex,
    /// The term it was appended in.
    pub term: Term,
}

/// The answer to one [`Request`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response<T> {
    /// The proposal or membership change is committed and was delivered on the [`Applied`]
    /// stream.
    Committed(Committed),
    /// The committed entries asked for.
    Entries(Vec<Entry<T>>),
    /// Reading the application state is linearizable once it has applied up to `index`
    /// (every entry up to it has been delivered on the [`Applied`] stream).
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
    /// The node's state (boxed: it is many times larger than every other answer, and each
    /// request's reply channel is as large as its largest answer).
    Status(Box<NodeStatus>),
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
    /// The last index delivered on the [`Applied`] stream.
    pub applied: LogIndex,
    /// The last log index.
    pub last_index: LogIndex,
    /// The term of the last log entry (of the snapshot's last entry when the log is empty).
    pub last_term: Term,
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
///
/// Every variant but [`RequestError::CoveredBySnapshot`], [`RequestError::ForwardUnknown`] and
/// [`RequestError::Stopped`] promises that the request took no effect and never will; those
/// promise nothing: the outcome is unknown ([`RequestError::took_no_effect`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The proposal or membership change was refused (not leader, condition failed, ...):
    /// it was not appended, so it has no effect.
    #[error(transparent)]
    Propose(#[from] ProposeError),
    /// The read could not be served (reads change nothing).
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
    /// The membership change would make more learners than
    /// [`NodeSetup::learners_max`](super::NodeSetup::learners_max).
    #[error("the change would make {learners} learners; at most {max} are allowed")]
    TooManyLearners {
        /// The learners the change would make.
        learners: usize,
        /// The limit.
        max: usize,
    },
    /// The driver is not running (it stopped, or was never started): the request was not
    /// taken.
    #[error("the node is not running; the request was not taken")]
    NotRunning,
    /// The driver's request queue is full ([`NodeClient::try_call`](super::NodeClient::try_call)
    /// only): the request was not taken.
    #[error("the node is overloaded; the request was not taken")]
    Overloaded,
    /// The leader this follower forwarded the request to refused it: no effect.
    #[error("the leader, node {leader}, refused the forwarded request: {reason}")]
    ForwardRefused {
        /// The leader it was forwarded to.
        leader: NodeId,
        /// Why, in the leader's words.
        reason: String,
    },
    /// The request was forwarded to the leader, which did not say (in time, or at all) what
    /// became of it: the outcome is unknown.
    #[error("forwarded to the leader, node {leader}: outcome unknown ({reason})")]
    ForwardUnknown {
        /// The leader it was forwarded to.
        leader: NodeId,
        /// Why the outcome is unknown.
        reason: String,
    },
    /// The driver stopped after taking the request and before answering it: whether it took
    /// effect is unknown.
    #[error("the node stopped before answering: outcome unknown")]
    Stopped,
}

impl RequestError {
    /// Whether the request certainly took no effect and never will, so that retrying it cannot
    /// apply it twice. Every refusal is; [`RequestError::CoveredBySnapshot`],
    /// [`RequestError::ForwardUnknown`] and [`RequestError::Stopped`] leave the outcome
    /// unknown.
    pub fn took_no_effect(&self) -> bool {
        !matches!(
            self,
            RequestError::CoveredBySnapshot { .. }
                | RequestError::Stopped
                | RequestError::ForwardUnknown { .. }
        )
    }
}
