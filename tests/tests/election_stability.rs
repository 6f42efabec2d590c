//! Elections that survive real networks (thesis §9.6 PreVote, CheckQuorum, §3.10 leadership
//! transfer): the known traps, each run with the protections on — and, where it proves the
//! test can fail, with them off.

use stepraft::{
    Input, Message, NodeId, Output, ProposeError, RequestVoteResponse, Role, Term, TransferError,
};
use stepraft_tests::Cluster;

fn unprotected(config: &mut stepraft::Config) {
    config.pre_vote = false;
    config.check_quorum = false;
}

/// Runs `rounds` rounds and returns whether the leader and its term stayed the same.
fn leader_is_stable(cluster: &mut Cluster, leader: NodeId, rounds: u32) -> bool {
    let term = cluster.node(leader).term();
    cluster.run_until(rounds, |c| {
        c.node(leader).role() != Role::Leader || c.node(leader).term() != term
    });
    cluster.node(leader).role() == Role::Leader && cluster.node(leader).term() == term
}

#[test]
fn a_partitioned_node_rejoining_does_not_depose_a_healthy_leader() {
    let mut cluster = Cluster::new(5);
    let leader = cluster.elect(100);
    let term = cluster.node(leader).term();
    let loner = cluster.ids().into_iter().find(|&id| id != leader).expect("a follower");
    cluster.isolate(loner);
    cluster.run_until(200, |_| false);
    assert_eq!(cluster.node(loner).term(), term, "PreVote: a node that cannot win keeps its term");
    cluster.heal();
    assert!(leader_is_stable(&mut cluster, leader, 100));
    assert_eq!(cluster.node(loner).leader(), Some(leader), "it rejoins as a follower");
}

#[test]
fn without_pre_vote_the_same_rejoin_deposes_the_leader() {
    let mut cluster = Cluster::with_config(5, unprotected);
    let leader = cluster.elect(100);
    let loner = cluster.ids().into_iter().find(|&id| id != leader).expect("a follower");
    cluster.isolate(loner);
    cluster.run_until(200, |_| false);
    assert!(cluster.node(loner).term() > cluster.node(leader).term(), "terms ran up in isolation");
    cluster.heal();
    assert!(!leader_is_stable(&mut cluster, leader, 100), "the returning node disrupts");
}

#[test]
fn a_one_way_cut_from_the_leader_does_not_cause_endless_elections() {
    let mut cluster = Cluster::new(5);
    let leader = cluster.elect(100);
    let deaf = cluster.ids().into_iter().find(|&id| id != leader).expect("a follower");
    // `deaf` can talk to everyone but never hears the leader.
    cluster.cut_link(leader, deaf);
    let elections_before: u64 =
        cluster.ids().iter().map(|&id| cluster.node(id).stats().elections_started).sum();
    assert!(leader_is_stable(&mut cluster, leader, 300));
    let elections_after: u64 =
        cluster.ids().iter().map(|&id| cluster.node(id).stats().elections_started).sum();
    assert_eq!(elections_after, elections_before, "pre-votes fail; no term is ever bumped");
    // Writes still commit on the majority.
    let index = cluster.propose(leader, 7).expect("leader accepts");
    cluster.run_until(5, |_| false);
    assert!(cluster.node(leader).commit_index() >= index);
}

#[test]
fn without_protections_a_one_way_cut_causes_repeated_elections() {
    let mut cluster = Cluster::with_config(5, unprotected);
    let leader = cluster.elect(100);
    let deaf = cluster.ids().into_iter().find(|&id| id != leader).expect("a follower");
    cluster.cut_link(leader, deaf);
    assert!(!leader_is_stable(&mut cluster, leader, 300));
}

#[test]
fn a_node_isolated_at_a_higher_term_rejoins_the_cluster() {
    // Node 5 runs without PreVote (say, an older version), so its term runs up in isolation.
    let mut cluster = Cluster::with_config(5, |config| {
        if config.id == NodeId(5) {
            config.pre_vote = false;
        }
    });
    cluster.campaign(NodeId(1));
    cluster.deliver_all();
    cluster.isolate(NodeId(5));
    for command in 0..5 {
        cluster.propose(NodeId(1), command).expect("leader");
    }
    cluster.run_until(200, |_| false);
    assert!(cluster.node(NodeId(5)).term() > cluster.node(NodeId(1)).term());
    cluster.heal();
    // Its higher term reaches the leader through the answers to heartbeats; the cluster moves
    // to a new term and node 5, whose log is behind, follows the new leader and catches up.
    let rejoined = cluster.run_until(300, |c| {
        let Some(leader) = c.leader() else { return false };
        c.node(NodeId(5)).leader() == Some(leader)
            && c.node(NodeId(5)).commit_index() == c.node(leader).commit_index()
            && c.applied_commands(NodeId(5)) == vec![0, 1, 2, 3, 4]
    });
    assert!(rejoined);
    cluster.assert_safety();
}

