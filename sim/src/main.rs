//! `stepraft-sim`: run seeded simulation campaigns, replay one seed or schedule with a full
//! trace, or shrink a failing seed to a minimal schedule.
//!
//! Exit codes: 0 every property held; 3 a safety property was violated; 4 a liveness failure;
//! 5 the core panicked (an internal invariant failed). A run with several kinds of failure
//! exits with the most severe (panic, then safety, then liveness).

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use stepraft_sim::schedule::Schedule;
use stepraft_sim::shrink::shrink;
use stepraft_sim::{
    run, run_campaign, CampaignSummary, Outcome, PlantedBug, ProfileOverrides, RunResult, SimConfig,
};

/// Exit code for a safety violation.
const EXIT_SAFETY: u8 = 3;
/// Exit code for a liveness failure.
const EXIT_LIVENESS: u8 = 4;
/// Exit code for a panic inside the core.
const EXIT_PANIC: u8 = 5;

#[derive(Parser)]
#[command(
    name = "stepraft-sim",
    version,
    about = "Seeded fault-injecting simulator for the stepraft Raft core"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a campaign of seeds in parallel and print a summary.
    Run(RunArgs),
    /// Re-run one seed, or a saved schedule, and write the JSONL trace of every event.
    Replay(ReplayArgs),
    /// Shrink a failing seed: minimize its fault and workload events while the same property
    /// still fails, print the minimal schedule and save it for `replay --schedule`.
    Shrink(ShrinkArgs),
    /// Throughput benchmark: 3 nodes in memory, messages handed over directly, no faults.
    Bench(BenchArgs),
}

#[derive(Args)]
struct BenchArgs {
    /// Entries to replicate (all applied on all three nodes).
    #[arg(long, default_value_t = 100_000)]
    entries: u64,
    /// Entries proposed per loop iteration.
    #[arg(long, default_value_t = 1)]
    batch: u64,
    /// Payload bytes per entry.
    #[arg(long, default_value_t = 64)]
    payload: usize,
}

#[derive(Args, Clone)]
struct WorldArgs {
    /// Nodes in the cluster.
    #[arg(long, default_value_t = 5)]
    nodes: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 5)]
    clients: u64,
    /// Keys the clients operate on (fewer keys: more contention).
    #[arg(long, default_value_t = 5)]
    keys: u64,
    /// Simulated seconds of faults (the safety phase) before the liveness phase.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Simulated seconds the cluster gets to recover once faults stop.
    #[arg(long, default_value_t = 10.0)]
    liveness_bound: f64,
    /// Force the message loss probability (0..1).
    #[arg(long)]
    loss: Option<f64>,
    /// Force the message duplication probability (0..1).
    #[arg(long)]
    duplicate: Option<f64>,
    /// Force partitions on or off.
    #[arg(long)]
    partitions: Option<bool>,
    /// Force crashes on or off.
    #[arg(long)]
    crashes: Option<bool>,
    /// Force pauses on or off.
    #[arg(long)]
    pauses: Option<bool>,
    /// Force leadership transfers (workload) on or off.
    #[arg(long)]
    transfers: Option<bool>,
    /// Force latency spikes (long delays that reorder messages) on or off.
    #[arg(long)]
    spikes: Option<bool>,
    /// Force slow disks (parallel leader writes landing late) on or off.
    #[arg(long)]
    slow_disks: Option<bool>,
    /// Force membership changes (workload, with two spare nodes) on or off.
    #[arg(long)]
    membership: Option<bool>,
    /// Force the clock drift bound (fraction of the tick period, e.g. 0.1).
    #[arg(long)]
    drift: Option<f64>,
    /// Force how often nodes snapshot: every N applied entries (0 turns compaction off).
    #[arg(long)]
    snapshot_every: Option<u64>,
    /// No faults at all (same as every override off).
    #[arg(long)]
    calm: bool,
    /// Plant a bug in the simulated hosts (not in the core), to see the checkers and the
    /// shrinker at work.
    #[arg(long, value_enum)]
    plant: Option<Plant>,
    /// Run the nodes with PreVote on or off.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pre_vote: bool,
    /// Run the nodes with CheckQuorum on or off.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    check_quorum: bool,
}

