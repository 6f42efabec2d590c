//! The HTTP JSON API: routing, request bodies, and the answers.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use stepraft::{LogIndex, MembershipChange, NodeId, Payload, Role};
use tokio::sync::{mpsc, oneshot};

use super::app::{AppRequest, Reply};
use super::error::ApiError;
use crate::command::{KvOp, KvOutcome};
use crate::http::server::{Request, Response};
use stepraft_tokio::metrics::{NodeMetrics, CONTENT_TYPE};
use stepraft_tokio::network::peers::TransportStats;
use stepraft_tokio::network::PeerBook;

/// The longest key accepted.
pub const KEY_BYTES_MAX: usize = 1024;

/// What every handler needs.
#[derive(Debug)]
pub struct ApiContext {
    /// This node.
    pub me: NodeId,
    /// The application task.
    pub app: mpsc::Sender<AppRequest>,
    /// Peer addresses, for redirects and `/status`.
    pub book: PeerBook,
    /// Transport counters, for `/status`.
    pub stats: std::sync::Arc<TransportStats>,
    /// The node's metrics, for `/metrics`.
    pub metrics: NodeMetrics,
    /// How long a handler waits for the cluster before answering `504`.
    pub request_timeout: Duration,
}

/// Serves one request.
pub async fn handle(context: &ApiContext, request: &Request) -> Response {
    let segments: Vec<&str> = request.path.split('/').filter(|s| !s.is_empty()).collect();
    match (request.method.as_str(), segments.as_slice()) {
        ("GET", ["metrics"]) => return Response::text(200, CONTENT_TYPE, context.metrics.encode()),
        ("GET", ["health"]) => return health(context).await,
        _ => {}
    }
    let target = if request.query.is_empty() {
        request.path.clone()
    } else {
        format!("{}?{}", request.path, request.query)
    };
    match route(context, request).await {
        Ok(body) => Response::json(200, &body),
        Err(error) => error.into_response(&context.book, &target),
    }
}

async fn route(context: &ApiContext, request: &Request) -> Result<Value, ApiError> {
    let segments: Vec<&str> = request.path.split('/').filter(|s| !s.is_empty()).collect();
    match (request.method.as_str(), segments.as_slice()) {
        ("GET", ["status"]) => status(context).await,
        ("GET", ["kv", key]) => {
            let key = valid_key(key)?;
            let stale = match query_value(&request.query, "consistency") {
                None | Some("linearizable") => false,
                Some("stale") => true,
                Some(other) => {
                    return Err(ApiError::BadRequest(format!(
                        "consistency must be linearizable or stale, not {other:?}"
                    )))
                }
            };
            let value =
                ask(context, |reply| AppRequest::Read { key: key.clone(), stale, reply }).await?;
            Ok(json!({ "key": key, "value": value }))
        }
        ("PUT", ["kv", key]) => {
            #[derive(Deserialize)]
            struct Put {
                value: String,
            }
            let key = valid_key(key)?;
            let Put { value } = parse_body(&request.body)?;
            write(context, KvOp::Put { key, value }).await
        }
        ("DELETE", ["kv", key]) => write(context, KvOp::Delete { key: valid_key(key)? }).await,
        ("POST", ["kv", key, "cas"]) => {
            #[derive(Deserialize)]
            struct Cas {
                expected: Option<String>,
                new: String,
            }
            let key = valid_key(key)?;
            let Cas { expected, new } = parse_body(&request.body)?;
            write(context, KvOp::Cas { key, expected, new }).await
        }
        ("GET", ["log"]) => log_range(context, &request.query).await,
        ("POST", ["members"]) => add_member(context, &request.body).await,
        ("POST", ["members", id, "promote"]) => {
            let change = MembershipChange::PromoteLearner(node_id(id)?);
            change_membership(context, change).await
        }
        ("DELETE", ["members", id]) => {
            change_membership(context, MembershipChange::RemoveNode(node_id(id)?)).await
        }
        ("POST", ["leader"]) => {
            #[derive(Deserialize)]
            struct Transfer {
                id: u64,
            }
            let Transfer { id } = parse_body(&request.body)?;
            ask(context, |reply| AppRequest::Transfer(NodeId(id), reply)).await?;
            Ok(json!({ "transferring_to": id }))
        }
        (
            _,
            ["status"]
            | ["kv", _]
            | ["kv", _, "cas"]
            | ["log"]
            | ["members", ..]
            | ["leader"]
            | ["metrics"]
            | ["health"],
        ) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::NotFound),
    }
}

