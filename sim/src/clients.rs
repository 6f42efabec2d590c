//! Client behaviour in the world: sending requests, answering them, redirects, timeouts, and
//! the history of every operation.

use stepraft::{Input, NodeId, Proposal};

use crate::checker::Violation;
use crate::history::{KvOp, OpOutcome, Operation};
use crate::host::HostRead;
use crate::kv::KvCommand;
use crate::schedule::{EventKind, ScheduledEvent};
use crate::trace::TraceEvent;
use crate::whitebox::Placed;
use crate::workload::{ReadMode, Reply, RequestId};
use crate::world::{Event, Simulation};

impl Simulation {
    pub(crate) fn client_wakes(&mut self, client: u64) {
        if !self.in_safety_phase() || self.clients[client as usize].outstanding.is_some() {
            // Once faults stop, clients only finish what they started.
            return;
        }
        let keys = self.config.keys;
        let (op, mode) = self.clients[client as usize].draw(keys, &mut self.client_rng);
        let kind = EventKind::ClientOp { client, op: op.clone(), mode };
        self.recorded.push(ScheduledEvent { at_us: self.now_us, kind });
        let id = self.clients[client as usize].begin_with(self.now_us, op, mode);
        self.send_request(id, 1, 0);
    }

    /// A scheduled operation for `client`: it starts now if the client is idle, else once
    /// the client's current request ends.
    pub(crate) fn scripted_client_op(&mut self, client: u64, op: KvOp, mode: ReadMode) {
        let Some(state) = self.clients.get_mut(client as usize) else { return };
        state.script.push_back((op, mode));
        self.start_next_scripted(client);
    }

    fn start_next_scripted(&mut self, client: u64) {
        // Once faults stop, clients only finish what they started.
        if !self.in_safety_phase() {
            return;
        }
        let state = &mut self.clients[client as usize];
        if state.outstanding.is_some() {
            return;
        }
        let Some((op, mode)) = state.script.pop_front() else { return };
        let id = state.begin_with(self.now_us, op, mode);
        self.send_request(id, 1, 0);
    }

    /// Sends (or re-sends, after `delay_us`) the client's request to the node it believes
    /// leads.
    fn send_request(&mut self, id: RequestId, attempt: u32, delay_us: u64) {
        let client = &mut self.clients[id.client as usize];
        let to = client.leader_guess;
        if let Some(outstanding) = &mut client.outstanding {
            outstanding.attempt = attempt;
        }
        self.trace(TraceEvent::Invoke { client: id.client, request: id.request, node: to.0 });
        let latency = self.network.latency(&self.profile);
        self.schedule(delay_us + latency, Event::ClientSend { id, to });
        let timeout = delay_us + self.timing.timeout_us;
        self.schedule(timeout, Event::ClientTimeout { id, attempt });
    }

    /// A request reaches node `to`: a write (or a read through the log) is proposed; a read in
    /// ReadIndex mode asks the node for a read point.
    pub(crate) fn client_request_arrives(
        &mut self,
        id: RequestId,
        to: NodeId,
    ) -> Result<(), Violation> {
        let Some(outstanding) = self.clients[id.client as usize].waiting_for(id).cloned() else {
            return Ok(()); // the client moved on; this is a stale copy
        };
        if !self.host(to).is_up() {
            return Ok(()); // a crashed node never answers; the client will time out
        }
        if outstanding.op.is_read() && outstanding.mode == ReadMode::ReadIndex {
            let read = HostRead { id, op: outstanding.op, ready_at: None };
            self.host(to).reads.insert(id.read_id(), read);
            return self.step_node(to, Input::ReadIndex(id.read_id()));
        }
        let command = KvCommand::new(id, outstanding.op);
        self.step_node(to, Input::Propose(Proposal::one(id.proposal_id(), command)))
    }

    pub(crate) fn reply_to_client(&mut self, id: RequestId, reply: Reply) {
        let latency = self.network.latency(&self.profile);
        self.schedule(latency, Event::ClientReply { id, reply });
    }

    pub(crate) fn client_reply_arrives(&mut self, id: RequestId, reply: Reply) {
        if self.clients[id.client as usize].waiting_for(id).is_none() {
            return; // a late answer to an earlier attempt
        }
        match reply {
            Reply::Ok { output, index } => {
                let outstanding = self.clients[id.client as usize].outstanding.clone();
                let outstanding = outstanding.expect("waiting, checked above");
                if !outstanding.op.is_read() {
                    self.acknowledged_max = self.acknowledged_max.max(index);
                    self.stats.writes_ok += 1;
                } else {
                    self.stats.reads_ok += 1;
                }
                self.stats.client_ok += 1;
                let served_by_read_index =
                    outstanding.op.is_read() && outstanding.mode == ReadMode::ReadIndex;
                self.placed.push(Placed {
                    operation: self.history.len(),
                    index,
                    after_entry: served_by_read_index,
                });
                self.record(id, outstanding.op, outstanding.invoked_us, OpOutcome::Ok(output));
                self.finish(id, "ok", Some(index));
            }
            Reply::Redirect(hint) => self.retry(id, hint),
            Reply::Rejected | Reply::Lost => self.retry(id, None),
        }
    }

    fn record(&mut self, id: RequestId, op: KvOp, invoked_us: u64, outcome: OpOutcome) {
        let (client, completed_us) = (id.client, self.now_us);
        self.history.push(Operation { client, op, invoked_us, completed_us, outcome });
    }

    pub(crate) fn client_times_out(&mut self, id: RequestId, attempt: u32) {
        let current = self.clients[id.client as usize].waiting_for(id);
        if current.is_some_and(|outstanding| outstanding.attempt == attempt) {
            self.retry(id, None);
        }
    }

    fn retry(&mut self, id: RequestId, hint: Option<NodeId>) {
        let index = id.client as usize;
        let Some(outstanding) = self.clients[index].outstanding.clone() else { return };
        if outstanding.attempt >= self.timing.attempts_max {
            self.stats.client_unknown += 1;
            self.record(id, outstanding.op, outstanding.invoked_us, OpOutcome::Unknown);
            self.finish(id, "unknown", None);
            return;
        }
        let ids = self.ids.clone();
        self.clients[index].retarget(hint, &ids, &mut self.routing_rng);
        // Follow a redirect at once; without a hint (no leader known, e.g. mid-election) back
        // off, as a real client would, instead of spinning through the cluster.
        let delay = if hint.is_some() { 0 } else { self.timing.retry_backoff_us };
        self.send_request(id, outstanding.attempt + 1, delay);
    }

    fn finish(&mut self, id: RequestId, outcome: &'static str, index: Option<u64>) {
        self.clients[id.client as usize].outstanding = None;
        self.trace(TraceEvent::Complete { client: id.client, request: id.request, outcome, index });
        if self.script.is_some() {
            // The schedule says when operations start; a queued one starts now.
            self.start_next_scripted(id.client);
        } else {
            let think = self.client_rng.below(self.timing.think_max_us);
            self.schedule(think, Event::ClientWake { client: id.client });
        }
    }
}
