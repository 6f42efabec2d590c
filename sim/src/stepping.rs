//! Stepping simulated nodes and executing their outputs in order: persist, send, apply.

use stepraft::{
    Entry, Input, LogIndex, Message, NodeId, Output, Persist, ProposeError, ReadError, Role, Term,
};

use crate::checker::{Property, Violation};
use crate::kv::KvCommand;
use crate::network::Fate;
use crate::trace::{MessageSummary, TraceEvent};
use crate::workload::{Reply, RequestId};
use crate::world::{Event, Simulation};

impl Simulation {
    /// Traces a node's role, term and known leader, once per distinct state.
    fn trace_role(&mut self, id: NodeId, role: Role, term: Term, leader: Option<NodeId>) {
        let state = Some((role, term, leader));
        if self.host(id).traced_role == state {
            return;
        }
        self.host(id).traced_role = state;
        let role = match role {
            Role::Follower => "follower",
            Role::PreCandidate => "pre-candidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
            _ => "other",
        };
        self.trace(TraceEvent::Role {
            node: id.0,
            role,
            term: term.0,
            leader: leader.map(|l| l.0),
        });
    }

    pub(crate) fn tick_node(&mut self, id: NodeId) -> Result<(), Violation> {
        let host = self.host(id);
        if !host.is_up() || host.paused {
            // A crashed or paused process does not see time pass.
            return Ok(());
        }
        self.step_node(id, Input::Tick)
    }

    pub(crate) fn deliver(
        &mut self,
        from: NodeId,
        to: NodeId,
        message: Message<KvCommand>,
        sent_us: u64,
    ) -> Result<(), Violation> {
        let summary = MessageSummary::of(&message);
        let reason = if self.network.is_cut(from, to) {
            Some("partition")
        } else if !self.host(to).is_up() {
            Some("down")
        } else {
            None
        };
        if let Some(reason) = reason {
            self.stats.messages_dropped += 1;
            self.trace(TraceEvent::Drop {
                from: from.0,
                to: to.0,
                message: summary,
                reason,
                sent_us,
            });
            return Ok(());
        }
        self.trace(TraceEvent::Deliver { from: from.0, to: to.0, message: summary, sent_us });
        self.step_node(to, Input::Receive { from, message })
    }

    /// Steps a running node (or queues the input if it is paused) and executes the outputs.
    pub(crate) fn step_node(
        &mut self,
        id: NodeId,
        input: Input<KvCommand>,
    ) -> Result<(), Violation> {
        let host = &mut self.hosts[(id.0 - 1) as usize];
        if host.paused {
            host.backlog.push(input);
            return Ok(());
        }
        let Some(node) = host.node.as_mut() else { return Ok(()) };
        let (role_before, term_before) = (node.role(), node.term());
        let transferring = node.transfer_target().is_some();
        let before = node.stats();
        let mut outputs = self.output_buffers.pop().unwrap_or_default();
        node.step_into(input, &mut outputs);
        let after = node.stats();
        self.stats.elections += after.elections_started - before.elections_started;
        self.stats.lease_reads += after.lease_reads - before.lease_reads;
        self.stats.snapshots_taken += after.snapshots_taken - before.snapshots_taken;
        self.stats.snapshots_sent += after.snapshots_sent - before.snapshots_sent;
        self.stats.snapshots_installed += after.snapshots_installed - before.snapshots_installed;
        self.stats.snapshot_chunk_bytes += after.snapshot_bytes_sent - before.snapshot_bytes_sent;
        self.stats.max_log_entries =
            self.stats.max_log_entries.max(node.log_entries().len() as u64);
        self.stats.max_term = self.stats.max_term.max(node.term().0);
        let leading = role_before == Role::Leader
            && node.role() == Role::Leader
            && node.term() == term_before;
        // A leader that removed itself steps down by design; that is no disruption.
        let deposed = role_before == Role::Leader
            && node.role() != Role::Leader
            && node.membership().is_voter(id);
        if deposed && !transferring && !self.network.touches(id) {
            self.stats.leader_disruptions += 1;
        }
        let crash_at = if host.crash_armed {
            Some(self.mechanics_rng.below(outputs.len() as u64 + 1) as usize)
        } else {
            None
        };
        let mut executed = Ok(());
        for (position, output) in outputs.drain(..).enumerate() {
            // A crash strikes before the output at `crash_at` (after the last, if it is the
            // length); the rest are lost with the process.
            if crash_at == Some(position) {
                break;
            }
            executed = self.execute(id, leading, output);
            if executed.is_err() {
                break;
            }
        }
        self.output_buffers.push(outputs);
        executed?;
        if crash_at.is_some() {
            let down_us = self.host(id).crash_down_us;
            self.crash_node(id, true, down_us);
            return Ok(());
        }
        self.report_commit(id)?;
        self.maybe_take_snapshot(id)
    }

