//! `stepraft-nemesis`: a campaign of fault-injecting runs against real `stepraft-kv` servers,
//! with a table of operations, outcomes, violations and availability per fault.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use stepraft_nemesis::cluster::Transport;
use stepraft_nemesis::faults::Fault;
use stepraft_nemesis::report::{faults_table, runs_table};
use stepraft_nemesis::run::{run, RunOptions, RunReport};

/// When lease reads are on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Lease {
    /// In every run.
    On,
    /// In no run.
    Off,
    /// In half of the runs of every size and transport.
    Alternate,
}

#[derive(Parser)]
#[command(
    name = "stepraft-nemesis",
    about = "Fault-injecting runs against real stepraft-kv servers, judged by a linearizability checker"
)]
struct Cli {
    /// Number of runs.
    #[arg(long, default_value_t = 20)]
    runs: u64,
    /// Seconds of client load per run.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// Cluster sizes, used in turn.
    #[arg(long, value_delimiter = ',', default_value = "3,5")]
    nodes: Vec<u64>,
    /// Peer transports, used in turn (after every size has had its turn).
    #[arg(long, value_delimiter = ',', value_enum, default_value = "tcp")]
    transport: Vec<Transport>,
    /// Lease reads.
    #[arg(long, value_enum, default_value_t = Lease::Alternate)]
    lease_reads: Lease,
    /// Fault families to draw from (default: all).
    #[arg(long, value_delimiter = ',', value_enum)]
    faults: Vec<Fault>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 6)]
    clients: u64,
    /// Milliseconds per server tick (elections after 10-19 ticks).
    #[arg(long, default_value_t = 20)]
    tick_ms: u64,
    /// The first run's seed; run k uses FIRST_SEED + k.
    #[arg(long, default_value_t = 1)]
    first_seed: u64,
    /// Write every run's full report (with its fault windows) to this JSON file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Where run directories go (kept for runs with a violation).
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let executable = match stepraft_nemesis::server_binary::stepraft_kv(!cfg!(debug_assertions)) {
        Ok(path) => path,
        Err(error) => {
            eprintln!("stepraft-nemesis: {error}");
            return ExitCode::from(2);
        }
    };
    let directory =
        cli.dir.clone().unwrap_or_else(|| std::env::temp_dir().join("stepraft-nemesis"));
    let faults = if cli.faults.is_empty() { Fault::ALL.to_vec() } else { cli.faults.clone() };
    let nodes = if cli.nodes.is_empty() { vec![3] } else { cli.nodes.clone() };
    let transports =
        if cli.transport.is_empty() { vec![Transport::Tcp] } else { cli.transport.clone() };
    let mut reports: Vec<RunReport> = Vec::new();
    for k in 0..cli.runs {
        let options = RunOptions {
            seed: cli.first_seed + k,
            nodes: nodes[(k as usize) % nodes.len()],
            transport: transports[(k as usize / nodes.len()) % transports.len()],
            // Alternating within each round of sizes × transports, shifted every round, so
            // that every size and transport gets lease reads in half of its runs.
            lease_reads: match cli.lease_reads {
                Lease::On => true,
                Lease::Off => false,
                Lease::Alternate => (k + k / (nodes.len() * transports.len()) as u64) % 2 == 1,
            },
            duration: Duration::from_secs_f64(cli.seconds),
            faults: faults.clone(),
            clients: cli.clients,
            tick_ms: cli.tick_ms,
            executable: executable.clone(),
            directory: directory.clone(),
        };
        let report = match run(&options) {
            Ok(report) => report,
            Err(error) => {
                eprintln!("stepraft-nemesis: run {} could not start: {error}", k + 1);
                return ExitCode::from(2);
            }
        };
        eprintln!(
            "run {}/{}: seed {}, {} nodes, {}, lease reads {}: {} ops ({} ok, {} failed, {} unknown), {} faults, {} violations",
            k + 1,
            cli.runs,
            report.seed,
            report.nodes,
            report.transport.name(),
            if report.lease_reads { "on" } else { "off" },
            report.operations,
            report.ok,
            report.failed,
            report.unknown,
            report.windows.len(),
            report.violations.len()
        );
        for violation in &report.violations {
            eprintln!("  violation: {violation} (logs in {})", report.directory.display());
        }
        reports.push(report);
    }
    println!("{}", runs_table(&reports));
    println!("{}", faults_table(&reports));
    if let Some(path) = &cli.json {
        let text = serde_json::to_string_pretty(&reports).expect("reports serialise");
        if let Err(error) = std::fs::write(path, text) {
            eprintln!("stepraft-nemesis: cannot write {}: {error}", path.display());
            return ExitCode::from(2);
        }
    }
    let violations: usize = reports.iter().map(|report| report.violations.len()).sum();
    if violations == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("stepraft-nemesis: {violations} violations");
        ExitCode::from(1)
    }
}
