//! Messages exchanged between nodes: an enum of one struct per kind.
//!
//! The sender is not part of a message; the IO layer knows which peer a message came from and
//! passes it as `Input::Receive { from, .. }`.

#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

use crate::entry::Entry;
use crate::snapshot::SnapshotMeta;
use crate::types::{LogIndex, ReadId, Term};

/// A message between two nodes of one cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[non_exhaustive]
pub enum Message<T> {
    /// A candidate asks for a vote (§5.2).
    RequestVote(RequestVote),
    /// The answer to a [`RequestVote`].
    RequestVoteResponse(RequestVoteResponse),
    /// A node whose election timer fired asks whether it could win an election at
    /// `term` (= its term + 1) without changing any term (PreVote, thesis §9.6).
    PreVote(RequestVote),
    /// The answer to a [`Message::PreVote`]: `term` is the request's term when granted, the
    /// responder's own term when refused.
    PreVoteResponse(RequestVoteResponse),
    /// The leader tells the target of a leadership transfer to start an election now
    /// (thesis §3.10).
    TimeoutNow(TimeoutNow),
    /// A leader replicates entries (§5.3).
    AppendEntries(AppendEntries<T>),
    /// The answer to an [`AppendEntries`].
    AppendEntriesResponse(AppendEntriesResponse),
    /// A leader asserts its leadership and spreads its commit index without entries.
    Heartbeat(Heartbeat),
    /// The answer to a [`Heartbeat`].
    HeartbeatResponse(HeartbeatResponse),
    /// A follower asks the leader for a read index on behalf of its client (thesis §6.4).
    ReadIndexRequest(ReadIndexRequest),
    /// The leader's answer to a [`ReadIndexRequest`].
    ReadIndexResponse(ReadIndexResponse),
    /// A leader sends one chunk of its snapshot to a follower whose next entries it no longer
    /// holds (§7).
    InstallSnapshot(InstallSnapshot),
    /// The answer to an [`InstallSnapshot`] chunk.
    InstallSnapshotResponse(InstallSnapshotResponse),
}

impl<T> Message<T> {
    /// The sender's term, carried by every message.
    pub fn term(&self) -> Term {
        match self {
            Message::RequestVote(m) => m.term,
            Message::RequestVoteResponse(m) => m.term,
            Message::PreVote(m) => m.term,
            Message::PreVoteResponse(m) => m.term,
            Message::TimeoutNow(m) => m.term,
            Message::AppendEntries(m) => m.term,
            Message::AppendEntriesResponse(m) => m.term,
            Message::Heartbeat(m) => m.term,
            Message::HeartbeatResponse(m) => m.term,
            Message::ReadIndexRequest(m) => m.term,
            Message::ReadIndexResponse(m) => m.term,
            Message::InstallSnapshot(m) => m.term,
            Message::InstallSnapshotResponse(m) => m.term,
        }
    }
}

/// A candidate's request for a vote (§5.2, §5.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct RequestVote {
    /// The candidate's term.
    pub term: Term,
    /// The index of the candidate's last log entry.
    pub last_log_index: LogIndex,
    /// The term of the candidate's last log entry.
    pub last_log_term: Term,
    /// Set when the election was started by a leadership transfer: voters then grant even if
    /// they heard from the (departing) leader recently.
    pub transfer: bool,
}

/// The leader's order to the transfer target: campaign at once (thesis §3.10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct TimeoutNow {
    /// The leader's term.
    pub term: Term,
}

/// A voter's answer to a [`RequestVote`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct RequestVoteResponse {
    /// The voter's term, so that a stale candidate learns it is behind.
    pub term: Term,
    /// Whether the vote was granted.
    pub granted: bool,
}

/// A leader's request to append entries after `(prev_log_index, prev_log_term)` (§5.3).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct AppendEntries<T> {
    /// The leader's term.
    pub term: Term,
    /// The index of the entry just before `entries`.
    pub prev_log_index: LogIndex,
    /// The term of the entry at `prev_log_index`.
    pub prev_log_term: Term,
    /// The entries to append, contiguous from `prev_log_index + 1`; empty for a probe.
    pub entries: Vec<Entry<T>>,
    /// The leader's commit index.
    pub leader_commit: LogIndex,
}

/// A follower's answer to an [`AppendEntries`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct AppendEntriesResponse {
    /// The follower's term.
    pub term: Term,
    /// What the follower did with the request.
    pub outcome: AppendOutcome,
}

