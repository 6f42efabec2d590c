//! Log entries and the payloads they carry.

#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

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
    /// The empty entry a new leader appends so that it can commit entries of earlier terms
    /// (§5.4.2, §8): it is applied like any entry, and the application ignores it.
    Noop,
    /// A new cluster configuration. It takes effect as soon as it is appended to a log
    /// (thesis §4.1), and is undone if a conflicting leader truncates it. Shared (`Arc`) so
    /// that the rare configuration entry does not make every entry larger, and copies into
    /// messages and persists are cheap.
    Membership(std::sync::Arc<crate::membership::Membership>),
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
            Payload::Noop | Payload::Membership(_) => 0,
        }
    }
}

impl<T> Entry<T> {
    /// The application command, if this entry carries one.
    pub fn command(&self) -> Option<&T> {
        match &self.payload {
            Payload::Command(command) => Some(command),
            Payload::Noop | Payload::Membership(_) => None,
        }
    }
}
