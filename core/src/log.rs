//! The in-memory replicated log.
//!
//! Entries are kept in a `Vec` whose first element has index `offset + 1`. Everything up to
//! the offset was compacted into a snapshot; only the offset's own term is still known, so
//! that the entry after it can be checked for consistency (§7).

use std::cmp::Ordering;

use crate::entry::Entry;
use crate::error::TermError;
use crate::types::{LogIndex, Term};

/// A node's log: consecutive entries with non-decreasing terms.
#[derive(Clone, Debug)]
pub(crate) struct RaftLog<T> {
    /// invariant: `entries[i].index == offset + 1 + i`, terms non-decreasing.
    entries: Vec<Entry<T>>,
    /// The index just before the first retained entry.
    offset: LogIndex,
    /// The term of the entry at `offset` (`Term(0)` for the empty prefix).
    offset_term: Term,
}

impl<T> RaftLog<T> {
    /// An empty log.
    pub(crate) fn new() -> RaftLog<T> {
        RaftLog { entries: Vec::new(), offset: LogIndex(0), offset_term: Term(0) }
    }

    /// A log holding `entries`, which the caller has checked are consecutive from
    /// `offset + 1`, after a compacted prefix ending at `(offset, offset_term)`.
    pub(crate) fn from_parts(
        offset: LogIndex,
        offset_term: Term,
        entries: Vec<Entry<T>>,
    ) -> RaftLog<T> {
        debug_assert!(entries.first().is_none_or(|first| first.index == offset.next()));
        RaftLog { entries, offset, offset_term }
    }

    /// The last compacted index (0 when nothing was compacted).
    pub(crate) fn offset(&self) -> LogIndex {
        self.offset
    }

    /// The first index the log holds an entry for (`last_index + 1` when empty).
    pub(crate) fn first_index(&self) -> LogIndex {
        self.offset.next()
    }

    /// The index of the last entry (`offset` when empty).
    pub(crate) fn last_index(&self) -> LogIndex {
        self.offset.plus(self.entries.len() as u64)
    }

    /// The term of the last entry.
    pub(crate) fn last_term(&self) -> Term {
        self.entries.last().map_or(self.offset_term, |entry| entry.term)
    }

    /// The term of the entry at `index`: known for every held entry and for the offset (the
    /// empty prefix, or the last compacted entry); an explicit error otherwise.
    pub(crate) fn term(&self, index: LogIndex) -> Result<Term, TermError> {
        // One three-way comparison rather than `==` then `<`, whose `<=` mutant was equivalent.
        match index.cmp(&self.offset) {
            Ordering::Equal => Ok(self.offset_term),
            Ordering::Less => Err(TermError::Compacted { index, compacted_through: self.offset }),
            Ordering::Greater => self
                .entry(index)
                .map(|entry| entry.term)
                .ok_or(TermError::BeyondLog { index, last_index: self.last_index() }),
        }
    }

    /// The entry at `index`, if the log holds it.
    pub(crate) fn entry(&self, index: LogIndex) -> Option<&Entry<T>> {
        let position = index.0.checked_sub(self.offset.0)?.checked_sub(1)?;
        self.entries.get(usize::try_from(position).ok()?)
    }

    /// Whether the log holds an entry `(index, term)` (or `index` is the empty prefix).
    pub(crate) fn matches(&self, index: LogIndex, term: Term) -> bool {
        self.term(index) == Ok(term)
    }

    /// Entries `from..=to`, clamped to what the log holds.
    pub(crate) fn slice(&self, from: LogIndex, to: LogIndex) -> &[Entry<T>] {
        let start =
            from.0.saturating_sub(self.offset.0.saturating_add(1)).min(self.entries.len() as u64);
        let end = to.0.saturating_sub(self.offset.0).min(self.entries.len() as u64);
        if start >= end {
            return &[];
        }
        &self.entries[start as usize..end as usize]
    }

    /// Appends entries that directly follow the last one.
    pub(crate) fn append(&mut self, entries: impl IntoIterator<Item = Entry<T>>) {
        for entry in entries {
            debug_assert_eq!(entry.index, self.last_index().next(), "invariant: consecutive");
            debug_assert!(entry.term >= self.last_term(), "invariant: terms never decrease");
            self.entries.push(entry);
        }
    }

