//! Majority arithmetic: commit indexes and vote tallies. Pure functions over numbers; nothing
//! here knows about messages or roles.

use std::collections::{BTreeMap, BTreeSet};

use crate::types::{LogIndex, NodeId};

/// The number of voters that form a majority of `voter_count`.
pub fn majority(voter_count: usize) -> usize {
    voter_count / 2 + 1
}

/// The highest index that a majority of voters has reached, given each voter's match index.
///
/// The slice is reordered. An empty slice gives `LogIndex(0)`.
pub fn majority_index(match_indexes: &mut [LogIndex]) -> LogIndex {
    if match_indexes.is_empty() {
        return LogIndex(0);
    }
    // Ascending order: the element at n - majority(n) is reached by exactly the majority of
    // voters from it upwards.
    let position = match_indexes.len() - majority(match_indexes.len());
    if match_indexes.len() <= 8 {
        // Real clusters have a handful of voters: an insertion sort is a few comparisons,
        // where a selection has a fixed setup cost on every acknowledgement (1% of a
        // one-entry round in the benchmark; the standard sort costs as much). Both paths give
        // the same index, so cargo-mutants' `<= 8` -> `> 8` is equivalent, as is `>` -> `>=`
        // below: swapping equal indexes leaves the same order.
        for sorted in 1..match_indexes.len() {
            let mut at = sorted;
            while at > 0 && match_indexes[at - 1] > match_indexes[at] {
                match_indexes.swap(at - 1, at);
                at -= 1;
            }
        }
        return match_indexes[position];
    }
    *match_indexes.select_nth_unstable(position).1
}

/// The outcome of an election so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteResult {
    /// A majority granted its vote.
    Won,
    /// Enough voters refused that a majority can no longer grant: the election cannot be won.
    Lost,
    /// Neither yet.
    Pending,
}

/// Counts the votes of `voters` recorded in `votes` (`true` = granted). Votes from non-voters
/// are not counted.
pub fn tally_votes(voters: &BTreeSet<NodeId>, votes: &BTreeMap<NodeId, bool>) -> VoteResult {
    let needed = majority(voters.len());
    let (mut granted, mut refused) = (0, 0);
    for voter in voters {
        match votes.get(voter) {
            Some(true) => granted += 1,
            Some(false) => refused += 1,
            None => {}
        }
    }
    if granted >= needed {
        VoteResult::Won
    } else if refused > voters.len() - needed {
        // Even if every voter yet to answer granted, no majority could form. With an even
        // number of voters that is half of them, one fewer than a majority.
        VoteResult::Lost
    } else {
        VoteResult::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The definition, computed the slow way: the largest index that at least a majority has.
    fn naive_majority_index(match_indexes: &[LogIndex]) -> LogIndex {
        let needed = majority(match_indexes.len());
        match_indexes
            .iter()
            .copied()
            .filter(|&candidate| {
                match_indexes.iter().filter(|&&m| m >= candidate).count() >= needed
            })
            .max()
            .unwrap_or(LogIndex(0))
    }

    #[test]
    fn table() {
        let cases: &[(&[u64], u64)] = &[
            (&[], 0),
            (&[5], 5),
            (&[5, 3], 3),
            (&[5, 3, 1], 3),
            (&[1, 5, 3], 3),
            (&[7, 7, 2, 2], 2),
            (&[9, 8, 7, 1, 1], 7),
            (&[9, 8, 1, 1, 1], 1),
        ];
        for &(indexes, expected) in cases {
            let mut indexes: Vec<LogIndex> = indexes.iter().map(|&i| LogIndex(i)).collect();
            assert_eq!(majority_index(&mut indexes), LogIndex(expected), "{indexes:?}");
        }
    }

    #[test]
    fn votes_are_tallied_over_voters_only() {
        let voters: BTreeSet<NodeId> = [1, 2, 3].map(NodeId).into();
        let mut votes = BTreeMap::new();
        votes.insert(NodeId(1), true);
        votes.insert(NodeId(9), true);
        assert_eq!(tally_votes(&voters, &votes), VoteResult::Pending);
        votes.insert(NodeId(2), false);
        assert_eq!(tally_votes(&voters, &votes), VoteResult::Pending);
        votes.insert(NodeId(3), true);
        assert_eq!(tally_votes(&voters, &votes), VoteResult::Won);
        votes.insert(NodeId(3), false);
        assert_eq!(tally_votes(&voters, &votes), VoteResult::Lost);
    }

    #[test]
    fn with_an_even_number_of_voters_half_refusing_loses() {
        // Found by the brute-force model in membership.rs: two refusals of four (or one of
        // two) leave at most two (one) grants, short of the three (two) a majority needs.
        let four: BTreeSet<NodeId> = [1, 2, 3, 4].map(NodeId).into();
        let votes = BTreeMap::from([(NodeId(1), true), (NodeId(2), false), (NodeId(3), false)]);
        assert_eq!(tally_votes(&four, &votes), VoteResult::Lost);
        let two: BTreeSet<NodeId> = [1, 2].map(NodeId).into();
        assert_eq!(tally_votes(&two, &BTreeMap::from([(NodeId(2), false)])), VoteResult::Lost);
        let one_refusal_of_four = BTreeMap::from([(NodeId(2), false)]);
        assert_eq!(tally_votes(&four, &one_refusal_of_four), VoteResult::Pending);
    }

    proptest! {
        #[test]
        fn majority_index_matches_the_naive_definition(
            indexes in proptest::collection::vec(0u64..50, 0..12)
        ) {
            let mut indexes: Vec<LogIndex> = indexes.into_iter().map(LogIndex).collect();
            let expected = naive_majority_index(&indexes);
            prop_assert_eq!(majority_index(&mut indexes), expected);
        }
    }
}
