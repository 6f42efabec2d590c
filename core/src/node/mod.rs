//! The node: its state, the `step` dispatch, queries, and the per-step output assembly.

mod discovery;
mod election;
mod read;
mod reconfigure;
mod replication;
mod snapshot;
mod transfer;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use crate::config::Config;
use crate::entry::{Command, Entry};
use crate::error::{ConfigError, RangeError, RestoreError, TermError};
use crate::io::{DurableState, HardState, Input, Output, Persist, Role};
use crate::log::RaftLog;
use crate::membership::{Membership, VoterLists};
use crate::message::Message;
use crate::peer_map::PeerMap;
use crate::progress::Progress;
use crate::snapshot::{IncomingSnapshot, Snapshot};
use crate::stats::{IgnoredReason, NodeStats};
use crate::types::{LogIndex, NodeId, Term};
use read::{ForwardedRead, LeaderReads};

/// One Raft node: a pure state machine driven by [`Node::step`].
///
/// See the [crate documentation](crate) for the step contract.
#[derive(Clone, Debug)]
pub struct Node<T> {
    config: Config,
    /// The configuration in force: the latest in the log, else the initial one.
    membership: Membership,
    /// The index of the entry holding `membership` (0 for the initial configuration).
    membership_index: LogIndex,
    /// The configuration from `Config`, in force until the log holds one.
    initial_membership: Membership,
    /// invariant: never decreases.
    term: Term,
    /// invariant: set at most once per term.
    voted_for: Option<NodeId>,
    log: RaftLog<T>,
    /// The latest snapshot, taken here or installed from a leader. invariant: covers at least
    /// the compacted prefix of the log (`log.offset() <= snapshot index`).
    snapshot: Option<Snapshot>,
    /// invariant: `applied <= commit <= log.last_index()`; never decreases.
    commit: LogIndex,
    /// The last index known durable. Equal to the last index except while a leader's
    /// background appends (`leader_persist_acks`) are unacknowledged.
    durable_index: LogIndex,
    applied: LogIndex,
    role: RoleState,
    /// Ticks since the election timer was last reset.
    election_elapsed: u32,
    /// The current randomized election timeout, in `[election_ticks, 2 · election_ticks)`.
    election_timeout: u32,
    rng: ChaCha8Rng,
    /// Set by `restore` when lease reads are on; cleared at the first election timeout (see
    /// `is_in_leader_lease`).
    restarted_recently: bool,
    /// The hard state as last handed to the IO layer.
    persisted: HardState,
    /// The role last reported with `RoleChanged`.
    notified_role: Role,
    /// The `(term, leader)` last reported with `LeaderChanged`.
    notified_leader: (Term, Option<NodeId>),
    stats: NodeStats,
    /// Nodes announced with `Input::AddNode` and not removed since; not persisted.
    known: BTreeSet<NodeId>,
    /// Nodes announced with `Input::RemoveNode` and not added since; not persisted.
    departed: BTreeSet<NodeId>,
    pending: Pending<T>,
}

/// Role-specific state: each variant holds only what that role needs.
#[derive(Clone, Debug)]
enum RoleState {
    Follower {
        /// The leader of the current term, once heard from.
        leader: Option<NodeId>,
        /// Reads forwarded to `leader`, awaiting its answer.
        forwarded_reads: Vec<ForwardedRead>,
        /// The snapshot being received from `leader` in chunks.
        incoming_snapshot: Option<Box<IncomingSnapshot>>,
    },
    PreCandidate {
        /// Pre-votes received for the term after the current one (`true` = granted).
        votes: BTreeMap<NodeId, bool>,
    },
    Candidate {
        /// Votes received in this election (`true` = granted), including its own.
        votes: BTreeMap<NodeId, bool>,
    },
    Leader(Box<LeaderState>),
}

