//! `Input::Campaign` starts an election when the node may campaign, and otherwise answers why
//! it did not with `Output::CampaignRejected`.

use stepraft::{CampaignError, Config, ConfigError, Input, Node, NodeId, Output, Role};
use stepraft_tests::Cluster;

fn rejection(outputs: &[Output<u64>]) -> Option<CampaignError> {
    outputs.iter().find_map(|output| match output {
        Output::CampaignRejected { error } => Some(*error),
        _ => None,
    })
}

#[test]
fn a_voter_of_a_large_enough_configuration_campaigns() {
    let node =
        Node::<u64>::new(Config::new(NodeId(1), [NodeId(1), NodeId(2), NodeId(3)])).expect("valid");
    let (node, outputs) = node.step(Input::Campaign);
    assert_eq!(rejection(&outputs), None);
    assert_ne!(node.role(), Role::Follower, "an election started");
}

#[test]
fn a_configuration_below_min_voters_refuses_to_campaign_and_says_why() {
    let mut config = Config::new(NodeId(1), [NodeId(1), NodeId(2)]);
    config.min_voters = 3;
    let node = Node::<u64>::new(config).expect("valid");
    let (node, outputs) = node.step(Input::Campaign);
    assert_eq!(rejection(&outputs), Some(CampaignError::TooFewVoters { voters: 2, min_voters: 3 }));
    assert_eq!(node.role(), Role::Follower);
}

#[test]
fn a_node_without_a_configuration_or_a_learner_refuses_to_campaign_and_says_why() {
    let passive = Node::<u64>::new(Config::new(NodeId(1), [])).expect("valid");
    let (_, outputs) = passive.step(Input::Campaign);
    let expected = CampaignError::NoConfiguration { known: 1, min_voters: 1 };
    assert_eq!(rejection(&outputs), Some(expected));
    let mut config = Config::new(NodeId(4), [NodeId(1), NodeId(2), NodeId(3)]);
    config.learners = vec![NodeId(4)];
    let learner = Node::<u64>::new(config).expect("valid");
    let (_, outputs) = learner.step(Input::Campaign);
    assert_eq!(rejection(&outputs), Some(CampaignError::NotVoter));
}

#[test]
fn a_leader_refuses_to_campaign() {
    let mut cluster = Cluster::new(3);
    let leader = cluster.elect(100);
    let outputs = cluster.step(leader, Input::Campaign);
    assert!(outputs
        .iter()
        .any(|o| matches!(o, Output::CampaignRejected { error: CampaignError::AlreadyLeader })));
}

#[test]
fn more_initial_voters_than_max_voters_is_refused() {
    let mut config = Config::new(NodeId(1), [NodeId(1), NodeId(2), NodeId(3)]);
    config.max_voters = 2;
    assert_eq!(
        Node::<u64>::new(config).err(),
        Some(ConfigError::TooManyVoters { voters: 3, max_voters: 2 })
    );
}
