//! Swarm testing: every seed first draws which faults are on and how hard they hit.
//!
//! A campaign over many seeds therefore covers calm runs, lossy runs, partition-heavy runs,
//! crash-heavy runs and skewed clocks, rather than one average mix of everything.

use serde::Serialize;

use crate::rng::{SimRng, Stream};
use crate::schedule::{Condition, Schedule};

/// Which faults a run injects, and how often. Probabilities are per message or per fault
/// decision (the fault scheduler decides every `fault_period_us`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FaultProfile {
    /// Probability that any message is lost.
    pub loss: f64,
    /// Fraction of directed links that are flaky.
    pub flaky_link_fraction: f64,
    /// Extra loss probability on a flaky link.
    pub flaky_link_loss: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// Smallest one-way latency, in simulated microseconds.
    pub latency_min_us: u64,
    /// Largest ordinary one-way latency.
    pub latency_max_us: u64,
    /// Probability that a message is delayed far beyond the ordinary latency (reordering).
    pub latency_spike: f64,
    /// Largest delay of a spiked message.
    pub latency_spike_max_us: u64,
    /// Probability per fault decision of starting a partition (when none is active).
    pub partition_rate: f64,
    /// Probability per fault decision of crashing a node.
    pub crash_rate: f64,
    /// Probability that a crash strikes in the middle of a step's outputs.
    pub crash_mid_step: f64,
    /// Probability per fault decision of pausing a node.
    pub pause_rate: f64,
    /// Each node's tick period deviates from nominal by up to this fraction.
    pub clock_drift: f64,
    /// Probability per fault decision of asking the leader to transfer leadership (workload).
    pub transfer_rate: f64,
    /// Longest time a background (parallel leader) write takes to reach the disk.
    pub disk_latency_max_us: u64,
    /// Probability per fault decision of asking the leader for a membership change
    /// (workload); seeds with changes also get spare nodes that start empty.
    pub membership_rate: f64,
}

/// How an override sets a fault family that has an intensity (loss, duplication, drift).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Intensity {
    /// On: the intensity the seed drew, or a moderate default where the seed drew none.
    On,
    /// Off.
    Off,
    /// Exactly this value (a probability, or a fraction of the tick period for drift).
    Exact(f64),
}

impl std::str::FromStr for Intensity {
    type Err = String;

    fn from_str(text: &str) -> Result<Intensity, String> {
        match text {
            "on" | "true" => Ok(Intensity::On),
            "off" | "false" => Ok(Intensity::Off),
            number => match number.parse::<f64>() {
                Ok(value) if (0.0..=1.0).contains(&value) => Ok(Intensity::Exact(value)),
                _ => Err(format!("expected on, off or a number in 0..1, got {text:?}")),
            },
        }
    }
}

impl std::fmt::Display for Intensity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Intensity::On => f.write_str("on"),
            Intensity::Off => f.write_str("off"),
            Intensity::Exact(value) => write!(f, "{value}"),
        }
    }
}

impl Intensity {
    /// The value to use, given what the seed drew and the default for `On`.
    fn apply(self, drawn: f64, default: f64) -> f64 {
        match self {
            Intensity::On if drawn > 0.0 => drawn,
            Intensity::On => default,
            Intensity::Off => 0.0,
            Intensity::Exact(value) => value,
        }
    }
}

/// A fault family (or a workload that acts like one) that campaigns can force on or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// Lost messages (and flaky links).
    Loss,
    /// Duplicated messages.
    Duplication,
    /// Latency spikes: long delays that reorder messages.
    Spikes,
    /// Symmetric and one-way partitions.
    Partitions,
    /// Crashes and restarts from disk, some in the middle of a step's outputs.
    Crashes,
    /// Paused nodes.
    Pauses,
    /// Clock drift.
    Drift,
    /// Leadership transfers (workload).
    Transfers,
    /// Slow disks: background leader writes that land late.
    SlowDisks,
    /// Membership changes with spare nodes (workload).
    Membership,
}

impl Family {
    /// Every family but membership churn, which sweeps treat as a dimension of its own.
    pub const FAULTS: [Family; 9] = [
        Family::Loss,
        Family::Duplication,
        Family::Spikes,
        Family::Partitions,
        Family::Crashes,
        Family::Pauses,
        Family::Drift,
        Family::Transfers,
        Family::SlowDisks,
    ];

