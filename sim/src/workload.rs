//! The client workload: clients that issue key-value operations through whoever they believe
//! leads, follow redirects, time out and retry — as a real client library would.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use stepraft::{NodeId, ProposalId, ReadId};

use crate::history::{KvOp, KvOutput, Value};
use crate::rng::SimRng;

/// A client request's identity: the client and its request number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct RequestId {
    /// The client.
    pub client: u64,
    /// The client's request number (increasing).
    pub request: u64,
}

impl RequestId {
    /// The proposal id that carries this request through the node.
    pub fn proposal_id(&self) -> ProposalId {
        ProposalId(self.encode())
    }

    /// The read id that carries this request through the node.
    pub fn read_id(&self) -> ReadId {
        ReadId(self.encode())
    }

    fn encode(&self) -> u64 {
        (self.client << 40) | (self.request & ((1 << 40) - 1))
    }

    /// The request a proposal or read id was made from.
    pub fn decode(id: u64) -> RequestId {
        RequestId { client: id >> 40, request: id & ((1 << 40) - 1) }
    }
}

/// How a read is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadMode {
    /// Through the log, like a write.
    Log,
    /// With ReadIndex (thesis §6.4): no log entry.
    ReadIndex,
}

/// What a node answers a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Done: the output, and the log index it is ordered at (for a read, the applied index
    /// it was served at).
    Ok {
        /// What the operation returned.
        output: KvOutput,
        /// Its position in the log order.
        index: u64,
    },
    /// Not the leader; try this one.
    Redirect(Option<NodeId>),
    /// Refused for another reason (backpressure, a read that could not be confirmed, ...).
    Rejected,
    /// Accepted, then overwritten by a later leader: not committed there.
    Lost,
}

/// One client's state.
#[derive(Clone, Debug)]
pub struct Client {
    /// The client id.
    pub id: u64,
    /// The node the client believes leads.
    pub leader_guess: NodeId,
    /// The request in progress, if any.
    pub outstanding: Option<Outstanding>,
    /// Scripted operations waiting for the client to be idle (when running a schedule).
    pub script: VecDeque<(KvOp, ReadMode)>,
    next_request: u64,
}

/// A request a client is waiting on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outstanding {
    /// Its identity.
    pub id: RequestId,
    /// The operation.
    pub op: KvOp,
    /// How a read is served (ignored for writes).
    pub mode: ReadMode,
    /// When it was first sent.
    pub invoked_us: u64,
    /// How many times it has been sent.
    pub attempt: u32,
}

/// Timing of the client workload.
#[derive(Clone, Copy, Debug)]
pub struct ClientTiming {
    /// Most think time between two requests.
    pub think_max_us: u64,
    /// How long a client waits for an answer before retrying elsewhere.
    pub timeout_us: u64,
    /// Attempts before the client gives up on a request (outcome unknown).
    pub attempts_max: u32,
    /// Wait before retrying when no leader is known.
    pub retry_backoff_us: u64,
}

impl Client {
    /// A client that first guesses `leader_guess`.
    pub fn new(id: u64, leader_guess: NodeId) -> Client {
        Client { id, leader_guess, outstanding: None, script: VecDeque::new(), next_request: 1 }
    }

    /// Starts a new request with a random operation on one of `keys` keys.
    pub fn begin(&mut self, now_us: u64, keys: u64, rng: &mut SimRng) -> RequestId {
        let (op, mode) = self.draw(keys, rng);
        self.begin_with(now_us, op, mode)
    }

    /// Draws the next operation: a random kind on one of `keys` keys, with a value unique to
    /// the request (so that a read tells exactly which writes it saw).
    pub fn draw(&self, keys: u64, rng: &mut SimRng) -> (KvOp, ReadMode) {
        let id = RequestId { client: self.id, request: self.next_request };
        let key = rng.below(keys.max(1));
        // Values are unique per request so that a read tells exactly which writes it saw.
        let value: Value = format!("{}.{};", id.client, id.request).into();
        let op = match rng.below(20) {
            0..=4 => KvOp::Put { key, value },
            5..=8 => KvOp::Append { key, value },
            9..=10 => {
                let previous = || format!("{}.{};", id.client, id.request - 1).into();
                let expected = rng.chance(0.3).then(previous);
                KvOp::Cas { key, expected, new: value }
            }
            11 => KvOp::Delete { key },
            _ => KvOp::Get { key },
        };
        let mode = if rng.chance(0.3) { ReadMode::Log } else { ReadMode::ReadIndex };
        (op, mode)
    }

    /// Starts a new request for `op`.
    pub fn begin_with(&mut self, now_us: u64, op: KvOp, mode: ReadMode) -> RequestId {
        let id = RequestId { client: self.id, request: self.next_request };
        self.next_request += 1;
        self.outstanding = Some(Outstanding { id, op, mode, invoked_us: now_us, attempt: 1 });
        id
    }

    /// The outstanding request, if it is `id`.
    pub fn waiting_for(&self, id: RequestId) -> Option<&Outstanding> {
        self.outstanding.as_ref().filter(|outstanding| outstanding.id == id)
    }

    /// Picks the node for the next attempt: the hint if there is one, else a random other node.
    pub fn retarget(&mut self, hint: Option<NodeId>, nodes: &[NodeId], rng: &mut SimRng) {
        self.leader_guess = match hint {
            Some(leader) => leader,
            None => {
                let others: Vec<NodeId> =
                    nodes.iter().copied().filter(|&n| n != self.leader_guess).collect();
                rng.pick(&others).copied().unwrap_or(self.leader_guess)
            }
        };
    }
}
