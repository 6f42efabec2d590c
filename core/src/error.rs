//! Typed errors: bad configuration, refused proposals, bad read ranges, unusable durable state.

#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

use crate::types::{LogIndex, NodeId, Term};

/// A [`Config`](crate::Config) value that cannot work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `election_ticks` is zero.
    #[error("election_ticks must be at least 1")]
    ZeroElectionTicks,
    /// `election_ticks` is so large that the randomized timeout `2 · election_ticks` overflows.
    #[error("election_ticks {0} is too large")]
    ElectionTicksTooLarge(u32),
    /// `heartbeat_ticks` is zero.
    #[error("heartbeat_ticks must be at least 1")]
    ZeroHeartbeatTicks,
    /// Heartbeats would not arrive before followers time out.
    #[error("heartbeat_ticks {heartbeat_ticks} must be below election_ticks {election_ticks}")]
    HeartbeatNotBelowElection {
        /// The configured heartbeat period.
        heartbeat_ticks: u32,
        /// The configured minimum election timeout.
        election_ticks: u32,
    },
    /// A node appears twice in the voter or learner list.
    #[error("{0} is listed twice")]
    DuplicateMember(NodeId),
    /// `min_voters` is zero, or `max_voters` is below it.
    #[error(
        "voter limits must satisfy 1 <= min_voters ({min_voters}) <= max_voters ({max_voters})"
    )]
    BadVoterLimits {
        /// The configured minimum.
        min_voters: usize,
        /// The configured maximum.
        max_voters: usize,
    },
    /// A founder ([`Config::founder`](crate::Config::founder)) was also given initial voters or
    /// learners: it must start knowing nobody, so that the configuration it writes is the
    /// only first configuration of its cluster.
    #[error("a founder starts with no voters or learners of its own")]
    FounderWithMembers,
    /// The initial configuration has more voters than `max_voters`.
    #[error("{voters} initial voters exceed max_voters ({max_voters})")]
    TooManyVoters {
        /// The initial voters.
        voters: usize,
        /// The configured maximum.
        max_voters: usize,
    },
    /// `entries_per_message_max` is zero.
    #[error("entries_per_message_max must be at least 1")]
    ZeroEntriesPerMessage,
    /// `bytes_per_message_max` is zero.
    #[error("bytes_per_message_max must be at least 1")]
    ZeroBytesPerMessage,
    /// `in_flight_messages_max` is zero.
    #[error("in_flight_messages_max must be at least 1")]
    ZeroInFlightMessages,
    /// `uncommitted_bytes_max` is zero.
    #[error("uncommitted_bytes_max must be at least 1")]
    ZeroUncommittedBytes,
    /// `snapshot_chunk_bytes` is zero.
    #[error("snapshot_chunk_bytes must be at least 1")]
    ZeroSnapshotChunkBytes,
    /// Lease reads rely on the leader stickiness that CheckQuorum provides.
    #[error("lease_reads requires check_quorum")]
    LeaseNeedsCheckQuorum,
    /// The lease would be empty.
    #[error(
        "lease_margin_ticks {lease_margin_ticks} must be below election_ticks {election_ticks}"
    )]
    LeaseMarginTooLarge {
        /// The configured margin.
        lease_margin_ticks: u32,
        /// The configured minimum election timeout.
        election_ticks: u32,
    },
}

/// Why a proposal was not appended to the log. The caller may retry elsewhere or later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[non_exhaustive]
pub enum ProposeError {
    /// Only the leader appends; `leader` is this node's best guess of who that is.
    #[error("not the leader (leader hint: {leader:?}, term {term:?})")]
    NotLeader {
        /// The leader this node last heard from in its current term, if any.
        leader: Option<NodeId>,
        /// This node's current term.
        term: Term,
    },
    /// A conditional append expected the leader's last entry to be `(expected_index,
    /// expected_term)`; it is `(last_index, last_term)`.
    #[error(
        "condition failed: expected last entry {expected_index:?}@{expected_term:?}, \
         found {last_index:?}@{last_term:?}"
    )]
    ConditionFailed {
        /// The index the caller expected the last entry to have.
        expected_index: LogIndex,
        /// The term the caller expected the last entry to have.
        expected_term: Term,
        /// The leader's actual last index.
        last_index: LogIndex,
        /// The leader's actual last term.
        last_term: Term,
    },
    /// The proposal holds no command.
    #[error("the proposal holds no command")]
    Empty,
    /// A leadership transfer is in progress; proposals wait until it ends.
    #[error("leadership is being transferred to {target:?}")]
    TransferInProgress {
        /// The transfer's target.
        target: NodeId,
    },
    /// A membership change that cannot be made now or at all.
    #[error(transparent)]
    Membership(#[from] MembershipError),
    /// Appending would push the leader's uncommitted bytes past `uncommitted_bytes_max`:
    /// back off until earlier entries commit.
    #[error("uncommitted log would hold {would_be} bytes, above the limit of {limit}")]
    TooManyUncommittedBytes {
        /// The uncommitted bytes the log would hold with this proposal.
        would_be: u64,
        /// The configured limit.
        limit: u64,
    },
}

