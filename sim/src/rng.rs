//! Independent random streams derived from one seed.
//!
//! Each concern (the fault profile, the network, the fault scheduler, the clients, each node)
//! draws from its own ChaCha stream keyed by the seed and a label. Adding draws to one concern
//! therefore never shifts the decisions of another, so a new fault type does not reshuffle the
//! schedules of existing seeds.

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

/// The concerns that draw randomness, each with its own stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// The fault profile drawn once per seed.
    Profile,
    /// Message loss, duplication and latency.
    Network,
    /// Fault and workload decisions: crashes, partitions, pauses, transfers, membership
    /// changes (a run records them as its schedule).
    Faults,
    /// The client workload: operations and think times (recorded too).
    Clients,
    /// The nodes' replication limits (batch sizes, flow-control windows).
    Tuning,
    /// One node's own RNG (election jitter inside the core).
    Node(u64),
    /// Mechanics that are not decisions: clock skews, tick phases, disk latencies, where a
    /// mid-step crash strikes.
    Mechanics,
    /// Which node a client retries at.
    Routing,
    /// The discovery workload: arrivals, announcement delays, losses and repeats.
    Discovery,
}

impl Stream {
    fn key(self) -> u64 {
        match self {
            Stream::Profile => 1,
            Stream::Network => 2,
            Stream::Faults => 3,
            Stream::Clients => 4,
            Stream::Tuning => 5,
            Stream::Mechanics => 6,
            Stream::Routing => 7,
            Stream::Discovery => 8,
            Stream::Node(id) => 0x100 + id,
        }
    }
}

/// A 64-bit mix (SplitMix64's finalizer): spreads nearby seeds far apart.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of `stream` for simulation seed `seed`.
pub fn stream_seed(seed: u64, stream: Stream) -> u64 {
    mix(mix(seed) ^ mix(stream.key().wrapping_mul(0x9E37_79B9_7F4A_7C15)))
}

/// A random source for one concern.
#[derive(Clone, Debug)]
pub struct SimRng(ChaCha8Rng);

impl SimRng {
    /// The stream `stream` of simulation `seed`.
    pub fn new(seed: u64, stream: Stream) -> SimRng {
        SimRng(ChaCha8Rng::seed_from_u64(stream_seed(seed, stream)))
    }

    /// A uniform `u64`.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// A uniform value in `0..bound` (`0` when `bound == 0`).
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// A uniform value in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high.saturating_sub(low).saturating_add(1))
    }

    /// A uniform float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    /// A uniformly chosen element.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            return None;
        }
        items.get(self.below(items.len() as u64) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_independent_and_reproducible() {
        let mut a = SimRng::new(42, Stream::Network);
        let mut b = SimRng::new(42, Stream::Network);
        let mut c = SimRng::new(42, Stream::Faults);
        let (xa, xb, xc) = (a.next_u64(), b.next_u64(), c.next_u64());
        assert_eq!(xa, xb);
        assert_ne!(xa, xc);
        assert_ne!(SimRng::new(43, Stream::Network).next_u64(), xa);
    }

    #[test]
    fn bounded_draws_stay_in_range() {
        let mut rng = SimRng::new(1, Stream::Clients);
        for _ in 0..1000 {
            assert!(rng.below(7) < 7);
            let x = rng.between(3, 5);
            assert!((3..=5).contains(&x));
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
        }
        assert_eq!(rng.below(0), 0);
    }
}
