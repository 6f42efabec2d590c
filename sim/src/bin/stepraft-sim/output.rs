//! What the command line prints: summaries as tables, failure reports, exit codes.

use std::io::Write;
use std::process::ExitCode;

use stepraft_sim::sweep::SweepSummary;
use stepraft_sim::{CampaignSummary, Outcome, RunResult};

/// Exit code for a safety violation.
pub const EXIT_SAFETY: u8 = 3;
/// Exit code for a liveness failure.
pub const EXIT_LIVENESS: u8 = 4;
/// Exit code for a panic inside the core.
pub const EXIT_PANIC: u8 = 5;

pub fn exit_code(summary: &CampaignSummary) -> ExitCode {
    if summary.panicked {
        ExitCode::from(EXIT_PANIC)
    } else if summary.safety_violated {
        ExitCode::from(EXIT_SAFETY)
    } else if summary.liveness_violated {
        ExitCode::from(EXIT_LIVENESS)
    } else {
        ExitCode::SUCCESS
    }
}

/// Prints a failure report; `replay` is the arguments that replay it (after `replay`).
pub fn report_failure(result: &RunResult, replay: &str) {
    let mut err = std::io::stderr().lock();
    let what = match &result.outcome {
        Outcome::Passed => return,
        Outcome::Violated(violation) => format!("{}: {}", violation.property, violation.detail),
        Outcome::Panicked(message) => format!("panic in the core: {message}"),
    };
    let _ =
        writeln!(err, "\n=== seed {} FAILED ({}) — {what}", result.seed, result.profile.label());
    let _ = writeln!(err, "last events:");
    for line in &result.recent {
        let _ = writeln!(err, "  {line}");
    }
    let _ = writeln!(
        err,
        "replay: cargo run --release -p stepraft-sim -- replay {replay} --trace seed-{}.jsonl",
        result.seed
    );
    if replay.starts_with("--seed") {
        let _ = writeln!(err, "shrink: cargo run --release -p stepraft-sim -- shrink {replay}");
    }
}

pub fn print_table(summary: &CampaignSummary, nodes: Option<u64>, threads: usize) {
    let rows: Vec<(&str, String)> = vec![
        ("seeds", match nodes {
            Some(nodes) => format!("{} × {nodes} nodes on {threads} threads", summary.seeds),
            None => format!("{} on up to {threads} threads per shard", summary.seeds),
        }),
        ("violations", format!("{} {:?}", summary.violations, summary.violations_by_property)),
        ("simulated time", format!("{:.1} s", summary.simulated_secs)),
        ("wall time", format!("{:.2} s", summary.wall_secs)),
        ("events", summary.events.to_string()),
        ("events per second", format!("{:.0}", summary.events_per_sec)),
        ("simulated / wall", format!("{:.1}×", summary.sim_to_wall_ratio)),
        ("cpu time", format!("{:.2} s", summary.cpu_secs)),
        ("events/s per core", format!("{:.0}", summary.events_per_core_sec)),
        ("sim/wall per core", format!("{:.1}×", summary.sim_to_wall_ratio_per_core)),
        ("messages sent", summary.messages_sent.to_string()),
        ("messages dropped", summary.messages_dropped.to_string()),
        ("messages duplicated", summary.messages_duplicated.to_string()),
        ("elections", summary.elections.to_string()),
        ("max term", summary.max_term.to_string()),
        ("leader changes", summary.leader_changes.to_string()),
        ("entries committed", summary.committed_entries.to_string()),
        (
            "reads completed",
            format!("{} ({} under a leader lease)", summary.reads_completed, summary.lease_reads),
        ),
        ("writes completed", summary.writes_completed.to_string()),
        (
            "linearizable",
            format!(
                "{} of {} seeds ({} gave up)",
                summary.linearizable_seeds, summary.seeds, summary.linearizability_gave_up
            ),
        ),
        (
            "checker time",
            format!(
                "{:.2} s total, {:.1} ms worst seed",
                summary.checker_secs, summary.checker_ms_max
            ),
        ),
        ("crashes", summary.crashes.to_string()),
        ("partitions", summary.partitions.to_string()),
        ("pauses", summary.pauses.to_string()),
        ("worst recovery", format!("{:.1} ms simulated", summary.recovery_ms_max)),
        (
            "time to new leader",
            format!(
                "p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms simulated ({} leader losses)",
                summary.time_to_new_leader_ms_p50,
                summary.time_to_new_leader_ms_p99,
                summary.time_to_new_leader_ms_max,
                summary.leader_losses
            ),
        ),
        (
            "catch-up after heal",
            format!(
                "p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms simulated (every member's log at the \
                 leader's commit)",
                summary.catch_up_ms_p50, summary.catch_up_ms_p99, summary.catch_up_ms_max
            ),
        ),
        ("elections / min", format!("{:.1}", summary.elections_per_min)),
        ("term bumps / min", format!("{:.1}", summary.term_bumps_per_min)),
        ("healthy leader lost", summary.leader_disruptions.to_string()),
        ("transfers", summary.transfers.to_string()),
        (
            "membership changes",
            format!(
                "{} accepted, {} rejected; {} configuration entries committed (joint exits included)",
                summary.membership_accepted,
                summary.membership_rejected,
                summary.membership_committed
            ),
        ),
        (
            "snapshots",
            format!(
                "{} taken, {} sent, {} installed; {} bytes in chunks",
                summary.snapshots_taken,
                summary.snapshots_sent,
                summary.snapshots_installed,
                summary.snapshot_chunk_bytes
            ),
        ),
        ("max log in memory", format!("{} entries on one node", summary.max_log_entries)),
    ];
    for (name, value) in rows {
        println!("{name:>20}  {value}");
    }
    if !summary.failing_seeds.is_empty() {
        println!("{:>20}  {:?}", "failing seeds", summary.failing_seeds);
    }
}

/// One row per cell: seeds, violations by property, p99 time to a new leader, p99 catch-up.
pub fn print_sweep(sweep: &SweepSummary) {
    println!(
        "{:<38} {:>7} {:>10}  {:>13} {:>13}  violations by property",
        "cell", "seeds", "violations", "new leader p99", "catch-up p99"
    );
    for cell in &sweep.cells {
        let summary = &cell.summary;
        let by_property = if summary.violations_by_property.is_empty() {
            "-".to_string()
        } else {
            let parts: Vec<String> =
                summary.violations_by_property.iter().map(|(p, n)| format!("{p}: {n}")).collect();
            parts.join(", ")
        };
        println!(
            "{:<38} {:>7} {:>10}  {:>10.0} ms {:>10.0} ms  {by_property}",
            cell.cell,
            summary.seeds,
            summary.violations,
            summary.time_to_new_leader_ms_p99,
            summary.catch_up_ms_p99
        );
    }
    let shard = sweep.shard.as_deref().map(|shard| format!(" (shard {shard})")).unwrap_or_default();
    println!(
        "{} cells, {} seeds, {} violations{shard}",
        sweep.cells.len(),
        sweep.seeds,
        sweep.violations
    );
    for cell in &sweep.cells {
        for seed in &cell.summary.failing_seeds {
            println!(
                "failing: cargo run --release -p stepraft-sim -- replay --seed {seed} {}",
                cell.flags
            );
        }
    }
}