    /// The family's name, as its command-line flag spells it.
    pub fn name(self) -> &'static str {
        match self {
            Family::Loss => "loss",
            Family::Duplication => "duplicate",
            Family::Spikes => "spikes",
            Family::Partitions => "partitions",
            Family::Crashes => "crashes",
            Family::Pauses => "pauses",
            Family::Drift => "drift",
            Family::Transfers => "transfers",
            Family::SlowDisks => "slow-disks",
            Family::Membership => "membership",
        }
    }
}

/// Command-line overrides applied after the profile is drawn.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProfileOverrides {
    /// Force message loss on, off, or to a probability.
    pub loss: Option<Intensity>,
    /// Force duplication on, off, or to a probability.
    pub duplicate: Option<Intensity>,
    /// Force partitions on or off.
    pub partitions: Option<bool>,
    /// Force crashes on or off.
    pub crashes: Option<bool>,
    /// Force pauses on or off.
    pub pauses: Option<bool>,
    /// Force clock drift on, off, or to a bound (a fraction of the tick period).
    pub clock_drift: Option<Intensity>,
    /// Force leadership transfers (a workload, not a fault) on or off.
    pub transfers: Option<bool>,
    /// Force latency spikes (reordering delays) on or off.
    pub spikes: Option<bool>,
    /// Force slow disks (background writes landing late) on or off.
    pub slow_disks: Option<bool>,
    /// Force membership changes (a workload) on or off.
    pub membership: Option<bool>,
}

impl ProfileOverrides {
    /// Every fault family off, and no transfers: a calm run.
    pub fn calm() -> ProfileOverrides {
        ProfileOverrides {
            loss: Some(Intensity::Off),
            duplicate: Some(Intensity::Off),
            partitions: Some(false),
            crashes: Some(false),
            pauses: Some(false),
            clock_drift: Some(Intensity::Off),
            transfers: Some(false),
            spikes: Some(false),
            slow_disks: Some(false),
            membership: Some(false),
        }
    }

    /// Forces `family` on or off.
    pub fn set(&mut self, family: Family, on: bool) {
        let intensity = if on { Intensity::On } else { Intensity::Off };
        match family {
            Family::Loss => self.loss = Some(intensity),
            Family::Duplication => self.duplicate = Some(intensity),
            Family::Spikes => self.spikes = Some(on),
            Family::Partitions => self.partitions = Some(on),
            Family::Crashes => self.crashes = Some(on),
            Family::Pauses => self.pauses = Some(on),
            Family::Drift => self.clock_drift = Some(intensity),
            Family::Transfers => self.transfers = Some(on),
            Family::SlowDisks => self.slow_disks = Some(on),
            Family::Membership => self.membership = Some(on),
        }
    }

    /// How `family` is forced, if it is: `Some(true)` on (at any intensity above zero).
    pub fn get(&self, family: Family) -> Option<bool> {
        let on = |intensity: Option<Intensity>| {
            intensity
                .map(|intensity| intensity != Intensity::Off && intensity != Intensity::Exact(0.0))
        };
        match family {
            Family::Loss => on(self.loss),
            Family::Duplication => on(self.duplicate),
            Family::Spikes => self.spikes,
            Family::Partitions => self.partitions,
            Family::Crashes => self.crashes,
            Family::Pauses => self.pauses,
            Family::Drift => on(self.clock_drift),
            Family::Transfers => self.transfers,
            Family::SlowDisks => self.slow_disks,
            Family::Membership => self.membership,
        }
    }
}

impl FaultProfile {
    /// No faults at all: the network is reliable and fast, clocks are exact.
    pub fn calm() -> FaultProfile {
        FaultProfile {
            loss: 0.0,
            flaky_link_fraction: 0.0,
            flaky_link_loss: 0.0,
            duplicate: 0.0,
            latency_min_us: 500,
            latency_max_us: 2_000,
            latency_spike: 0.0,
            latency_spike_max_us: 2_000,
            partition_rate: 0.0,
            crash_rate: 0.0,
            crash_mid_step: 0.0,
            pause_rate: 0.0,
            clock_drift: 0.0,
            transfer_rate: 0.0,
            disk_latency_max_us: 200,
            membership_rate: 0.0,
        }
    }

