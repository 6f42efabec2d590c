//! The driver task's loop: gather a batch of inputs, persist, then execute.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use stepraft::{
    Command, Entry, HardState, Input, LogIndex, MembershipChange, Node, NodeId, Output, Payload,
    Persist, Proposal, ProposalId, ReadId, Role, Snapshot, Term,
};
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, oneshot, watch};

use super::api::{Applied, Committed, Leadership, NodeStatus, Request, RequestError, Response};
use super::batch::{Action, Batch, Reply};
use super::client::Call;
use super::clock::TickClock;
use super::observe::Observer;
use super::writer::{BackgroundDone, WriteOutcome, Writer};
use super::DriverError;
use crate::network::{ForwardAnswer, Forwarded, Inbound, Outbox, PeerMessage};
use crate::storage::Storage;

/// Most inputs stepped into one batch: bounds the latency a batch adds to its first input.
const BATCH_INPUTS_MAX: usize = 512;

/// Forwarded requests wait for the leader's answer this many election timeouts, then are
/// answered "outcome unknown".
const FORWARD_TIMEOUT_ELECTIONS: u64 = 4;

/// A request forwarded to the leader, waiting for its answer.
struct PendingForward<T> {
    leader: NodeId,
    reply: oneshot::Sender<Response<T>>,
    /// The tick count after which it is answered "outcome unknown".
    deadline: u64,
}

/// A proposal appended on this node, waiting to be applied.
struct PendingProposal<T> {
    reply: Reply<T>,
    first: LogIndex,
    term: Term,
}

/// A snapshot the application took, whose data the storage has made durable (or failed to):
/// its `Persist::Snapshot` and `Persist::Compact` go to the writer next.
pub(super) struct StagedSnapshot<T> {
    index: LogIndex,
    persists: Vec<Persist<T>>,
    result: Result<(), crate::storage::StorageError>,
}

/// Where the driver delivers what is not an answer.
pub(super) struct Streams<T> {
    pub applied: mpsc::UnboundedSender<Applied<T>>,
    pub leadership: watch::Sender<Leadership>,
}

pub(super) struct Driver<T, S, O> {
    node: Node<T>,
    storage: Arc<S>,
    /// Started by `run`: the thread that makes writes durable, in order.
    writer: Option<Writer<T>>,
    /// The `(term, vote)` of the last hard state handed to the writer: a hard state that
    /// changes only the commit index is deferred (see `execute`).
    handed_vote: (Term, Option<NodeId>),
    /// A commit-only hard state not yet handed over, and the tick count when it was deferred.
    deferred: Option<(HardState, u64)>,
    /// The index of the newest snapshot handed to the writer.
    handed_snapshot: LogIndex,
    /// Where snapshots staged off the loop report (see `stage_local_snapshot`).
    staged: mpsc::UnboundedSender<StagedSnapshot<T>>,
    staged_done: Option<mpsc::UnboundedReceiver<StagedSnapshot<T>>>,
    outbox: O,
    streams: Streams<T>,
    /// The last index delivered on the applied stream.
    applied: LogIndex,
    next_core_id: u64,
    proposals: BTreeMap<ProposalId, Reply<T>>,
    reads: BTreeMap<ReadId, Reply<T>>,
    /// Accepted proposals by their last index.
    appended: BTreeMap<LogIndex, PendingProposal<T>>,
    /// Confirmed reads waiting for their index to be applied.
    ready_reads: Vec<(LogIndex, Reply<T>)>,
    /// Ticks stepped so far.
    ticks: u64,
    /// Whether a follower forwards writes and membership changes to the leader.
    forward_to_leader: bool,
    /// Requests forwarded to the leader, by id.
    forwards: BTreeMap<u64, PendingForward<T>>,
    /// Forwarded requests the leader committed, waiting until this node delivered them.
    forwarded_commits: Vec<(LogIndex, oneshot::Sender<Response<T>>, Response<T>)>,
    scratch: Vec<Output<T>>,
    /// See [`super::NodeSetup::learners_max`].
    learners_max: usize,
    observer: Observer,
}

