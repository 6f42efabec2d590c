//! The UDP transport carries a real cluster: election, replication, redirects and reads.

use std::time::Duration;

use stepraft_kv::client::KvClient;
use stepraft_kv::launch::{self, LocalCluster};

#[test]
fn a_cluster_over_udp_replicates_writes() {
    let directory = launch::fresh_directory("stepraft-kv-udp").expect("temp dir");
    let addresses = launch::free_loopback_addresses(3).expect("ports");
    let arguments = ["--transport", "udp", "--tick-ms", "20"].map(str::to_owned).to_vec();
    let executable = env!("CARGO_BIN_EXE_stepraft-kv").into();
    let mut cluster =
        LocalCluster::new(executable, directory.clone(), addresses.clone(), arguments, true);
    cluster.start_all().expect("servers start");
    cluster.wait_for_leader(Duration::from_secs(20)).expect("a leader");
    let mut kv = KvClient::new(addresses.clone(), Duration::from_secs(5));
    for key in 0..50 {
        kv.put(&format!("u{key}"), &"v".repeat(1000)).expect("put over udp");
    }
    // A value too large for a datagram is refused up front, not silently lost.
    let error = kv.put("big", &"v".repeat(20_000)).expect_err("too large for udp");
    assert!(error.to_string().starts_with("413"), "{error}");
    for address in &addresses {
        let mut reader = KvClient::new(vec![address.clone()], Duration::from_secs(5));
        assert_eq!(reader.get("u49", false).expect("linearizable read"), Some("v".repeat(1000)));
    }
    drop(cluster);
    launch::remove_directory(&directory);
}