/// Sends a request to the application and waits for its answer, at most the request timeout.
async fn ask<V>(
    context: &ApiContext,
    request: impl FnOnce(Reply<V>) -> AppRequest,
) -> Result<V, ApiError> {
    let (reply, answer) = oneshot::channel();
    if context.app.try_send(request(reply)).is_err() {
        return Err(ApiError::Unavailable("node overloaded or stopping".into()));
    }
    match tokio::time::timeout(context.request_timeout, answer).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(ApiError::Unknown("the node stopped before answering".into())),
        Err(_) => Err(ApiError::Unknown("no answer within the request timeout".into())),
    }
}

async fn write(context: &ApiContext, op: KvOp) -> Result<Value, ApiError> {
    let written = ask(context, |reply| AppRequest::Write(op, reply)).await?;
    Ok(match written.outcome {
        KvOutcome::Done => json!({ "index": written.index.0 }),
        KvOutcome::Cas { swapped, previous } => {
            json!({ "index": written.index.0, "swapped": swapped, "previous": previous })
        }
    })
}

/// `200` with the role and leader while the driver runs and a leader is known (or this node
/// leads), `503` otherwise: for load balancers and orchestrators.
async fn health(context: &ApiContext) -> Response {
    match ask(context, AppRequest::Status).await {
        Ok(status) => {
            let led = status.leader.is_some() || status.role == Role::Leader;
            let body = json!({
                "status": if led { "ok" } else { "no leader" },
                "role": role_name(status.role),
                "leader": status.leader.map(|leader| leader.0),
            });
            Response::json(if led { 200 } else { 503 }, &body)
        }
        Err(error) => {
            Response::json(503, &json!({ "status": "unavailable", "error": error.to_string() }))
        }
    }
}

fn role_name(role: Role) -> String {
    format!("{role:?}").to_lowercase()
}

async fn status(context: &ApiContext) -> Result<Value, ApiError> {
    let status = ask(context, AppRequest::Status).await?;
    let ids =
        |set: &std::collections::BTreeSet<NodeId>| set.iter().map(|id| id.0).collect::<Vec<_>>();
    let peers: serde_json::Map<String, Value> = context
        .book
        .all()
        .into_iter()
        .map(|(id, address)| (id.0.to_string(), json!(address)))
        .collect();
    Ok(json!({
        "id": status.id.0,
        "role": role_name(status.role),
        "term": status.term.0,
        "leader": status.leader.map(|l| l.0),
        "leader_address": status.leader.and_then(|l| context.book.address(l)),
        "commit": status.commit.0,
        "applied": status.applied.0,
        "last_index": status.last_index.0,
        "first_index": status.first_index.0,
        "snapshot_index": status.snapshot_index.0,
        "members": {
            "voters": ids(&status.membership.voters),
            "outgoing": ids(&status.membership.outgoing),
            "learners": ids(&status.membership.learners),
        },
        "peers": peers,
        "snapshots": {
            "taken": status.stats.snapshots_taken,
            "sent": status.stats.snapshots_sent,
            "chunks_sent": status.stats.snapshot_chunks_sent,
            "bytes_sent": status.stats.snapshot_bytes_sent,
            "installed": status.stats.snapshots_installed,
        },
        "transport": context.stats.counts(),
    }))
}

async fn log_range(context: &ApiContext, query: &str) -> Result<Value, ApiError> {
    let index = |name: &str| -> Result<LogIndex, ApiError> {
        let value = query_value(query, name)
            .ok_or_else(|| ApiError::BadRequest(format!("missing query parameter {name}")))?;
        value.parse().map(LogIndex).map_err(|_| ApiError::BadRequest(format!("bad {name}")))
    };
    let (start, end) = (index("start")?, index("end")?);
    if end.0.saturating_sub(start.0) >= 10_000 {
        return Err(ApiError::BadRequest("at most 10000 entries per request".into()));
    }
    let entries = ask(context, |reply| AppRequest::Range(start, end, reply)).await?;
    let entries: Vec<Value> = entries
        .iter()
        .map(|entry| {
            let payload = match &entry.payload {
                Payload::Command(command) => json!({ "command": format!("{:?}", command.op) }),
                Payload::Internal(internal) => match internal.membership() {
                    Some(membership) => json!({ "membership": format!("{membership:?}") }),
                    None => json!("noop"),
                },
                _ => json!("unknown"),
            };
            json!({ "index": entry.index.0, "term": entry.term.0, "payload": payload })
        })
        .collect();
    Ok(json!({ "entries": entries }))
}

