//! Counters of what a node did and ignored, for runtimes to export. They never influence
//! behaviour, and they are as deterministic as the rest of the node.

/// Counters a runtime can export; they never influence behaviour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeStats {
    /// Inputs dropped as malformed, hostile or meaningless in the current state: the sum of
    /// [`NodeStats::ignored`] over every reason.
    pub ignored_messages: u64,
    /// The same inputs, counted by why they were ignored.
    pub ignored: IgnoredCounts,
    /// Elections this node started.
    pub elections_started: u64,
    /// Reads served under the leader lease, without a heartbeat round.
    pub lease_reads: u64,
    /// Snapshots the application reported and this node recorded.
    pub snapshots_taken: u64,
    /// Snapshot transfers this node started as a leader.
    pub snapshots_sent: u64,
    /// InstallSnapshot chunks this node sent as a leader.
    pub snapshot_chunks_sent: u64,
    /// Snapshot data bytes in those chunks.
    pub snapshot_bytes_sent: u64,
    /// Times a follower reported a gap in a transfer and the leader started a new attempt
    /// from the follower's offset.
    pub snapshot_restarts: u64,
    /// Snapshots this node installed from a leader.
    pub snapshots_installed: u64,
    /// First configurations this node wrote as the founder (0 or 1 per disk).
    pub bootstraps: u64,
    /// Membership changes this node appended as a leader for announced nodes
    /// ([`Input::AddNode`](crate::Input::AddNode), [`Input::RemoveNode`](crate::Input::RemoveNode)).
    pub announced_changes: u64,
}

impl NodeStats {
    /// Counts one ignored input (invariant: `ignored_messages == ignored.total()`).
    pub(crate) fn ignore(&mut self, reason: IgnoredReason) {
        self.ignored_messages += 1;
        self.ignored.counts[reason as usize] += 1;
    }
}

/// Why a node ignored an input. Requests from an earlier term are answered (with the current
/// term, §5.1), not ignored; everything here got no answer and changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum IgnoredReason {
    /// The message claims to come from this node itself: misrouted or forged.
    FromSelf,
    /// An answer from an earlier term: the question it answers is over (§5.1).
    StaleTerm,
    /// A vote request for a later term while this node hears from a live leader: a node
    /// returning from a partition would only disrupt the cluster (thesis §4.2.3).
    LeaderLease,
    /// A leader's message (append, heartbeat, snapshot chunk, TimeoutNow) from a node that is
    /// not the leader this node knows for the term, or sent to a leader of the same term.
    NotFromLeader,
    /// An answer that only a node in another role expects: a vote after the election, an
    /// append answer to a follower, a read answer to a leader.
    UnexpectedInRole,
    /// From a node that does not count here: a vote from a non-voter, an answer from a peer
    /// the leader does not replicate to.
    NotMember,
    /// Inconsistent in itself or with this node's log, as no honest peer sends it: an append
    /// with gaps or entries of a later term, an acknowledgement beyond the leader's log.
    Malformed,
    /// An append that would overwrite a committed entry, which no legitimate leader sends
    /// (Leader Completeness, §5.4).
    ContradictsCommitted,
    /// About something no longer pending: an earlier pre-vote round, an abandoned snapshot
    /// attempt or older snapshot, a read already answered or timed out, a persistence
    /// acknowledgement of nothing new.
    Outdated,
}

impl IgnoredReason {
    /// Every reason, in a fixed order.
    pub const ALL: [IgnoredReason; 9] = [
        IgnoredReason::FromSelf,
        IgnoredReason::StaleTerm,
        IgnoredReason::LeaderLease,
        IgnoredReason::NotFromLeader,
        IgnoredReason::UnexpectedInRole,
        IgnoredReason::NotMember,
        IgnoredReason::Malformed,
        IgnoredReason::ContradictsCommitted,
        IgnoredReason::Outdated,
    ];

    /// A stable snake_case name, for logs and metric labels (`stale_term`).
    pub fn name(self) -> &'static str {
        match self {
            IgnoredReason::FromSelf => "from_self",
            IgnoredReason::StaleTerm => "stale_term",
            IgnoredReason::LeaderLease => "leader_lease",
            IgnoredReason::NotFromLeader => "not_from_leader",
            IgnoredReason::UnexpectedInRole => "unexpected_in_role",
            IgnoredReason::NotMember => "not_member",
            IgnoredReason::Malformed => "malformed",
            IgnoredReason::ContradictsCommitted => "contradicts_committed",
            IgnoredReason::Outdated => "outdated",
        }
    }
}

/// Ignored inputs counted by [`IgnoredReason`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IgnoredCounts {
    /// Indexed by the reason's position in [`IgnoredReason::ALL`].
    counts: [u64; IgnoredReason::ALL.len()],
}

impl IgnoredCounts {
    /// Inputs ignored for `reason`.
    pub fn get(&self, reason: IgnoredReason) -> u64 {
        self.counts[reason as usize]
    }

    /// Every reason with its count, in the order of [`IgnoredReason::ALL`].
    pub fn iter(&self) -> impl Iterator<Item = (IgnoredReason, u64)> + '_ {
        IgnoredReason::ALL.into_iter().zip(self.counts.iter().copied())
    }

    /// Inputs ignored for any reason.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_slot_and_name() {
        for (position, reason) in IgnoredReason::ALL.into_iter().enumerate() {
            assert_eq!(reason as usize, position, "{reason:?} is indexed by its position");
        }
        let mut names: Vec<&str> = IgnoredReason::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), IgnoredReason::ALL.len(), "names are distinct");
    }

    #[test]
    fn ignoring_counts_the_reason_and_the_total() {
        let mut stats = NodeStats::default();
        stats.ignore(IgnoredReason::StaleTerm);
        stats.ignore(IgnoredReason::StaleTerm);
        stats.ignore(IgnoredReason::NotMember);
        assert_eq!(stats.ignored_messages, 3);
        assert_eq!(stats.ignored.total(), 3);
        assert_eq!(stats.ignored.get(IgnoredReason::StaleTerm), 2);
        assert_eq!(stats.ignored.get(IgnoredReason::NotMember), 1);
        let counted: Vec<_> = stats.ignored.iter().filter(|(_, count)| *count > 0).collect();
        assert_eq!(
            counted,
            [(IgnoredReason::StaleTerm, 2), (IgnoredReason::NotMember, 1)],
            "in the fixed order"
        );
    }
}
