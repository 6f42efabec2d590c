//! Parallel leader writes (thesis §10.2.1): with `leader_persist_acks`, a leader sends its new
//! entries before its own copy is durable and counts itself toward commitment only once the
//! runtime acknowledges the write with `Input::Persisted`.

use std::collections::VecDeque;

use stepraft::{
    Config, DurableState, Input, LogIndex, Node, NodeId, Output, Persist, Proposal, ProposalId,
    Term,
};
use stepraft_tests::Cluster;

fn config(id: u64, size: u64) -> Config {
    let mut config = Config::new(NodeId(id), (1..=size).map(NodeId));
    config.leader_persist_acks = true;
    config
}

/// Splits a step's outputs into (background appends, everything else), asserting the
/// background append comes before the sends of the same step.
fn background_appends(outputs: &[Output<u64>]) -> Vec<(LogIndex, Term)> {
    let first_send = outputs.iter().position(|o| matches!(o, Output::Send { .. }));
    outputs
        .iter()
        .enumerate()
        .filter_map(|(position, output)| match output {
            Output::PersistAsync(Persist::Append(entries)) => {
                assert!(first_send.is_none_or(|send| position < send), "written before sending");
                entries.last().map(|last| (last.index, last.term))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_single_node_commits_only_once_its_write_is_acknowledged() {
    let node: Node<u64> = Node::new(config(1, 1)).expect("valid");
    let (node, outputs) = node.step(Input::Campaign);
    let noop = background_appends(&outputs);
    assert_eq!(noop, vec![(LogIndex(1), Term(1))]);
    assert_eq!(node.commit_index(), LogIndex(0), "its own write is not durable yet");
    assert_eq!(node.durable_index(), LogIndex(0), "the node says what is durable");
    let (node, outputs) = node.step(Input::Persisted { index: LogIndex(1), term: Term(1) });
    assert_eq!(node.commit_index(), LogIndex(1));
    assert_eq!(node.durable_index(), LogIndex(1));
    assert!(outputs.iter().any(|o| matches!(o, Output::Apply(_))));
}

#[test]
fn followers_alone_can_commit_while_the_leaders_write_is_in_flight() {
    // Three nodes; the leader never acknowledges its own writes.
    let mut nodes: Vec<Node<u64>> =
        (1..=3).map(|id| Node::new(config(id, 3)).expect("valid")).collect();
    let mut network = VecDeque::new();
    let step = |nodes: &mut Vec<Node<u64>>, network: &mut VecDeque<_>, at: u64, input| {
        let outputs = nodes[(at - 1) as usize].step_in_place(input);
        for output in outputs {
            if let Output::Send { to, message } = output {
                network.push_back((NodeId(at), to, message));
            }
        }
    };
    step(&mut nodes, &mut network, 1, Input::Campaign);
    let proposal = |id| Input::Propose(Proposal::one(ProposalId(id), id));
    while let Some((from, to, message)) = network.pop_front() {
        step(&mut nodes, &mut network, to.0, Input::Receive { from, message });
    }
    step(&mut nodes, &mut network, 1, proposal(7));
    while let Some((from, to, message)) = network.pop_front() {
        step(&mut nodes, &mut network, to.0, Input::Receive { from, message });
    }
    // Two durable followers are a majority of three: the entry commits.
    assert_eq!(nodes[0].commit_index(), LogIndex(2));
}

/// Nodes 1 and 2 of a three-node cluster, node 3 unreachable; the leader's background writes
/// are acknowledged only when the test says so.
struct TwoOfThree {
    nodes: Vec<Node<u64>>,
    network: VecDeque<(NodeId, NodeId, stepraft::Message<u64>)>,
    last_outputs: Vec<Output<u64>>,
}

impl TwoOfThree {
    fn new() -> TwoOfThree {
        let nodes = (1..=2).map(|id| Node::new(config(id, 3)).expect("valid")).collect();
        TwoOfThree { nodes, network: VecDeque::new(), last_outputs: Vec::new() }
    }

    fn step(&mut self, at: u64, input: Input<u64>) {
        let outputs = self.nodes[(at - 1) as usize].step_in_place(input);
        for output in &outputs {
            if let Output::Send { to, message } = output {
                if to.0 <= 2 {
                    self.network.push_back((NodeId(at), *to, message.clone()));
                }
            }
        }
        self.last_outputs = outputs;
    }

    fn deliver(&mut self) {
        while let Some((from, to, message)) = self.network.pop_front() {
            self.step(to.0, Input::Receive { from, message });
        }
    }
}

#[test]
fn with_one_follower_away_the_leader_needs_its_own_acknowledgement() {
    let mut net = TwoOfThree::new();
    net.step(1, Input::Campaign);
    net.deliver();
    net.step(1, Input::Propose(Proposal::one(ProposalId(1), 5)));
    net.deliver();
    assert_eq!(net.nodes[1].last_index(), LogIndex(2), "the follower holds both entries");
    assert_eq!(net.nodes[0].commit_index(), LogIndex(0), "1 durable copy of 3 is no majority");
    // A stale acknowledgement (wrong term) changes nothing.
    net.step(1, Input::Persisted { index: LogIndex(2), term: Term(9) });
    assert_eq!(net.nodes[0].commit_index(), LogIndex(0));
    net.step(1, Input::Persisted { index: LogIndex(2), term: Term(1) });
    assert_eq!(net.nodes[0].commit_index(), LogIndex(2));
    // The durable commit index follows the durable log.
    assert!(net.last_outputs.iter().any(|o| matches!(
        o,
        Output::Persist(Persist::HardState(hard_state)) if hard_state.commit == LogIndex(2)
    )));
}

#[test]
fn the_durable_commit_index_never_runs_ahead_of_the_durable_log() {
    let mut nodes: Vec<Node<u64>> =
        (1..=3).map(|id| Node::new(config(id, 3)).expect("valid")).collect();
    let mut disk: DurableState<u64> = DurableState::default();
    let mut network = VecDeque::new();
    let run = |nodes: &mut Vec<Node<u64>>,
               disk: &mut DurableState<u64>,
               net: &mut VecDeque<_>,
               at: u64,
               input| {
        for output in nodes[(at - 1) as usize].step_in_place(input) {
            match output {
                // Node 1's background writes are never acknowledged: they are lost in a crash.
                Output::Persist(change) if at == 1 => disk.apply(&change),
                Output::Send { to, message } => net.push_back((NodeId(at), to, message)),
                _ => {}
            }
        }
    };
    run(&mut nodes, &mut disk, &mut network, 1, Input::Campaign);
    while let Some((from, to, message)) = network.pop_front() {
        run(&mut nodes, &mut disk, &mut network, to.0, Input::Receive { from, message });
    }
    for id in 1..=5 {
        run(
            &mut nodes,
            &mut disk,
            &mut network,
            1,
            Input::Propose(Proposal::one(ProposalId(id), id)),
        );
        while let Some((from, to, message)) = network.pop_front() {
            run(&mut nodes, &mut disk, &mut network, to.0, Input::Receive { from, message });
        }
    }
    assert_eq!(nodes[0].commit_index(), LogIndex(6), "committed by the followers");
    assert!(disk.entries.is_empty(), "the leader's own writes never landed");
    assert_eq!(disk.hard_state.commit, LogIndex(0));
    // The crashed leader restarts from what is durable, and catches up as a follower.
    let restored = Node::<u64>::restore(config(1, 3), disk).expect("consistent durable state");
    assert_eq!(restored.last_index(), LogIndex(0));
}

#[test]
fn a_cluster_with_parallel_leader_writes_replicates_and_survives_a_leader_crash() {
    let mut cluster = Cluster::with_config(3, |config| config.leader_persist_acks = true);
    let leader = cluster.elect(100);
    for command in 0..100 {
        cluster.propose(leader, command).expect("leader");
    }
    cluster.run_until(5, |_| false);
    cluster.crash(leader);
    let others: Vec<NodeId> = cluster.ids().into_iter().filter(|&id| id != leader).collect();
    assert!(cluster.run_until(100, |c| c.leader().is_some_and(|l| others.contains(&l))));
    let new = cluster.leader().expect("a leader");
    cluster.propose(new, 100).expect("new leader");
    cluster.restart(leader);
    assert!(cluster.run_until(100, |c| c.applied_commands(leader) == (0..=100).collect::<Vec<_>>()));
    cluster.assert_safety();
}
