//! The fault scheduler: crashes, partitions and pauses, drawn from the fault stream.

use stepraft::{Input, MembershipChange, NodeId, Role};

use crate::checker::Violation;
use crate::network::split_links;
use crate::schedule::{EventKind, Schedule, ScheduledEvent};
use crate::trace::TraceEvent;
use crate::world::{Event, Simulation};

impl Simulation {
    /// One fault decision (every 100 ms of the safety phase): draws from the fault stream,
    /// records what it decided, and carries it out.
    pub(crate) fn decide_faults(&mut self) -> Result<(), Violation> {
        if !self.network.is_partitioned() && self.fault_rng.chance(self.profile.partition_rate) {
            if let Some(partition) = self.draw_partition() {
                self.record_and_apply(partition)?;
            }
        }
        if self.fault_rng.chance(self.profile.crash_rate) {
            if let Some(id) =
                self.random_node(|sim, id| sim.hosts_up(id) && !sim.host_ref(id).crash_armed)
            {
                // Strike now, or inside the node's next step, between two of its outputs.
                let mid_step = self.fault_rng.chance(self.profile.crash_mid_step);
                let down_us = self.fault_rng.between(50_000, 2_000_000);
                self.record_and_apply(EventKind::Crash { node: id.0, mid_step, down_us })?;
            }
        }
        if self.fault_rng.chance(self.profile.pause_rate) {
            if let Some(id) =
                self.random_node(|sim, id| sim.hosts_up(id) && !sim.host_ref(id).paused)
            {
                let for_us = self.fault_rng.between(20_000, 1_000_000);
                self.record_and_apply(EventKind::Pause { node: id.0, for_us })?;
            }
        }
        Ok(())
    }

    /// Leadership transfers as workload: ask the current leader to hand over to another node.
    pub(crate) fn decide_transfer(&mut self) -> Result<(), Violation> {
        if !self.fault_rng.chance(self.profile.transfer_rate) {
            return Ok(());
        }
        let Some(leader) = self.current_leader() else { return Ok(()) };
        let others: Vec<NodeId> = self.ids.iter().copied().filter(|&id| id != leader).collect();
        let Some(&target) = self.fault_rng.pick(&others) else { return Ok(()) };
        self.record_and_apply(EventKind::Transfer { to: target.0 })
    }

    /// Membership changes as workload: add or promote a learner, demote or remove a member,
    /// or replace the voters through joint consensus — on the current leader.
    pub(crate) fn decide_membership_change(&mut self) -> Result<(), Violation> {
        if self.config.discovery {
            // The leader changes membership by itself, for the nodes announced to it.
            return Ok(());
        }
        if !self.fault_rng.chance(self.profile.membership_rate) {
            return Ok(());
        }
        let Some(leader) = self.current_leader() else { return Ok(()) };
        let membership = match self.host_ref(leader).node.as_ref() {
            Some(node) => node.membership().clone(),
            None => return Ok(()),
        };
        let outsiders: Vec<NodeId> =
            self.ids.iter().copied().filter(|&id| !membership.is_member(id)).collect();
        let learners: Vec<NodeId> = membership.learners.iter().copied().collect();
        let voters: Vec<NodeId> = membership.voters.iter().copied().collect();
        // Keep at least three voters, so that the cluster still tolerates a fault.
        let change = match self.fault_rng.below(5) {
            0 => self.fault_rng.pick(&outsiders).map(|&id| MembershipChange::AddLearner(id)),
            1 => self.fault_rng.pick(&learners).map(|&id| MembershipChange::PromoteLearner(id)),
            2 if voters.len() > 3 => {
                self.fault_rng.pick(&voters).map(|&id| MembershipChange::DemoteVoter(id))
            }
            3 if voters.len() > 3 || !learners.is_empty() => {
                let removable: Vec<NodeId> = if voters.len() > 3 {
                    membership.members().into_iter().collect()
                } else {
                    learners
                };
                self.fault_rng.pick(&removable).map(|&id| MembershipChange::RemoveNode(id))
            }
            _ => {
                let size = self.fault_rng.between(3, self.ids.len().min(5) as u64) as usize;
                let mut pool = self.ids.clone();
                let mut chosen = std::collections::BTreeSet::new();
                while chosen.len() < size {
                    let at = self.fault_rng.below(pool.len() as u64) as usize;
                    chosen.insert(pool.swap_remove(at));
                }
                Some(MembershipChange::Replace { voters: chosen, learners: Default::default() })
            }
        };
        let Some(change) = change else { return Ok(()) };
        self.record_and_apply(EventKind::Membership { change })
    }

