//! The two systems the benchmark can drive, over the same HTTP client: stepraft-kv's JSON API,
//! and etcd v3's JSON gateway (`/v3/...`, served by etcd 3.4 and later on its client port).
//! What differs between them is only how a request is written and how a node's view of the
//! cluster is read.

use std::time::Duration;

use serde_json::Value;

use crate::http::client::HttpClient;

/// The path prefix of etcd's JSON gateway. etcd 3.4 serves both `/v3` and the older
/// `/v3beta`; 3.5 serves only `/v3`.
const ETCD_GATEWAY: &str = "/v3";

/// Which system a benchmark talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// `stepraft-kv serve` nodes: `PUT /kv/KEY`, `GET /kv/KEY` (linearizable), `GET /status`.
    Stepraft,
    /// etcd members: `POST /v3/kv/put` and `/v3/kv/range` (linearizable unless asked
    /// otherwise) with base64 keys and values, `POST /v3/maintenance/status`, `GET /metrics`.
    Etcd,
}

/// One request, ready for [`HttpClient::request`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The HTTP method.
    pub method: &'static str,
    /// The path and query.
    pub path: String,
    /// The JSON body.
    pub body: Option<Vec<u8>>,
}

impl Target {
    /// The name used in reports: `stepraft` or `etcd`.
    pub fn name(self) -> &'static str {
        match self {
            Target::Stepraft => "stepraft",
            Target::Etcd => "etcd",
        }
    }

    /// A request that sets `key` (plain ASCII, no `/` or `?`) to `value`.
    pub fn put(self, key: &str, value: &str) -> Request {
        match self {
            Target::Stepraft => Request {
                method: "PUT",
                path: format!("/kv/{key}"),
                body: Some(format!("{{\"value\":{}}}", Value::from(value)).into_bytes()),
            },
            Target::Etcd => Request {
                method: "POST",
                path: format!("{ETCD_GATEWAY}/kv/put"),
                body: Some(
                    format!(
                        "{{\"key\":\"{}\",\"value\":\"{}\"}}",
                        base64(key.as_bytes()),
                        base64(value.as_bytes())
                    )
                    .into_bytes(),
                ),
            },
        }
    }

    /// A linearizable read of `key`.
    pub fn linearizable_get(self, key: &str) -> Request {
        match self {
            Target::Stepraft => Request {
                method: "GET",
                path: format!("/kv/{key}?consistency=linearizable"),
                body: None,
            },
            // A range request is linearizable unless `serializable` is set.
            Target::Etcd => Request {
                method: "POST",
                path: format!("{ETCD_GATEWAY}/kv/range"),
                body: Some(format!("{{\"key\":\"{}\"}}", base64(key.as_bytes())).into_bytes()),
            },
        }
    }

    /// Whether the answer to a [`Target::linearizable_get`] holds `value`.
    pub fn read_answer_holds(self, body: &[u8], value: &str) -> bool {
        let Ok(answer) = serde_json::from_slice::<Value>(body) else { return false };
        match self {
            Target::Stepraft => answer["value"].as_str() == Some(value),
            Target::Etcd => answer["kvs"][0]["value"].as_str() == Some(&base64(value.as_bytes())),
        }
    }

    /// What the node at `address` says of the cluster; `None` if it does not answer.
    pub fn observe_node(self, address: &str, timeout: Duration) -> Option<NodeView> {
        let mut http = HttpClient::new(address, timeout);
        let mut json = |method, path, body: Option<&[u8]>| -> Option<Value> {
            let response = http.request(method, path, body).ok()?;
            (response.status == 200).then(|| serde_json::from_slice(&response.body).ok())?
        };
        match self {
            Target::Stepraft => NodeView::of_stepraft_status(&json("GET", "/status", None)?),
            Target::Etcd => {
                let path = format!("{ETCD_GATEWAY}/maintenance/status");
                let status = json("POST", &path, Some(b"{}"))?;
                let metrics = http.request("GET", "/metrics", None).ok();
                let metrics = metrics.filter(|response| response.status == 200);
                let text =
                    metrics.map(|response| String::from_utf8_lossy(&response.body).into_owned());
                NodeView::of_etcd_status(&status, text.as_deref())
            }
        }
    }
}

/// One node's view of the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeView {
    /// The node's current Raft term.
    pub term: u64,
    /// Whether the node believes it leads.
    pub leads: bool,
    /// etcd's `etcd_server_leader_changes_seen_total` on this node: the leaders it has
    /// learned of (`None` for stepraft, see [`crate::bench`]).
    pub leader_changes_seen: Option<u64>,
}

impl NodeView {
    /// From a stepraft-kv `GET /status` answer.
    pub fn of_stepraft_status(status: &Value) -> Option<NodeView> {
        let term = status["term"].as_u64()?;
        let leads = status["id"].as_u64().is_some() && status["leader"] == status["id"];
        Some(NodeView { term, leads, leader_changes_seen: None })
    }

