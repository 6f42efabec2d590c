//! A fast, deterministic hasher for the simulator's lookup-only hash maps.
//!
//! The standard library's SipHash resists hash flooding, which the simulator's own keys (log
//! positions, interned value ids) never need, and it cost about 3% of a campaign. This one
//! multiplies and rotates a word at a time. It is unkeyed, so it is also the same in every
//! run; none of these maps is iterated into an output or a trace anyway.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` with [`WordHasher`].
pub type FastHashMap<K, V> = HashMap<K, V, BuildHasherDefault<WordHasher>>;

/// A `HashSet` with [`WordHasher`].
pub type FastHashSet<K> = HashSet<K, BuildHasherDefault<WordHasher>>;

/// Folds each word into the state with a rotate, an xor and a multiply by an odd constant.
#[derive(Clone, Copy, Debug, Default)]
pub struct WordHasher {
    state: u64,
}

/// An odd constant with well-spread bits (the golden ratio's 64-bit fraction).
const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

impl WordHasher {
    fn add(&mut self, word: u64) {
        self.state = (self.state.rotate_left(5) ^ word).wrapping_mul(MULTIPLIER);
    }
}

impl Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("chunks of 8")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, value: u8) {
        self.add(u64::from(value));
    }

    fn write_u32(&mut self, value: u32) {
        self.add(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.add(value);
    }

    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }

    fn finish(&self) -> u64 {
        // The high bits are the best mixed; hashbrown takes its control bits from the top.
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, Hash};

    fn hash_of<T: Hash>(value: &T) -> u64 {
        BuildHasherDefault::<WordHasher>::default().hash_one(value)
    }

    #[test]
    fn equal_keys_hash_equal_and_nearby_keys_differ() {
        assert_eq!(hash_of(&(3u64, 7u64)), hash_of(&(3u64, 7u64)));
        let hashes: FastHashSet<u64> = (0..10_000u64).map(|i| hash_of(&(i, 1u64))).collect();
        assert_eq!(hashes.len(), 10_000, "no collision among nearby keys");
        assert_ne!(hash_of(&"ab"), hash_of(&"ba"));
    }

    #[test]
    fn a_map_with_it_finds_what_it_holds() {
        let mut map = FastHashMap::default();
        for i in 0..1_000u32 {
            map.insert((i, i * 3), i);
        }
        assert!((0..1_000u32).all(|i| map.get(&(i, i * 3)) == Some(&i)));
        assert_eq!(map.get(&(1, 1)), None);
    }
}