#[derive(Args)]
struct RunArgs {
    /// Number of seeds to run.
    #[arg(long, default_value_t = 1000)]
    seeds: u64,
    /// The first seed; seeds run are first-seed .. first-seed + seeds.
    #[arg(long, default_value_t = 0)]
    first_seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Print the summary as one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Also write a self-contained HTML report with plots over the seeds.
    #[arg(long)]
    report: Option<std::path::PathBuf>,
    #[command(flatten)]
    world: WorldArgs,
}

#[derive(Args)]
struct ShrinkArgs {
    /// The failing seed.
    #[arg(long)]
    seed: u64,
    /// Where to save the minimal schedule (default: `shrunk-<seed>.json`).
    #[arg(long)]
    out: Option<std::path::PathBuf>,
    #[command(flatten)]
    world: WorldArgs,
}

#[derive(Args)]
struct ReplayArgs {
    /// The seed to replay.
    #[arg(long, required_unless_present = "schedule", conflicts_with = "schedule")]
    seed: Option<u64>,
    /// A schedule file (from `shrink`, or edited by hand) to run instead of a seed.
    #[arg(long)]
    schedule: Option<std::path::PathBuf>,
    /// Where to write the JSONL trace.
    #[arg(long)]
    trace: Option<std::path::PathBuf>,
    /// Where to write a self-contained HTML timeline of the run (opens offline in a browser).
    #[arg(long)]
    html: Option<std::path::PathBuf>,
    #[command(flatten)]
    world: WorldArgs,
}

/// Bugs `--plant` can plant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Plant {
    /// A crash loses the last log entry the host had made durable.
    LoseLastEntryOnCrash,
}

impl Plant {
    fn bug(self) -> PlantedBug {
        match self {
            Plant::LoseLastEntryOnCrash => PlantedBug::LoseLastEntryOnCrash,
        }
    }

    fn flag(self) -> &'static str {
        match self {
            Plant::LoseLastEntryOnCrash => "lose-last-entry-on-crash",
        }
    }
}

