//! `/metrics` and `/health` of real server processes: a cluster with a leader exports its
//! series in the Prometheus text format and is healthy on every node; a node that knows no
//! leader is not.

use std::time::Duration;

use serde_json::{json, Value};
use stepraft_kv::client::KvClient;
use stepraft_kv::http::client::{HttpClient, HttpResponse};
use stepraft_kv::launch::{self, wait_until, LocalCluster};

const EXECUTABLE: &str = env!("CARGO_BIN_EXE_stepraft-kv");

fn get(address: &str, path: &str) -> HttpResponse {
    let mut http = HttpClient::new(address, Duration::from_secs(5));
    http.request("GET", path, None).expect("answered")
}

/// The value of the series `series` (name and labels) in a metrics text.
fn value(text: &str, series: &str) -> f64 {
    let mut values = text.lines().filter_map(|line| line.strip_prefix(series)?.strip_prefix(' '));
    let value = values.next().unwrap_or_else(|| panic!("no {series} in:\n{text}"));
    assert!(values.next().is_none(), "{series} appears once");
    value.parse().unwrap_or_else(|_| panic!("{series} {value:?} is not a number"))
}

fn health(address: &str) -> (u16, Value) {
    let response = get(address, "/health");
    let body = serde_json::from_slice(&response.body).expect("json");
    (response.status, body)
}

#[test]
fn metrics_and_health_answer_on_a_cluster_with_a_leader() {
    let directory = launch::fresh_directory("stepraft-kv-observability").expect("temp dir");
    let addresses = launch::free_loopback_addresses(4).expect("ports");
    let (founders, joiner) = (addresses[..3].to_vec(), addresses[3].clone());
    let arguments = ["--tick-ms", "20"].map(str::to_owned).to_vec();
    let mut cluster =
        LocalCluster::new(EXECUTABLE.into(), directory.clone(), founders.clone(), arguments, true);
    cluster.start_all().expect("servers start");
    let leader = cluster.wait_for_leader(Duration::from_secs(20)).expect("a leader");
    let mut kv = KvClient::new(founders.clone(), Duration::from_secs(5));
    kv.put("observed", "yes").expect("put");

    for (position, address) in founders.iter().enumerate() {
        let id = position as u64 + 1;
        let node = format!("node=\"{id}\"");
        // Every node applies the write: its lag is then 0 (it is exported once the
        // application reports, which it does after every delivery).
        wait_until(Duration::from_secs(10), "the write is applied everywhere", || {
            let text = String::from_utf8(get(address, "/metrics").body).expect("utf-8");
            text.lines().any(|line| line == format!("stepraft_apply_lag_entries{{{node}}} 0"))
                && value(&text, &format!("stepraft_commit_index{{{node}}}")) >= 2.0
        });
        let response = get(address, "/metrics");
        assert_eq!(response.status, 200);
        let content_type = response.content_type.as_deref();
        assert_eq!(content_type, Some("text/plain; version=0.0.4; charset=utf-8"));
        let text = String::from_utf8(response.body).expect("utf-8");
        let series = |name: &str| value(&text, &format!("{name}{{{node}}}"));
        assert!(series("stepraft_storage_persists_total") >= 2.0, "the vote and the write");
        assert_eq!(
            series("stepraft_storage_persist_seconds_count"),
            series("stepraft_storage_persists_total"),
            "one latency observation per persist"
        );
        assert!(series("stepraft_storage_appended_entries_total") >= 2.0, "no-op and write");
        assert!(series("stepraft_application_applied_index") >= 2.0);
        assert_eq!(series("stepraft_leader_id"), leader as f64);
        let leads = value(&text, &format!("stepraft_role{{{node},role=\"leader\"}}"));
        assert_eq!(leads, if id == leader { 1.0 } else { 0.0 });
        // The transport's counters are attached; nothing was refused on loopback.
        assert_eq!(series("stepraft_transport_wrong_cluster_total"), 0.0);
        let stale = value(
            &text,
            &format!("stepraft_ignored_messages_total{{{node},reason=\"stale_term\"}}"),
        );
        assert!(stale >= 0.0);
        assert!(text.contains("# TYPE stepraft_storage_persist_seconds histogram\n"));

        let (status, body) = health(address);
        assert_eq!(status, 200, "{body}");
        let role = if id == leader { "leader" } else { "follower" };
        assert_eq!(body, json!({ "status": "ok", "role": role, "leader": leader }));
    }

    // A node that waits to be added knows no leader: running, but not healthy.
    let mut waiting = cluster.spawn_joiner(4, &joiner, &["--tick-ms", "20"]).expect("starts");
    wait_until(Duration::from_secs(10), "node 4 answers", || {
        let mut http = HttpClient::new(joiner.as_str(), Duration::from_secs(1));
        http.request("GET", "/health", None).is_ok()
    });
    let (status, body) = health(&joiner);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body, json!({ "status": "no leader", "role": "follower", "leader": null }));
    let response = get(&joiner, "/metrics");
    assert_eq!(response.status, 200);
    assert!(String::from_utf8_lossy(&response.body).contains("stepraft_term{node=\"4\"} 0"));
    let mut http = HttpClient::new(founders[0].as_str(), Duration::from_secs(5));
    let refused = http.request("POST", "/metrics", Some(b"{}")).expect("answered");
    assert_eq!(refused.status, 405);

    let _ = waiting.kill();
    let _ = waiting.wait();
    drop(cluster);
    launch::remove_directory(&directory);
}
