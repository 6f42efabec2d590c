//! Campaigns: many seeds in parallel on every core, summarized.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

use crate::world::{run, Outcome, RunResult, SimConfig};

/// Totals over a campaign.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CampaignSummary {
    /// Seeds run.
    pub seeds: u64,
    /// Seeds that violated a property or panicked.
    pub violations: u64,
    /// Violations by property name (`panic` for a crash inside the core).
    pub violations_by_property: BTreeMap<String, u64>,
    /// The failing seeds, ascending.
    pub failing_seeds: Vec<u64>,
    /// Events processed.
    pub events: u64,
    /// Events per wall-clock second, all threads together.
    pub events_per_sec: f64,
    /// Simulated seconds per wall-clock second, all threads together.
    pub sim_to_wall_ratio: f64,
    /// Worker threads the campaign ran on.
    pub threads: u64,
    /// CPU seconds the worker threads spent, summed (Linux; 0 where it cannot be read).
    pub cpu_secs: f64,
    /// Events per second of one core: events over `cpu_secs` (over wall time × threads where
    /// CPU time is unknown). Unlike `events_per_sec`, it does not depend on what else the
    /// machine runs, nor on how many cores it has.
    pub events_per_core_sec: f64,
    /// Simulated seconds per second of one core, measured the same way.
    pub sim_to_wall_ratio_per_core: f64,
    /// Wall-clock seconds.
    pub wall_secs: f64,
    /// Simulated seconds, summed over seeds.
    pub simulated_secs: f64,
    /// Messages sent.
    pub messages_sent: u64,
    /// Messages dropped.
    pub messages_dropped: u64,
    /// Messages duplicated.
    pub messages_duplicated: u64,
    /// Elections started.
    pub elections: u64,
    /// Highest term reached in any seed.
    pub max_term: u64,
    /// Times a node became leader.
    pub leader_changes: u64,
    /// Entries committed (summed over seeds).
    pub committed_entries: u64,
    /// Node crashes.
    pub crashes: u64,
    /// Partitions.
    pub partitions: u64,
    /// Pauses.
    pub pauses: u64,
    /// Client requests acknowledged.
    pub client_ok: u64,
    /// Reads completed (acknowledged).
    pub reads_completed: u64,
    /// Writes completed (acknowledged).
    pub writes_completed: u64,
    /// Seeds whose history the black-box checker proved linearizable.
    pub linearizable_seeds: u64,
    /// Seeds where the black-box checker gave up within its budget (the white-box oracle
    /// still checked them).
    pub linearizability_gave_up: u64,
    /// Wall-clock seconds spent in the two linearizability oracles, all seeds.
    pub checker_secs: f64,
    /// The longest oracle time of one seed, in wall-clock milliseconds.
    pub checker_ms_max: f64,
    /// Worst time to recover after faults stopped, in simulated ms.
    pub recovery_ms_max: f64,
    /// Time from losing a leader (crash, pause, or cut from a majority) to the election of a
    /// successor, simulated ms: median.
    pub time_to_new_leader_ms_p50: f64,
    /// The same, 99th percentile.
    pub time_to_new_leader_ms_p99: f64,
    /// The same, worst case.
    pub time_to_new_leader_ms_max: f64,
    /// How many leader losses were measured.
    pub leader_losses: u64,
    /// Elections started per simulated minute (per seed, averaged over the campaign).
    pub elections_per_min: f64,
    /// Term increases per simulated minute.
    pub term_bumps_per_min: f64,
    /// Healthy leaders deposed (see `Stats::leader_disruptions`).
    pub leader_disruptions: u64,
    /// Leadership transfers requested by the workload.
    pub transfers: u64,
    /// Reads served under a leader lease.
    pub lease_reads: u64,
    /// Membership changes the leader accepted.
    pub membership_accepted: u64,
    /// Membership changes committed.
    pub membership_committed: u64,
    /// Membership changes refused (with a typed reason).
    pub membership_rejected: u64,
    /// Snapshots nodes took.
    pub snapshots_taken: u64,
    /// Snapshot transfers leaders started.
    pub snapshots_sent: u64,
    /// Snapshots followers installed.
    pub snapshots_installed: u64,
    /// Snapshot bytes sent in chunks.
    pub snapshot_chunk_bytes: u64,
    /// The most log entries one node held in memory, over all seeds.
    pub max_log_entries: u64,
    /// Whether any seed panicked inside the core.
    pub panicked: bool,
    /// Whether any seed violated a safety property.
    pub safety_violated: bool,
    #[serde(skip)]
    term_bumps: u64,
    /// Whether any seed failed to recover.
    pub liveness_violated: bool,
}

