//! The fault scheduler: crashes, partitions and pauses, drawn from the fault stream.

use stepraft::{NodeId, Role};

use crate::network::split_links;
use crate::trace::TraceEvent;
use crate::world::{Event, Simulation};

impl Simulation {
    /// One fault decision (every 100 ms of the safety phase).
    pub(crate) fn decide_faults(&mut self) {
        if !self.network.is_partitioned() && self.fault_rng.chance(self.profile.partition_rate) {
            self.start_partition();
        }
        if self.fault_rng.chance(self.profile.crash_rate) {
            if let Some(id) =
                self.random_node(|sim, id| sim.hosts_up(id) && !sim.host_ref(id).crash_armed)
            {
                if self.fault_rng.chance(self.profile.crash_mid_step) {
                    // Strike inside the node's next step, between two of its outputs.
                    self.host(id).crash_armed = true;
                } else {
                    self.crash_node(id, false);
                }
            }
        }
        if self.fault_rng.chance(self.profile.pause_rate) {
            if let Some(id) =
                self.random_node(|sim, id| sim.hosts_up(id) && !sim.host_ref(id).paused)
            {
                self.stats.pauses += 1;
                self.host(id).paused = true;
                self.trace(TraceEvent::Pause { node: id.0 });
                let pause_us = self.fault_rng.between(20_000, 1_000_000);
                self.schedule(pause_us, Event::Resume(id));
            }
        }
    }

    fn host_ref(&self, id: NodeId) -> &crate::host::Host {
        &self.hosts[(id.0 - 1) as usize]
    }

    fn hosts_up(&self, id: NodeId) -> bool {
        self.host_ref(id).is_up()
    }

    fn random_node(&mut self, eligible: impl Fn(&Simulation, NodeId) -> bool) -> Option<NodeId> {
        let candidates: Vec<NodeId> =
            self.ids.iter().copied().filter(|&id| eligible(self, id)).collect();
        self.fault_rng.pick(&candidates).copied()
    }

    /// The node that currently leads with the highest term, if any.
    fn current_leader(&self) -> Option<NodeId> {
        self.hosts
            .iter()
            .filter_map(|host| host.node.as_ref())
            .filter(|node| node.role() == Role::Leader)
            .max_by_key(|node| node.term())
            .map(|node| node.id())
    }

    fn start_partition(&mut self) {
        let ids = self.ids.clone();
        let (kind, links) = match self.fault_rng.below(4) {
            0 => {
                // A random split into two sides.
                let mut side_a = Vec::new();
                let mut side_b = Vec::new();
                for &id in &ids {
                    if self.fault_rng.chance(0.5) {
                        side_a.push(id);
                    } else {
                        side_b.push(id);
                    }
                }
                ("split", split_links(&side_a, &side_b))
            }
            1 => {
                let target = self.current_leader().or_else(|| self.fault_rng.pick(&ids).copied());
                let target: Vec<NodeId> = target.into_iter().collect();
                let rest: Vec<NodeId> =
                    ids.iter().copied().filter(|id| !target.contains(id)).collect();
                ("isolate-leader", split_links(&target, &rest))
            }
            2 => {
                let minority_max = (ids.len() as u64 - 1) / 2;
                let size = self.fault_rng.between(1, minority_max.max(1)) as usize;
                let mut shuffled = ids.clone();
                for i in (1..shuffled.len()).rev() {
                    let j = self.fault_rng.below(i as u64 + 1) as usize;
                    shuffled.swap(i, j);
                }
                let (minority, majority) = shuffled.split_at(size);
                ("minority", split_links(minority, majority))
            }
            _ => {
                // One-way: one node can hear the others but not reach them, or the reverse.
                let target = *self.fault_rng.pick(&ids).expect("nodes exist");
                let outbound = self.fault_rng.chance(0.5);
                let links = ids
                    .iter()
                    .filter(|&&other| other != target)
                    .map(|&other| if outbound { (target, other) } else { (other, target) })
                    .collect();
                ("one-way", links)
            }
        };
        if links.is_empty() {
            return;
        }
        self.stats.partitions += 1;
        let cuts = links.iter().map(|&(from, to): &(NodeId, NodeId)| (from.0, to.0)).collect();
        self.network.cut(links);
        self.trace(TraceEvent::Partition { kind, cuts });
        let heal_us = self.fault_rng.between(100_000, 2_000_000);
        self.schedule(heal_us, Event::Heal);
    }
}
