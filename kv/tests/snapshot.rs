//! Snapshots and compaction in the real runtime: nodes snapshot their map every few entries and
//! compact their logs; a follower killed with `kill -9` restarts from its snapshot plus the log
//! after it, and a node that joins later is caught up by InstallSnapshot, since the leader no
//! longer holds the entries it would need.

use std::time::Duration;

use serde_json::json;
use stepraft_kv::client::KvClient;
use stepraft_kv::launch::{self, wait_until, LocalCluster};

const EXECUTABLE: &str = env!("CARGO_BIN_EXE_stepraft-kv");

fn number(status: &serde_json::Value, field: &str) -> u64 {
    status[field].as_u64().unwrap_or_else(|| panic!("{field} in {status}"))
}

#[test]
fn nodes_compact_restart_from_a_snapshot_and_catch_up_newcomers_with_one() {
    let directory = launch::fresh_directory("stepraft-kv-snapshot").expect("temp dir");
    let addresses = launch::free_loopback_addresses(4).expect("ports");
    let (founders, joiner) = (addresses[..3].to_vec(), addresses[3].clone());
    let arguments = ["--tick-ms", "20", "--snapshot-every", "25", "--compaction-tail", "5"]
        .map(str::to_owned)
        .to_vec();
    let mut cluster =
        LocalCluster::new(EXECUTABLE.into(), directory.clone(), founders.clone(), arguments, true);
    cluster.start_all().expect("servers start");
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).expect("a leader") as usize;
    let follower = (1..=3).find(|&id| id != leader).expect("a follower");

    let mut kv = KvClient::new(founders.clone(), Duration::from_secs(5));
    for key in 0..100 {
        kv.put(&format!("k{key}"), &format!("v{key}")).expect("put");
    }
    let mut on_leader = KvClient::new(vec![founders[leader - 1].clone()], Duration::from_secs(5));
    let status = on_leader.status().expect("status");
    assert!(number(&status, "snapshot_index") >= 75, "the leader snapshotted: {status}");
    assert!(number(&status, "first_index") > 1, "and compacted its log: {status}");

    // A follower dies with kill -9 and misses writes; it restarts from its own snapshot plus
    // its log suffix, then catches up.
    cluster.kill(follower);
    for key in 100..150 {
        kv.put(&format!("k{key}"), &format!("v{key}")).expect("put");
    }
    cluster.start(follower).expect("restart");
    let mut on_follower =
        KvClient::new(vec![founders[follower - 1].clone()], Duration::from_secs(5));
    wait_until(Duration::from_secs(30), "the restarted follower has every write", || {
        (0..150).step_by(7).chain([149]).all(|key| {
            on_follower.get(&format!("k{key}"), true).ok().flatten() == Some(format!("v{key}"))
        })
    });
    assert!(number(&on_follower.status().expect("status"), "snapshot_index") > 0);

    // A newcomer needs entries the leader compacted long ago: it gets the snapshot.
    let mut fourth = cluster
        .spawn_joiner(
            4,
            &joiner,
            &["--tick-ms", "20", "--snapshot-every", "25", "--compaction-tail", "5"],
        )
        .expect("node 4 starts");
    kv.call("POST", "/members", Some(&json!({ "id": 4, "address": joiner })))
        .expect("node 4 is added");
    let mut on_fourth = KvClient::new(vec![joiner.clone()], Duration::from_secs(5));
    wait_until(Duration::from_secs(30), "node 4 has the data", || {
        on_fourth.get("k0", true).ok().flatten().as_deref() == Some("v0")
            && on_fourth.get("k149", true).ok().flatten().as_deref() == Some("v149")
    });
    let status = on_fourth.status().expect("status");
    assert!(number(&status, "snapshot_index") >= 75, "installed from the leader: {status}");

    let _ = fourth.kill();
    let _ = fourth.wait();
    drop(cluster);
    launch::remove_directory(&directory);
}