impl CampaignSummary {
    fn add(&mut self, result: &RunResult) {
        let stats = &result.stats;
        self.seeds += 1;
        self.events += stats.events;
        self.simulated_secs += stats.sim_time_us as f64 / 1e6;
        self.messages_sent += stats.messages_sent;
        self.messages_dropped += stats.messages_dropped;
        self.messages_duplicated += stats.messages_duplicated;
        self.elections += stats.elections;
        self.max_term = self.max_term.max(stats.max_term);
        self.leader_changes += stats.leader_changes;
        self.committed_entries += stats.committed_entries;
        self.crashes += stats.crashes;
        self.partitions += stats.partitions;
        self.pauses += stats.pauses;
        self.client_ok += stats.client_ok;
        self.reads_completed += stats.reads_ok;
        self.writes_completed += stats.writes_ok;
        match stats.linearizability {
            "linearizable" => self.linearizable_seeds += 1,
            "gave-up" => self.linearizability_gave_up += 1,
            _ => {}
        }
        self.checker_secs += stats.checker_us as f64 / 1e6;
        self.checker_ms_max = self.checker_ms_max.max(stats.checker_us as f64 / 1000.0);
        self.leader_disruptions += stats.leader_disruptions;
        self.transfers += stats.transfers;
        self.lease_reads += stats.lease_reads;
        self.membership_accepted += stats.membership_accepted;
        self.membership_committed += stats.membership_committed;
        self.membership_rejected += stats.membership_rejected;
        self.snapshots_taken += stats.snapshots_taken;
        self.snapshots_sent += stats.snapshots_sent;
        self.snapshots_installed += stats.snapshots_installed;
        self.snapshot_chunk_bytes += stats.snapshot_chunk_bytes;
        self.max_log_entries = self.max_log_entries.max(stats.max_log_entries);
        self.term_bumps += stats.max_term;
        if let Some(recovery) = stats.recovery_us {
            self.recovery_ms_max = self.recovery_ms_max.max(recovery as f64 / 1000.0);
        }
        let property = match &result.outcome {
            Outcome::Passed => return,
            Outcome::Violated(violation) => {
                if violation.property.is_safety() {
                    self.safety_violated = true;
                } else {
                    self.liveness_violated = true;
                }
                violation.property.to_string()
            }
            Outcome::Panicked(_) => {
                self.panicked = true;
                "panic".to_string()
            }
        };
        self.violations += 1;
        *self.violations_by_property.entry(property).or_default() += 1;
        self.failing_seeds.push(result.seed);
    }
}

/// Runs seeds `first_seed..first_seed + seeds` with `template` (its seed is replaced) on
/// `threads` threads. `on_result` sees each result as it completes (for progress and failure
/// reports). Returns the summary and the failing results, by seed.
pub fn run_campaign(
    template: &SimConfig,
    first_seed: u64,
    seeds: u64,
    threads: usize,
    on_result: &(dyn Fn(&RunResult) + Sync),
) -> (CampaignSummary, Vec<RunResult>) {
    let next = AtomicU64::new(0);
    let collected: Mutex<(CampaignSummary, Vec<RunResult>)> = Mutex::default();
    let replacement_times: Mutex<Vec<u64>> = Mutex::default();
    let cpu_nanos = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| loop {
                let offset = next.fetch_add(1, Ordering::Relaxed);
                if offset >= seeds {
                    cpu_nanos.fetch_add(thread_cpu_nanos(), Ordering::Relaxed);
                    return;
                }
                let mut config = template.clone();
                config.seed = first_seed + offset;
                let result = run(&config);
                on_result(&result);
                replacement_times
                    .lock()
                    .expect("no thread panics holding the lock")
                    .extend_from_slice(&result.time_to_new_leader_us);
                let mut guard = collected.lock().expect("no thread panics holding the lock");
                guard.0.add(&result);
                if result.outcome != Outcome::Passed {
                    guard.1.push(result);
                }
            });
        }
    });
    let (mut summary, mut failures) = collected.into_inner().expect("threads joined");
    let mut samples = std::mem::take(&mut *replacement_times.lock().expect("threads joined"));
    samples.sort_unstable();
    summary.leader_losses = samples.len() as u64;
    summary.time_to_new_leader_ms_p50 = percentile_ms(&samples, 0.50);
    summary.time_to_new_leader_ms_p99 = percentile_ms(&samples, 0.99);
    summary.time_to_new_leader_ms_max = samples.last().map_or(0.0, |&us| us as f64 / 1000.0);
    let minutes = summary.simulated_secs / 60.0;
    if minutes > 0.0 {
        summary.elections_per_min = summary.elections as f64 / minutes;
        summary.term_bumps_per_min = summary.term_bumps as f64 / minutes;
    }
    summary.wall_secs = started.elapsed().as_secs_f64();
    summary.events_per_sec = summary.events as f64 / summary.wall_secs.max(1e-9);
    summary.sim_to_wall_ratio = summary.simulated_secs / summary.wall_secs.max(1e-9);
    summary.threads = threads.max(1) as u64;
    summary.cpu_secs = cpu_nanos.into_inner() as f64 / 1e9;
    let core_secs = if summary.cpu_secs > 0.0 {
        summary.cpu_secs
    } else {
        summary.wall_secs * summary.threads as f64
    };
    summary.events_per_core_sec = summary.events as f64 / core_secs.max(1e-9);
    summary.sim_to_wall_ratio_per_core = summary.simulated_secs / core_secs.max(1e-9);
    summary.failing_seeds.sort_unstable();
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

/// The `fraction` percentile of sorted microsecond samples, in milliseconds.
fn percentile_ms(sorted_us: &[u64], fraction: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((sorted_us.len() as f64 * fraction).ceil() as usize).clamp(1, sorted_us.len());
    sorted_us[rank - 1] as f64 / 1000.0
}
