//! Hostile inputs to one node: an arbitrary sequence of ticks, campaigns, proposals (some
//! conditional), ReadIndex, TransferLeadership, membership changes, `Persisted` acks, snapshots
//! (compacting the log), restarts, and messages of every kind (snapshot chunks included) from arbitrary senders with arbitrary terms, indexes and entries
//! (commands, no-ops and arbitrary — even malformed — configurations), fed to node 1 of a
//! 3-node configuration whose flags the fuzzer picks.
//!
//! After every step: no panic (the core asserts its own invariants at the end of each step);
//! term and commit never decrease; the outputs come in contract order; every `Persist` and
//! `PersistAsync` applies cleanly to a `DurableState` (background writes are landed at once),
//! which then matches the node; applies are consecutive and match the log. At the end the node
//! restores from that disk.
//!
//! The inputs are built from the fuzz crate's own `Arbitrary` mirror types, so the core needs
//! no `arbitrary` dependency. Numbers are often chosen relative to the node's current term and
//! last index, so that messages reach the handlers of its role instead of only the term checks.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeSet;

use stepraft::{
    AppendEntries, AppendEntriesResponse, AppendOutcome, Config, ConflictHint, DurableState, Entry,
    HardState, Heartbeat, HeartbeatResponse, Input, LogIndex, Membership, MembershipChange,
    Message, Node, NodeId, Output, Payload, Persist, Proposal, ProposalId, ReadId,
    ReadIndexRequest, ReadIndexResponse, RequestVote, RequestVoteResponse, Role, SnapshotMeta,
    SnapshotOutcome, Term, TimeoutNow,
};

/// Whether to print every concrete input and its outputs (set `STEPRAFT_FUZZ_TRACE=1`), to
/// turn a crash into a regression test.
fn tracing() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("STEPRAFT_FUZZ_TRACE").is_some())
}

/// Most inputs in one run.
const INPUTS_MAX: usize = 256;
/// Most entries in one fuzzed AppendEntries, and commands in one proposal.
const ENTRIES_MAX: usize = 6;

#[derive(Arbitrary, Debug)]
struct Case {
    flags: Flags,
    /// Win term 1 first (campaign, then the votes), so leader-side handling meets the inputs.
    start_as_leader: bool,
    inputs: Vec<FuzzInput>,
}

#[derive(Arbitrary, Debug)]
struct Flags {
    pre_vote: bool,
    check_quorum: bool,
    /// Only honoured with `check_quorum` (the config requires it).
    lease_reads: bool,
    leader_persist_acks: bool,
    /// `entries_per_message_max` = 1 + this % 3 when set, else the default.
    small_batches: Option<u8>,
    /// `election_ticks` = 2 + this % 5, `heartbeat_ticks` = 1.
    election_ticks: u8,
    rng_seed: u8,
    auto_leave_joint: bool,
    /// `max_voters` = 3 + this % 3 when set (at least the three initial voters, which
    /// `Config::validate` requires), else unlimited.
    max_voters: Option<u8>,
    /// `compaction_tail_entries` = this % 4.
    compaction_tail: u8,
    /// `snapshot_chunk_bytes` = 1 + this % 8.
    chunk_bytes: u8,
}

impl Flags {
    fn config(&self) -> Config {
        let mut config = Config::new(NodeId(1), [NodeId(1), NodeId(2), NodeId(3)]);
        config.pre_vote = self.pre_vote;
        config.check_quorum = self.check_quorum;
        config.lease_reads = self.lease_reads && self.check_quorum;
        config.leader_persist_acks = self.leader_persist_acks;
        if let Some(batch) = self.small_batches {
            config.entries_per_message_max = 1 + usize::from(batch % 3);
        }
        config.election_ticks = 2 + u32::from(self.election_ticks % 5);
        config.heartbeat_ticks = 1;
        config.lease_margin_ticks = 1;
        config.rng_seed = u64::from(self.rng_seed);
        config.auto_leave_joint = self.auto_leave_joint;
        if let Some(max) = self.max_voters {
            config.max_voters = 3 + usize::from(max % 3);
        }
        config.compaction_tail_entries = u64::from(self.compaction_tail % 4);
        config.snapshot_chunk_bytes = 1 + usize::from(self.chunk_bytes % 8);
        config
    }
}

