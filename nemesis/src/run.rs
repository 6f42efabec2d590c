//! One run of the nemesis: a cluster, clients, a seeded schedule of faults, then healing and
//! the checks.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use stepraft_sim::history::{Key, OpOutcome};
use stepraft_sim::linearizability::{check_history, CheckLimits, Verdict};

use crate::checks::{divergence, lost_writes, read_everywhere};
use crate::cluster::{Cluster, ClusterOptions, Transport};
use crate::faults::{inject, Fault};
use crate::workload::{key_name, unique_value, History, Workload, HOT_KEYS};

/// What one run does.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Draws the fault schedule, the clients' choices and message loss.
    pub seed: u64,
    /// Founding members.
    pub nodes: u64,
    /// Peer transport.
    pub transport: Transport,
    /// Whether the servers serve reads under a leader lease.
    pub lease_reads: bool,
    /// How long the clients run; faults stop a few seconds before the end.
    pub duration: Duration,
    /// The families the schedule draws from.
    pub faults: Vec<Fault>,
    /// Concurrent clients.
    pub clients: u64,
    /// Milliseconds per server tick.
    pub tick_ms: u64,
    /// The `stepraft-kv` executable.
    pub executable: PathBuf,
    /// Where the run's directory is made.
    pub directory: PathBuf,
}

/// When one fault was in force.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Window {
    /// Its family.
    pub fault: Fault,
    /// What was done.
    pub description: String,
    /// Microseconds since the run's start.
    pub start_us: u64,
    /// Microseconds since the run's start.
    pub end_us: u64,
}

/// Operations invoked while faults of one family were in force.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct FaultTally {
    /// Times the family was injected.
    pub injections: u64,
    /// Operations invoked during its windows.
    pub operations: u64,
    /// Of those, the ones that succeeded.
    pub ok: u64,
}

/// What one run found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RunReport {
    /// The run's seed.
    pub seed: u64,
    /// Founding members.
    pub nodes: u64,
    /// Peer transport.
    pub transport: Transport,
    /// Lease reads on or off.
    pub lease_reads: bool,
    /// Seconds the clients ran.
    pub seconds: f64,
    /// Operations recorded.
    pub operations: u64,
    /// Of those: succeeded, definitely failed, unknown outcome.
    pub ok: u64,
    /// See [`RunReport::ok`].
    pub failed: u64,
    /// See [`RunReport::ok`].
    pub unknown: u64,
    /// Acknowledged unique writes, each checked on every member at the end.
    pub acknowledged_writes: u64,
    /// The checker's verdict: `linearizable`, or what it found.
    pub verdict: String,
    /// Every violation: non-linearizable history, lost or diverging writes, a member that did
    /// not catch up, a server that died by itself. Empty in a clean run.
    pub violations: Vec<String>,
    /// Per family, in the schedule's terms.
    pub faults: BTreeMap<Fault, FaultTally>,
    /// Every fault, in order.
    pub windows: Vec<Window>,
    /// The run's directory (server logs), kept when it found a violation.
    pub directory: PathBuf,
}

/// Runs one nemesis run.
///
/// # Errors
/// The IO error of preparing the run (ports, processes, directories); what the run finds is in
/// the report.
pub fn run(options: &RunOptions) -> std::io::Result<RunReport> {
    let started = Instant::now();
    let directory = options.directory.join(format!(
        "run-{}-{}n-{}-lease-{}",
        options.seed,
        options.nodes,
        options.transport.name(),
        if options.lease_reads { "on" } else { "off" }
    ));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory)?;
    let mut cluster = Cluster::start(ClusterOptions {
        executable: options.executable.clone(),
        directory: directory.clone(),
        nodes: options.nodes,
        transport: options.transport,
        lease_reads: options.lease_reads,
        tick_ms: options.tick_ms,
        seed: options.seed,
    })?;
    let mut violations = Vec::new();
    if cluster.wait_for_leader(Duration::from_secs(20)).is_none() {
        violations.push("no leader was elected within 20 s of the start".to_owned());
    }
    let workload =
        Workload::start(cluster.client_addresses(), options.clients, options.seed, started);
    let windows = run_schedule(&mut cluster, options, &workload, &mut violations)?;
    cluster.heal()?;
    let history = workload.stop();
    violations.extend(after_healing(&mut cluster, &history));
    let verdict = match check_history(&history.operations, &CheckLimits::default()) {
        Verdict::Linearizable => "linearizable".to_owned(),
        Verdict::NotLinearizable { explanation, .. } => {
            violations.push(format!("not linearizable: {explanation}"));
            format!("not linearizable: {explanation}")
        }
        Verdict::GaveUp { key, reason } => {
            violations.push(format!("the checker gave up on {}: {reason}", key_name(key)));
            format!("undecided on {}: {reason}", key_name(key))
        }
    };
    let report = tally(options, &history, windows, verdict, violations, directory.clone(), started);
    drop(cluster);
    if report.violations.is_empty() {
        let _ = std::fs::remove_dir_all(&directory);
    }
    Ok(report)
}