#[test]
fn the_n_over_2_plus_1_partition_keeps_its_leader_and_commits() {
    // Five nodes: 1 leads; 3 reaches everyone; {1, 2} and {4, 5} cannot reach each other.
    let mut cluster = Cluster::new(5);
    cluster.campaign(NodeId(1));
    cluster.deliver_all();
    assert_eq!(cluster.leader(), Some(NodeId(1)));
    for a in [1, 2] {
        for b in [4, 5] {
            cluster.cut_link(NodeId(a), NodeId(b));
            cluster.cut_link(NodeId(b), NodeId(a));
        }
    }
    let mut committed = Vec::new();
    for round in 0..30 {
        let index = cluster.propose(NodeId(1), round).expect("the leader keeps leading");
        cluster.run_until(10, |_| false);
        committed.push(cluster.node(NodeId(1)).commit_index() >= index);
    }
    assert!(committed.iter().all(|&c| c), "every write commits through {{1, 2, 3}}");
    assert_eq!(cluster.node(NodeId(1)).term(), Term(1), "no term was bumped");
}

#[test]
fn check_quorum_makes_an_isolated_leader_step_down() {
    let mut cluster = Cluster::new(3);
    let leader = cluster.elect(100);
    cluster.isolate(leader);
    let election_ticks = cluster.node(leader).config().election_ticks;
    for _ in 0..2 * election_ticks {
        cluster.tick(leader);
        cluster.drop_all();
    }
    assert_eq!(cluster.node(leader).role(), Role::Follower);
    assert_eq!(cluster.node(leader).leader(), None);
}

#[test]
fn a_lower_term_pre_vote_is_refused_with_the_responders_term_and_the_asker_catches_up() {
    let mut cluster = Cluster::new(3);
    let leader = cluster.elect(100);
    // Move the cluster to a later term while node `behind` sleeps.
    let behind = cluster.ids().into_iter().find(|&id| id != leader).expect("a follower");
    cluster.isolate(behind);
    cluster.step(
        leader,
        Input::TransferLeadership(
            cluster.ids().into_iter().find(|&id| id != leader && id != behind).expect("another"),
        ),
    );
    cluster.run_until(20, |_| false);
    let term = cluster.node(cluster.leader().expect("a leader")).term();
    assert!(term > cluster.node(behind).term());
    cluster.heal();
    // Its pre-votes carry a term the others have passed; the refusals teach it theirs.
    let caught_up = cluster
        .run_until(200, |c| c.node(behind).term() == term && c.node(behind).leader() == c.leader());
    assert!(caught_up);
}

#[test]
fn a_pre_vote_refusal_from_a_later_term_makes_the_pre_candidate_follow_that_term() {
    let mut cluster = Cluster::new(3);
    let leader = cluster.elect(100);
    let follower = cluster.ids().into_iter().find(|&id| id != leader).expect("a follower");
    cluster.isolate(follower);
    cluster.run_until(100, |c| c.node(follower).role() == Role::PreCandidate);
    assert_eq!(cluster.node(follower).role(), Role::PreCandidate);
    let later = Term(cluster.node(follower).term().0 + 5);
    let refusal = RequestVoteResponse { term: later, granted: false };
    cluster.step(
        follower,
        Input::Receive { from: leader, message: Message::PreVoteResponse(refusal) },
    );
    // At once, from the refusal itself: no other message reached the isolated node.
    assert_eq!(
        (cluster.node(follower).role(), cluster.node(follower).term()),
        (Role::Follower, later)
    );
    // A refusal from an earlier term teaches nothing.
    let stale = RequestVoteResponse { term: Term(1), granted: false };
    cluster
        .step(follower, Input::Receive { from: leader, message: Message::PreVoteResponse(stale) });
    assert_eq!(cluster.node(follower).term(), later);
}

