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
    /// applied, or [`Response::Failed`]: refused by the core ([`RequestError::Propose`]),
    /// overwritten by a later leader ([`RequestError::Lost`]), or covered by a snapshot before
    /// this node applied them ([`RequestError::CoveredBySnapshot`], outcome unknown). An
    /// appended proposal stays pending across lost leadership and new terms until one of
    /// these happens; the caller bounds the wait.
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
///
/// Every variant but [`RequestError::CoveredBySnapshot`] promises that the request took no
/// effect and never will; `CoveredBySnapshot` promises nothing: the outcome is unknown.
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
    /// The membership change would make more learners than [`NodeSetup::learners_max`].
    #[error("the change would make {learners} learners; at most {max} are allowed")]
    TooManyLearners {
        /// The learners the change would make.
        learners: usize,
        /// The limit.
        max: usize,
    },
}

impl RequestError {
    /// Whether the request certainly took no effect and never will, so that retrying it cannot
    /// apply it twice. Every refusal is; only [`RequestError::CoveredBySnapshot`] leaves the
    /// outcome unknown.
    pub fn took_no_effect(&self) -> bool {
        !matches!(self, RequestError::CoveredBySnapshot { .. })
    }
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

    /// Node 1 leads a 3-voter cluster under a driver; the test plays the others. Node 2 grants
    /// every vote and acknowledges nothing, so nothing node 1 appends commits; node 3 is a
    /// later leader whose messages the test writes with `later_leader`.
    struct ScriptedLeader {
        node: NodeHandle<String>,
        later_leader: crate::network::ChannelOutbox<String>,
        /// Node 1's term as leader.
        term: Term,
        /// Node 1's messages to node 3, unread.
        _to_later_leader: Inbound<String>,
    }

    async fn scripted_leader() -> ScriptedLeader {
        use stepraft::{Message, RequestVoteResponse};
        let ids = [NodeId(1), NodeId(2), NodeId(3)];
        let mut network = channel_network::<String>(&ids, 1024);
        let (later_leader, to_later_leader) = network.pop().expect("node 3");
        let (mut voter, mut to_voter) = network.pop().expect("node 2");
        let (outbox, inbound) = network.pop().expect("node 1");
        tokio::spawn(async move {
            while let Some((from, message)) = to_voter.recv().await {
                let grant = |term| RequestVoteResponse { term, granted: true };
                let answer = match message {
                    Message::PreVote(request) => Message::PreVoteResponse(grant(request.term)),
                    Message::RequestVote(request) => {
                        Message::RequestVoteResponse(grant(request.term))
                    }
                    _ => continue,
                };
                voter.send(from, answer);
            }
        });
        let mut config = Config::new(NodeId(1), ids);
        // Node 1 hears from no quorum after its election, yet must lead until deposed.
        config.check_quorum = false;
        let setup = NodeSetup {
            config,
            storage: MemoryStorage::<String>::default(),
            outbox,
            inbound,
            tick: Duration::from_millis(5),
            learners_max: usize::MAX,
        };
        let mut node = spawn_node(setup).expect("starts");
        let term = loop {
            let event = node.events.recv().await.expect("the driver runs");
            if let Event::LeaderChanged { term, leader: Some(NodeId(1)), role: Role::Leader } =
                event
            {
                break term;
            }
        };
        ScriptedLeader { node, later_leader, term, _to_later_leader: to_later_leader }
    }

    async fn send(node: &NodeHandle<String>, id: u64, request: Request<String>) {
        let request = ClientRequest { id: RequestId(id), request };
        node.requests.send(request).await.expect("the driver runs");
    }