/// The result of an [`AppendEntries`] at the follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub enum AppendOutcome {
    /// The follower's log now matches the leader's up to `match_index` (which is
    /// `prev_log_index + entries.len()` of the request).
    Success {
        /// The last index known to match the leader's log.
        match_index: LogIndex,
    },
    /// The consistency check failed at `rejected_prev_index`: the follower has no entry there,
    /// or one of another term. `hint` lets the leader skip a whole term at a time.
    Conflict {
        /// The `prev_log_index` of the rejected request, so the leader can spot stale answers.
        rejected_prev_index: LogIndex,
        /// Where the leader should look next.
        hint: ConflictHint,
    },
    /// The request came from a leader of an older term; the response's `term` tells it so.
    StaleTerm,
}

/// The follower's suggestion for where its log and the leader's diverge (fast backtracking,
/// end of §5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct ConflictHint {
    /// The first index of `term` in the follower's log, or the follower's last index + 1 when
    /// its log is too short (`term` is then `None`).
    pub index: LogIndex,
    /// The term of the follower's entry at the rejected index, when it has one.
    pub term: Option<Term>,
}

/// A leader's heartbeat: it resets followers' election timers and carries a commit index that
/// the follower is known to hold entries for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct Heartbeat {
    /// The leader's term.
    pub term: Term,
    /// `min(leader commit, follower's match index)`: safe for the follower to commit.
    pub commit: LogIndex,
    /// The leader's read round when it sent this heartbeat; echoed in the response so that an
    /// acknowledgement confirms exactly the reads registered up to that round.
    pub round: u64,
}

/// A follower's answer to a [`Heartbeat`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct HeartbeatResponse {
    /// The follower's term.
    pub term: Term,
    /// The `round` of the heartbeat being answered.
    pub round: u64,
}

/// A follower's request for a read index (a forwarded read, thesis §6.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct ReadIndexRequest {
    /// The follower's term.
    pub term: Term,
    /// The follower's id for the read, echoed in the response.
    pub id: ReadId,
}

/// The leader's answer to a [`ReadIndexRequest`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct ReadIndexResponse {
    /// The leader's term.
    pub term: Term,
    /// The read's id, as the follower gave it.
    pub id: ReadId,
    /// The index to wait for before reading, or `None` when the leader cannot serve it.
    pub index: Option<LogIndex>,
}

/// One chunk of a leader's snapshot (§7, sent in pieces so that no message is unbounded).
///
/// Chunks are accepted strictly in order: the follower holds the bytes `0..offset` of the
/// snapshot named by `meta` before it takes a chunk at `offset`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct InstallSnapshot {
    /// The leader's term.
    pub term: Term,
    /// The leader's transfer attempt this chunk belongs to, echoed in the answer: answers to
    /// chunks of an abandoned attempt must not move the transfer (see the leader's progress).
    pub attempt: u64,
    /// The snapshot this chunk belongs to.
    pub meta: SnapshotMeta,
    /// The snapshot's whole size in bytes.
    pub total_bytes: u64,
    /// Where `data` starts in the snapshot.
    pub offset: u64,
    /// The chunk; the last chunk ends at `total_bytes`.
    pub data: Vec<u8>,
}

/// A follower's answer to an [`InstallSnapshot`] chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct InstallSnapshotResponse {
    /// The follower's term.
    pub term: Term,
    /// The index of the snapshot the chunk belonged to, so that the leader can spot answers
    /// about an older snapshot.
    pub snapshot_index: LogIndex,
    /// The transfer attempt of the chunk answered (copied from [`InstallSnapshot::attempt`]).
    pub attempt: u64,
    /// What the follower did with the chunk.
    pub outcome: SnapshotOutcome,
}

/// The result of an [`InstallSnapshot`] chunk at the follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[non_exhaustive]
pub enum SnapshotOutcome {
    /// The follower holds the bytes `0..next_offset` of the snapshot.
    Received {
        /// The offset of the next chunk the follower expects.
        next_offset: u64,
    },
    /// The chunk did not follow the bytes received so far (lost or reordered chunks); the
    /// leader should resend from `next_offset`.
    Gap {
        /// The offset of the next chunk the follower expects.
        next_offset: u64,
    },
    /// The follower's log now matches the leader's up to `match_index`: the snapshot is
    /// installed, or the follower already had everything it covers.
    Installed {
        /// The last index known to match the leader's log.
        match_index: LogIndex,
    },
    /// The chunk cannot be used (it contradicts itself); the leader should fall back to
    /// probing.
    Refused,
}
