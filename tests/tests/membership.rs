//! Membership changes (thesis chapter 4): learners, single-server changes, joint consensus,
//! the leader's own removal, configurations that revert when truncated, and the min and max voter
//! limits.

use std::collections::BTreeSet;

use stepraft::{MembershipChange, MembershipError, NodeId, ProposeError, Role};
use stepraft_tests::Cluster;

fn set(ids: &[u64]) -> BTreeSet<NodeId> {
    ids.iter().map(|&id| NodeId(id)).collect()
}

/// A cluster whose leader has committed an entry of its term (so it may change membership).
fn ready(size: u64) -> (Cluster, NodeId) {
    let mut cluster = Cluster::new(size);
    let leader = cluster.elect(100);
    cluster.run_until(3, |_| false);
    (cluster, leader)
}

fn settle(cluster: &mut Cluster) {
    cluster.run_until(20, |_| false);
}

#[test]
fn a_learner_catches_up_without_voting_then_is_promoted_and_counts() {
    let (mut cluster, leader) = ready(3);
    for command in 0..10 {
        cluster.propose(leader, command).expect("leader");
    }
    cluster.add_passive_node(NodeId(4));
    cluster.change_membership(leader, MembershipChange::AddLearner(NodeId(4))).expect("valid");
    settle(&mut cluster);
    assert_eq!(cluster.applied_commands(NodeId(4)), (0..10).collect::<Vec<u64>>());
    assert_eq!(cluster.node(NodeId(4)).membership().learners, set(&[4]));
    assert_eq!(cluster.node(NodeId(4)).role(), Role::Follower, "a learner never campaigns");
    cluster.change_membership(leader, MembershipChange::PromoteLearner(NodeId(4))).expect("valid");
    settle(&mut cluster);
    assert_eq!(cluster.node(leader).membership().voters, set(&[1, 2, 3, 4]));
    // Four voters: with the old leader and one more node down, {other, 4} plus ... is no
    // majority — but with only the leader down, three of four remain and elect a leader.
    cluster.crash(leader);
    assert!(cluster.run_until(200, |c| c.leader().is_some_and(|l| l != leader)));
    let new = cluster.leader().expect("a leader");
    cluster.propose(new, 99).expect("new leader");
    assert!(cluster.run_until(20, |c| c.applied_commands(NodeId(4)).contains(&99)));
    cluster.assert_safety();
}

#[test]
fn a_removed_follower_is_no_longer_replicated_to_and_the_rest_go_on() {
    let (mut cluster, leader) = ready(3);
    let removed = cluster.ids().into_iter().find(|&id| id != leader).expect("a follower");
    cluster.change_membership(leader, MembershipChange::RemoveNode(removed)).expect("valid");
    settle(&mut cluster);
    assert!(cluster.node(leader).progress(removed).is_none());
    let index = cluster.propose(leader, 5).expect("leader");
    cluster.crash(removed);
    settle(&mut cluster);
    assert!(cluster.node(leader).commit_index() >= index, "two voters of two commit");
}

#[test]
fn a_removed_leader_steps_down_once_the_change_commits() {
    let (mut cluster, leader) = ready(3);
    cluster.change_membership(leader, MembershipChange::RemoveNode(leader)).expect("valid");
    // It keeps leading (without counting itself) until the change commits, then steps down.
    assert!(cluster.run_until(50, |c| c.node(leader).role() == Role::Follower));
    assert!(!cluster.node(leader).membership().is_voter(leader));
    assert!(cluster.run_until(200, |c| c.leader().is_some_and(|l| l != leader)));
    let new = cluster.leader().expect("a leader");
    cluster.propose(new, 1).expect("the remaining two elect and commit");
    settle(&mut cluster);
    assert!(cluster.applied_commands(new).contains(&1));
    // The removed node never campaigns again.
    let term = cluster.node(new).term();
    cluster.run_until(100, |_| false);
    assert_eq!(cluster.node(new).term(), term);
}

#[test]
fn replacing_a_majority_goes_through_joint_consensus_and_leaves_it() {
    let (mut cluster, leader) = ready(3);
    for id in [4, 5] {
        cluster.add_passive_node(NodeId(id));
    }
    cluster.propose(leader, 7).expect("leader");
    let change = MembershipChange::Replace { voters: set(&[3, 4, 5]), learners: BTreeSet::new() };
    cluster.change_membership(leader, change).expect("valid");
    assert!(cluster.node(leader).membership().is_joint(), "joint first");
    let done = cluster.run_until(200, |c| {
        let Some(l) = c.leader() else { return false };
        !c.node(l).membership().is_joint()
            && c.node(l).membership().voters == set(&[3, 4, 5])
            && c.node(l).commit_index() == c.node(l).last_index()
    });
    assert!(done, "left the joint configuration automatically");
    let new = cluster.leader().expect("a leader");
    assert!([3, 4, 5].contains(&new.0), "only a member of the new configuration leads");
    cluster.propose(new, 8).expect("leader");
    assert!(cluster.run_until(20, |c| [3, 4, 5]
        .iter()
        .all(|&id| c.applied_commands(NodeId(id)) == vec![7, 8])));
    cluster.assert_safety();
}