/// Why a linearizable read (ReadIndex, thesis §6.4) was not served. The caller may retry,
/// elsewhere or later; a read is never left pending forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[non_exhaustive]
pub enum ReadError {
    /// This node neither leads nor knows a leader to forward the read to.
    #[error("not the leader and no leader known (term {term:?})")]
    NoLeader {
        /// This node's current term.
        term: Term,
    },
    /// Leadership was lost (or changed) before the read was confirmed.
    #[error("leadership changed before the read was confirmed (now term {term:?})")]
    LeadershipLost {
        /// This node's term when it gave up the read.
        term: Term,
    },
    /// The leader refused a forwarded read (it was not leader any more).
    #[error("the leader refused the forwarded read")]
    RefusedByLeader,
    /// The read was not confirmed within an election timeout (a forwarded read got no
    /// answer, or the leader could not reach a quorum).
    #[error("the read timed out")]
    TimedOut,
}

/// Why a membership change was refused. Nothing changes when one is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[non_exhaustive]
pub enum MembershipError {
    /// An earlier change is not committed yet: one change at a time.
    #[error("a membership change is already in progress (at index {index:?})")]
    ChangeInProgress {
        /// The index of the uncommitted change.
        index: LogIndex,
    },
    /// The leader has not committed an entry of its own term yet; until it has, it may not
    /// know the latest configuration (the 2015 single-server change bug).
    #[error("the leader has not committed an entry of its term yet")]
    LeaderNotReady,
    /// The node is already a voter.
    #[error("{0:?} is already a voter")]
    AlreadyVoter(NodeId),
    /// The node is already a learner.
    #[error("{0:?} is already a learner")]
    AlreadyLearner(NodeId),
    /// The node is not a member.
    #[error("{0:?} is not a member")]
    NotAMember(NodeId),
    /// The node is not a learner.
    #[error("{0:?} is not a learner")]
    NotALearner(NodeId),
    /// The node is not a voter.
    #[error("{0:?} is not a voter")]
    NotAVoter(NodeId),
    /// The change would leave no voter.
    #[error("the change would leave no voter")]
    NoVotersLeft,
    /// The change would exceed `Config::max_voters`.
    #[error("the change would make {voters} voters, above the limit of {max}")]
    TooManyVoters {
        /// Voters after the change.
        voters: usize,
        /// The configured limit.
        max: usize,
    },
    /// A node cannot be both a voter and a learner.
    #[error("{0:?} cannot be both a voter and a learner")]
    VoterAndLearner(NodeId),
    /// The cluster is in a joint configuration; leave it first.
    #[error("the cluster is in a joint configuration")]
    InJoint,
    /// The cluster is not in a joint configuration.
    #[error("the cluster is not in a joint configuration")]
    NotInJoint,
}

/// Why an [`Input::Campaign`](crate::Input::Campaign) started no election.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[non_exhaustive]
pub enum CampaignError {
    /// This node already leads.
    #[error("this node already leads")]
    AlreadyLeader,
    /// This node is not a voter of its configuration (a learner, or a member that was
    /// removed).
    #[error("this node is not a voter")]
    NotVoter,
    /// This node knows no configuration yet: it waits for a leader to replicate one to it,
    /// or, as the founder, for `min_voters` nodes (itself included) to be announced.
    #[error("this node knows no configuration yet ({known} nodes known, min_voters {min_voters})")]
    NoConfiguration {
        /// The nodes this node knows of, itself included.
        known: usize,
        /// The configured minimum.
        min_voters: usize,
    },
    /// The configuration has fewer voters than `Config::min_voters`.
    #[error("the configuration has {voters} voters, fewer than min_voters ({min_voters})")]
    TooFewVoters {
        /// The voters the configuration has.
        voters: usize,
        /// The configured minimum.
        min_voters: usize,
    },
}