    /// Snapshots the host's state machine once it applied `snapshot_every` entries past the
    /// node's latest snapshot, as an application would on a schedule.
    fn maybe_take_snapshot(&mut self, id: NodeId) -> Result<(), Violation> {
        let every = self.snapshot_every;
        let host = self.host(id);
        let Some(node) = host.node.as_ref() else { return Ok(()) };
        let latest = node.snapshot().map_or(LogIndex(0), |snapshot| snapshot.meta.index);
        if every == 0 || host.applied.0 < latest.0 + every || host.paused {
            return Ok(());
        }
        let (index, data) = (host.applied, host.store.to_snapshot());
        self.step_node(id, Input::SnapshotTaken { index, data: data.into() })
    }

    /// The node restores its state machine from a snapshot: it must hold exactly the state
    /// that replaying the committed log up to the snapshot's index gives.
    fn restore_snapshot(
        &mut self,
        id: NodeId,
        snapshot: &stepraft::Snapshot,
    ) -> Result<(), Violation> {
        self.checker.on_restore_snapshot(id, &snapshot.meta)?;
        let index = snapshot.meta.index;
        let Some(restored) = crate::kv::KvStore::from_snapshot(&snapshot.data) else {
            return Err(Violation {
                property: Property::SnapshotSafety,
                detail: format!("{id} cannot decode the snapshot at {}", index.0),
            });
        };
        let mut replayed = crate::kv::KvStore::default();
        for entry in self.applied_log.iter().take(index.0 as usize) {
            replayed.apply(entry);
        }
        if restored != replayed || (self.applied_log.len() as u64) < index.0 {
            return Err(Violation {
                property: Property::SnapshotSafety,
                detail: format!(
                    "{id} restored a snapshot at {} that differs from replaying the log",
                    index.0
                ),
            });
        }
        self.trace(TraceEvent::Restore { node: id.0, index: index.0 });
        let host = self.host(id);
        host.store = restored;
        host.applied = index;
        // Proposals the snapshot covers: their outcome is not known here. The client times
        // out and retries; its session makes the retry safe.
        host.pending.retain(|&first, _| first > index);
        self.serve_ready_reads(id);
        Ok(())
    }