#[derive(Clone, Debug)]
struct LeaderState {
    /// Replication progress of every other voter.
    progress: PeerMap<Progress>,
    heartbeat_elapsed: u32,
    /// Command bytes appended in this term and not yet committed.
    uncommitted_bytes: u64,
    /// Reused buffer for the commit computation, so that it does not allocate per ack.
    match_scratch: Vec<LogIndex>,
    /// The voters of `Node::membership`, refreshed with it, for the commit computation.
    voter_lists: VoterLists,
    /// ReadIndex state: rounds, acknowledgements, reads awaiting confirmation.
    reads: LeaderReads,
    /// Peers heard from in the current CheckQuorum period.
    recent_active: PeerMap<()>,
    /// The leadership transfer in progress, if any.
    transfer: Option<transfer::Transfer>,
    /// Snapshot transfer attempts started in this term: the next attempt's id, so that an
    /// answer names exactly one attempt to one follower.
    snapshot_attempts: u64,
}

/// Outputs collected during one step, assembled in contract order by `finish_step`.
#[derive(Clone, Debug)]
struct Pending<T> {
    log_changes: Vec<Persist<T>>,
    /// The leader's own appends under parallel leader writes.
    async_appends: Vec<Persist<T>>,
    sends: Vec<Output<T>>,
    notices: Vec<Output<T>>,
    /// Empty entry vectors handed back with [`Node::recycle`], reused for the next message,
    /// persist or apply instead of allocating.
    entry_buffers: Vec<Vec<Entry<T>>>,
}

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Pending {
            log_changes: Vec::new(),
            async_appends: Vec::new(),
            sends: Vec::new(),
            notices: Vec::new(),
            entry_buffers: Vec::new(),
        }
    }
}

/// How many recycled entry vectors a node keeps: enough for the messages, persists and applies
/// of a few steps in flight; more would only hold memory.
const RECYCLED_BUFFERS_MAX: usize = 32;

/// What the end-of-step invariant check compares against.
struct StepStart {
    term: Term,
    voted_for: Option<NodeId>,
    commit: LogIndex,
    applied: LogIndex,
}

impl<T: Command> Node<T> {
    /// A new node with an empty log, a follower at term 0.
    ///
    /// # Errors
    /// [`ConfigError`] when the configuration is invalid.
    pub fn new(config: Config) -> Result<Node<T>, ConfigError> {
        config.validate()?;
        let membership = config.initial_membership()?;
        let rng = ChaCha8Rng::seed_from_u64(config.rng_seed);
        let mut node = Node {
            config,
            membership: membership.clone(),
            membership_index: LogIndex(0),
            initial_membership: membership,
            term: Term(0),
            voted_for: None,
            log: RaftLog::new(),
            snapshot: None,
            commit: LogIndex(0),
            durable_index: LogIndex(0),
            applied: LogIndex(0),
            role: RoleState::Follower {
                leader: None,
                forwarded_reads: Vec::new(),
                incoming_snapshot: None,
            },
            election_elapsed: 0,
            election_timeout: 0,
            rng,
            restarted_recently: false,
            persisted: HardState::default(),
            notified_role: Role::Follower,
            notified_leader: (Term(0), None),
            stats: NodeStats::default(),
            known: BTreeSet::new(),
            departed: BTreeSet::new(),
            pending: Pending::default(),
        };
        node.reset_election_timer();
        Ok(node)
    }

    /// Rebuilds a node after a restart from exactly what it had persisted. It comes back as a
    /// follower with its term, vote, snapshot, log and commit index. Its state machine is
    /// assumed to be volatile: the next step emits [`Output::RestoreSnapshot`] when there is a
    /// snapshot, then `Apply` for every committed entry after it (from index 1 without one).
    ///
    /// # Errors
    /// [`RestoreError`] when the configuration is invalid or the durable state is not one this
    /// library could have written (gaps, decreasing terms, commit past the log, a log that does
    /// not continue the snapshot).
    pub fn restore(config: Config, durable: DurableState<T>) -> Result<Node<T>, RestoreError> {
        let DurableState { hard_state, snapshot, mut entries } = durable;
        check_durable_log(&hard_state, snapshot.as_ref(), &entries)?;
        let mut node = Node::new(config)?;
        node.term = hard_state.term;
        node.voted_for = hard_state.voted_for;
        node.commit = hard_state.commit;
        node.log = match &snapshot {
            Some(snapshot) => {
                // The tail of entries the snapshot covers is not needed in memory; dropping it
                // leaves the log starting right after the snapshot, whose term is known.
                let (index, term) = (snapshot.meta.index, snapshot.meta.term);
                let covered =
                    index.next().0.saturating_sub(entries.first().map_or(0, |e| e.index.0));
                entries.drain(..(covered.min(entries.len() as u64) as usize));
                // The snapshot is durable only once committed: its index is a commit point
                // even if the hard state written after it was lost.
                node.commit = node.commit.max(index);
                RaftLog::from_parts(index, term, entries)
            }
            None => RaftLog::from_parts(LogIndex(0), Term(0), entries),
        };
        node.snapshot = snapshot;
        node.durable_index = node.log.last_index();
        node.restarted_recently = node.config.lease_reads;
        node.refresh_membership_from_log();
        node.persisted = hard_state;
        // A restarted node starts where it left off, leader unknown: nothing to report yet.
        node.notified_leader = (node.term, None);
        Ok(node)
    }