async fn add_member(context: &ApiContext, body: &[u8]) -> Result<Value, ApiError> {
    #[derive(Deserialize)]
    struct Add {
        id: u64,
        address: String,
        #[serde(default)]
        learner: bool,
    }
    let Add { id, address, learner } = parse_body(body)?;
    if address.parse::<std::net::SocketAddr>().is_err() {
        return Err(ApiError::BadRequest(format!("address {address:?} is not ip:port")));
    }
    // The address goes through the log first, so that every node (and any future leader)
    // can reach the new member.
    write(context, KvOp::SetPeerAddress { node: NodeId(id), address }).await?;
    let change = if learner {
        MembershipChange::AddLearner(NodeId(id))
    } else {
        MembershipChange::AddVoter(NodeId(id))
    };
    change_membership(context, change).await
}

async fn change_membership(
    context: &ApiContext,
    change: MembershipChange,
) -> Result<Value, ApiError> {
    let index = ask(context, |reply| AppRequest::Membership(change, reply)).await?;
    Ok(json!({ "index": index.0 }))
}

fn parse_body<V: serde::de::DeserializeOwned>(body: &[u8]) -> Result<V, ApiError> {
    serde_json::from_slice(body).map_err(|error| ApiError::BadRequest(format!("body: {error}")))
}

/// Keys are URL path segments of unreserved characters, so they need no decoding.
fn valid_key(key: &str) -> Result<String, ApiError> {
    let unreserved = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~');
    if key.is_empty() || key.len() > KEY_BYTES_MAX || !key.chars().all(unreserved) {
        return Err(ApiError::BadRequest(format!(
            "keys are 1..={KEY_BYTES_MAX} characters of [A-Za-z0-9._~-]"
        )));
    }
    Ok(key.to_owned())
}

fn node_id(text: &str) -> Result<NodeId, ApiError> {
    text.parse().map(NodeId).map_err(|_| ApiError::BadRequest(format!("bad node id {text:?}")))
}

fn query_value<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn context(app: mpsc::Sender<AppRequest>) -> ApiContext {
        ApiContext {
            me: NodeId(1),
            app,
            book: PeerBook::new([]),
            stats: Arc::new(TransportStats::default()),
            metrics: NodeMetrics::new(NodeId(1)),
            request_timeout: Duration::from_millis(50),
        }
    }

    fn put() -> Request {
        Request {
            method: "PUT".into(),
            path: "/kv/k".into(),
            query: String::new(),
            body: br#"{"value":"v"}"#.to_vec(),
            close: false,
        }
    }

    fn get(path: &str) -> Request {
        Request {
            method: "GET".into(),
            path: path.into(),
            query: String::new(),
            body: Vec::new(),
            close: false,
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn health_is_503_when_the_node_does_not_answer_and_metrics_are_text() {
        let (app, stopped) = mpsc::channel(1);
        drop(stopped);
        let context = context(app);
        let health = handle(&context, &get("/health")).await;
        assert_eq!(health.status, 503);
        let body: Value = serde_json::from_slice(&health.body).expect("json");
        assert_eq!(body["status"], "unavailable");
        let metrics = handle(&context, &get("/metrics")).await;
        assert_eq!((metrics.status, metrics.content_type), (200, CONTENT_TYPE));
        let text = String::from_utf8(metrics.body).expect("utf-8");
        assert!(text.contains("stepraft_term{node=\"1\"} 0\n"), "{text}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_write_the_application_never_took_is_no_effect() {
        let (app, stopped) = mpsc::channel(1);
        drop(stopped);
        assert_eq!(handle(&context(app), &put()).await.status, 503);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_write_the_node_took_but_never_answered_is_unknown() {
        // The application stops (drops the reply) with the write pending.
        let (app, mut requests) = mpsc::channel(1);
        let stops = tokio::spawn(async move { drop(requests.recv().await) });
        assert_eq!(handle(&context(app), &put()).await.status, 504);
        stops.await.expect("the application task ends");
        // The application keeps the write past the request timeout.
        let (app, mut requests) = mpsc::channel(1);
        let keeps = tokio::spawn(async move {
            let request = requests.recv().await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            drop(request);
        });
        assert_eq!(handle(&context(app), &put()).await.status, 504);
        keeps.await.expect("the application task ends");
    }
}
