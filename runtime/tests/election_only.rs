//! The election-only interface (`stepraft_tokio::election`) on in-process channels, under
//! tokio's paused clock: waiting seconds costs nothing, because time jumps to the next tick
//! whenever every task is idle.

use std::collections::BTreeSet;
use std::time::Duration;

use stepraft::{AppendEntries, ConfigError, Entry, Heartbeat, LogIndex, Message, NodeId, Payload};
use stepraft::{RequestVote, Term};
use stepraft_tokio::election::{self, Control, ElectionConfig, ElectionHandle, ElectionMessage};
use stepraft_tokio::election::{ElectionPeer, ElectionStatus, LeaderChange};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;

/// A peer in the same process: its node's inbox.
struct ChannelPeer {
    id: NodeId,
    inbox: mpsc::Sender<ElectionMessage>,
}

impl ElectionPeer for ChannelPeer {
    fn id(&self) -> NodeId {
        self.id
    }

    async fn send(&self, message: ElectionMessage) {
        let _ = self.inbox.send(message).await;
    }
}

type Node = ElectionHandle<ChannelPeer>;

const TICK: Duration = Duration::from_millis(10);
/// Longer than any election here takes (elections time out after 100–200 ms).
const PATIENCE: Duration = Duration::from_secs(5);

/// Nodes `1..=count`, node 1 the founder, each configured by `configure`.
fn group(count: u64, configure: impl Fn(&mut ElectionConfig)) -> Vec<Node> {
    (1..=count)
        .map(|id| {
            let mut config = ElectionConfig::new(NodeId(id));
            config.founder = id == 1;
            config.tick = TICK;
            configure(&mut config);
            election::start(config).expect("a valid config")
        })
        .collect()
}

/// Tells `nodes[to]` about `nodes[about]` (indexes, not ids).
async fn announce(nodes: &[Node], to: usize, about: usize) {
    let peer = ChannelPeer { id: NodeId(about as u64 + 1), inbox: nodes[about].inbox.clone() };
    nodes[to].control.send(Control::AddNode(peer)).await.expect("the node runs");
}

async fn announce_all(nodes: &[Node]) {
    for to in 0..nodes.len() {
        for about in 0..nodes.len() {
            announce(nodes, to, about).await;
        }
    }
}

/// Waits (at most [`PATIENCE`]) until `node`'s status satisfies `condition`.
async fn until(node: &mut Node, condition: impl FnMut(&ElectionStatus) -> bool) -> ElectionStatus {
    let waited = tokio::time::timeout(PATIENCE, node.status.wait_for(condition)).await;
    waited.expect("in time").expect("the node runs").clone()
}

/// Waits until every node in `nodes` follows one leader and holds `voters`; returns it.
async fn agree(nodes: &mut [Node], voters: &[u64]) -> NodeId {
    let voters: BTreeSet<NodeId> = voters.iter().copied().map(NodeId).collect();
    let leader = until(&mut nodes[0], |s| s.leader.is_some()).await.leader.expect("known");
    for node in nodes {
        until(node, |s| s.leader == Some(leader) && s.membership.voters == voters).await;
    }
    leader
}

