//! Fault and workload schedules as data.
//!
//! A seed's run draws its faults (crashes, pauses, partitions), its workload decisions
//! (leadership transfers, membership changes, client operations) and its network conditions
//! (loss, duplication, latency spikes, clock drift, slow disks) from the seed's streams. Every
//! run records those decisions as a [`Schedule`]; running a schedule executes exactly its
//! events instead of drawing new ones. Replaying a seed's recorded schedule reproduces the run,
//! and a schedule with events removed is still a valid run — which is what shrinking needs.
//!
//! The mechanics that are not decisions (message latencies and losses, election jitter, disk
//! latencies, where in a step a crash strikes, where a client retries) keep coming from the
//! seed's own streams, separate from the decision streams, so that they replay identically.

use std::path::Path;

use serde::{Deserialize, Serialize};
use stepraft::MembershipChange;

use crate::history::KvOp;
use crate::workload::ReadMode;
use crate::world::SimConfig;

/// A run as data: the world it runs in and the events that happen in it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// The seed of the mechanics streams (network, nodes, tuning, disk, routing).
    pub seed: u64,
    /// Voting nodes at the start.
    pub nodes: u64,
    /// Whether two spare (passive) nodes exist for membership changes.
    pub spares: bool,
    /// Clients (each runs one scripted operation at a time).
    pub clients: u64,
    /// Keys the operations use.
    pub keys: u64,
    /// Length of the safety phase, in simulated microseconds.
    pub duration_us: u64,
    /// The liveness bound after the safety phase.
    pub liveness_bound_us: u64,
    /// The nodes' PreVote flag.
    pub pre_vote: bool,
    /// The nodes' CheckQuorum flag.
    pub check_quorum: bool,
    /// Snapshot every this many applied entries (0: never).
    pub snapshot_every: u64,
    /// The nodes start knowing nobody and learn of each other from the discovery workload.
    #[serde(default)]
    pub discovery: bool,
    /// The events, in time order.
    pub events: Vec<ScheduledEvent>,
}

/// One event at one simulated instant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduledEvent {
    /// When, in simulated microseconds from the start (conditions: always 0).
    pub at_us: u64,
    /// What.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What a scheduled event does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// A network or clock condition holds for the whole run (removing it turns it off).
    Condition {
        /// Which one.
        condition: Condition,
    },
    /// Node `node` crashes (now, or inside its next step when `mid_step`) and restarts
    /// `down_us` later.
    Crash {
        /// The node.
        node: u64,
        /// Whether the crash strikes between two outputs of the node's next step.
        mid_step: bool,
        /// How long the node stays down.
        down_us: u64,
    },
    /// Node `node` stops stepping for `for_us`, then processes its backlog.
    Pause {
        /// The node.
        node: u64,
        /// How long.
        for_us: u64,
    },
    /// These directed links drop everything until the network heals `heal_after_us` later.
    Partition {
        /// What kind of partition it was drawn as (for reports).
        shape: String,
        /// `(from, to)` links cut.
        cuts: Vec<(u64, u64)>,
        /// When it heals.
        heal_after_us: u64,
    },
    /// The current leader is asked to hand leadership to `to`.
    Transfer {
        /// The target.
        to: u64,
    },
    /// The current leader is asked for a membership change.
    Membership {
        /// The change.
        change: MembershipChange,
    },
    /// Client `client` issues `op` (when it is idle; otherwise once its current one ends).
    ClientOp {
        /// The client.
        client: u64,
        /// The operation.
        op: KvOp,
        /// How a read is served.
        mode: ReadMode,
    },
}

/// A condition of the network or the clocks, as the seed's profile drew it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Random message loss (and flaky links).
    Loss,
    /// Messages delivered twice.
    Duplication,
    /// Messages delayed far beyond the usual latency (reordering).
    LatencySpikes,
    /// Nodes' clocks run at different rates.
    ClockDrift,
    /// Background (parallel leader) writes reach the disk late.
    SlowDisks,
}

impl Schedule {
    /// The simulator configuration that runs this schedule (no trace kept).
    pub fn config(&self) -> SimConfig {
        let mut config = SimConfig::new(self.seed);
        config.nodes = self.nodes;
        config.clients = self.clients;
        config.keys = self.keys;
        config.duration_us = self.duration_us;
        config.liveness_bound_us = self.liveness_bound_us;
        config.pre_vote = self.pre_vote;
        config.check_quorum = self.check_quorum;
        config.snapshot_every = Some(self.snapshot_every);
        config.discovery = self.discovery;
        config.schedule = Some(std::sync::Arc::new(self.clone()));
        config
    }

    /// Whether `condition` holds in this schedule.
    pub fn has(&self, condition: Condition) -> bool {
        self.events.iter().any(|event| match event.kind {
            EventKind::Condition { condition: held } => held == condition,
            _ => false,
        })
    }

    /// The same schedule with only the events whose positions `keep` selects.
    pub fn with_events(&self, keep: impl Fn(usize) -> bool) -> Schedule {
        let events = self
            .events
            .iter()
            .enumerate()
            .filter(|(position, _)| keep(*position))
            .map(|(_, event)| event.clone())
            .collect();
        Schedule { events, ..self.clone() }
    }

    /// The schedule as pretty JSON, the format `replay --schedule` reads.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a schedule always serializes")
    }

    /// Parses a schedule written by [`Schedule::to_json`].
    ///
    /// # Errors
    /// When the text is not a schedule.
    pub fn from_json(text: &str) -> Result<Schedule, String> {
        serde_json::from_str(text).map_err(|error| format!("not a schedule: {error}"))
    }

    /// Reads a schedule file written by [`Schedule::to_json`].
    ///
    /// # Errors
    /// When the file cannot be read or is not a schedule.
    pub fn load(path: &Path) -> Result<Schedule, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        Schedule::from_json(&text).map_err(|error| format!("{}: {error}", path.display()))
    }
}

impl std::fmt::Display for ScheduledEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:>10.3}ms  ", self.at_us as f64 / 1000.0)?;
        match &self.kind {
            EventKind::Condition { condition } => write!(f, "condition {condition:?}"),
            EventKind::Crash { node, mid_step, down_us } => write!(
                f,
                "crash n{node}{} for {:.0} ms",
                if *mid_step { " mid-step" } else { "" },
                *down_us as f64 / 1000.0
            ),
            EventKind::Pause { node, for_us } => {
                write!(f, "pause n{node} for {:.0} ms", *for_us as f64 / 1000.0)
            }
            EventKind::Partition { shape, cuts, heal_after_us } => {
                write!(f, "partition {shape} {cuts:?} for {:.0} ms", *heal_after_us as f64 / 1000.0)
            }
            EventKind::Transfer { to } => write!(f, "transfer leadership to n{to}"),
            EventKind::Membership { change } => write!(f, "membership {change:?}"),
            EventKind::ClientOp { client, op, mode } => {
                write!(f, "client{client} {op:?} ({mode:?})")
            }
        }
    }
}