    /// Appends clones of `entries`, which must continue the log. Cloning an entry only clones
    /// its command (a reference count for shared payloads), so a caller can hand the same
    /// vector on to a persist instead of allocating a second one.
    pub(crate) fn extend_from_slice(&mut self, entries: &[Entry<T>])
    where
        T: Clone,
    {
        debug_assert!(
            entries.first().is_none_or(|first| first.index == self.last_index().next()),
            "invariant: consecutive"
        );
        debug_assert!(
            entries.first().is_none_or(|first| first.term >= self.last_term()),
            "invariant: terms never decrease"
        );
        debug_assert!(
            entries
                .windows(2)
                .all(|pair| pair[1].index == pair[0].index.next() && pair[1].term >= pair[0].term),
            "invariant: consecutive, terms never decrease"
        );
        self.entries.extend_from_slice(entries);
    }

    /// Removes every entry with index `>= from`.
    pub(crate) fn truncate_from(&mut self, from: LogIndex) {
        debug_assert!(from > self.offset, "invariant: never truncate below the offset");
        let keep = from.0.saturating_sub(self.offset.0 + 1).min(self.entries.len() as u64);
        self.entries.truncate(keep as usize);
    }

    /// Drops every entry up to and including `through`, which must be held (or be the
    /// offset): the log then starts right after it.
    pub(crate) fn compact_through(&mut self, through: LogIndex) {
        let Ok(term) = self.term(through) else {
            debug_assert!(false, "compaction point {through:?} is not in the log");
            return;
        };
        let drop = (through.0 - self.offset.0) as usize;
        self.entries.drain(..drop);
        self.offset = through;
        self.offset_term = term;
    }

    /// Discards every entry: the log now ends at `(index, term)`, covered by a snapshot.
    pub(crate) fn reset_to(&mut self, index: LogIndex, term: Term) {
        self.entries.clear();
        self.offset = index;
        self.offset_term = term;
    }

    /// The first index holding an entry of `term`, if any — where a follower tells the leader
    /// to resume after a conflict (fast backtracking). Terms are sorted: a binary search.
    pub(crate) fn first_index_of_term(&self, term: Term) -> Option<LogIndex> {
        let first = self.entries.partition_point(|entry| entry.term < term);
        let entry = self.entries.get(first)?;
        (entry.term == term).then_some(entry.index)
    }

    /// The last index holding an entry of `term`, if any. Terms are sorted, so this is a
    /// binary search.
    pub(crate) fn last_index_of_term(&self, term: Term) -> Option<LogIndex> {
        let after = self.entries.partition_point(|entry| entry.term <= term);
        let candidate = after.checked_sub(1)?;
        let entry = &self.entries[candidate];
        (entry.term == term).then_some(entry.index)
    }

