//! The command the key-value server replicates, and the state machine that applies it.

use serde::{Deserialize, Serialize};
use stepraft::{Command, NodeId};

/// One replicated command: an operation and the tag of the request that proposed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvCommand {
    /// Which request on which node proposed it: that node answers its client when it applies
    /// the entry. Unique because each node numbers its own requests.
    pub tag: Tag,
    /// The operation.
    pub op: KvOp,
}

/// The origin of a command: a node and its request counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Tag {
    /// The node that proposed the command.
    pub node: NodeId,
    /// Which run of that node (its start time): request numbers restart with the process.
    pub incarnation: u64,
    /// That node's request number.
    pub request: u64,
}

/// A state-machine operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvOp {
    /// Set a key.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Remove a key.
    Delete {
        /// The key.
        key: String,
    },
    /// Set `key` to `new` if its value is `expected` (`None`: absent).
    Cas {
        /// The key.
        key: String,
        /// The value required for the swap.
        expected: Option<String>,
        /// The value swapped in.
        new: String,
    },
    /// Record a peer's address in the replicated address book, so that every node can reach
    /// a node added by a membership change.
    SetPeerAddress {
        /// The peer.
        node: NodeId,
        /// Its `host:port`.
        address: String,
    },
}

impl Command for KvCommand {
    fn size_bytes(&self) -> usize {
        let op = match &self.op {
            KvOp::Put { key, value } => key.len() + value.len(),
            KvOp::Delete { key } => key.len(),
            KvOp::Cas { key, expected, new } => {
                key.len() + expected.as_ref().map_or(0, String::len) + new.len()
            }
            KvOp::SetPeerAddress { address, .. } => address.len() + 8,
        };
        op + std::mem::size_of::<Tag>()
    }
}

/// What applying an operation produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvOutcome {
    /// A put, delete or address change took effect.
    Done,
    /// Whether a compare-and-set swapped, and the value it found.
    Cas {
        /// Whether the value was swapped in.
        swapped: bool,
        /// The value before the operation.
        previous: Option<String>,
    },
}

/// The replicated map. Rebuilt on restart from the latest snapshot and the log after it (the
/// core re-emits both after `Node::restore`), so it needs no storage of its own.
///
/// A persistent (structurally shared) ordered map, so that a snapshot's copy costs O(1) where
/// the server applies entries, and the copy is encoded elsewhere while the map moves on; it
/// serializes as an ordinary map (sorted keys and values).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvState {
    values: imbl::OrdMap<String, String>,
}

impl KvState {
    /// Applies `op` and returns its outcome.
    pub fn apply(&mut self, op: &KvOp) -> KvOutcome {
        match op {
            KvOp::Put { key, value } => {
                self.values.insert(key.clone(), value.clone());
                KvOutcome::Done
            }
            KvOp::Delete { key } => {
                self.values.remove(key);
                KvOutcome::Done
            }
            KvOp::Cas { key, expected, new } => {
                let previous = self.values.get(key).cloned();
                let swapped = previous == *expected;
                if swapped {
                    self.values.insert(key.clone(), new.clone());
                }
                KvOutcome::Cas { swapped, previous }
            }
            // The address book lives in the transport; the server updates it on apply.
            KvOp::SetPeerAddress { .. } => KvOutcome::Done,
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&String> {
        self.values.get(key)
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_swaps_only_on_the_expected_value() {
        let mut state = KvState::default();
        let cas = |expected: Option<&str>, new: &str| KvOp::Cas {
            key: "k".into(),
            expected: expected.map(str::to_owned),
            new: new.into(),
        };
        assert_eq!(state.apply(&cas(None, "a")), KvOutcome::Cas { swapped: true, previous: None });
        assert_eq!(
            state.apply(&cas(None, "b")),
            KvOutcome::Cas { swapped: false, previous: Some("a".into()) }
        );
        assert_eq!(
            state.apply(&cas(Some("a"), "c")),
            KvOutcome::Cas { swapped: true, previous: Some("a".into()) }
        );
        assert_eq!(state.get("k").map(String::as_str), Some("c"));
        state.apply(&KvOp::Delete { key: "k".into() });
        assert_eq!(state.get("k"), None);
    }
}