/// Injects faults from the run's families until the last few seconds, each held 0.8-3 s with
/// 0.3-1 s of calm between; checks that no server dies by itself.
fn run_schedule(
    cluster: &mut Cluster,
    options: &RunOptions,
    workload: &Workload,
    violations: &mut Vec<String>,
) -> std::io::Result<Vec<Window>> {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let settle = (options.duration / 4).min(Duration::from_secs(4));
    let faults_end = Instant::now() + options.duration.saturating_sub(settle);
    let clients_end = Instant::now() + options.duration;
    let mut windows = Vec::new();
    let mut sleep_watching =
        |cluster: &mut Cluster, duration: Duration, keep_up: &dyn Fn(&Cluster)| {
            let end = Instant::now() + duration;
            while Instant::now() < end {
                std::thread::sleep(Duration::from_millis(300).min(end - Instant::now()));
                keep_up(cluster);
                for (node, status) in cluster.exited() {
                    violations.push(format!("node {node} exited by itself ({status})"));
                }
            }
        };
    while Instant::now() < faults_end && !options.faults.is_empty() {
        sleep_watching(cluster, Duration::from_millis(300 + rng.next_u64() % 700), &|_| {});
        let fault = options.faults[(rng.next_u64() % options.faults.len() as u64) as usize];
        let start_us = workload.now_us();
        let Some(injection) = inject(fault, cluster, options.transport, &mut rng)? else {
            continue;
        };
        let hold = if fault == Fault::Membership {
            Duration::ZERO
        } else {
            Duration::from_millis(800 + rng.next_u64() % 2200)
        };
        let description = injection.description.clone();
        sleep_watching(cluster, hold, &|cluster| injection.keep_up(cluster));
        injection.undo(cluster)?;
        windows.push(Window { fault, description, start_us, end_us: workload.now_us() });
    }
    cluster.heal()?;
    sleep_watching(cluster, clients_end.saturating_duration_since(Instant::now()), &|_| {});
    Ok(windows)
}

/// Once every fault is healed: every member catches up with the leader, holds every
/// acknowledged write, and agrees with the others on every hot key.
fn after_healing(cluster: &mut Cluster, history: &History) -> Vec<String> {
    let mut violations = Vec::new();
    let Some(leader) = cluster.wait_for_leader(Duration::from_secs(30)) else {
        return vec!["no leader within 30 s of healing".to_owned()];
    };
    let Some(status) = cluster.status(leader) else {
        return vec![format!("the leader, node {leader}, does not answer /status")];
    };
    let members: Vec<u64> = ["voters", "learners"]
        .iter()
        .flat_map(|set| status["members"][set].as_array().cloned().unwrap_or_default())
        .filter_map(|id| id.as_u64())
        .collect();
    // Servers the cluster no longer counts (an addition or removal whose answer was lost).
    for id in cluster.ids() {
        if !members.contains(&id) {
            cluster.forget(id);
        }
    }
    let commit = status["commit"].as_u64().unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(30);
    for &member in &members {
        let applied = loop {
            let applied = cluster.status(member).and_then(|s| s["applied"].as_u64());
            if applied.is_some_and(|a| a >= commit) || Instant::now() > deadline {
                break applied;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if applied.is_none_or(|a| a < commit) {
            violations.push(format!(
                "node {member} did not catch up within 30 s of healing: applied {applied:?}, the leader had committed {commit}"
            ));
        }
    }
    let addresses: Vec<(u64, String)> =
        members.iter().filter_map(|&id| Some((id, cluster.address(id)?.to_owned()))).collect();
    let acknowledged = history.acknowledged_unique_keys();
    let names: Vec<(Key, String)> = acknowledged.iter().map(|&key| (key, key_name(key))).collect();
    let stored = read_everywhere(&addresses, &names);
    violations.extend(lost_writes(&acknowledged, &stored, unique_value));
    let hot: Vec<(Key, String)> = (0..HOT_KEYS).map(|key| (key, key_name(key))).collect();
    violations.extend(divergence(&read_everywhere(&addresses, &hot)));
    violations
}

fn tally(
    options: &RunOptions,
    history: &History,
    windows: Vec<Window>,
    verdict: String,
    violations: Vec<String>,
    directory: PathBuf,
    started: Instant,
) -> RunReport {
    let count = |f: fn(&OpOutcome) -> bool| {
        history.operations.iter().filter(|op| f(&op.outcome)).count() as u64
    };
    let mut faults: BTreeMap<Fault, FaultTally> = BTreeMap::new();
    for window in &windows {
        let tally = faults.entry(window.fault).or_default();
        tally.injections += 1;
        for op in &history.operations {
            if (window.start_us..window.end_us).contains(&op.invoked_us) {
                tally.operations += 1;
                tally.ok += u64::from(matches!(op.outcome, OpOutcome::Ok(_)));
            }
        }
    }
    RunReport {
        seed: options.seed,
        nodes: options.nodes,
        transport: options.transport,
        lease_reads: options.lease_reads,
        seconds: started.elapsed().as_secs_f64(),
        operations: history.operations.len() as u64,
        ok: count(|o| matches!(o, OpOutcome::Ok(_))),
        failed: count(|o| matches!(o, OpOutcome::Failed)),
        unknown: count(|o| matches!(o, OpOutcome::Unknown)),
        acknowledged_writes: history.acknowledged_unique_keys().len() as u64,
        verdict,
        violations,
        faults,
        windows,
        directory,
    }
}