/// A `u64`: small most of the time, extreme sometimes.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Num {
    Small(u8),
    Max,
    MaxMinusOne,
    Any(u64),
}

impl Num {
    fn get(self) -> u64 {
        match self {
            Num::Small(n) => u64::from(n % 8),
            Num::Max => u64::MAX,
            Num::MaxMinusOne => u64::MAX - 1,
            Num::Any(n) => n,
        }
    }
}

/// A term, often relative to the node's current term.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum FTerm {
    /// The node's term plus `offset % 4 - 1` (one below to two above), saturating.
    Current(u8),
    Absolute(Num),
}

impl FTerm {
    fn get(self, node: &Node<u64>) -> Term {
        match self {
            FTerm::Current(offset) => {
                let term = node.term().0;
                Term(match offset % 4 {
                    0 => term.saturating_sub(1),
                    delta => term.saturating_add(u64::from(delta) - 1),
                })
            }
            FTerm::Absolute(n) => Term(n.get()),
        }
    }
}

/// A log index, often relative to the node's last index or commit index.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum FIndex {
    /// The node's last index plus `offset % 5 - 2`, saturating.
    Last(u8),
    /// The node's commit index plus `offset % 3 - 1`, saturating.
    Commit(u8),
    Absolute(Num),
}

impl FIndex {
    fn get(self, node: &Node<u64>) -> LogIndex {
        let shift = |base: u64, offset: u8, below: u64| {
            let offset = u64::from(offset);
            if offset < below {
                base.saturating_sub(below - offset)
            } else {
                base.saturating_add(offset - below)
            }
        };
        LogIndex(match self {
            FIndex::Last(offset) => shift(node.last_index().0, offset % 5, 2),
            FIndex::Commit(offset) => shift(node.commit_index().0, offset % 3, 1),
            FIndex::Absolute(n) => n.get(),
        })
    }
}

/// The term claimed for a `prev_log_index`.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum PrevTerm {
    /// The term the node really has there (0 when it has none): the consistency check passes.
    Matching,
    Given(FTerm),
}

/// A set of node ids as a bit mask: bits 0-5 are nodes 1-6 (the three voters, and others),
/// bit 6 is node 0, bit 7 is node `u64::MAX`.
fn node_set(mask: u8) -> BTreeSet<NodeId> {
    (0..8)
        .filter(|bit| mask & (1 << bit) != 0)
        .map(|bit| {
            NodeId(match bit {
                6 => 0,
                7 => u64::MAX,
                _ => bit + 1,
            })
        })
        .collect()
}

/// A node id for a membership change: 0-6 (the voters 1-3, others, and 0).
fn member(id: u8) -> NodeId {
    NodeId(u64::from(id % 7))
}

/// A cluster configuration carried by an entry: any voters, outgoing voters and learners.
#[derive(Arbitrary, Debug, Clone, Copy)]
struct FMembership {
    voters: u8,
    outgoing: u8,
    learners: u8,
}

