//! Forming a cluster from nodes that start knowing nobody: the founder's bootstrap once
//! `min_voters` nodes are announced, nodes announced later joining through the log within
//! `max_voters`, departures, and what a non-founder never does.

use stepraft::{
    CampaignError, Config, Input, LogIndex, Membership, Message, Node, NodeId, Output, Persist,
    Role, Term,
};
use stepraft_tests::Cluster;

fn ids(list: &[u64]) -> Vec<NodeId> {
    list.iter().copied().map(NodeId).collect()
}

fn voters(cluster: &Cluster, id: NodeId) -> Vec<NodeId> {
    cluster.node(id).membership().voters.iter().copied().collect()
}

fn learners(cluster: &Cluster, id: NodeId) -> Vec<NodeId> {
    cluster.node(id).membership().learners.iter().copied().collect()
}

/// Tells every node in `to` about every node in `about` (itself included, which it ignores).
fn announce(cluster: &mut Cluster, to: &[u64], about: &[u64]) {
    for &node in to {
        for &other in about {
            cluster.step(NodeId(node), Input::AddNode(NodeId(other)));
        }
    }
}

fn founder(min_voters: usize) -> Node<u64> {
    let mut config = Config::new(NodeId(1), []);
    config.founder = true;
    config.min_voters = min_voters;
    Node::new(config).expect("a founder's config is valid")
}

#[test]
fn the_founder_waits_for_min_voters_then_writes_the_first_configuration_and_campaigns() {
    let mut node = founder(3);
    assert!(node.step_in_place(Input::AddNode(NodeId(2))).is_empty(), "one short of three");
    assert_eq!(
        node.step_in_place(Input::Campaign),
        [Output::CampaignRejected {
            error: CampaignError::NoConfiguration { known: 2, min_voters: 3 }
        }]
    );
    for _ in 0..100 {
        assert!(node.step_in_place(Input::Tick).is_empty(), "no election below min_voters");
    }

    let outputs = node.step_in_place(Input::AddNode(NodeId(3)));
    let Output::Persist(Persist::Append(entries)) = &outputs[0] else {
        panic!("the first configuration is persisted first: {outputs:?}")
    };
    assert_eq!((entries[0].index, entries[0].term), (LogIndex(1), Term(0)));
    assert_eq!(entries[0].payload.membership(), Some(&Membership::with_voters(ids(&[1, 2, 3]))));
    let pre_votes: Vec<NodeId> = outputs
        .iter()
        .filter_map(|output| match output {
            Output::Send { to, message: Message::PreVote(_) } => Some(*to),
            _ => None,
        })
        .collect();
    assert_eq!(pre_votes, ids(&[2, 3]), "it campaigns at once");
    assert_eq!(node.role(), Role::PreCandidate);

    // Announcements after the bootstrap never write a second first configuration.
    let outputs = node.step_in_place(Input::AddNode(NodeId(4)));
    assert!(!outputs.iter().any(|output| matches!(output, Output::Persist(_))), "{outputs:?}");
    assert_eq!(node.log_entries().len(), 1);
}

#[test]
fn a_founder_that_needs_nobody_bootstraps_on_its_first_tick() {
    let mut node = founder(1);
    let mut became_leader = false;
    for _ in 0..3 {
        became_leader |= node
            .step_in_place(Input::Tick)
            .contains(&Output::RoleChanged { term: Term(1), role: Role::Leader });
    }
    assert!(became_leader);
    assert_eq!(node.voters().collect::<Vec<_>>(), ids(&[1]));
}

#[test]
fn nodes_that_know_each_other_form_a_cluster_in_any_announcement_order() {
    for order in [[1u64, 2, 3], [3, 2, 1], [2, 3, 1]] {
        let mut cluster = Cluster::from_nothing(3, NodeId(1), |c| c.min_voters = 3);
        for &node in &order {
            announce(&mut cluster, &[node], &order);
            // Repeated announcements change nothing.
            announce(&mut cluster, &[node], &order);
        }
        let leader = cluster.elect(200);
        assert!(cluster.run_until(100, |c| c.ids().iter().all(|&id| voters(c, id).len() == 3)));
        for id in cluster.ids() {
            assert_eq!(voters(&cluster, id), ids(&[1, 2, 3]), "{id} in order {order:?}");
        }
        cluster.propose(leader, 7).expect("the new cluster takes writes");
        assert!(cluster.run_until(50, |c| c.ids().iter().all(|&id| c.applied_commands(id) == [7])));
        cluster.assert_safety();
    }
}

