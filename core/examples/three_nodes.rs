//! A three-node cluster in one process: ticks until a leader is elected, replicates a batch of
//! commands, and prints what each node applied.
//!
//! Run with `cargo run -p stepraft --example three_nodes`.

use std::collections::VecDeque;

use stepraft::{Config, DurableState, Input, Node, NodeId, Output, Proposal, ProposalId, Role};

struct Cluster {
    nodes: Vec<Node<String>>,
    disks: Vec<DurableState<String>>,
    applied: Vec<Vec<String>>,
    network: VecDeque<(NodeId, Input<String>)>,
}

impl Cluster {
    fn new(size: u64) -> Result<Cluster, stepraft::ConfigError> {
        let ids: Vec<NodeId> = (1..=size).map(NodeId).collect();
        let nodes = ids
            .iter()
            .map(|&id| Node::new(Config::new(id, ids.iter().copied())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Cluster {
            disks: vec![DurableState::default(); nodes.len()],
            applied: vec![Vec::new(); nodes.len()],
            nodes,
            network: VecDeque::new(),
        })
    }

    /// Steps one node and executes its outputs in order: persist, send, notify, apply.
    fn step(&mut self, id: NodeId, input: Input<String>) {
        let at = (id.0 - 1) as usize;
        for output in self.nodes[at].step_in_place(input) {
            match output {
                Output::Persist(change) => self.disks[at].apply(&change),
                Output::Send { to, message } => {
                    self.network.push_back((to, Input::Receive { from: id, message }))
                }
                Output::Apply(entries) => self.applied[at]
                    .extend(entries.iter().filter_map(|entry| entry.command().cloned())),
                Output::LeaderChanged { term, leader } => {
                    println!("{id}: in {term}, leader {leader:?}")
                }
                Output::Accepted { first, last, term, .. } => {
                    println!("{id}: accepted entries {first}..={last} in {term}")
                }
                Output::Rejected { error, .. } => println!("{id}: rejected: {error}"),
                _ => {}
            }
        }
    }

    fn tick_and_deliver(&mut self) {
        for id in 1..=self.nodes.len() as u64 {
            self.step(NodeId(id), Input::Tick);
        }
        while let Some((to, input)) = self.network.pop_front() {
            self.step(to, input);
        }
    }
}

fn main() -> Result<(), stepraft::ConfigError> {
    let mut cluster = Cluster::new(3)?;
    let mut ticks = 0;
    let leader = loop {
        cluster.tick_and_deliver();
        ticks += 1;
        if let Some(leader) = cluster.nodes.iter().find(|node| node.role() == Role::Leader) {
            break leader.id();
        }
    };
    println!("leader {leader} elected after {ticks} ticks");
    let commands = ["set x 1", "set y 2", "del x"].map(String::from).to_vec();
    cluster.step(leader, Input::Propose(Proposal::batch(ProposalId(1), commands)));
    for _ in 0..3 {
        cluster.tick_and_deliver();
    }
    for node in &cluster.nodes {
        let at = (node.id().0 - 1) as usize;
        println!(
            "{}: term {}, commit {}, applied {:?}",
            node.id(),
            node.term(),
            node.commit_index(),
            cluster.applied[at]
        );
    }
    assert!(cluster.applied.iter().all(|applied| applied.len() == 3), "all nodes applied");
    Ok(())
}