#[test]
fn invalid_or_premature_changes_are_refused_and_change_nothing() {
    let mut cluster = Cluster::with_config(3, |config| config.max_voters = 3);
    cluster.campaign(NodeId(1));
    // Deliver only the votes: the leader has not committed an entry of its term yet.
    while cluster.node(NodeId(1)).role() != Role::Leader {
        assert!(cluster.deliver_one());
    }
    assert_eq!(
        cluster.change_membership(NodeId(1), MembershipChange::AddLearner(NodeId(9))),
        Err(ProposeError::Membership(MembershipError::LeaderNotReady))
    );
    cluster.run_until(3, |_| false);
    assert_eq!(
        cluster.change_membership(NodeId(1), MembershipChange::AddVoter(NodeId(9))),
        Err(ProposeError::Membership(MembershipError::TooManyVoters { voters: 4, max: 3 }))
    );
    assert_eq!(
        cluster.change_membership(NodeId(1), MembershipChange::AddVoter(NodeId(2))),
        Err(ProposeError::Membership(MembershipError::AlreadyVoter(NodeId(2))))
    );
    // One change at a time: the first is not committed while the followers are away.
    cluster.isolate(NodeId(1));
    let first = cluster.change_membership(NodeId(1), MembershipChange::AddLearner(NodeId(9)));
    let index = first.expect("valid");
    assert_eq!(
        cluster.change_membership(NodeId(1), MembershipChange::AddLearner(NodeId(8))),
        Err(ProposeError::Membership(MembershipError::ChangeInProgress { index }))
    );
    assert!(matches!(
        cluster.change_membership(NodeId(2), MembershipChange::AddLearner(NodeId(8))),
        Err(ProposeError::NotLeader { .. })
    ));
    assert_eq!(cluster.node(NodeId(1)).membership().learners, set(&[9]));
}

#[test]
fn a_configuration_entry_that_is_truncated_is_undone() {
    let (mut cluster, old) = ready(3);
    // The old leader appends a change no one else receives.
    cluster.isolate(old);
    cluster.change_membership(old, MembershipChange::AddLearner(NodeId(9))).expect("valid");
    assert_eq!(cluster.node(old).membership().learners, set(&[9]), "in force once appended");
    // The others elect a new leader that writes over the entry.
    let others: Vec<NodeId> = cluster.ids().into_iter().filter(|&id| id != old).collect();
    assert!(cluster.run_until(200, |c| others.iter().any(|&id| c.node(id).role() == Role::Leader)));
    let new = cluster.leader().expect("a leader");
    cluster.propose(new, 1).expect("leader");
    cluster.heal();
    assert!(cluster.run_until(50, |c| c.applied_commands(old).contains(&1)));
    assert!(cluster.node(old).membership().learners.is_empty(), "reverted with the truncation");
}

#[test]
fn a_node_without_a_configuration_stays_passive() {
    let mut cluster = Cluster::new(1);
    cluster.add_passive_node(NodeId(7));
    cluster.run_until(200, |_| false);
    assert_eq!(cluster.node(NodeId(7)).role(), Role::Follower);
    assert_eq!(cluster.node(NodeId(7)).stats().elections_started, 0);
}

#[test]
fn no_election_starts_below_min_voters() {
    let mut waiting = Cluster::with_config(3, |config| config.min_voters = 4);
    assert!(!waiting.run_until(200, |c| c.leader().is_some()), "3 voters < min 4: no election");
    let mut enough = Cluster::with_config(3, |config| config.min_voters = 3);
    assert!(enough.run_until(200, |c| c.leader().is_some()));
}

#[test]
fn a_restarted_node_finds_its_configuration_in_its_log() {
    let (mut cluster, leader) = ready(3);
    cluster.add_passive_node(NodeId(4));
    cluster.change_membership(leader, MembershipChange::AddLearner(NodeId(4))).expect("valid");
    settle(&mut cluster);
    let follower =
        cluster.ids().into_iter().find(|&id| id != leader && id.0 <= 3).expect("a follower");
    cluster.crash(follower);
    cluster.restart(follower);
    assert_eq!(cluster.node(follower).membership().learners, set(&[4]));
}