    /// Whether a log ending at `(last_index, last_term)` is at least as up-to-date as this one
    /// (§5.4.1): a later last term wins; with equal last terms, the longer log wins.
    pub(crate) fn is_up_to_date(&self, last_index: LogIndex, last_term: Term) -> bool {
        (last_term, last_index) >= (self.last_term(), self.last_index())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Payload;

    fn log_of_terms(terms: &[u64]) -> RaftLog<u64> {
        let mut log = RaftLog::new();
        log.append(terms.iter().enumerate().map(|(i, &term)| Entry {
            term: Term(term),
            index: LogIndex(i as u64 + 1),
            payload: Payload::Command(i as u64),
        }));
        log
    }

    #[test]
    fn empty_log_has_the_empty_prefix() {
        let log = log_of_terms(&[]);
        assert_eq!(log.last_index(), LogIndex(0));
        assert_eq!(log.last_term(), Term(0));
        assert!(log.matches(LogIndex(0), Term(0)));
        assert_eq!(
            log.term(LogIndex(1)),
            Err(TermError::BeyondLog { index: LogIndex(1), last_index: LogIndex(0) })
        );
    }

    #[test]
    fn lookups_and_slices() {
        let log = log_of_terms(&[1, 1, 2, 3, 3]);
        assert_eq!(log.term(LogIndex(3)), Ok(Term(2)));
        assert!(log.term(LogIndex(6)).is_err());
        assert!(log.term(LogIndex(u64::MAX)).is_err());
        assert_eq!(log.slice(LogIndex(2), LogIndex(4)).len(), 3);
        assert_eq!(log.slice(LogIndex(4), LogIndex(100)).len(), 2);
        assert!(log.slice(LogIndex(6), LogIndex(9)).is_empty());
        assert!(log.slice(LogIndex(3), LogIndex(2)).is_empty());
    }

    #[test]
    fn term_runs_for_backtracking() {
        let log = log_of_terms(&[1, 1, 2, 2, 2, 4]);
        assert_eq!(log.first_index_of_term(Term(2)), Some(LogIndex(3)));
        assert_eq!(log.first_index_of_term(Term(1)), Some(LogIndex(1)));
        assert_eq!(log.first_index_of_term(Term(3)), None);
        assert_eq!(log.last_index_of_term(Term(2)), Some(LogIndex(5)));
        assert_eq!(log.last_index_of_term(Term(3)), None);
        assert_eq!(log.last_index_of_term(Term(4)), Some(LogIndex(6)));
        assert_eq!(log.last_index_of_term(Term(9)), None);
    }

    #[test]
    fn truncation_keeps_the_prefix() {
        let mut log = log_of_terms(&[1, 1, 2, 3]);
        log.truncate_from(LogIndex(3));
        assert_eq!(log.last_index(), LogIndex(2));
        assert_eq!(log.last_term(), Term(1));
        log.truncate_from(LogIndex(10));
        assert_eq!(log.last_index(), LogIndex(2));
    }

    #[test]
    fn a_log_rebuilt_after_a_snapshot_starts_right_after_it() {
        let entry = Entry { term: Term(3), index: LogIndex(6), payload: Payload::Command(6) };
        let log = RaftLog::from_parts(LogIndex(5), Term(2), vec![entry]);
        assert_eq!(
            (log.first_index(), log.last_index(), log.last_term()),
            (LogIndex(6), LogIndex(6), Term(3))
        );
        assert_eq!(log.term(LogIndex(5)), Ok(Term(2)), "the snapshot's last term is known");
        assert!(log.term(LogIndex(4)).is_err());
    }

    #[test]
    fn compaction_keeps_the_suffix_and_reports_compacted_terms() {
        let mut log = log_of_terms(&[1, 1, 2, 3, 3]);
        log.compact_through(LogIndex(3));
        assert_eq!(log.offset(), LogIndex(3));
        assert_eq!(log.first_index(), LogIndex(4));
        assert_eq!(log.last_index(), LogIndex(5));
        assert_eq!(log.term(LogIndex(3)), Ok(Term(2)));
        assert_eq!(
            log.term(LogIndex(2)),
            Err(TermError::Compacted { index: LogIndex(2), compacted_through: LogIndex(3) })
        );
        // Index 0 is compacted too: its "term 0" is no longer a valid answer.
        assert!(log.term(LogIndex(0)).is_err());
        assert!(!log.matches(LogIndex(0), Term(0)));
        assert_eq!(log.slice(LogIndex(1), LogIndex(5)).len(), 2);
        assert_eq!(log.entry(LogIndex(4)).map(|entry| entry.index), Some(LogIndex(4)));
        assert!(log.entry(LogIndex(3)).is_none());
        assert_eq!(log.first_index_of_term(Term(3)), Some(LogIndex(4)));

        log.compact_through(LogIndex(5));
        assert_eq!(log.last_index(), LogIndex(5));
        assert_eq!(log.last_term(), Term(3));
        assert!(log.is_up_to_date(LogIndex(5), Term(3)));

        log.reset_to(LogIndex(9), Term(4));
        assert_eq!(log.last_index(), LogIndex(9));
        assert_eq!(log.last_term(), Term(4));
        assert_eq!(log.first_index(), LogIndex(10));
        log.append([Entry { term: Term(4), index: LogIndex(10), payload: Payload::noop() }]);
        assert_eq!(log.last_index(), LogIndex(10));
    }

    #[test]
    fn up_to_date_rule() {
        let log = log_of_terms(&[1, 2, 2]);
        assert!(log.is_up_to_date(LogIndex(3), Term(2)));
        assert!(log.is_up_to_date(LogIndex(1), Term(3)));
        assert!(!log.is_up_to_date(LogIndex(2), Term(2)));
        assert!(!log.is_up_to_date(LogIndex(9), Term(1)));
    }
}

/// The log against a naive model — every index mapped to its term, plus the compaction point —
/// under random appends, truncations, compactions and resets.
#[cfg(test)]
mod model_tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::entry::Payload;

