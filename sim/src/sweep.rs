//! Sweeps: one campaign per cell of a matrix of cluster sizes, forced fault families and
//! membership churn, so that every family is exercised on its own and together, at every size,
//! instead of only in the mixes that seeds happen to draw.

use serde::{Deserialize, Serialize};

use crate::campaign::{run_campaign, CampaignSummary, SeedRange, Shard};
use crate::profile::{Family, ProfileOverrides};
use crate::world::{RunResult, SimConfig};

/// Which fault families a cell forces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Faults {
    /// This family on, every other off.
    Alone(Family),
    /// Every family on.
    All,
    /// Each seed draws its own families (the default campaign).
    Drawn,
}

impl Faults {
    /// Every choice a sweep covers: each family alone, all together, drawn per seed.
    pub fn every() -> Vec<Faults> {
        let alone = Family::FAULTS.into_iter().map(Faults::Alone);
        alone.chain([Faults::All, Faults::Drawn]).collect()
    }

    /// A short name for tables.
    pub fn name(self) -> String {
        match self {
            Faults::Alone(family) => family.name().to_string(),
            Faults::All => "all".to_string(),
            Faults::Drawn => "drawn".to_string(),
        }
    }
}

/// One cell of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cell {
    /// Cluster size.
    pub nodes: u64,
    /// Forced fault families.
    pub faults: Faults,
    /// Membership changes (with spare nodes) on or off.
    pub membership: bool,
}

impl Cell {
    /// The matrix over `node_counts`: every fault choice, membership churn off and on.
    pub fn matrix(node_counts: &[u64]) -> Vec<Cell> {
        let mut cells = Vec::new();
        for &nodes in node_counts {
            for faults in Faults::every() {
                for membership in [false, true] {
                    cells.push(Cell { nodes, faults, membership });
                }
            }
        }
        cells
    }

    /// The overrides that put a seed in this cell.
    pub fn overrides(&self) -> ProfileOverrides {
        let mut overrides = match self.faults {
            Faults::Alone(family) => {
                let mut overrides = ProfileOverrides::calm();
                overrides.set(family, true);
                overrides
            }
            Faults::All => {
                let mut overrides = ProfileOverrides::default();
                for family in Family::FAULTS {
                    overrides.set(family, true);
                }
                overrides
            }
            Faults::Drawn => ProfileOverrides::default(),
        };
        overrides.set(Family::Membership, self.membership);
        overrides
    }

    /// The simulator configuration of this cell for `base` (durations, bounds).
    pub fn config(&self, base: &SimConfig) -> SimConfig {
        let mut config = base.clone();
        config.nodes = self.nodes;
        config.overrides = self.overrides();
        config
    }

    /// The `run`/`replay` flags that select this cell.
    pub fn flags(&self) -> String {
        let overrides = self.overrides();
        let mut flags = format!("--nodes {}", self.nodes);
        for family in Family::FAULTS.into_iter().chain([Family::Membership]) {
            if let Some(on) = overrides.get(family) {
                flags.push_str(&format!(" --{} {on}", family.name()));
            }
        }
        flags
    }

    /// The cell's name in tables: `5 nodes, crashes, membership on`.
    pub fn name(&self) -> String {
        let membership = if self.membership { "on" } else { "off" };
        format!("{} nodes, {}, membership {membership}", self.nodes, self.faults.name())
    }
}

/// A cell and its campaign's summary.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CellSummary {
    /// The cell's name.
    pub cell: String,
    /// The flags that replay a seed of this cell.
    pub flags: String,
    /// The first seed of the cell's range (before sharding).
    pub first_seed: u64,
    /// The cell's campaign.
    pub summary: CampaignSummary,
}

/// A whole sweep.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SweepSummary {
    /// Seeds run, all cells together.
    pub seeds: u64,
    /// Seeds that failed, all cells together.
    pub violations: u64,
    /// The shard this summary covers (`K/N`), or `None`.
    pub shard: Option<String>,
    /// One entry per cell, in matrix order.
    pub cells: Vec<CellSummary>,
}

