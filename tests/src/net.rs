//! Helpers for the Raft-paper scenario tests: building nodes, entries and messages, reading a
//! step's outputs, and `Net`, a small network for nodes built with `Node::restore`.
//!
//! Single nodes are driven by hand with `step_in_place`; every helper works on `u64` commands.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use stepraft::{
    AppendEntries, AppendEntriesResponse, AppendOutcome, Config, DurableState, Entry, HardState,
    Heartbeat, HeartbeatResponse, Input, LogIndex, Message, Node, NodeId, Output, Payload, Persist,
    Proposal, ProposalId, RequestVote, RequestVoteResponse, Role, Term,
};

// ----- nodes, entries and logs -----

/// The ids `1..=size`.
pub fn ids(size: u64) -> Vec<NodeId> {
    (1..=size).map(NodeId).collect()
}

/// The configuration of node `id` in a cluster of the nodes `1..=size` for the Raft paper's
/// scenarios: the defaults, without the thesis extensions that change §5's observable rules
/// (PreVote, CheckQuorum), which have scenario tests of their own.
pub fn config(id: u64, size: u64) -> Config {
    let mut config = Config::new(NodeId(id), ids(size));
    config.pre_vote = false;
    config.check_quorum = false;
    config
}

/// A new node `id` in a cluster of the nodes `1..=size`, with the paper's configuration.
///
/// # Panics
///
/// If the configuration is invalid (`id` not in `1..=size`).
pub fn fresh(id: u64, size: u64) -> Node<u64> {
    Node::new(config(id, size)).expect("valid config")
}

/// An entry whose command is derived from its position, so that two entries with the same
/// index and term are equal.
pub fn entry(index: u64, term: u64) -> Entry<u64> {
    Entry {
        term: Term(term),
        index: LogIndex(index),
        payload: Payload::Command(term * 1000 + index),
    }
}

/// A no-op entry at `index` of `term`, as a new leader appends.
pub fn noop(index: u64, term: u64) -> Entry<u64> {
    Entry { term: Term(term), index: LogIndex(index), payload: Payload::noop() }
}

/// A log from index 1 whose entries have these terms.
pub fn log_of_terms(terms: &[u64]) -> Vec<Entry<u64>> {
    terms.iter().zip(1..).map(|(&term, index)| entry(index, term)).collect()
}

/// A hard state with this term, vote and commit index.
pub fn hard(term: u64, voted_for: Option<u64>, commit: u64) -> HardState {
    HardState { term: Term(term), voted_for: voted_for.map(NodeId), commit: LogIndex(commit) }
}

/// A node restarted with `Node::restore` from `hard_state` and a log whose entries have these
/// terms (see [`log_of_terms`]).
///
/// # Panics
///
/// If the durable state is rejected by `Node::restore`.
pub fn restored(config: Config, hard_state: HardState, terms: &[u64]) -> Node<u64> {
    let durable = DurableState { hard_state, snapshot: None, entries: log_of_terms(terms) };
    Node::restore(config, durable).expect("valid durable state")
}

/// The terms of the entries of `node`'s log, in order.
pub fn terms_of(node: &Node<u64>) -> Vec<u64> {
    node.log_entries().iter().map(|entry| entry.term.0).collect()
}

// ----- driving a single node -----

/// Steps `node` with `message` received from node `from`; returns the step's outputs.
pub fn receive(node: &mut Node<u64>, from: u64, message: Message<u64>) -> Vec<Output<u64>> {
    node.step_in_place(Input::Receive { from: NodeId(from), message })
}

/// Makes `node` campaign and hands it granted votes until it leads; returns the outputs of the
/// step in which it became leader.
///
/// # Panics
///
/// If the granted votes of every peer do not make `node` leader.
pub fn win_election(node: &mut Node<u64>) -> Vec<Output<u64>> {
    let mut outputs = node.step_in_place(Input::Campaign);
    let term = node.term().0;
    let peers: Vec<NodeId> = node.voters().filter(|&voter| voter != node.id()).collect();
    for peer in peers {
        if node.role() == Role::Leader {
            break;
        }
        outputs = receive(node, peer.0, vote(term, true));
    }
    assert_eq!(node.role(), Role::Leader, "enough votes were granted");
    outputs
}

