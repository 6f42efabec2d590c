//! Client behaviour in the world: sending requests, answering them, redirects, timeouts.

use stepraft::{Input, NodeId, Proposal};

use crate::checker::Violation;
use crate::trace::TraceEvent;
use crate::workload::{Reply, SimCommand};
use crate::world::{Event, Simulation};

impl Simulation {
    pub(crate) fn client_wakes(&mut self, client: u64) {
        if !self.in_safety_phase() || self.clients[client as usize].outstanding.is_some() {
            // Once faults stop, clients only finish what they started.
            return;
        }
        let command = self.clients[client as usize].begin(self.now_us);
        self.send_request(command, 1, 0);
    }

    /// Sends (or re-sends, after `delay_us`) the client's request to the node it believes
    /// leads.
    fn send_request(&mut self, command: SimCommand, attempt: u32, delay_us: u64) {
        let client = &mut self.clients[command.client as usize];
        let to = client.leader_guess;
        if let Some(outstanding) = &mut client.outstanding {
            outstanding.attempt = attempt;
        }
        self.trace(TraceEvent::Invoke {
            client: command.client,
            request: command.request,
            node: to.0,
        });
        let latency = self.network.latency(&self.profile);
        self.schedule(delay_us + latency, Event::ClientSend { command, to });
        let timeout = delay_us + self.timing.timeout_us;
        self.schedule(timeout, Event::ClientTimeout { command, attempt });
    }

    pub(crate) fn client_request_arrives(
        &mut self,
        command: SimCommand,
        to: NodeId,
    ) -> Result<(), Violation> {
        // A crashed node never answers; the client will time out.
        let proposal = Proposal::one(command.proposal_id(), command);
        self.step_node(to, Input::Propose(proposal))
    }

    pub(crate) fn reply_to_client(&mut self, command: SimCommand, reply: Reply) {
        let latency = self.network.latency(&self.profile);
        self.schedule(latency, Event::ClientReply { command, reply });
    }

    pub(crate) fn client_reply_arrives(&mut self, command: SimCommand, reply: Reply) {
        let index = command.client as usize;
        if !self.clients[index].is_waiting_for(command) {
            return; // a late answer to an earlier attempt
        }
        match reply {
            Reply::Ok { index: log_index } => {
                self.acknowledged_max = self.acknowledged_max.max(log_index);
                self.stats.client_ok += 1;
                self.finish(command, "ok", Some(log_index));
            }
            Reply::Redirect(hint) => self.retry(command, hint),
            Reply::Rejected | Reply::Lost => self.retry(command, None),
        }
    }

    pub(crate) fn client_times_out(&mut self, command: SimCommand, attempt: u32) {
        let client = &self.clients[command.client as usize];
        let current = client.outstanding.filter(|outstanding| outstanding.command == command);
        if current.is_some_and(|outstanding| outstanding.attempt == attempt) {
            self.retry(command, None);
        }
    }

    fn retry(&mut self, command: SimCommand, hint: Option<NodeId>) {
        let index = command.client as usize;
        let Some(outstanding) = self.clients[index].outstanding else { return };
        if outstanding.attempt >= self.timing.attempts_max {
            self.stats.client_unknown += 1;
            self.finish(command, "unknown", None);
            return;
        }
        let ids = self.ids.clone();
        self.clients[index].retarget(hint, &ids, &mut self.client_rng);
        // Follow a redirect at once; without a hint (no leader known, e.g. mid-election) back
        // off, as a real client would, instead of spinning through the cluster.
        let delay = if hint.is_some() { 0 } else { self.timing.retry_backoff_us };
        self.send_request(command, outstanding.attempt + 1, delay);
    }

    fn finish(&mut self, command: SimCommand, outcome: &'static str, index: Option<u64>) {
        self.clients[command.client as usize].outstanding = None;
        self.trace(TraceEvent::Complete {
            client: command.client,
            request: command.request,
            outcome,
            index,
        });
        let think = self.client_rng.below(self.timing.think_max_us);
        self.schedule(think, Event::ClientWake { client: command.client });
    }
}
