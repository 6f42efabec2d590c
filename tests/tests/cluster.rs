//! Whole-cluster scenarios on the in-memory harness: elections, bulk replication, isolation,
//! crashes and restarts.

use stepraft::{LogIndex, NodeId, ProposeError, Role};
use stepraft_tests::Cluster;

#[test]
fn three_nodes_elect_one_leader_that_everyone_follows() {
    let mut cluster = Cluster::new(3);
    let leader = cluster.elect(100);
    for id in cluster.ids() {
        assert_eq!(cluster.node(id).leader(), Some(leader));
        assert_eq!(cluster.node(id).term(), cluster.node(leader).term());
    }
    cluster.assert_safety();
}

#[test]
fn five_nodes_elect_one_leader_that_everyone_follows() {
    let mut cluster = Cluster::new(5);
    let leader = cluster.elect(100);
    let followers = cluster.ids().into_iter().filter(|&id| id != leader);
    for id in followers {
        assert_eq!(cluster.node(id).role(), Role::Follower);
        assert_eq!(cluster.node(id).leader(), Some(leader));
    }
}

#[test]
fn ten_thousand_entries_replicate_and_apply_everywhere_in_order() {
    let mut cluster = Cluster::new(3);
    let leader = cluster.elect(100);
    for command in 0..10_000u64 {
        cluster.propose(leader, command).expect("leader accepts");
        if command % 64 == 63 {
            cluster.deliver_all();
        }
    }
    let done =
        cluster.run_until(50, |c| c.ids().iter().all(|&id| c.applied_commands(id).len() == 10_000));
    assert!(done, "every node applies every entry");
    let expected: Vec<u64> = (0..10_000).collect();
    for id in cluster.ids() {
        assert_eq!(cluster.applied_commands(id), expected);
        assert_eq!(cluster.node(id).commit_index(), cluster.node(leader).last_index());
    }
    cluster.assert_safety();
}

#[test]
fn isolated_leader_is_replaced_and_steps_down_on_rejoining() {
    let mut cluster = Cluster::new(3);
    let old = cluster.elect(100);
    let old_term = cluster.node(old).term();
    cluster.isolate(old);
    // The isolated leader still accepts writes, but they can never commit.
    let lost = cluster.propose(old, 666).expect("still believes it leads");
    let others: Vec<NodeId> = cluster.ids().into_iter().filter(|&id| id != old).collect();
    let replaced =
        cluster.run_until(100, |c| others.iter().any(|&id| c.node(id).role() == Role::Leader));
    assert!(replaced, "the majority elects a new leader");
    let new = cluster.leader().expect("a leader");
    assert_ne!(new, old);
    assert!(cluster.node(new).term() > old_term);
    cluster.propose(new, 7).expect("new leader accepts");
    cluster.heal();
    let rejoined = cluster.run_until(100, |c| {
        c.node(old).role() == Role::Follower
            && c.node(old).leader() == Some(new)
            && c.applied_commands(old).contains(&7)
    });
    assert!(rejoined, "the old leader follows the new one and catches up");
    assert!(!cluster.applied_commands(old).contains(&666), "the uncommitted write is gone");
    assert!(cluster.node(old).term_at(lost) != Ok(old_term));
    cluster.assert_safety();
}

#[test]
fn crashed_follower_restarts_from_disk_and_catches_up() {
    let mut cluster = Cluster::new(3);
    let leader = cluster.elect(100);
    for command in 0..10 {
        cluster.propose(leader, command).expect("leader accepts");
    }
    cluster.deliver_all();
    let follower = cluster.ids().into_iter().find(|&id| id != leader).expect("a follower");
    let term_before = cluster.node(follower).term();
    cluster.crash(follower);
    for command in 10..20 {
        cluster.propose(leader, command).expect("leader accepts");
    }
    cluster.run_until(5, |_| false);
    cluster.restart(follower);
    assert_eq!(cluster.node(follower).role(), Role::Follower);
    assert_eq!(cluster.node(follower).term(), term_before);
    let caught_up = cluster.run_until(100, |c| c.applied_commands(follower).len() == 20);
    assert!(caught_up);
    assert_eq!(cluster.applied_commands(follower), (0..20).collect::<Vec<u64>>());
    cluster.assert_safety();
}

#[test]
fn crashed_leader_is_replaced_and_restarts_with_its_term_and_vote() {
    let mut cluster = Cluster::new(3);
    let leader = cluster.elect(100);
    cluster.propose(leader, 1).expect("leader accepts");
    cluster.run_until(3, |_| false);
    let term = cluster.node(leader).term();
    cluster.crash(leader);
    let others: Vec<NodeId> = cluster.ids().into_iter().filter(|&id| id != leader).collect();
    let replaced =
        cluster.run_until(100, |c| others.iter().any(|&id| c.node(id).role() == Role::Leader));
    assert!(replaced);
    cluster.restart(leader);
    assert_eq!(cluster.node(leader).term(), term);
    assert_eq!(cluster.node(leader).voted_for(), Some(leader));
    assert_eq!(cluster.node(leader).role(), Role::Follower);
    let new = cluster.leader().expect("a leader");
    cluster.propose(new, 2).expect("new leader accepts");
    let caught_up = cluster.run_until(100, |c| c.applied_commands(leader) == vec![1, 2]);
    assert!(caught_up);
    cluster.assert_safety();
}

#[test]
fn proposals_on_a_follower_are_refused_with_the_leader_hint() {
    let mut cluster = Cluster::new(3);
    let leader = cluster.elect(100);
    let follower = cluster.ids().into_iter().find(|&id| id != leader).expect("a follower");
    let error = cluster.propose(follower, 1).unwrap_err();
    assert_eq!(
        error,
        ProposeError::NotLeader { leader: Some(leader), term: cluster.node(follower).term() }
    );
    assert_eq!(cluster.node(follower).last_index(), cluster.node(leader).last_index());
    // The follower learns the no-op's commit with the next heartbeat.
    cluster.run_until(2, |_| false);
    assert_eq!(cluster.node(follower).entries(LogIndex(1)..=LogIndex(1)).map(<[_]>::len), Ok(1));
}