    /// Feeds one input to the node and returns it with the outputs to execute, in order.
    ///
    /// Deterministic: the same node state and input always give the same node state and
    /// outputs. Never panics on input that a network or a user can produce.
    #[must_use = "the outputs must be executed, in order"]
    pub fn step(mut self, input: Input<T>) -> (Node<T>, Vec<Output<T>>) {
        let outputs = self.step_in_place(input);
        (self, outputs)
    }

    /// [`Node::step`] for a node held behind a `&mut`: same contract, same outputs.
    #[must_use = "the outputs must be executed, in order"]
    pub fn step_in_place(&mut self, input: Input<T>) -> Vec<Output<T>> {
        let mut outputs = Vec::new();
        self.step_into(input, &mut outputs);
        outputs
    }

    /// [`Node::step`] that appends the outputs to a buffer the caller reuses, so that a busy
    /// runtime allocates no output vector per step. Same contract, same outputs.
    pub fn step_into(&mut self, input: Input<T>, outputs: &mut Vec<Output<T>>) {
        let start = StepStart {
            term: self.term,
            voted_for: self.voted_for,
            commit: self.commit,
            applied: self.applied,
        };
        match input {
            Input::Tick => {
                // A founder that needs nobody else (min_voters 1) bootstraps on its first tick.
                self.maybe_bootstrap();
                self.on_tick()
            }
            Input::Receive { from, message } => self.on_receive(from, message),
            Input::Propose(proposal) => self.on_propose(proposal),
            Input::Campaign => self.on_campaign(),
            Input::ReadIndex(id) => self.on_read_index(id),
            Input::TransferLeadership(target) => self.on_transfer_leadership(target),
            Input::Persisted { index, term } => self.on_persisted(index, term),
            Input::ChangeMembership { id, change } => self.on_change_membership(id, change),
            Input::SnapshotTaken { index, data } => self.on_snapshot_taken(index, data),
            Input::AddNode(id) => self.on_add_node(id),
            Input::RemoveNode(id) => self.on_remove_node(id),
        }
        self.reconcile_announced();
        self.finish_step(outputs);
        self.assert_invariants(&start);
    }

    fn on_receive(&mut self, from: NodeId, message: Message<T>) {
        if from == self.config.id {
            self.stats.ignore(IgnoredReason::FromSelf);
            return;
        }
        match message {
            // PreVote never changes anyone's term (thesis §9.6), so it skips the term rules.
            Message::PreVote(request) => self.on_pre_vote(from, request),
            Message::PreVoteResponse(response) => self.on_pre_vote_response(from, response),
            message => self.on_term_message(from, message),
        }
    }

