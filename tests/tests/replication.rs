//! Replication features a user relies on beyond the paper's rules: conditional append (only if the
//! leader's last entry has a given index and term), batching limits, the uncommitted-bytes cap,
//! flow control, and the index-range read.

use stepraft::{
    Input, LogIndex, Message, NodeId, Output, Proposal, ProposalId, ProposeError, RangeError, Term,
};
use stepraft_tests::Cluster;

#[test]
fn a_conditional_append_lands_only_on_the_expected_last_entry() {
    let mut cluster = Cluster::new(3);
    let leader = cluster.elect(100);
    let (last_index, last_term) =
        (cluster.node(leader).last_index(), cluster.node(leader).last_term());
    let propose = |cluster: &mut Cluster, id: u64, index: LogIndex, term: Term| {
        let proposal = Proposal::one(ProposalId(id), id).if_last_entry_is(index, term);
        cluster.step(leader, Input::Propose(proposal))
    };
    let outputs = propose(&mut cluster, 1, last_index, last_term);
    assert!(outputs.iter().any(|o| matches!(o, Output::Accepted { proposal: ProposalId(1), .. })));
    // The same condition again is now stale: the log moved on.
    let outputs = propose(&mut cluster, 2, last_index, last_term);
    let refusal = outputs.iter().find_map(|o| match o {
        Output::Rejected { proposal: ProposalId(2), error } => Some(*error),
        _ => None,
    });
    assert_eq!(
        refusal,
        Some(ProposeError::ConditionFailed {
            expected_index: last_index,
            expected_term: last_term,
            last_index: last_index.next(),
            last_term,
        })
    );
    assert_eq!(cluster.node(leader).last_index(), last_index.next(), "nothing appended");
}

#[test]
fn appends_respect_the_entry_and_byte_limits_per_message() {
    let mut cluster = Cluster::with_config(3, |config| {
        config.entries_per_message_max = 4;
        config.bytes_per_message_max = 3 * 8; // three u64 commands
    });
    let leader = cluster.elect(100);
    cluster.propose_batch(leader, (0..50).collect()).expect("leader accepts");
    let mut largest = 0;
    let done = (0..200).any(|_| {
        for envelope in cluster.in_flight() {
            if let Message::AppendEntries(append) = &envelope.message {
                largest = largest.max(append.entries.len());
            }
        }
        cluster.deliver_one();
        cluster.ids().iter().all(|&id| cluster.applied_commands(id).len() == 50)
            || cluster.in_flight().is_empty()
    });
    assert!(done);
    assert_eq!(largest, 3, "the byte limit (3 commands) binds before the count limit (4)");
    cluster.run_until(5, |_| false);
    for id in cluster.ids() {
        assert_eq!(cluster.applied_commands(id), (0..50).collect::<Vec<u64>>());
    }
}

#[test]
fn an_entry_larger_than_the_byte_limit_still_travels_alone() {
    let mut cluster = Cluster::with_config(3, |config| config.bytes_per_message_max = 1);
    let leader = cluster.elect(100);
    cluster.propose(leader, 7).expect("leader accepts");
    assert!(cluster.run_until(10, |c| c.ids().iter().all(|&id| c.applied_commands(id) == vec![7])));
}

#[test]
fn proposals_beyond_the_uncommitted_byte_cap_are_refused_not_buffered() {
    let mut cluster = Cluster::with_config(3, |config| config.uncommitted_bytes_max = 4 * 8);
    let leader = cluster.elect(100);
    for follower in cluster.ids().into_iter().filter(|&id| id != leader) {
        cluster.isolate(follower);
    }
    for command in 0..4 {
        cluster.propose(leader, command).expect("within the cap");
    }
    assert_eq!(
        cluster.propose(leader, 4),
        Err(ProposeError::TooManyUncommittedBytes { would_be: 40, limit: 32 })
    );
    // Once the entries commit, the cap frees up.
    cluster.heal();
    cluster.run_until(10, |c| c.node(leader).commit_index() == c.node(leader).last_index());
    assert!(cluster.propose(leader, 4).is_ok());
}

