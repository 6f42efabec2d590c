//! Bad input gets a clear error and loses nothing: malformed and oversized HTTP requests,
//! peer frames of another version or cluster, from unknown peers, oversized or undecodable;
//! foreign and mismatched data directories.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use stepraft::{Heartbeat, LogIndex, Message, NodeId, Term};
use stepraft_kv::client::KvClient;
use stepraft_kv::command::KvCommand;
use stepraft_kv::launch::{self, LocalCluster};
use stepraft_tokio::codec::{encode_frame, Envelope, MAGIC};

mod common;

use common::{one_node, EXECUTABLE};

/// Sends raw bytes and returns everything the server answers before closing (or 2 s).
fn exchange(address: &str, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).expect("connects");
    stream.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
    stream.write_all(bytes).expect("writes");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

fn transport_count(kv: &mut KvClient, counter: &str) -> u64 {
    kv.status().expect("status")["transport"][counter].as_u64().expect("counter")
}

fn wait_for_count(kv: &mut KvClient, counter: &str, at_least: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while transport_count(kv, counter) < at_least {
        assert!(Instant::now() < deadline, "{counter} never reached {at_least}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn malformed_and_oversized_http_requests_get_clear_errors_and_lose_nothing() {
    let node = one_node("stepraft-kv-bad-input");
    let mut kv = KvClient::new(vec![node.address.clone()], Duration::from_secs(5));
    kv.put("kept", "before").expect("put");

    let cases: [(&[u8], &str); 5] = [
        (b"PUT /kv/x HTTP/1.1\r\ncontent-length: 99999999\r\n\r\n", "413"),
        (b"PUT /kv/x HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n", "501"),
        (b"\x16\x03\x01garbage that is not http\r\n\r\n", "400"),
        (b"PUT /kv/x HTTP/1.1\r\ncontent-length: 7\r\n\r\nnotjson", "400"),
        (b"PUT /kv/bad%20key HTTP/1.1\r\ncontent-length: 13\r\n\r\n{\"value\":\"v\"}", "400"),
    ];
    for (request, status) in cases {
        let answer = exchange(&node.address, request);
        assert!(answer.starts_with(&format!("HTTP/1.1 {status}")), "{answer}");
        assert!(answer.contains("\"error\""), "no error text: {answer}");
    }
    let huge_head = [b"GET /status HTTP/1.1\r\nx: ".to_vec(), vec![b'a'; 64 << 10]].concat();
    assert!(exchange(&node.address, &huge_head).starts_with("HTTP/1.1 431"));
    assert!(exchange(&node.address, b"GET /nowhere HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));

    // Two different lengths: refused at once (not at the idle timeout), and the connection
    // is closed cleanly, so the answer arrives whole.
    let started = Instant::now();
    let two_lengths =
        b"PUT /kv/x HTTP/1.1\r\ncontent-length: 13\r\ncontent-length: 99\r\n\r\n{\"value\":\"v\"}";
    let answer = exchange(&node.address, two_lengths);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("conflicting content-length"), "{answer}");
    assert!(started.elapsed() < Duration::from_millis(1500), "{:?}", started.elapsed());

    assert_eq!(kv.get("kept", false).expect("get"), Some("before".into()));
    kv.put("kept", "after").expect("the node still takes writes");
    assert_eq!(kv.get("x", false).expect("get"), None, "no bad request wrote anything");
    drop(node.cluster);
    launch::remove_directory(&node.directory);
}

fn heartbeat_frame(cluster_id: u64, from: u64, to: u64) -> Vec<u8> {
    let heartbeat = Heartbeat { term: Term(1_000), commit: LogIndex(0), round: 1 };
    let envelope: Envelope<KvCommand> = Envelope {
        cluster_id,
        from: NodeId(from),
        to: NodeId(to),
        message: stepraft_tokio::network::PeerMessage::Raft(Message::Heartbeat(heartbeat)),
    };
    encode_frame(&envelope).expect("encodes")
}

#[test]
fn peers_of_another_version_or_cluster_and_unknown_peers_are_refused() {
    let node = one_node("stepraft-kv-bad-input");
    let mut kv = KvClient::new(vec![node.address.clone()], Duration::from_secs(5));
    kv.put("kept", "v").expect("put");
    let term_before = kv.status().expect("status")["term"].as_u64();

    // Another wire version: the connection is closed and counted.
    let mut frame = heartbeat_frame(1, 2, 1);
    frame[4..6].copy_from_slice(&99u16.to_be_bytes());
    exchange(&node.address, &[&MAGIC[..], &frame].concat());
    wait_for_count(&mut kv, "wrong_version", 1);

    // Another cluster, and a sender the node does not know (the default cluster id is 1).
    exchange(&node.address, &[&MAGIC[..], &heartbeat_frame(2, 2, 1)].concat());
    wait_for_count(&mut kv, "wrong_cluster", 1);
    exchange(&node.address, &[&MAGIC[..], &heartbeat_frame(1, 77, 1)].concat());
    wait_for_count(&mut kv, "unknown_peer", 1);

    // An undecodable frame is skipped; an oversized length closes the connection.
    let version = stepraft_tokio::codec::WIRE_VERSION.to_be_bytes();
    let garbage = [&5u32.to_be_bytes()[..], &version, &[0xff, 0xff, 0xff]].concat();
    exchange(&node.address, &[&MAGIC[..], &garbage].concat());
    wait_for_count(&mut kv, "malformed", 1);
    exchange(&node.address, &[&MAGIC[..], &u32::MAX.to_be_bytes()[..]].concat());
    wait_for_count(&mut kv, "malformed", 2);

    // None of it reached the core: a heartbeat of term 1000 would have deposed the leader.
    let status = kv.status().expect("status");
    assert_eq!(status["term"].as_u64(), term_before);
    assert_eq!(status["role"], "leader");
    assert_eq!(kv.get("kept", false).expect("get"), Some("v".into()));
    drop(node.cluster);
    launch::remove_directory(&node.directory);
}

fn serve_once(data: &std::path::Path, id: u64, cluster_id: u64) -> std::process::Output {
    let address = launch::free_loopback_addresses(1).expect("port").remove(0);
    Command::new(EXECUTABLE)
        .args(["serve", "--id", &id.to_string(), "--listen", &address])
        .args(["--cluster-id", &cluster_id.to_string(), "--data"])
        .arg(data)
        .output()
        .expect("runs")
}

#[test]
fn a_foreign_or_mismatched_data_directory_is_refused_and_left_alone() {
    let directory = launch::fresh_directory("stepraft-kv-foreign").expect("temp dir");
    std::fs::write(directory.join("family-photos.jpg"), b"precious").expect("write");
    let output = serve_once(&directory, 1, 1);
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("not empty and holds no stepraft-kv store"), "{message}");
    assert_eq!(std::fs::read(directory.join("family-photos.jpg")).expect("read"), b"precious");

    // A store made by node 1 of cluster 1 refuses to serve as node 2, or in cluster 9.
    let store = directory.join("store");
    let mut cluster = LocalCluster::new(
        EXECUTABLE.into(),
        store.clone(),
        launch::free_loopback_addresses(1).expect("port"),
        Vec::new(),
        true,
    );
    cluster.start_all().expect("starts");
    assert_eq!(cluster.wait_for_leader(Duration::from_secs(20)), Some(1));
    drop(cluster);
    let node_store = store.join("node-1");
    for (id, cluster_id) in [(2, 1), (1, 9)] {
        let output = serve_once(&node_store, id, cluster_id);
        assert!(!output.status.success());
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(message.contains("belongs to node 1 of cluster 1"), "{message}");
    }
    launch::remove_directory(&directory);
}