    /// Records the profile's conditions as the schedule's first events.
    pub(crate) fn record_conditions(&mut self) {
        for condition in self.profile.conditions() {
            let kind = EventKind::Condition { condition };
            self.recorded.push(ScheduledEvent { at_us: 0, kind });
        }
    }

    /// Records a decision as a schedule event, then carries it out.
    pub(crate) fn record_and_apply(&mut self, kind: EventKind) -> Result<(), Violation> {
        self.recorded.push(ScheduledEvent { at_us: self.now_us, kind: kind.clone() });
        self.apply_event(kind)
    }

    /// Carries out the event at `position` of the schedule being run.
    pub(crate) fn run_scripted(&mut self, position: usize) -> Result<(), Violation> {
        let Some(script) = self.script.clone() else { return Ok(()) };
        match script.events.get(position) {
            Some(event) => self.apply_event(event.kind.clone()),
            None => Ok(()),
        }
    }

    /// What this run did, as a schedule that reproduces it.
    pub(crate) fn recorded_schedule(&self) -> Schedule {
        let events = match &self.script {
            Some(script) => script.events.clone(),
            None => self.recorded.clone(),
        };
        Schedule {
            seed: self.config.seed,
            nodes: self.config.nodes,
            spares: self.ids.len() as u64 > self.config.nodes,
            clients: self.config.clients,
            keys: self.config.keys,
            duration_us: self.config.duration_us,
            liveness_bound_us: self.config.liveness_bound_us,
            pre_vote: self.config.pre_vote,
            check_quorum: self.config.check_quorum,
            snapshot_every: self.snapshot_every,
            discovery: self.config.discovery,
            events,
        }
    }

    /// Carries out one fault or workload event. An event that no longer makes sense (its node
    /// is down, a partition is already on, there is no leader) does nothing, so that any
    /// subset of a schedule is a valid run.
    fn apply_event(&mut self, kind: EventKind) -> Result<(), Violation> {
        match kind {
            EventKind::Condition { .. } => Ok(()),
            EventKind::Crash { node, mid_step, down_us } => {
                let Some(id) = self.known(node) else { return Ok(()) };
                if !self.hosts_up(id) || self.host_ref(id).crash_armed {
                    return Ok(());
                }
                self.note_if_leader_lost(id);
                if mid_step {
                    let host = self.host(id);
                    host.crash_armed = true;
                    host.crash_down_us = down_us;
                } else {
                    self.crash_node(id, false, down_us);
                }
                Ok(())
            }
            EventKind::Pause { node, for_us } => {
                let Some(id) = self.known(node) else { return Ok(()) };
                if !self.hosts_up(id) || self.host_ref(id).paused {
                    return Ok(());
                }
                self.note_if_leader_lost(id);
                self.stats.pauses += 1;
                let now = self.now_us;
                let host = self.host(id);
                host.paused = true;
                host.paused_at_us = now;
                self.trace(TraceEvent::Pause { node: id.0 });
                self.schedule(for_us, Event::Resume(id));
                Ok(())
            }
            EventKind::Partition { shape, cuts, heal_after_us } => {
                let links: Vec<(NodeId, NodeId)> = cuts
                    .iter()
                    .filter_map(|&(from, to)| Some((self.known(from)?, self.known(to)?)))
                    .collect();
                if self.network.is_partitioned() || links.is_empty() {
                    return Ok(());
                }
                self.stats.partitions += 1;
                self.network.cut(links);
                if let Some(leader) = self.current_leader() {
                    if !self.reaches_majority(leader) {
                        self.note_if_leader_lost(leader);
                    }
                }
                let kind = partition_kind(&shape);
                self.trace(TraceEvent::Partition { kind, cuts });
                self.schedule(heal_after_us, Event::Heal);
                Ok(())
            }
            EventKind::Transfer { to } => {
                let (Some(leader), Some(target)) = (self.current_leader(), self.known(to)) else {
                    return Ok(());
                };
                self.stats.transfers += 1;
                self.step_node(leader, Input::TransferLeadership(target))
            }
            EventKind::Membership { change } => {
                let Some(leader) = self.current_leader() else { return Ok(()) };
                self.membership_requests += 1;
                let id = stepraft::ProposalId(
                    crate::stepping::MEMBERSHIP_PROPOSAL | self.membership_requests,
                );
                self.step_node(leader, Input::ChangeMembership { id, change })
            }
            EventKind::ClientOp { client, op, mode } => {
                self.scripted_client_op(client, op, mode);
                Ok(())
            }
        }
    }