#[test]
fn flow_control_bounds_unacknowledged_appends_per_follower() {
    let mut cluster = Cluster::with_config(3, |config| {
        config.in_flight_messages_max = 2;
        config.entries_per_message_max = 1;
    });
    let leader = cluster.elect(100);
    cluster.run_until(3, |_| false);
    let follower = cluster.ids().into_iter().find(|&id| id != leader).expect("a follower");
    for command in 0..10 {
        cluster.propose(leader, command).expect("leader");
    }
    let appends_to_follower = cluster
        .in_flight()
        .iter()
        .filter(|e| {
            e.to == follower
                && matches!(&e.message, Message::AppendEntries(a) if !a.entries.is_empty())
        })
        .count();
    assert_eq!(appends_to_follower, 2, "the window holds two appends");
    assert_eq!(cluster.node(leader).progress(follower).map(|p| p.in_flight()), Some(2));
    assert!(cluster.run_until(30, |c| c.applied_commands(follower).len() == 10));
}

#[test]
fn index_range_reads_serve_committed_entries_and_say_why_not() {
    let mut cluster = Cluster::new(3);
    let leader = cluster.elect(100);
    for command in 1..=3 {
        cluster.propose(leader, command).expect("leader");
    }
    cluster.run_until(3, |_| false);
    let node = cluster.node(NodeId(leader.0));
    let commands: Vec<u64> = node
        .entries(LogIndex(2)..=LogIndex(4))
        .expect("committed")
        .iter()
        .filter_map(|entry| entry.command().copied())
        .collect();
    assert_eq!(commands, vec![1, 2, 3]);
    assert_eq!(node.entries(LogIndex(0)..=LogIndex(1)), Err(RangeError::StartsAtZero));
    assert_eq!(
        node.entries(LogIndex(3)..=LogIndex(2)),
        Err(RangeError::Inverted { start: LogIndex(3), end: LogIndex(2) })
    );
    assert_eq!(
        node.entries(LogIndex(1)..=LogIndex(9)),
        Err(RangeError::NotCommitted { end: LogIndex(9), commit: LogIndex(4) })
    );
}

/// A leader of three nodes whose followers both hold its log, so that a proposal goes out at
/// once: one persist and two appends.
fn streaming_leader() -> stepraft::Node<u64> {
    use stepraft::{Config, Node};
    let ids = [NodeId(1), NodeId(2), NodeId(3)];
    let mut leader: Node<u64> = Node::new(Config::new(NodeId(1), ids)).expect("valid config");
    let _ = leader.step_in_place(Input::Campaign);
    // PreVote, then the election, each won with node 2's vote.
    let pre_vote = stepraft::RequestVoteResponse { term: Term(leader.term().0 + 1), granted: true };
    let message = Message::PreVoteResponse(pre_vote);
    let _ = leader.step_in_place(Input::Receive { from: NodeId(2), message });
    let vote = stepraft::RequestVoteResponse { term: leader.term(), granted: true };
    let message = Message::RequestVoteResponse(vote);
    let _ = leader.step_in_place(Input::Receive { from: NodeId(2), message });
    assert_eq!(leader.role(), stepraft::Role::Leader);
    // Both followers hold the leader's no-op: their progress streams appends from now on.
    for follower in [NodeId(2), NodeId(3)] {
        let outcome = stepraft::AppendOutcome::Success { match_index: leader.last_index() };
        let response = stepraft::AppendEntriesResponse { term: leader.term(), outcome };
        let message = Message::AppendEntriesResponse(response);
        let _ = leader.step_in_place(Input::Receive { from: follower, message });
    }
    leader
}

/// The entry vectors of a proposal's persist and appends, as `(address, capacity)`.
fn proposal_vectors(leader: &mut stepraft::Node<u64>, id: u64) -> Vec<(usize, usize)> {
    use stepraft::Persist;
    let outputs = leader.step_in_place(Input::Propose(Proposal::one(ProposalId(id), id)));
    let mut vectors = Vec::new();
    for output in &outputs {
        match output {
            Output::Persist(Persist::Append(entries)) => {
                vectors.push((entries.as_ptr() as usize, entries.capacity()))
            }
            Output::Send { message: Message::AppendEntries(append), .. }
                if !append.entries.is_empty() =>
            {
                vectors.push((append.entries.as_ptr() as usize, append.entries.capacity()))
            }
            _ => {}
        }
    }
    vectors
}

