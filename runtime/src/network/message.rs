//! What drivers send each other: the core's messages, and the requests a follower forwards
//! to its leader with their answers.

use serde::{Deserialize, Serialize};
use stepraft::{LogIndex, MembershipChange, Message, NodeId, Term};

/// One message between two drivers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum PeerMessage<T> {
    /// A message of the Raft protocol, for the core.
    Raft(Message<T>),
    /// A request a follower's caller made, sent on to the leader the follower knows.
    Forward {
        /// Chosen by the follower; echoed in the answer.
        id: u64,
        /// The request.
        request: Forwarded<T>,
    },
    /// The leader's answer to a [`PeerMessage::Forward`].
    ForwardAnswer {
        /// The forwarded request's id.
        id: u64,
        /// What became of it.
        answer: ForwardAnswer,
    },
}

/// A request that a follower forwards to its leader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Forwarded<T> {
    /// Append commands.
    Propose(Vec<T>),
    /// Append commands if the leader's last entry is `(last_index, last_term)`.
    ConditionalAppend {
        /// The commands.
        commands: Vec<T>,
        /// The index the leader's last entry must have.
        last_index: LogIndex,
        /// The term it must have.
        last_term: Term,
    },
    /// Change the membership.
    ChangeMembership(MembershipChange),
}

/// What became of a forwarded request, as the leader tells the follower.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ForwardAnswer {
    /// Committed (and applied on the leader) at `first..=last`, appended in `term`.
    Committed {
        /// The first index.
        first: LogIndex,
        /// The last index.
        last: LogIndex,
        /// The term it was appended in.
        term: Term,
    },
    /// The receiver does not lead; `leader` is whom it knows. No effect.
    NotLeader {
        /// The leader it knows.
        leader: Option<NodeId>,
    },
    /// Refused, with no effect (why, in words).
    Refused(String),
    /// Whether it took effect is unknown (why, in words).
    Unknown(String),
}