#[test]
fn a_pre_candidate_forgets_the_old_leader_and_says_so() {
    let mut cluster = Cluster::new(3);
    let leader = cluster.elect(100);
    let follower = cluster.ids().into_iter().find(|&id| id != leader).expect("a follower");
    cluster.isolate(follower);
    let term = cluster.node(follower).term();
    let (mut roles, mut leaders) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        for output in cluster.tick(follower) {
            match output {
                Output::RoleChanged { role, .. } => roles.push(role),
                Output::LeaderChanged { term, leader } => leaders.push((term, leader)),
                _ => {}
            }
        }
        cluster.drop_all();
    }
    // It stays a pre-candidate across timeouts: one notice of each kind, never repeated. PreVote
    // keeps the term, so the leadership notice says only that the leader is no longer known.
    assert_eq!(roles, [Role::PreCandidate]);
    assert_eq!(leaders, [(term, None)]);
}

#[test]
fn leadership_transfer_hands_over_to_an_up_to_date_target() {
    let mut cluster = Cluster::new(3);
    let leader = cluster.elect(100);
    let target = cluster.ids().into_iter().find(|&id| id != leader).expect("a follower");
    cluster.propose(leader, 1).expect("leader");
    cluster.step(leader, Input::TransferLeadership(target));
    // Proposals wait while the transfer runs.
    assert_eq!(cluster.propose(leader, 2), Err(ProposeError::TransferInProgress { target }));
    cluster.deliver_all();
    assert_eq!(cluster.node(target).role(), Role::Leader);
    assert_eq!(cluster.node(leader).role(), Role::Follower);
    assert_eq!(cluster.node(leader).leader(), Some(target));
    assert!(cluster.run_until(10, |c| c.applied_commands(target) == vec![1]));
}

#[test]
fn leadership_transfer_catches_a_lagging_target_up_first() {
    let mut cluster = Cluster::new(3);
    let leader = cluster.elect(100);
    let target = cluster.ids().into_iter().find(|&id| id != leader).expect("a follower");
    cluster.isolate(target);
    for command in 0..20 {
        cluster.propose(leader, command).expect("leader");
    }
    cluster.run_until(3, |_| false);
    cluster.heal();
    cluster.step(leader, Input::TransferLeadership(target));
    assert!(cluster.run_until(20, |c| c.node(target).role() == Role::Leader));
    assert_eq!(cluster.node(target).last_index(), cluster.node(leader).last_index());
    cluster.assert_safety();
}

#[test]
fn a_transfer_that_cannot_happen_is_abandoned_after_an_election_timeout() {
    let mut cluster = Cluster::new(3);
    let leader = cluster.elect(100);
    let target = cluster.ids().into_iter().find(|&id| id != leader).expect("a follower");
    cluster.cut_link(leader, target);
    cluster.step(leader, Input::TransferLeadership(target));
    assert_eq!(cluster.node(leader).transfer_target(), Some(target));
    let election_ticks = cluster.node(leader).config().election_ticks;
    for _ in 0..election_ticks {
        cluster.tick(leader);
        cluster.deliver_all();
    }
    assert_eq!(cluster.node(leader).transfer_target(), None);
    assert_eq!(cluster.node(leader).role(), Role::Leader);
    assert!(cluster.propose(leader, 3).is_ok(), "proposals resume");
}

#[test]
fn invalid_transfers_are_refused_with_a_reason() {
    let mut cluster = Cluster::new(3);
    let leader = cluster.elect(100);
    let follower = cluster.ids().into_iter().find(|&id| id != leader).expect("a follower");
    let refusal = |cluster: &mut Cluster, on: NodeId, target: NodeId| {
        cluster.step(on, Input::TransferLeadership(target)).into_iter().find_map(|o| match o {
            Output::TransferRejected { error, .. } => Some(error),
            _ => None,
        })
    };
    assert_eq!(refusal(&mut cluster, leader, leader), Some(TransferError::AlreadyLeader));
    assert_eq!(refusal(&mut cluster, leader, NodeId(9)), Some(TransferError::NotAVoter(NodeId(9))));
    assert_eq!(
        refusal(&mut cluster, follower, leader),
        Some(TransferError::NotLeader { leader: Some(leader) })
    );
    // While a transfer waits for a lagging target: asking again for the same target is not
    // an error (it is under way), asking for another one is.
    let other = cluster.ids().into_iter().find(|&id| id != leader && id != follower).expect("3");
    cluster.cut_link(leader, follower);
    assert_eq!(refusal(&mut cluster, leader, follower), None);
    assert_eq!(refusal(&mut cluster, leader, follower), None, "the same transfer, again");
    assert_eq!(cluster.node(leader).transfer_target(), Some(follower));
    assert_eq!(
        refusal(&mut cluster, leader, other),
        Some(TransferError::InProgress { target: follower })
    );
}