impl<T, S, O> Driver<T, S, O>
where
    T: Command + Send + Sync + 'static,
    S: Storage<T>,
    O: Outbox<T>,
{
    pub fn new(
        node: Node<T>,
        storage: S,
        outbox: O,
        streams: Streams<T>,
        learners_max: usize,
        forward_to_leader: bool,
        observer: Observer,
    ) -> Self {
        let hard_state = node.hard_state();
        let handed_snapshot = node.snapshot().map_or(LogIndex(0), |snapshot| snapshot.meta.index);
        let (staged, staged_done) = mpsc::unbounded_channel();
        Driver {
            handed_snapshot,
            staged,
            staged_done: Some(staged_done),
            node,
            storage: Arc::new(storage),
            writer: None,
            handed_vote: (hard_state.term, hard_state.voted_for),
            deferred: None,
            outbox,
            streams,
            applied: LogIndex(0),
            next_core_id: 1,
            proposals: BTreeMap::new(),
            reads: BTreeMap::new(),
            appended: BTreeMap::new(),
            ready_reads: Vec::new(),
            ticks: 0,
            forward_to_leader,
            forwards: BTreeMap::new(),
            forwarded_commits: Vec::new(),
            scratch: Vec::new(),
            learners_max,
            observer,
        }
    }

    /// Runs until every client is dropped or storage fails; then lets the storage thread
    /// finish what it was handed and releases the storage.
    pub async fn run(
        mut self,
        inbound: Inbound<T>,
        requests: mpsc::Receiver<Call<T>>,
        tick: Duration,
    ) -> Result<(), DriverError> {
        let (completions, background) = mpsc::unbounded_channel();
        self.writer = Some(Writer::start(Arc::clone(&self.storage), completions));
        let staged = self.staged_done.take().expect("run once");
        let result = self.run_loop(inbound, requests, background, staged, tick).await;
        if let Some(writer) = self.writer.take() {
            writer.close().await;
        }
        result
    }

    async fn run_loop(
        &mut self,
        mut inbound: Inbound<T>,
        mut requests: mpsc::Receiver<Call<T>>,
        mut background: mpsc::UnboundedReceiver<BackgroundDone>,
        mut staged: mpsc::UnboundedReceiver<StagedSnapshot<T>>,
        tick: Duration,
    ) -> Result<(), DriverError> {
        // Time that passed is stepped as ticks before any input that follows it, however long
        // the loop could not run (see `clock.rs`: the lease contract).
        let burst_max = 4 * u64::from(self.node.config().election_ticks);
        let mut clock = TickClock::new(tick, tokio::time::Instant::now(), burst_max);
        let mut inbound_open = true;
        let mut follow_up: Option<Input<T>> = None;
        loop {
            let mut batch = Batch::default();
            self.step_elapsed_ticks(&mut clock, &mut batch);
            if let Some(input) = follow_up.take() {
                self.step(input, &mut batch);
            } else {
                tokio::select! {
                    _ = tokio::time::sleep_until(clock.next_due()) => {
                        self.step_elapsed_ticks(&mut clock, &mut batch)
                    }
                    message = inbound.recv(), if inbound_open => match message {
                        Some((from, message)) => {
                            self.step_elapsed_ticks(&mut clock, &mut batch);
                            self.on_peer_message(from, message, &mut batch)
                        }
                        None => inbound_open = false,
                    },
                    request = requests.recv() => match request {
                        Some(request) => {
                            self.step_elapsed_ticks(&mut clock, &mut batch);
                            self.on_request(request, &mut batch)
                        }
                        None => return Ok(()),
                    },
                    Some(done) = background.recv() => {
                        self.step_elapsed_ticks(&mut clock, &mut batch);
                        self.on_background_done(done, &mut batch)?
                    }
                    Some(snapshot) = staged.recv() => self.on_staged(snapshot)?,
                }
            }
            // Group commit: step whatever else is already waiting before the fsync.
            for _ in 0..BATCH_INPUTS_MAX {
                self.step_elapsed_ticks(&mut clock, &mut batch);
                if let Ok(done) = background.try_recv() {
                    self.on_background_done(done, &mut batch)?;
                    continue;
                }
                if inbound_open {
                    match inbound.try_recv() {
                        Ok((from, message)) => {
                            self.on_peer_message(from, message, &mut batch);
                            continue;
                        }
                        Err(TryRecvError::Disconnected) => inbound_open = false,
                        Err(TryRecvError::Empty) => {}
                    }
                }
                match requests.try_recv() {
                    Ok(request) => self.on_request(request, &mut batch),
                    Err(_) => break,
                }
            }
            let persisted = self.execute(batch).await?;
            self.observer.after_batch(&self.node, self.applied);
            if let Some((index, term)) = persisted {
                follow_up = Some(Input::Persisted { index, term });
            }
        }
    }

    /// Steps the ticks that became due since the last call, before whatever input follows.
    fn step_elapsed_ticks(&mut self, clock: &mut TickClock, batch: &mut Batch<T>) {
        let due = clock.take_due(tokio::time::Instant::now());
        for _ in 0..due {
            self.step(Input::Tick, batch);
        }
        if due > 0 {
            self.ticks += due;
            self.expire_forwards();
        }
    }

    fn on_peer_message(&mut self, from: NodeId, message: PeerMessage<T>, batch: &mut Batch<T>) {
        match message {
            PeerMessage::Raft(message) => self.step(Input::Receive { from, message }, batch),
            PeerMessage::Forward { id, request } => self.on_forwarded(from, id, request, batch),
            PeerMessage::ForwardAnswer { id, answer } => self.on_forward_answer(from, id, answer),
            // `PeerMessage` is non-exhaustive only for later versions of this crate.
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }

    fn step(&mut self, input: Input<T>, batch: &mut Batch<T>) {
        self.node.step_into(input, &mut self.scratch);
        batch.add_outputs(self.scratch.drain(..));
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_core_id;
        self.next_core_id += 1;
        id
    }

    fn on_request(&mut self, call: Call<T>, batch: &mut Batch<T>) {
        let Call { request, reply } = call;
        match self.forward_target(&request) {
            Some(leader) => self.forward(leader, request, reply),
            None => self.serve(request, Reply::Local(reply), batch),
        }
    }

    /// Serves a request here, answering `id`: a caller of this node or a follower that
    /// forwarded it.
    fn serve(&mut self, request: Request<T>, id: Reply<T>, batch: &mut Batch<T>) {
        match request {
            Request::Propose(commands) => {
                let proposal = ProposalId(self.next_id());
                self.proposals.insert(proposal, id);
                self.step(Input::Propose(Proposal::batch(proposal, commands)), batch);
            }
            Request::ConditionalAppend { commands, last_index, last_term } => {
                let proposal = ProposalId(self.next_id());
                self.proposals.insert(proposal, id);
                let proposal =
                    Proposal::batch(proposal, commands).if_last_entry_is(last_index, last_term);
                self.step(Input::Propose(proposal), batch);
            }
            Request::ChangeMembership(change) => {
                if let Some(error) = self.exceeds_learners_max(&change) {
                    batch.actions.push(Action::Respond(id, Response::Failed(error)));
                    return;
                }
                let proposal = ProposalId(self.next_id());
                self.proposals.insert(proposal, id);
                self.step(Input::ChangeMembership { id: proposal, change }, batch);
            }
            Request::LinearizableRead => {
                let read = ReadId(self.next_id());
                self.reads.insert(read, id);
                self.step(Input::ReadIndex(read), batch);
            }
            Request::TransferLeadership(target) => {
                self.node.step_into(Input::TransferLeadership(target), &mut self.scratch);
                let refused = self.scratch.iter().find_map(|output| match output {
                    Output::TransferRejected { target: t, error } if *t == target => Some(*error),
                    _ => None,
                });
                batch.add_outputs(self.scratch.drain(..));
                let response = match refused {
                    Some(error) => Response::Failed(RequestError::Transfer(error)),
                    None => Response::TransferStarted,
                };
                batch.actions.push(Action::Respond(id, response));
            }
            Request::Snapshot { index, data } => {
                let input = Input::SnapshotTaken { index, data: data.into() };
                self.node.step_into(input, &mut self.scratch);
                let refused = self.scratch.iter().find_map(|output| match output {
                    Output::SnapshotRejected { index: at, error } if *at == index => Some(*error),
                    _ => None,
                });
                let mut recorded = Vec::new();
                let others: Vec<Output<T>> = self
                    .scratch
                    .drain(..)
                    .filter_map(|output| match output {
                        Output::Persist(
                            change @ (Persist::Snapshot(_) | Persist::Compact { .. }),
                        ) => {
                            recorded.push(change);
                            None
                        }
                        other => Some(other),
                    })
                    .collect();
                batch.add_outputs(others);
                self.stage_local_snapshot(recorded);
                let response = match refused {
                    Some(error) => Response::Failed(RequestError::Snapshot(error)),
                    None => Response::SnapshotTaken { index },
                };
                batch.actions.push(Action::Respond(id, response));
            }
            Request::ReadRange { start, end, commands_only } => {
                let response = match self.node.entries(start..=end) {
                    Ok(entries) if commands_only => Response::Entries(
                        entries
                            .iter()
                            .filter(|entry| matches!(entry.payload, Payload::Command(_)))
                            .cloned()
                            .collect(),
                    ),
                    Ok(entries) => Response::Entries(entries.to_vec()),
                    Err(error) => Response::Failed(RequestError::Range(error)),
                };
                batch.actions.push(Action::Respond(id, response));
            }
            Request::Status => {
                let status = NodeStatus {
                    id: self.node.id(),
                    role: self.node.role(),
                    term: self.node.term(),
                    leader: self.node.leader(),
                    commit: self.node.commit_index(),
                    applied: self.node.applied_index(),
                    last_index: self.node.last_index(),
                    last_term: self.node.last_term(),
                    first_index: self.node.first_index(),
                    snapshot_index: self
                        .node
                        .snapshot()
                        .map_or(LogIndex(0), |snapshot| snapshot.meta.index),
                    membership: self.node.membership().clone(),
                    stats: self.node.stats(),
                };
                batch.actions.push(Action::Respond(id, Response::Status(Box::new(status))));
            }
        }
    }

    /// The leader to forward `request` to: a write or membership change made on a follower
    /// that knows its leader, when forwarding is on.
    fn forward_target(&self, request: &Request<T>) -> Option<NodeId> {
        let forwardable = matches!(
            request,
            Request::Propose(_) | Request::ConditionalAppend { .. } | Request::ChangeMembership(_)
        );
        let leader = self.node.leader().filter(|&leader| leader != self.node.id())?;
        (self.forward_to_leader && forwardable && self.node.role() != Role::Leader)
            .then_some(leader)
    }

    /// Sends `request` on to `leader`; its answer (or the lack of one) answers `reply`.
    fn forward(
        &mut self,
        leader: NodeId,
        request: Request<T>,
        reply: oneshot::Sender<Response<T>>,
    ) {
        let request = match request {
            Request::Propose(commands) => Forwarded::Propose(commands),
            Request::ConditionalAppend { commands, last_index, last_term } => {
                Forwarded::ConditionalAppend { commands, last_index, last_term }
            }
            Request::ChangeMembership(change) => Forwarded::ChangeMembership(change),
            // `forward_target` lets only the kinds above through.
            _ => return,
        };
        let id = self.next_id();
        let deadline =
            self.ticks + FORWARD_TIMEOUT_ELECTIONS * u64::from(self.node.config().election_ticks);
        self.forwards.insert(id, PendingForward { leader, reply, deadline });
        self.outbox.send(leader, PeerMessage::Forward { id, request });
    }

    /// A request a follower forwarded: served here if this node leads, else refused with the
    /// leader it knows (never forwarded again).
    fn on_forwarded(&mut self, peer: NodeId, id: u64, request: Forwarded<T>, batch: &mut Batch<T>) {
        if self.node.role() != Role::Leader {
            let answer = ForwardAnswer::NotLeader { leader: self.node.leader() };
            self.outbox.send(peer, PeerMessage::ForwardAnswer { id, answer });
            return;
        }
        let request = match request {
            Forwarded::Propose(commands) => Request::Propose(commands),
            Forwarded::ConditionalAppend { commands, last_index, last_term } => {
                Request::ConditionalAppend { commands, last_index, last_term }
            }
            Forwarded::ChangeMembership(change) => Request::ChangeMembership(change),
            // `Forwarded` is non-exhaustive only for later versions of this crate.
            #[allow(unreachable_patterns)]
            _ => {
                let answer = ForwardAnswer::Refused("unknown request kind".into());
                self.outbox.send(peer, PeerMessage::ForwardAnswer { id, answer });
                return;
            }
        };
        self.serve(request, Reply::Remote { peer, id }, batch);
    }

    /// The leader's answer to a request this node forwarded. A commit is answered once this
    /// node has delivered the entries too, as a local one would be.
    fn on_forward_answer(&mut self, peer: NodeId, id: u64, answer: ForwardAnswer) {
        let Some(pending) = self.forwards.remove(&id) else { return };
        if pending.leader != peer {
            self.forwards.insert(id, pending); // not from the node it was sent to
            return;
        }
        let leader = pending.leader;
        let response = match answer {
            ForwardAnswer::Committed { first, last, term } => {
                let response = Response::Committed(Committed { first, last, term });
                self.forwarded_commits.push((last, pending.reply, response));
                self.release_forwarded_commits();
                return;
            }
            ForwardAnswer::NotLeader { leader } => {
                let term = self.node.term();
                RequestError::Propose(stepraft::ProposeError::NotLeader { leader, term })
            }
            ForwardAnswer::Refused(reason) => RequestError::ForwardRefused { leader, reason },
            ForwardAnswer::Unknown(reason) => RequestError::ForwardUnknown { leader, reason },
            #[allow(unreachable_patterns)]
            _ => RequestError::ForwardUnknown { leader, reason: "unknown answer kind".into() },
        };
        let _ = pending.reply.send(Response::Failed(response));
    }

    /// Answers the forwarded requests whose commit this node has delivered.
    fn release_forwarded_commits(&mut self) {
        let applied = self.applied;
        let (ready, waiting) = std::mem::take(&mut self.forwarded_commits)
            .into_iter()
            .partition::<Vec<_>, _>(|(last, _, _)| *last <= applied);
        self.forwarded_commits = waiting;
        for (_, reply, response) in ready {
            let _ = reply.send(response);
        }
    }

    /// Forwarded requests the leader has not answered in time: their outcome is unknown.
    fn expire_forwards(&mut self) {
        let now = self.ticks;
        let expired: Vec<u64> =
            self.forwards.iter().filter(|(_, f)| f.deadline <= now).map(|(&id, _)| id).collect();
        for id in expired {
            if let Some(pending) = self.forwards.remove(&id) {
                let reason = "no answer from the leader in time".to_owned();
                let error = RequestError::ForwardUnknown { leader: pending.leader, reason };
                let _ = pending.reply.send(Response::Failed(error));
            }
        }
    }

    /// Answers `reply`: the caller's channel, or the follower that forwarded the request.
    fn respond(&mut self, reply: Reply<T>, response: Response<T>) {
        match reply {
            // A caller that stopped waiting has dropped its receiver.
            Reply::Local(reply) => {
                let _ = reply.send(response);
            }
            Reply::Remote { peer, id } => {
                let answer = match response {
                    Response::Committed(Committed { first, last, term }) => {
                        ForwardAnswer::Committed { first, last, term }
                    }
                    Response::Failed(RequestError::Propose(
                        stepraft::ProposeError::NotLeader { leader, .. },
                    )) => ForwardAnswer::NotLeader { leader },
                    Response::Failed(error) if error.took_no_effect() => {
                        ForwardAnswer::Refused(error.to_string())
                    }
                    Response::Failed(error) => ForwardAnswer::Unknown(error.to_string()),
                    _ => ForwardAnswer::Unknown("unexpected answer".into()),
                };
                self.outbox.send(peer, PeerMessage::ForwardAnswer { id, answer });
            }
        }
    }

    /// The refusal of a change that would grow the learners past `learners_max`, checked
    /// against the latest configuration, which is the one the core applies the change to. A
    /// change that does not apply is left to the core to refuse.
    fn exceeds_learners_max(&self, change: &MembershipChange) -> Option<RequestError> {
        let current = self.node.membership();
        let next = current.apply(change, self.node.config().max_voters).ok()?;
        let learners = next.learners.len();
        let grows_past = learners > self.learners_max && learners > current.learners.len();
        grows_past.then_some(RequestError::TooManyLearners { learners, max: self.learners_max })
    }

    /// Writes a snapshot the application took without holding up the loop or the writer: the
    /// storage stages its data on a blocking thread (a file of its own, for redb), and only
    /// then are its `Persist::Snapshot` and `Persist::Compact` — by now small records — handed
    /// to the writer, in the background. Nothing that follows depends on them: a crash before
    /// they land restarts from the previous snapshot and the full log, and a snapshot sent to a
    /// follower meanwhile holds only committed state.
    fn stage_local_snapshot(&mut self, persists: Vec<Persist<T>>) {
        let snapshot = persists.iter().find_map(|change| match change {
            Persist::Snapshot(snapshot) => Some(snapshot.clone()),
            _ => None,
        });
        let Some(snapshot) = snapshot else { return };
        let (storage, done) = (Arc::clone(&self.storage), self.staged.clone());
        tokio::task::spawn_blocking(move || {
            let result = storage.stage_snapshot(&snapshot);
            let _ = done.send(StagedSnapshot { index: snapshot.meta.index, persists, result });
        });
    }

    /// A staged snapshot is durable: record it, unless a newer one was handed over meanwhile.
    fn on_staged(&mut self, staged: StagedSnapshot<T>) -> Result<(), DriverError> {
        staged.result?;
        if staged.index <= self.handed_snapshot {
            return Ok(());
        }
        self.handed_snapshot = staged.index;
        let writer = self.writer.as_ref().ok_or(DriverError::StorageThreadLost)?;
        if !writer.write_in_background(staged.persists, None) {
            return Err(DriverError::StorageThreadLost);
        }
        Ok(())
    }

    /// A background write finished: acknowledge the leader appends it made durable.
    fn on_background_done(
        &mut self,
        done: BackgroundDone,
        batch: &mut Batch<T>,
    ) -> Result<(), DriverError> {
        self.observe_write(&done.outcome);
        done.outcome.result?;
        if let Some((index, term)) = done.async_last {
            self.step(Input::Persisted { index, term }, batch);
        }
        Ok(())
    }

    fn observe_write(&self, outcome: &WriteOutcome) {
        if let Some((written, elapsed)) = outcome.transaction {
            self.observer.on_persist(written, elapsed, outcome.result.as_ref().err());
        } else if let Err(error) = &outcome.result {
            self.observer.on_persist(Default::default(), Duration::ZERO, Some(error));
        }
    }

    /// Whether a commit-only hard state has been deferred for an election timeout: it then goes
    /// out on its own (in the background), so that an idle node's stored commit index does not
    /// lag for long.
    fn deferred_is_due(&self) -> bool {
        self.deferred.is_some_and(|(_, since)| {
            self.ticks.saturating_sub(since) >= u64::from(self.node.config().election_ticks)
        })
    }

    /// Makes the batch's persists durable, then executes the rest in order. Returns the
    /// background append to acknowledge, if any.
    ///
    /// What the loop waits for: a hard state with a new term or vote, and every persist other
    /// than a leader's own append under parallel leader writes. A hard state that only moves
    /// the commit index is deferred and rides along with the next write (or goes out on its
    /// own in the background after an election timeout): a stored commit index that lags is
    /// safe, since a restarted node learns the commit index from its leader, and the core never
    /// stores one beyond the durable log. A batch with nothing to wait for is written in the
    /// background while its messages leave: the leader's disk write then overlaps its
    /// followers' (thesis §10.2.1), and the core counts the leader's own copy only once it is
    /// acknowledged.
    async fn execute(&mut self, batch: Batch<T>) -> Result<Option<(LogIndex, Term)>, DriverError> {
        let Batch { persists, actions, async_last, must_wait } = batch;
        let mut job = Vec::with_capacity(persists.len() + 1);
        let mut wait = must_wait;
        for persist in persists {
            match persist {
                Persist::HardState(hard_state)
                    if (hard_state.term, hard_state.voted_for) == self.handed_vote =>
                {
                    let since = self.deferred.map_or(self.ticks, |(_, since)| since);
                    self.deferred = Some((hard_state, since));
                }
                Persist::HardState(hard_state) => {
                    // Newer than anything deferred, which it replaces.
                    self.handed_vote = (hard_state.term, hard_state.voted_for);
                    self.deferred = None;
                    wait = true;
                    job.push(Persist::HardState(hard_state));
                }
                other => job.push(other),
            }
        }
        for change in &job {
            if let Persist::Snapshot(snapshot) = change {
                self.handed_snapshot = self.handed_snapshot.max(snapshot.meta.index);
            }
        }
        let mut async_last = async_last;
        if !job.is_empty() || self.deferred_is_due() {
            if let Some((hard_state, _)) = self.deferred.take() {
                job.push(Persist::HardState(hard_state));
            }
            let writer = self.writer.as_ref().ok_or(DriverError::StorageThreadLost)?;
            if wait {
                let outcome = writer.write(job).ok_or(DriverError::StorageThreadLost)?;
                let outcome = outcome.await.map_err(|_| DriverError::StorageThreadLost)?;
                self.observe_write(&outcome);
                outcome.result?;
            } else {
                if !writer.write_in_background(job, async_last) {
                    return Err(DriverError::StorageThreadLost);
                }
                async_last = None;
            }
        }
        for action in actions {
            match action {
                Action::Respond(reply, response) => self.respond(reply, response),
                Action::Output(output) => self.execute_output(output),
            }
        }
        Ok(async_last)
    }

    fn execute_output(&mut self, output: Output<T>) {
        match output {
            Output::Send { to, message } => self.outbox.send(to, PeerMessage::Raft(message)),
            Output::Apply(entries) => self.on_apply(entries),
            Output::LeaderChanged { term, leader } => {
                self.observer.on_leader_changed(term, leader);
                let role = self.node.role();
                self.streams.leadership.send_replace(Leadership { term, leader, role });
            }
            Output::RoleChanged { term, role } => {
                self.observer.on_role_changed(term, role);
                let leader = self.node.leader();
                self.streams.leadership.send_if_modified(|now| {
                    let next = Leadership { term, leader, role };
                    std::mem::replace(now, next) != next
                });
            }
            Output::Accepted { proposal, first, last, term } => {
                if let Some(reply) = self.proposals.remove(&proposal) {
                    self.appended.insert(last, PendingProposal { reply, first, term });
                }
            }
            Output::Rejected { proposal, error } => {
                if let Some(reply) = self.proposals.remove(&proposal) {
                    self.respond(reply, Response::Failed(error.into()));
                }
            }
            Output::ReadReady { id, index } => {
                if let Some(reply) = self.reads.remove(&id) {
                    if index <= self.applied {
                        self.respond(reply, Response::ReadReady { index });
                    } else {
                        self.ready_reads.push((index, reply));
                    }
                }
            }
            Output::ReadRejected { id, error } => {
                if let Some(reply) = self.reads.remove(&id) {
                    self.respond(reply, Response::Failed(error.into()));
                }
            }
            // Answered while stepping, where the request id is known.
            Output::TransferRejected { .. } => {}
            // Persists were taken out of the batch before execution.
            Output::Persist(_) | Output::PersistAsync(_) => {}
            Output::RestoreSnapshot(snapshot) => self.on_restore(snapshot),
            // Answered while stepping, where the request id is known.
            Output::SnapshotRejected { .. } => {}
            // `Output` is non-exhaustive; every kind this core version has is handled above.
            _ => {}
        }
    }

    /// The state machine starts over from a snapshot: proposals it covers have an unknown
    /// outcome here, and reads up to its index are ready.
    fn on_restore(&mut self, snapshot: Snapshot) {
        self.observer.on_restore(&snapshot);
        let index = snapshot.meta.index;
        let covered: Vec<LogIndex> = self.appended.range(..=index).map(|(&last, _)| last).collect();
        self.applied = index;
        self.deliver(Applied::Restore(snapshot));
        for last in covered {
            if let Some(pending) = self.appended.remove(&last) {
                let error = RequestError::CoveredBySnapshot { index: last };
                self.respond(pending.reply, Response::Failed(error));
            }
        }
        self.release_ready_reads();
    }

    fn on_apply(&mut self, entries: Vec<Entry<T>>) {
        let Some(last) = entries.last().map(|entry| entry.index) else { return };
        let mut answers = Vec::new();
        for entry in &entries {
            if let Some(pending) = self.appended.remove(&entry.index) {
                let response = if entry.term == pending.term {
                    let (first, last, term) = (pending.first, entry.index, entry.term);
                    Response::Committed(Committed { first, last, term })
                } else {
                    Response::Failed(RequestError::Lost { index: entry.index })
                };
                answers.push((pending.reply, response));
            }
        }
        self.applied = last;
        self.observer.on_applied(&entries);
        // The entries go out before their answers: a caller that hears "committed" finds them
        // on the stream.
        self.deliver(Applied::Entries(entries));
        for (reply, response) in answers {
            self.respond(reply, response);
        }
        self.release_ready_reads();
    }

    /// Answers the reads whose index has been delivered.
    fn release_ready_reads(&mut self) {
        let applied = self.applied;
        let (ready, waiting) = std::mem::take(&mut self.ready_reads)
            .into_iter()
            .partition::<Vec<_>, _>(|(index, _)| *index <= applied);
        self.ready_reads = waiting;
        for (index, reply) in ready {
            self.respond(reply, Response::ReadReady { index });
        }
        self.release_forwarded_commits();
    }

    fn deliver(&mut self, applied: Applied<T>) {
        // A dropped receiver means nobody applies; the node keeps serving its peers.
        let _ = self.streams.applied.send(applied);
    }
}
