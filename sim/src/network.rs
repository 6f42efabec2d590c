//! The simulated network: latency, loss, duplication and cut links, all drawn from the
//! network's own random stream.

use std::collections::BTreeSet;

use stepraft::NodeId;

use crate::profile::FaultProfile;
use crate::rng::{SimRng, Stream};

/// What the network does with one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Delivered after these delays (two when duplicated).
    Deliver {
        /// Delay of the first copy.
        delay_us: u64,
        /// Delay of a duplicate copy, if any.
        duplicate_us: Option<u64>,
    },
    /// Lost, for this reason.
    Drop(&'static str),
}

/// Links, faults and latencies.
#[derive(Debug)]
pub struct Network {
    rng: SimRng,
    /// Flaky directed links, drawn once per seed.
    flaky: BTreeSet<(NodeId, NodeId)>,
    /// Directed links currently cut by a partition.
    cut: BTreeSet<(NodeId, NodeId)>,
    /// When false (the liveness phase), loss, duplication and spikes are off.
    faults_on: bool,
}

impl Network {
    /// The network of simulation `seed` between `nodes`.
    pub fn new(seed: u64, nodes: &[NodeId], profile: &FaultProfile) -> Network {
        let mut rng = SimRng::new(seed, Stream::Network);
        let mut flaky = BTreeSet::new();
        for &from in nodes {
            for &to in nodes {
                if from != to && rng.chance(profile.flaky_link_fraction) {
                    flaky.insert((from, to));
                }
            }
        }
        Network { rng, flaky, cut: BTreeSet::new(), faults_on: true }
    }

    /// Decides the fate of a message from `from` to `to`.
    pub fn route(&mut self, from: NodeId, to: NodeId, profile: &FaultProfile) -> Fate {
        if self.cut.contains(&(from, to)) {
            return Fate::Drop("partition");
        }
        if self.faults_on {
            if self.rng.chance(profile.loss) {
                return Fate::Drop("loss");
            }
            if self.flaky.contains(&(from, to)) && self.rng.chance(profile.flaky_link_loss) {
                return Fate::Drop("flaky");
            }
        }
        let delay_us = self.latency(profile);
        let duplicate_us =
            (self.faults_on && self.rng.chance(profile.duplicate)).then(|| self.latency(profile));
        Fate::Deliver { delay_us, duplicate_us }
    }

    /// A one-way latency: uniform over the ordinary range, with rare spikes that reorder.
    pub fn latency(&mut self, profile: &FaultProfile) -> u64 {
        if self.faults_on && self.rng.chance(profile.latency_spike) {
            return self.rng.between(profile.latency_max_us, profile.latency_spike_max_us);
        }
        self.rng.between(profile.latency_min_us, profile.latency_max_us)
    }

    /// Whether the link `from -> to` is cut right now (checked again at arrival).
    pub fn is_cut(&self, from: NodeId, to: NodeId) -> bool {
        self.cut.contains(&(from, to))
    }

    /// Whether any cut link starts or ends at `id`.
    pub fn touches(&self, id: NodeId) -> bool {
        self.cut.iter().any(|&(from, to)| from == id || to == id)
    }

    /// Whether any partition is active.
    pub fn is_partitioned(&self) -> bool {
        !self.cut.is_empty()
    }

    /// Cuts the given directed links.
    pub fn cut(&mut self, links: impl IntoIterator<Item = (NodeId, NodeId)>) {
        self.cut.extend(links);
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Turns message loss, duplication and latency spikes off for good (liveness phase).
    pub fn stop_faults(&mut self) {
        self.faults_on = false;
    }
}

/// Every directed link between the two sides, both ways.
pub fn split_links(side_a: &[NodeId], side_b: &[NodeId]) -> Vec<(NodeId, NodeId)> {
    let mut links = Vec::new();
    for &a in side_a {
        for &b in side_b {
            links.push((a, b));
            links.push((b, a));
        }
    }
    links
}
