//! A small map keyed by peer id, for the leader's per-peer state.
//!
//! Clusters have a handful of members, and the leader looks a peer up on every answer it
//! receives. A vector sorted by id answers those lookups with a few comparisons over one cache
//! line, where a `BTreeMap` walks node pointers; iteration is in id order all the same, so
//! outputs stay deterministic.

use crate::types::NodeId;

/// Values keyed by [`NodeId`], iterated in ascending id order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PeerMap<V> {
    /// Sorted by id, ids unique.
    entries: Vec<(NodeId, V)>,
}

impl<V> Default for PeerMap<V> {
    fn default() -> Self {
        PeerMap { entries: Vec::new() }
    }
}

impl<V> FromIterator<(NodeId, V)> for PeerMap<V> {
    /// Later duplicates of an id replace earlier ones, as in a map.
    fn from_iter<I: IntoIterator<Item = (NodeId, V)>>(iter: I) -> Self {
        let mut map = PeerMap::default();
        for (id, value) in iter {
            map.insert(id, value);
        }
        map
    }
}

impl<V> PeerMap<V> {
    fn position(&self, id: NodeId) -> Result<usize, usize> {
        self.entries.binary_search_by_key(&id, |&(key, _)| key)
    }

    /// The value of `id`.
    pub(crate) fn get(&self, id: NodeId) -> Option<&V> {
        let position = self.position(id).ok()?;
        Some(&self.entries[position].1)
    }

    /// The value of `id`, mutably.
    pub(crate) fn get_mut(&mut self, id: NodeId) -> Option<&mut V> {
        let position = self.position(id).ok()?;
        Some(&mut self.entries[position].1)
    }

    /// Whether `id` has a value.
    pub(crate) fn contains(&self, id: NodeId) -> bool {
        self.position(id).is_ok()
    }

    /// Sets the value of `id`, replacing any previous one.
    pub(crate) fn insert(&mut self, id: NodeId, value: V) {
        match self.position(id) {
            Ok(position) => self.entries[position].1 = value,
            Err(position) => self.entries.insert(position, (id, value)),
        }
    }

    /// The value of `id`, inserting `make()` first when there is none.
    pub(crate) fn get_or_insert_with(&mut self, id: NodeId, make: impl FnOnce() -> V) -> &mut V {
        let position = match self.position(id) {
            Ok(position) => position,
            Err(position) => {
                self.entries.insert(position, (id, make()));
                position
            }
        };
        &mut self.entries[position].1
    }

    /// Keeps only the entries for which `keep` says so.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(NodeId, &mut V) -> bool) {
        self.entries.retain_mut(|(id, value)| keep(*id, value));
    }

    /// Removes every entry, keeping the allocation.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    /// The first id after `after` (the first id of all with `None`).
    pub(crate) fn key_after(&self, after: Option<NodeId>) -> Option<NodeId> {
        let start = match after {
            None => 0,
            Some(after) => match self.position(after) {
                Ok(position) => position + 1,
                Err(position) => position,
            },
        };
        self.entries.get(start).map(|&(id, _)| id)
    }

    /// The entries, in id order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (NodeId, &V)> + '_ {
        self.entries.iter().map(|(id, value)| (*id, value))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u64, u8),
        GetOrInsert(u64, u8),
        Retain(u8),
        Clear,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..8u64, any::<u8>()).prop_map(|(id, v)| Op::Insert(id, v)),
            2 => (0..8u64, any::<u8>()).prop_map(|(id, v)| Op::GetOrInsert(id, v)),
            1 => any::<u8>().prop_map(Op::Retain),
            1 => Just(Op::Clear),
        ]
    }

    proptest! {
        /// The map behaves as a `BTreeMap` does, lookups and id-ordered iteration included.
        #[test]
        fn behaves_like_a_btree_map(ops in proptest::collection::vec(op(), 0..40)) {
            let mut map = PeerMap::default();
            let mut model = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(id, v) => {
                        map.insert(NodeId(id), v);
                        model.insert(NodeId(id), v);
                    }
                    Op::GetOrInsert(id, v) => {
                        *map.get_or_insert_with(NodeId(id), || v) ^= 1;
                        *model.entry(NodeId(id)).or_insert(v) ^= 1;
                    }
                    Op::Retain(mask) => {
                        map.retain(|id, v| (*v ^ id.0 as u8) & mask != 0);
                        model.retain(|id, v| (*v ^ id.0 as u8) & mask != 0);
                    }
                    Op::Clear => {
                        map.clear();
                        model.clear();
                    }
                }
                let pairs: Vec<(NodeId, u8)> = map.iter().map(|(id, v)| (id, *v)).collect();
                let expected: Vec<(NodeId, u8)> = model.iter().map(|(id, v)| (*id, *v)).collect();
                prop_assert_eq!(pairs, expected);
                for id in 0..9 {
                    let id = NodeId(id);
                    prop_assert_eq!(map.get(id), model.get(&id));
                    prop_assert_eq!(map.contains(id), model.contains_key(&id));
                    let after = model.range((std::ops::Bound::Excluded(id), std::ops::Bound::Unbounded)).next();
                    prop_assert_eq!(map.key_after(Some(id)), after.map(|(id, _)| *id));
                }
                prop_assert_eq!(map.key_after(None), model.keys().next().copied());
            }
        }
    }
}
