//! The key-value model shared by the simulated state machine, the client history and both
//! linearizability oracles: operations, their outputs, and the sequential specification.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A key of the simulated store.
pub type Key = u64;

/// A value of the simulated store. Shared, so that the copies every entry and answer makes
/// (in messages, in five logs, in sessions, in the history) cost a reference count, not an
/// allocation: the workload's strings were the simulator's largest source of malloc.
pub type Value = Arc<str>;

/// One operation on one key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum KvOp {
    /// Set the value.
    Put {
        /// The key.
        key: Key,
        /// The new value.
        value: Value,
    },
    /// Read the value.
    Get {
        /// The key.
        key: Key,
    },
    /// Append to the value (an absent value counts as empty).
    Append {
        /// The key.
        key: Key,
        /// What to append.
        value: Value,
    },
    /// Set the value to `new` if it currently equals `expected` (`None` = absent).
    Cas {
        /// The key.
        key: Key,
        /// The value required for the swap.
        expected: Option<Value>,
        /// The value swapped in.
        new: Value,
    },
    /// Remove the key.
    Delete {
        /// The key.
        key: Key,
    },
}

impl KvOp {
    /// The key the operation touches.
    pub fn key(&self) -> Key {
        match self {
            KvOp::Put { key, .. }
            | KvOp::Get { key }
            | KvOp::Append { key, .. }
            | KvOp::Cas { key, .. }
            | KvOp::Delete { key } => *key,
        }
    }

    /// Whether the operation only reads.
    pub fn is_read(&self) -> bool {
        matches!(self, KvOp::Get { .. })
    }
}

/// What an operation returned.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "output", content = "value", rename_all = "snake_case")]
pub enum KvOutput {
    /// A put, append or delete took effect.
    Done,
    /// A get saw this value.
    Value(Option<Value>),
    /// Whether a compare-and-set swapped.
    Swapped(bool),
}

/// The sequential specification of one key: applies `op` to `value` and returns the output.
pub fn apply_to_key(value: &mut Option<Value>, op: &KvOp) -> KvOutput {
    match op {
        KvOp::Put { value: new, .. } => {
            *value = Some(new.clone());
            KvOutput::Done
        }
        KvOp::Get { .. } => KvOutput::Value(value.clone()),
        KvOp::Append { value: suffix, .. } => {
            *value = Some([value.as_deref().unwrap_or(""), suffix].concat().into());
            KvOutput::Done
        }
        KvOp::Cas { expected, new, .. } => {
            let swapped = value == expected;
            if swapped {
                *value = Some(new.clone());
            }
            KvOutput::Swapped(swapped)
        }
        KvOp::Delete { .. } => {
            *value = None;
            KvOutput::Done
        }
    }
}

/// A whole store under the sequential specification.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvModel {
    values: BTreeMap<Key, Value>,
}

impl KvModel {
    /// Applies `op` and returns its output.
    pub fn apply(&mut self, op: &KvOp) -> KvOutput {
        let key = op.key();
        if op.is_read() {
            // Most operations read: no need to take the value out and put it back.
            return KvOutput::Value(self.values.get(&key).cloned());
        }
        let mut value = self.values.get(&key).cloned();
        let output = apply_to_key(&mut value, op);
        match value {
            Some(value) => {
                self.values.insert(key, value);
            }
            None => {
                self.values.remove(&key);
            }
        }
        output
    }

    /// The value of `key`.
    pub fn get(&self, key: Key) -> Option<&Value> {
        self.values.get(&key)
    }
}

/// How an operation ended, as the client saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "output", rename_all = "snake_case")]
pub enum OpOutcome {
    /// Completed with this output.
    Ok(KvOutput),
    /// Definitely did not take effect (refused before reaching the log).
    Failed,
    /// The client gave up: it may or may not have taken effect, at any time after invocation.
    Unknown,
}

/// One operation of a client history: invocation, completion and outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Operation {
    /// The client that issued it (a client has at most one operation in flight).
    pub client: u64,
    /// The operation.
    pub op: KvOp,
    /// When it was invoked, in simulated microseconds.
    pub invoked_us: u64,
    /// When its outcome was known (for `Unknown`, when the client gave up).
    pub completed_us: u64,
    /// How it ended.
    pub outcome: OpOutcome,
}
