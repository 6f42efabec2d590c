//! The command line contract: flags, JSON fields, exit codes, replay traces.

use std::process::Command;

fn sim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stepraft-sim"))
}

#[test]
fn run_json_summary_has_the_contract_fields_and_exits_zero() {
    let output = sim()
        .args(["run", "--seeds", "4", "--first-seed", "10", "--nodes", "3", "--duration", "1"])
        .arg("--json")
        .output()
        .expect("runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let summary: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON object");
    for field in
        ["seeds", "violations", "events", "events_per_sec", "committed_entries", "elections"]
    {
        assert!(summary.get(field).is_some(), "missing {field}");
    }
    assert_eq!(summary["seeds"], 4);
    assert_eq!(summary["violations"], 0);
}

#[test]
fn a_liveness_failure_exits_4_and_prints_the_replay_command() {
    let output = sim()
        // Faults end after 1 ms, before any election can finish; 1 µs is too short to recover.
        .args(["run", "--seeds", "1", "--first-seed", "3", "--duration", "0.001"])
        .args(["--liveness-bound", "0.000001", "--json"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("seed 3 FAILED"), "{stderr}");
    assert!(stderr.contains("liveness"), "{stderr}");
    assert!(stderr.contains("replay --seed 3"), "{stderr}");
}

#[test]
fn replay_writes_a_jsonl_trace_of_every_event() {
    let path = std::env::temp_dir().join(format!("stepraft-replay-{}.jsonl", std::process::id()));
    let output = sim()
        .args(["replay", "--seed", "5", "--duration", "1", "--trace"])
        .arg(&path)
        .output()
        .expect("runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let trace = std::fs::read_to_string(&path).expect("trace written");
    std::fs::remove_file(&path).ok();
    let kinds: std::collections::BTreeSet<String> = trace
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            value["event"].as_str().expect("event kind").to_string()
        })
        .collect();
    for kind in ["deliver", "role", "commit", "invoke", "complete", "phase"] {
        assert!(kinds.contains(kind), "no {kind} event in {kinds:?}");
    }
}
