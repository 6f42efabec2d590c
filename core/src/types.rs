//! Identifier newtypes: nodes, terms and log positions.
//!
//! Each is a transparent `u64` so it costs nothing, but the compiler keeps a term from being
//! used where an index is meant.

use core::fmt;

#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// The identity of one node in the cluster, chosen by the application.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize), serde(transparent))]
pub struct NodeId(pub u64);

/// A Raft term (§5.1): a logical clock that only moves forward.
///
/// `Term(0)` is the term before any election; no entry carries it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize), serde(transparent))]
pub struct Term(pub u64);

/// A position in the replicated log. The first entry has index 1.
///
/// `LogIndex(0)` names the empty prefix — the position just before the first entry, whose term
/// is `Term(0)` — so "entries after index 0" means the whole log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize), serde(transparent))]
pub struct LogIndex(pub u64);

/// A caller-chosen id that ties a read request to its `ReadReady` or `ReadRejected` output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize), serde(transparent))]
pub struct ReadId(pub u64);

impl Term {
    /// The term that follows this one, or `None` if the term space is exhausted
    /// (only reachable through a hostile peer announcing `u64::MAX`).
    pub fn next(self) -> Option<Term> {
        self.0.checked_add(1).map(Term)
    }
}

impl LogIndex {
    /// The highest index a snapshot may have, from a leader or from a disk: half the index
    /// space. The log after it could reach the end of `u64` only after 2^63 more entries, so
    /// index arithmetic never overflows; a hostile snapshot closer to the end is refused.
    pub const MAX_SNAPSHOT_INDEX: LogIndex = LogIndex(u64::MAX / 2);

    /// The index after this one, saturating at `u64::MAX`.
    pub fn next(self) -> LogIndex {
        LogIndex(self.0.saturating_add(1))
    }

    /// The index before this one, saturating at zero.
    pub fn prev(self) -> LogIndex {
        LogIndex(self.0.saturating_sub(1))
    }

    /// This index moved forward by `count` positions, saturating at `u64::MAX`.
    pub fn plus(self, count: u64) -> LogIndex {
        LogIndex(self.0.saturating_add(count))
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}", self.0)
    }
}

impl fmt::Display for LogIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "i{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_terms_and_indexes_display_with_their_prefix() {
        assert_eq!(NodeId(3).to_string(), "n3");
        assert_eq!(Term(7).to_string(), "t7");
        assert_eq!(LogIndex(42).to_string(), "i42");
    }
}
