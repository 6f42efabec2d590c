//! # stepraft
//!
//! A Raft consensus core that is a pure, deterministic state machine.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod entry;
mod error;
mod io;
mod log;
mod message;
mod node;
mod progress;
pub mod quorum;
mod types;

pub use config::Config;
pub use entry::{Command, Entry, Payload};
pub use error::{ConfigError, ProposeError, RangeError, RestoreError};
pub use io::{
    AppendCondition, DurableState, HardState, Input, Output, Persist, Proposal, ProposalId, Role,
};
pub use message::{
    AppendEntries, AppendEntriesResponse, AppendOutcome, ConflictHint, Heartbeat,
    HeartbeatResponse, Message, RequestVote, RequestVoteResponse,
};
pub use node::{Node, NodeStats};
pub use progress::{Progress, ReplicationState};
pub use types::{LogIndex, NodeId, Term};