fn drain(node: &mut Node) -> Vec<LeaderChange> {
    let mut changes = Vec::new();
    loop {
        match node.changes.try_recv() {
            Ok(change) => changes.push(change),
            Err(TryRecvError::Empty) => return changes,
            Err(TryRecvError::Disconnected) => panic!("the node stopped"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn no_election_starts_while_the_founder_knows_fewer_than_min_voters() {
    let mut nodes = group(3, |c| c.min_voters = 3);
    for (to, about) in [(0, 1), (1, 0), (1, 2), (2, 1)] {
        announce(&nodes, to, about).await;
    }
    // The founder knows two nodes of three: dozens of election timeouts pass, and nothing.
    tokio::time::sleep(PATIENCE).await;
    for node in &mut nodes {
        assert_eq!(drain(node), [], "no leadership change");
        let status = node.status.borrow().clone();
        assert_eq!(status.term, Term(0));
        assert!(status.membership.is_empty(), "no configuration: {status:?}");
    }
    // The third announcement to the founder is the one it waited for.
    announce(&nodes, 0, 2).await;
    announce(&nodes, 2, 0).await;
    assert_eq!(agree(&mut nodes, &[1, 2, 3]).await, NodeId(1), "the founder campaigns first");
}

#[tokio::test(start_paused = true)]
async fn replies_to_a_node_with_no_handle_are_dropped_and_counted_until_it_is_announced() {
    let mut nodes = group(2, |c| c.min_voters = 2);
    // Node 2 hears from the founder but was told of nobody: it steps the founder's requests
    // (the core decides), and its answers have nowhere to go.
    announce(&nodes, 0, 1).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(nodes[1].dropped.unknown_peer() > 0, "node 2 answered, into nothing");
    assert_eq!(nodes[0].dropped.unknown_peer(), 0);
    assert_eq!(nodes[0].status.borrow().leader, None, "no votes reached the founder");
    announce(&nodes, 1, 0).await;
    assert_eq!(agree(&mut nodes, &[1, 2]).await, NodeId(1));
    assert_eq!(nodes[1].dropped.queue_full(), 0);
}

#[tokio::test(start_paused = true)]
async fn every_leadership_change_is_reported_once_in_order_through_a_failover() {
    let mut nodes = group(3, |c| c.min_voters = 3);
    announce_all(&nodes).await;
    announce_all(&nodes).await; // twice: announcements are idempotent
    let first = agree(&mut nodes, &[1, 2, 3]).await;
    nodes[first.0 as usize - 1].task.abort();
    let survivors: Vec<usize> = (0..3).filter(|&index| index + 1 != first.0 as usize).collect();
    let new_leader = until(&mut nodes[survivors[0]], |s| s.leader.is_some_and(|l| l != first))
        .await
        .leader
        .expect("known");
    for &index in &survivors {
        let node = &mut nodes[index];
        let now = until(node, |s| s.leader == Some(new_leader)).await;
        let changes = drain(node);
        assert_eq!(
            changes.last(),
            Some(&LeaderChange { term: now.term, leader: now.leader }),
            "the last change is the status"
        );
        assert_eq!(changes.iter().filter(|c| c.leader == Some(first)).count(), 1, "{changes:?}");
        for pair in changes.windows(2) {
            let (before, after) = (pair[0], pair[1]);
            assert_ne!(before, after, "reported twice: {changes:?}");
            assert!(after.term >= before.term, "{changes:?}");
            if let (Some(a), Some(b), true) =
                (before.leader, after.leader, before.term == after.term)
            {
                assert_eq!(a, b, "two leaders of one term: {changes:?}");
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn an_announced_node_joins_and_a_removed_voter_leaves_the_configuration() {
    let mut nodes = group(3, |c| c.min_voters = 2);
    announce_all(&nodes).await;
    agree(&mut nodes, &[1, 2, 3]).await;
    let mut fourth = ElectionConfig::new(NodeId(4));
    fourth.tick = TICK;
    nodes.push(election::start(fourth).expect("a valid config"));
    for other in 0..3 {
        announce(&nodes, other, 3).await;
        announce(&nodes, 3, other).await;
    }
    let leader = agree(&mut nodes, &[1, 2, 3, 4]).await;
    // Node 3 leaves (or node 2, if node 3 leads): every node is told, and it stops.
    let gone = if leader == NodeId(3) { NodeId(2) } else { NodeId(3) };
    for node in &nodes {
        node.control.send(Control::RemoveNode(gone)).await.expect("the node runs");
    }
    nodes.remove(gone.0 as usize - 1).task.abort();
    let voters: Vec<u64> = [1, 2, 3, 4].into_iter().filter(|&id| id != gone.0).collect();
    assert_eq!(agree(&mut nodes, &voters).await, leader);
}

#[tokio::test(start_paused = true)]
async fn a_departed_voter_that_cannot_leave_below_min_voters_still_hears_its_leader() {
    let mut nodes = group(3, |c| c.min_voters = 3);
    announce_all(&nodes).await;
    let leader = agree(&mut nodes, &[1, 2, 3]).await;
    let departed = if leader == NodeId(3) { 1 } else { 2 };
    for node in &nodes {
        node.control.send(Control::RemoveNode(NodeId(departed as u64 + 1))).await.expect("runs");
    }
    let term = nodes[0].status.borrow().term;
    tokio::time::sleep(PATIENCE).await;
    // Still a voter, and still sent heartbeats: had its handle been dropped, it would have
    // timed out its leader and campaigned.
    for node in &mut nodes {
        let status = node.status.borrow().clone();
        assert_eq!((status.term, status.leader), (term, Some(leader)));
        assert_eq!(status.membership.voters.len(), 3);
    }
    assert_eq!(drain(&mut nodes[departed]).last().map(|c| c.term), Some(term));
}

#[tokio::test(start_paused = true)]
async fn hostile_messages_neither_stop_nor_fool_a_leader() {
    let mut nodes = group(1, |_| {});
    let leader = until(&mut nodes[0], |s| s.leader == Some(NodeId(1))).await;
    let entries = vec![Entry { term: Term(9), index: LogIndex(7), payload: Payload::Command(()) }];
    let hostile = [
        // From itself, and from nobody it knows, at an older term.
        (
            NodeId(1),
            Message::Heartbeat(Heartbeat { term: Term(99), commit: LogIndex(5), round: 1 }),
        ),
        (
            NodeId(42),
            Message::AppendEntries(AppendEntries {
                term: Term(0),
                prev_log_index: LogIndex(u64::MAX),
                prev_log_term: Term(u64::MAX),
                entries,
                leader_commit: LogIndex(u64::MAX),
            }),
        ),
        (
            NodeId(42),
            Message::RequestVote(RequestVote {
                term: Term(0),
                last_log_index: LogIndex(u64::MAX),
                last_log_term: Term(u64::MAX),
                transfer: true,
            }),
        ),
    ];
    for (from, message) in hostile {
        nodes[0].inbox.send(ElectionMessage { from, message }).await.expect("the node runs");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!nodes[0].task.is_finished(), "the node runs");
    let status = nodes[0].status.borrow().clone();
    assert_eq!((status.term, status.leader), (leader.term, Some(NodeId(1))), "still leads");
    assert!(nodes[0].dropped.unknown_peer() <= 2, "at most one answer each to node 42");
}

#[tokio::test(start_paused = true)]
async fn an_invalid_config_is_refused_with_the_cores_error() {
    let mut config = ElectionConfig::new(NodeId(1));
    config.heartbeat_ticks = config.election_ticks;
    let refused = election::start::<ChannelPeer>(config.clone()).map(|_| ());
    let expected =
        ConfigError::HeartbeatNotBelowElection { heartbeat_ticks: 10, election_ticks: 10 };
    assert_eq!(refused, Err(expected));
    config.heartbeat_ticks = 1;
    config.min_voters = 0;
    let refused = election::start::<ChannelPeer>(config).map(|_| ());
    assert!(matches!(refused, Err(ConfigError::BadVoterLimits { min_voters: 0, .. })));
}

#[tokio::test(start_paused = true)]
async fn the_node_stops_once_every_control_sender_is_dropped() {
    let Node { control, task, .. } = group(1, |_| {}).pop().expect("one node");
    let clone = control.clone();
    drop(control);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!task.is_finished(), "a clone keeps it running");
    drop(clone);
    tokio::time::timeout(PATIENCE, task).await.expect("stops in time").expect("no panic");
}