    fn execute(
        &mut self,
        id: NodeId,
        leading: bool,
        output: Output<KvCommand>,
    ) -> Result<(), Violation> {
        match output {
            Output::Persist(change) => self.persist(id, leading, change),
            Output::PersistAsync(change) => {
                self.persist_in_background(id, change);
                Ok(())
            }
            Output::Send { to, message } => {
                self.send(id, to, message);
                Ok(())
            }
            Output::Apply(entries) => {
                self.checker.on_apply(id, &entries)?;
                self.apply_entries(id, &entries);
                if let Some(last) = entries.last() {
                    self.trace(TraceEvent::Apply { node: id.0, index: last.index.0 });
                }
                if let Some(node) = self.host(id).node.as_mut() {
                    node.recycle(entries);
                }
                Ok(())
            }
            Output::RoleChanged { term, role } => {
                let leader = self.host(id).node.as_ref().and_then(|node| node.leader());
                self.trace_role(id, role, term, leader);
                if role == Role::Leader {
                    self.stats.leader_changes += 1;
                    if let Some((lost_at, lost_term)) = self.leader_lost {
                        if term > lost_term {
                            self.time_to_new_leader_us.push(self.now_us - lost_at);
                            self.leader_lost = None;
                        }
                    }
                    let host = &self.hosts[(id.0 - 1) as usize];
                    let node = host.node.as_ref().expect("a stepping node is up");
                    if !node.membership().is_voter(id) {
                        return Err(Violation {
                            property: Property::ElectionSafety,
                            detail: format!(
                                "{id} leads {term} without being a voter of its configuration"
                            ),
                        });
                    }
                    self.checker.on_leader(id, term, node.log_entries())?;
                }
                Ok(())
            }
            Output::LeaderChanged { term, leader } => {
                let role = self.host(id).node.as_ref().map_or(Role::Follower, |node| node.role());
                self.trace_role(id, role, term, leader);
                Ok(())
            }
            Output::Accepted { proposal, .. } if is_membership_change(proposal) => {
                self.stats.membership_accepted += 1;
                Ok(())
            }
            Output::Rejected { proposal, .. } if is_membership_change(proposal) => {
                self.stats.membership_rejected += 1;
                Ok(())
            }
            Output::Accepted { proposal, first, term, .. } => {
                let request = RequestId::decode(proposal.0);
                self.host(id).pending.insert(first, (request, term));
                Ok(())
            }
            Output::Rejected { proposal, error } => {
                let reply = match error {
                    ProposeError::NotLeader { leader, .. } => Reply::Redirect(leader),
                    _ => Reply::Rejected,
                };
                self.reply_to_client(RequestId::decode(proposal.0), reply);
                Ok(())
            }
            Output::ReadReady { id: read, index } => {
                if let Some(pending) = self.host(id).reads.get_mut(&read) {
                    pending.ready_at = Some(index);
                }
                self.serve_ready_reads(id);
                Ok(())
            }
            Output::ReadRejected { id: read, error } => {
                if let Some(pending) = self.host(id).reads.remove(&read) {
                    let reply = match error {
                        ReadError::NoLeader { .. } => Reply::Redirect(None),
                        _ => Reply::Rejected,
                    };
                    self.reply_to_client(pending.id, reply);
                }
                Ok(())
            }
            // The workload ignores refused transfers: the next decision simply tries again.
            Output::TransferRejected { .. } => Ok(()),
            Output::RestoreSnapshot(snapshot) => self.restore_snapshot(id, &snapshot),
            // The host only reports applied indexes past the latest snapshot: a refusal is a
            // bug in the core or in the host.
            Output::SnapshotRejected { index, error } => Err(Violation {
                property: Property::SnapshotSafety,
                detail: format!("{id} refused a snapshot at {}: {error}", index.0),
            }),
            // `Output` is non-exhaustive: a kind the simulator does not execute would silently
            // weaken every run, so it stops the run loudly instead.
            other => panic!("the simulator does not execute {other:?}"),
        }
    }

    /// Applies committed entries to the host's state machine, answers the clients whose
    /// proposals they are, records the cluster-wide applied log, and serves reads that were
    /// waiting for these entries.
    fn apply_entries(&mut self, id: NodeId, entries: &[Entry<KvCommand>]) {
        for entry in entries {
            let host = self.host(id);
            let output = host.store.apply(entry);
            host.applied = entry.index;
            let pending = host.pending.remove(&entry.index);
            if entry.index.0 as usize > self.applied_log.len() {
                if entry.payload.membership().is_some() {
                    self.stats.membership_committed += 1;
                }
                self.applied_log.push(entry.clone());
            }
            let Some((request, term)) = pending else { continue };
            let reply = match output {
                Some(output) if entry.term == term => Reply::Ok { output, index: entry.index.0 },
                // Overwritten by a later leader's entry (or a stale session request).
                _ => Reply::Lost,
            };
            self.reply_to_client(request, reply);
        }
        self.serve_ready_reads(id);
    }