    /// Draws the profile of `seed`: each fault family is on with probability one half, with
    /// an intensity drawn from its range.
    pub fn draw(seed: u64) -> FaultProfile {
        let mut rng = SimRng::new(seed, Stream::Profile);
        let mut profile = FaultProfile::calm();
        if rng.chance(0.5) {
            profile.loss = 0.01 + 0.2 * rng.unit();
            profile.flaky_link_fraction = 0.3 * rng.unit();
            profile.flaky_link_loss = 0.5 * rng.unit();
        }
        if rng.chance(0.5) {
            profile.duplicate = 0.1 * rng.unit();
        }
        if rng.chance(0.5) {
            profile.latency_min_us = rng.between(100, 5_000);
            profile.latency_max_us = profile.latency_min_us + rng.between(1_000, 40_000);
            profile.latency_spike = 0.05 * rng.unit();
            profile.latency_spike_max_us = rng.between(50_000, 500_000);
        }
        if rng.chance(0.5) {
            profile.partition_rate = 0.02 + 0.2 * rng.unit();
        }
        if rng.chance(0.5) {
            profile.crash_rate = 0.01 + 0.1 * rng.unit();
            profile.crash_mid_step = 0.3 * rng.unit();
        }
        if rng.chance(0.3) {
            profile.pause_rate = 0.01 + 0.05 * rng.unit();
        }
        if rng.chance(0.5) {
            profile.clock_drift = 0.2 * rng.unit();
        }
        // New families draw last, so that older seeds keep their earlier draws.
        if rng.chance(0.3) {
            profile.transfer_rate = 0.02 + 0.08 * rng.unit();
        }
        if rng.chance(0.5) {
            // Slow disks: a leader's own write may land long after its followers'.
            profile.disk_latency_max_us = rng.between(1_000, 30_000);
        }
        if rng.chance(0.4) {
            profile.membership_rate = 0.03 + 0.1 * rng.unit();
        }
        profile
    }

    /// The profile a schedule runs under: the conditions it names keep this profile's values,
    /// every other condition is off, and no fault is drawn (the schedule holds them all).
    pub fn scripted(mut self, schedule: &Schedule) -> FaultProfile {
        let calm = FaultProfile::calm();
        if !schedule.has(Condition::Loss) {
            self.loss = 0.0;
            self.flaky_link_fraction = 0.0;
            self.flaky_link_loss = 0.0;
        }
        if !schedule.has(Condition::Duplication) {
            self.duplicate = 0.0;
        }
        if !schedule.has(Condition::LatencySpikes) {
            self.latency_spike = 0.0;
        }
        if !schedule.has(Condition::ClockDrift) {
            self.clock_drift = 0.0;
        }
        if !schedule.has(Condition::SlowDisks) {
            self.disk_latency_max_us = calm.disk_latency_max_us;
        }
        self.partition_rate = 0.0;
        self.crash_rate = 0.0;
        self.crash_mid_step = 0.0;
        self.pause_rate = 0.0;
        self.transfer_rate = 0.0;
        self.membership_rate = 0.0;
        self
    }

    /// The conditions of this profile that are on.
    pub fn conditions(&self) -> Vec<Condition> {
        let calm = FaultProfile::calm();
        [
            (Condition::Loss, self.loss > 0.0 || self.flaky_link_fraction > 0.0),
            (Condition::Duplication, self.duplicate > 0.0),
            (Condition::LatencySpikes, self.latency_spike > 0.0),
            (Condition::ClockDrift, self.clock_drift > 0.0),
            (Condition::SlowDisks, self.disk_latency_max_us > calm.disk_latency_max_us),
        ]
        .into_iter()
        .filter_map(|(condition, on)| on.then_some(condition))
        .collect()
    }

