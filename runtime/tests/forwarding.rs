//! A follower forwards writes and membership changes to its leader and answers them itself.

use std::time::Duration;

use stepraft::{Config, MembershipChange, NodeId, Payload, ProposeError};
use stepraft_tokio::driver::{spawn_node, Applied, NodeHandle, NodeSetup, RequestError};
use stepraft_tokio::network::channel_network;
use stepraft_tokio::storage::MemoryStorage;

fn cluster(forward_to_leader: bool) -> Vec<NodeHandle<String>> {
    let ids = [NodeId(1), NodeId(2), NodeId(3)];
    channel_network(&ids, 1024)
        .into_iter()
        .zip(ids)
        .map(|((outbox, inbound), id)| {
            let storage = MemoryStorage::<String>::default();
            let setup = NodeSetup::new(Config::new(id, ids), storage, outbox, inbound);
            let setup = NodeSetup { tick: Duration::from_millis(5), forward_to_leader, ..setup };
            spawn_node(setup).expect("starts")
        })
        .collect()
}

/// Waits until every node knows the same leader; returns (leader, a follower) indices.
async fn leader_and_follower(nodes: &mut [NodeHandle<String>]) -> (usize, usize) {
    loop {
        let leaders: Vec<_> = nodes.iter().map(|n| n.leadership.borrow().leader).collect();
        if let Some(leader) = leaders[0].filter(|l| leaders.iter().all(|x| *x == Some(*l))) {
            let leader = (leader.0 - 1) as usize;
            return (leader, (leader + 1) % nodes.len());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_write_to_a_follower_commits_through_the_leader_and_is_applied_there_first() {
    let mut nodes = cluster(true);
    let (_, follower) = leader_and_follower(&mut nodes).await;
    let committed =
        nodes[follower].client.propose(vec!["forwarded".into()]).await.expect("committed");
    // Answered only once the follower has delivered the entry on its own stream.
    let mut found = false;
    while let Ok(applied) = nodes[follower].applied.try_recv() {
        if let Applied::Entries(entries) = applied {
            found |= entries.iter().any(|e| {
                e.index == committed.last && e.payload == Payload::Command("forwarded".into())
            });
        }
    }
    assert!(found, "the follower delivered the entry before answering");
    let change = MembershipChange::AddLearner(NodeId(9));
    nodes[follower].client.change_membership(change).await.expect("forwarded membership change");
    let status = nodes[follower].client.status().await.expect("status");
    assert!(status.membership.learners.contains(&NodeId(9)), "{:?}", status.membership);
}

#[tokio::test(flavor = "current_thread")]
async fn without_forwarding_a_follower_refuses_naming_the_leader() {
    let mut nodes = cluster(false);
    let (leader, follower) = leader_and_follower(&mut nodes).await;
    let refused = nodes[follower].client.propose(vec!["x".into()]).await;
    let Err(RequestError::Propose(ProposeError::NotLeader { leader: named, .. })) = refused else {
        panic!("refused as not leader: {refused:?}");
    };
    assert_eq!(named, Some(NodeId(leader as u64 + 1)));
}

#[tokio::test(flavor = "current_thread")]
async fn a_write_forwarded_to_a_leader_that_never_answers_is_outcome_unknown() {
    let mut nodes = cluster(true);
    let (leader, follower) = leader_and_follower(&mut nodes).await;
    // The leader stops (every client of it is dropped): what it is sent is lost.
    let stopped = nodes.remove(leader);
    drop(stopped.client);
    let _ = stopped.task.await;
    let follower = if follower > leader { follower - 1 } else { follower };
    let started = tokio::time::Instant::now();
    let answer = nodes[follower].client.propose(vec!["lost?".into()]).await;
    match answer {
        Err(error @ RequestError::ForwardUnknown { .. }) => assert!(!error.took_no_effect()),
        // The follower noticed the new leadership before forwarding: fine, but not this test.
        other => panic!("outcome unknown expected, got {other:?} after {:?}", started.elapsed()),
    }
}
