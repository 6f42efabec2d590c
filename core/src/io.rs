//! What goes into [`Node::step`](crate::Node::step) and what comes out of it.

#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

use crate::entry::Entry;
use crate::error::{CampaignError, ProposeError, ReadError, SnapshotError, TransferError};
use crate::message::Message;
use crate::snapshot::{Snapshot, SnapshotMeta};
use crate::types::{LogIndex, NodeId, ReadId, Term};

/// One event for a node to react to.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Input<T> {
    /// One logical tick of time has passed.
    Tick,
    /// A message arrived from a peer.
    Receive {
        /// The peer that sent it, as the transport knows it.
        from: NodeId,
        /// The message.
        message: Message<T>,
    },
    /// The application asks to append commands to the replicated log.
    Propose(Proposal<T>),
    /// Ask for a linearizable read point (ReadIndex, thesis §6.4). The answer is
    /// [`Output::ReadReady`] with an index: once the application has applied that far, reading
    /// its state machine is linearizable. A follower forwards the request to its leader.
    /// Give every read its own id: an answer is matched to its read by id alone, so reusing an
    /// id while an earlier read with it may still be answered could release the new read with
    /// the old one's index.
    ReadIndex(ReadId),
    /// Start an election now — through PreVote when it is on, so that a campaign cannot
    /// disrupt a healthy leader. A node that cannot campaign (it leads, is not a voter, or its
    /// configuration has fewer than `min_voters` voters) answers
    /// [`Output::CampaignRejected`].
    Campaign,
    /// Announce a node: this node now knows `id` exists and may reach it. A founder that has
    /// no configuration yet counts it toward `min_voters` and bootstraps once there are
    /// enough; a leader adds an announced non-member through the log, as a learner and then,
    /// once it has caught up and while voters number fewer than `max_voters`, as a voter.
    /// Repeated announcements change nothing. Announcements are not persisted: after a
    /// restart, announce again (see the crate docs on bootstrap). An announced node is the
    /// leader's to manage: a learner that is announced gets promoted, so do not announce a
    /// node that [`Input::ChangeMembership`] should keep a learner.
    AddNode(NodeId),
    /// Announce that a node has left for good: a leader removes it from the configuration
    /// through the log — a learner at once, a voter only while that leaves at least
    /// `min_voters` voters (add its replacement first). Cancels an earlier `AddNode`.
    RemoveNode(NodeId),
    /// Hand leadership to `target` (thesis §3.10): the leader brings it up to date, then tells
    /// it to campaign. Proposals are refused meanwhile; the transfer is abandoned after an
    /// election timeout.
    TransferLeadership(NodeId),
    /// Change the cluster's membership (on the leader). Answered like a proposal, with
    /// [`Output::Accepted`] (the index of the configuration entry) or [`Output::Rejected`]
    /// ([`ProposeError::Membership`](crate::ProposeError::Membership) and others).
    ChangeMembership {
        /// Echoed in the answer.
        id: ProposalId,
        /// The change.
        change: crate::membership::MembershipChange,
    },
    /// The log is durable up to `(index, term)`: the completion of an
    /// [`Output::PersistAsync`] (parallel leader writes).
    Persisted {
        /// The last durable index.
        index: LogIndex,
        /// The term of the entry at `index`, so that an acknowledgement of entries that were
        /// since replaced is recognised and ignored.
        term: Term,
    },
    /// The application took a snapshot of its state machine as of the applied `index`. The
    /// node records it (with the term and configuration at `index`), persists it, and
    /// compacts its log up to `index` minus
    /// [`Config::compaction_tail_entries`](crate::Config::compaction_tail_entries). Refused
    /// with [`Output::SnapshotRejected`] when `index` is past the applied index or not past the
    /// current snapshot.
    SnapshotTaken {
        /// The last applied index the snapshot covers.
        index: LogIndex,
        /// The serialized state machine, opaque to the core.
        data: std::sync::Arc<[u8]>,
    },
}

/// A caller-chosen id that ties a proposal to its [`Output::Accepted`] or [`Output::Rejected`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize), serde(transparent))]
pub struct ProposalId(pub u64);

/// Commands to append, all or none, optionally only if the log ends where the caller expects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal<T> {
    /// Echoed in the answer.
    pub id: ProposalId,
    /// The commands, appended as consecutive entries in this order.
    pub commands: Vec<T>,
    /// Append only if the leader's last entry is this one (an optimistic, conditional append).
    pub condition: Option<AppendCondition>,
}

/// The `(index, term)` a conditional proposal expects the leader's last entry to have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct AppendCondition {
    /// Expected last index (`LogIndex(0)` for an empty log).
    pub last_index: LogIndex,
    /// Expected last term (`Term(0)` for an empty log).
    pub last_term: Term,
}

