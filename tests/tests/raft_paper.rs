//! The rules of the Raft paper (Ongaro & Ousterhout, "In Search of an Understandable Consensus
//! Algorithm", extended version) as scenario tests. Each test cites the section it checks.
//!
//! Single nodes are driven by hand with `step_in_place`; whole clusters run on the in-memory
//! harness, or on the small `Net` below when nodes must start from a log built with
//! `Node::restore` (Figures 7 and 8).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use stepraft::{
    AppendEntries, AppendEntriesResponse, AppendOutcome, Config, ConflictHint, DurableState, Entry,
    HardState, Heartbeat, HeartbeatResponse, Input, LogIndex, Message, Node, NodeId, Output,
    Payload, Persist, Proposal, ProposalId, ProposeError, RangeError, RequestVote,
    RequestVoteResponse, Role, Term,
};
use stepraft_tests::Cluster;

// ----- helpers -----

fn ids(size: u64) -> Vec<NodeId> {
    (1..=size).map(NodeId).collect()
}

fn config(id: u64, size: u64) -> Config {
    Config::new(NodeId(id), ids(size))
}

fn fresh(id: u64, size: u64) -> Node<u64> {
    Node::new(config(id, size)).expect("valid config")
}

/// An entry whose command is derived from its position, so that two entries with the same
/// index and term are equal.
fn entry(index: u64, term: u64) -> Entry<u64> {
    Entry {
        term: Term(term),
        index: LogIndex(index),
        payload: Payload::Command(term * 1000 + index),
    }
}

fn noop(index: u64, term: u64) -> Entry<u64> {
    Entry { term: Term(term), index: LogIndex(index), payload: Payload::Noop }
}

/// A log from index 1 whose entries have these terms.
fn log_of_terms(terms: &[u64]) -> Vec<Entry<u64>> {
    terms.iter().zip(1..).map(|(&term, index)| entry(index, term)).collect()
}

fn hard(term: u64, voted_for: Option<u64>, commit: u64) -> HardState {
    HardState { term: Term(term), voted_for: voted_for.map(NodeId), commit: LogIndex(commit) }
}

fn restored(config: Config, hard_state: HardState, terms: &[u64]) -> Node<u64> {
    let durable = DurableState { hard_state, entries: log_of_terms(terms) };
    Node::restore(config, durable).expect("valid durable state")
}

fn terms_of(node: &Node<u64>) -> Vec<u64> {
    node.log_entries().iter().map(|entry| entry.term.0).collect()
}

fn receive(node: &mut Node<u64>, from: u64, message: Message<u64>) -> Vec<Output<u64>> {
    node.step_in_place(Input::Receive { from: NodeId(from), message })
}

fn sends(outputs: &[Output<u64>]) -> Vec<(NodeId, Message<u64>)> {
    outputs
        .iter()
        .filter_map(|output| match output {
            Output::Send { to, message } => Some((*to, message.clone())),
            _ => None,
        })
        .collect()
}

/// The one message the step sent, checking that it went to `to`.
fn reply(outputs: &[Output<u64>], to: u64) -> Message<u64> {
    let sent = sends(outputs);
    assert_eq!(sent.len(), 1, "exactly one message expected, got {sent:?}");
    assert_eq!(sent[0].0, NodeId(to), "reply goes back to the sender");
    sent[0].1.clone()
}

fn persists(outputs: &[Output<u64>]) -> Vec<Persist<u64>> {
    outputs
        .iter()
        .filter_map(|output| match output {
            Output::Persist(persist) => Some(persist.clone()),
            _ => None,
        })
        .collect()
}

/// The persisted log changes (appends and truncations), without hard states.
fn log_persists(outputs: &[Output<u64>]) -> Vec<Persist<u64>> {
    persists(outputs)
        .into_iter()
        .filter(|persist| !matches!(persist, Persist::HardState(_)))
        .collect()
}

fn persisted_hard_states(outputs: &[Output<u64>]) -> Vec<HardState> {
    persists(outputs)
        .into_iter()
        .filter_map(|persist| match persist {
            Persist::HardState(hard_state) => Some(hard_state),
            _ => None,
        })
        .collect()
}

