//! The replicated key-value state machine the simulated clients use, with client sessions
//! (thesis §6.3): each client numbers its requests and the state machine applies each request
//! once, answering a retried duplicate with the output it recorded the first time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stepraft::{Command, Entry, Payload};

use crate::history::{KvModel, KvOp, KvOutput};
use crate::rng::mix;
use crate::workload::RequestId;

/// The command replicated through the log: which client request, and the operation.
///
/// Its fingerprint is computed once, when it is made: the checkers compare entries by
/// fingerprint on every persist, commit and apply, about fifteen times per entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KvCommand {
    id: RequestId,
    op: KvOp,
    /// `fingerprint_of(id, op)`; a function of the two fields, which never change.
    #[serde(skip)]
    fingerprint: u64,
}

impl Command for KvCommand {
    fn size_bytes(&self) -> usize {
        let value_bytes = match &self.op {
            KvOp::Put { value, .. } | KvOp::Append { value, .. } => value.len(),
            KvOp::Cas { expected, new, .. } => expected.as_deref().map_or(0, str::len) + new.len(),
            KvOp::Get { .. } | KvOp::Delete { .. } => 0,
        };
        24 + value_bytes
    }
}

impl KvCommand {
    /// The command for client request `id`.
    pub fn new(id: RequestId, op: KvOp) -> KvCommand {
        let fingerprint = fingerprint_of(id, &op);
        KvCommand { id, op, fingerprint }
    }

    /// The client and its request number (the session key).
    pub fn id(&self) -> RequestId {
        self.id
    }

    /// The operation.
    pub fn op(&self) -> &KvOp {
        &self.op
    }

    /// A non-zero fingerprint of the whole command (zero is kept for no-ops), stable across
    /// runs and platforms.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }
}

fn fingerprint_of(id: RequestId, op: &KvOp) -> u64 {
    let mut hash = mix(id.client.wrapping_mul(0x1_0000_0001) ^ mix(id.request));
    let mut fold = |bytes: &[u8]| {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            hash = mix(hash ^ u64::from_le_bytes(word));
        }
        hash = mix(hash ^ bytes.len() as u64);
    };
    match op {
        KvOp::Put { key, value } => {
            fold(&[1]);
            fold(&key.to_le_bytes());
            fold(value.as_bytes());
        }
        KvOp::Get { key } => {
            fold(&[2]);
            fold(&key.to_le_bytes());
        }
        KvOp::Append { key, value } => {
            fold(&[3]);
            fold(&key.to_le_bytes());
            fold(value.as_bytes());
        }
        KvOp::Cas { key, expected, new } => {
            fold(&[4]);
            fold(&key.to_le_bytes());
            fold(expected.as_deref().unwrap_or("\u{0}").as_bytes());
            fold(new.as_bytes());
        }
        KvOp::Delete { key } => {
            fold(&[5]);
            fold(&key.to_le_bytes());
        }
    }
    hash | 1
}

/// The state machine of one node: the store and the client sessions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvStore {
    model: KvModel,
    /// Per client: the last request applied and its output.
    sessions: BTreeMap<u64, (u64, KvOutput)>,
}

impl KvStore {
    /// Applies one committed entry; returns the output of its command (the recorded one for a
    /// duplicate), or `None` for a no-op or a request older than the session's latest.
    pub fn apply(&mut self, entry: &Entry<KvCommand>) -> Option<KvOutput> {
        let Payload::Command(command) = &entry.payload else { return None };
        let RequestId { client, request } = command.id();
        match self.sessions.get(&client) {
            Some((last, output)) if *last == request => return Some(output.clone()),
            Some((last, _)) if *last > request => return None,
            _ => {}
        }
        let output = self.model.apply(command.op());
        self.sessions.insert(client, (request, output.clone()));
        Some(output)
    }

    /// What a read of `op`'s key sees now.
    pub fn read(&self, op: &KvOp) -> KvOutput {
        KvOutput::Value(self.model.get(op.key()).cloned())
    }

    /// The snapshot of this store: values and sessions, serialized (JSON, deterministic since
    /// every map is ordered).
    pub fn to_snapshot(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a store always serializes")
    }

    /// The store a snapshot holds; `None` when the bytes are not one.
    pub fn from_snapshot(data: &[u8]) -> Option<KvStore> {
        serde_json::from_slice(data).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepraft::{LogIndex, Term};

    fn entry(index: u64, client: u64, request: u64, op: KvOp) -> Entry<KvCommand> {
        Entry {
            term: Term(1),
            index: LogIndex(index),
            payload: Payload::Command(KvCommand::new(RequestId { client, request }, op)),
        }
    }

    #[test]
    fn a_retried_write_is_applied_once() {
        let mut store = KvStore::default();
        let append = KvOp::Append { key: 1, value: "a".into() };
        assert_eq!(store.apply(&entry(1, 7, 1, append.clone())), Some(KvOutput::Done));
        assert_eq!(store.apply(&entry(2, 7, 1, append)), Some(KvOutput::Done));
        assert_eq!(store.read(&KvOp::Get { key: 1 }), KvOutput::Value(Some("a".into())));
    }

    #[test]
    fn a_duplicate_gets_the_first_output() {
        let mut store = KvStore::default();
        let cas = KvOp::Cas { key: 1, expected: None, new: "x".into() };
        assert_eq!(store.apply(&entry(1, 2, 5, cas.clone())), Some(KvOutput::Swapped(true)));
        // Applied again it would fail (the value is now "x"); the session answers as before.
        assert_eq!(store.apply(&entry(2, 2, 5, cas)), Some(KvOutput::Swapped(true)));
    }

    #[test]
    fn a_snapshot_restores_values_and_sessions() {
        let mut store = KvStore::default();
        store.apply(&entry(1, 7, 1, KvOp::Put { key: 3, value: "v".into() }));
        let restored = KvStore::from_snapshot(&store.to_snapshot()).expect("round trip");
        assert_eq!(restored, store);
        // The session came along: a retried request is still answered, not re-applied.
        let mut restored = restored;
        let retry = entry(2, 7, 1, KvOp::Put { key: 3, value: "other".into() });
        assert_eq!(restored.apply(&retry), Some(KvOutput::Done));
        assert_eq!(restored.read(&KvOp::Get { key: 3 }), KvOutput::Value(Some("v".into())));
        assert_eq!(KvStore::from_snapshot(b"not json"), None);
    }

    #[test]
    fn fingerprints_tell_commands_apart() {
        let id = RequestId { client: 1, request: 1 };
        let a = KvCommand::new(id, KvOp::Get { key: 1 });
        let b = KvCommand::new(id, KvOp::Delete { key: 1 });
        let c = KvCommand::new(RequestId { client: 1, request: 2 }, KvOp::Get { key: 1 });
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
        assert_eq!(a.fingerprint(), KvCommand::new(id, KvOp::Get { key: 1 }).fingerprint());
    }
}
