//! Millisecond histograms of simulated durations: exact at 1 ms, small in JSON, and
//! mergeable, so that percentiles of a campaign split into shards are those of the whole.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Counts of durations, by whole simulated milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Histogram {
    counts: BTreeMap<u64, u64>,
}

impl Histogram {
    /// Records one duration in simulated microseconds.
    pub fn record_us(&mut self, us: u64) {
        *self.counts.entry(us / 1000).or_default() += 1;
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (&ms, &count) in &other.counts {
            *self.counts.entry(ms).or_default() += count;
        }
    }

    /// Samples recorded.
    pub fn len(&self) -> u64 {
        self.counts.values().sum()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// The `fraction` percentile (nearest rank), in milliseconds; 0 when empty.
    pub fn percentile_ms(&self, fraction: f64) -> f64 {
        let total = self.len();
        if total == 0 {
            return 0.0;
        }
        let rank = ((total as f64 * fraction).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (&ms, &count) in &self.counts {
            seen += count;
            if seen >= rank {
                return ms as f64;
            }
        }
        self.max_ms()
    }

    /// The largest sample, in milliseconds; 0 when empty.
    pub fn max_ms(&self) -> f64 {
        self.counts.keys().next_back().map_or(0.0, |&ms| ms as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_merged_halves_are_those_of_the_whole() {
        let (mut whole, mut first, mut second) =
            (Histogram::default(), Histogram::default(), Histogram::default());
        for us in (0..1000u64).map(|i| i * 7_919 % 500_000) {
            whole.record_us(us);
            if us % 2 == 0 {
                first.record_us(us)
            } else {
                second.record_us(us)
            }
        }
        first.merge(&second);
        assert_eq!(first, whole);
        assert_eq!(whole.len(), 1000);
        assert!(whole.percentile_ms(0.5) <= whole.percentile_ms(0.99));
        assert!(whole.percentile_ms(0.99) <= whole.max_ms());
    }

    #[test]
    fn nearest_rank_percentiles() {
        let mut histogram = Histogram::default();
        for ms in [10u64, 20, 30, 40] {
            histogram.record_us(ms * 1000 + 999);
        }
        assert_eq!(histogram.percentile_ms(0.5), 20.0);
        assert_eq!(histogram.percentile_ms(0.99), 40.0);
        assert_eq!(histogram.max_ms(), 40.0);
        assert_eq!(Histogram::default().percentile_ms(0.5), 0.0);
    }
}
