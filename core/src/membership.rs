//! Cluster membership: who votes, who only learns, and the quorum rules of a configuration —
//! including joint consensus (thesis §4.3), where every decision needs a majority of the
//! outgoing voters *and* of the incoming ones.

use std::collections::{BTreeMap, BTreeSet};

#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

use crate::error::MembershipError;
use crate::quorum::{majority_index, tally_votes, VoteResult};
use crate::types::{LogIndex, NodeId};

/// A cluster configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct Membership {
    /// The voters of the configuration (the incoming one during joint consensus).
    pub voters: BTreeSet<NodeId>,
    /// The voters of the outgoing configuration during joint consensus; empty otherwise.
    pub outgoing: BTreeSet<NodeId>,
    /// Members that receive the log but neither vote nor count toward commitment.
    pub learners: BTreeSet<NodeId>,
}

impl Membership {
    /// A simple (non-joint) configuration of `voters` without learners.
    pub fn with_voters(voters: impl IntoIterator<Item = NodeId>) -> Membership {
        Membership { voters: voters.into_iter().collect(), ..Membership::default() }
    }

    /// Whether the configuration has no member at all: a node that holds it knows no cluster
    /// yet.
    pub fn is_empty(&self) -> bool {
        self.voters.is_empty() && self.outgoing.is_empty() && self.learners.is_empty()
    }

    /// Whether this is a joint configuration.
    pub fn is_joint(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Whether `id` votes in this configuration (in either half of a joint one).
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.outgoing.contains(&id)
    }

    /// Whether `id` is a voter or a learner.
    pub fn is_member(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.learners.contains(&id)
    }

    /// Every voter of either half, ascending.
    pub fn all_voters(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.voters.union(&self.outgoing).copied()
    }

    /// Every member (voters of both halves and learners), ascending.
    pub fn members(&self) -> BTreeSet<NodeId> {
        self.all_voters().chain(self.learners.iter().copied()).collect()
    }

    /// Whether the nodes for which `agrees` holds form a quorum: a majority of the voters,
    /// and during joint consensus also a majority of the outgoing voters. A configuration
    /// without voters has no quorum.
    pub fn has_quorum(&self, agrees: impl Fn(NodeId) -> bool) -> bool {
        let majority_of =
            |set: &BTreeSet<NodeId>| set.iter().filter(|&&id| agrees(id)).count() > set.len() / 2;
        !self.voters.is_empty()
            && majority_of(&self.voters)
            && (self.outgoing.is_empty() || majority_of(&self.outgoing))
    }

    /// The highest index stored on a quorum, given each voter's match index.
    pub fn committed_index(&self, match_of: impl Fn(NodeId) -> LogIndex) -> LogIndex {
        self.committed_index_with(&mut Vec::new(), match_of)
    }

    /// [`Membership::committed_index`] with a reusable buffer, so the leader's hot path does
    /// not allocate.
    pub(crate) fn committed_index_with(
        &self,
        scratch: &mut Vec<LogIndex>,
        match_of: impl Fn(NodeId) -> LogIndex,
    ) -> LogIndex {
        let incoming = half_committed_index(self.voters.iter().copied(), scratch, &match_of);
        if self.outgoing.is_empty() {
            incoming
        } else {
            incoming.min(half_committed_index(self.outgoing.iter().copied(), scratch, &match_of))
        }
    }