impl<T> Proposal<T> {
    /// A proposal of one command.
    pub fn one(id: ProposalId, command: T) -> Proposal<T> {
        Proposal { id, commands: vec![command], condition: None }
    }

    /// A proposal of several commands, appended together.
    pub fn batch(id: ProposalId, commands: Vec<T>) -> Proposal<T> {
        Proposal { id, commands, condition: None }
    }

    /// Makes the proposal conditional on the leader's last entry being `(last_index, last_term)`.
    pub fn if_last_entry_is(mut self, last_index: LogIndex, last_term: Term) -> Proposal<T> {
        self.condition = Some(AppendCondition { last_index, last_term });
        self
    }
}

/// What a node asks its IO layer to do, in order.
///
/// # Ordering contract
/// Execute outputs in the order given. Every [`Output::Persist`] must be durable before any
/// output after it is executed (the one relaxation, [`Output::PersistAsync`], is opt-in): a `Send` may leave, an `Apply` may reach the state machine, only
/// once every `Persist` before it is on stable storage. [`Node::step`](crate::Node::step) emits
/// all of a step's persists first, then its sends, then notifications and applies, so a
/// runtime may batch the persists of one step into one write and one fsync.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output<T> {
    /// Make this change durable before executing any later output.
    Persist(Persist<T>),
    /// Make this change durable in the background (parallel leader writes, only with
    /// `Config::leader_persist_acks`): later `Send`s and `Apply`s need not wait for it, but
    /// later `Persist`/`PersistAsync` outputs must land after it (one FIFO log writer). When it
    /// is durable, feed [`Input::Persisted`] with its last entry's index and term.
    PersistAsync(Persist<T>),
    /// Deliver a message to a peer. Delivery may fail; Raft retries.
    Send {
        /// The destination.
        to: NodeId,
        /// The message.
        message: Message<T>,
    },
    /// Replace the state machine with this snapshot's data; the `Apply` outputs that follow
    /// continue from `meta.index + 1`. Emitted when a follower installs a snapshot from its
    /// leader, and on the first step after [`Node::restore`](crate::Node::restore) from a
    /// durable state holding a snapshot.
    RestoreSnapshot(Snapshot),
    /// Committed entries, consecutive and in index order, each emitted exactly once per node
    /// lifetime (entries covered by a [`Output::RestoreSnapshot`] are not). No-op entries are included so the application sees every index.
    Apply(Vec<Entry<T>>),
    /// The `(term, leader)` pair this node believes in changed: it moved to a new term, or
    /// learned (or became) the leader of its term. Emitted exactly once per change, so an
    /// application that watches leadership needs no de-duplication; a new term with no known
    /// leader yet comes as `leader: None`. Role changes alone (entering PreVote, say) do not
    /// emit it: they come as [`Output::RoleChanged`].
    LeaderChanged {
        /// This node's term.
        term: Term,
        /// The leader of that term, when known (this node itself when it leads).
        leader: Option<NodeId>,
    },
    /// This node's role changed. When a step changes both, this comes before
    /// [`Output::LeaderChanged`].
    RoleChanged {
        /// This node's term.
        term: Term,
        /// The role it has now.
        role: Role,
    },
    /// A proposal was appended at `first..=last` in `term`. It is not committed yet; watch for
    /// `Apply` of those indexes (and check their term: a later leader may overwrite them).
    Accepted {
        /// The proposal's id.
        proposal: ProposalId,
        /// Index of its first command.
        first: LogIndex,
        /// Index of its last command.
        last: LogIndex,
        /// The term the entries were appended in.
        term: Term,
    },
    /// A proposal was not appended.
    Rejected {
        /// The proposal's id.
        proposal: ProposalId,
        /// Why.
        error: ProposeError,
    },
    /// A read may be served once the application has applied up to `index`.
    ReadReady {
        /// The read's id.
        id: ReadId,
        /// The commit index the leader confirmed while it was still leader.
        index: LogIndex,
    },
    /// A read cannot be served here; retry.
    ReadRejected {
        /// The read's id.
        id: ReadId,
        /// Why.
        error: ReadError,
    },
    /// A snapshot reported with [`Input::SnapshotTaken`] was not recorded.
    SnapshotRejected {
        /// The index the snapshot was reported at.
        index: LogIndex,
        /// Why.
        error: SnapshotError,
    },
    /// An [`Input::Campaign`] started no election.
    CampaignRejected {
        /// Why.
        error: CampaignError,
    },
    /// A leadership transfer request was refused.
    TransferRejected {
        /// The requested target.
        target: NodeId,
        /// Why.
        error: TransferError,
    },
}