    /// `id` if it names a node of this world.
    fn known(&self, id: u64) -> Option<NodeId> {
        self.ids.contains(&NodeId(id)).then_some(NodeId(id))
    }

    /// Starts the leader-replacement clock when a fault takes the current leader out: crashed,
    /// paused, or unable to exchange messages with a majority.
    fn note_if_leader_lost(&mut self, victim: NodeId) {
        if self.leader_lost.is_some() || self.current_leader() != Some(victim) {
            return;
        }
        let term = self.host_ref(victim).node.as_ref().map(|node| node.term());
        if let Some(term) = term {
            self.leader_lost = Some((self.now_us, term));
        }
    }

    /// After a heal or a resume: if the lost leader leads again in the same term, no
    /// replacement was needed and the clock stops without a sample.
    pub(crate) fn forget_leader_loss_if_recovered(&mut self) {
        let Some((_, lost_term)) = self.leader_lost else { return };
        let Some(leader) = self.current_leader() else { return };
        let still_leading =
            self.host_ref(leader).node.as_ref().is_some_and(|node| node.term() == lost_term);
        if still_leading && self.reaches_majority(leader) && !self.host_ref(leader).paused {
            self.leader_lost = None;
        }
    }

    /// Whether `id` can exchange messages both ways with a majority (itself included).
    fn reaches_majority(&self, id: NodeId) -> bool {
        let reachable = self
            .ids
            .iter()
            .filter(|&&other| {
                other == id || (!self.network.is_cut(id, other) && !self.network.is_cut(other, id))
            })
            .count();
        reachable > self.ids.len() / 2
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
    pub(crate) fn current_leader(&self) -> Option<NodeId> {
        self.hosts
            .iter()
            .filter_map(|host| host.node.as_ref())
            .filter(|node| node.role() == Role::Leader)
            .max_by_key(|node| node.term())
            .map(|node| node.id())
    }

    /// Draws a partition of one of four shapes (none if it would cut nothing).
    fn draw_partition(&mut self) -> Option<EventKind> {
        let ids = self.ids.clone();
        let (shape, links) = match self.fault_rng.below(4) {
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
        let heal_after_us = self.fault_rng.between(100_000, 2_000_000);
        if links.is_empty() {
            return None;
        }
        let cuts = links.iter().map(|&(from, to): &(NodeId, NodeId)| (from.0, to.0)).collect();
        Some(EventKind::Partition { shape: shape.to_string(), cuts, heal_after_us })
    }
}

/// The trace's name for a partition shape (a schedule file may hold any text).
fn partition_kind(shape: &str) -> &'static str {
    match shape {
        "split" => "split",
        "isolate-leader" => "isolate-leader",
        "minority" => "minority",
        "one-way" => "one-way",
        _ => "scheduled",
    }
}