    /// The result of an election with these `votes`: won when both halves are won, lost when
    /// either half is lost.
    pub fn vote_result(&self, votes: &BTreeMap<NodeId, bool>) -> VoteResult {
        if self.voters.is_empty() {
            return VoteResult::Pending;
        }
        let incoming = tally_votes(&self.voters, votes);
        if self.outgoing.is_empty() {
            return incoming;
        }
        match (incoming, tally_votes(&self.outgoing, votes)) {
            (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
            (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
            _ => VoteResult::Pending,
        }
    }
}

/// A requested change of configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[non_exhaustive]
pub enum MembershipChange {
    /// Add a voter (single-server change, thesis §4.1). Catch a new node up as a learner
    /// first, so the cluster does not wait for it to commit.
    AddVoter(NodeId),
    /// Add a learner: it receives the log but neither votes nor counts.
    AddLearner(NodeId),
    /// Make a learner a voter.
    PromoteLearner(NodeId),
    /// Make a voter a learner.
    DemoteVoter(NodeId),
    /// Remove a voter or a learner.
    RemoveNode(NodeId),
    /// Move to an arbitrary configuration through joint consensus (thesis §4.3): the joint
    /// configuration needs both majorities until it is committed and left.
    Replace {
        /// The voters of the new configuration.
        voters: BTreeSet<NodeId>,
        /// The learners of the new configuration.
        learners: BTreeSet<NodeId>,
    },
    /// Leave a joint configuration for its incoming half.
    LeaveJoint,
}

impl Membership {
    /// The configuration `change` makes from this one, computed on a copy and validated
    /// before anything is swapped in.
    ///
    /// # Errors
    /// A [`MembershipError`] for a change that does not apply (and then nothing changes).
    pub fn apply(
        &self,
        change: &MembershipChange,
        max_voters: usize,
    ) -> Result<Membership, MembershipError> {
        if self.is_joint() && *change != MembershipChange::LeaveJoint {
            return Err(MembershipError::InJoint);
        }
        let mut next = self.clone();
        match change {
            MembershipChange::AddVoter(id) => {
                if self.voters.contains(id) {
                    return Err(MembershipError::AlreadyVoter(*id));
                }
                if self.learners.contains(id) {
                    return Err(MembershipError::AlreadyLearner(*id));
                }
                next.voters.insert(*id);
            }
            MembershipChange::AddLearner(id) => {
                if self.voters.contains(id) {
                    return Err(MembershipError::AlreadyVoter(*id));
                }
                if !next.learners.insert(*id) {
                    return Err(MembershipError::AlreadyLearner(*id));
                }
            }
            MembershipChange::PromoteLearner(id) => {
                if !next.learners.remove(id) {
                    return Err(MembershipError::NotALearner(*id));
                }
                next.voters.insert(*id);
            }
            MembershipChange::DemoteVoter(id) => {
                if !next.voters.remove(id) {
                    return Err(MembershipError::NotAVoter(*id));
                }
                next.learners.insert(*id);
            }
            MembershipChange::RemoveNode(id) => {
                if !next.voters.remove(id) && !next.learners.remove(id) {
                    return Err(MembershipError::NotAMember(*id));
                }
            }
            MembershipChange::Replace { voters, learners } => {
                if let Some(both) = voters.intersection(learners).next() {
                    return Err(MembershipError::VoterAndLearner(*both));
                }
                next.learners = learners.clone();
                if *voters != self.voters {
                    next.outgoing = self.voters.clone();
                    next.voters = voters.clone();
                }
            }
            MembershipChange::LeaveJoint => {
                if !self.is_joint() {
                    return Err(MembershipError::NotInJoint);
                }
                next.outgoing.clear();
            }
        }
        if next.voters.is_empty() {
            return Err(MembershipError::NoVotersLeft);
        }
        if next.voters.len() > max_voters && next.voters.len() > self.voters.len() {
            return Err(MembershipError::TooManyVoters {
                voters: next.voters.len(),
                max: max_voters,
            });
        }
        Ok(next)
    }
}

/// The majority index of one half of a configuration.
fn half_committed_index(
    voters: impl Iterator<Item = NodeId>,
    scratch: &mut Vec<LogIndex>,
    match_of: &impl Fn(NodeId) -> LogIndex,
) -> LogIndex {
    scratch.clear();
    scratch.extend(voters.map(match_of));
    majority_index(scratch)
}

/// A configuration's voters as plain lists, kept by a leader for the commit computation it
/// runs on every acknowledgement: walking a short vector costs a fraction of walking a
/// `BTreeSet`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct VoterLists {
    incoming: Vec<NodeId>,
    outgoing: Vec<NodeId>,
}

impl VoterLists {
    /// The voters of `membership`, in id order.
    pub(crate) fn of(membership: &Membership) -> VoterLists {
        VoterLists {
            incoming: membership.voters.iter().copied().collect(),
            outgoing: membership.outgoing.iter().copied().collect(),
        }
    }

