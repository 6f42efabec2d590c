//! # stepraft-sim
//!
//! A seeded, discrete-event simulator for the stepraft core. One `u64` seed determines
//! everything — the fault profile (swarm testing), the network's losses, duplications and
//! delays, partitions, crashes (including between two outputs of one step), pauses, clock
//! drift, and the client workload — so any failure replays exactly from its seed. Every run
//! also records its decisions as a [`Schedule`], which runs again as data and shrinks to a
//! minimal failing schedule ([`shrink`]).
//!
//! Checkers run after every event: Election Safety, Log Matching, Leader Completeness, State
//! Machine Safety, Leader Append-Only, monotonic commit/applied/durable term; and after the
//! faults stop, liveness within a stated bound.
//!
//! ```
//! use stepraft_sim::{run, Outcome, SimConfig};
//!
//! let mut config = SimConfig::new(42);
//! config.duration_us = 1_000_000; // one simulated second of faults
//! let result = run(&config);
//! assert_eq!(result.outcome, Outcome::Passed);
//! assert!(result.stats.events > 0);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bench;
pub mod campaign;
pub mod checker;
mod clients;
pub mod discovery;
mod fast_hash;
mod faults;
pub mod history;
pub mod host;
pub mod kv;
pub mod linearizability;
pub mod network;
pub mod profile;
pub mod queue;
pub mod report;
pub mod rng;
pub mod schedule;
pub mod shrink;
mod stepping;
pub mod sweep;
pub mod timeline;
pub mod trace;
pub mod whitebox;
pub mod workload;
mod world;

pub use campaign::{run_campaign, CampaignSummary, SeedRange, Shard};
pub use checker::{Property, SafetyChecker, Violation};
pub use profile::{FaultProfile, ProfileOverrides};
pub use schedule::{Schedule, ScheduledEvent};
pub use world::{run, Outcome, PlantedBug, RunResult, SimConfig, Stats};