    #[derive(Clone, Debug)]
    enum Op {
        /// Append `count` entries of the last term + `bump`.
        Append {
            count: u8,
            bump: u8,
        },
        TruncateFrom(u8),
        CompactThrough(u8),
        ResetTo {
            index: u8,
            bump: u8,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (1u8..5, 0u8..2).prop_map(|(count, bump)| Op::Append { count, bump }),
            1 => any::<u8>().prop_map(Op::TruncateFrom),
            1 => any::<u8>().prop_map(Op::CompactThrough),
            1 => (any::<u8>(), 0u8..2).prop_map(|(index, bump)| Op::ResetTo { index, bump }),
        ]
    }

    /// The naive model: the terms of held entries by index, and the compaction point.
    #[derive(Default)]
    struct Model {
        terms: BTreeMap<u64, u64>,
        offset: (u64, u64),
    }

    impl Model {
        fn last(&self) -> (u64, u64) {
            self.terms.iter().next_back().map_or(self.offset, |(&i, &t)| (i, t))
        }
        fn term(&self, index: u64) -> Option<u64> {
            if index == self.offset.0 {
                Some(self.offset.1)
            } else {
                self.terms.get(&index).copied()
            }
        }
    }

    proptest! {
        #[test]
        fn log_matches_a_naive_model(ops in proptest::collection::vec(op(), 1..60)) {
            let mut log: RaftLog<u64> = RaftLog::new();
            let mut model = Model::default();
            for op in ops {
                let (last, last_term) = model.last();
                match op {
                    Op::Append { count, bump } => {
                        let term = last_term + u64::from(bump);
                        let entries: Vec<_> = (1..=u64::from(count))
                            .map(|i| Entry { term: Term(term), index: LogIndex(last + i), payload: Payload::noop() })
                            .collect();
                        for entry in &entries {
                            model.terms.insert(entry.index.0, term);
                        }
                        log.append(entries);
                    }
                    Op::TruncateFrom(from) => {
                        let from = model.offset.0 + 1 + u64::from(from) % (last - model.offset.0 + 2);
                        log.truncate_from(LogIndex(from));
                        model.terms.retain(|&index, _| index < from);
                    }
                    Op::CompactThrough(through) => {
                        let through = model.offset.0 + u64::from(through) % (last - model.offset.0 + 1);
                        let term = model.term(through).expect("held");
                        log.compact_through(LogIndex(through));
                        model.terms.retain(|&index, _| index > through);
                        model.offset = (through, term);
                    }
                    Op::ResetTo { index, bump } => {
                        let index = last + u64::from(index % 8);
                        let term = last_term + u64::from(bump);
                        log.reset_to(LogIndex(index), Term(term));
                        model.terms.clear();
                        model.offset = (index, term);
                    }
                }
                let (last, last_term) = model.last();
                prop_assert_eq!(log.last_index(), LogIndex(last));
                prop_assert_eq!(log.last_term(), Term(last_term));
                prop_assert_eq!(log.first_index(), LogIndex(model.offset.0 + 1));
                for index in 0..last + 3 {
                    let expected = match model.term(index) {
                        Some(term) => Ok(Term(term)),
                        None if index < model.offset.0 => Err(TermError::Compacted {
                            index: LogIndex(index),
                            compacted_through: LogIndex(model.offset.0),
                        }),
                        None => Err(TermError::BeyondLog { index: LogIndex(index), last_index: LogIndex(last) }),
                    };
                    prop_assert_eq!(log.term(LogIndex(index)), expected);
                    let held: Vec<u64> = log.slice(LogIndex(index), LogIndex(last)).iter().map(|e| e.index.0).collect();
                    let want: Vec<u64> = model.terms.range(index..).map(|(&i, _)| i).collect();
                    prop_assert_eq!(held, want);
                    if let Some(term) = model.term(index).filter(|_| index > model.offset.0) {
                        let first = model.terms.iter().find(|(_, &t)| t == term).map(|(&i, _)| LogIndex(i));
                        prop_assert_eq!(log.first_index_of_term(Term(term)), first);
                        let last_of = model.terms.iter().rev().find(|(_, &t)| t == term).map(|(&i, _)| LogIndex(i));
                        prop_assert_eq!(log.last_index_of_term(Term(term)), last_of);
                    }
                }
            }
        }
    }
}