/// A change to durable state.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[non_exhaustive]
pub enum Persist<T> {
    /// Replace the stored term, vote and commit index.
    ///
    /// One relaxation is safe: a hard state whose term and vote equal the last one written
    /// (it only moves the commit index) may be written lazily — with the next write, or later —
    /// instead of before the outputs that follow it. A restarted node whose stored commit index
    /// lags learns the commit index from its leader again, and the node never asks to store a
    /// commit index beyond the log it has asked to make durable. A hard state with a new term or
    /// vote must be durable before anything after it, as every other persist.
    HardState(HardState),
    /// Append entries; the first one directly follows the last stored entry.
    Append(Vec<Entry<T>>),
    /// Remove every stored entry with an index `>= from` (a conflicting suffix, §5.3).
    Truncate {
        /// The first index to remove.
        from: LogIndex,
    },
    /// Store this snapshot in place of any older one. If the stored log holds an entry at the
    /// snapshot's index with the snapshot's term, the log stays as it is; otherwise every
    /// stored entry is discarded and the log continues at `meta.index + 1`.
    Snapshot(Snapshot),
    /// The stored entries up to and including `through` are covered by the stored snapshot and
    /// may be deleted.
    Compact {
        /// The last index to delete.
        through: LogIndex,
    },
}

/// The state a node must find again after a restart besides its log (Figure 2, "persistent
/// state"), plus the commit index so that a restarted node can apply without waiting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct HardState {
    /// The latest term the node has seen.
    pub term: Term,
    /// The candidate it voted for in `term`, if any.
    pub voted_for: Option<NodeId>,
    /// The highest index known to be committed.
    pub commit: LogIndex,
}

/// The role of a node, as reported to the application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[non_exhaustive]
pub enum Role {
    /// Follows a leader, or waits for one.
    Follower,
    /// Checks, without changing its term, whether it could win an election (PreVote).
    PreCandidate,
    /// Asks for votes.
    Candidate,
    /// Leads the cluster in its term.
    Leader,
}

/// Everything a node has made durable: what [`Node::restore`](crate::Node::restore) rebuilds a
/// node from. Also a complete in-memory store: feed it every `Persist` with [`apply`].
///
/// [`apply`]: DurableState::apply
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct DurableState<T> {
    /// The last persisted hard state.
    pub hard_state: HardState,
    /// The latest persisted snapshot, if any.
    pub snapshot: Option<Snapshot>,
    /// The persisted log, consecutive: from index 1 without a snapshot; with one, from at most
    /// the snapshot's index + 1 (a compaction may keep a tail of entries it covers).
    pub entries: Vec<Entry<T>>,
}

impl<T> Default for DurableState<T> {
    fn default() -> Self {
        DurableState { hard_state: HardState::default(), snapshot: None, entries: Vec::new() }
    }
}

impl<T: Clone> DurableState<T> {
    /// Executes one persist instruction on this in-memory store.
    ///
    /// # Panics
    /// If the instruction does not fit the stored log (an append that leaves a gap): that can
    /// only happen when a runtime skipped or reordered persists, which is a bug in the runtime.
    pub fn apply(&mut self, persist: &Persist<T>) {
        match persist {
            Persist::HardState(hard_state) => self.hard_state = *hard_state,
            Persist::Append(entries) => {
                if let Some(first) = entries.first() {
                    let expected = self.last_index().next();
                    assert_eq!(first.index, expected, "append must follow the stored log");
                }
                self.entries.extend(entries.iter().cloned());
            }
            Persist::Truncate { from } => {
                let keep =
                    from.0.saturating_sub(self.first_index().0).min(self.entries.len() as u64);
                self.entries.truncate(keep as usize);
            }
            Persist::Snapshot(snapshot) => {
                let SnapshotMeta { index, term, .. } = snapshot.meta;
                let position = index.0.checked_sub(self.first_index().0);
                let held = position.and_then(|position| self.entries.get(position as usize));
                if held.is_none_or(|entry| entry.term != term) {
                    self.entries.clear();
                }
                self.snapshot = Some(snapshot.clone());
            }
            Persist::Compact { through } => {
                let drop = through.next().0.saturating_sub(self.first_index().0);
                self.entries.drain(..(drop.min(self.entries.len() as u64) as usize));
            }
        }
    }
}

impl<T> DurableState<T> {
    /// The index of the first stored entry, or of the entry the next append must start at
    /// when the stored log is empty.
    pub fn first_index(&self) -> LogIndex {
        match (self.entries.first(), &self.snapshot) {
            (Some(first), _) => first.index,
            (None, Some(snapshot)) => snapshot.meta.index.next(),
            (None, None) => LogIndex(1),
        }
    }

    /// The index of the last stored entry, or of the snapshot when no entry follows it.
    pub fn last_index(&self) -> LogIndex {
        self.first_index().plus(self.entries.len() as u64).prev()
    }
}
