//! The discovery workload: clusters formed from nodes that start knowing nobody, under the
//! usual faults, pass every checker at 3, 5 and 7 nodes; and the checkers catch the unsafe
//! rule where every node bootstraps with whatever nodes it knows.

use stepraft_sim::{run, Outcome, PlantedBug, Property, SimConfig};

fn discovery(seed: u64, nodes: u64) -> SimConfig {
    let mut config = SimConfig::new(seed);
    config.nodes = nodes;
    config.discovery = true;
    config.duration_us = 4_000_000;
    config
}

#[test]
fn clusters_formed_from_nothing_pass_every_checker_and_take_in_every_node() {
    for nodes in [3, 5, 7] {
        for seed in 0..4 {
            let result = run(&discovery(seed, nodes));
            assert_eq!(result.outcome, Outcome::Passed, "seed {seed}, {nodes} nodes");
            assert!(result.stats.announcements > 0);
            // Recovery under discovery means every node joined: one configuration entry for
            // the bootstrap, then a learner and a promotion (or a learner only, past
            // max_voters) for each node the founder did not know.
            assert!(result.stats.membership_committed >= nodes - 2, "seed {seed}, {nodes} nodes");
            assert!(result.stats.writes_ok > 0, "the cluster formed served writes");
        }
    }
}

#[test]
fn every_node_bootstrapping_with_what_it_knows_is_caught() {
    let caught: Vec<Property> = (1000..1010)
        .filter_map(|seed| {
            let mut config = discovery(seed, 7);
            config.plant = Some(PlantedBug::EveryNodeFounds);
            match run(&config).outcome {
                Outcome::Violated(violation) => Some(violation.property),
                _ => None,
            }
        })
        .collect();
    assert!(!caught.is_empty(), "ten seeds of seven nodes, each bootstrapping on its own");
    assert!(
        caught.iter().all(|property| matches!(
            property,
            Property::ElectionSafety | Property::LeaderCompleteness | Property::LogMatching
        )),
        "{caught:?}"
    );
}
