//! `stepraft-sim`: run seeded simulation campaigns, replay one seed or schedule with a full
//! trace, or shrink a failing seed to a minimal schedule.
//!
//! Exit codes: 0 every property held; 3 a safety property was violated; 4 a liveness failure;
//! 5 the core panicked (an internal invariant failed). A run with several kinds of failure
//! exits with the most severe (panic, then safety, then liveness).

mod output;
mod world_args;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use stepraft_sim::schedule::Schedule;
use stepraft_sim::shrink::shrink;
use stepraft_sim::sweep::{run_sweep, Cell, SweepSummary};
use stepraft_sim::{
    run, run_campaign, CampaignSummary, Outcome, RunResult, SeedRange, Shard, SimConfig,
};

use output::{
    exit_code, print_sweep, print_table, report_failure, EXIT_LIVENESS, EXIT_PANIC, EXIT_SAFETY,
};
use world_args::{Plant, WorldArgs};

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
    /// Run one campaign per cell of a matrix: node counts, each fault family forced on alone,
    /// all forced on together and drawn per seed, membership churn off and on.
    Sweep(SweepArgs),
    /// Merge the `--json` summaries of the shards of one `run` or one `sweep` into one
    /// summary, printed as JSON (or as a table with `--table`).
    Merge(MergeArgs),
    /// Throughput benchmark: 3 nodes in memory, messages handed over directly, no faults.
    Bench(BenchArgs),
}

#[derive(Args)]
struct SweepArgs {
    /// Seeds per cell.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// The first seed; cell i runs first-seed + i × seeds and up.
    #[arg(long, default_value_t = 0)]
    first_seed: u64,
    /// Run only the seeds whose position in each cell's range, modulo N, is K.
    #[arg(long, value_name = "K/N")]
    shard: Option<Shard>,
    /// The cluster sizes of the matrix.
    #[arg(long, value_delimiter = ',', default_value = "3,5,7")]
    nodes: Vec<u64>,
    /// Simulated seconds of faults per seed.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Simulated seconds the cluster gets to recover once faults stop.
    #[arg(long, default_value_t = 10.0)]
    liveness_bound: f64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Print the summary as one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Every cell forms its cluster from nothing (the discovery workload, which replaces the
    /// membership-change workload: the matrix drops its membership-on cells).
    #[arg(long)]
    discovery: bool,
}

#[derive(Args)]
struct MergeArgs {
    /// The shards' JSON summaries (all from `run --json`, or all from `sweep --json`).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Print a table instead of JSON.
    #[arg(long)]
    table: bool,
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

#[derive(Args)]
struct RunArgs {
    /// Number of seeds to run.
    #[arg(long, default_value_t = 1000)]
    seeds: u64,
    /// The first seed; seeds run are first-seed .. first-seed + seeds.
    #[arg(long, default_value_t = 0)]
    first_seed: u64,
    /// Run only the seeds whose position in the range, modulo N, is K (merge the shards'
    /// `--json` summaries with `merge`).
    #[arg(long, value_name = "K/N")]
    shard: Option<Shard>,
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
fn main() -> ExitCode {
    let cli = Cli::parse();
    // Panics inside a seed are caught and reported with the seed; keep the default hook quiet.
    std::panic::set_hook(Box::new(|_| {}));
    match cli.command {
        Command::Run(args) => run_command(&args),
        Command::Replay(args) => replay_command(&args),
        Command::Shrink(args) => shrink_command(&args),
        Command::Sweep(args) => sweep_command(&args),
        Command::Merge(args) => merge_command(&args),
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
    let range =
        SeedRange::new(args.first_seed, args.seeds).sharded(args.shard.unwrap_or(Shard::WHOLE));
    let progress = progress_bar(range.len(), args.json);
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
    let (summary, _) = run_campaign(&template, range, threads, &on_result);
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
        print_table(&summary, Some(args.world.nodes), threads);
    }
    exit_code(&summary)
}

fn progress_bar(seeds: u64, hidden: bool) -> ProgressBar {
    let progress = ProgressBar::new(seeds);
    progress.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} seeds  {msg}  {per_sec}  [{elapsed_precise} / eta {eta}]",
        )
        .expect("valid template"),
    );
    if hidden {
        progress.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    progress
}

fn sweep_command(args: &SweepArgs) -> ExitCode {
    let mut base = SimConfig::new(0);
    base.duration_us = (args.duration * 1e6) as u64;
    base.liveness_bound_us = (args.liveness_bound * 1e6) as u64;
    base.discovery = args.discovery;
    let defaults = SimConfig::new(0);
    let mut timing_flags = String::new();
    if base.duration_us != defaults.duration_us {
        timing_flags.push_str(&format!(" --duration {}", args.duration));
    }
    if base.liveness_bound_us != defaults.liveness_bound_us {
        timing_flags.push_str(&format!(" --liveness-bound {}", args.liveness_bound));
    }
    if args.discovery {
        timing_flags.push_str(" --discovery");
    }
    let cells: Vec<Cell> = Cell::matrix(&args.nodes)
        .into_iter()
        .filter(|cell| !(args.discovery && cell.membership))
        .collect();
    let shard = args.shard.unwrap_or(Shard::WHOLE);
    let per_cell = SeedRange::new(0, args.seeds).sharded(shard).len();
    let threads =
        args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let progress = progress_bar(per_cell * cells.len() as u64, args.json);
    let violations = AtomicU64::new(0);
    let on_result = |cell: &Cell, result: &RunResult| {
        if result.outcome != Outcome::Passed {
            violations.fetch_add(1, Ordering::Relaxed);
            let replay = format!("--seed {} {}{timing_flags}", result.seed, cell.flags());
            progress.suspend(|| report_failure(result, &replay));
        }
        progress.inc(1);
        progress.set_message(format!("{} violations", violations.load(Ordering::Relaxed)));
    };
    let sweep = run_sweep(&base, &cells, args.first_seed, args.seeds, shard, threads, &on_result);
    progress.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string(&sweep).expect("summary serializes"));
    } else {
        print_sweep(&sweep);
    }
    sweep_exit_code(&sweep)
}