    /// Answers every ReadIndex read whose index this host has applied.
    fn serve_ready_reads(&mut self, id: NodeId) {
        let host = self.host(id);
        let applied = host.applied;
        let ready: Vec<_> = host
            .reads
            .iter()
            .filter(|(_, read)| read.ready_at.is_some_and(|index| index <= applied))
            .map(|(&read_id, _)| read_id)
            .collect();
        for read_id in ready {
            let host = self.host(id);
            let read = host.reads.remove(&read_id).expect("listed above");
            let output = host.store.read(&read.op);
            self.reply_to_client(read.id, Reply::Ok { output, index: applied.0 });
        }
    }

    fn persist(
        &mut self,
        id: NodeId,
        leading: bool,
        change: Persist<KvCommand>,
    ) -> Result<(), Violation> {
        // One FIFO log writer: background writes land before any later write. Their
        // acknowledgement is a new input, so it waits until this step's outputs are done.
        if let Some((index, term)) = self.land_background_writes(id, u64::MAX)? {
            let incarnation = self.host(id).incarnation;
            self.schedule(0, Event::PersistedAck { node: id, incarnation, index, term });
        }
        self.write_to_disk(id, leading, change)
    }

    /// A background write (parallel leader writes) goes to a slow disk; it completes after a
    /// latency drawn from the profile, or earlier when a later write has to pass it.
    fn persist_in_background(&mut self, id: NodeId, change: Persist<KvCommand>) {
        let delay = self.mechanics_rng.between(0, self.profile.disk_latency_max_us);
        let host = self.host(id);
        host.write_sequence += 1;
        let (sequence, incarnation) = (host.write_sequence, host.incarnation);
        host.background_writes.push_back((sequence, change));
        self.schedule(delay, Event::DiskDone { node: id, incarnation, sequence });
    }

    /// Lands every background write of `id` up to `sequence`, then tells the node how far its
    /// log is durable.
    pub(crate) fn complete_background_writes(
        &mut self,
        id: NodeId,
        sequence: u64,
    ) -> Result<(), Violation> {
        if let Some((index, term)) = self.land_background_writes(id, sequence)? {
            self.step_node(id, Input::Persisted { index, term })?;
        }
        Ok(())
    }

    /// Writes the background writes up to `sequence` to disk; returns the last entry written.
    fn land_background_writes(
        &mut self,
        id: NodeId,
        sequence: u64,
    ) -> Result<Option<(LogIndex, Term)>, Violation> {
        let mut durable = None;
        while self.host(id).background_writes.front().is_some_and(|(s, _)| *s <= sequence) {
            let (_, change) = self.host(id).background_writes.pop_front().expect("checked");
            if let Persist::Append(entries) = &change {
                durable = entries.last().map(|last| (last.index, last.term));
            }
            self.write_to_disk(id, false, change)?;
        }
        Ok(durable)
    }

    fn write_to_disk(
        &mut self,
        id: NodeId,
        leading: bool,
        change: Persist<KvCommand>,
    ) -> Result<(), Violation> {
        let disk = &self.hosts[(id.0 - 1) as usize].disk;
        self.checker.on_persist(id, leading, &change, disk)?;
        let host = self.host(id);
        host.disk.apply(&change);
        if let (Persist::Append(entries), Some(node)) = (change, host.node.as_mut()) {
            // Written: the vector goes back to the node, as a runtime would hand it back.
            node.recycle(entries);
        }
        Ok(())
    }

