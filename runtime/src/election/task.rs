//! The task that owns an election node: it ticks it, steps what arrives in its inbox and on
//! its control channel, and executes the outputs of every step, in order, before the next.

use std::collections::BTreeSet;
use std::time::Duration;

use stepraft::{Input, Node, NodeId, Output};
use tokio::sync::{mpsc, watch};

use super::peer::{ElectionMessage, ElectionPeer, Links};
use super::{Control, ElectionStatus, LeaderChange};
use crate::driver::clock::TickClock;

/// Where the task reports leadership.
pub(super) struct Reports {
    pub changes: mpsc::UnboundedSender<LeaderChange>,
    pub status: watch::Sender<ElectionStatus>,
}

pub(super) struct ElectionTask {
    node: Node<()>,
    links: Links,
    /// Nodes announced as departed whose handle is kept while they are still members here:
    /// a voter that cannot leave yet (below `min_voters`) must still hear from its leader.
    departed: BTreeSet<NodeId>,
    reports: Reports,
    /// The outputs of the step being executed; kept for its allocation.
    outputs: Vec<Output<()>>,
}

impl ElectionTask {
    pub(super) fn new(node: Node<()>, links: Links, reports: Reports) -> ElectionTask {
        ElectionTask { node, links, departed: BTreeSet::new(), reports, outputs: Vec::new() }
    }

    /// Runs until every control sender is dropped (or the task is aborted).
    pub(super) async fn run<P: ElectionPeer>(
        mut self,
        mut inbox: mpsc::Receiver<ElectionMessage>,
        mut control: mpsc::Receiver<Control<P>>,
        tick: Duration,
    ) {
        // As in the driver: the ticks that elapsed while the task could not run come before
        // any input that follows them, so that a leader frozen past its election timeout
        // learns that it may have been deposed before it acts on anything else.
        let burst_max = 4 * u64::from(self.node.config().election_ticks);
        let mut clock = TickClock::new(tick, tokio::time::Instant::now(), burst_max);
        let mut inbox_open = true;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(clock.next_due()) => {
                    self.step_elapsed_ticks(&mut clock);
                }
                message = inbox.recv(), if inbox_open => {
                    self.step_elapsed_ticks(&mut clock);
                    match message {
                        Some(ElectionMessage { from, message }) => {
                            // From an unknown sender too: the core decides what it is worth.
                            self.step(Input::Receive { from, message });
                        }
                        // Messages may still come to a node whose peers have stopped.
                        None => inbox_open = false,
                    }
                }
                command = control.recv() => {
                    self.step_elapsed_ticks(&mut clock);
                    match command {
                        Some(command) => self.on_control(command),
                        None => return,
                    }
                }
            }
        }
    }

    fn step_elapsed_ticks(&mut self, clock: &mut TickClock) {
        for _ in 0..clock.take_due(tokio::time::Instant::now()) {
            self.step(Input::Tick);
        }
    }

    fn on_control<P: ElectionPeer>(&mut self, command: Control<P>) {
        match command {
            Control::AddNode(peer) => {
                let id = peer.id();
                // The core ignores its own announcement, and a node sends nothing to itself.
                if id == self.node.id() {
                    return;
                }
                self.departed.remove(&id);
                self.links.insert(id, peer);
                self.step(Input::AddNode(id));
            }
            Control::RemoveNode(id) => {
                self.departed.insert(id);
                self.step(Input::RemoveNode(id));
            }
        }
    }

    /// Steps `input` and executes its outputs in order. The status is published first, since
    /// the node's state is final once it has stepped: whoever hears of a change there finds
    /// the status at least as new.
    fn step(&mut self, input: Input<()>) {
        let mut outputs = std::mem::take(&mut self.outputs);
        self.node.step_into(input, &mut outputs);
        self.publish_status();
        for output in outputs.drain(..) {
            self.execute(output);
        }
        self.outputs = outputs;
        self.forget_departed();
    }

    fn execute(&mut self, output: Output<()>) {
        match output {
            // The node's own memory is all it keeps, and it ends with the task (see the module
            // documentation): there is nothing to write before the outputs that follow.
            // (`PersistAsync` comes only with `leader_persist_acks`, which is off.)
            Output::Persist(_) | Output::PersistAsync(_) => {}
            Output::Send { to, message } => self.links.send(to, message),
            Output::LeaderChanged { term, leader } => {
                let id = self.node.id().0;
                let leader_id = leader.map(|leader| leader.0);
                tracing::info!(node = id, term = term.0, leader = leader_id, "leadership changed");
                // A dropped receiver means nobody listens; the node keeps serving its peers.
                let _ = self.reports.changes.send(LeaderChange { term, leader });
            }
            Output::RoleChanged { term, role } => {
                tracing::debug!(node = self.node.id().0, term = term.0, role = ?role, "role changed");
            }
            // Committed entries are no-ops and configurations: there is no state machine.
            Output::Apply(entries) => self.node.recycle(entries),
            // Answers to requests this task never makes (proposals, reads, snapshots,
            // campaigns, transfers), and a snapshot to restore, which needs no state machine.
            Output::RestoreSnapshot(_)
            | Output::Accepted { .. }
            | Output::Rejected { .. }
            | Output::ReadReady { .. }
            | Output::ReadRejected { .. }
            | Output::SnapshotRejected { .. }
            | Output::CampaignRejected { .. }
            | Output::TransferRejected { .. } => {}
            // `Output` is non-exhaustive; every kind this core version has is handled above.
            _ => {}
        }
    }

    fn publish_status(&mut self) {
        let node = &self.node;
        self.reports.status.send_if_modified(|status| {
            let changed = status.term != node.term()
                || status.leader != node.leader()
                || status.role != node.role()
                || status.membership != *node.membership();
            if changed {
                *status = ElectionStatus::of(node);
            }
            changed
        });
    }

    /// Drops the handles of departed nodes that are no longer members here.
    fn forget_departed(&mut self) {
        let membership = self.node.membership();
        let gone: Vec<NodeId> =
            self.departed.iter().copied().filter(|&id| !membership.is_member(id)).collect();
        for id in gone {
            self.departed.remove(&id);
            self.links.remove(id);
        }
    }
}