    /// Applies the term rules of §5.1 to `message`, then dispatches it.
    fn on_term_message(&mut self, from: NodeId, message: Message<T>) {
        let message_term = message.term();
        if message_term > self.term {
            if let Message::RequestVote(request) = &message {
                if !request.transfer && self.is_in_leader_lease() {
                    // CheckQuorum stickiness: a live leader is known, so this election can only
                    // be a disruption (a node returning from a partition); don't join it.
                    self.stats.ignore(IgnoredReason::LeaderLease);
                    return;
                }
            }
            // §5.1: a higher term makes any node a follower of that term. Only a leader's
            // own messages tell who leads it.
            let leader = match &message {
                Message::AppendEntries(_)
                | Message::Heartbeat(_)
                | Message::TimeoutNow(_)
                | Message::InstallSnapshot(_) => Some(from),
                Message::RequestVote(_)
                | Message::RequestVoteResponse(_)
                | Message::PreVote(_)
                | Message::PreVoteResponse(_)
                | Message::AppendEntriesResponse(_)
                | Message::HeartbeatResponse(_)
                | Message::ReadIndexRequest(_)
                | Message::ReadIndexResponse(_)
                | Message::InstallSnapshotResponse(_) => None,
            };
            self.become_follower(message_term, leader);
        } else if message_term < self.term {
            self.on_stale_term(from, &message);
            return;
        }
        if let RoleState::Leader(leader) = &mut self.role {
            leader.recent_active.insert(from, ());
        }
        match message {
            Message::RequestVote(request) => self.on_request_vote(from, request),
            Message::RequestVoteResponse(response) => self.on_request_vote_response(from, response),
            Message::AppendEntries(request) => self.on_append_entries(from, request),
            Message::AppendEntriesResponse(response) => {
                self.on_append_entries_response(from, response)
            }
            Message::Heartbeat(heartbeat) => self.on_heartbeat(from, heartbeat),
            Message::HeartbeatResponse(response) => self.on_heartbeat_response(from, response),
            Message::ReadIndexRequest(request) => self.on_read_index_request(from, request),
            Message::ReadIndexResponse(response) => self.on_read_index_response(response),
            Message::TimeoutNow(_) => self.on_timeout_now(from),
            Message::InstallSnapshot(chunk) => self.on_install_snapshot(from, chunk),
            Message::InstallSnapshotResponse(response) => {
                self.on_install_snapshot_response(from, response)
            }
            // Routed by `on_receive` before the term rules.
            Message::PreVote(_) | Message::PreVoteResponse(_) => {}
        }
    }

    /// Hands back an entry vector from an output the IO layer is done with: the entries of a
    /// written [`Persist::Append`], of an executed [`Output::Apply`], or of a received
    /// [`AppendEntries`](crate::AppendEntries) it did not pass on. The node empties it and
    /// reuses its allocation for a later output, so that a runtime which recycles pays no
    /// allocation per entry batch. Optional: a vector that is simply dropped costs only its
    /// allocation. Vectors beyond a small pool, or larger than one message's worth of
    /// entries, are dropped.
    pub fn recycle(&mut self, mut entries: Vec<Entry<T>>) {
        let capacity_max = self.config.entries_per_message_max.max(64);
        if self.pending.entry_buffers.len() < RECYCLED_BUFFERS_MAX
            && entries.capacity() > 0
            && entries.capacity() <= capacity_max
        {
            entries.clear();
            self.pending.entry_buffers.push(entries);
        }
    }

    fn send(&mut self, to: NodeId, message: Message<T>) {
        self.pending.sends.push(Output::Send { to, message });
    }

    fn persist_log_change(&mut self, change: Persist<T>) {
        self.pending.log_changes.push(change);
    }

    /// A leader's own append: in the background under parallel leader writes, else like any
    /// log change.
    fn persist_leader_append(&mut self, entries: Vec<Entry<T>>) {
        if self.config.leader_persist_acks {
            self.pending.async_appends.push(Persist::Append(entries));
        } else {
            self.pending.log_changes.push(Persist::Append(entries));
        }
    }

    /// The index this node may count as its own replica toward commitment (§10.2.1).
    fn self_match_index(&self) -> LogIndex {
        if self.config.leader_persist_acks {
            self.durable_index
        } else {
            self.log.last_index()
        }
    }

    fn on_persisted(&mut self, index: LogIndex, term: Term) {
        if index <= self.durable_index || self.log.term(index) != Ok(term) {
            // Stale, duplicated, or for entries that were since replaced.
            self.stats.ignore(IgnoredReason::Outdated);
            return;
        }
        self.durable_index = index;
        self.maybe_commit();
    }

