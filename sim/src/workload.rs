//! The client workload: clients that propose commands through whoever they believe leads,
//! follow redirects, time out and retry — as a real client library would.

use serde::Serialize;
use stepraft::{Command, NodeId, ProposalId};

use crate::rng::{mix, SimRng};

/// The command the simulated clients replicate: who sent it and their request number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SimCommand {
    /// The client.
    pub client: u64,
    /// The client's request number.
    pub request: u64,
}

impl Command for SimCommand {
    fn size_bytes(&self) -> usize {
        16
    }
}

impl SimCommand {
    /// A non-zero fingerprint that tells commands apart (zero is kept for no-ops).
    pub fn fingerprint(&self) -> u64 {
        mix(self.client.wrapping_mul(0x1_0000_0001) ^ mix(self.request)) | 1
    }

    /// The proposal id that carries this command's identity through the node.
    pub fn proposal_id(&self) -> ProposalId {
        ProposalId((self.client << 40) | (self.request & ((1 << 40) - 1)))
    }

    /// The command a proposal id was made from.
    pub fn from_proposal_id(id: ProposalId) -> SimCommand {
        SimCommand { client: id.0 >> 40, request: id.0 & ((1 << 40) - 1) }
    }
}

/// What a node answers a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Committed and applied at `index`.
    Ok {
        /// The log index of the command.
        index: u64,
    },
    /// Not the leader; try this one.
    Redirect(Option<NodeId>),
    /// Refused for another reason (backpressure, ...).
    Rejected,
    /// Accepted, then overwritten by a later leader: the command did not commit there.
    Lost,
}

/// How a client request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Completion {
    /// Acknowledged as committed at this index.
    Ok(u64),
    /// Gave up: the outcome is unknown (it may still commit).
    Unknown,
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
    next_request: u64,
}

/// A request a client is waiting on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outstanding {
    /// The command.
    pub command: SimCommand,
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
        Client { id, leader_guess, outstanding: None, next_request: 1 }
    }

    /// Starts a new request.
    pub fn begin(&mut self, now_us: u64) -> SimCommand {
        let command = SimCommand { client: self.id, request: self.next_request };
        self.next_request += 1;
        self.outstanding = Some(Outstanding { command, invoked_us: now_us, attempt: 1 });
        command
    }

    /// Whether `command` is the request this client is waiting on.
    pub fn is_waiting_for(&self, command: SimCommand) -> bool {
        self.outstanding.is_some_and(|outstanding| outstanding.command == command)
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
