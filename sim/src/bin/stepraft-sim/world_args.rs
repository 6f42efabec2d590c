//! The flags that describe the simulated world, shared by `run`, `sweep`, `replay` and
//! `shrink`, and the flags that replay a run.

use clap::{Args, Parser};
use stepraft_sim::profile::Intensity;
use stepraft_sim::{PlantedBug, ProfileOverrides, SimConfig};

/// The simulated world's settings.
#[derive(Args, Clone)]
pub struct WorldArgs {
    /// Nodes in the cluster.
    #[arg(long, default_value_t = 5)]
    pub nodes: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 5)]
    pub clients: u64,
    /// Keys the clients operate on (fewer keys: more contention).
    #[arg(long, default_value_t = 5)]
    pub keys: u64,
    /// Simulated seconds of faults (the safety phase) before the liveness phase.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Simulated seconds the cluster gets to recover once faults stop.
    #[arg(long, default_value_t = 10.0)]
    pub liveness_bound: f64,
    /// Force message loss: on (the seed's intensity, or a default), off, or a probability.
    #[arg(long, value_name = "on|off|P")]
    pub loss: Option<Intensity>,
    /// Force message duplication: on, off, or a probability.
    #[arg(long, value_name = "on|off|P")]
    pub duplicate: Option<Intensity>,
    /// Force partitions on or off.
    #[arg(long)]
    pub partitions: Option<bool>,
    /// Force crashes on or off.
    #[arg(long)]
    pub crashes: Option<bool>,
    /// Force pauses on or off.
    #[arg(long)]
    pub pauses: Option<bool>,
    /// Force leadership transfers (workload) on or off.
    #[arg(long)]
    pub transfers: Option<bool>,
    /// Force latency spikes (long delays that reorder messages) on or off.
    #[arg(long)]
    pub spikes: Option<bool>,
    /// Force slow disks (parallel leader writes landing late) on or off.
    #[arg(long)]
    pub slow_disks: Option<bool>,
    /// Force membership changes (workload, with two spare nodes) on or off.
    #[arg(long)]
    pub membership: Option<bool>,
    /// Force clock drift: on, off, or a bound (fraction of the tick period, e.g. 0.1).
    #[arg(long, value_name = "on|off|F")]
    pub drift: Option<Intensity>,
    /// Force how often nodes snapshot: every N applied entries (0 turns compaction off).
    #[arg(long)]
    pub snapshot_every: Option<u64>,
    /// No faults at all (same as every override off).
    #[arg(long)]
    pub calm: bool,
    /// Plant a bug in the simulated hosts (not in the core), to see the checkers and the
    /// shrinker at work.
    #[arg(long, value_enum)]
    pub plant: Option<Plant>,
    /// Form the cluster from nothing: nodes start knowing nobody, one is the founder, and
    /// they learn of each other from announcements that arrive late, lost and repeated (the
    /// discovery workload; it replaces the membership-change workload).
    #[arg(long)]
    pub discovery: bool,
    /// Run the nodes with PreVote on or off.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub pre_vote: bool,
    /// Run the nodes with CheckQuorum on or off.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub check_quorum: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Plant {
    /// A crash loses the last log entry the host had made durable.
    LoseLastEntryOnCrash,
    /// The network silently loses every snapshot chunk that carries data.
    DropSnapshotChunks,
    /// Under --discovery, every node bootstraps with the nodes it knows (not one founder).
    EveryNodeFounds,
}

impl Plant {
    pub fn bug(self) -> PlantedBug {
        match self {
            Plant::LoseLastEntryOnCrash => PlantedBug::LoseLastEntryOnCrash,
            Plant::DropSnapshotChunks => PlantedBug::DropSnapshotChunks,
            Plant::EveryNodeFounds => PlantedBug::EveryNodeFounds,
        }
    }

    pub fn flag(self) -> &'static str {
        match self {
            Plant::LoseLastEntryOnCrash => "lose-last-entry-on-crash",
            Plant::DropSnapshotChunks => "drop-snapshot-chunks",
            Plant::EveryNodeFounds => "every-node-founds",
        }
    }
}

impl WorldArgs {
    pub fn config(&self, seed: u64) -> SimConfig {
        let mut config = SimConfig::new(seed);
        config.plant = self.plant.map(Plant::bug);
        config.nodes = self.nodes.max(1);
        config.clients = self.clients;
        config.keys = self.keys.max(1);
        config.duration_us = (self.duration * 1e6) as u64;
        config.liveness_bound_us = (self.liveness_bound * 1e6) as u64;
        config.pre_vote = self.pre_vote;
        config.check_quorum = self.check_quorum;
        config.snapshot_every = self.snapshot_every;
        config.discovery = self.discovery;
        config.overrides = if self.calm {
            ProfileOverrides::calm()
        } else {
            ProfileOverrides {
                loss: self.loss,
                duplicate: self.duplicate,
                partitions: self.partitions,
                crashes: self.crashes,
                pauses: self.pauses,
                clock_drift: self.drift,
                transfers: self.transfers,
                spikes: self.spikes,
                slow_disks: self.slow_disks,
                membership: self.membership,
            }
        };
        config
    }

    /// The command-line flags that differ from the defaults, for replay commands.
    pub fn flags(&self) -> String {
        let defaults = WorldArgs::parse_from_defaults();
        let mut flags = String::new();
        if self.nodes != defaults.nodes {
            flags.push_str(&format!(" --nodes {}", self.nodes));
        }
        if self.clients != defaults.clients {
            flags.push_str(&format!(" --clients {}", self.clients));
        }
        if self.keys != defaults.keys {
            flags.push_str(&format!(" --keys {}", self.keys));
        }
        if self.duration != defaults.duration {
            flags.push_str(&format!(" --duration {}", self.duration));
        }
        if self.liveness_bound != defaults.liveness_bound {
            flags.push_str(&format!(" --liveness-bound {}", self.liveness_bound));
        }
        for (name, value) in
            [("loss", self.loss), ("duplicate", self.duplicate), ("drift", self.drift)]
        {
            if let Some(value) = value {
                flags.push_str(&format!(" --{name} {value}"));
            }
        }
        for (name, value) in [
            ("partitions", self.partitions),
            ("crashes", self.crashes),
            ("pauses", self.pauses),
            ("transfers", self.transfers),
            ("spikes", self.spikes),
            ("slow-disks", self.slow_disks),
            ("membership", self.membership),
        ] {
            if let Some(value) = value {
                flags.push_str(&format!(" --{name} {value}"));
            }
        }
        if let Some(every) = self.snapshot_every {
            flags.push_str(&format!(" --snapshot-every {every}"));
        }
        if let Some(plant) = self.plant {
            flags.push_str(&format!(" --plant {}", plant.flag()));
        }
        if self.calm {
            flags.push_str(" --calm");
        }
        if self.discovery {
            flags.push_str(" --discovery");
        }
        if !self.pre_vote {
            flags.push_str(" --pre-vote false");
        }
        if !self.check_quorum {
            flags.push_str(" --check-quorum false");
        }
        flags
    }

    fn parse_from_defaults() -> WorldArgs {
        #[derive(Parser)]
        struct Defaults {
            #[command(flatten)]
            world: WorldArgs,
        }
        Defaults::parse_from(["defaults"]).world
    }
}