    /// The hard state as it may be written now: under parallel leader writes the durable commit
    /// index never runs ahead of the durable log, so a restart always finds its entries.
    fn durable_hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            voted_for: self.voted_for,
            commit: self.commit.min(self.durable_index),
        }
    }

    /// Assembles the step's outputs in contract order: persists (term and vote before log
    /// changes, commit after them), then sends, then notifications, then applies.
    fn finish_step(&mut self, outputs: &mut Vec<Output<T>>) {
        // Drain rather than take, so the step buffers keep their capacity: no allocation per
        // step once warm.
        if !self.pending.log_changes.is_empty() {
            // Synchronous log changes land after every earlier background append (one FIFO
            // writer), so everything before this step's own background appends is durable.
            // No input makes a step emit both kinds today (a leader's sync changes are
            // snapshots and compactions, taken on steps without appends), so cargo-mutants'
            // deletion of the `Append` arm below is equivalent for now; the arm keeps the
            // durable index honest for any future input that does both.
            let first_async = self.pending.async_appends.iter().find_map(|change| match change {
                Persist::Append(entries) => entries.first().map(|entry| entry.index),
                _ => None,
            });
            self.durable_index = first_async.map_or(self.log.last_index(), LogIndex::prev);
        } else if !self.config.leader_persist_acks {
            self.durable_index = self.log.last_index();
        }
        let hard_state = self.durable_hard_state();
        let pending = &mut self.pending;
        // A capacity hint only: any value is correct (mutants of this sum are equivalent).
        outputs
            .reserve(pending.log_changes.len() + pending.sends.len() + pending.notices.len() + 3);
        if !pending.log_changes.is_empty() {
            let vote_changed = (hard_state.term, hard_state.voted_for)
                != (self.persisted.term, self.persisted.voted_for);
            if vote_changed {
                // A crash between this and the log write must not leave entries of a term the
                // node has not durably entered; the commit index waits for the entries.
                let before_log = HardState { commit: self.persisted.commit, ..hard_state };
                outputs.push(Output::Persist(Persist::HardState(before_log)));
                self.persisted = before_log;
            }
            outputs.extend(pending.log_changes.drain(..).map(Output::Persist));
        }
        if hard_state != self.persisted {
            outputs.push(Output::Persist(Persist::HardState(hard_state)));
            self.persisted = hard_state;
        }
        outputs.extend(pending.async_appends.drain(..).map(Output::PersistAsync));
        outputs.append(&mut pending.sends);
        let role = self.role();
        if role != self.notified_role {
            self.notified_role = role;
            outputs.push(Output::RoleChanged { term: self.term, role });
        }
        let leadership = (self.term, self.leader());
        if leadership != self.notified_leader {
            self.notified_leader = leadership;
            outputs.push(Output::LeaderChanged { term: leadership.0, leader: leadership.1 });
        }
        outputs.append(&mut self.pending.notices);
        if let Some(snapshot) = &self.snapshot {
            if snapshot.meta.index > self.applied {
                // Installed from a leader, or restored after a restart: the state machine
                // starts over from the snapshot.
                self.applied = snapshot.meta.index;
                outputs.push(Output::RestoreSnapshot(snapshot.clone()));
            }
        }
        if self.commit > self.applied {
            let mut entries = self.pending.entry_buffers.pop().unwrap_or_default();
            entries.extend_from_slice(self.log.slice(self.applied.next(), self.commit));
            self.applied = self.commit;
            outputs.push(Output::Apply(entries));
        }
    }

    /// Cheap invariants, checked after every step: a failure is a bug in this crate. No test
    /// can make them fail without planting a bug, so cargo-mutants' "replace with ()" of this
    /// function survives by design; the simulator's checkers cover the same ground from
    /// outside.
    fn assert_invariants(&self, start: &StepStart) {
        assert!(self.term >= start.term, "invariant: term never decreases");
        if self.term == start.term && start.voted_for.is_some() {
            assert_eq!(self.voted_for, start.voted_for, "invariant: one vote per term");
        }
        assert!(self.commit >= start.commit, "invariant: commit never decreases");
        assert!(self.applied >= start.applied, "invariant: applied never decreases");
        assert!(self.commit <= self.log.last_index(), "invariant: commit <= last index");
        assert_eq!(self.applied, self.commit, "invariant: every committed entry is applied");
        assert_eq!(self.persisted, self.durable_hard_state(), "invariant: hard state handed over");
        assert!(self.durable_index <= self.log.last_index(), "invariant: durable <= last index");
        assert!(self.log.last_term() <= self.term, "invariant: no entry from the future");
        assert!(self.log.offset() <= self.applied, "invariant: only applied entries compacted");
        assert!(
            self.log.offset() <= self.snapshot.as_ref().map_or(LogIndex(0), |s| s.meta.index),
            "invariant: the compacted prefix is covered by the snapshot"
        );
        match &self.role {
            RoleState::Follower { .. } | RoleState::PreCandidate { .. } => {}
            RoleState::Candidate { .. } => {
                assert_eq!(self.voted_for, Some(self.config.id), "invariant: candidate self-vote")
            }
            RoleState::Leader(leader) => {
                assert_eq!(self.voted_for, Some(self.config.id), "invariant: leader self-vote");
                for (_, progress) in leader.progress.iter() {
                    progress.assert_invariants(self.log.last_index());
                }
            }
        }
    }

    // ----- queries -----

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.config.id
    }

    /// The configuration the node runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The voting members (of both halves of a joint configuration), in ascending order.
    pub fn voters(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.membership.all_voters()
    }

    /// The configuration in force.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// This node's role.
    pub fn role(&self) -> Role {
        match self.role {
            RoleState::Follower { .. } => Role::Follower,
            RoleState::PreCandidate { .. } => Role::PreCandidate,
            RoleState::Candidate { .. } => Role::Candidate,
            RoleState::Leader(_) => Role::Leader,
        }
    }

    /// The current term.
    pub fn term(&self) -> Term {
        self.term
    }

    /// The candidate this node voted for in the current term.
    pub fn voted_for(&self) -> Option<NodeId> {
        self.voted_for
    }

    /// The leader of the current term, if this node knows it (itself when leading).
    pub fn leader(&self) -> Option<NodeId> {
        match self.role {
            RoleState::Follower { leader, .. } => leader,
            RoleState::PreCandidate { .. } | RoleState::Candidate { .. } => None,
            RoleState::Leader(_) => Some(self.config.id),
        }
    }

    /// The highest index known to be committed.
    pub fn commit_index(&self) -> LogIndex {
        self.commit
    }

    /// The highest index handed to the application with `Apply`.
    pub fn applied_index(&self) -> LogIndex {
        self.applied
    }

    /// The index of the last log entry (committed or not).
    pub fn last_index(&self) -> LogIndex {
        self.log.last_index()
    }

    /// The term of the last log entry.
    pub fn last_term(&self) -> Term {
        self.log.last_term()
    }

    /// The term of the entry at `index` (`Term(0)` for index 0 while nothing is compacted).
    ///
    /// # Errors
    /// [`TermError::Compacted`] for an index before the first retained entry (except the last
    /// compacted one, whose term the log keeps), [`TermError::BeyondLog`] past the last entry.
    pub fn term_at(&self, index: LogIndex) -> Result<Term, TermError> {
        self.log.term(index)
    }

    /// The first index the log still holds an entry for; everything before it is in the
    /// snapshot. `last_index() + 1` when the log is empty.
    pub fn first_index(&self) -> LogIndex {
        self.log.first_index()
    }

    /// The latest snapshot, taken here or installed from a leader.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// The last log index known to be durable: the last index, except while a leader's
    /// background appends (parallel leader writes) await their `Input::Persisted`.
    pub fn durable_index(&self) -> LogIndex {
        self.durable_index
    }

    /// The hard state as it stands in memory (its commit index may be ahead of the persisted
    /// one while a leader's background appends are in flight).
    pub fn hard_state(&self) -> HardState {
        HardState { term: self.term, voted_for: self.voted_for, commit: self.commit }
    }

    /// The committed entries `start..=end` — the blog seed's *IndexRange* read.
    ///
    /// # Errors
    /// [`RangeError`] when the range is empty or inverted, starts at 0, reaches past the
    /// commit index, or starts before the first entry the log still holds (compacted).
    pub fn entries(&self, range: RangeInclusive<LogIndex>) -> Result<&[Entry<T>], RangeError> {
        let (start, end) = (*range.start(), *range.end());
        if start == LogIndex(0) {
            return Err(RangeError::StartsAtZero);
        }
        if start > end {
            return Err(RangeError::Inverted { start, end });
        }
        if end > self.commit {
            return Err(RangeError::NotCommitted { end, commit: self.commit });
        }
        if start < self.log.first_index() {
            return Err(RangeError::Compacted { start, first: self.log.first_index() });
        }
        Ok(self.log.slice(start, end))
    }

    /// Every entry the log holds (after the compacted prefix), committed or not, in index
    /// order.
    pub fn log_entries(&self) -> &[Entry<T>] {
        self.log.slice(self.log.first_index(), self.log.last_index())
    }

    /// The leader's view of `peer`'s replication; `None` on a non-leader or for an unknown peer.
    pub fn progress(&self, peer: NodeId) -> Option<&Progress> {
        match &self.role {
            RoleState::Leader(leader) => leader.progress.get(peer),
            RoleState::Follower { .. }
            | RoleState::PreCandidate { .. }
            | RoleState::Candidate { .. } => None,
        }
    }

    /// The target of the leadership transfer this leader is running, if any.
    pub fn transfer_target(&self) -> Option<NodeId> {
        match &self.role {
            RoleState::Leader(leader) => leader.transfer.map(|transfer| transfer.target),
            RoleState::Follower { .. }
            | RoleState::PreCandidate { .. }
            | RoleState::Candidate { .. } => None,
        }
    }

    /// Counters of what the node did and ignored.
    pub fn stats(&self) -> NodeStats {
        self.stats
    }

    /// The ticks left before this node's election timer fires (when not leading).
    pub fn ticks_until_election(&self) -> u32 {
        self.election_timeout.saturating_sub(self.election_elapsed)
    }
}

