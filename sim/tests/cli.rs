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

#[test]
fn sweep_prints_one_row_per_cell_and_its_json_form_has_every_cell() {
    let output = sim()
        .args(["sweep", "--seeds", "1", "--nodes", "3", "--duration", "0.5", "--json"])
        .output()
        .expect("runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let sweep: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let cells = sweep["cells"].as_array().expect("cells");
    assert_eq!(cells.len(), 22, "9 families alone, all, drawn; membership off and on");
    assert_eq!(sweep["seeds"], 22);
    let first = &cells[0];
    assert_eq!(first["cell"], "3 nodes, loss, membership off");
    assert!(first["flags"].as_str().expect("flags").contains("--loss true --duplicate false"));
    for field in ["violations_by_property", "time_to_new_leader_ms_p99", "catch_up_ms_p99"] {
        assert!(first["summary"].get(field).is_some(), "missing {field}");
    }
}

#[test]
fn a_failing_sweep_exits_non_zero_and_prints_each_failing_seeds_replay_command() {
    let output = sim()
        .args(["sweep", "--seeds", "1", "--first-seed", "40", "--nodes", "3"])
        .args(["--duration", "0.001", "--liveness-bound", "0.000001"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(4), "liveness failures");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("22 cells, 22 seeds, 22 violations"), "{stdout}");
    assert!(
        stdout.contains("replay --seed 40 --nodes 3 --loss true --duplicate false"),
        "{stdout}"
    );
}

#[test]
fn shard_summaries_merge_into_the_whole_campaigns_summary() {
    let dir = std::env::temp_dir().join(format!("stepraft-shards-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let summary_of = |extra: &[&str]| {
        let output = sim()
            .args(["run", "--seeds", "6", "--first-seed", "70", "--nodes", "3", "--duration", "1"])
            .args(extra)
            .arg("--json")
            .output()
            .expect("runs");
        assert!(output.status.success());
        output.stdout
    };
    let mut files = Vec::new();
    for shard in ["0/3", "1/3", "2/3"] {
        let path = dir.join(shard.replace('/', "-"));
        std::fs::write(&path, summary_of(&["--shard", shard])).expect("written");
        files.push(path);
    }
    let merged = sim().arg("merge").args(&files).output().expect("runs");
    assert!(merged.status.success(), "{}", String::from_utf8_lossy(&merged.stderr));
    let merged: serde_json::Value = serde_json::from_slice(&merged.stdout).expect("JSON");
    let whole: serde_json::Value = serde_json::from_slice(&summary_of(&[])).expect("JSON");
    for field in ["seeds", "events", "committed_entries", "catch_up_ms_p99", "max_term"] {
        assert_eq!(merged[field], whole[field], "{field}");
    }
    let bad = dir.join("bad");
    std::fs::write(&bad, "{}").expect("written");
    let refused = sim().arg("merge").arg(&bad).output().expect("runs");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not a run or sweep summary"));
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}
