//! The nemesis suite: black-box fault injection against real `stepraft-kv` servers.
//!
//! A run starts a cluster of `stepraft-kv serve` processes on loopback, each behind a proxy
//! that every peer message to it passes through ([`proxy`]), runs concurrent clients that
//! record every operation ([`workload`]), and injects a seeded schedule of faults from the
//! chosen families ([`faults::Fault`]): partitions, one-way cuts, delays, lost messages and
//! reset connections, `kill -9` and restart, SIGSTOP of the leader or a follower, stalled
//! disks, and voters replaced under load. Then it heals everything and checks
//! ([`run::run`]):
//!
//! * the history is linearizable (the simulator's checker judges it);
//! * every acknowledged write is on every member, and the members agree on every key;
//! * every member caught up with the leader, and no server died by itself.
//!
//! ```no_run
//! use std::time::Duration;
//! use stepraft_nemesis::cluster::Transport;
//! use stepraft_nemesis::faults::Fault;
//! use stepraft_nemesis::run::{run, RunOptions};
//!
//! let report = run(&RunOptions {
//!     seed: 1,
//!     nodes: 3,
//!     transport: Transport::Tcp,
//!     lease_reads: true,
//!     duration: Duration::from_secs(20),
//!     faults: Fault::ALL.to_vec(),
//!     clients: 6,
//!     tick_ms: 20,
//!     executable: stepraft_nemesis::server_binary::stepraft_kv(true).expect("server builds"),
//!     directory: std::env::temp_dir().join("stepraft-nemesis"),
//! })
//! .expect("the run starts");
//! assert!(report.violations.is_empty(), "{:?}", report.violations);
//! ```
//!
//! The `stepraft-nemesis` command runs a campaign of such runs and prints its tables.

pub mod checks;
pub mod cluster;
pub mod faults;
pub mod proxy;
pub mod report;
pub mod run;
pub mod server_binary;
pub mod workload;
