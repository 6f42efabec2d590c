//! The tables a campaign of runs prints: one line per run, then one per fault family.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::faults::Fault;
use crate::run::{FaultTally, RunReport};

/// One line per run: its shape, operations and outcomes, and violations.
pub fn runs_table(reports: &[RunReport]) -> String {
    let mut table = String::from(
        "| run | seed | nodes | transport | lease reads | s | ops | ok | failed | unknown | acked writes | faults | verdict | violations |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (index, report) in reports.iter().enumerate() {
        let faults: u64 = report.faults.values().map(|tally| tally.injections).sum();
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} |",
            index + 1,
            report.seed,
            report.nodes,
            report.transport.name(),
            if report.lease_reads { "on" } else { "off" },
            report.seconds,
            report.operations,
            report.ok,
            report.failed,
            report.unknown,
            report.acknowledged_writes,
            faults,
            report.verdict,
            report.violations.len(),
        );
    }
    table
}

/// One line per fault family over every run: injections, operations invoked during its
/// windows and the share that succeeded (availability), and the runs with a violation that
/// included it.
pub fn faults_table(reports: &[RunReport]) -> String {
    let mut totals: BTreeMap<Fault, (FaultTally, u64)> = BTreeMap::new();
    for report in reports {
        for (fault, tally) in &report.faults {
            let (total, violating) = totals.entry(*fault).or_default();
            total.injections += tally.injections;
            total.operations += tally.operations;
            total.ok += tally.ok;
            *violating += u64::from(!report.violations.is_empty());
        }
    }
    let mut table = String::from(
        "| fault | injections | ops during | ok during | availability | runs with a violation |\n|---|---|---|---|---|---|\n",
    );
    for (fault, (tally, violating)) in totals {
        let availability = if tally.operations == 0 {
            "-".to_owned()
        } else {
            format!("{:.1}%", 100.0 * tally.ok as f64 / tally.operations as f64)
        };
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {} | {} |",
            fault.name(),
            tally.injections,
            tally.operations,
            tally.ok,
            availability,
            violating
        );
    }
    table
}