/// Why a leadership transfer was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[non_exhaustive]
pub enum TransferError {
    /// Only the leader can transfer leadership.
    #[error("not the leader (leader hint: {leader:?})")]
    NotLeader {
        /// The leader this node knows of.
        leader: Option<NodeId>,
    },
    /// The target is not a voter of the cluster.
    #[error("{0:?} is not a voter")]
    NotAVoter(NodeId),
    /// The target already leads.
    #[error("the target already leads")]
    AlreadyLeader,
    /// Another transfer is in progress.
    #[error("a transfer to {target:?} is in progress")]
    InProgress {
        /// The target of the transfer in progress.
        target: NodeId,
    },
}

/// A read of log entries by index range that cannot be served.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RangeError {
    /// Index 0 names the empty prefix, not an entry.
    #[error("log indexes start at 1")]
    StartsAtZero,
    /// The range ends before it starts.
    #[error("range {start:?}..={end:?} is inverted")]
    Inverted {
        /// The first index asked for.
        start: LogIndex,
        /// The last index asked for.
        end: LogIndex,
    },
    /// The range reaches past the commit index; only committed entries are readable.
    #[error("range ends at {end:?}, past the commit index {commit:?}")]
    NotCommitted {
        /// The last index asked for.
        end: LogIndex,
        /// The node's commit index.
        commit: LogIndex,
    },
    /// The range starts before the first entry the log still holds.
    #[error("range starts at {start:?}, before the first retained entry {first:?}")]
    Compacted {
        /// The first index asked for.
        start: LogIndex,
        /// The first index still in the log.
        first: LogIndex,
    },
}

/// Why the term of a log index is not known. A compacted index has a term, but the log no
/// longer holds it: it is reported as such, never as a made-up term (the 2023 etcd-raft bug
/// where a compacted index read as term 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TermError {
    /// The index is covered by the snapshot and its entry was dropped.
    #[error("index {index:?} is compacted; the log starts after {compacted_through:?}")]
    Compacted {
        /// The index asked for.
        index: LogIndex,
        /// The last index the log no longer holds (its term is still known).
        compacted_through: LogIndex,
    },
    /// The index is past the end of the log.
    #[error("index {index:?} is past the last entry {last_index:?}")]
    BeyondLog {
        /// The index asked for.
        index: LogIndex,
        /// The last index in the log.
        last_index: LogIndex,
    },
}

/// Why a snapshot the application reported with
/// [`Input::SnapshotTaken`](crate::Input::SnapshotTaken) was not recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[non_exhaustive]
pub enum SnapshotError {
    /// A snapshot may only cover entries the application has applied.
    #[error("snapshot index {index:?} is past the applied index {applied:?}")]
    NotApplied {
        /// The snapshot's index.
        index: LogIndex,
        /// The node's applied index.
        applied: LogIndex,
    },
    /// The node already has a snapshot at least this recent.
    #[error("snapshot index {index:?} is not past the current snapshot {current:?}")]
    Stale {
        /// The snapshot's index.
        index: LogIndex,
        /// The index of the snapshot the node has.
        current: LogIndex,
    },
}

/// Durable state that cannot be what this library persisted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Log entries are not numbered consecutively from the first one.
    #[error("log entry at position {position} has index {found:?}, expected {expected:?}")]
    NonContiguousLog {
        /// Position of the bad entry in the durable entry list.
        position: usize,
        /// The index it should have.
        expected: LogIndex,
        /// The index it has.
        found: LogIndex,
    },
    /// Entry terms go down along the log.
    #[error("log entry {index:?} has term {term:?}, below the term of the entry before it")]
    TermDecreases {
        /// The entry whose term goes down.
        index: LogIndex,
        /// Its term.
        term: Term,
    },
    /// An entry's term is above the persisted current term.
    #[error("log entry {index:?} has term {term:?}, above the current term {current:?}")]
    EntryTermAboveCurrent {
        /// The entry.
        index: LogIndex,
        /// Its term.
        term: Term,
        /// The persisted current term.
        current: Term,
    },
    /// The persisted log neither starts right after the snapshot nor overlaps it, or holds an
    /// entry at the snapshot's index with another term.
    #[error("the persisted log does not continue the snapshot at {snapshot_index:?}")]
    LogDoesNotFollowSnapshot {
        /// The snapshot's index.
        snapshot_index: LogIndex,
    },
    /// The persisted commit index points past the last persisted entry.
    #[error("commit index {commit:?} is past the last entry {last_index:?}")]
    CommitBeyondLog {
        /// The persisted commit index.
        commit: LogIndex,
        /// The last persisted index.
        last_index: LogIndex,
    },
}
