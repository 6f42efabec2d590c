//! Latency percentiles of one level.

use std::time::Duration;

/// The latency distribution of the successful requests of one level, in milliseconds; every
/// field is `None` when no request succeeded.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LatencySummary {
    /// Median.
    pub p50_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// 99.9th percentile.
    pub p999_ms: Option<f64>,
    /// The slowest request.
    pub max_ms: Option<f64>,
}

impl LatencySummary {
    /// Summarises `latencies` (in any order; sorted in place).
    pub fn of(latencies: &mut [Duration]) -> LatencySummary {
        latencies.sort_unstable();
        let at = |quantile| percentile(latencies, quantile).map(milliseconds);
        LatencySummary {
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            p999_ms: at(0.999),
            max_ms: latencies.last().copied().map(milliseconds),
        }
    }
}

/// The nearest-rank percentile of `sorted` (ascending): the smallest value that at least
/// `quantile` (0 to 1) of the values do not exceed; `None` for no values.
///
/// # Panics
/// If `quantile` is outside 0..=1 (a caller's bug).
pub fn percentile(sorted: &[Duration], quantile: f64) -> Option<Duration> {
    assert!((0.0..=1.0).contains(&quantile), "quantile {quantile} is not within 0..=1");
    if sorted.is_empty() {
        return None;
    }
    // Rank ceil(q * n), 1-based; the product is rounded first so that 0.999 * 1000 is rank
    // 999 and not 1000 through floating-point error.
    let rank = ((sorted.len() as f64 * quantile * 1e6).round() / 1e6).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: impl IntoIterator<Item = u64>) -> Vec<Duration> {
        values.into_iter().map(Duration::from_millis).collect()
    }

    #[test]
    fn nearest_rank_percentiles_of_known_sets() {
        let one_to_thousand = ms(1..=1000);
        let cases: [(&[Duration], f64, u64); 10] = [
            (&one_to_thousand, 0.50, 500),
            (&one_to_thousand, 0.99, 990),
            (&one_to_thousand, 0.999, 999),
            (&one_to_thousand, 1.0, 1000),
            (&one_to_thousand, 0.0, 1),
            (&one_to_thousand, 0.0001, 1),
            // Fewer values than the quantile resolves: the tail percentiles are the maximum.
            (&ms([7]), 0.999, 7),
            (&ms([1, 2, 3, 4]), 0.50, 2),
            (&ms([1, 2, 3, 4]), 0.99, 4),
            (&ms(1..=10), 0.999, 10),
        ];
        for (values, quantile, expected) in cases {
            assert_eq!(
                percentile(values, quantile),
                Some(Duration::from_millis(expected)),
                "p{} of {} values",
                quantile * 100.0,
                values.len()
            );
        }
    }

    #[test]
    fn no_values_have_no_percentiles() {
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(LatencySummary::of(&mut []), LatencySummary::default());
    }

    #[test]
    fn the_summary_sorts_its_input_and_reports_milliseconds() {
        let mut latencies: Vec<Duration> = (1..=2000).rev().map(Duration::from_micros).collect();
        latencies.swap(3, 1500);
        let summary = LatencySummary::of(&mut latencies);
        let close = |value: Option<f64>, expected: f64| {
            value.is_some_and(|value| (value - expected).abs() < 1e-9)
        };
        assert!(close(summary.p50_ms, 1.0), "{summary:?}");
        assert!(close(summary.p99_ms, 1.98), "{summary:?}");
        assert!(close(summary.p999_ms, 1.998), "{summary:?}");
        assert!(close(summary.max_ms, 2.0), "{summary:?}");
        assert!(latencies.windows(2).all(|pair| pair[0] <= pair[1]));
    }

    #[test]
    #[should_panic(expected = "not within")]
    fn a_quantile_above_one_is_a_bug() {
        let _ = percentile(&ms([1]), 99.0);
    }
}
