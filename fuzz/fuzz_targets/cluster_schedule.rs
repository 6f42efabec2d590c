//! A fuzzer-chosen schedule for a whole cluster: the input's bytes pick, one event at a time,
//! which enabled event happens next in a 3- or 5-node cluster — deliver, drop or duplicate an
//! in-flight message, tick a node, crash it (between steps, or part-way through the outputs of
//! its next step) or restart it from its disk, cut or heal a link, propose a command, start an
//! election or a leadership transfer, change the membership among the cluster's nodes (single
//! changes, learners, joint consensus), land a node's background writes (parallel leader
//! writes).
//!
//! Outputs are executed in order, as `stepraft_sim`'s stepping does: persists into per-node
//! `DurableState`s, sends into the in-flight list, applies recorded. Every event is fed to the
//! simulator's `SafetyChecker` (Election Safety, Log Matching, Leader Completeness, State
//! Machine Safety, Leader Append-Only, monotonic commit/applied/durable term); a violation, or a
//! node that cannot restore what it persisted, panics.
//!
//! Byte 0 picks the cluster: bit 0 = 5 nodes (else 3), bit 1 = PreVote, bit 2 = CheckQuorum,
//! bit 3 = parallel leader writes, bit 4 = one entry per AppendEntries, bits 5-6 = rng seed,
//! bit 7 = no automatic leave of a joint configuration.
#![no_main]

use std::collections::{BTreeSet, VecDeque};

use arbitrary::{Result as ArbResult, Unstructured};
use libfuzzer_sys::fuzz_target;
use stepraft::{
    Config, DurableState, Input, LogIndex, MembershipChange, Message, Node, NodeId, Output,
    Persist, Proposal, ProposalId, Role, Term,
};
use stepraft_sim::checker::{SafetyChecker, Violation};
use stepraft_sim::history::KvOp;
use stepraft_sim::kv::KvCommand;
use stepraft_sim::workload::RequestId;

/// Whether to print every event, input and output (set `STEPRAFT_FUZZ_TRACE=1`), to read a
/// failing schedule.
fn tracing() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("STEPRAFT_FUZZ_TRACE").is_some())
}

macro_rules! trace {
    ($($arg:tt)*) => {
        if tracing() {
            eprintln!($($arg)*);
        }
    };
}

/// Most events in one run.
const EVENTS_MAX: usize = 2_000;
/// Most messages in flight; sends beyond are lost (the network may always lose a message).
const IN_FLIGHT_MAX: usize = 256;

type Cmd = KvCommand;

/// One node with its disk and what survives a crash (the disk) or not (the rest).
struct Host {
    id: NodeId,
    config: Config,
    /// `None` while crashed.
    node: Option<Node<Cmd>>,
    disk: DurableState<Cmd>,
    /// Background writes (`PersistAsync`) not yet on disk, in order.
    background: VecDeque<Persist<Cmd>>,
    /// The last entry landed by background writes and not yet acknowledged to the node.
    unacked: Option<(LogIndex, Term)>,
    /// The commit index last reported to the checker in this lifetime.
    reported_commit: LogIndex,
    /// The next step crashes the node after this many of its outputs (clamped).
    crash_armed: Option<u8>,
}

struct Cluster {
    hosts: Vec<Host>,
    in_flight: Vec<(NodeId, NodeId, Message<Cmd>)>,
    /// Cut links, as (lower id, higher id); a cut link loses messages both ways.
    cut: BTreeSet<(NodeId, NodeId)>,
    checker: SafetyChecker,
    next_request: u64,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Deliver,
    Drop,
    Duplicate,
    Tick,
    Propose,
    Crash,
    CrashMidStep,
    Restart,
    Cut,
    Heal,
    Campaign,
    Transfer,
    ChangeMembership,
    DiskDone,
}

fn fail(violation: Violation) -> ! {
    panic!("safety violation: {}: {}", violation.property, violation.detail)
}

fn link(a: NodeId, b: NodeId) -> (NodeId, NodeId) {
    (a.min(b), a.max(b))
}

