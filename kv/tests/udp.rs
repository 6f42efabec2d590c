//! The UDP transport carries a real cluster: election, replication, redirects and reads; and
//! snapshots larger than a datagram, sent in chunks that fit one: to a node added after
//! compaction, and to a follower that restarts behind a log compacted every few entries.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use stepraft_kv::client::KvClient;
use stepraft_kv::launch::{self, wait_until, LocalCluster};

const EXECUTABLE: &str = env!("CARGO_BIN_EXE_stepraft-kv");

/// A value of about 1 KiB, so that a few hundred keys make a snapshot of several datagrams.
fn value(key: usize) -> String {
    format!("{key:04}-{}", "v".repeat(1000))
}

fn number(status: &Value, path: &[&str]) -> u64 {
    let field = path.iter().fold(status, |value, name| &value[name]);
    field.as_u64().unwrap_or_else(|| panic!("{path:?} in {status}"))
}

fn status(address: &str) -> Value {
    KvClient::new(vec![address.to_owned()], Duration::from_secs(5)).status().expect("status")
}

/// Puts `keys`, returning those acknowledged (a `504` leaves a write's outcome unknown).
fn put_all(kv: &mut KvClient, keys: std::ops::Range<usize>) -> Vec<usize> {
    keys.filter(|&key| kv.put(&format!("k{key}"), &value(key)).is_ok()).collect()
}

/// Waits until `address` holds every key of `keys` with its value (stale reads: the node's
/// own state).
fn wait_for_keys(address: &str, keys: &[usize], timeout: Duration) {
    let mut reader = KvClient::new(vec![address.to_owned()], Duration::from_secs(5));
    wait_until(timeout, &format!("{address} holds every acknowledged write"), || {
        keys.iter()
            .all(|&key| reader.get(&format!("k{key}"), true).ok().flatten() == Some(value(key)))
    });
}

/// The flags of a UDP node that snapshots every `every` entries and keeps `tail` entries.
fn compacting_arguments(every: u64, tail: u64) -> Vec<String> {
    let flags = ["--transport", "udp", "--tick-ms", "20", "--snapshot-every"].map(str::to_owned);
    let tail = ["--compaction-tail".to_owned(), tail.to_string()];
    flags.into_iter().chain([every.to_string()]).chain(tail).collect()
}

/// Starts a UDP cluster on `addresses` that snapshots every `every` entries and keeps `tail`
/// entries; returns it with its leader's id.
fn start_compacting_cluster(
    directory: &std::path::Path,
    addresses: &[String],
    every: u64,
    tail: u64,
) -> (LocalCluster, usize) {
    let mut cluster = LocalCluster::new(
        EXECUTABLE.into(),
        directory.to_path_buf(),
        addresses.to_vec(),
        compacting_arguments(every, tail),
        true,
    );
    cluster.start_all().expect("servers start");
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).expect("a leader") as usize;
    (cluster, leader)
}

