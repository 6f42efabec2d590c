//! The summary of a campaign: totals, worst cases and percentiles over its seeds, built seed
//! by seed and mergeable across shards.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::histogram::Histogram;
use crate::world::{Outcome, RunResult};

/// Totals over a campaign.
///
/// Summaries of shards of one campaign merge into the summary of the whole
/// ([`CampaignSummary::merge`]): counts add up, worst cases and percentiles are those of all
/// seeds together (the histograms travel in the JSON for that), rates are recomputed; the wall
/// time of a merged summary is its longest shard's, as if the shards ran side by side.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CampaignSummary {
    /// The shard this summary covers (`K/N`), or `None` for a whole campaign or a merge.
    pub shard: Option<String>,
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
    /// Time from the end of faults until every member's log reached the leader's commit,
    /// simulated ms: median over the seeds that caught up.
    pub catch_up_ms_p50: f64,
    /// The same, 99th percentile.
    pub catch_up_ms_p99: f64,
    /// The same, worst case.
    pub catch_up_ms_max: f64,
    /// Leader replacement times, by simulated millisecond (for merging shards).
    pub time_to_new_leader_histogram_ms: Histogram,
    /// Catch-up times, by simulated millisecond (for merging shards).
    pub catch_up_histogram_ms: Histogram,
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
    /// Term increases, summed over seeds (for the per-minute rate).
    pub term_bumps: u64,
    /// Whether any seed failed to recover.
    pub liveness_violated: bool,
}

impl CampaignSummary {
    /// Adds one seed's result; [`CampaignSummary::finish`] computes the derived figures.
    pub(crate) fn add(&mut self, result: &RunResult) {
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
        if let Some(catch_up) = stats.catch_up_us {
            self.catch_up_histogram_ms.record_us(catch_up);
        }
        for &us in &result.time_to_new_leader_us {
            self.time_to_new_leader_histogram_ms.record_us(us);
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

    /// Adds a summary of other seeds (another shard of the same campaign).
    pub fn merge(&mut self, other: &CampaignSummary) {
        self.shard = None;
        self.seeds += other.seeds;
        self.violations += other.violations;
        for (property, count) in &other.violations_by_property {
            *self.violations_by_property.entry(property.clone()).or_default() += count;
        }
        self.failing_seeds.extend_from_slice(&other.failing_seeds);
        self.failing_seeds.sort_unstable();
        self.events += other.events;
        self.threads = self.threads.max(other.threads);
        self.cpu_secs += other.cpu_secs;
        self.wall_secs = self.wall_secs.max(other.wall_secs);
        self.simulated_secs += other.simulated_secs;
        let sums = [
            (&mut self.messages_sent, other.messages_sent),
            (&mut self.messages_dropped, other.messages_dropped),
            (&mut self.messages_duplicated, other.messages_duplicated),
            (&mut self.elections, other.elections),
            (&mut self.leader_changes, other.leader_changes),
            (&mut self.committed_entries, other.committed_entries),
            (&mut self.crashes, other.crashes),
            (&mut self.partitions, other.partitions),
            (&mut self.pauses, other.pauses),
            (&mut self.client_ok, other.client_ok),
            (&mut self.reads_completed, other.reads_completed),
            (&mut self.writes_completed, other.writes_completed),
            (&mut self.linearizable_seeds, other.linearizable_seeds),
            (&mut self.linearizability_gave_up, other.linearizability_gave_up),
            (&mut self.leader_disruptions, other.leader_disruptions),
            (&mut self.transfers, other.transfers),
            (&mut self.lease_reads, other.lease_reads),
            (&mut self.membership_accepted, other.membership_accepted),
            (&mut self.membership_committed, other.membership_committed),
            (&mut self.membership_rejected, other.membership_rejected),
            (&mut self.snapshots_taken, other.snapshots_taken),
            (&mut self.snapshots_sent, other.snapshots_sent),
            (&mut self.snapshots_installed, other.snapshots_installed),
            (&mut self.snapshot_chunk_bytes, other.snapshot_chunk_bytes),
            (&mut self.term_bumps, other.term_bumps),
        ];
        for (total, value) in sums {
            *total += value;
        }
        self.max_term = self.max_term.max(other.max_term);
        self.max_log_entries = self.max_log_entries.max(other.max_log_entries);
        self.checker_secs += other.checker_secs;
        self.checker_ms_max = self.checker_ms_max.max(other.checker_ms_max);
        self.recovery_ms_max = self.recovery_ms_max.max(other.recovery_ms_max);
        self.time_to_new_leader_histogram_ms.merge(&other.time_to_new_leader_histogram_ms);
        self.catch_up_histogram_ms.merge(&other.catch_up_histogram_ms);
        self.panicked |= other.panicked;
        self.safety_violated |= other.safety_violated;
        self.liveness_violated |= other.liveness_violated;
        self.finish();
    }

    /// Computes the figures derived from the totals: percentiles and rates.
    pub(crate) fn finish(&mut self) {
        let leader = &self.time_to_new_leader_histogram_ms;
        self.leader_losses = leader.len();
        self.time_to_new_leader_ms_p50 = leader.percentile_ms(0.50);
        self.time_to_new_leader_ms_p99 = leader.percentile_ms(0.99);
        self.time_to_new_leader_ms_max = leader.max_ms();
        let catch_up = &self.catch_up_histogram_ms;
        self.catch_up_ms_p50 = catch_up.percentile_ms(0.50);
        self.catch_up_ms_p99 = catch_up.percentile_ms(0.99);
        self.catch_up_ms_max = catch_up.max_ms();
        let minutes = self.simulated_secs / 60.0;
        if minutes > 0.0 {
            self.elections_per_min = self.elections as f64 / minutes;
            self.term_bumps_per_min = self.term_bumps as f64 / minutes;
        }
        self.events_per_sec = self.events as f64 / self.wall_secs.max(1e-9);
        self.sim_to_wall_ratio = self.simulated_secs / self.wall_secs.max(1e-9);
        let core_secs = if self.cpu_secs > 0.0 {
            self.cpu_secs
        } else {
            self.wall_secs * self.threads.max(1) as f64
        };
        self.events_per_core_sec = self.events as f64 / core_secs.max(1e-9);
        self.sim_to_wall_ratio_per_core = self.simulated_secs / core_secs.max(1e-9);
        self.failing_seeds.sort_unstable();
    }
}