impl Cluster {
    fn new(flags: u8) -> Cluster {
        let count = if flags & 1 != 0 { 5 } else { 3 };
        let ids: Vec<NodeId> = (1..=count).map(NodeId).collect();
        let hosts = ids
            .iter()
            .map(|&id| {
                let mut config = Config::new(id, ids.iter().copied());
                config.pre_vote = flags & 2 != 0;
                config.check_quorum = flags & 4 != 0;
                config.leader_persist_acks = flags & 8 != 0;
                if flags & 16 != 0 {
                    config.entries_per_message_max = 1;
                }
                // Short timers, so that elections happen within a few fuzzer-chosen ticks.
                config.election_ticks = 3;
                config.heartbeat_ticks = 1;
                config.rng_seed = id.0 * 8 + u64::from((flags >> 5) & 3);
                config.auto_leave_joint = flags & 128 == 0;
                let node = Node::new(config.clone()).expect("valid config");
                Host {
                    id,
                    config,
                    node: Some(node),
                    disk: DurableState::default(),
                    background: VecDeque::new(),
                    unacked: None,
                    reported_commit: LogIndex(0),
                    crash_armed: None,
                }
            })
            .collect();
        Cluster {
            hosts,
            in_flight: Vec::new(),
            cut: BTreeSet::new(),
            checker: SafetyChecker::new(),
            next_request: 1,
        }
    }

    fn host(&mut self, id: NodeId) -> &mut Host {
        &mut self.hosts[(id.0 - 1) as usize]
    }

    fn up(&self) -> Vec<NodeId> {
        self.hosts.iter().filter(|h| h.node.is_some()).map(|h| h.id).collect()
    }

    fn down(&self) -> Vec<NodeId> {
        self.hosts.iter().filter(|h| h.node.is_none()).map(|h| h.id).collect()
    }

    fn links(&self) -> Vec<(NodeId, NodeId)> {
        let mut links = Vec::new();
        for a in &self.hosts {
            for b in &self.hosts {
                if a.id < b.id {
                    links.push((a.id, b.id));
                }
            }
        }
        links
    }

    fn with_background(&self) -> Vec<NodeId> {
        self.hosts
            .iter()
            .filter(|h| h.node.is_some() && (!h.background.is_empty() || h.unacked.is_some()))
            .map(|h| h.id)
            .collect()
    }

    /// The events that can happen now, each as often as its weight.
    fn enabled(&self) -> Vec<Kind> {
        let mut kinds = Vec::new();
        let mut add = |kind, weight| kinds.extend(std::iter::repeat_n(kind, weight));
        let up = self.up().len();
        if !self.in_flight.is_empty() {
            add(Kind::Deliver, 8);
            add(Kind::Drop, 1);
            if self.in_flight.len() < IN_FLIGHT_MAX {
                add(Kind::Duplicate, 1);
            }
        }
        if up > 0 {
            add(Kind::Tick, 4);
            add(Kind::Propose, 2);
            add(Kind::Crash, 1);
            add(Kind::CrashMidStep, 1);
            add(Kind::Campaign, 1);
            add(Kind::Transfer, 1);
            add(Kind::ChangeMembership, 1);
        }
        if up < self.hosts.len() {
            add(Kind::Restart, 2);
        }
        if self.cut.len() < self.links().len() {
            add(Kind::Cut, 1);
        }
        if !self.cut.is_empty() {
            add(Kind::Heal, 2);
        }
        if !self.with_background().is_empty() {
            add(Kind::DiskDone, 2);
        }
        kinds
    }