/// CheckQuorum stickiness lasts exactly one minimum election timeout after the leader was last
/// heard: a vote request one tick before that is ignored, one at that tick is answered.
#[test]
fn the_leader_lease_ends_one_minimum_election_timeout_after_the_leader_was_heard() {
    use stepraft::{Config, Heartbeat, LogIndex, Message, Node, RequestVote};
    let ids = [NodeId(1), NodeId(2), NodeId(3)];
    // A follower whose randomized timeout is longer than the minimum, so that it is still a
    // follower when the lease ends.
    let (mut follower, ticks) = (0..64)
        .find_map(|seed| {
            let mut config = Config::new(NodeId(2), ids);
            config.rng_seed = seed;
            let ticks = config.election_ticks;
            let mut node: Node<u64> = Node::new(config).expect("valid config");
            let heartbeat = Heartbeat { term: Term(1), commit: LogIndex(0), round: 1 };
            let message = Message::Heartbeat(heartbeat);
            let _ = node.step_in_place(Input::Receive { from: NodeId(1), message });
            (node.ticks_until_election() > ticks).then_some((node, ticks))
        })
        .expect("some seed draws a timeout above the minimum");
    let request = RequestVote {
        term: Term(2),
        last_log_index: LogIndex(0),
        last_log_term: Term(0),
        transfer: false,
    };
    for _ in 0..ticks - 1 {
        let _ = follower.step_in_place(Input::Tick);
    }
    let message = Message::RequestVote(request);
    let outputs = follower.step_in_place(Input::Receive { from: NodeId(3), message });
    assert!(outputs.is_empty(), "inside the lease the request is ignored: {outputs:?}");
    assert_eq!(follower.term(), Term(1));

    let _ = follower.step_in_place(Input::Tick);
    assert_eq!(follower.role(), Role::Follower, "its own timeout has not fired");
    let message = Message::RequestVote(request);
    let outputs = follower.step_in_place(Input::Receive { from: NodeId(3), message });
    let granted = outputs.iter().any(|output| {
        matches!(output, Output::Send { to: NodeId(3), message: Message::RequestVoteResponse(r) } if r.granted)
    });
    assert!(granted, "once the lease is over the vote is granted: {outputs:?}");
    assert_eq!(follower.term(), Term(2));
}

/// PreVote asks whether an election at a *higher* term could be won: a pre-vote for the
/// responder's own term is refused, and a refusal carrying the asker's own term is an
/// ordinary refusal, not a reason to give up the pre-campaign.
#[test]
fn pre_votes_compare_terms_strictly() {
    use stepraft::{Config, LogIndex, Message, Node, RequestVote, RequestVoteResponse};
    let ids = [NodeId(1), NodeId(2), NodeId(3), NodeId(4), NodeId(5)];
    let mut voter: Node<u64> = Node::new(Config::new(NodeId(2), ids)).expect("valid config");
    let request = RequestVote {
        term: voter.term(),
        last_log_index: LogIndex(0),
        last_log_term: Term(0),
        transfer: false,
    };
    let message = Message::PreVote(request);
    let outputs = voter.step_in_place(Input::Receive { from: NodeId(1), message });
    let refused = RequestVoteResponse { term: voter.term(), granted: false };
    assert!(
        outputs.iter().any(|output| matches!(output,
            Output::Send { to: NodeId(1), message: Message::PreVoteResponse(r) } if *r == refused)),
        "a pre-vote that is not ahead is refused: {outputs:?}"
    );

    let mut asker: Node<u64> = Node::new(Config::new(NodeId(1), ids)).expect("valid config");
    let _ = asker.step_in_place(Input::Campaign);
    assert_eq!(asker.role(), Role::PreCandidate);
    let message =
        Message::PreVoteResponse(RequestVoteResponse { term: asker.term(), granted: false });
    let _ = asker.step_in_place(Input::Receive { from: NodeId(2), message });
    assert_eq!(asker.role(), Role::PreCandidate, "one refusal of five does not end it");
}

/// `NodeStats::elections_started` counts real elections (a term bump), not pre-campaigns.
#[test]
fn elections_started_counts_each_election() {
    let mut cluster = Cluster::with_config(3, |config| config.pre_vote = false);
    cluster.campaign(NodeId(1));
    cluster.campaign(NodeId(1));
    assert_eq!(cluster.node(NodeId(1)).stats().elections_started, 2);
    let mut cluster = Cluster::new(3);
    cluster.campaign(NodeId(1));
    assert_eq!(cluster.node(NodeId(1)).role(), Role::PreCandidate);
    assert_eq!(cluster.node(NodeId(1)).stats().elections_started, 0, "a pre-campaign");
}