impl WorldArgs {
    fn config(&self, seed: u64) -> SimConfig {
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
    fn flags(&self) -> String {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Panics inside a seed are caught and reported with the seed; keep the default hook quiet.
    std::panic::set_hook(Box::new(|_| {}));
    match cli.command {
        Command::Run(args) => run_command(&args),
        Command::Replay(args) => replay_command(&args),
        Command::Shrink(args) => shrink_command(&args),
        Command::Bench(args) => {
            let config = stepraft_sim::bench::BenchConfig {
                entries: args.entries,
                batch: args.batch.max(1),
                payload: args.payload,
            };
            let report = stepraft_sim::bench::run_bench(config);
            println!("{}", serde_json::to_string(&report).expect("report serializes"));
            ExitCode::SUCCESS
        }
    }
}

fn run_command(args: &RunArgs) -> ExitCode {
    let template = args.world.config(0);
    let threads =
        args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let progress = ProgressBar::new(args.seeds);
    progress.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} seeds  {msg}  {per_sec}  [{elapsed_precise} / eta {eta}]",
        )
        .expect("valid template"),
    );
    if args.json {
        progress.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let violations = AtomicU64::new(0);
    let replay_flags = args.world.flags();
    let report = stepraft_sim::report::ReportCollector::default();
    let on_result = |result: &RunResult| {
        if args.report.is_some() {
            report.record(result);
        }
        if result.outcome != Outcome::Passed {
            violations.fetch_add(1, Ordering::Relaxed);
            let replay = format!("--seed {}{replay_flags}", result.seed);
            progress.suspend(|| report_failure(result, &replay));
        }
        progress.inc(1);
        progress.set_message(format!("{} violations", violations.load(Ordering::Relaxed)));
    };
    let (summary, _) = run_campaign(&template, args.first_seed, args.seeds, threads, &on_result);
    progress.finish_and_clear();
    if let Some(path) = &args.report {
        let title = format!("{} seeds from {}{}", args.seeds, args.first_seed, replay_flags);
        let page =
            stepraft_sim::report::render(&summary, &report.into_seeds(), &title, &replay_flags);
        if let Err(error) = std::fs::write(path, page) {
            eprintln!("cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
        eprintln!("report: {}", path.display());
    }
    if args.json {
        println!("{}", serde_json::to_string(&summary).expect("summary serializes"));
    } else {
        print_table(&summary, args.world.nodes, threads);
    }
    exit_code(&summary)
}

fn shrink_command(args: &ShrinkArgs) -> ExitCode {
    let config = args.world.config(args.seed);
    let original = run(&config);
    if original.outcome == Outcome::Passed {
        eprintln!("seed {} passes: nothing to shrink", args.seed);
        return ExitCode::FAILURE;
    }
    println!(
        "seed {} fails ({:?}); shrinking its {} events",
        args.seed,
        stepraft_sim::shrink::FailureKind::of(&original.outcome),
        original.schedule.events.len()
    );
    let plant = args.world.plant.map(Plant::bug);
    let adjust = move |config: &mut SimConfig| config.plant = plant;
    let shrunk = shrink(&original.schedule, &adjust, |events, runs| {
        eprint!("\r  {events} events left after {runs} runs   ");
    });
    eprintln!();
    let Some(shrunk) = shrunk else {
        // The recorded schedule always replays the run; if it passes, the replay diverged.
        eprintln!("the recorded schedule of seed {} does not fail: please report", args.seed);
        return ExitCode::FAILURE;
    };
    println!(
        "minimal schedule: {} events ({} runs), still {:?}",
        shrunk.schedule.events.len(),
        shrunk.runs,
        shrunk.property
    );
    for event in &shrunk.schedule.events {
        println!("  {event}");
    }
    let path = args.out.clone().unwrap_or_else(|| format!("shrunk-{}.json", args.seed).into());
    if let Err(error) = std::fs::write(&path, shrunk.schedule.to_json()) {
        eprintln!("cannot write {}: {error}", path.display());
        return ExitCode::FAILURE;
    }
    let plant =
        args.world.plant.map(|plant| format!(" --plant {}", plant.flag())).unwrap_or_default();
    println!("saved: {}", path.display());
    println!(
        "replay: cargo run --release -p stepraft-sim -- replay --schedule {}{plant} --trace shrunk-{}.jsonl",
        path.display(),
        args.seed
    );
    ExitCode::SUCCESS
}

fn exit_code(summary: &CampaignSummary) -> ExitCode {
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
fn report_failure(result: &RunResult, replay: &str) {
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

fn print_table(summary: &CampaignSummary, nodes: u64, threads: usize) {
    let rows: Vec<(&str, String)> = vec![
        ("seeds", format!("{} × {nodes} nodes on {threads} threads", summary.seeds)),
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

fn replay_command(args: &ReplayArgs) -> ExitCode {
    let mut config = match (&args.schedule, args.seed) {
        (Some(path), _) => match Schedule::load(path) {
            Ok(schedule) => {
                let mut config = schedule.config();
                config.plant = args.world.plant.map(Plant::bug);
                config
            }
            Err(error) => {
                eprintln!("{error}");
                return ExitCode::FAILURE;
            }
        },
        (None, Some(seed)) => args.world.config(seed),
        (None, None) => unreachable!("clap requires --seed or --schedule"),
    };
    config.keep_trace = args.trace.is_some() || args.html.is_some();
    let replay = match (&args.schedule, args.seed) {
        (Some(path), _) => format!("--schedule {}{}", path.display(), args.world.flags()),
        (None, seed) => format!("--seed {}{}", seed.unwrap_or_default(), args.world.flags()),
    };
    let result = run(&config);
    if let (Some(path), Some(trace)) = (&args.trace, &result.trace) {
        if let Err(error) = std::fs::write(path, trace) {
            eprintln!("cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
        println!("trace: {} ({} events)", path.display(), trace.lines().count());
    }
    if let (Some(path), Some(trace)) = (&args.html, &result.trace) {
        let title = format!("{replay} ({})", result.profile.label());
        let page = stepraft_sim::timeline::render_jsonl(trace, &result.outcome, &title)
            .expect("the simulator's own trace is valid JSON lines");
        if let Err(error) = std::fs::write(path, page) {
            eprintln!("cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
        println!("timeline: {}", path.display());
    }
    println!("seed {} ({}): {:?}", result.seed, result.profile.label(), result.outcome);
    println!("{}", serde_json::to_string(&result.stats).expect("stats serialize"));
    match &result.outcome {
        Outcome::Passed => ExitCode::SUCCESS,
        Outcome::Violated(violation) if violation.property.is_safety() => {
            report_failure(&result, &replay);
            ExitCode::from(EXIT_SAFETY)
        }
        Outcome::Violated(_) => {
            report_failure(&result, &replay);
            ExitCode::from(EXIT_LIVENESS)
        }
        Outcome::Panicked(_) => {
            report_failure(&result, &replay);
            ExitCode::from(EXIT_PANIC)
        }
    }
}