#[test]
fn without_a_founder_nobody_campaigns_however_many_nodes_are_announced() {
    let mut cluster = Cluster::from_nothing(3, NodeId(99), |c| c.min_voters = 2);
    announce(&mut cluster, &[1, 2, 3], &[1, 2, 3]);
    assert!(!cluster.run_until(200, |c| c.leader().is_some()), "a non-founder never bootstraps");
    for id in cluster.ids() {
        assert!(cluster.node(id).membership().is_empty());
        assert!(cluster.disk(id).entries.is_empty(), "{id} wrote nothing");
    }
}

#[test]
fn nodes_announced_after_formation_join_as_learners_then_voters_up_to_max_voters() {
    let mut cluster = Cluster::from_nothing(3, NodeId(1), |c| {
        c.min_voters = 3;
        c.max_voters = 4;
    });
    announce(&mut cluster, &[1, 2, 3], &[1, 2, 3]);
    let leader = cluster.elect(200);
    for id in [4, 5] {
        let mut config = Config::new(NodeId(id), []);
        config.min_voters = 3;
        config.max_voters = 4;
        cluster.insert_node(config);
    }
    // Only the leader acts on announcements; the others record them for when they lead.
    announce(&mut cluster, &[1, 2, 3], &[4, 5]);
    assert!(
        cluster.run_until(200, |c| voters(c, leader).len() == 4 && learners(c, leader).len() == 1)
    );
    assert_eq!(voters(&cluster, leader), ids(&[1, 2, 3, 4]), "the lowest id is promoted first");
    assert_eq!(learners(&cluster, leader), ids(&[5]), "max_voters holds the other back");
    assert!(cluster.run_until(100, |c| voters(c, NodeId(5)) == ids(&[1, 2, 3, 4])));
    assert!(cluster.node(leader).stats().announced_changes >= 3);
    cluster.assert_safety();
}

#[test]
fn a_departed_voter_leaves_only_while_min_voters_remain() {
    let mut cluster = Cluster::from_nothing(3, NodeId(1), |c| c.min_voters = 3);
    announce(&mut cluster, &[1, 2, 3], &[1, 2, 3]);
    let leader = cluster.elect(200);
    let mut config = Config::new(NodeId(4), []);
    config.min_voters = 3;
    cluster.insert_node(config);
    let victim = cluster.ids().into_iter().find(|&id| id != leader && id.0 <= 3).expect("one");
    for id in [1, 2, 3] {
        cluster.step(NodeId(id), Input::RemoveNode(victim));
    }
    assert!(!cluster.run_until(100, |c| voters(c, leader).len() < 3), "three is the minimum");
    // Its replacement arrives: it joins, and then the departed voter leaves.
    announce(&mut cluster, &[1, 2, 3], &[4]);
    let expected: Vec<NodeId> = ids(&[1, 2, 3, 4]).into_iter().filter(|&id| id != victim).collect();
    assert!(cluster.run_until(300, |c| voters(c, leader) == expected));
    assert!(learners(&cluster, leader).is_empty());
    cluster.assert_safety();
}

#[test]
fn a_founder_restarted_after_its_bootstrap_keeps_its_first_configuration() {
    let mut cluster = Cluster::from_nothing(3, NodeId(1), |c| c.min_voters = 3);
    announce(&mut cluster, &[1], &[2, 3]);
    cluster.drop_all();
    cluster.crash(NodeId(1));
    cluster.restart(NodeId(1));
    // Announcements are not persisted: the restarted founder is told again, and more.
    announce(&mut cluster, &[1], &[2, 3, 4]);
    assert_eq!(cluster.node(NodeId(1)).log_entries().len(), 1, "no second bootstrap");
    assert_eq!(voters(&cluster, NodeId(1)), ids(&[1, 2, 3]));
    cluster.elect(200);
}