/// Proposes `command` to `node`, with `command` as the proposal id; returns the step's outputs.
pub fn propose(node: &mut Node<u64>, command: u64) -> Vec<Output<u64>> {
    node.step_in_place(Input::Propose(Proposal::one(ProposalId(command), command)))
}

// ----- reading outputs -----

/// The messages among `outputs`, with their destinations, in order.
pub fn sends(outputs: &[Output<u64>]) -> Vec<(NodeId, Message<u64>)> {
    outputs
        .iter()
        .filter_map(|output| match output {
            Output::Send { to, message } => Some((*to, message.clone())),
            _ => None,
        })
        .collect()
}

/// The one message the step sent, checking that it went to `to`.
///
/// # Panics
///
/// If the step did not send exactly one message, or sent it elsewhere.
pub fn reply(outputs: &[Output<u64>], to: u64) -> Message<u64> {
    let sent = sends(outputs);
    assert_eq!(sent.len(), 1, "exactly one message expected, got {sent:?}");
    assert_eq!(sent[0].0, NodeId(to), "reply goes back to the sender");
    sent[0].1.clone()
}

/// Every `Output::Persist` among `outputs`, in order.
pub fn persists(outputs: &[Output<u64>]) -> Vec<Persist<u64>> {
    outputs
        .iter()
        .filter_map(|output| match output {
            Output::Persist(persist) => Some(persist.clone()),
            _ => None,
        })
        .collect()
}

/// The persisted log changes (appends and truncations), without hard states.
pub fn log_persists(outputs: &[Output<u64>]) -> Vec<Persist<u64>> {
    persists(outputs)
        .into_iter()
        .filter(|persist| !matches!(persist, Persist::HardState(_)))
        .collect()
}

/// The hard states persisted among `outputs`, in order.
pub fn persisted_hard_states(outputs: &[Output<u64>]) -> Vec<HardState> {
    persists(outputs)
        .into_iter()
        .filter_map(|persist| match persist {
            Persist::HardState(hard_state) => Some(hard_state),
            _ => None,
        })
        .collect()
}