    /// Applies command-line overrides.
    pub fn with_overrides(mut self, overrides: &ProfileOverrides) -> FaultProfile {
        if let Some(loss) = overrides.loss {
            self.loss = loss.apply(self.loss, 0.05);
            if self.loss == 0.0 {
                self.flaky_link_fraction = 0.0;
            }
        }
        if let Some(duplicate) = overrides.duplicate {
            self.duplicate = duplicate.apply(self.duplicate, 0.03);
        }
        match overrides.partitions {
            Some(false) => self.partition_rate = 0.0,
            Some(true) if self.partition_rate == 0.0 => self.partition_rate = 0.1,
            _ => {}
        }
        match overrides.crashes {
            Some(false) => {
                self.crash_rate = 0.0;
                self.crash_mid_step = 0.0;
            }
            Some(true) if self.crash_rate == 0.0 => {
                self.crash_rate = 0.05;
                self.crash_mid_step = 0.1;
            }
            _ => {}
        }
        match overrides.pauses {
            Some(false) => self.pause_rate = 0.0,
            Some(true) if self.pause_rate == 0.0 => self.pause_rate = 0.03,
            _ => {}
        }
        if let Some(drift) = overrides.clock_drift {
            self.clock_drift = drift.apply(self.clock_drift, 0.1);
        }
        match overrides.spikes {
            Some(false) => self.latency_spike = 0.0,
            Some(true) if self.latency_spike == 0.0 => {
                self.latency_spike = 0.02;
                self.latency_spike_max_us = self.latency_spike_max_us.max(200_000);
            }
            _ => {}
        }
        match overrides.slow_disks {
            Some(false) => self.disk_latency_max_us = FaultProfile::calm().disk_latency_max_us,
            Some(true) if self.disk_latency_max_us <= 200 => self.disk_latency_max_us = 20_000,
            _ => {}
        }
        match overrides.membership {
            Some(false) => self.membership_rate = 0.0,
            Some(true) if self.membership_rate == 0.0 => self.membership_rate = 0.08,
            _ => {}
        }
        match overrides.transfers {
            Some(false) => self.transfer_rate = 0.0,
            Some(true) if self.transfer_rate == 0.0 => self.transfer_rate = 0.05,
            _ => {}
        }
        self
    }

    /// A short name of the regime, for summaries: the fault families that are on.
    pub fn label(&self) -> String {
        let mut parts = Vec::new();
        if self.loss > 0.0 {
            parts.push("lossy");
        }
        if self.duplicate > 0.0 {
            parts.push("dup");
        }
        if self.latency_spike > 0.0 {
            parts.push("slow");
        }
        if self.partition_rate > 0.0 {
            parts.push("partitions");
        }
        if self.crash_rate > 0.0 {
            parts.push("crashes");
        }
        if self.pause_rate > 0.0 {
            parts.push("pauses");
        }
        if self.clock_drift > 0.0 {
            parts.push("drift");
        }
        if self.transfer_rate > 0.0 {
            parts.push("transfers");
        }
        if self.disk_latency_max_us > 200 {
            parts.push("slow-disk");
        }
        if self.membership_rate > 0.0 {
            parts.push("membership");
        }
        if parts.is_empty() {
            "calm".to_string()
        } else {
            parts.join("+")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_draw_different_regimes() {
        let labels: std::collections::BTreeSet<String> =
            (0..3000).map(|seed| FaultProfile::draw(seed).label()).collect();
        assert!(labels.contains("calm"), "some seeds are calm");
        assert!(labels.len() > 30, "many regimes: {labels:?}");
        assert_eq!(FaultProfile::draw(9), FaultProfile::draw(9));
    }

    #[test]
    fn a_family_forced_on_alone_is_the_only_one_on() {
        for family in Family::FAULTS.into_iter().chain([Family::Membership]) {
            let mut overrides = ProfileOverrides::calm();
            overrides.set(family, true);
            assert_eq!(overrides.get(family), Some(true));
            for seed in 0..20 {
                let label = FaultProfile::draw(seed).with_overrides(&overrides).label();
                assert!(!label.contains('+') && label != "calm", "{family:?}: {label}");
            }
        }
        assert_eq!("on".parse(), Ok(Intensity::On));
        assert_eq!("0.25".parse(), Ok(Intensity::Exact(0.25)));
        assert!("2".parse::<Intensity>().is_err());
    }

    #[test]
    fn overrides_switch_families_off() {
        let overrides = ProfileOverrides::calm();
        for seed in 0..50 {
            let profile = FaultProfile::draw(seed).with_overrides(&overrides);
            assert!(!profile.label().contains("lossy"));
            assert_eq!(profile.crash_rate, 0.0);
            assert_eq!(profile.partition_rate, 0.0);
            assert_eq!(profile.label(), "calm");
        }
    }
}