    /// The answers to `ids` and whether a `Restore` came first, within 10 s.
    async fn answers(
        node: &mut NodeHandle<String>,
        ids: &[u64],
    ) -> (std::collections::BTreeMap<u64, Response<String>>, bool) {
        let mut answered = std::collections::BTreeMap::new();
        let mut restored = false;
        let collect = async {
            while answered.len() < ids.len() {
                match node.events.recv().await.expect("the driver runs") {
                    Event::Response { id, response } if ids.contains(&id.0) => {
                        answered.insert(id.0, response);
                    }
                    Event::Restore(_) => restored = true,
                    _ => {}
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), collect).await.expect("answered in time");
        (answered, restored)
    }

    /// Proposes one command and returns the index it was appended at (the last index).
    async fn propose_pending(node: &mut NodeHandle<String>, id: u64) -> LogIndex {
        send(node, id, Request::Propose(vec!["x".into()])).await;
        send(node, id + 1000, Request::Status).await;
        let (mut answered, _) = answers(node, &[id + 1000]).await;
        match answered.remove(&(id + 1000)) {
            Some(Response::Status(status)) => status.last_index,
            other => panic!("status expected, got {other:?}"),
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_pending_write_a_later_leaders_snapshot_covers_is_answered_outcome_unknown() {
        use stepraft::{InstallSnapshot, Message, SnapshotMeta};
        let ScriptedLeader { mut node, mut later_leader, term, .. } = scripted_leader().await;
        let index = propose_pending(&mut node, 1).await;
        send(&node, 2, Request::LinearizableRead).await;
        // Node 3 leads a later term and sends a snapshot past the write: it may hold it.
        let later = Term(term.0 + 1);
        let meta = SnapshotMeta {
            index: LogIndex(index.0 + 10),
            term: later,
            membership: Membership::with_voters([NodeId(1), NodeId(2), NodeId(3)]).into(),
        };
        let chunk = InstallSnapshot {
            term: later,
            attempt: 1,
            meta,
            total_bytes: 4,
            offset: 0,
            data: b"data".to_vec(),
        };
        later_leader.send(NodeId(1), Message::InstallSnapshot(chunk));
        let (answered, restored) = answers(&mut node, &[1, 2]).await;
        assert!(restored, "the snapshot was restored");
        let expected = RequestError::CoveredBySnapshot { index };
        assert_eq!(answered[&1], Response::Failed(expected.clone()));
        assert!(!expected.took_no_effect(), "outcome unknown");
        // The read was never confirmed: refused, and a refused read is no effect.
        let Response::Failed(read_error @ RequestError::Read(_)) = answered[&2].clone() else {
            panic!("the read is refused: {:?}", answered[&2]);
        };
        assert!(read_error.took_no_effect());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_pending_write_a_later_leader_overwrites_is_answered_no_effect() {
        use stepraft::{AppendEntries, Entry, Message, Payload};
        let ScriptedLeader { mut node, mut later_leader, term, .. } = scripted_leader().await;
        let index = propose_pending(&mut node, 1).await;
        // Node 3 leads a later term and commits its own entries at every index node 1 holds.
        let later = Term(term.0 + 1);
        let entries = (1..=index.0)
            .map(|i| Entry {
                term: later,
                index: LogIndex(i),
                payload: Payload::Command(format!("other {i}")),
            })
            .collect();
        let append = AppendEntries {
            term: later,
            prev_log_index: LogIndex(0),
            prev_log_term: Term(0),
            entries,
            leader_commit: index,
        };
        later_leader.send(NodeId(1), Message::AppendEntries(append));
        let (answered, _) = answers(&mut node, &[1]).await;
        let expected = RequestError::Lost { index };
        assert_eq!(answered[&1], Response::Failed(expected.clone()));
        assert!(expected.took_no_effect());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_write_to_a_deposed_leader_is_refused_with_no_effect() {
        use stepraft::{Heartbeat, Message};
        let ScriptedLeader { mut node, mut later_leader, term, .. } = scripted_leader().await;
        let heartbeat = Heartbeat { term: Term(term.0 + 1), commit: LogIndex(0), round: 1 };
        later_leader.send(NodeId(1), Message::Heartbeat(heartbeat));
        while !matches!(
            node.events.recv().await,
            Some(Event::LeaderChanged { leader: Some(NodeId(3)), .. })
        ) {}
        send(&node, 1, Request::Propose(vec!["x".into()])).await;
        let (answered, _) = answers(&mut node, &[1]).await;
        let Response::Failed(error @ RequestError::Propose(ProposeError::NotLeader { .. })) =
            answered[&1].clone()
        else {
            panic!("refused as not leader: {:?}", answered[&1]);
        };
        assert!(error.took_no_effect());
    }
}
