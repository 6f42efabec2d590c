//! Determinism: the same inputs from the same state give the same outputs and state, byte for
//! byte — and the trace really depends on what it should (seeds, inputs).

use stepraft::{Config, Input, Node, NodeId, Proposal, ProposalId};
use stepraft_tests::Cluster;

/// A tiny seeded generator so the scenario's own choices are reproducible.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Runs a lossy, crashy five-node scenario and returns the debug text of every output of
/// every step plus the final state of every node.
fn scenario_trace(scenario_seed: u64, node_seed_salt: u64) -> String {
    let mut cluster = Cluster::with_config(5, |config| config.rng_seed ^= node_seed_salt);
    let mut rng = SplitMix(scenario_seed);
    let mut trace = String::new();
    let ids = cluster.ids();
    for round in 0..400u64 {
        for &id in &ids {
            let outputs = cluster.tick(id);
            trace.push_str(&format!("{round} tick {id}: {outputs:?}\n"));
        }
        let pick = ids[(rng.next() % ids.len() as u64) as usize];
        if cluster.is_up(pick) {
            let _ = cluster.propose(pick, round);
        }
        match rng.next() % 50 {
            0 if cluster.is_up(pick) => cluster.crash(pick),
            1 | 2 => {
                for id in ids.clone() {
                    if !cluster.is_up(id) {
                        cluster.restart(id);
                    }
                }
            }
            _ => {}
        }
        for envelope in cluster.take_in_flight() {
            if rng.next() % 10 != 0 {
                cluster.inject(envelope);
            }
        }
        while cluster.deliver_one() {}
        for &id in &ids {
            trace.push_str(&format!("{round} last {id}: {:?}\n", cluster.last_outputs(id)));
        }
        cluster.assert_safety();
    }
    for &id in &ids {
        if cluster.is_up(id) {
            trace.push_str(&format!("final {id}: {:?}\n", cluster.node(id)));
        }
    }
    trace
}

#[test]
fn same_scenario_gives_byte_identical_traces() {
    let first = scenario_trace(7, 0);
    let second = scenario_trace(7, 0);
    assert!(first.len() > 10_000, "the scenario does real work");
    assert!(first == second, "two runs of one scenario diverged");
}

#[test]
fn node_seeds_change_the_trace() {
    // Guards the test above: if the trace ignored the nodes' RNG, it would prove nothing.
    assert_ne!(scenario_trace(7, 0), scenario_trace(7, 0xDEAD_BEEF));
}

#[test]
fn one_step_from_cloned_states_is_identical() {
    let ids = [NodeId(1), NodeId(2), NodeId(3)];
    let node: Node<u64> = Node::new(Config::new(NodeId(1), ids)).expect("valid");
    let (node, _) = node.step(Input::Campaign);
    let inputs = [
        Input::Tick,
        Input::Propose(Proposal::one(ProposalId(1), 5)),
        Input::Campaign,
        Input::Tick,
    ];
    let (mut a, mut b) = (node.clone(), node);
    for input in inputs {
        let (next_a, outputs_a) = a.step(input.clone());
        let (next_b, outputs_b) = b.step(input);
        assert_eq!(outputs_a, outputs_b);
        assert_eq!(format!("{next_a:?}"), format!("{next_b:?}"));
        (a, b) = (next_a, next_b);
    }
}
