//! The nemesis suite's short runs, part of the test command: real `stepraft-kv` servers under
//! every fault family, over TCP with lease reads and over UDP without. The long campaign is
//! `cargo run --release -p stepraft-nemesis` (see the README).

use std::time::Duration;

use stepraft_nemesis::cluster::Transport;
use stepraft_nemesis::faults::Fault;
use stepraft_nemesis::run::{run, RunOptions, RunReport};

fn short_run(seed: u64, transport: Transport, lease_reads: bool) -> RunReport {
    let executable =
        stepraft_nemesis::server_binary::stepraft_kv(false).expect("the server builds");
    let options = RunOptions {
        seed,
        nodes: 3,
        transport,
        lease_reads,
        duration: Duration::from_secs(14),
        faults: Fault::ALL.to_vec(),
        clients: 4,
        tick_ms: 20,
        executable,
        directory: std::env::temp_dir()
            .join(format!("stepraft-nemesis-test-{}", std::process::id())),
    };
    let report = run(&options).expect("the run starts");
    let windows: Vec<_> = report.windows.iter().map(|w| &w.description).collect();
    eprintln!(
        "{} run, lease reads {lease_reads}: {} ops ({} ok, {} failed, {} unknown), faults {windows:?}",
        transport.name(),
        report.operations,
        report.ok,
        report.failed,
        report.unknown
    );
    assert!(
        report.violations.is_empty(),
        "violations (logs in {}): {:#?}",
        report.directory.display(),
        report.violations
    );
    assert_eq!(report.verdict, "linearizable");
    assert!(report.windows.len() >= 3, "only {} faults were injected", report.windows.len());
    assert!(
        report.acknowledged_writes >= 100,
        "only {} writes were acknowledged",
        report.acknowledged_writes
    );
    report
}

#[test]
fn a_tcp_cluster_with_lease_reads_keeps_every_promise_under_every_fault() {
    short_run(11, Transport::Tcp, true);
}

#[test]
fn a_udp_cluster_keeps_every_promise_under_every_fault() {
    short_run(12, Transport::Udp, false);
}