/// Every entry applied among `outputs`, in order.
pub fn applied(outputs: &[Output<u64>]) -> Vec<Entry<u64>> {
    outputs
        .iter()
        .filter_map(|output| match output {
            Output::Apply(entries) => Some(entries.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

// ----- messages -----

/// A RequestVote of `term` from a candidate whose last entry is at `last_log_index` with
/// `last_log_term`.
pub fn request_vote(term: u64, last_log_index: u64, last_log_term: u64) -> Message<u64> {
    Message::RequestVote(RequestVote {
        term: Term(term),
        last_log_index: LogIndex(last_log_index),
        last_log_term: Term(last_log_term),
        transfer: false,
    })
}

/// A RequestVoteResponse of `term`, granting the vote or not.
pub fn vote(term: u64, granted: bool) -> Message<u64> {
    Message::RequestVoteResponse(RequestVoteResponse { term: Term(term), granted })
}

/// An AppendEntries of `term` carrying `entries` after the entry at `prev_log_index` with
/// `prev_log_term`, and the leader's commit index.
pub fn append(
    term: u64,
    prev_log_index: u64,
    prev_log_term: u64,
    entries: Vec<Entry<u64>>,
    leader_commit: u64,
) -> Message<u64> {
    Message::AppendEntries(AppendEntries {
        term: Term(term),
        prev_log_index: LogIndex(prev_log_index),
        prev_log_term: Term(prev_log_term),
        entries,
        leader_commit: LogIndex(leader_commit),
    })
}

/// An AppendEntriesResponse of `term` with this outcome.
pub fn append_response(term: u64, outcome: AppendOutcome) -> Message<u64> {
    Message::AppendEntriesResponse(AppendEntriesResponse { term: Term(term), outcome })
}

/// The outcome of an AppendEntries whose entries now match the leader's up to `match_index`.
pub fn success(match_index: u64) -> AppendOutcome {
    AppendOutcome::Success { match_index: LogIndex(match_index) }
}

/// A Heartbeat of `term` carrying the leader's commit index.
pub fn heartbeat(term: u64, commit: u64) -> Message<u64> {
    Message::Heartbeat(Heartbeat { term: Term(term), commit: LogIndex(commit), round: 0 })
}

/// A HeartbeatResponse of `term`.
pub fn heartbeat_response(term: u64) -> Message<u64> {
    Message::HeartbeatResponse(HeartbeatResponse { term: Term(term), round: 0 })
}

// ----- the network -----

/// A minimal network for nodes built with `Node::restore`: FIFO delivery; messages to or from a
/// node in `down` are lost; every applied entry is recorded per node.
pub struct Net {
    /// The nodes, by id.
    pub nodes: BTreeMap<NodeId, Node<u64>>,
    /// Messages in flight, oldest first, as `(from, to, message)`.
    pub queue: VecDeque<(NodeId, NodeId, Message<u64>)>,
    /// Nodes whose incoming and outgoing messages are lost.
    pub down: BTreeSet<NodeId>,
    /// Every entry each node has applied, in order.
    pub applied: BTreeMap<NodeId, Vec<Entry<u64>>>,
}

impl Net {
    /// A network of these nodes, with nothing in flight and every node up.
    pub fn new(nodes: Vec<Node<u64>>) -> Net {
        Net {
            nodes: nodes.into_iter().map(|node| (node.id(), node)).collect(),
            queue: VecDeque::new(),
            down: BTreeSet::new(),
            applied: BTreeMap::new(),
        }
    }

    /// The node `id`.
    ///
    /// # Panics
    ///
    /// If there is no node `id`.
    pub fn node(&self, id: u64) -> &Node<u64> {
        &self.nodes[&NodeId(id)]
    }

    /// Steps node `id` with `input`, queueing the messages it sends and recording the entries
    /// it applies.
    ///
    /// # Panics
    ///
    /// If there is no node `id`.
    pub fn step(&mut self, id: u64, input: Input<u64>) {
        let node = self.nodes.get_mut(&NodeId(id)).expect("known node");
        for output in node.step_in_place(input) {
            match output {
                Output::Send { to, message } => self.queue.push_back((NodeId(id), to, message)),
                Output::Apply(entries) => {
                    self.applied.entry(NodeId(id)).or_default().extend(entries)
                }
                _ => {}
            }
        }
    }

    /// Delivers until the network is quiet, losing the messages `lose` picks.
    ///
    /// # Panics
    ///
    /// If the network is still busy after 100,000 deliveries.
    pub fn deliver_all_except(&mut self, lose: impl Fn(&Net, NodeId, &Message<u64>) -> bool) {
        for _ in 0..100_000 {
            let Some((from, to, message)) = self.queue.pop_front() else { return };
            if self.down.contains(&from) || self.down.contains(&to) || lose(self, to, &message) {
                continue;
            }
            self.step(to.0, Input::Receive { from, message });
        }
        panic!("the network never went quiet");
    }

    /// Delivers until the network is quiet, losing only the messages to or from a node that is
    /// down.
    ///
    /// # Panics
    ///
    /// If the network is still busy after 100,000 deliveries.
    pub fn deliver_all(&mut self) {
        self.deliver_all_except(|_, _, _| false);
    }

    /// Whether any node ever applied an entry at `index` with `term`.
    pub fn anyone_applied(&self, index: u64, term: u64) -> bool {
        self.applied
            .values()
            .flatten()
            .any(|entry| entry.index == LogIndex(index) && entry.term == Term(term))
    }
}