impl FMembership {
    fn get(self) -> Membership {
        Membership {
            voters: node_set(self.voters),
            outgoing: node_set(self.outgoing),
            learners: node_set(self.learners),
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum FPayload {
    Command,
    Noop,
    Membership(FMembership),
}

impl FPayload {
    fn get(self, command: u64) -> Payload<u64> {
        match self {
            FPayload::Command => Payload::Command(command),
            FPayload::Noop => Payload::noop(),
            FPayload::Membership(membership) => Payload::configuration(membership.get()),
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum FChange {
    AddVoter(u8),
    AddLearner(u8),
    PromoteLearner(u8),
    DemoteVoter(u8),
    RemoveNode(u8),
    Replace { voters: u8, learners: u8 },
    LeaveJoint,
}

impl FChange {
    fn get(&self) -> MembershipChange {
        match *self {
            FChange::AddVoter(id) => MembershipChange::AddVoter(member(id)),
            FChange::AddLearner(id) => MembershipChange::AddLearner(member(id)),
            FChange::PromoteLearner(id) => MembershipChange::PromoteLearner(member(id)),
            FChange::DemoteVoter(id) => MembershipChange::DemoteVoter(member(id)),
            FChange::RemoveNode(id) => MembershipChange::RemoveNode(member(id)),
            FChange::Replace { voters, learners } => {
                MembershipChange::Replace { voters: node_set(voters), learners: node_set(learners) }
            }
            FChange::LeaveJoint => MembershipChange::LeaveJoint,
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum FEntries {
    /// Well-formed: `count` consecutive entries of one term right after `prev_log_index`,
    /// commands unless `payloads` says otherwise.
    Run { term: FTerm, count: u8, payloads: Vec<FPayload> },
    /// Anything at all.
    Raw(Vec<(FIndex, FTerm, FPayload)>),
}

impl FEntries {
    fn get(&self, node: &Node<u64>, prev: LogIndex) -> Vec<Entry<u64>> {
        match self {
            FEntries::Run { term, count, payloads } => {
                let term = term.get(node);
                (0..u64::from(*count) % (ENTRIES_MAX as u64 + 1))
                    .map(|i| Entry {
                        term,
                        index: prev.plus(1 + i),
                        payload: payloads
                            .get(i as usize)
                            .copied()
                            .unwrap_or(FPayload::Command)
                            .get(i),
                    })
                    .collect()
            }
            FEntries::Raw(raw) => raw
                .iter()
                .take(ENTRIES_MAX)
                .map(|&(index, term, payload)| Entry {
                    term: term.get(node),
                    index: index.get(node),
                    payload: payload.get(7),
                })
                .collect(),
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum FOutcome {
    Success { match_index: FIndex },
    Conflict { rejected_prev_index: FIndex, hint_index: FIndex, hint_term: Option<FTerm> },
    StaleTerm,
}

#[derive(Arbitrary, Debug, Clone)]
enum FMessage {
    RequestVote {
        term: FTerm,
        last_log_index: FIndex,
        last_log_term: FTerm,
        transfer: bool,
    },
    RequestVoteResponse {
        term: FTerm,
        granted: bool,
    },
    PreVote {
        term: FTerm,
        last_log_index: FIndex,
        last_log_term: FTerm,
        transfer: bool,
    },
    PreVoteResponse {
        term: FTerm,
        granted: bool,
    },
    TimeoutNow {
        term: FTerm,
    },
    AppendEntries {
        term: FTerm,
        prev_log_index: FIndex,
        prev_log_term: PrevTerm,
        entries: FEntries,
        leader_commit: FIndex,
    },
    AppendEntriesResponse {
        term: FTerm,
        outcome: FOutcome,
    },
    Heartbeat {
        term: FTerm,
        commit: FIndex,
        round: Num,
    },
    HeartbeatResponse {
        term: FTerm,
        round: Num,
    },
    ReadIndexRequest {
        term: FTerm,
        id: Num,
    },
    ReadIndexResponse {
        term: FTerm,
        id: Num,
        index: Option<FIndex>,
    },
    InstallSnapshot {
        term: FTerm,
        /// Small, so that it often names the leader's current attempt (they count from 1).
        attempt: u8,
        index: FIndex,
        snapshot_term: FTerm,
        voters: u8,
        total_bytes: u8,
        offset: u8,
        len: u8,
    },
    InstallSnapshotResponse {
        term: FTerm,
        snapshot_index: FIndex,
        attempt: u8,
        /// 0: received, 1: gap, 2: installed (offset as an index), 3: refused.
        kind: u8,
        offset: Num,
    },
}

impl FMessage {
    fn get(&self, node: &Node<u64>) -> Message<u64> {
        match self {
            FMessage::RequestVote { term, last_log_index, last_log_term, transfer } => {
                Message::RequestVote(RequestVote {
                    term: term.get(node),
                    last_log_index: last_log_index.get(node),
                    last_log_term: last_log_term.get(node),
                    transfer: *transfer,
                })
            }
            FMessage::RequestVoteResponse { term, granted } => {
                Message::RequestVoteResponse(RequestVoteResponse {
                    term: term.get(node),
                    granted: *granted,
                })
            }
            FMessage::PreVote { term, last_log_index, last_log_term, transfer } => {
                Message::PreVote(RequestVote {
                    term: term.get(node),
                    last_log_index: last_log_index.get(node),
                    last_log_term: last_log_term.get(node),
                    transfer: *transfer,
                })
            }
            FMessage::PreVoteResponse { term, granted } => {
                Message::PreVoteResponse(RequestVoteResponse {
                    term: term.get(node),
                    granted: *granted,
                })
            }
            FMessage::TimeoutNow { term } => {
                Message::TimeoutNow(TimeoutNow { term: term.get(node) })
            }
            FMessage::AppendEntries {
                term,
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
            } => {
                let prev_log_index = prev_log_index.get(node);
                let prev_log_term = match prev_log_term {
                    PrevTerm::Matching => node.term_at(prev_log_index).unwrap_or(Term(0)),
                    PrevTerm::Given(term) => term.get(node),
                };
                Message::AppendEntries(AppendEntries {
                    term: term.get(node),
                    prev_log_index,
                    prev_log_term,
                    entries: entries.get(node, prev_log_index),
                    leader_commit: leader_commit.get(node),
                })
            }
            FMessage::AppendEntriesResponse { term, outcome } => {
                let outcome = match outcome {
                    FOutcome::Success { match_index } => {
                        AppendOutcome::Success { match_index: match_index.get(node) }
                    }
                    FOutcome::Conflict { rejected_prev_index, hint_index, hint_term } => {
                        AppendOutcome::Conflict {
                            rejected_prev_index: rejected_prev_index.get(node),
                            hint: ConflictHint {
                                index: hint_index.get(node),
                                term: hint_term.map(|term| term.get(node)),
                            },
                        }
                    }
                    FOutcome::StaleTerm => AppendOutcome::StaleTerm,
                };
                Message::AppendEntriesResponse(AppendEntriesResponse {
                    term: term.get(node),
                    outcome,
                })
            }
            FMessage::Heartbeat { term, commit, round } => Message::Heartbeat(Heartbeat {
                term: term.get(node),
                commit: commit.get(node),
                round: round.get(),
            }),
            FMessage::HeartbeatResponse { term, round } => {
                Message::HeartbeatResponse(HeartbeatResponse {
                    term: term.get(node),
                    round: round.get(),
                })
            }
            FMessage::ReadIndexRequest { term, id } => {
                Message::ReadIndexRequest(ReadIndexRequest {
                    term: term.get(node),
                    id: ReadId(id.get()),
                })
            }
            FMessage::ReadIndexResponse { term, id, index } => {
                Message::ReadIndexResponse(ReadIndexResponse {
                    term: term.get(node),
                    id: ReadId(id.get()),
                    index: index.map(|index| index.get(node)),
                })
            }
            FMessage::InstallSnapshot {
                term,
                attempt,
                index,
                snapshot_term,
                voters,
                total_bytes,
                offset,
                len,
            } => {
                let voters = (1..=3).filter(|bit| voters & (1 << bit) != 0).map(NodeId);
                Message::InstallSnapshot(stepraft::InstallSnapshot {
                    term: term.get(node),
                    attempt: u64::from(attempt % 4),
                    meta: SnapshotMeta {
                        index: index.get(node),
                        term: snapshot_term.get(node),
                        membership: Membership::with_voters(voters).into(),
                    },
                    total_bytes: u64::from(total_bytes % 32),
                    offset: u64::from(offset % 32),
                    data: vec![0xab; usize::from(len % 8)],
                })
            }
            FMessage::InstallSnapshotResponse { term, snapshot_index, attempt, kind, offset } => {
                let outcome = match kind % 4 {
                    0 => SnapshotOutcome::Received { next_offset: offset.get() },
                    1 => SnapshotOutcome::Gap { next_offset: offset.get() },
                    2 => SnapshotOutcome::Installed { match_index: LogIndex(offset.get()) },
                    _ => SnapshotOutcome::Refused,
                };
                Message::InstallSnapshotResponse(stepraft::InstallSnapshotResponse {
                    term: term.get(node),
                    snapshot_index: snapshot_index.get(node),
                    attempt: u64::from(attempt % 4),
                    outcome,
                })
            }
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
enum FuzzInput {
    Tick,
    /// Several ticks in a row (1 + n % 16), to reach timeouts with few bytes.
    Ticks(u8),
    Campaign,
    Propose {
        id: u16,
        commands: u8,
        condition: Option<(FIndex, FTerm)>,
    },
    ReadIndex(Num),
    /// Node 0 + n % 6: the peers, itself, and unknown nodes.
    TransferLeadership(u8),
    ChangeMembership {
        id: u16,
        change: FChange,
    },
    /// `Input::Persisted` for the node's last index and its term (a true ack: background
    /// writes are landed at once here).
    PersistedLast,
    /// `Input::Persisted` for anything.
    Persisted {
        index: FIndex,
        term: FTerm,
    },
    /// Crash and restore the node from its disk (not an `Input`: a runtime restart).
    Restart,
    /// The application snapshots at the node's applied index.
    SnapshotApplied,
    /// The application reports a snapshot at any index (mostly refused).
    SnapshotAt(FIndex),
    /// A message from node `from % 8` mapped to 2, 3 mostly, else itself or unknown nodes.
    Receive {
        from: u8,
        message: FMessage,
    },
    /// Announce node `n % 6` (the peers, itself, unknown nodes).
    AddNode(u8),
    /// Announce that node `n % 6` left.
    RemoveNode(u8),
}

fn sender(from: u8) -> NodeId {
    NodeId([2, 3, 2, 3, 2, 3, 1, 0, 4, u64::MAX][usize::from(from % 10)])
}

/// One node, its disk, and what the harness tracks across steps.
struct Harness {
    config: Config,
    node: Node<u64>,
    disk: DurableState<u64>,
    /// The last index applied in this lifetime.
    applied: LogIndex,
}

impl Harness {
    fn new(config: Config) -> Harness {
        let node = Node::new(config.clone()).expect("the fuzzed config is valid");
        Harness { config, node, disk: DurableState::default(), applied: LogIndex(0) }
    }

    fn input(&self, input: &FuzzInput) -> Vec<Input<u64>> {
        let node = &self.node;
        match input {
            FuzzInput::Tick => vec![Input::Tick],
            FuzzInput::Ticks(n) => vec![Input::Tick; 1 + usize::from(n % 16)],
            FuzzInput::Campaign => vec![Input::Campaign],
            FuzzInput::Propose { id, commands, condition } => {
                let commands = (0..u64::from(*commands) % (ENTRIES_MAX as u64 + 1))
                    .map(|i| u64::from(*id) * 100 + i)
                    .collect();
                let proposal = Proposal::batch(ProposalId(u64::from(*id)), commands);
                let proposal = match condition {
                    Some((index, term)) => {
                        proposal.if_last_entry_is(index.get(node), term.get(node))
                    }
                    None => proposal,
                };
                vec![Input::Propose(proposal)]
            }
            FuzzInput::ReadIndex(id) => vec![Input::ReadIndex(ReadId(id.get()))],
            FuzzInput::TransferLeadership(target) => {
                vec![Input::TransferLeadership(NodeId(u64::from(target % 6)))]
            }
            FuzzInput::AddNode(id) => vec![Input::AddNode(NodeId(u64::from(id % 6)))],
            FuzzInput::RemoveNode(id) => vec![Input::RemoveNode(NodeId(u64::from(id % 6)))],
            FuzzInput::ChangeMembership { id, change } => {
                vec![Input::ChangeMembership {
                    id: ProposalId(u64::from(*id)),
                    change: change.get(),
                }]
            }
            FuzzInput::PersistedLast => {
                vec![Input::Persisted { index: node.last_index(), term: node.last_term() }]
            }
            FuzzInput::Persisted { index, term } => {
                vec![Input::Persisted { index: index.get(node), term: term.get(node) }]
            }
            FuzzInput::Restart => Vec::new(),
            FuzzInput::SnapshotApplied => vec![Input::SnapshotTaken {
                index: node.applied_index(),
                data: std::sync::Arc::from(&b"state"[..]),
            }],
            FuzzInput::SnapshotAt(index) => vec![Input::SnapshotTaken {
                index: index.get(node),
                data: std::sync::Arc::from(&b"state"[..]),
            }],
            FuzzInput::Receive { from, message } => {
                vec![Input::Receive { from: sender(*from), message: message.get(node) }]
            }
        }
    }

    fn restart(&mut self) {
        if tracing() {
            eprintln!("restart from disk: {:?}", self.disk);
        }
        self.node = Node::restore(self.config.clone(), self.disk.clone())
            .unwrap_or_else(|error| panic!("the node cannot restore the disk it wrote: {error}"));
        self.applied = LogIndex(0);
    }

    fn step(&mut self, input: Input<u64>) {
        if tracing() {
            eprintln!("input: {input:?}");
        }
        let (term, commit) = (self.node.term(), self.node.commit_index());
        let outputs = self.node.step_in_place(input);
        if tracing() {
            for output in &outputs {
                eprintln!("    output: {output:?}");
            }
        }
        let node = &self.node;
        assert!(node.term() >= term, "term went from {term} to {}", node.term());
        assert!(
            node.commit_index() >= commit,
            "commit went from {commit} to {}",
            node.commit_index()
        );

        // Contract order: persists, then background persists, then everything else.
        let mut phase = 0;
        for output in &outputs {
            let kind = match output {
                Output::Persist(_) => 0,
                Output::PersistAsync(_) => 1,
                _ => 2,
            };
            assert!(kind >= phase, "output order broken: {outputs:?}");
            phase = kind;
        }

        for output in &outputs {
            match output {
                // `DurableState::apply` asserts that an append follows the stored log.
                Output::Persist(change) => self.disk.apply(change),
                Output::PersistAsync(change) => {
                    assert!(self.config.leader_persist_acks, "PersistAsync without the flag");
                    assert!(matches!(change, Persist::Append(_)), "background {change:?}");
                    self.disk.apply(change);
                }
                Output::RestoreSnapshot(snapshot) => self.applied = snapshot.meta.index,
                Output::Apply(entries) => {
                    for entry in entries {
                        assert_eq!(entry.index, self.applied.next(), "applies are consecutive");
                        assert_eq!(
                            Ok(entry.term),
                            node.term_at(entry.index),
                            "an applied entry is in the log"
                        );
                        self.applied = entry.index;
                    }
                }
                _ => {}
            }
        }
        assert!(self.applied <= node.commit_index(), "applied past the commit index");

        // With every write landed at once, the disk holds the node's log (after a restart,
        // maybe also a tail the snapshot covers), its snapshot, and the hard state it was last
        // told to write.
        let first = node.first_index();
        let stored: Vec<_> = self.disk.entries.iter().filter(|e| e.index >= first).collect();
        let held: Vec<_> = node.log_entries().iter().collect();
        assert_eq!(stored, held, "disk and log differ");
        assert_eq!(self.disk.snapshot.as_ref(), node.snapshot(), "disk and snapshot differ");
        let durable = HardState {
            commit: node.commit_index().min(node.durable_index()),
            ..node.hard_state()
        };
        assert_eq!(self.disk.hard_state, durable, "disk and hard state differ");
    }

    fn finish(self) {
        let last_index = self.node.last_index();
        let term = self.node.term();
        let restored = Node::<u64>::restore(self.config, self.disk)
            .unwrap_or_else(|error| panic!("the node cannot restore the disk it wrote: {error}"));
        assert_eq!(restored.last_index(), last_index);
        assert_eq!(restored.term(), term);
    }
}

fuzz_target!(|case: Case| {
    let mut harness = Harness::new(case.flags.config());
    if tracing() {
        eprintln!("config: {:?}", harness.config);
    }
    if case.start_as_leader {
        harness.step(Input::Campaign);
        if harness.node.role() == Role::PreCandidate {
            let term = Term(harness.node.term().0 + 1);
            let grant = Message::PreVoteResponse(RequestVoteResponse { term, granted: true });
            harness.step(Input::Receive { from: NodeId(2), message: grant });
        }
        if harness.node.role() == Role::Candidate {
            let term = harness.node.term();
            let grant = Message::RequestVoteResponse(RequestVoteResponse { term, granted: true });
            harness.step(Input::Receive { from: NodeId(2), message: grant });
        }
        assert_eq!(harness.node.role(), Role::Leader, "a campaign with a granted vote wins");
    }
    for input in case.inputs.iter().take(INPUTS_MAX) {
        if let FuzzInput::Restart = input {
            harness.restart();
            continue;
        }
        for input in harness.input(input) {
            harness.step(input);
        }
    }
    harness.finish();
});