impl SweepSummary {
    /// Adds the cells of another shard of the same sweep, cell by cell.
    ///
    /// # Errors
    /// When the two sweeps do not have the same cells.
    pub fn merge(&mut self, other: &SweepSummary) -> Result<(), String> {
        let same_cells = self.cells.len() == other.cells.len()
            && self.cells.iter().zip(&other.cells).all(|(a, b)| a.cell == b.cell);
        if !same_cells {
            return Err("the sweeps have different cells (other --nodes or versions)".into());
        }
        for (cell, theirs) in self.cells.iter_mut().zip(&other.cells) {
            cell.summary.merge(&theirs.summary);
        }
        self.shard = None;
        self.recount();
        Ok(())
    }

    fn recount(&mut self) {
        self.seeds = self.cells.iter().map(|cell| cell.summary.seeds).sum();
        self.violations = self.cells.iter().map(|cell| cell.summary.violations).sum();
    }

    /// Whether any seed of any cell failed.
    pub fn failed(&self) -> bool {
        self.violations > 0
    }
}

/// Runs `seeds_per_cell` seeds in every cell of `cells`, each cell on its own seed range
/// (cell `i` runs `first_seed + i * seeds_per_cell ..`), or the `shard` of each range.
/// `on_result` sees every result with its cell (for progress and failure reports).
pub fn run_sweep(
    base: &SimConfig,
    cells: &[Cell],
    first_seed: u64,
    seeds_per_cell: u64,
    shard: Shard,
    threads: usize,
    on_result: &(dyn Fn(&Cell, &RunResult) + Sync),
) -> SweepSummary {
    let mut sweep = SweepSummary {
        shard: (shard != Shard::WHOLE).then(|| shard.to_string()),
        ..SweepSummary::default()
    };
    for (position, cell) in cells.iter().enumerate() {
        let cell_first = first_seed + position as u64 * seeds_per_cell;
        let range = SeedRange::new(cell_first, seeds_per_cell).sharded(shard);
        let report = |result: &RunResult| on_result(cell, result);
        let (summary, _) = run_campaign(&cell.config(base), range, threads, &report);
        sweep.cells.push(CellSummary {
            cell: cell.name(),
            flags: cell.flags(),
            first_seed: cell_first,
            summary,
        });
    }
    sweep.recount();
    sweep
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::FaultProfile;

    #[test]
    fn the_matrix_covers_every_size_family_and_membership_setting() {
        let cells = Cell::matrix(&[3, 5, 7]);
        assert_eq!(cells.len(), 3 * (Family::FAULTS.len() + 2) * 2);
        let alone = Cell { nodes: 3, faults: Faults::Alone(Family::Crashes), membership: false };
        assert!(cells.contains(&alone));
        let label = FaultProfile::draw(1).with_overrides(&alone.overrides()).label();
        assert_eq!(label, "crashes");
        assert_eq!(
            alone.flags(),
            "--nodes 3 --loss false --duplicate false --spikes false --partitions false \
             --crashes true --pauses false --drift false --transfers false --slow-disks false \
             --membership false"
        );
        let all = Cell { nodes: 7, faults: Faults::All, membership: true };
        let label = FaultProfile::draw(1).with_overrides(&all.overrides()).label();
        assert_eq!(label.split('+').count(), 10, "{label}");
    }

    #[test]
    fn merging_shards_gives_the_whole_sweep() {
        let mut base = SimConfig::new(0);
        base.duration_us = 1_000_000;
        let cells = [Cell { nodes: 3, faults: Faults::Alone(Family::Loss), membership: false }];
        let whole = run_sweep(&base, &cells, 50, 6, Shard::WHOLE, 2, &|_, _| {});
        let mut merged =
            run_sweep(&base, &cells, 50, 6, Shard { index: 0, count: 2 }, 1, &|_, _| {});
        let other = run_sweep(&base, &cells, 50, 6, Shard { index: 1, count: 2 }, 1, &|_, _| {});
        assert_eq!(merged.seeds, 3);
        merged.merge(&other).expect("same cells");
        let (a, b) = (&merged.cells[0].summary, &whole.cells[0].summary);
        assert_eq!(
            (merged.seeds, a.events, a.committed_entries),
            (6, b.events, b.committed_entries)
        );
        assert_eq!(a.catch_up_histogram_ms, b.catch_up_histogram_ms);
        assert_eq!(a.catch_up_ms_p99, b.catch_up_ms_p99);
        assert_eq!(merged.shard, None);
        let mut wrong = whole.clone();
        wrong.cells[0].cell = "another".into();
        assert!(merged.merge(&wrong).is_err());
    }
}
