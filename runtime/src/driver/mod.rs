//! The driver: a tokio task that owns a [`stepraft::Node`] and is its whole IO layer.
//!
//! [`spawn_node`] starts it and returns a [`NodeHandle`]: a [`NodeClient`] whose requests are
//! each answered on their own channel, the stream of entries to apply, and a watch of who
//! leads. The task feeds the node ticks from a monotonic clock (after any stall, the ticks that
//! elapsed come before every other input: see `clock.rs`), messages from its [`Inbound`]
//! queue and requests from its clients, and executes the outputs in contract order:
//! **persist** (one write + one fsync per batch) → **send** → **apply** and answers.
//!
//! It emits `tracing` events with the node's id in the field `node`: at `info`, leadership
//! changes (`term`, `leader`, `role`), elections started, membership changes applied
//! (`index`, `term`, `voters`, `outgoing`, `learners`), snapshots taken, transfers started and
//! restores; at `warn`, a persist slower than [`SLOW_PERSIST`]; at `error`, a failed persist
//! (the driver then stops); at `debug`, inputs the core ignored, by
//! [`IgnoredReason`](stepraft::IgnoredReason), whenever a count reaches a power of two (the
//! first, the second, the fourth, ...: a peer that keeps sending the same stale message does
//! not make a line per tick).

mod api;
mod batch;
mod client;
pub(crate) mod clock;
mod observe;
mod run;
mod writer;

use std::time::Duration;

use stepraft::{Config, RestoreError};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use api::{Applied, Committed, Leadership, NodeStatus, Request, RequestError, Response};
pub use client::{Call, NodeClient};
#[cfg(feature = "metrics")]
pub(crate) use observe::Written;

use crate::network::{Inbound, Outbox};
use crate::storage::{Storage, StorageError};

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
    /// The storage writer thread stopped answering (it panicked inside the storage).
    #[error("the storage writer thread is gone")]
    StorageThreadLost,
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
    /// Whether a follower forwards the writes and membership changes it is asked for to the
    /// leader it knows, and answers them with the leader's answer (`true`), or refuses them
    /// with [`stepraft::ProposeError::NotLeader`], naming the leader (`false`: for an
    /// application that redirects its clients instead). Reads need no forwarding: a
    /// follower's read index is confirmed through the leader by the core itself.
    pub forward_to_leader: bool,
}

impl<T, S, O> NodeSetup<T, S, O> {
    /// A setup with the defaults: 50 ms ticks, no learner limit, forwarding on, and parallel
    /// leader writes ([`Config::leader_persist_acks`] turned on in `config`): the leader sends
    /// its entries to the followers while its own disk write is under way, so a write waits
    /// for one fsync on its critical path, not two in sequence. Set
    /// `setup.config.leader_persist_acks = false` to make the leader write first.
    pub fn new(mut config: Config, storage: S, outbox: O, inbound: Inbound<T>) -> Self {
        config.leader_persist_acks = true;
        NodeSetup {
            config,
            storage,
            outbox,
            inbound,
            tick: Duration::from_millis(50),
            learners_max: usize::MAX,
            forward_to_leader: true,
        }
    }
}

/// A running node: its client, its two streams, and the task itself.
///
/// The streams are independent, so a slow consumer of one never holds back the other, nor the
/// node: [`NodeHandle::applied`] is unbounded (its backlog is what the state machine has not
/// applied yet, which the log holds anyway), and [`NodeHandle::leadership`] keeps only the
/// latest value. Answers go to each request's own channel.
#[derive(Debug)]
pub struct NodeHandle<T> {
    /// Sends requests; clone it freely. Dropping every clone stops the driver.
    pub client: NodeClient<T>,
    /// Committed entries and snapshots to restore, in log order: the state machine's input.
    pub applied: mpsc::UnboundedReceiver<Applied<T>>,
    /// Who leads, as this node knows it; `changed()` wakes on every change.
    pub leadership: watch::Receiver<Leadership>,
    /// The driver task; it ends with an error when storage fails.
    pub task: JoinHandle<Result<(), DriverError>>,
    /// The node's metrics, updated after every batch ([`crate::metrics`]).
    #[cfg(feature = "metrics")]
    pub metrics: crate::metrics::NodeMetrics,
}

