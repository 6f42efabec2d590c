//! Campaigns: many seeds in parallel on every core, summarized; a campaign's seeds can be
//! split into shards that run anywhere and whose summaries merge.

mod histogram;
mod summary;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

pub use histogram::Histogram;
pub use summary::CampaignSummary;

use crate::world::{run, Outcome, RunResult, SimConfig};

/// One part of a campaign split `count` ways: the seeds whose position in the campaign's
/// range, modulo `count`, is `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Which part, `0..count`.
    pub index: u64,
    /// How many parts.
    pub count: u64,
}

impl Shard {
    /// The whole campaign.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// Parses `K/N` with `K < N`.
    fn from_str(text: &str) -> Result<Shard, String> {
        let parsed = text.split_once('/').and_then(|(index, count)| {
            Some(Shard { index: index.trim().parse().ok()?, count: count.trim().parse().ok()? })
        });
        match parsed {
            Some(shard) if shard.index < shard.count => Ok(shard),
            _ => Err(format!("expected K/N with 0 <= K < N, got {text:?}")),
        }
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The seeds of a campaign: `first..first + count`, or one shard of that range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedRange {
    /// The first seed of the whole range.
    pub first: u64,
    /// Seeds in the whole range.
    pub count: u64,
    /// The part of the range to run.
    pub shard: Shard,
}

impl SeedRange {
    /// Seeds `first..first + count`.
    pub fn new(first: u64, count: u64) -> SeedRange {
        SeedRange { first, count, shard: Shard::WHOLE }
    }

    /// This range's part `shard`.
    pub fn sharded(self, shard: Shard) -> SeedRange {
        SeedRange { shard, ..self }
    }

    /// How many seeds the shard holds.
    pub fn len(&self) -> u64 {
        let Shard { index, count } = self.shard;
        (self.count + count - 1 - index) / count
    }

    /// Whether the shard holds no seed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`-th seed of the shard (`i < len()`).
    pub fn nth(&self, i: u64) -> u64 {
        self.first + self.shard.index + i * self.shard.count
    }

    /// Every seed of the shard, ascending.
    pub fn seeds(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.len()).map(|i| self.nth(i))
    }
}

/// Runs the seeds of `range` with `template` (its seed is replaced) on `threads` threads.
/// `on_result` sees each result as it completes (for progress and failure reports). Returns
/// the summary and the failing results, by seed.
pub fn run_campaign(
    template: &SimConfig,
    range: SeedRange,
    threads: usize,
    on_result: &(dyn Fn(&RunResult) + Sync),
) -> (CampaignSummary, Vec<RunResult>) {
    let next = AtomicU64::new(0);
    let collected: Mutex<(CampaignSummary, Vec<RunResult>)> = Mutex::default();
    let cpu_nanos = AtomicU64::new(0);
    let started = Instant::now();
    let seeds = range.len();
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| loop {
                let position = next.fetch_add(1, Ordering::Relaxed);
                if position >= seeds {
                    cpu_nanos.fetch_add(thread_cpu_nanos(), Ordering::Relaxed);
                    return;
                }
                let mut config = template.clone();
                config.seed = range.nth(position);
                let result = run(&config);
                on_result(&result);
                let mut guard = collected.lock().expect("no thread panics holding the lock");
                guard.0.add(&result);
                if result.outcome != Outcome::Passed {
                    guard.1.push(result);
                }
            });
        }
    });
    let (mut summary, mut failures) = collected.into_inner().expect("threads joined");
    summary.shard = (range.shard != Shard::WHOLE).then(|| range.shard.to_string());
    summary.wall_secs = started.elapsed().as_secs_f64();
    summary.threads = threads.max(1) as u64;
    summary.cpu_secs = cpu_nanos.into_inner() as f64 / 1e9;
    summary.finish();
    failures.sort_by_key(|result| result.seed);
    (summary, failures)
}

/// CPU time of the calling thread so far, from `/proc/thread-self/schedstat` (nanoseconds on
/// CPU); 0 where that cannot be read.
fn thread_cpu_nanos() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_range() {
        let range = SeedRange::new(100, 10);
        let mut all: Vec<u64> = (0..3)
            .flat_map(|index| range.sharded(Shard { index, count: 3 }).seeds().collect::<Vec<_>>())
            .collect();
        all.sort_unstable();
        assert_eq!(all, (100..110).collect::<Vec<_>>());
        assert_eq!(
            range.sharded(Shard { index: 1, count: 3 }).seeds().collect::<Vec<_>>(),
            [101, 104, 107]
        );
        assert_eq!(SeedRange::new(0, 2).sharded(Shard { index: 2, count: 4 }).len(), 0);
        assert_eq!("2/4".parse(), Ok(Shard { index: 2, count: 4 }));
        assert!("4/4".parse::<Shard>().is_err() && "x".parse::<Shard>().is_err());
    }
}
