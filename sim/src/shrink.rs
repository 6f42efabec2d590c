//! Shrinking a failing schedule: delta debugging (Zeller's ddmin) over its events, re-running
//! the deterministic simulation each time, until no single event can be removed and the same
//! property still fails.

use crate::checker::Property;
use crate::schedule::Schedule;
use crate::world::{run_outcome, Outcome, SimConfig};

/// The result of shrinking.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// The smallest failing schedule found.
    pub schedule: Schedule,
    /// How the original failed (the shrunk schedule fails the same way).
    pub property: FailureKind,
    /// Simulation runs spent.
    pub runs: u64,
}

/// What "the same failure" means while shrinking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// A checker fired for this property.
    Violated(Property),
    /// The core panicked.
    Panicked,
}

impl FailureKind {
    /// How `outcome` failed, if it did.
    pub fn of(outcome: &Outcome) -> Option<FailureKind> {
        match outcome {
            Outcome::Passed => None,
            Outcome::Violated(violation) => Some(FailureKind::Violated(violation.property)),
            Outcome::Panicked(_) => Some(FailureKind::Panicked),
        }
    }
}

/// Shrinks `schedule`, which must fail, to a 1-minimal schedule failing the same way.
/// `adjust` applies to every run's configuration (e.g. a planted bug). Returns `None` when
/// the schedule does not fail at all.
pub fn shrink(
    schedule: &Schedule,
    adjust: &dyn Fn(&mut SimConfig),
    mut progress: impl FnMut(usize, u64),
) -> Option<Shrunk> {
    let runs = std::cell::Cell::new(0u64);
    let fails = |candidate: &Schedule| -> Option<FailureKind> {
        runs.set(runs.get() + 1);
        let mut config = candidate.config();
        adjust(&mut config);
        FailureKind::of(&run_outcome(&config))
    };
    let target = fails(schedule)?;
    let mut current = schedule.clone();
    let mut chunks = 2usize;
    // ddmin: try removing each of `chunks` slices; on success keep the smaller schedule and
    // coarsen again, otherwise refine until single events have been tried.
    while current.events.len() >= 2 {
        let len = current.events.len();
        let chunk = len.div_ceil(chunks);
        let mut removed_one = false;
        for start in (0..len).step_by(chunk) {
            let end = (start + chunk).min(len);
            let candidate = current.with_events(|position| position < start || position >= end);
            if fails(&candidate) == Some(target) {
                current = candidate;
                chunks = (chunks - 1).max(2);
                removed_one = true;
                break;
            }
        }
        progress(current.events.len(), runs.get());
        if !removed_one {
            if chunk == 1 {
                break;
            }
            chunks = (chunks * 2).min(len);
        }
    }
    if current.events.len() == 1 {
        // Maybe nothing at all is needed.
        let empty = current.with_events(|_| false);
        if fails(&empty) == Some(target) {
            current = empty;
        }
    }
    Some(Shrunk { schedule: current, property: target, runs: runs.get() })
}
