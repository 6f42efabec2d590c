//! The discovery workload: a cluster formed from nothing while faults are on.
//!
//! Every node starts knowing nobody; one node, drawn from the seed, is the founder
//! ([`Config::founder`]). Each node *arrives* at a drawn time (most at once, some late, up to
//! half-way through the fault phase); from then on every node that has also arrived learns of
//! it through [`Input::AddNode`] announcements, as a gossip layer would deliver them: after a
//! random delay, lost with some probability while faults are on, sometimes repeated, and
//! announced again every gossip round (announcements are not persisted, so a restarted node
//! needs them again). Once the founder knows `min_voters` nodes it bootstraps; the leader adds
//! the others through the log. Recovery under discovery also requires every node to be a
//! member, with `min(nodes, max_voters)` voters.

use stepraft::{Config, Input, NodeId};

use crate::checker::Violation;
use crate::rng::{stream_seed, SimRng, Stream};
use crate::trace::TraceEvent;
use crate::world::{Event, PlantedBug, SimConfig, Simulation};

/// The minimum number of voters (capped by the cluster size).
const MIN_VOTERS: usize = 3;
/// The maximum number of voters: larger clusters keep the rest as learners.
const MAX_VOTERS: usize = 5;
/// Probability that an announcement is lost while faults are on.
const LOSS: f64 = 0.3;
/// Probability that an announcement is delivered a second time, shortly after.
const REPEAT: f64 = 0.2;
/// Largest delay of a first announcement after both nodes arrived.
const FIRST_DELAY_MAX_US: u64 = 400_000;
/// Gossip rounds: every pair is announced again after this long.
const GOSSIP_MIN_US: u64 = 500_000;
const GOSSIP_MAX_US: u64 = 1_500_000;
/// Probability that a node arrives late.
const LATE: f64 = 0.4;

/// The workload's state: its own random stream and the nodes' arrival times.
#[derive(Debug)]
pub(crate) struct Discovery {
    rng: SimRng,
    /// Indexed by `id - 1`.
    arrival_us: Vec<u64>,
}

/// The founder of `config`'s run.
pub fn founder(config: &SimConfig) -> NodeId {
    NodeId(1 + stream_seed(config.seed, Stream::Discovery) % config.nodes.max(1))
}

/// Sets a node up to start knowing nobody, with the workload's voter limits.
pub(crate) fn configure(config: &SimConfig, node: &mut Config) {
    node.voters.clear();
    node.learners.clear();
    node.founder = node.id == founder(config) || config.plant == Some(PlantedBug::EveryNodeFounds);
    node.min_voters = MIN_VOTERS.min(config.nodes as usize).max(1);
    node.max_voters = MAX_VOTERS.min(config.nodes as usize).max(node.min_voters);
}

/// The number of voters a recovered cluster has under discovery.
pub(crate) fn expected_voters(config: &SimConfig) -> usize {
    MAX_VOTERS.min(config.nodes as usize).max(MIN_VOTERS.min(config.nodes as usize).max(1))
}

impl Discovery {
    pub(crate) fn new(config: &SimConfig) -> Discovery {
        let mut rng = SimRng::new(config.seed, Stream::Discovery);
        let half = config.duration_us / 2;
        let arrival_us = (0..config.nodes)
            .map(|_| if rng.chance(LATE) { rng.below(half.max(1)) } else { rng.below(100_000) })
            .collect();
        Discovery { rng, arrival_us }
    }
}

impl Simulation {
    /// Schedules every pair's first announcement.
    pub(crate) fn start_discovery(&mut self) {
        let Some(discovery) = self.discovery.as_mut() else { return };
        let mut first = Vec::new();
        for to in 1..=self.config.nodes {
            for about in (1..=self.config.nodes).filter(|&about| about != to) {
                let both = discovery.arrival_us[(to - 1) as usize]
                    .max(discovery.arrival_us[(about - 1) as usize]);
                let at = both + discovery.rng.below(FIRST_DELAY_MAX_US);
                first.push((at, NodeId(to), NodeId(about)));
            }
        }
        for (at, to, about) in first {
            self.schedule(at, Event::Announce { to, about, gossip: true });
        }
    }

    /// One announcement of `about` to `to`. A gossip announcement schedules the next round
    /// and may be repeated; a repeat does neither.
    pub(crate) fn announce(
        &mut self,
        to: NodeId,
        about: NodeId,
        gossip: bool,
    ) -> Result<(), Violation> {
        let safety = self.in_safety_phase();
        let Some(discovery) = self.discovery.as_mut() else { return Ok(()) };
        if gossip {
            let next = discovery.rng.between(GOSSIP_MIN_US, GOSSIP_MAX_US);
            let repeat = discovery.rng.chance(REPEAT).then(|| discovery.rng.below(50_000));
            self.schedule(next, Event::Announce { to, about, gossip: true });
            if let Some(delay) = repeat {
                self.schedule(delay, Event::Announce { to, about, gossip: false });
            }
        }
        let Some(discovery) = self.discovery.as_mut() else { return Ok(()) };
        let lost = (safety && discovery.rng.chance(LOSS)) || !self.host(to).is_up();
        self.trace(TraceEvent::Announce { to: to.0, about: about.0, lost });
        if lost {
            self.stats.announcements_lost += 1;
            return Ok(());
        }
        self.stats.announcements += 1;
        self.step_node(to, Input::AddNode(about))
    }
}