fn sweep_exit_code(sweep: &SweepSummary) -> ExitCode {
    let worst = sweep.cells.iter().map(|cell| &cell.summary);
    let (panicked, safety, liveness) = worst.fold((false, false, false), |(p, s, l), summary| {
        (p || summary.panicked, s || summary.safety_violated, l || summary.liveness_violated)
    });
    match (panicked, safety, liveness) {
        (true, _, _) => ExitCode::from(EXIT_PANIC),
        (_, true, _) => ExitCode::from(EXIT_SAFETY),
        (_, _, true) => ExitCode::from(EXIT_LIVENESS),
        _ => ExitCode::SUCCESS,
    }
}

/// A shard's summary: of a `run` or of a `sweep` (which has `cells`).
enum ShardSummary {
    Sweep(SweepSummary),
    Run(Box<CampaignSummary>),
}

fn parse_summary(text: &str) -> serde_json::Result<ShardSummary> {
    let value: serde_json::Value = serde_json::from_str(text)?;
    if value.get("cells").is_some() {
        serde_json::from_value(value).map(ShardSummary::Sweep)
    } else {
        serde_json::from_value(value).map(|summary| ShardSummary::Run(Box::new(summary)))
    }
}

fn merge_command(args: &MergeArgs) -> ExitCode {
    let mut merged: Option<ShardSummary> = None;
    for path in &args.files {
        let parsed = std::fs::read_to_string(path)
            .map_err(|error| error.to_string())
            .and_then(|text| parse_summary(&text).map_err(|error| error.to_string()));
        let shard = match parsed {
            Ok(shard) => shard,
            Err(error) => {
                eprintln!("{}: not a run or sweep summary: {error}", path.display());
                return ExitCode::FAILURE;
            }
        };
        let combined = match (merged.take(), shard) {
            (None, shard) => Ok(shard),
            (Some(ShardSummary::Sweep(mut all)), ShardSummary::Sweep(part)) => {
                all.merge(&part).map(|()| ShardSummary::Sweep(all))
            }
            (Some(ShardSummary::Run(mut all)), ShardSummary::Run(part)) => {
                all.merge(&part);
                Ok(ShardSummary::Run(all))
            }
            _ => Err("a run summary cannot merge with a sweep summary".to_string()),
        };
        match combined {
            Ok(summary) => merged = Some(summary),
            Err(error) => {
                eprintln!("{}: {error}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    match merged.expect("clap requires a file") {
        ShardSummary::Sweep(sweep) => {
            if args.table {
                print_sweep(&sweep);
            } else {
                println!("{}", serde_json::to_string(&sweep).expect("summary serializes"));
            }
            sweep_exit_code(&sweep)
        }
        ShardSummary::Run(summary) => {
            if args.table {
                print_table(&summary, None, summary.threads as usize);
            } else {
                println!("{}", serde_json::to_string(&summary).expect("summary serializes"));
            }
            exit_code(&summary)
        }
    }
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