    /// From an etcd `POST /v3/maintenance/status` answer (64-bit integers come as JSON
    /// strings) and the text of its `GET /metrics`, if that answered.
    pub fn of_etcd_status(status: &Value, metrics: Option<&str>) -> Option<NodeView> {
        let number = |value: &Value| value.as_str()?.parse::<u64>().ok();
        let term = number(&status["raftTerm"])?;
        let me = number(&status["header"]["member_id"]);
        let leads = me.is_some() && me == number(&status["leader"]);
        let leader_changes_seen =
            metrics.and_then(|text| counter(text, "etcd_server_leader_changes_seen_total"));
        Some(NodeView { term, leads, leader_changes_seen })
    }
}

/// The value of an unlabelled counter in Prometheus text format.
pub fn counter(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(' ')?;
        // Counters are floats in the text format ("3", "3e+00").
        let value: f64 = value.split_whitespace().next()?.parse().ok()?;
        Some(value as u64)
    })
}

/// Standard base64 (RFC 4648 §4, with padding), as etcd's gateway expects for bytes fields.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let group = chunk
            .iter()
            .enumerate()
            .fold(0u32, |group, (i, &b)| group | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                let sextet = (group >> (18 - 6 * i)) & 0x3f;
                text.push(char::from(ALPHABET[sextet as usize]));
            } else {
                text.push('=');
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn base64_matches_the_rfc_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
        }
        assert_eq!(base64(&[0xfb, 0xff, 0xbf]), "+/+/");
    }

    #[test]
    fn requests_of_both_targets() {
        let put = Target::Stepraft.put("k-1", "v\"x");
        assert_eq!((put.method, put.path.as_str()), ("PUT", "/kv/k-1"));
        assert_eq!(put.body.as_deref(), Some(&br#"{"value":"v\"x"}"#[..]));
        let put = Target::Etcd.put("foo", "bar");
        assert_eq!((put.method, put.path.as_str()), ("POST", "/v3/kv/put"));
        assert_eq!(put.body.as_deref(), Some(&br#"{"key":"Zm9v","value":"YmFy"}"#[..]));
        let get = Target::Stepraft.linearizable_get("k");
        assert_eq!(
            (get.method, get.path.as_str(), get.body),
            ("GET", "/kv/k?consistency=linearizable", None)
        );
        let get = Target::Etcd.linearizable_get("foo");
        assert_eq!((get.method, get.path.as_str()), ("POST", "/v3/kv/range"));
        assert_eq!(get.body.as_deref(), Some(&br#"{"key":"Zm9v"}"#[..]));
    }

    #[test]
    fn read_answers_of_both_targets() {
        let stepraft = br#"{"key":"k","value":"bar"}"#;
        assert!(Target::Stepraft.read_answer_holds(stepraft, "bar"));
        assert!(!Target::Stepraft.read_answer_holds(br#"{"key":"k","value":null}"#, "bar"));
        // An answer of etcd 3.4's gateway.
        let etcd = br#"{"header":{"revision":"2","raft_term":"2"},"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1","value":"YmFy"}],"count":"1"}"#;
        assert!(Target::Etcd.read_answer_holds(etcd, "bar"));
        assert!(!Target::Etcd.read_answer_holds(br#"{"header":{}}"#, "bar"));
        assert!(!Target::Etcd.read_answer_holds(b"not json", "bar"));
    }

    #[test]
    fn node_views_of_both_targets() {
        let leader = json!({ "id": 2, "term": 7, "leader": 2, "role": "leader" });
        let follower = json!({ "id": 1, "term": 7, "leader": 2, "role": "follower" });
        let lost = json!({ "id": 3, "term": 8, "leader": null, "role": "candidate" });
        let view = |status| NodeView::of_stepraft_status(&status).map(|v| (v.term, v.leads));
        assert_eq!(view(leader), Some((7, true)));
        assert_eq!(view(follower), Some((7, false)));
        assert_eq!(view(lost), Some((8, false)));
        assert_eq!(view(json!({ "error": "x" })), None);

        // etcd 3.4's answer, and a scrape's lines around the counter.
        let status = json!({
            "header": { "cluster_id": "85", "member_id": "3542974012341521924", "raft_term": "2" },
            "version": "3.4.23", "leader": "3542974012341521924", "raftTerm": "2",
        });
        let metrics = "# TYPE etcd_server_leader_changes_seen_total counter\n\
                       etcd_server_leader_changes_seen_total 3\n\
                       etcd_server_leader_changes_seen_total_other 9\n";
        let view = NodeView::of_etcd_status(&status, Some(metrics));
        assert_eq!(view, Some(NodeView { term: 2, leads: true, leader_changes_seen: Some(3) }));
        let mut follower = status.clone();
        follower["header"]["member_id"] = json!("11539305337000706507");
        let view = NodeView::of_etcd_status(&follower, None);
        assert_eq!(view, Some(NodeView { term: 2, leads: false, leader_changes_seen: None }));
    }

    #[test]
    fn counters_are_read_by_exact_name() {
        let text = "a_total_x 5\na_total 2e+00\n";
        assert_eq!(counter(text, "a_total"), Some(2));
        assert_eq!(counter(text, "b_total"), None);
    }
}