#[test]
fn a_cluster_over_udp_replicates_writes() {
    let directory = launch::fresh_directory("stepraft-kv-udp").expect("temp dir");
    let addresses = launch::free_loopback_addresses(3).expect("ports");
    let arguments = ["--transport", "udp", "--tick-ms", "20"].map(str::to_owned).to_vec();
    let mut cluster =
        LocalCluster::new(EXECUTABLE.into(), directory.clone(), addresses.clone(), arguments, true);
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

#[test]
fn a_node_added_over_udp_after_compaction_catches_up_through_install_snapshot() {
    let started = Instant::now();
    let directory = launch::fresh_directory("stepraft-kv-udp-join").expect("temp dir");
    let addresses = launch::free_loopback_addresses(4).expect("ports");
    let (founders, joiner) = (addresses[..3].to_vec(), addresses[3].clone());
    let (cluster, leader) = start_compacting_cluster(&directory, &founders, 25, 5);
    let joiner_arguments = compacting_arguments(25, 5);
    let joiner_arguments: Vec<&str> = joiner_arguments.iter().map(String::as_str).collect();

    // About 150 KB of state. Snapshots are taken when the log since the last one holds as many
    // bytes as it did, so the latest covers about 100 of the 150 writes: two or more
    // datagram-sized chunks.
    let mut kv = KvClient::new(founders.clone(), Duration::from_secs(5));
    let acknowledged = put_all(&mut kv, 0..150);
    assert!(acknowledged.len() >= 140, "only {} writes acknowledged", acknowledged.len());
    let before = status(&founders[leader - 1]);
    assert!(number(&before, &["first_index"]) > 1, "the leader compacted its log: {before}");

    let mut fourth = cluster.spawn_joiner(4, &joiner, &joiner_arguments).expect("node 4 starts");
    kv.call("POST", "/members", Some(&json!({ "id": 4, "address": joiner })))
        .expect("node 4 is added");
    wait_for_keys(&joiner, &acknowledged, Duration::from_secs(20));

    let on_fourth = status(&joiner);
    assert!(number(&on_fourth, &["snapshots", "installed"]) >= 1, "installed: {on_fourth}");
    let on_leader = status(&founders[leader - 1]);
    let chunks = number(&on_leader, &["snapshots", "chunks_sent"]);
    let bytes = number(&on_leader, &["snapshots", "bytes_sent"]);
    assert!(chunks >= 2 && bytes > 65_507, "a snapshot larger than a datagram: {on_leader}");
    assert_eq!(number(&on_leader, &["transport", "oversized_outgoing"]), 0, "{on_leader}");
    eprintln!(
        "udp join: {chunks} chunks ({bytes} bytes) sent, {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let _ = fourth.kill();
    let _ = fourth.wait();
    drop(cluster);
    launch::remove_directory(&directory);
}

#[test]
fn a_udp_cluster_snapshotting_every_five_entries_keeps_every_acknowledged_write() {
    let started = Instant::now();
    let directory = launch::fresh_directory("stepraft-kv-udp-compact").expect("temp dir");
    let addresses = launch::free_loopback_addresses(3).expect("ports");
    let (mut cluster, leader) = start_compacting_cluster(&directory, &addresses, 5, 2);
    let follower = (1..=3).find(|&id| id != leader).expect("a follower");

    let mut kv = KvClient::new(addresses.clone(), Duration::from_secs(5));
    let mut acknowledged = put_all(&mut kv, 0..80);
    // A follower killed with kill -9 falls far behind a log compacted every five entries: it
    // comes back through a snapshot of several datagrams, while writes go on.
    cluster.kill(follower);
    acknowledged.extend(put_all(&mut kv, 80..200));
    cluster.start(follower).expect("the follower restarts");
    acknowledged.extend(put_all(&mut kv, 200..240));
    assert!(acknowledged.len() >= 220, "only {} writes acknowledged", acknowledged.len());

    for address in &addresses {
        wait_for_keys(address, &acknowledged, Duration::from_secs(20));
    }
    let on_follower = status(&addresses[follower - 1]);
    assert!(number(&on_follower, &["snapshots", "installed"]) >= 1, "{on_follower}");
    for address in &addresses {
        let node = status(address);
        assert_eq!(number(&node, &["transport", "oversized_outgoing"]), 0, "{node}");
    }
    eprintln!(
        "udp compaction: {} acknowledged writes on every node, {:.1} s",
        acknowledged.len(),
        started.elapsed().as_secs_f64()
    );
    drop(cluster);
    launch::remove_directory(&directory);
}

#[test]
fn a_configuration_whose_messages_cannot_fit_a_datagram_is_refused_at_start() {
    let directory = launch::fresh_directory("stepraft-kv-udp-refused").expect("temp dir");
    let addresses = launch::free_loopback_addresses(1).expect("port");
    let data = directory.join("node-1");
    // 6,500 learners of 10-byte ids leave a snapshot chunk no room for data.
    let output = Command::new(EXECUTABLE)
        .args(["serve", "--id", "1", "--listen", &addresses[0], "--transport", "udp"])
        .args(["--learners-max", "6500", "--data"])
        .arg(&data)
        .stdin(Stdio::null())
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "refused: {stderr}");
    assert!(stderr.contains("messages do not fit the udp transport"), "{stderr}");
    assert!(stderr.contains("InstallSnapshot"), "{stderr}");
    assert!(!data.exists(), "nothing was created for a refused configuration");
    launch::remove_directory(&directory);
}