fn applied(outputs: &[Output<u64>]) -> Vec<Entry<u64>> {
    outputs
        .iter()
        .filter_map(|output| match output {
            Output::Apply(entries) => Some(entries.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn request_vote(term: u64, last_log_index: u64, last_log_term: u64) -> Message<u64> {
    Message::RequestVote(RequestVote {
        term: Term(term),
        last_log_index: LogIndex(last_log_index),
        last_log_term: Term(last_log_term),
    })
}

fn vote(term: u64, granted: bool) -> Message<u64> {
    Message::RequestVoteResponse(RequestVoteResponse { term: Term(term), granted })
}

fn append(
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

fn append_response(term: u64, outcome: AppendOutcome) -> Message<u64> {
    Message::AppendEntriesResponse(AppendEntriesResponse { term: Term(term), outcome })
}

fn success(match_index: u64) -> AppendOutcome {
    AppendOutcome::Success { match_index: LogIndex(match_index) }
}

fn heartbeat(term: u64, commit: u64) -> Message<u64> {
    Message::Heartbeat(Heartbeat { term: Term(term), commit: LogIndex(commit) })
}

fn heartbeat_response(term: u64) -> Message<u64> {
    Message::HeartbeatResponse(HeartbeatResponse { term: Term(term) })
}

/// One message of every kind, all carrying `term`.
fn every_message_kind(term: u64) -> Vec<Message<u64>> {
    vec![
        request_vote(term, 0, 0),
        vote(term, false),
        append(term, 0, 0, vec![], 0),
        append_response(term, success(0)),
        heartbeat(term, 0),
        heartbeat_response(term),
    ]
}

/// Whether only a leader sends this kind of message (so its sender is the leader).
fn sent_by_leader(message: &Message<u64>) -> bool {
    matches!(message, Message::AppendEntries(_) | Message::Heartbeat(_))
}

/// Makes `node` campaign and hands it granted votes until it leads; returns the outputs of the
/// step in which it became leader.
fn win_election(node: &mut Node<u64>) -> Vec<Output<u64>> {
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

fn propose(node: &mut Node<u64>, command: u64) -> Vec<Output<u64>> {
    node.step_in_place(Input::Propose(Proposal::one(ProposalId(command), command)))
}

/// A minimal network for nodes built with `Node::restore`: FIFO delivery; messages to or from a
/// node in `down` are lost; every applied entry is recorded per node.
struct Net {
    nodes: BTreeMap<NodeId, Node<u64>>,
    queue: VecDeque<(NodeId, NodeId, Message<u64>)>,
    down: BTreeSet<NodeId>,
    applied: BTreeMap<NodeId, Vec<Entry<u64>>>,
}

impl Net {
    fn new(nodes: Vec<Node<u64>>) -> Net {
        Net {
            nodes: nodes.into_iter().map(|node| (node.id(), node)).collect(),
            queue: VecDeque::new(),
            down: BTreeSet::new(),
            applied: BTreeMap::new(),
        }
    }

    fn node(&self, id: u64) -> &Node<u64> {
        &self.nodes[&NodeId(id)]
    }

    fn step(&mut self, id: u64, input: Input<u64>) {
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
    fn deliver_all_except(&mut self, lose: impl Fn(&Net, NodeId, &Message<u64>) -> bool) {
        for _ in 0..100_000 {
            let Some((from, to, message)) = self.queue.pop_front() else { return };
            if self.down.contains(&from) || self.down.contains(&to) || lose(self, to, &message) {
                continue;
            }
            self.step(to.0, Input::Receive { from, message });
        }
        panic!("the network never went quiet");
    }

    fn deliver_all(&mut self) {
        self.deliver_all_except(|_, _, _| false);
    }

    /// Whether any node ever applied an entry at `index` with `term`.
    fn anyone_applied(&self, index: u64, term: u64) -> bool {
        self.applied
            .values()
            .flatten()
            .any(|entry| entry.index == LogIndex(index) && entry.term == Term(term))
    }
}

// ----- §5.1: terms -----

/// §5.1: a follower that receives any message with a higher term adopts that term, persists
/// it, drops its vote of the old term and stays a follower.
#[test]
fn follower_adopts_higher_term_from_every_message_kind() {
    for message in every_message_kind(5) {
        let mut node = restored(config(1, 3), hard(3, Some(2), 0), &[1, 3]);
        let outputs = receive(&mut node, 2, message.clone());
        assert_eq!(node.term(), Term(5), "{message:?}");
        assert_eq!(node.role(), Role::Follower, "{message:?}");
        assert_eq!(node.voted_for(), None, "{message:?}");
        let expected_leader = sent_by_leader(&message).then_some(NodeId(2));
        assert_eq!(node.leader(), expected_leader, "{message:?}");
        assert!(
            persisted_hard_states(&outputs).iter().any(|hs| hs.term == Term(5)),
            "the new term is persisted: {message:?}"
        );
    }
}

/// §5.1: a candidate that receives any message with a higher term adopts it and becomes a
/// follower.
#[test]
fn candidate_adopts_higher_term_from_every_message_kind_and_becomes_follower() {
    for message in every_message_kind(5) {
        let mut node = restored(config(1, 3), hard(3, None, 0), &[1, 3]);
        let _ = node.step_in_place(Input::Campaign);
        assert_eq!((node.role(), node.term()), (Role::Candidate, Term(4)));
        let outputs = receive(&mut node, 2, message.clone());
        assert_eq!(node.term(), Term(5), "{message:?}");
        assert_eq!(node.role(), Role::Follower, "{message:?}");
        assert_eq!(node.voted_for(), None, "{message:?}");
        assert!(persisted_hard_states(&outputs).iter().any(|hs| hs.term == Term(5)));
        assert!(outputs.iter().any(|output| matches!(
            output,
            Output::LeaderChanged { term: Term(5), role: Role::Follower, .. }
        )));
    }
}

/// §5.1: a leader that receives any message with a higher term adopts it, steps down to
/// follower, says so, and refuses proposals from then on.
#[test]
fn leader_adopts_higher_term_from_every_message_kind_and_steps_down() {
    for message in every_message_kind(5) {
        let mut node = restored(config(1, 3), hard(3, None, 0), &[1, 3]);
        let _ = win_election(&mut node);
        assert_eq!(node.term(), Term(4));
        let outputs = receive(&mut node, 2, message.clone());
        assert_eq!(node.term(), Term(5), "{message:?}");
        assert_eq!(node.role(), Role::Follower, "{message:?}");
        let expected_leader = sent_by_leader(&message).then_some(NodeId(2));
        assert_eq!(node.leader(), expected_leader, "{message:?}");
        assert!(persisted_hard_states(&outputs).iter().any(|hs| hs.term == Term(5)));
        assert!(outputs.contains(&Output::LeaderChanged {
            term: Term(5),
            leader: expected_leader,
            role: Role::Follower,
        }));
        let outputs = propose(&mut node, 9);
        assert!(outputs.contains(&Output::Rejected {
            proposal: ProposalId(9),
            error: ProposeError::NotLeader { leader: expected_leader, term: Term(5) },
        }));
    }
}

/// §5.1: a RequestVote from an older term is refused and answered with the receiver's term, so
/// the stale candidate learns it is behind; the receiver keeps its term and does not vote.
#[test]
fn follower_refuses_request_vote_with_stale_term() {
    let mut node = restored(config(1, 3), hard(5, None, 0), &[1, 1]);
    // The candidate's log is more up-to-date: only its term is wrong.
    let outputs = receive(&mut node, 2, request_vote(3, 10, 3));
    assert_eq!(reply(&outputs, 2), vote(5, false));
    assert_eq!((node.term(), node.voted_for()), (Term(5), None));
    assert!(persisted_hard_states(&outputs).is_empty());
}

/// §5.1: an AppendEntries from an older term is refused with `StaleTerm` and the receiver's
/// term; the log, the leader and the election timer are untouched.
#[test]
fn follower_rejects_append_with_stale_term() {
    let mut node = restored(config(1, 3), hard(5, None, 0), &[1, 1]);
    let _ = node.step_in_place(Input::Tick);
    let ticks_left = node.ticks_until_election();
    let outputs = receive(&mut node, 2, append(3, 2, 1, vec![entry(3, 3)], 3));
    assert_eq!(reply(&outputs, 2), append_response(5, AppendOutcome::StaleTerm));
    assert_eq!(terms_of(&node), [1, 1]);
    assert_eq!(node.commit_index(), LogIndex(0));
    assert_eq!(node.leader(), None);
    assert_eq!(node.term(), Term(5));
    assert_eq!(node.ticks_until_election(), ticks_left, "a stale leader does not reset the timer");
}

/// §5.1: a Heartbeat from an older term is answered with a HeartbeatResponse carrying the
/// receiver's term; its commit index is not taken and its sender is not followed.
#[test]
fn follower_answers_stale_heartbeat_with_its_term() {
    let mut node = restored(config(1, 3), hard(5, None, 0), &[1, 1]);
    let _ = node.step_in_place(Input::Tick);
    let ticks_left = node.ticks_until_election();
    let outputs = receive(&mut node, 2, heartbeat(3, 2));
    assert_eq!(reply(&outputs, 2), heartbeat_response(5));
    assert_eq!(node.commit_index(), LogIndex(0));
    assert!(applied(&outputs).is_empty());
    assert_eq!(node.leader(), None);
    assert_eq!(node.ticks_until_election(), ticks_left, "a stale leader does not reset the timer");
}

/// §5.1: candidates and leaders refuse stale requests the same way and keep their role.
#[test]
fn candidate_and_leader_refuse_stale_requests_and_keep_their_role() {
    let stale_requests = [
        (request_vote(2, 10, 2), vote(4, false)),
        (append(2, 0, 0, vec![], 0), append_response(4, AppendOutcome::StaleTerm)),
        (heartbeat(2, 0), heartbeat_response(4)),
    ];
    for leads in [false, true] {
        for (request, expected) in &stale_requests {
            let mut node = restored(config(1, 3), hard(3, None, 0), &[1, 3]);
            if leads {
                let _ = win_election(&mut node);
            } else {
                let _ = node.step_in_place(Input::Campaign);
            }
            let role = node.role();
            let outputs = receive(&mut node, 2, request.clone());
            assert_eq!(&reply(&outputs, 2), expected);
            assert_eq!((node.role(), node.term()), (role, Term(4)));
        }
    }
}

// ----- §5.2: leader election -----

/// §5.2: when servers start up, they begin as followers, in term 0, knowing no leader.
#[test]
fn nodes_start_as_followers_without_leader() {
    let node = fresh(1, 3);
    assert_eq!(node.role(), Role::Follower);
    assert_eq!(node.term(), Term(0));
    assert_eq!(node.leader(), None);
    assert_eq!(node.voted_for(), None);
    assert_eq!((node.last_index(), node.commit_index()), (LogIndex(0), LogIndex(0)));

    let cluster = Cluster::new(5);
    for id in cluster.ids() {
        assert_eq!(cluster.node(id).role(), Role::Follower);
        assert_eq!(cluster.node(id).leader(), None);
    }

    // A node restarted from durable state also comes back as a follower, even one that led.
    let node = restored(config(1, 3), hard(4, Some(1), 2), &[1, 4]);
    assert_eq!((node.role(), node.term(), node.leader()), (Role::Follower, Term(4), None));
}

/// §5.2: a leader sends heartbeats to every follower every `heartbeat_ticks` ticks, whether or
/// not they answer, and does not time out itself.
#[test]
fn leader_sends_heartbeat_to_every_follower_every_heartbeat_ticks() {
    let mut config = config(1, 5);
    config.heartbeat_ticks = 3;
    config.election_ticks = 10;
    let mut leader = Node::<u64>::new(config).expect("valid config");
    let _ = win_election(&mut leader);
    for tick in 1..=30 {
        let outputs = leader.step_in_place(Input::Tick);
        let mut beaten: Vec<NodeId> = sends(&outputs)
            .into_iter()
            .filter_map(|(to, message)| match message {
                Message::Heartbeat(beat) => {
                    assert_eq!(beat.term, Term(1));
                    Some(to)
                }
                _ => None,
            })
            .collect();
        beaten.sort();
        if tick % 3 == 0 {
            assert_eq!(beaten, ids(5)[1..], "tick {tick}: one heartbeat per follower");
        } else {
            assert!(beaten.is_empty(), "tick {tick}: no heartbeat between periods");
        }
        assert_eq!((leader.role(), leader.term()), (Role::Leader, Term(1)));
    }
}

/// §5.2: a follower that hears nothing for its election timeout becomes a candidate: it
/// increments its term, votes for itself and asks every peer for a vote.
#[test]
fn follower_campaigns_when_election_timeout_elapses_without_leader() {
    let mut node = fresh(1, 3);
    let timeout = node.ticks_until_election();
    assert!(timeout >= 10);
    for tick in 1..timeout {
        let outputs = node.step_in_place(Input::Tick);
        assert!(sends(&outputs).is_empty(), "tick {tick}: still waiting");
        assert_eq!(node.role(), Role::Follower);
    }
    let outputs = node.step_in_place(Input::Tick);
    assert_eq!(node.role(), Role::Candidate);
    assert_eq!(node.term(), Term(1));
    assert_eq!(node.voted_for(), Some(NodeId(1)));
    let requests = sends(&outputs);
    assert_eq!(
        requests,
        vec![(NodeId(2), request_vote(1, 0, 0)), (NodeId(3), request_vote(1, 0, 0))]
    );
}

/// §5.2: a follower keeps following while it hears from the leader more often than its
/// election timeout, and campaigns once the leader falls silent.
#[test]
fn follower_hearing_heartbeats_never_campaigns_until_leader_falls_silent() {
    let mut node = fresh(2, 3);
    let _ = receive(&mut node, 1, heartbeat(1, 0));
    for tick in 1..=200 {
        let _ = node.step_in_place(Input::Tick);
        if tick % 5 == 0 {
            let _ = receive(&mut node, 1, heartbeat(1, 0));
        }
        assert_eq!((node.role(), node.term()), (Role::Follower, Term(1)), "tick {tick}");
    }
    assert_eq!(node.stats().elections_started, 0);
    // Silence: within the largest possible timeout (2 · election_ticks) it campaigns.
    let silent_ticks = (1..=20).find(|_| {
        let _ = node.step_in_place(Input::Tick);
        node.role() == Role::Candidate
    });
    assert!(silent_ticks.is_some_and(|ticks| ticks >= 10), "campaigned after {silent_ticks:?}");
    assert_eq!(node.term(), Term(2));
}

/// §5.2: a candidate that neither wins nor loses before its election timeout starts a new
/// election with a higher term.
#[test]
fn candidate_that_times_out_starts_new_election_with_higher_term() {
    let mut node = fresh(1, 3);
    let _ = node.step_in_place(Input::Campaign);
    assert_eq!((node.role(), node.term()), (Role::Candidate, Term(1)));
    let timeout = node.ticks_until_election();
    assert!((10..20).contains(&timeout), "fresh randomized timeout {timeout}");
    for _ in 1..timeout {
        let _ = node.step_in_place(Input::Tick);
        assert_eq!((node.role(), node.term()), (Role::Candidate, Term(1)));
    }
    let outputs = node.step_in_place(Input::Tick);
    assert_eq!((node.role(), node.term()), (Role::Candidate, Term(2)));
    assert_eq!(node.voted_for(), Some(NodeId(1)));
    assert!(persisted_hard_states(&outputs).contains(&hard(2, Some(1), 0)));
    assert_eq!(
        sends(&outputs),
        vec![(NodeId(2), request_vote(2, 0, 0)), (NodeId(3), request_vote(2, 0, 0))]
    );
}

/// Campaigns on node 1 of a fresh cluster of `size` and delivers every message, without any
/// tick: node 1 must lead term 1 and every other node must follow it.
fn assert_elected_in_one_round(size: u64) {
    let mut cluster = Cluster::new(size);
    cluster.campaign(NodeId(1));
    cluster.deliver_all();
    let leader = cluster.node(NodeId(1));
    assert_eq!((leader.role(), leader.term()), (Role::Leader, Term(1)), "size {size}");
    for id in cluster.ids().into_iter().skip(1) {
        let node = cluster.node(id);
        assert_eq!(node.role(), Role::Follower, "size {size}, {id}");
        assert_eq!(node.leader(), Some(NodeId(1)), "size {size}, {id}");
        assert_eq!(node.term(), Term(1), "size {size}, {id}");
    }
    assert_eq!(cluster.leader(), Some(NodeId(1)));
    cluster.assert_safety();
}

/// §5.2: a single node elects itself as soon as it campaigns.
#[test]
fn single_node_is_elected_in_one_round() {
    assert_elected_in_one_round(1);
}

/// §5.2: in a quiet 3-node cluster, one round of RequestVote elects the candidate.
#[test]
fn three_node_candidate_is_elected_in_one_round() {
    assert_elected_in_one_round(3);
}

/// §5.2: in a quiet 5-node cluster, one round of RequestVote elects the candidate.
#[test]
fn five_node_candidate_is_elected_in_one_round() {
    assert_elected_in_one_round(5);
}

/// §5.2: each server votes for at most one candidate per term, first come first served; a
/// duplicated request from the candidate it voted for is granted again. The vote survives a
/// restart from what was persisted.
#[test]
fn voter_grants_one_vote_per_term_and_repeats_it_to_the_same_candidate() {
    let mut voter = fresh(3, 3);
    let mut disk = DurableState::default();
    let mut step = |voter: &mut Node<u64>, from: u64| {
        let outputs = receive(voter, from, request_vote(1, 0, 0));
        persists(&outputs).iter().for_each(|persist| disk.apply(persist));
        reply(&outputs, from)
    };
    assert_eq!(step(&mut voter, 1), vote(1, true));
    assert_eq!(step(&mut voter, 2), vote(1, false));
    assert_eq!(step(&mut voter, 1), vote(1, true));
    assert_eq!(voter.voted_for(), Some(NodeId(1)));

    let mut restarted = Node::restore(config(3, 3), disk).expect("restores");
    assert_eq!(restarted.voted_for(), Some(NodeId(1)));
    assert_eq!(reply(&receive(&mut restarted, 2, request_vote(1, 0, 0)), 2), vote(1, false));
    assert_eq!(reply(&receive(&mut restarted, 1, request_vote(1, 0, 0)), 1), vote(1, true));
}

/// §5.2 (Figure 2, persistent state): the vote is made durable before the response that
/// grants it leaves — a `Persist::HardState` with `voted_for` precedes the `Send`. The same
/// holds for a candidate's vote for itself before its RequestVotes.
#[test]
fn vote_is_persisted_before_the_granting_response_is_sent() {
    let mut voter = fresh(2, 3);
    let outputs = receive(&mut voter, 1, request_vote(1, 0, 0));
    let persisted = outputs
        .iter()
        .position(|output| *output == Output::Persist(Persist::HardState(hard(1, Some(1), 0))))
        .expect("the vote is persisted");
    let granted = outputs
        .iter()
        .position(|output| *output == Output::Send { to: NodeId(1), message: vote(1, true) })
        .expect("the vote is granted");
    assert!(persisted < granted, "persist at {persisted}, send at {granted}: {outputs:?}");

    let mut candidate = fresh(1, 3);
    let outputs = candidate.step_in_place(Input::Campaign);
    let persisted = outputs
        .iter()
        .position(|output| *output == Output::Persist(Persist::HardState(hard(1, Some(1), 0))))
        .expect("the self-vote is persisted");
    let first_request = outputs
        .iter()
        .position(|output| matches!(output, Output::Send { .. }))
        .expect("vote requests are sent");
    assert!(persisted < first_request, "{outputs:?}");
}

/// §5.2: a candidate that receives AppendEntries from a leader of its own term recognizes it
/// and returns to follower state, accepting the entries.
#[test]
fn candidate_steps_down_on_append_entries_from_leader_of_same_term() {
    let mut node = fresh(1, 3);
    let _ = node.step_in_place(Input::Campaign);
    assert_eq!((node.role(), node.term()), (Role::Candidate, Term(1)));
    let outputs = receive(&mut node, 2, append(1, 0, 0, vec![noop(1, 1)], 0));
    assert_eq!(node.role(), Role::Follower);
    assert_eq!(node.leader(), Some(NodeId(2)));
    assert_eq!(node.term(), Term(1));
    assert_eq!(reply(&outputs, 2), append_response(1, success(1)));
    assert_eq!(node.log_entries(), [noop(1, 1)]);
    assert!(outputs.contains(&Output::LeaderChanged {
        term: Term(1),
        leader: Some(NodeId(2)),
        role: Role::Follower,
    }));
}

/// §5.2: a candidate that receives a Heartbeat from a leader of its own term returns to
/// follower state too.
#[test]
fn candidate_steps_down_on_heartbeat_from_leader_of_same_term() {
    let mut node = fresh(1, 3);
    let _ = node.step_in_place(Input::Campaign);
    let outputs = receive(&mut node, 3, heartbeat(1, 0));
    assert_eq!((node.role(), node.term()), (Role::Follower, Term(1)));
    assert_eq!(node.leader(), Some(NodeId(3)));
    assert_eq!(reply(&outputs, 3), heartbeat_response(1));
}

/// The election timeout a fresh node draws with this seed.
fn initial_election_timeout(seed: u64, election_ticks: u32) -> u32 {
    let mut config = config(1, 3);
    config.election_ticks = election_ticks;
    config.rng_seed = seed;
    Node::<u64>::new(config).expect("valid config").ticks_until_election()
}

/// §5.2, §9.3: election timeouts are chosen randomly from `[election_ticks, 2·election_ticks)`
/// and the whole range is used, roughly uniformly, both at start-up and at each new election.
#[test]
fn election_timeouts_are_randomized_over_the_whole_range() {
    let mut counts: BTreeMap<u32, u32> = BTreeMap::new();
    for seed in 0..2000 {
        let timeout = initial_election_timeout(seed, 10);
        assert!((10..20).contains(&timeout), "seed {seed}: {timeout}");
        *counts.entry(timeout).or_default() += 1;
    }
    assert_eq!(counts.len(), 10, "every value of the range is drawn: {counts:?}");
    for (timeout, count) in &counts {
        // Uniform would give 200 each.
        assert!((100..=300).contains(count), "{timeout} drawn {count} times: {counts:?}");
    }

    let wide: BTreeSet<u32> = (0..2000).map(|seed| initial_election_timeout(seed, 100)).collect();
    assert!(wide.iter().all(|timeout| (100..200).contains(timeout)), "{wide:?}");
    assert!(wide.len() >= 90, "only {} distinct values: {wide:?}", wide.len());
    assert!(*wide.first().unwrap() <= 102 && *wide.last().unwrap() >= 197, "{wide:?}");

    // A new election draws a new timeout from the same range.
    let mut node = fresh(1, 3);
    let mut redrawn = BTreeSet::new();
    for _ in 0..200 {
        let _ = node.step_in_place(Input::Campaign);
        let timeout = node.ticks_until_election();
        assert!((10..20).contains(&timeout), "{timeout}");
        redrawn.insert(timeout);
    }
    assert!(redrawn.len() >= 8, "{redrawn:?}");
}

/// §5.2, §9.3: nodes with different seeds rarely pick the same timeout, which is what makes
/// split votes rare.
#[test]
fn nodes_with_different_seeds_rarely_share_an_election_timeout() {
    // Uniform timeouts over 100 values collide with probability 1/100: ~10 in 1000 pairs.
    let collisions = (0..1000u64)
        .filter(|k| {
            initial_election_timeout(2 * k, 100) == initial_election_timeout(2 * k + 1, 100)
        })
        .count();
    assert!(collisions <= 30, "{collisions} collisions in 1000 pairs");
    // With the default 10 values: ~100 in 1000 pairs.
    let collisions = (0..1000u64)
        .filter(|k| initial_election_timeout(2 * k, 10) == initial_election_timeout(2 * k + 1, 10))
        .count();
    assert!(collisions <= 200, "{collisions} collisions in 1000 pairs");
    // The default seeds of a 5-node cluster (derived from the ids) do not all agree.
    let defaults: BTreeSet<u32> = (1..=5).map(|id| fresh(id, 5).ticks_until_election()).collect();
    assert!(defaults.len() >= 2, "{defaults:?}");
}

// ----- §5.3: log replication -----

/// §5.3, §8: a new leader appends a no-op entry of its term and at once sends AppendEntries
/// carrying it to every follower, including those that did not vote for it.
#[test]
fn new_leader_appends_noop_of_its_term_and_sends_it_to_every_follower() {
    let mut node = restored(config(1, 3), hard(1, None, 0), &[1, 1]);
    let outputs = win_election(&mut node);
    assert_eq!(node.term(), Term(2));
    let noop = noop(3, 2);
    assert_eq!(node.log_entries().last(), Some(&noop));
    assert_eq!((node.last_index(), node.last_term()), (LogIndex(3), Term(2)));
    assert!(log_persists(&outputs).contains(&Persist::Append(vec![noop.clone()])));
    let expected = append(2, 2, 1, vec![noop], 0);
    assert_eq!(sends(&outputs), vec![(NodeId(2), expected.clone()), (NodeId(3), expected)]);
}

/// §5.3: an entry is committed once the leader has replicated it on a majority of servers, and
/// not before. Here each follower's copy is delivered by hand.
#[test]
fn entry_commits_once_a_majority_stores_it_and_not_before() {
    let leader = NodeId(1);
    let mut cluster = Cluster::new(5);
    cluster.campaign(leader);
    cluster.deliver_all();
    assert_eq!(cluster.node(leader).commit_index(), LogIndex(1));
    let index = cluster.propose(leader, 42).expect("leader accepts");
    assert_eq!(index, LogIndex(2));
    let appends = cluster.take_in_flight();
    assert_eq!(appends.len(), 4, "one AppendEntries per follower");
    let append_to =
        |id: u64| appends.iter().find(|envelope| envelope.to == NodeId(id)).cloned().expect("sent");

    // Stored on the leader and node 2: 2 of 5.
    cluster.inject(append_to(2));
    cluster.deliver_all();
    assert_eq!(cluster.node(NodeId(2)).last_index(), index);
    assert_eq!(cluster.node(leader).commit_index(), LogIndex(1));
    assert_eq!(
        cluster.node(leader).entries(index..=index),
        Err(RangeError::NotCommitted { end: index, commit: LogIndex(1) })
    );
    assert!(cluster.applied_commands(leader).is_empty());

    // Stored on node 3 too: 3 of 5, a majority.
    cluster.inject(append_to(3));
    cluster.deliver_all();
    assert_eq!(cluster.node(leader).commit_index(), index);
    assert_eq!(cluster.applied_commands(leader), [42]);
    let committed = cluster.node(leader).entries(index..=index).expect("committed");
    assert_eq!(committed[0].command(), Some(&42));

    // The remaining copies change nothing.
    cluster.inject(append_to(4));
    cluster.inject(append_to(5));
    cluster.deliver_all();
    assert_eq!(cluster.node(leader).commit_index(), index);
    cluster.assert_safety();
}

/// §5.3: committing an entry commits every entry before it: a single acknowledgement of the
/// last of three entries commits all three at once.
#[test]
fn committing_current_term_entry_commits_all_preceding_entries() {
    let leader = NodeId(1);
    let mut cluster = Cluster::new(3);
    cluster.campaign(leader);
    cluster.deliver_all();
    assert_eq!(cluster.node(leader).commit_index(), LogIndex(1));
    for command in [10, 11, 12] {
        cluster.propose(leader, command).expect("leader accepts");
    }
    let to_node_2: Vec<_> =
        cluster.take_in_flight().into_iter().filter(|e| e.to == NodeId(2)).collect();
    assert_eq!(to_node_2.len(), 3);
    for envelope in to_node_2 {
        cluster.inject(envelope);
    }
    for _ in 0..3 {
        cluster.deliver_one();
    }
    assert_eq!(cluster.node(NodeId(2)).last_index(), LogIndex(4));
    // Lose every acknowledgement but the last one.
    let last_ack = cluster.take_in_flight().pop().expect("acknowledgements");
    assert!(matches!(
        &last_ack.message,
        Message::AppendEntriesResponse(AppendEntriesResponse {
            outcome: AppendOutcome::Success { match_index: LogIndex(4) },
            ..
        })
    ));
    assert_eq!(cluster.node(leader).commit_index(), LogIndex(1));
    cluster.inject(last_ack);
    cluster.deliver_all();
    assert_eq!(cluster.node(leader).commit_index(), LogIndex(4));
    let applied_now = applied(cluster.last_outputs(leader));
    let indexes: Vec<LogIndex> = applied_now.iter().map(|entry| entry.index).collect();
    assert_eq!(indexes, [LogIndex(2), LogIndex(3), LogIndex(4)]);
    assert_eq!(cluster.applied_commands(leader), [10, 11, 12]);
}

/// §5.3: followers learn the commit index from the leader's heartbeats and apply the newly
/// committed entries in order.
#[test]
fn followers_learn_commit_index_from_heartbeat_and_apply() {
    let leader = NodeId(1);
    let followers = [NodeId(2), NodeId(3)];
    let mut cluster = Cluster::new(3);
    cluster.campaign(leader);
    cluster.deliver_all();
    let index = cluster.propose(leader, 7).expect("leader accepts");
    cluster.deliver_all();
    assert_eq!(cluster.node(leader).commit_index(), index);
    for follower in followers {
        assert_eq!(cluster.node(follower).last_index(), index);
        assert!(cluster.node(follower).commit_index() < index, "not told yet");
        assert!(cluster.applied_commands(follower).is_empty());
    }
    cluster.tick(leader);
    cluster.deliver_all();
    for follower in followers {
        assert_eq!(cluster.node(follower).commit_index(), index);
        assert_eq!(cluster.applied_commands(follower), [7]);
        assert_eq!(cluster.applied(follower).len(), 2, "the no-op is applied too");
    }
    cluster.assert_safety();
}

/// §5.3: followers also learn the commit index from the `leader_commit` of the next
/// AppendEntries.
#[test]
fn followers_learn_commit_index_from_next_append_entries() {
    let leader = NodeId(1);
    let mut cluster = Cluster::new(3);
    cluster.campaign(leader);
    cluster.deliver_all();
    let first = cluster.propose(leader, 7).expect("leader accepts");
    cluster.deliver_all();
    assert!(cluster.node(NodeId(2)).commit_index() < first);
    cluster.propose(leader, 8).expect("leader accepts");
    let appends = cluster.take_in_flight();
    let to_node_2 = appends.into_iter().find(|e| e.to == NodeId(2)).expect("sent");
    assert!(matches!(
        &to_node_2.message,
        Message::AppendEntries(AppendEntries { leader_commit, .. }) if *leader_commit == first
    ));
    cluster.inject(to_node_2);
    cluster.deliver_one();
    assert_eq!(cluster.node(NodeId(2)).commit_index(), first);
    assert_eq!(cluster.applied_commands(NodeId(2)), [7]);
}

/// §5.3 (Figure 2, AppendEntries rule 5): a follower sets its commit index to
/// min(leaderCommit, index of last new entry) — never past what the message proved matches,
/// even when its log holds more (possibly divergent) entries.
#[test]
fn follower_commit_is_capped_at_index_of_last_new_entry() {
    // Entries 4 and 5 come from a deposed leader of term 2.
    let mut follower = restored(config(2, 3), hard(2, None, 0), &[1, 1, 1, 2, 2]);
    // The leader of term 3 has committed 5 entries of its own log; this message only covers
    // index 3.
    let outputs = receive(&mut follower, 1, append(3, 2, 1, vec![entry(3, 1)], 5));
    assert_eq!(reply(&outputs, 1), append_response(3, success(3)));
    assert_eq!(follower.commit_index(), LogIndex(3));
    assert_eq!(applied(&outputs), log_of_terms(&[1, 1, 1]));
    assert_eq!(follower.last_index(), LogIndex(5));

    // An empty follower told of a commit index beyond the entries sent commits only those.
    let mut follower = fresh(2, 3);
    let outputs = receive(&mut follower, 1, append(1, 0, 0, log_of_terms(&[1, 1]), 9));
    assert_eq!(reply(&outputs, 1), append_response(1, success(2)));
    assert_eq!(follower.commit_index(), LogIndex(2));
    assert_eq!(applied(&outputs), log_of_terms(&[1, 1]));
}

/// §5.3: the consistency check fails when the follower's log is too short to hold
/// `prev_log_index`: it answers `Conflict` with a hint at its last index + 1 and no term, and
/// changes nothing.
#[test]
fn follower_with_too_short_log_rejects_append_with_hint_at_its_end() {
    let mut follower = restored(config(2, 3), hard(2, None, 0), &[1, 1]);
    let outputs = receive(&mut follower, 1, append(2, 5, 2, vec![entry(6, 2)], 0));
    let outcome = AppendOutcome::Conflict {
        rejected_prev_index: LogIndex(5),
        hint: ConflictHint { index: LogIndex(3), term: None },
    };
    assert_eq!(reply(&outputs, 1), append_response(2, outcome));
    assert_eq!(terms_of(&follower), [1, 1]);
    assert!(log_persists(&outputs).is_empty());
}

/// §5.3: the consistency check fails when the follower holds another term at
/// `prev_log_index`: it answers `Conflict` with the first index of that term and the term, and
/// changes nothing.
#[test]
fn follower_with_other_term_at_prev_index_rejects_append_with_first_index_of_that_term() {
    let mut follower = restored(config(2, 3), hard(3, None, 0), &[1, 1, 2, 2, 2]);
    let outputs = receive(&mut follower, 1, append(3, 4, 3, vec![entry(5, 3)], 0));
    let outcome = AppendOutcome::Conflict {
        rejected_prev_index: LogIndex(4),
        hint: ConflictHint { index: LogIndex(3), term: Some(Term(2)) },
    };
    assert_eq!(reply(&outputs, 1), append_response(3, outcome));
    assert_eq!(terms_of(&follower), [1, 1, 2, 2, 2]);
    assert!(log_persists(&outputs).is_empty());

    // The same follower accepts a request whose previous entry it does hold.
    let outputs = receive(&mut follower, 1, append(3, 2, 1, vec![entry(3, 3)], 0));
    assert_eq!(reply(&outputs, 1), append_response(3, success(3)));
}

/// §5.3: only a conflict truncates. A duplicated, reordered or stale (shorter) AppendEntries
/// whose entries are already in the log never removes the entries after them.
#[test]
fn stale_shorter_append_never_truncates_matching_entries() {
    let mut follower = fresh(2, 3);
    let long = append(1, 0, 0, log_of_terms(&[1, 1, 1, 1, 1]), 0);
    let outputs = receive(&mut follower, 1, long.clone());
    assert_eq!(reply(&outputs, 1), append_response(1, success(5)));
    assert_eq!(follower.last_index(), LogIndex(5));

    let stale_and_reordered = [
        (append(1, 0, 0, log_of_terms(&[1, 1]), 0), 2),
        (append(1, 2, 1, vec![entry(3, 1), entry(4, 1)], 0), 4),
        (long, 5),
        (append(1, 1, 1, vec![], 0), 1),
    ];
    for (message, match_index) in stale_and_reordered {
        let outputs = receive(&mut follower, 1, message.clone());
        assert_eq!(reply(&outputs, 1), append_response(1, success(match_index)), "{message:?}");
        assert_eq!(follower.last_index(), LogIndex(5), "{message:?}");
        assert!(log_persists(&outputs).is_empty(), "{message:?}");
    }
    assert_eq!(follower.log_entries(), log_of_terms(&[1, 1, 1, 1, 1]));
}

/// §5.3: a real conflict (same index, different term) deletes the existing entry and all that
/// follow it; `Persist::Truncate` comes before the `Persist::Append` of the new entries.
#[test]
fn conflicting_append_truncates_suffix_before_appending() {
    let start = DurableState { hard_state: hard(2, None, 0), entries: log_of_terms(&[1, 1, 2, 2]) };
    let mut follower = Node::restore(config(2, 3), start.clone()).expect("restores");
    let outputs = receive(&mut follower, 1, append(3, 1, 1, vec![entry(2, 1), entry(3, 3)], 0));
    assert_eq!(reply(&outputs, 1), append_response(3, success(3)));
    assert_eq!(terms_of(&follower), [1, 1, 3]);
    assert_eq!(
        log_persists(&outputs),
        [Persist::Truncate { from: LogIndex(3) }, Persist::Append(vec![entry(3, 3)])]
    );
    // Executing the persists in order leaves the disk equal to the node's log.
    let mut disk = start;
    persists(&outputs).iter().for_each(|persist| disk.apply(persist));
    assert_eq!(disk.entries, follower.log_entries());
    assert_eq!(disk.hard_state, follower.hard_state());
}

// ----- §5.3, Figure 7: the leader repairs divergent logs -----

/// The log of the leader for term 8 in Figure 7.
const FIGURE_7_LEADER: [u64; 10] = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];

/// A Figure 7 server: it has seen term 7 (the term of follower (d)'s last entries) and holds
/// the common prefix `[1, 1, 1]` committed.
fn figure_7_server(id: u64, size: u64, terms: &[u64]) -> Node<u64> {
    restored(config(id, size), hard(7, None, 3), terms)
}

/// The leader's log once it has won term 8 and appended its no-op.
fn figure_7_leader_log() -> Vec<Entry<u64>> {
    let mut log = log_of_terms(&FIGURE_7_LEADER);
    log.push(noop(11, 8));
    log
}

/// Node 1 with the leader's log, node 2 with the follower's log, node 3 with a copy of the
/// leader's log (the vote the leader needs). Node 1 campaigns into term 8 and the network runs
/// until quiet: node 2's log must then equal the leader's.
fn assert_figure_7_follower_repaired(follower_log: &[u64]) {
    let mut net = Net::new(vec![
        figure_7_server(1, 3, &FIGURE_7_LEADER),
        figure_7_server(2, 3, follower_log),
        figure_7_server(3, 3, &FIGURE_7_LEADER),
    ]);
    net.step(1, Input::Campaign);
    net.deliver_all();
    let leader = net.node(1);
    assert_eq!((leader.role(), leader.term()), (Role::Leader, Term(8)));
    assert_eq!(leader.log_entries(), figure_7_leader_log());
    assert_eq!(net.node(2).log_entries(), leader.log_entries(), "follower {follower_log:?}");
    assert_eq!(net.node(2).term(), Term(8));
    assert_eq!(net.node(2).leader(), Some(NodeId(1)));
    assert_eq!(leader.commit_index(), LogIndex(11));
}

/// §5.3, Figure 7 (a): a follower missing the leader's last entry is brought up to date.
#[test]
fn leader_repairs_figure_7_follower_a_missing_one_entry() {
    assert_figure_7_follower_repaired(&[1, 1, 1, 4, 4, 5, 5, 6, 6]);
}

/// §5.3, Figure 7 (b): a follower missing many entries is brought up to date.
#[test]
fn leader_repairs_figure_7_follower_b_missing_many_entries() {
    assert_figure_7_follower_repaired(&[1, 1, 1, 4]);
}

/// §5.3, Figure 7 (c): a follower with an extra uncommitted entry of term 6 loses it.
#[test]
fn leader_repairs_figure_7_follower_c_with_extra_entry() {
    assert_figure_7_follower_repaired(&[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6]);
}

/// §5.3, Figure 7 (d): a follower with extra entries of a later term (7) loses them.
#[test]
fn leader_repairs_figure_7_follower_d_with_extra_entries_of_later_term() {
    assert_figure_7_follower_repaired(&[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7]);
}

/// §5.3, Figure 7 (e): a follower missing entries and holding extra ones of term 4.
#[test]
fn leader_repairs_figure_7_follower_e_missing_and_extra_entries() {
    assert_figure_7_follower_repaired(&[1, 1, 1, 4, 4, 4, 4]);
}

/// §5.3, Figure 7 (f): a follower with many entries of terms 2 and 3 that no other server has.
#[test]
fn leader_repairs_figure_7_follower_f_with_divergent_terms() {
    assert_figure_7_follower_repaired(&[1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]);
}

/// §5.3, §5.4.1, Figure 7 as a whole: the seven servers together. The leader is elected by
/// (a), (b), (e) and (f) — (c) and (d) hold more up-to-date logs and refuse — and then brings
/// every log to equal its own.
#[test]
fn leader_repairs_all_figure_7_followers_at_once() {
    let followers: [&[u64]; 6] = [
        &[1, 1, 1, 4, 4, 5, 5, 6, 6],
        &[1, 1, 1, 4],
        &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
        &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
        &[1, 1, 1, 4, 4, 4, 4],
        &[1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
    ];
    let mut servers = vec![figure_7_server(1, 7, &FIGURE_7_LEADER)];
    servers.extend(followers.iter().zip(2..).map(|(log, id)| figure_7_server(id, 7, log)));
    let mut net = Net::new(servers);
    net.step(1, Input::Campaign);
    net.deliver_all();
    let leader = net.node(1);
    assert_eq!((leader.role(), leader.term()), (Role::Leader, Term(8)));
    for id in 2..=7 {
        assert_eq!(net.node(id).log_entries(), figure_7_leader_log(), "server {id}");
    }
    assert_eq!(net.node(1).commit_index(), LogIndex(11));
}

/// The `(prev_log_index, prev_log_term)` of an AppendEntries.
fn prev_of(message: &Message<u64>) -> (u64, u64) {
    match message {
        Message::AppendEntries(request) => (request.prev_log_index.0, request.prev_log_term.0),
        other => panic!("expected AppendEntries, got {other:?}"),
    }
}

/// §5.3 (the optimization at the end of the section): with the follower's conflict hint the
/// leader backs up over a whole conflicting term per rejection, not one entry per round trip.
/// The answers are those of Figure 7's followers (f) and (e) to the leader of term 8.
#[test]
fn leader_skips_a_whole_conflicting_term_per_rejection() {
    let conflict = |rejected: u64, index: u64, term: Option<u64>| {
        let hint = ConflictHint { index: LogIndex(index), term: term.map(Term) };
        append_response(
            8,
            AppendOutcome::Conflict { rejected_prev_index: LogIndex(rejected), hint },
        )
    };
    let mut leader = figure_7_server(1, 3, &FIGURE_7_LEADER);
    let outputs = win_election(&mut leader);
    assert!(sends(&outputs).iter().all(|(_, message)| prev_of(message) == (10, 6)));

    // (f) holds term 3 at index 10, a run starting at 7; the leader has no term 3.
    let outputs = receive(&mut leader, 2, conflict(10, 7, Some(3)));
    assert_eq!(prev_of(&reply(&outputs, 2)), (6, 5));
    // (f) holds term 2 at index 6, a run starting at 4; the leader has no term 2.
    let outputs = receive(&mut leader, 2, conflict(6, 4, Some(2)));
    assert_eq!(prev_of(&reply(&outputs, 2)), (3, 1));

    // (e) is too short for index 10: it ends at 7.
    let outputs = receive(&mut leader, 3, conflict(10, 8, None));
    assert_eq!(prev_of(&reply(&outputs, 3)), (7, 5));
    // (e) holds term 4 at index 7; the leader's own term-4 run ends at 5.
    let outputs = receive(&mut leader, 3, conflict(7, 4, Some(4)));
    assert_eq!(prev_of(&reply(&outputs, 3)), (5, 4));
}

// ----- §5.4.1: election restriction -----

/// §5.4.1: a RequestVote carries the index and term of the candidate's last log entry.
#[test]
fn vote_request_carries_candidate_last_log_index_and_term() {
    let mut node = restored(config(1, 3), hard(2, None, 0), &[1, 1, 2]);
    let outputs = node.step_in_place(Input::Campaign);
    let expected = request_vote(3, 3, 2);
    assert_eq!(sends(&outputs), vec![(NodeId(2), expected.clone()), (NodeId(3), expected)]);
}

/// §5.4.1: a voter refuses a candidate whose log is less up-to-date than its own (lower last
/// term, or same last term and shorter) and grants otherwise.
#[test]
fn voter_refuses_candidate_with_less_up_to_date_log() {
    // The voter's log ends at index 3, term 2.
    let cases = [
        ((9, 1), false, "lower last term, longer log"),
        ((2, 2), false, "same last term, shorter log"),
        ((0, 0), false, "empty log"),
        ((3, 2), true, "identical last entry"),
        ((4, 2), true, "same last term, longer log"),
        ((1, 3), true, "higher last term, shorter log"),
    ];
    for ((last_index, last_term), granted, case) in cases {
        let mut voter = restored(config(2, 3), hard(2, None, 0), &[1, 2, 2]);
        let outputs = receive(&mut voter, 1, request_vote(3, last_index, last_term));
        assert_eq!(reply(&outputs, 1), vote(3, granted), "{case}");
        assert_eq!(voter.term(), Term(3), "{case}: the term is adopted either way");
        assert_eq!(voter.voted_for(), granted.then_some(NodeId(1)), "{case}");
    }
}

// ----- §5.4.2, Figure 8: committing entries from previous terms -----

/// The servers of Figure 8 (c), before S1's term-4 election: entry 1 committed everywhere;
/// S1 led term 2 and replicated its entry 2 to S2 only; S5 led term 3 and appended its own
/// entry 2. S5 has since seen term 4. One entry per message, so that replication of entry 2 and
/// of the no-op can be told apart.
fn figure_8_servers() -> Net {
    let server = |id: u64, hard_state: HardState, terms: &[u64]| {
        let mut config = config(id, 5);
        config.entries_per_message_max = 1;
        restored(config, hard_state, terms)
    };
    Net::new(vec![
        server(1, hard(3, None, 1), &[1, 2]),
        server(2, hard(3, None, 1), &[1, 2]),
        server(3, hard(3, None, 1), &[1]),
        server(4, hard(3, None, 1), &[1]),
        server(5, hard(4, None, 1), &[1, 3]),
    ])
}

/// §5.4.2, Figure 8 (c)–(d): S1, leader of term 4, replicates its term-2 entry to a majority
/// (S1, S2, S3) but must not count that as committing it: S5 can still be elected and
/// overwrite the entry on every server — which would have lost a committed entry.
#[test]
fn leader_never_commits_previous_term_entry_by_counting_replicas() {
    let mut net = figure_8_servers();
    net.down = BTreeSet::from([NodeId(4), NodeId(5)]);
    net.step(1, Input::Campaign);
    // S1 crashes before its term-4 entry reaches S3: S3 gets entry 2 and nothing after.
    net.deliver_all_except(|net, to, message| {
        to == NodeId(3)
            && net.node(3).last_index() == LogIndex(2)
            && matches!(message, Message::AppendEntries(_))
    });
    assert_eq!((net.node(1).role(), net.node(1).term()), (Role::Leader, Term(4)));
    for id in 1..=3 {
        assert_eq!(net.node(id).term_at(LogIndex(2)), Some(Term(2)), "S{id} stores entry 2");
    }
    assert_eq!(net.node(3).last_index(), LogIndex(2));
    assert_eq!(net.node(1).commit_index(), LogIndex(1), "entry 2 is on a majority, uncommitted");
    assert!(net.node(1).entries(LogIndex(2)..=LogIndex(2)).is_err());
    assert!(!net.anyone_applied(2, 2));

    // Figure 8 (d): S1 is down; S5 is elected by S3, S4 and itself, and overwrites entry 2.
    net.down = BTreeSet::from([NodeId(1)]);
    net.queue.clear();
    net.step(5, Input::Campaign);
    net.deliver_all();
    assert_eq!((net.node(5).role(), net.node(5).term()), (Role::Leader, Term(5)));
    for id in 2..=5 {
        assert_eq!(net.node(id).term_at(LogIndex(2)), Some(Term(3)), "S{id}");
    }
    assert_eq!(net.node(5).commit_index(), LogIndex(3));
    assert!(!net.anyone_applied(2, 2), "the overwritten entry was never applied");
    assert!(net.anyone_applied(2, 3));
}

/// §5.4.2, Figure 8 (e): once S1 replicates an entry of its own term (its no-op) to a
/// majority, that entry and the term-2 entry before it are committed, and S5 can no longer
/// be elected.
#[test]
fn previous_term_entry_commits_once_current_term_entry_reaches_majority() {
    let mut net = figure_8_servers();
    net.down = BTreeSet::from([NodeId(4), NodeId(5)]);
    net.step(1, Input::Campaign);
    net.deliver_all();
    let s1 = net.node(1);
    assert_eq!((s1.role(), s1.term()), (Role::Leader, Term(4)));
    assert_eq!(terms_of(s1), [1, 2, 4]);
    for id in 2..=3 {
        assert_eq!(terms_of(net.node(id)), [1, 2, 4], "S{id}");
    }
    assert_eq!(s1.commit_index(), LogIndex(3));
    let committed = s1.entries(LogIndex(1)..=LogIndex(3)).expect("committed");
    assert_eq!(committed[1], entry(2, 2));
    assert!(net.anyone_applied(2, 2));

    // S5 cannot win: S1, S2 and S3 hold a more up-to-date log than its own.
    net.down.clear();
    net.step(5, Input::Campaign);
    net.deliver_all();
    assert_ne!(net.node(5).role(), Role::Leader);
    for id in 1..=4 {
        assert_ne!(net.node(id).term_at(LogIndex(2)), Some(Term(3)), "S{id}");
    }
}
