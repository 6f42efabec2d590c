//! `stepraft-kv bench --json` end to end: it starts its own 3-node cluster, runs a write level
//! and a linearizable-read level, and reports each as one flat JSON object.

use std::process::Command;

use serde_json::Value;

const EXECUTABLE: &str = env!("CARGO_BIN_EXE_stepraft-kv");

#[test]
fn bench_reports_a_write_and_a_read_level_as_json_lines() {
    let output = Command::new(EXECUTABLE)
        .args(["bench", "--seconds", "0.5", "--clients", "2", "--reads", "3"])
        .args(["--connect", "spread", "--json"])
        .output()
        .expect("the bench runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench failed: {stderr}");
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let levels: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    assert_eq!(levels.len(), 2, "{stdout}");
    for (level, (operation, clients)) in levels.iter().zip([("write", 2), ("linearizable-read", 3)])
    {
        assert_eq!(level["target"], "stepraft", "{level}");
        assert_eq!(level["operation"], operation, "{level}");
        assert_eq!(level["clients"], clients, "{level}");
        assert!(level["operations"].as_u64() > Some(0), "{level}");
        assert_eq!(level["errors"], 0, "{level}");
        let latencies = ["p50_ms", "p99_ms", "p999_ms", "max_ms"].map(|k| level[k].as_f64());
        assert!(latencies.iter().all(Option::is_some), "{level}");
        assert!(latencies.windows(2).all(|pair| pair[0] <= pair[1]), "{level}");
        assert!(level["leader_changes"].is_u64(), "{level}");
        assert!(level["leader_before"].is_string(), "{level}");
        let gap = level["longest_gap_ms"].as_f64().expect("a longest gap");
        assert!(gap > 0.0 && gap < 1000.0 * level["seconds"].as_f64().unwrap(), "{level}");
    }
    assert!(stderr.contains("leader"), "the cluster and its leader are named: {stderr}");
}

#[test]
fn a_write_level_ends_after_the_writes_asked_for() {
    let output = Command::new(EXECUTABLE)
        .args(["bench", "--writes", "300", "--seconds", "60", "--clients", "4", "--reads", "0"])
        .arg("--json")
        .output()
        .expect("the bench runs");
    assert!(output.status.success(), "bench failed: {}", String::from_utf8_lossy(&output.stderr));
    let level: Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    let writes = level["operations"].as_u64().expect("a count");
    // Each of the 4 clients may finish the request it is in when the count is reached.
    assert!((300..=304).contains(&writes), "{level}");
    assert!(level["seconds"].as_f64() < Some(60.0), "{level}");
}

#[test]
fn bench_prints_the_leader_and_runs_nothing() {
    let output = Command::new(EXECUTABLE)
        .args(["bench", "--print-leader"])
        .output()
        .expect("the bench runs");
    assert!(output.status.success(), "bench failed: {}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let address: std::net::SocketAddr = stdout.trim().parse().expect("one address");
    assert!(address.ip().is_loopback(), "{stdout}");
}

#[test]
fn bench_of_etcd_needs_addresses() {
    let output = Command::new(EXECUTABLE)
        .args(["bench", "--target", "etcd", "--seconds", "0.1"])
        .output()
        .expect("the bench runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--target etcd needs --nodes"));
}