    fn send(&mut self, from: NodeId, to: NodeId, message: Message<KvCommand>) {
        self.stats.messages_sent += 1;
        let planted_drop = self.config.plant == Some(crate::world::PlantedBug::DropSnapshotChunks)
            && matches!(&message, Message::InstallSnapshot(chunk) if !chunk.data.is_empty());
        let fate = if planted_drop {
            Fate::Drop("planted")
        } else {
            self.network.route(from, to, &self.profile)
        };
        match fate {
            Fate::Drop(reason) => {
                self.stats.messages_dropped += 1;
                let summary = MessageSummary::of(&message);
                let sent_us = self.now_us;
                self.trace(TraceEvent::Drop {
                    from: from.0,
                    to: to.0,
                    message: summary,
                    reason,
                    sent_us,
                });
            }
            Fate::Deliver { delay_us, duplicate_us } => {
                if let Some(duplicate_us) = duplicate_us {
                    self.stats.messages_duplicated += 1;
                    let summary = MessageSummary::of(&message);
                    self.trace(TraceEvent::Duplicate { from: from.0, to: to.0, message: summary });
                    let copy = message.clone();
                    let event = Event::Deliver { from, to, message: copy, sent_us: self.now_us };
                    self.schedule(duplicate_us, event);
                }
                self.schedule(delay_us, Event::Deliver { from, to, message, sent_us: self.now_us });
            }
        }
    }

    /// Tells the checker about a commit index that advanced during the last step.
    fn report_commit(&mut self, id: NodeId) -> Result<(), Violation> {
        let host = &mut self.hosts[(id.0 - 1) as usize];
        let Some(node) = host.node.as_ref() else { return Ok(()) };
        let commit = node.commit_index();
        if commit == host.reported_commit {
            return Ok(());
        }
        host.reported_commit = commit;
        self.checker.on_commit(id, node.term(), commit, node.log_entries())?;
        self.tracer.record(self.now_us, TraceEvent::Commit { node: id.0, index: commit.0 });
        Ok(())
    }

    /// Crashes `id`; it restarts `down_us` later (at once if faults have stopped).
    pub(crate) fn crash_node(&mut self, id: NodeId, mid_step: bool, down_us: u64) {
        self.stats.crashes += 1;
        self.host(id).crash();
        if self.config.plant == Some(crate::world::PlantedBug::LoseLastEntryOnCrash) {
            self.host(id).disk.entries.pop();
        }
        self.trace(TraceEvent::Crash { node: id.0, mid_step });
        let delay = if self.in_safety_phase() { down_us } else { 0 };
        self.schedule(delay, Event::Restart(id));
    }

    pub(crate) fn restart_node(&mut self, id: NodeId) -> Result<(), Violation> {
        if self.host(id).is_up() {
            return Ok(());
        }
        if let Err(error) = self.host(id).restart() {
            return Err(Violation {
                property: Property::RestartFromDisk,
                detail: format!("{id} cannot restart from what it persisted: {error}"),
            });
        }
        self.checker.on_restart(id);
        self.trace(TraceEvent::Restart { node: id.0 });
        Ok(())
    }

    pub(crate) fn resume_node(&mut self, id: NodeId) -> Result<(), Violation> {
        let now = self.now_us;
        let host = self.host(id);
        if !host.paused {
            return Ok(());
        }
        host.paused = false;
        // A resumed process first sees the time that passed (its clock kept running), then
        // the messages that queued up — the order a runtime must keep for lease reads.
        let missed_ticks = (now - host.paused_at_us) / host.tick_period_us.max(1);
        let backlog = std::mem::take(&mut host.backlog);
        self.trace(TraceEvent::Resume { node: id.0, backlog: backlog.len() });
        let ticks = std::iter::repeat_n(Input::Tick, missed_ticks as usize);
        for input in ticks.chain(backlog) {
            self.step_node(id, input)?;
            if !self.host(id).is_up() {
                break;
            }
        }
        self.forget_leader_loss_if_recovered();
        Ok(())
    }
}

/// Membership changes use proposal ids with the top bit set, apart from client requests.
pub(crate) const MEMBERSHIP_PROPOSAL: u64 = 1 << 63;

fn is_membership_change(proposal: stepraft::ProposalId) -> bool {
    proposal.0 & MEMBERSHIP_PROPOSAL != 0
}