/// The leader's progress of `peer`, for handling its answer. `None` — the answer counted as
/// ignored — on a node that is not leading, or for a peer the leader does not replicate to.
fn peer_progress<'a>(
    role: &'a mut RoleState,
    stats: &mut NodeStats,
    peer: NodeId,
) -> Option<&'a mut Progress> {
    let progress = match role {
        RoleState::Leader(leader) => leader.progress.get_mut(peer),
        RoleState::Follower { .. }
        | RoleState::PreCandidate { .. }
        | RoleState::Candidate { .. } => {
            stats.ignore(IgnoredReason::UnexpectedInRole);
            return None;
        }
    };
    if progress.is_none() {
        stats.ignore(IgnoredReason::NotMember);
    }
    progress
}

/// Checks that a durable log is one this library could have written.
fn check_durable_log<T>(
    hard_state: &HardState,
    snapshot: Option<&Snapshot>,
    entries: &[Entry<T>],
) -> Result<(), RestoreError> {
    let first = entries.first().map(|entry| entry.index);
    if let Some(snapshot) = snapshot {
        let (index, term) = (snapshot.meta.index, snapshot.meta.term);
        if index > LogIndex::MAX_SNAPSHOT_INDEX {
            // Too little room for the log after it: not something this library writes.
            return Err(RestoreError::LogDoesNotFollowSnapshot { snapshot_index: index });
        }
        let follows = match first {
            None => true,
            Some(first) if first > index => first == index.next(),
            Some(first) => {
                // The stored log overlaps the snapshot: it must hold the snapshot's entry.
                let position = (index.0 - first.0) as usize;
                entries.get(position).is_some_and(|entry| entry.term == term)
            }
        };
        if !follows || term > hard_state.term {
            return Err(RestoreError::LogDoesNotFollowSnapshot { snapshot_index: index });
        }
    }
    let first = match (first, snapshot) {
        (Some(first), Some(_)) => first,
        _ => LogIndex(1),
    };
    let mut previous_term = Term(0);
    for (position, entry) in entries.iter().enumerate() {
        let expected = first.plus(position as u64);
        if entry.index != expected {
            return Err(RestoreError::NonContiguousLog { position, expected, found: entry.index });
        }
        if entry.term < previous_term {
            return Err(RestoreError::TermDecreases { index: entry.index, term: entry.term });
        }
        if entry.term > hard_state.term {
            return Err(RestoreError::EntryTermAboveCurrent {
                index: entry.index,
                term: entry.term,
                current: hard_state.term,
            });
        }
        previous_term = entry.term;
    }
    let last_index = match (entries.last(), snapshot) {
        (Some(last), _) => last.index,
        (None, Some(snapshot)) => snapshot.meta.index,
        (None, None) => LogIndex(0),
    };
    let last_index = last_index.max(snapshot.map_or(LogIndex(0), |s| s.meta.index));
    if hard_state.commit > last_index {
        return Err(RestoreError::CommitBeyondLog { commit: hard_state.commit, last_index });
    }
    Ok(())
}