/// An IO layer that hands written and applied entry vectors back with `Node::recycle` gets
/// them back in later outputs: the node allocates no new vector per batch.
#[test]
fn recycled_entry_vectors_carry_later_persists_messages_and_applies() {
    let mut leader = streaming_leader();
    let recycled: Vec<Vec<stepraft::Entry<u64>>> = (0..3).map(|_| Vec::with_capacity(8)).collect();
    let mut expected: Vec<(usize, usize)> =
        recycled.iter().map(|buffer| (buffer.as_ptr() as usize, 8)).collect();
    for buffer in recycled {
        leader.recycle(buffer);
    }
    let mut carried = proposal_vectors(&mut leader, 1);
    carried.sort();
    expected.sort();
    assert_eq!(carried, expected, "the persist and both appends reuse the recycled vectors");
}

/// The node keeps a bounded pool: vectors beyond 32, larger than a message's worth of
/// entries, or without any allocation are not kept.
#[test]
fn the_recycling_pool_keeps_only_useful_vectors_and_at_most_32() {
    let mut leader = streaming_leader();
    // The pool is used last in, first out.
    let oversized = leader.config().entries_per_message_max + 1;
    leader.recycle(Vec::with_capacity(8));
    leader.recycle(Vec::with_capacity(oversized));
    leader.recycle(Vec::new());
    let capacities: Vec<usize> = proposal_vectors(&mut leader, 1).iter().map(|v| v.1).collect();
    // The persist comes first and takes the most recently kept vector: the useful one, not
    // the empty one recycled after it.
    assert_eq!(capacities.first(), Some(&8), "the useful vector is reused: {capacities:?}");
    assert!(!capacities.contains(&oversized), "an oversized vector is dropped: {capacities:?}");

    let mut leader = streaming_leader();
    for _ in 0..32 {
        leader.recycle(Vec::with_capacity(8));
    }
    leader.recycle(Vec::with_capacity(9));
    let capacities: Vec<usize> = proposal_vectors(&mut leader, 1).iter().map(|v| v.1).collect();
    assert_eq!(capacities, vec![8, 8, 8], "the 33rd vector was not kept");
}

#[test]
fn an_accepted_batch_reports_its_first_and_last_index() {
    let mut cluster = stepraft_tests::Cluster::new(3);
    let leader = cluster.elect(100);
    let next = cluster.node(leader).last_index().next();
    let (first, last) = cluster.propose_batch(leader, vec![1, 2, 3]).expect("leader");
    assert_eq!((first, last), (next, next.plus(2)));
}

/// A heartbeat answer makes the leader send entries only to a follower that is behind and has
/// nothing in flight: not to one that holds everything, and not over entries already on the
/// way (an empty append overtaking them would be refused and cost a probe).
#[test]
fn a_heartbeat_answer_triggers_an_append_only_when_nothing_is_on_the_way() {
    let mut cluster = stepraft_tests::Cluster::new(3);
    let leader = cluster.elect(100);
    cluster.run_until(3, |_| false);
    let follower = cluster.ids().into_iter().find(|&id| id != leader).expect("a follower");
    let term = cluster.node(leader).term();
    let answer = |round| Input::Receive {
        from: follower,
        message: Message::HeartbeatResponse(stepraft::HeartbeatResponse { term, round }),
    };
    let appends = |outputs: &[Output<u64>]| {
        outputs
            .iter()
            .filter(|o| matches!(o, Output::Send { message: Message::AppendEntries(_), .. }))
            .count()
    };
    assert_eq!(
        cluster.node(leader).progress(follower).map(|p| p.match_index()),
        Some(cluster.node(leader).last_index())
    );
    let outputs = cluster.step(leader, answer(0));
    assert_eq!(appends(&outputs), 0, "the follower holds everything");

    // Two appends on the way. A heartbeat answer frees one slot of the window (an append
    // may have been lost), but one is still in flight.
    cluster.propose(leader, 7).expect("leader");
    cluster.propose(leader, 8).expect("leader");
    let outputs = cluster.step(leader, answer(0));
    assert_eq!(appends(&outputs), 0, "new entries are already on their way");
}