    fn event(&mut self, u: &mut Unstructured<'_>) -> ArbResult<()> {
        let kinds = self.enabled();
        let kind = *u.choose(&kinds)?;
        match kind {
            Kind::Deliver => {
                let at = u.choose_index(self.in_flight.len())?;
                let (from, to, message) = self.in_flight.remove(at);
                let cut = self.cut.contains(&link(from, to));
                let up = self.host(to).node.is_some();
                trace!("deliver {from} -> {to} (cut: {cut}, up: {up})");
                if !cut && up {
                    self.step(to, Input::Receive { from, message });
                }
            }
            Kind::Drop => {
                let at = u.choose_index(self.in_flight.len())?;
                let (from, to, message) = self.in_flight.remove(at);
                trace!("drop {from} -> {to}: {message:?}");
            }
            Kind::Duplicate => {
                let at = u.choose_index(self.in_flight.len())?;
                let copy = self.in_flight[at].clone();
                trace!("duplicate {} -> {}: {:?}", copy.0, copy.1, copy.2);
                self.in_flight.push(copy);
            }
            Kind::Tick => {
                let id = *u.choose(&self.up())?;
                self.step(id, Input::Tick);
            }
            Kind::Propose => {
                let id = *u.choose(&self.up())?;
                let key = u64::from(u.int_in_range(0..=2u8)?);
                let request = RequestId { client: id.0, request: self.next_request };
                self.next_request += 1;
                let value = format!("v{}", request.request).into();
                let command = KvCommand::new(request, KvOp::Put { key, value });
                self.step(id, Input::Propose(Proposal::one(request.proposal_id(), command)));
            }
            Kind::Crash => {
                let id = *u.choose(&self.up())?;
                self.crash(id);
            }
            Kind::CrashMidStep => {
                let id = *u.choose(&self.up())?;
                let after = u.arbitrary::<u8>()?;
                trace!(
                    "arm a crash of {id} after {after} outputs of its next step (mod count + 1)"
                );
                self.host(id).crash_armed = Some(after);
            }
            Kind::Restart => {
                let id = *u.choose(&self.down())?;
                self.restart(id);
            }
            Kind::Cut => {
                let open: Vec<_> =
                    self.links().into_iter().filter(|l| !self.cut.contains(l)).collect();
                let chosen = *u.choose(&open)?;
                trace!("cut {} - {}", chosen.0, chosen.1);
                self.cut.insert(chosen);
            }
            Kind::Heal => {
                let cut: Vec<_> = self.cut.iter().copied().collect();
                let chosen = *u.choose(&cut)?;
                trace!("heal {} - {}", chosen.0, chosen.1);
                self.cut.remove(&chosen);
            }
            Kind::Campaign => {
                let id = *u.choose(&self.up())?;
                self.step(id, Input::Campaign);
            }
            Kind::Transfer => {
                let id = *u.choose(&self.up())?;
                let target = NodeId(u64::from(u.int_in_range(1..=self.hosts.len() as u8)?));
                self.step(id, Input::TransferLeadership(target));
            }
            Kind::ChangeMembership => {
                let id = *u.choose(&self.up())?;
                let count = self.hosts.len() as u8;
                let node = NodeId(u64::from(u.int_in_range(1..=count)?));
                let change = match u.int_in_range(0..=6u8)? {
                    0 => MembershipChange::AddVoter(node),
                    1 => MembershipChange::AddLearner(node),
                    2 => MembershipChange::PromoteLearner(node),
                    3 => MembershipChange::DemoteVoter(node),
                    4 => MembershipChange::RemoveNode(node),
                    5 => {
                        let (voters, learners) = (u.arbitrary::<u8>()?, u.arbitrary::<u8>()?);
                        let set = |mask: u8| {
                            (1..=u64::from(count))
                                .filter(|id| mask & (1 << (id - 1)) != 0)
                                .map(NodeId)
                                .collect::<BTreeSet<_>>()
                        };
                        MembershipChange::Replace {
                            voters: set(voters),
                            learners: set(learners & !voters),
                        }
                    }
                    _ => MembershipChange::LeaveJoint,
                };
                let proposal = ProposalId(self.next_request);
                self.next_request += 1;
                self.step(id, Input::ChangeMembership { id: proposal, change });
            }
            Kind::DiskDone => {
                let id = *u.choose(&self.with_background())?;
                // Land one or more background writes, in order, then acknowledge them.
                let pending = self.host(id).background.len();
                let count = if pending == 0 { 0 } else { u.int_in_range(1..=pending)? };
                trace!("disk of {id} lands {count} of {pending} background writes");
                self.land(id, count);
                if let Some((index, term)) = self.host(id).unacked.take() {
                    self.step(id, Input::Persisted { index, term });
                }
            }
        }
        Ok(())
    }

    fn crash(&mut self, id: NodeId) {
        trace!("crash {id}");
        let host = self.host(id);
        host.node = None;
        host.background.clear(); // still in the disk queue: lost with the process
        host.unacked = None;
        host.reported_commit = LogIndex(0);
        host.crash_armed = None;
    }

    fn restart(&mut self, id: NodeId) {
        trace!("restart {id}");
        let host = self.host(id);
        let node = Node::restore(host.config.clone(), host.disk.clone()).unwrap_or_else(|error| {
            panic!("safety violation: restart from disk: {id} cannot restore what it persisted: {error}")
        });
        host.node = Some(node);
        self.checker.on_restart(id);
    }