/// Bound of the request queue.
const QUEUE_CAPACITY: usize = 4096;

/// A persist (one batch's write and fsync) that takes longer than this is logged as a
/// warning (and counted in `stepraft_storage_slow_persists_total` with the `metrics`
/// feature): the node's followers and clients wait that long, and a leader that persists this
/// slowly risks losing its lease or its leadership.
pub const SLOW_PERSIST: Duration = Duration::from_secs(1);

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
    let (calls, requests) = mpsc::channel(QUEUE_CAPACITY);
    let (applied_sender, applied) = mpsc::unbounded_channel();
    let initial = Leadership { term: node.term(), leader: node.leader(), role: node.role() };
    let (leadership_sender, leadership) = watch::channel(initial);
    let streams = run::Streams { applied: applied_sender, leadership: leadership_sender };
    let observer = observe::Observer::new(&node);
    #[cfg(feature = "metrics")]
    let metrics = observer.metrics().clone();
    let driver = run::Driver::new(
        node,
        setup.storage,
        setup.outbox,
        streams,
        setup.learners_max,
        setup.forward_to_leader,
        observer,
    );
    let task = tokio::spawn(driver.run(setup.inbound, requests, setup.tick));
    Ok(NodeHandle {
        client: NodeClient { calls },
        applied,
        leadership,
        task,
        #[cfg(feature = "metrics")]
        metrics,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::{channel_network, PeerMessage};
    use crate::storage::MemoryStorage;
    use stepraft::{LogIndex, Membership, MembershipChange, NodeId, ProposeError, Role, Term};
    use tokio::sync::oneshot;

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
            forward_to_leader: true,
        };
        spawn_node(setup).expect("starts")
    }

    async fn answer(node: &NodeHandle<String>, request: Request<String>) -> Response<String> {
        node.client.call(request).await.expect("the driver runs and answers")
    }

    async fn wait_until_leading(node: &mut NodeHandle<String>) -> Term {
        let leading = |l: &Leadership| l.role == Role::Leader;
        node.leadership.wait_for(leading).await.expect("the driver runs").term
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_change_past_learners_max_is_refused_and_one_within_is_not() {
        let mut node = spawn_first_of(1, Duration::from_millis(1), 1);
        wait_until_leading(&mut node).await;
        let add = |id| Request::ChangeMembership(MembershipChange::AddLearner(NodeId(id)));
        let first = answer(&node, add(2)).await;
        assert!(matches!(first, Response::Committed { .. }), "{first:?}");
        let second = answer(&node, add(3)).await;
        let expected = RequestError::TooManyLearners { learners: 2, max: 1 };
        assert_eq!(second, Response::Failed(expected));
        // Removing a learner shrinks the set: never refused by the limit.
        let remove = Request::ChangeMembership(MembershipChange::RemoveNode(NodeId(2)));
        let third = answer(&node, remove).await;
        assert!(matches!(third, Response::Committed { .. }), "{third:?}");
    }

    /// The value of the series `name{labels}` in a metrics text, if it is there once.
    #[cfg(feature = "metrics")]
    fn metric(text: &str, series: &str) -> Option<f64> {
        let mut values =
            text.lines().filter_map(|line| line.strip_prefix(series)?.strip_prefix(' '));
        let value = values.next()?.parse().ok();
        assert!(values.next().is_none(), "{series} once");
        value
    }

    /// A running node's metrics follow what it does: a proposal is persisted (the counters
    /// and the fsync histogram grow), committed and delivered, and the role is leader.
    #[cfg(feature = "metrics")]
    #[tokio::test(flavor = "current_thread")]
    async fn the_metrics_of_a_running_node_show_its_persists_and_commits() {
        let mut node = spawn_first_of(1, Duration::from_millis(1), usize::MAX);
        let term = wait_until_leading(&mut node).await;
        // The metrics are published after the batch that made the node leader.
        let status = node.client.status().await.expect("runs");
        assert_eq!(status.term, term);
        let before = node.metrics.encode();
        let get = |text: &str, series: &str| {
            metric(text, series).unwrap_or_else(|| panic!("no {series} in:\n{text}"))
        };
        let persists = get(&before, "stepraft_storage_persists_total{node=\"1\"}");
        assert!(persists >= 1.0, "the election's vote was persisted");
        let committed = node.client.propose(vec!["x".into()]).await.expect("commits");
        node.client.status().await.expect("runs");
        let after = node.metrics.encode();
        assert!(get(&after, "stepraft_storage_persists_total{node=\"1\"}") > persists);
        let histogram_count = get(&after, "stepraft_storage_persist_seconds_count{node=\"1\"}");
        let infinite = "stepraft_storage_persist_seconds_bucket{node=\"1\",le=\"+Inf\"}";
        assert_eq!(get(&after, infinite), histogram_count);
        assert_eq!(
            histogram_count,
            get(&after, "stepraft_storage_persists_total{node=\"1\"}"),
            "one observation per persist"
        );
        assert!(get(&after, "stepraft_storage_appended_entries_total{node=\"1\"}") >= 2.0);
        assert_eq!(get(&after, "stepraft_storage_appended_bytes_total{node=\"1\"}"), 1.0, "\"x\"");
        let last = committed.last.0 as f64;
        assert!(get(&after, "stepraft_commit_index{node=\"1\"}") >= last);
        assert!(get(&after, "stepraft_delivered_index{node=\"1\"}") >= last);
        assert_eq!(get(&after, "stepraft_role{node=\"1\",role=\"leader\"}"), 1.0);
        assert_eq!(get(&after, "stepraft_leader_id{node=\"1\"}"), 1.0);
        assert_eq!(get(&after, "stepraft_term{node=\"1\"}"), term.0 as f64);
        assert!(get(&after, "stepraft_leader_changes_total{node=\"1\"}") >= 1.0);
        assert_eq!(get(&after, "stepraft_elections_started_total{node=\"1\"}"), 1.0);
        // The application has not reported, so no lag is claimed; once it has, it is.
        assert_eq!(metric(&after, "stepraft_apply_lag_entries{node=\"1\"}"), None);
        node.metrics.set_application_applied(LogIndex(committed.last.0 - 1));
        let lag = get(&node.metrics.encode(), "stepraft_apply_lag_entries{node=\"1\"}");
        assert_eq!(lag, 1.0);
    }

    /// After a stall, the elapsed ticks are stepped before the request that waited through
    /// it: the node has already timed out its leader when it answers. (Stepping one missed
    /// tick per loop pass answered the request from a node that had seen one tick.)
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_request_after_a_stall_sees_the_time_that_passed() {
        let node = spawn_first_of(3, Duration::from_millis(10), usize::MAX);
        let role = |response: Response<String>| match response {
            Response::Status(status) => status.role,
            other => panic!("not a status: {other:?}"),
        };
        assert_eq!(role(answer(&node, Request::Status).await), stepraft::Role::Follower);
        // The driver does not run while the clock moves on: a stall of 2 s (200 ticks, more
        // than any election timeout).
        tokio::time::advance(Duration::from_secs(2)).await;
        let after = role(answer(&node, Request::Status).await);
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
            while let Some((from, PeerMessage::Raft(message))) = to_voter.recv().await {
                let grant = |term| RequestVoteResponse { term, granted: true };
                let answer = match message {
                    Message::PreVote(request) => Message::PreVoteResponse(grant(request.term)),
                    Message::RequestVote(request) => {
                        Message::RequestVoteResponse(grant(request.term))
                    }
                    _ => continue,
                };
                voter.send(from, PeerMessage::Raft(answer));
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
            // Node 3 never answers a forwarded request: a deposed node 1 refuses instead.
            forward_to_leader: false,
        };
        let mut node = spawn_node(setup).expect("starts");
        let term = wait_until_leading(&mut node).await;
        ScriptedLeader { node, later_leader, term, _to_later_leader: to_later_leader }
    }

    fn send(
        node: &NodeHandle<String>,
        request: Request<String>,
    ) -> oneshot::Receiver<Response<String>> {
        node.client.try_call(request).expect("the driver takes the request")
    }

    async fn answered(answer: oneshot::Receiver<Response<String>>) -> Response<String> {
        let answer = tokio::time::timeout(Duration::from_secs(10), answer).await;
        answer.expect("answered in time").expect("answered")
    }

    /// Whether a snapshot to restore was delivered on the applied stream by now.
    fn restored(node: &mut NodeHandle<String>) -> bool {
        let mut restored = false;
        while let Ok(applied) = node.applied.try_recv() {
            restored |= matches!(applied, Applied::Restore(_));
        }
        restored
    }

    /// Proposes one command; returns the index it was appended at and where its answer comes.
    async fn propose_pending(
        node: &NodeHandle<String>,
    ) -> (LogIndex, oneshot::Receiver<Response<String>>) {
        let write = send(node, Request::Propose(vec!["x".into()]));
        match answered(send(node, Request::Status)).await {
            Response::Status(status) => (status.last_index, write),
            other => panic!("status expected, got {other:?}"),
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_pending_write_a_later_leaders_snapshot_covers_is_answered_outcome_unknown() {
        use stepraft::{InstallSnapshot, Message, SnapshotMeta};
        let ScriptedLeader { mut node, mut later_leader, term, .. } = scripted_leader().await;
        let (index, write) = propose_pending(&node).await;
        let read = send(&node, Request::LinearizableRead);
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
        later_leader.send(NodeId(1), PeerMessage::Raft(Message::InstallSnapshot(chunk)));
        let (write, read) = (answered(write).await, answered(read).await);
        assert!(restored(&mut node), "the snapshot was restored");
        let expected = RequestError::CoveredBySnapshot { index };
        assert_eq!(write, Response::Failed(expected.clone()));
        assert!(!expected.took_no_effect(), "outcome unknown");
        // The read was never confirmed: refused, and a refused read is no effect.
        let Response::Failed(read_error @ RequestError::Read(_)) = read.clone() else {
            panic!("the read is refused: {read:?}");
        };
        assert!(read_error.took_no_effect());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_pending_write_a_later_leader_overwrites_is_answered_no_effect() {
        use stepraft::{AppendEntries, Entry, Message, Payload};
        let ScriptedLeader { node, mut later_leader, term, .. } = scripted_leader().await;
        let (index, write) = propose_pending(&node).await;
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
        later_leader.send(NodeId(1), PeerMessage::Raft(Message::AppendEntries(append)));
        let expected = RequestError::Lost { index };
        assert_eq!(answered(write).await, Response::Failed(expected.clone()));
        assert!(expected.took_no_effect());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_write_to_a_deposed_leader_is_refused_with_no_effect() {
        use stepraft::{Heartbeat, Message};
        let ScriptedLeader { mut node, mut later_leader, term, .. } = scripted_leader().await;
        let heartbeat = Heartbeat { term: Term(term.0 + 1), commit: LogIndex(0), round: 1 };
        later_leader.send(NodeId(1), PeerMessage::Raft(Message::Heartbeat(heartbeat)));
        let deposed = |l: &Leadership| l.leader == Some(NodeId(3));
        node.leadership.wait_for(deposed).await.expect("the driver runs");
        let answer = answered(send(&node, Request::Propose(vec!["x".into()]))).await;
        let Response::Failed(error @ RequestError::Propose(ProposeError::NotLeader { .. })) =
            answer.clone()
        else {
            panic!("refused as not leader: {answer:?}");
        };
        assert!(error.took_no_effect());
    }

    /// Memory storage whose writes of a snapshot take `delay`, as a large snapshot on a slow
    /// disk does.
    struct SlowSnapshots {
        inner: MemoryStorage<String>,
        delay: Duration,
    }

    impl Storage<String> for SlowSnapshots {
        fn load(&self) -> Result<stepraft::DurableState<String>, StorageError> {
            self.inner.load()
        }

        fn persist(&self, changes: &[stepraft::Persist<String>]) -> Result<(), StorageError> {
            if changes.iter().any(|change| matches!(change, stepraft::Persist::Snapshot(_))) {
                std::thread::sleep(self.delay);
            }
            self.inner.persist(changes)
        }
    }

    /// Recording a snapshot the application took does not hold up the loop while it is
    /// written: the node answers at once, and goes on answering other requests.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_snapshot_write_does_not_block_the_loop() {
        let ids = [NodeId(1)];
        let (outbox, inbound) = channel_network::<String>(&ids, 16).swap_remove(0);
        let storage =
            SlowSnapshots { inner: MemoryStorage::default(), delay: Duration::from_secs(2) };
        let setup = NodeSetup::new(Config::new(NodeId(1), ids), storage, outbox, inbound);
        let mut node =
            spawn_node(NodeSetup { tick: Duration::from_millis(5), ..setup }).expect("starts");
        wait_until_leading(&mut node).await;
        let committed = node.client.propose(vec!["x".into()]).await.expect("commits");
        let started = std::time::Instant::now();
        let snapshot = Request::Snapshot { index: committed.last, data: b"state".to_vec() };
        let answer = answer(&node, snapshot).await;
        assert_eq!(answer, Response::SnapshotTaken { index: committed.last });
        let status = node.client.status().await.expect("runs");
        assert_eq!(status.snapshot_index, committed.last);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "answered after {:?}, while the snapshot was written",
            started.elapsed()
        );
    }

    /// Memory storage the test can look into, counting the writes.
    struct Observed {
        inner: std::sync::Arc<MemoryStorage<String>>,
        writes: std::sync::Arc<std::sync::atomic::AtomicU64>,
    }

    impl Storage<String> for Observed {
        fn load(&self) -> Result<stepraft::DurableState<String>, StorageError> {
            self.inner.load()
        }

        fn persist(&self, changes: &[stepraft::Persist<String>]) -> Result<(), StorageError> {
            self.writes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.inner.persist(changes)
        }
    }

    /// A hard state that only moves the commit index costs no write of its own while nothing
    /// else is written, and is written on its own once an election timeout has passed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_only_hard_state_waits_for_the_next_write_or_an_election_timeout() {
        use std::sync::atomic::Ordering;
        let ids = [NodeId(1)];
        let (outbox, inbound) = channel_network::<String>(&ids, 16).swap_remove(0);
        let inner = std::sync::Arc::new(MemoryStorage::default());
        let writes = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let storage = Observed { inner: inner.clone(), writes: writes.clone() };
        let mut config = Config::new(NodeId(1), ids);
        // 100 ticks of 5 ms: 0.5 s, far beyond the first check even on a loaded machine.
        config.election_ticks = 100;
        let setup = NodeSetup::new(config, storage, outbox, inbound);
        let tick = Duration::from_millis(5);
        let mut node = spawn_node(NodeSetup { tick, ..setup }).expect("starts");
        wait_until_leading(&mut node).await;
        let committed = node.client.propose(vec!["x".into()]).await.expect("commits");
        let stored_commit = || inner.load().expect("loads").hard_state.commit;
        // The entry is durable (the leader counted itself only once it was), its commit index
        // not yet: no write was spent on it alone.
        let after_commit = writes.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(writes.load(Ordering::SeqCst), after_commit, "no write for the commit alone");
        assert!(stored_commit() < committed.last);
        // Idle for an election timeout: it goes out, once.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while stored_commit() < committed.last && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(stored_commit(), committed.last);
        assert_eq!(writes.load(Ordering::SeqCst), after_commit + 1);
    }
}