    /// [`Membership::committed_index_with`] for the configuration these lists were made from.
    pub(crate) fn committed_index(
        &self,
        scratch: &mut Vec<LogIndex>,
        match_of: impl Fn(NodeId) -> LogIndex,
    ) -> LogIndex {
        let incoming = half_committed_index(self.incoming.iter().copied(), scratch, &match_of);
        if self.outgoing.is_empty() {
            incoming
        } else {
            incoming.min(half_committed_index(self.outgoing.iter().copied(), scratch, &match_of))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(ids: &[u64]) -> BTreeSet<NodeId> {
        ids.iter().map(|&id| NodeId(id)).collect()
    }

    fn joint(incoming: &[u64], outgoing: &[u64]) -> Membership {
        Membership { voters: ids(incoming), outgoing: ids(outgoing), learners: BTreeSet::new() }
    }

    #[test]
    fn a_simple_configuration_needs_a_majority() {
        let membership = Membership::with_voters(ids(&[1, 2, 3]));
        assert!(membership.has_quorum(|id| id.0 <= 2));
        assert!(!membership.has_quorum(|id| id.0 == 1));
        let matches = |id: NodeId| LogIndex([0, 9, 5, 1][id.0 as usize]);
        assert_eq!(membership.committed_index(matches), LogIndex(5));
    }

    #[test]
    fn a_joint_configuration_needs_both_majorities() {
        // Replace {1, 2, 3} by {3, 4, 5}.
        let membership = joint(&[3, 4, 5], &[1, 2, 3]);
        assert!(!membership.has_quorum(|id| [1, 2, 3].contains(&id.0)), "old half only");
        assert!(!membership.has_quorum(|id| [3, 4, 5].contains(&id.0)), "new half only");
        assert!(membership.has_quorum(|id| [2, 3, 4].contains(&id.0)));
        let matches = |id: NodeId| LogIndex([0, 10, 10, 4, 2, 2][id.0 as usize]);
        // Old half: 10, 10, 4 -> 10; new half: 4, 2, 2 -> 2; joint: 2.
        assert_eq!(membership.committed_index(matches), LogIndex(2));
    }

    #[test]
    fn joint_elections_are_won_in_both_halves_and_lost_in_either() {
        let membership = joint(&[3, 4, 5], &[1, 2, 3]);
        let votes = |granted: &[u64], refused: &[u64]| {
            let mut votes = BTreeMap::new();
            for &id in granted {
                votes.insert(NodeId(id), true);
            }
            for &id in refused {
                votes.insert(NodeId(id), false);
            }
            votes
        };
        assert_eq!(membership.vote_result(&votes(&[1, 2, 3], &[])), VoteResult::Pending);
        assert_eq!(membership.vote_result(&votes(&[2, 3, 4], &[])), VoteResult::Won);
        assert_eq!(membership.vote_result(&votes(&[3], &[4, 5])), VoteResult::Lost);
        assert_eq!(membership.vote_result(&votes(&[3], &[1, 2])), VoteResult::Lost);
    }

    #[test]
    fn changes_are_validated_and_computed_on_a_copy() {
        let three = Membership::with_voters(ids(&[1, 2, 3]));
        let add = three.apply(&MembershipChange::AddLearner(NodeId(4)), 5).expect("valid");
        assert_eq!(add.learners, ids(&[4]));
        let promoted = add.apply(&MembershipChange::PromoteLearner(NodeId(4)), 5).expect("valid");
        assert_eq!(promoted.voters, ids(&[1, 2, 3, 4]));
        assert_eq!(
            promoted.apply(&MembershipChange::AddVoter(NodeId(5)), 4),
            Err(MembershipError::TooManyVoters { voters: 5, max: 4 })
        );
        assert_eq!(
            three.apply(&MembershipChange::AddVoter(NodeId(2)), 5),
            Err(MembershipError::AlreadyVoter(NodeId(2)))
        );
        assert_eq!(
            three.apply(&MembershipChange::RemoveNode(NodeId(9)), 5),
            Err(MembershipError::NotAMember(NodeId(9)))
        );
        let one = Membership::with_voters(ids(&[1]));
        assert_eq!(
            one.apply(&MembershipChange::RemoveNode(NodeId(1)), 5),
            Err(MembershipError::NoVotersLeft)
        );
        assert_eq!(three.apply(&MembershipChange::LeaveJoint, 5), Err(MembershipError::NotInJoint));
    }

    #[test]
    fn replace_goes_through_a_joint_configuration() {
        let three = Membership::with_voters(ids(&[1, 2, 3]));
        let change = MembershipChange::Replace { voters: ids(&[3, 4, 5]), learners: ids(&[6]) };
        let joint = three.apply(&change, 5).expect("valid");
        assert!(joint.is_joint());
        assert_eq!(
            (joint.voters.clone(), joint.outgoing.clone()),
            (ids(&[3, 4, 5]), ids(&[1, 2, 3]))
        );
        assert_eq!(
            joint.apply(&MembershipChange::AddLearner(NodeId(7)), 9),
            Err(MembershipError::InJoint)
        );
        let left = joint.apply(&MembershipChange::LeaveJoint, 5).expect("valid");
        assert_eq!(
            left,
            Membership { voters: ids(&[3, 4, 5]), outgoing: BTreeSet::new(), learners: ids(&[6]) }
        );
        let overlap = MembershipChange::Replace { voters: ids(&[1]), learners: ids(&[1]) };
        assert_eq!(three.apply(&overlap, 5), Err(MembershipError::VoterAndLearner(NodeId(1))));
    }

    #[test]
    fn learners_never_count_and_an_empty_configuration_decides_nothing() {
        let mut membership = Membership::with_voters(ids(&[1]));
        membership.learners = ids(&[2, 3]);
        assert!(membership.has_quorum(|id| id.0 == 1));
        assert!(!membership.has_quorum(|id| id.0 != 1));
        assert!(membership.is_member(NodeId(3)) && !membership.is_voter(NodeId(3)));
        assert!(membership.is_member(NodeId(1)) && !membership.is_member(NodeId(4)));
        let empty = Membership::default();
        assert!(!empty.has_quorum(|_| true));
        assert_eq!(empty.vote_result(&BTreeMap::new()), VoteResult::Pending);
    }

    mod model {
        //! Quorum decisions and configuration changes against brute-force models.

        use proptest::prelude::*;

        use super::*;

        fn set() -> impl Strategy<Value = BTreeSet<NodeId>> {
            proptest::collection::btree_set((1u64..7).prop_map(NodeId), 0..6)
        }

        fn membership() -> impl Strategy<Value = Membership> {
            (set(), set(), set()).prop_map(|(voters, outgoing, learners)| {
                let learners = learners.difference(&voters).copied().collect::<BTreeSet<_>>();
                let learners = learners.difference(&outgoing).copied().collect();
                Membership { voters, outgoing, learners }
            })
        }

        fn change() -> impl Strategy<Value = MembershipChange> {
            let id = (1u64..8).prop_map(NodeId);
            prop_oneof![
                id.clone().prop_map(MembershipChange::AddVoter),
                id.clone().prop_map(MembershipChange::AddLearner),
                id.clone().prop_map(MembershipChange::PromoteLearner),
                id.clone().prop_map(MembershipChange::DemoteVoter),
                id.prop_map(MembershipChange::RemoveNode),
                (set(), set())
                    .prop_map(|(voters, learners)| MembershipChange::Replace { voters, learners }),
                Just(MembershipChange::LeaveJoint),
            ]
        }

        /// What `change` makes of `m`, stated rule by rule on plain sets: the change's own
        /// precondition first, then the limits on the result.
        fn naive_apply(
            m: &Membership,
            change: &MembershipChange,
            max_voters: usize,
        ) -> Result<Membership, MembershipError> {
            let joint = !m.outgoing.is_empty();
            if joint && *change != MembershipChange::LeaveJoint {
                return Err(MembershipError::InJoint);
            }
            let (mut voters, mut outgoing, mut learners) =
                (m.voters.clone(), m.outgoing.clone(), m.learners.clone());
            match change {
                MembershipChange::AddVoter(id) | MembershipChange::AddLearner(id) => {
                    if m.voters.contains(id) {
                        return Err(MembershipError::AlreadyVoter(*id));
                    }
                    if m.learners.contains(id) {
                        return Err(MembershipError::AlreadyLearner(*id));
                    }
                    if matches!(change, MembershipChange::AddVoter(_)) {
                        voters.insert(*id);
                    } else {
                        learners.insert(*id);
                    }
                }
                MembershipChange::PromoteLearner(id) => {
                    if !m.learners.contains(id) {
                        return Err(MembershipError::NotALearner(*id));
                    }
                    learners.remove(id);
                    voters.insert(*id);
                }
                MembershipChange::DemoteVoter(id) => {
                    if !m.voters.contains(id) {
                        return Err(MembershipError::NotAVoter(*id));
                    }
                    voters.remove(id);
                    learners.insert(*id);
                }
                MembershipChange::RemoveNode(id) => {
                    if !m.voters.contains(id) && !m.learners.contains(id) {
                        return Err(MembershipError::NotAMember(*id));
                    }
                    voters.remove(id);
                    learners.remove(id);
                }
                MembershipChange::Replace { voters: new_voters, learners: new_learners } => {
                    if let Some(both) = new_voters.iter().find(|id| new_learners.contains(id)) {
                        return Err(MembershipError::VoterAndLearner(*both));
                    }
                    learners = new_learners.clone();
                    if *new_voters != m.voters {
                        outgoing = m.voters.clone();
                        voters = new_voters.clone();
                    }
                }
                MembershipChange::LeaveJoint => {
                    if !joint {
                        return Err(MembershipError::NotInJoint);
                    }
                    outgoing.clear();
                }
            }
            if voters.is_empty() {
                return Err(MembershipError::NoVotersLeft);
            }
            // A change may leave an oversized configuration as large as it was, never larger.
            let grows = voters.len() > m.voters.len();
            if grows && voters.len() > max_voters {
                return Err(MembershipError::TooManyVoters {
                    voters: voters.len(),
                    max: max_voters,
                });
            }
            Ok(Membership { voters, outgoing, learners })
        }

        /// A majority of `set` agrees, counted one by one.
        fn naive_majority(set: &BTreeSet<NodeId>, agrees: &dyn Fn(NodeId) -> bool) -> bool {
            let mut yes = 0;
            for &id in set {
                if agrees(id) {
                    yes += 1;
                }
            }
            2 * yes > set.len()
        }

        fn naive_quorum(m: &Membership, agrees: &dyn Fn(NodeId) -> bool) -> bool {
            !m.voters.is_empty()
                && naive_majority(&m.voters, agrees)
                && (m.outgoing.is_empty() || naive_majority(&m.outgoing, agrees))
        }

        proptest! {
            #[test]
            fn quorum_commit_and_votes_match_brute_force(
                m in membership(),
                matches in proptest::collection::vec(0u64..6, 8),
                votes in proptest::collection::vec(proptest::option::of(any::<bool>()), 8),
            ) {
                let match_of = |id: NodeId| LogIndex(matches[id.0 as usize]);
                // Commit: the highest index a quorum stores, found by trying every index.
                let naive_commit = (0..6u64)
                    .rev()
                    .find(|&i| naive_quorum(&m, &|id| match_of(id).0 >= i))
                    .unwrap_or(0);
                if !m.voters.is_empty() {
                    prop_assert_eq!(m.committed_index(match_of), LogIndex(naive_commit));
                }
                let granted = |id: NodeId| votes[id.0 as usize] == Some(true);
                prop_assert_eq!(m.has_quorum(granted), naive_quorum(&m, &granted));
                // Votes: won with a granting quorum; lost once refusals rule one out.
                let ballots: BTreeMap<NodeId, bool> = (1u64..7)
                    .filter_map(|id| votes[id as usize].map(|vote| (NodeId(id), vote)))
                    .collect();
                let still_possible = naive_quorum(&m, &|id| votes[id.0 as usize] != Some(false));
                let expected = if m.voters.is_empty() {
                    VoteResult::Pending
                } else if naive_quorum(&m, &granted) {
                    VoteResult::Won
                } else if !still_possible {
                    VoteResult::Lost
                } else {
                    VoteResult::Pending
                };
                prop_assert_eq!(m.vote_result(&ballots), expected);
            }

            #[test]
            fn configuration_changes_match_the_set_rules(
                m in membership(),
                change in change(),
                max_voters in 1usize..7,
            ) {
                prop_assert_eq!(m.apply(&change, max_voters), naive_apply(&m, &change, max_voters));
            }

            #[test]
            fn configuration_changes_keep_their_promises(
                m in membership(),
                change in change(),
                max_voters in 1usize..7,
            ) {
                let Ok(next) = m.apply(&change, max_voters) else { return Ok(()) };
                prop_assert!(!next.voters.is_empty());
                prop_assert!(next.voters.is_disjoint(&next.learners));
                let grew_past_limit = next.voters.len() > max_voters && next.voters.len() > m.voters.len();
                prop_assert!(!grew_past_limit);
                match &change {
                    MembershipChange::LeaveJoint => {
                        prop_assert!(m.is_joint() && !next.is_joint());
                        prop_assert_eq!(&next.voters, &m.voters);
                    }
                    MembershipChange::Replace { voters, .. } => {
                        prop_assert!(!m.is_joint());
                        prop_assert_eq!(&next.voters, voters);
                        // Several voters change only through joint consensus (from an empty
                        // configuration there is nothing to be joint with).
                        let joint = *voters != m.voters && !m.voters.is_empty();
                        prop_assert_eq!(next.is_joint(), joint);
                        if joint {
                            prop_assert_eq!(&next.outgoing, &m.voters);
                        }
                    }
                    _ => {
                        // A single-server change moves at most one voter (thesis §4.1) and
                        // never starts a joint configuration.
                        prop_assert!(!m.is_joint() && !next.is_joint());
                        prop_assert!(next.voters.symmetric_difference(&m.voters).count() <= 1);
                    }
                }
            }
        }
    }
}
