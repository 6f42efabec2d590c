//! Membership over the HTTP API: a node started with `--join` is added, catches up, takes
//! leadership by transfer (a write to a founder is then forwarded to it), and a voter is removed.

use std::time::Duration;

use serde_json::json;
use stepraft_kv::client::KvClient;
use stepraft_kv::launch::{self, wait_until, LocalCluster};

const EXECUTABLE: &str = env!("CARGO_BIN_EXE_stepraft-kv");

#[test]
fn a_joining_node_is_added_takes_leadership_and_a_voter_is_removed() {
    let directory = launch::fresh_directory("stepraft-kv-membership").expect("temp dir");
    let addresses = launch::free_loopback_addresses(4).expect("ports");
    let (founders, joiner) = (addresses[..3].to_vec(), addresses[3].clone());
    let arguments = ["--tick-ms", "20"].map(str::to_owned).to_vec();
    let mut cluster =
        LocalCluster::new(EXECUTABLE.into(), directory.clone(), founders.clone(), arguments, true);
    cluster.start_all().expect("servers start");
    cluster.wait_for_leader(Duration::from_secs(20)).expect("a leader");
    let mut fourth = cluster.spawn_joiner(4, &joiner, &["--tick-ms", "20"]).expect("node 4 starts");

    let mut kv = KvClient::new(founders.clone(), Duration::from_secs(5));
    kv.put("before", "join").expect("put");
    kv.call("POST", "/members", Some(&json!({ "id": 4, "address": joiner })))
        .expect("node 4 is added");
    let mut on_fourth = KvClient::new(vec![joiner.clone()], Duration::from_secs(5));
    wait_until(Duration::from_secs(20), "node 4 has the data", || {
        on_fourth.get("before", true).ok().flatten().as_deref() == Some("join")
    });

    kv.call("POST", "/leader", Some(&json!({ "id": 4 }))).expect("transfer starts");
    wait_until(Duration::from_secs(20), "node 4 leads", || {
        on_fourth.status().is_ok_and(|status| status["role"] == "leader")
    });
    // A write sent to a founder is forwarded by it to the new leader and answered by it.
    let mut via_founder = KvClient::new(vec![founders[0].clone()], Duration::from_secs(5));
    via_founder.put("after", "transfer").expect("put forwarded to the leader");
    assert_eq!(via_founder.node(), founders[0], "answered by the founder, not redirected");
    assert_eq!(via_founder.get("after", true).expect("stale read"), Some("transfer".into()));

    on_fourth.call("DELETE", "/members/2", None).expect("node 2 is removed");
    let voters = on_fourth.status().expect("status")["members"]["voters"].clone();
    assert_eq!(voters, json!([1, 3, 4]));
    assert_eq!(on_fourth.get("after", false).expect("read"), Some("transfer".into()));

    let _ = fourth.kill();
    let _ = fourth.wait();
    drop(cluster);
    launch::remove_directory(&directory);
}
