//! The end-of-run checks besides linearizability: no acknowledged write lost, every member
//! holding the same values.

use std::collections::BTreeMap;
use std::time::Duration;

use stepraft_kv::client::KvClient;
use stepraft_sim::history::Key;

/// What each member holds for each key: member id → key → value (`Err`: the read failed).
pub type Stored = BTreeMap<u64, BTreeMap<Key, Result<Option<String>, String>>>;

/// Reads `keys` (history key, server name) from every member's local state, a thread per
/// member.
pub fn read_everywhere(members: &[(u64, String)], keys: &[(Key, String)]) -> Stored {
    std::thread::scope(|scope| {
        let readers: Vec<_> = members
            .iter()
            .map(|(id, address)| {
                scope.spawn(move || {
                    let mut kv = KvClient::new(vec![address.clone()], Duration::from_secs(3));
                    let values = keys
                        .iter()
                        .map(|(key, name)| (*key, kv.get(name, true).map_err(|e| e.to_string())))
                        .collect();
                    (*id, values)
                })
            })
            .collect();
        readers.into_iter().filter_map(|reader| reader.join().ok()).collect()
    })
}

/// Every acknowledged write that some member does not hold with its value.
pub fn lost_writes(
    acknowledged: &[Key],
    stored: &Stored,
    value_of: impl Fn(Key) -> String,
) -> Vec<String> {
    let mut lost = Vec::new();
    for (member, values) in stored {
        for &key in acknowledged {
            let expected = value_of(key);
            match values.get(&key) {
                Some(Ok(Some(value))) if *value == expected => {}
                found => lost.push(format!(
                    "acknowledged write of key {key} ({expected:?}) is not on node {member}: {found:?}"
                )),
            }
        }
    }
    lost
}

/// A violation for every key on which the members disagree.
pub fn divergence(stored: &Stored) -> Vec<String> {
    let mut by_key: BTreeMap<Key, BTreeMap<String, Vec<u64>>> = BTreeMap::new();
    for (member, values) in stored {
        for (key, value) in values {
            by_key.entry(*key).or_default().entry(format!("{value:?}")).or_default().push(*member);
        }
    }
    by_key
        .into_iter()
        .filter(|(_, values)| values.len() > 1)
        .map(|(key, values)| format!("members disagree on key {key}: {values:?}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    type Member<'a> = (u64, &'a [(Key, Option<&'a str>)]);

    fn stored(members: &[Member<'_>]) -> Stored {
        members
            .iter()
            .map(|(id, values)| {
                let values = values.iter().map(|(k, v)| (*k, Ok(v.map(str::to_owned)))).collect();
                (*id, values)
            })
            .collect()
    }

    #[test]
    fn a_write_missing_or_different_on_one_member_is_lost() {
        let value = |key: Key| format!("w{key}");
        let all = stored(&[
            (1, &[(7, Some("w7")), (8, Some("w8"))]),
            (2, &[(7, Some("w7")), (8, Some("w8"))]),
        ]);
        assert!(lost_writes(&[7, 8], &all, value).is_empty());
        let missing =
            stored(&[(1, &[(7, Some("w7")), (8, Some("w8"))]), (2, &[(7, Some("w7")), (8, None)])]);
        let lost = lost_writes(&[7, 8], &missing, value);
        assert_eq!(lost.len(), 1);
        assert!(lost[0].contains("key 8") && lost[0].contains("node 2"), "{lost:?}");
        let wrong = stored(&[(1, &[(7, Some("x"))])]);
        assert_eq!(lost_writes(&[7], &wrong, value).len(), 1);
    }

    #[test]
    fn members_that_disagree_on_a_key_are_reported() {
        let agree = stored(&[(1, &[(0, Some("a")), (1, None)]), (2, &[(0, Some("a")), (1, None)])]);
        assert!(divergence(&agree).is_empty());
        let disagree =
            stored(&[(1, &[(0, Some("a"))]), (2, &[(0, Some("b"))]), (3, &[(0, Some("a"))])]);
        let found = divergence(&disagree);
        assert_eq!(found.len(), 1);
        assert!(found[0].contains("key 0"), "{found:?}");
    }
}