    /// Lands the first `count` background writes of `id` on its disk.
    fn land(&mut self, id: NodeId, count: usize) {
        for _ in 0..count {
            let Some(change) = self.host(id).background.pop_front() else { break };
            if let Persist::Append(entries) = &change {
                if let Some(last) = entries.last() {
                    self.host(id).unacked = Some((last.index, last.term));
                }
            }
            self.write(id, false, &change);
        }
    }

    /// Writes one change to `id`'s disk, telling the checker first.
    fn write(&mut self, id: NodeId, leading: bool, change: &Persist<Cmd>) {
        if !matches!(change, Persist::HardState(_) | Persist::Append(_) | Persist::Truncate { .. })
        {
            panic!("unknown persist {change:?}");
        }
        let disk = &self.hosts[(id.0 - 1) as usize].disk;
        let result = self.checker.on_persist(id, leading, change, disk);
        result.unwrap_or_else(|violation| fail(violation));
        self.host(id).disk.apply(change);
    }

    fn step(&mut self, id: NodeId, input: Input<Cmd>) {
        let host = self.host(id);
        let Some(node) = host.node.as_mut() else { return };
        let (role_before, term_before) = (node.role(), node.term());
        trace!("step {id}: {input:?}");
        let outputs = node.step_in_place(input);
        let leading = role_before == Role::Leader
            && node.role() == Role::Leader
            && node.term() == term_before;
        let crash_at = host.crash_armed.map(|after| usize::from(after) % (outputs.len() + 1));
        for (position, output) in outputs.into_iter().enumerate() {
            if crash_at == Some(position) {
                self.crash(id);
                return;
            }
            self.execute(id, leading, output);
        }
        if crash_at.is_some() {
            self.crash(id);
            return;
        }
        // Report a commit index that moved during the step.
        let host = &mut self.hosts[(id.0 - 1) as usize];
        let node = host.node.as_ref().expect("up");
        let commit = node.commit_index();
        if commit != host.reported_commit {
            host.reported_commit = commit;
            let result = self.checker.on_commit(id, node.term(), commit, node.log_entries());
            result.unwrap_or_else(|violation| fail(violation));
        }
    }

    fn execute(&mut self, id: NodeId, leading: bool, output: Output<Cmd>) {
        trace!("    {id} output: {output:?}");
        match output {
            Output::Persist(change) => {
                // One FIFO log writer: background writes land before any later write. Their
                // acknowledgement waits for a later `DiskDone` event.
                let pending = self.host(id).background.len();
                self.land(id, pending);
                self.write(id, leading, &change);
            }
            Output::PersistAsync(change) => self.host(id).background.push_back(change),
            Output::Send { to, message } => {
                let cut = self.cut.contains(&link(id, to));
                let known = (1..=self.hosts.len() as u64).contains(&to.0);
                if known && !cut && self.in_flight.len() < IN_FLIGHT_MAX {
                    self.in_flight.push((id, to, message));
                }
            }
            Output::Apply(entries) => {
                self.checker.on_apply(id, &entries).unwrap_or_else(|violation| fail(violation));
            }
            Output::RoleChanged { term, role: Role::Leader } => {
                let host = &self.hosts[(id.0 - 1) as usize];
                let log = host.node.as_ref().expect("a stepping node is up").log_entries();
                self.checker.on_leader(id, term, log).unwrap_or_else(|violation| fail(violation));
            }
            // Accepted, Rejected, ReadReady, ReadRejected, TransferRejected: notifications.
            _ => {}
        }
    }

    fn finish(&self) {
        // Whatever happened, every node restores from its disk.
        for host in &self.hosts {
            if let Err(error) = Node::restore(host.config.clone(), host.disk.clone()) {
                panic!("safety violation: restart from disk: {} cannot restore: {error}", host.id);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, schedule)) = data.split_first() else { return };
    let mut cluster = Cluster::new(flags);
    trace!("config of n1: {:?}", cluster.hosts[0].config);
    let mut u = Unstructured::new(schedule);
    for _ in 0..EVENTS_MAX {
        if u.is_empty() || cluster.event(&mut u).is_err() {
            break;
        }
    }
    cluster.finish();
});
