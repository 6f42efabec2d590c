//! The Raft paper (Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm",
//! extended version) on terms and elections, as scenario tests: §5.1 terms, §5.2 leader election
//! and randomized election timeouts, §5.4.1 the election restriction. Each test cites the section
//! it checks; replication is in `raft_paper_replication.rs`.
//!
//! Single nodes are driven by hand with `step_in_place`; whole clusters run on the in-memory
//! harness.

use std::collections::{BTreeMap, BTreeSet};

use stepraft::{
    AppendOutcome, DurableState, Input, LogIndex, Message, Node, NodeId, Output, Persist,
    ProposalId, ProposeError, Role, Term,
};
use stepraft_tests::{
    append, append_response, applied, config, entry, fresh, hard, heartbeat, heartbeat_response,
    ids, noop, persisted_hard_states, persists, propose, receive, reply, request_vote, restored,
    sends, success, terms_of, vote, win_election, Cluster,
};

// ----- helpers -----

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
            Output::RoleChanged { term: Term(5), role: Role::Follower }
        )));
        let leader = sent_by_leader(&message).then_some(NodeId(2));
        assert!(outputs.contains(&Output::LeaderChanged { term: Term(5), leader }));
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
        assert!(outputs.contains(&Output::RoleChanged { term: Term(5), role: Role::Follower }));
        assert!(outputs.contains(&Output::LeaderChanged { term: Term(5), leader: expected_leader }));
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
    assert!(outputs.contains(&Output::LeaderChanged { term: Term(1), leader: Some(NodeId(2)) }));
    assert!(outputs.contains(&Output::RoleChanged { term: Term(1), role: Role::Follower }));
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