#[test]
fn a_joint_configuration_whose_new_half_cannot_reach_quorum_waits_without_losing_anything() {
    let (mut cluster, leader) = ready(3);
    for id in [4, 5] {
        cluster.add_passive_node(NodeId(id));
        cluster.crash(NodeId(id));
    }
    let old_voters: Vec<NodeId> = cluster.ids().into_iter().filter(|id| id.0 <= 3).collect();
    let keep = old_voters.iter().copied().find(|&id| id != leader).expect("a follower");
    let change = MembershipChange::Replace {
        voters: [keep, NodeId(4), NodeId(5)].into(),
        learners: BTreeSet::new(),
    };
    let joint_index = cluster.change_membership(leader, change).expect("valid");
    let write = cluster.propose(leader, 42).expect("leader");
    settle(&mut cluster);
    // The old half is all up, but the new half has only one live voter: nothing commits, and
    // (CheckQuorum counting both halves) the leader steps down rather than pretend.
    for id in old_voters {
        assert!(cluster.node(id).commit_index() < joint_index, "{id} committed the joint entry");
        assert!(cluster.node(id).membership().is_joint(), "{id} uses the joint configuration");
    }
    // The new nodes come up (empty), catch up, and the change completes with the write.
    cluster.restart(NodeId(4));
    cluster.restart(NodeId(5));
    let done = cluster.run_until(300, |c| {
        let Some(l) = c.leader() else { return false };
        !c.node(l).membership().is_joint() && c.node(l).commit_index() >= write
    });
    assert!(done);
    let new = cluster.leader().expect("a leader");
    assert!(cluster.node(new).membership().voters == [keep, NodeId(4), NodeId(5)].into());
    assert!(cluster.run_until(20, |c| c.applied_commands(new).contains(&42)));
    cluster.assert_safety();
}

#[test]
fn a_learner_answers_vote_requests_in_case_it_was_promoted_in_a_configuration_it_lacks() {
    let mut cluster = Cluster::with_config(3, |config| {
        if config.id == NodeId(3) {
            config.voters = vec![NodeId(1), NodeId(2)];
            config.learners = vec![NodeId(3)];
        }
    });
    let outputs = cluster.step(
        NodeId(3),
        stepraft::Input::Receive {
            from: NodeId(1),
            message: stepraft::Message::RequestVote(stepraft::RequestVote {
                term: stepraft::Term(1),
                last_log_index: stepraft::LogIndex(0),
                last_log_term: stepraft::Term(0),
                transfer: false,
            }),
        },
    );
    assert!(outputs.iter().any(|o| matches!(
        o,
        stepraft::Output::Send { message: stepraft::Message::RequestVoteResponse(r), .. } if r.granted
    )));
}

#[test]
fn a_joint_configuration_is_left_only_once_it_is_committed_not_when_an_earlier_entry_commits() {
    let (mut cluster, leader) = ready(3);
    cluster.add_passive_node(NodeId(4));
    // An entry, then a joint change, both sent to the followers.
    let entry = cluster.propose(leader, 7).expect("leader");
    let change = MembershipChange::Replace { voters: set(&[1, 2, 4]), learners: BTreeSet::new() };
    let joint_at = cluster.change_membership(leader, change).expect("valid");
    cluster.deliver_all_but_responses();
    // Only the acknowledgements of the earlier entry come back: it commits, the joint
    // configuration does not.
    let acks: Vec<_> = cluster
        .take_in_flight()
        .into_iter()
        .filter(|envelope| {
            matches!(
                envelope.message,
                stepraft::Message::AppendEntriesResponse(stepraft::AppendEntriesResponse {
                    outcome: stepraft::AppendOutcome::Success { match_index },
                    ..
                }) if match_index == entry
            )
        })
        .collect();
    assert!(!acks.is_empty(), "the followers acknowledged the entry on its own");
    for ack in acks {
        let input = stepraft::Input::Receive { from: ack.from, message: ack.message };
        cluster.step(ack.to, input);
    }
    let node = cluster.node(leader);
    assert!(node.commit_index() >= entry && node.commit_index() < joint_at);
    assert!(node.membership().is_joint(), "still joint: its entry is not committed");
    assert_eq!(node.last_index(), joint_at, "no leave-joint entry appended yet");
    settle(&mut cluster);
    let leader = cluster.leader().expect("a leader");
    assert!(!cluster.node(leader).membership().is_joint(), "left once committed");
}
