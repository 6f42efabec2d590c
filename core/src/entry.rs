//! Log entries and the payloads they carry.

#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

use std::sync::Arc;

use crate::membership::Membership;
use crate::types::{LogIndex, Term};

/// An application command that can be replicated.
///
/// The core never looks inside a command; it only needs its size to honour the byte limits of
/// [`Config`](crate::Config) (`bytes_per_message_max`, `uncommitted_bytes_max`). The default is
/// the in-memory size of the value, which is right for plain-old-data commands; types that own
/// heap data should report that too.
pub trait Command: Clone {
    /// The number of bytes this command adds to a message or to the uncommitted log.
    fn size_bytes(&self) -> usize {
        core::mem::size_of::<Self>()
    }
}

impl Command for Vec<u8> {
    fn size_bytes(&self) -> usize {
        self.len()
    }
}

impl Command for String {
    fn size_bytes(&self) -> usize {
        self.len()
    }
}

impl Command for Box<[u8]> {
    fn size_bytes(&self) -> usize {
        self.len()
    }
}

impl Command for &'static str {
    fn size_bytes(&self) -> usize {
        self.len()
    }
}

/// Shared bytes: cloning a command (into messages, persists and applies) only bumps a count.
impl Command for std::sync::Arc<[u8]> {
    fn size_bytes(&self) -> usize {
        self.len()
    }
}

impl Command for std::sync::Arc<str> {
    fn size_bytes(&self) -> usize {
        self.len()
    }
}

impl Command for u64 {}
impl Command for u32 {}
impl Command for () {}

/// What one log entry carries.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
#[non_exhaustive]
pub enum Payload<T> {
    /// A command proposed by the application.
    Command(T),
    /// An entry the core appends for itself: a new leader's no-op, or a cluster
    /// configuration (see [`Internal`]). The application applies it by ignoring it.
    Internal(Internal),
}

/// What an internal entry carries: nothing (a no-op), or a cluster configuration.
///
/// * A **no-op** is the empty entry a new leader appends so that it can commit entries of
///   earlier terms (§5.4.2, §8).
/// * A **configuration** takes effect as soon as it is appended to a log (thesis §4.1), and
///   is undone if a conflicting leader truncates it.
///
/// Both live in one variant of [`Payload`] holding an optional shared pointer: with a command
/// type that has a single spare bit pattern (`Arc<[u8]>`, `Box<[u8]>`), a payload then takes
/// no more room than the command itself, so every log entry is 8 bytes smaller than with a
/// variant per kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize), serde(transparent))]
pub struct Internal(Option<Arc<Membership>>);

impl Internal {
    /// A no-op.
    pub fn noop() -> Internal {
        // Equal to `Internal::default()` by design (cargo-mutants' "replace with
        // Default::default()" here is an equivalent mutant).
        Internal(None)
    }

    /// A configuration entry.
    pub fn configuration(membership: Membership) -> Internal {
        Internal(Some(Arc::new(membership)))
    }

    /// The configuration this entry carries, if it is one.
    pub fn membership(&self) -> Option<&Membership> {
        self.0.as_deref()
    }

    /// Whether this is a no-op.
    pub fn is_noop(&self) -> bool {
        self.0.is_none()
    }
}

impl<T> Payload<T> {
    /// A no-op payload.
    pub fn noop() -> Payload<T> {
        Payload::Internal(Internal::noop())
    }

    /// A configuration payload.
    pub fn configuration(membership: Membership) -> Payload<T> {
        Payload::Internal(Internal::configuration(membership))
    }

    /// The configuration this payload carries, if it is one.
    pub fn membership(&self) -> Option<&Membership> {
        match self {
            Payload::Internal(internal) => internal.membership(),
            Payload::Command(_) => None,
        }
    }

    /// Whether this is a no-op.
    pub fn is_noop(&self) -> bool {
        matches!(self, Payload::Internal(internal) if internal.is_noop())
    }
}

/// One entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Serialize, Deserialize))]
pub struct Entry<T> {
    /// The term of the leader that created the entry.
    pub term: Term,
    /// The entry's position in the log (1-based).
    pub index: LogIndex,
    /// What the entry carries.
    pub payload: Payload<T>,
}

impl<T: Command> Entry<T> {
    /// The number of bytes this entry counts for against the configured byte limits.
    pub fn size_bytes(&self) -> usize {
        match &self.payload {
            Payload::Command(command) => command.size_bytes(),
            Payload::Internal(_) => 0,
        }
    }
}

impl<T> Entry<T> {
    /// The application command, if this entry carries one.
    pub fn command(&self) -> Option<&T> {
        match &self.payload {
            Payload::Command(command) => Some(command),
            Payload::Internal(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn byte_commands_count_their_bytes() {
        assert_eq!(vec![1u8, 2, 3].size_bytes(), 3);
        assert_eq!(String::from("four").size_bytes(), 4);
        assert_eq!(Box::<[u8]>::from(&[0u8; 5][..]).size_bytes(), 5);
        assert_eq!("sixsix".size_bytes(), 6);
        assert_eq!(Arc::<[u8]>::from(&[0u8; 7][..]).size_bytes(), 7);
        assert_eq!(Arc::<str>::from("eighteen").size_bytes(), 8);
        // Plain-old-data commands count their in-memory size.
        assert_eq!(7u64.size_bytes(), 8);
    }

    #[test]
    fn an_entry_counts_its_command_and_internal_entries_count_nothing() {
        let entry = |payload| Entry { term: Term(1), index: LogIndex(1), payload };
        assert_eq!(entry(Payload::Command(String::from("abc"))).size_bytes(), 3);
        assert_eq!(entry(Payload::<String>::noop()).size_bytes(), 0);
        let configuration = Payload::<String>::configuration(Membership::default());
        assert_eq!(entry(configuration).size_bytes(), 0);
    }

    #[test]
    fn only_a_noop_is_a_noop() {
        assert!(Internal::noop().is_noop());
        assert!(!Internal::configuration(Membership::default()).is_noop());
        assert!(Payload::<u64>::noop().is_noop());
        assert!(!Payload::<u64>::configuration(Membership::default()).is_noop());
        assert!(!Payload::Command(0u64).is_noop());
    }
}
