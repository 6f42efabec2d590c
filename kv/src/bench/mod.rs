//! The benchmark: closed-loop clients against a real cluster, measuring fsync'd writes and
//! linearizable reads — of stepraft-kv, or of etcd through its JSON gateway, driven by the
//! same client code (one thread and one keep-alive HTTP connection per client).
//!
//! Leader changes during a level are counted as the rise of the highest Raft term any node
//! reports, read before and after the level (stepraft-kv's `GET /status`, etcd's
//! `POST /v3/maintenance/status`). Every new leader needs a new term, both systems expose it
//! the same way, and it cannot be missed between two samples, so the figure means the same
//! for both: elections, successful or not (a term can also rise in an election nobody wins).
//! stepraft's `stepraft_leader_changes_total` is not used: it counts every change of the
//! (term, leader) pair a node believes in, including to "no leader", so one election counts
//! once or twice per node. For etcd, its own `etcd_server_leader_changes_seen_total` (the
//! leaders a member has learned of) is reported beside it, as the largest rise on any member.
//!
//! Every level also reports its longest gap: the longest time in which no request succeeded
//! (from the start to the first success, between two successes, from the last one to the
//! end). With a node killed during the level, that is how long the cluster could not serve
//! the clients: for a killed leader, the failover time as a client sees it.

mod summary;
mod target;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub use summary::{percentile, LatencySummary};
pub use target::{base64, counter, NodeView, Request, Target};

use crate::http::client::HttpClient;

/// How long one request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client waits after an error before its next request, so that a node that
/// refuses connections does not turn the client into a busy loop stealing the servers' CPU.
const ERROR_BACKOFF: Duration = Duration::from_millis(10);

/// What the clients of a level do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Put `value_bytes`-byte values under keys of their own.
    Write,
    /// Read a key of their own, written before the level, linearizably.
    LinearizableRead,
}

impl Operation {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Write => "write",
            Operation::LinearizableRead => "linearizable-read",
        }
    }
}

/// Which node each client starts with (after an error it moves to the next one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connect {
    /// Every client starts with the first address.
    First,
    /// Client `i` starts with address `i mod n`.
    Spread,
    /// Every client starts with the node that leads when the level starts (the first
    /// address if none does).
    Leader,
}

/// One level of the benchmark.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Level {
    /// The system.
    pub target: Target,
    /// What the clients do.
    pub operation: Operation,
    /// Concurrent clients.
    pub clients: usize,
    /// How long the clients run at most.
    pub duration: Duration,
    /// Successful requests after which the clients stop, if they reach it within `duration`
    /// (requests under way then still finish, so a few more may succeed).
    pub max_operations: Option<u64>,
    /// Bytes per value.
    pub value_bytes: usize,
    /// Which node each client starts with.
    pub connect: Connect,
}

/// What the nodes said of the cluster at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterView {
    /// Each node's view, by address; `None` for a node that did not answer.
    pub nodes: Vec<Option<NodeView>>,
}

impl ClusterView {
    /// Asks every node.
    pub fn observe(target: Target, addresses: &[String]) -> ClusterView {
        let timeout = Duration::from_secs(2);
        ClusterView { nodes: addresses.iter().map(|a| target.observe_node(a, timeout)).collect() }
    }

    /// The highest term any node reported.
    pub fn term(&self) -> Option<u64> {
        self.nodes.iter().flatten().map(|node| node.term).max()
    }

    /// The position of the node that leads in the highest term, if one says it does.
    pub fn leader(&self) -> Option<usize> {
        let term = self.term()?;
        self.nodes.iter().position(|node| node.is_some_and(|n| n.leads && n.term == term))
    }

    /// Elections between `self` and `later`: the rise of the highest term.
    pub fn elections_until(&self, later: &ClusterView) -> Option<u64> {
        later.term()?.checked_sub(self.term()?)
    }

    /// The largest rise of a node's own leader-change counter between `self` and `later`
    /// (etcd only).
    pub fn leader_changes_seen_until(&self, later: &ClusterView) -> Option<u64> {
        let seen = |view: &Option<NodeView>| view.and_then(|node| node.leader_changes_seen);
        let rises = self
            .nodes
            .iter()
            .zip(&later.nodes)
            .filter_map(|(before, after)| seen(after)?.checked_sub(seen(before)?));
        rises.max()
    }

    /// Polls every 100 ms until a node leads; returns the view, or `None` after `timeout`.
    pub fn wait_for_leader(
        target: Target,
        addresses: &[String],
        timeout: Duration,
    ) -> Option<ClusterView> {
        let deadline = Instant::now() + timeout;
        loop {
            let view = ClusterView::observe(target, addresses);
            if view.leader().is_some() {
                return Some(view);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The figures of one level.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchResult {
    /// What ran.
    pub level: Level,
    /// Successful requests.
    pub operations: u64,
    /// Failed requests (error status, timeout, connection lost).
    pub errors: u64,
    /// The first error, for the report.
    pub first_error: Option<String>,
    /// From the clients' start to the last one's end (each finishes the request it is in).
    pub seconds: f64,
    /// Latency of the successful requests.
    pub latency: LatencySummary,
    /// The longest time in which no request succeeded (see the module docs).
    pub longest_gap: Duration,
    /// The cluster before the level.
    pub before: ClusterView,
    /// The cluster after the level.
    pub after: ClusterView,
}

impl BenchResult {
    /// Successful requests per second.
    pub fn per_second(&self) -> f64 {
        self.operations as f64 / self.seconds.max(f64::MIN_POSITIVE)
    }

    /// Elections during the level (see the module docs); `None` if no node answered.
    pub fn leader_changes(&self) -> Option<u64> {
        self.before.elections_until(&self.after)
    }

    /// One flat JSON object (every field a number, a string or null).
    pub fn to_json(&self, addresses: &[String]) -> Value {
        let address = |view: &ClusterView| view.leader().map(|i| addresses[i].clone());
        json!({
            "target": self.level.target.name(),
            "operation": self.level.operation.name(),
            "clients": self.level.clients,
            "value_bytes": self.level.value_bytes,
            "seconds": self.seconds,
            "operations": self.operations,
            "per_second": self.per_second(),
            "p50_ms": self.latency.p50_ms,
            "p99_ms": self.latency.p99_ms,
            "p999_ms": self.latency.p999_ms,
            "max_ms": self.latency.max_ms,
            "longest_gap_ms": self.longest_gap.as_secs_f64() * 1000.0,
            "errors": self.errors,
            "leader_changes": self.leader_changes(),
            "term_before": self.before.term(),
            "term_after": self.after.term(),
            "leader_before": address(&self.before),
            "leader_after": address(&self.after),
            "leader_changes_seen": self.before.leader_changes_seen_until(&self.after),
            "first_error": self.first_error,
        })
    }
}

/// What one client did.
#[derive(Debug, Default)]
struct Tally {
    latencies: Vec<Duration>,
    /// When each successful request ended.
    ends: Vec<Instant>,
    errors: u64,
    first_error: Option<String>,
}

impl Tally {
    fn error(&mut self, text: String) {
        self.errors += 1;
        self.first_error.get_or_insert(text);
    }
}

/// Runs one level against the cluster whose nodes listen on `addresses`: `clients` threads,
/// each with its own keep-alive connection, send requests back to back for `duration` or
/// until `max_operations` succeeded.
///
/// # Panics
/// If `addresses` is empty.
pub fn run_level(addresses: &[String], level: Level) -> BenchResult {
    assert!(!addresses.is_empty(), "a benchmark needs at least one node address");
    let before = ClusterView::observe(level.target, addresses);
    let leader = before.leader().unwrap_or(0);
    let stop = Arc::new(AtomicBool::new(false));
    let succeeded = Arc::new(AtomicU64::new(0));
    // Every client is set up (and, for reads, has written its key) before the clock starts.
    let ready = Arc::new(Barrier::new(level.clients + 1));
    let value = "x".repeat(level.value_bytes);
    let workers: Vec<_> = (0..level.clients)
        .map(|client| {
            let first = match level.connect {
                Connect::First => 0,
                Connect::Spread => client % addresses.len(),
                Connect::Leader => leader,
            };
            let mut addresses = addresses.to_vec();
            addresses.rotate_left(first);
            let shared = Shared {
                ready: Arc::clone(&ready),
                stop: Arc::clone(&stop),
                succeeded: Arc::clone(&succeeded),
            };
            let value = value.clone();
            std::thread::spawn(move || run_client(level, client, &addresses, &value, &shared))
        })
        .collect();
    ready.wait();
    let started = Instant::now();
    let deadline = started + level.duration;
    let limit = level.max_operations.unwrap_or(u64::MAX);
    // Polled: the clients themselves stop at the count, and a 5 ms overshoot of the
    // duration does not matter.
    while Instant::now() < deadline && succeeded.load(Ordering::Relaxed) < limit {
        let left = deadline.saturating_duration_since(Instant::now());
        std::thread::sleep(left.min(Duration::from_millis(5)));
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = Tally::default();
    for worker in workers {
        let tally = worker.join().unwrap_or_else(|_| Tally {
            errors: 1,
            first_error: Some("a client thread panicked".into()),
            ..Tally::default()
        });
        total.latencies.extend(tally.latencies);
        total.ends.extend(tally.ends);
        total.errors += tally.errors;
        if total.first_error.is_none() {
            total.first_error = tally.first_error;
        }
    }
    let ended = Instant::now();
    let seconds = (ended - started).as_secs_f64();
    BenchResult {
        level,
        operations: total.latencies.len() as u64,
        errors: total.errors,
        first_error: total.first_error,
        seconds,
        latency: LatencySummary::of(&mut total.latencies),
        longest_gap: longest_gap(started, &mut total.ends, ended),
        before,
        after: ClusterView::observe(level.target, addresses),
    }
}

/// The longest time between `start`, the instants of `ends` (sorted in place) and `end`.
pub fn longest_gap(start: Instant, ends: &mut [Instant], end: Instant) -> Duration {
    ends.sort_unstable();
    let mut longest = Duration::ZERO;
    let mut previous = start;
    for &instant in ends.iter().chain([&end]) {
        longest = longest.max(instant.saturating_duration_since(previous));
        previous = previous.max(instant);
    }
    longest
}

/// What the clients of a level share with each other and with the level's thread.
struct Shared {
    /// Every client set up: the clock starts.
    ready: Arc<Barrier>,
    /// The level is over.
    stop: Arc<AtomicBool>,
    /// Successful requests so far, of all clients.
    succeeded: Arc<AtomicU64>,
}

/// One client: `addresses` starts with its first node.
fn run_client(
    level: Level,
    client: usize,
    addresses: &[String],
    value: &str,
    shared: &Shared,
) -> Tally {
    let mut connection = Connection::new(addresses);
    let mut tally = Tally::default();
    let read_key = format!("bench-read-{client}");
    if level.operation == Operation::LinearizableRead {
        if let Err(error) = prepare_read(level.target, &mut connection, &read_key, value) {
            tally.error(error);
        }
    }
    shared.ready.wait();
    let mut n = 0u64;
    let limit = level.max_operations.unwrap_or(u64::MAX);
    while !shared.stop.load(Ordering::Relaxed) && shared.succeeded.load(Ordering::Relaxed) < limit {
        let request = match level.operation {
            Operation::Write => level.target.put(&format!("bench-{client}-{n}"), value),
            Operation::LinearizableRead => level.target.linearizable_get(&read_key),
        };
        let started = Instant::now();
        match connection.send(&request) {
            Ok(_) => {
                let ended = Instant::now();
                tally.latencies.push(ended - started);
                tally.ends.push(ended);
                shared.succeeded.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                tally.error(error);
                connection.next_node();
                std::thread::sleep(ERROR_BACKOFF);
            }
        }
        n += 1;
    }
    tally
}

/// Writes the key a reader reads, then reads it back once to check the read path.
fn prepare_read(
    target: Target,
    connection: &mut Connection,
    key: &str,
    value: &str,
) -> Result<(), String> {
    connection.send(&target.put(key, value))?;
    let body = connection.send(&target.linearizable_get(key))?;
    if target.read_answer_holds(&body, value) {
        Ok(())
    } else {
        Err(format!("read of {key} did not return the value written: {}", excerpt(&body)))
    }
}

/// One keep-alive connection to one node at a time.
struct Connection<'a> {
    addresses: &'a [String],
    current: usize,
    http: HttpClient,
}

impl<'a> Connection<'a> {
    fn new(addresses: &'a [String]) -> Connection<'a> {
        Connection { addresses, current: 0, http: HttpClient::new(&addresses[0], REQUEST_TIMEOUT) }
    }

    fn next_node(&mut self) {
        self.current = (self.current + 1) % self.addresses.len();
        self.http.set_address(&self.addresses[self.current]);
    }

    /// The body of a `200`, or the error as text.
    fn send(&mut self, request: &Request) -> Result<Vec<u8>, String> {
        let response = self
            .http
            .request(request.method, &request.path, request.body.as_deref())
            .map_err(|error| error.to_string())?;
        if response.status == 200 {
            Ok(response.body)
        } else {
            Err(format!(
                "{} from {}: {}",
                response.status,
                self.http.address(),
                excerpt(&response.body)
            ))
        }
    }
}

/// The start of a response body, for error messages.
fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(term: u64, leads: bool, seen: Option<u64>) -> Option<NodeView> {
        Some(NodeView { term, leads, leader_changes_seen: seen })
    }

    #[test]
    fn elections_are_the_rise_of_the_highest_term() {
        let before = ClusterView { nodes: vec![node(3, false, None), node(4, true, None), None] };
        let after = ClusterView {
            nodes: vec![node(6, false, None), node(5, true, None), node(6, true, None)],
        };
        assert_eq!(before.term(), Some(4));
        assert_eq!(before.leader(), Some(1));
        // Node 2 still believes it leads in term 5, but node 3 leads in the highest term.
        assert_eq!(after.leader(), Some(2));
        assert_eq!(before.elections_until(&after), Some(2));
        let silent = ClusterView { nodes: vec![None, None, None] };
        assert_eq!(silent.term(), None);
        assert_eq!(silent.leader(), None);
        assert_eq!(before.elections_until(&silent), None);
    }

    #[test]
    fn leader_changes_seen_is_the_largest_rise_on_a_node_that_answered_both_times() {
        let before =
            ClusterView { nodes: vec![node(2, true, Some(1)), node(2, false, Some(1)), None] };
        let after = ClusterView {
            nodes: vec![node(3, false, Some(2)), node(3, true, Some(3)), node(3, false, Some(9))],
        };
        assert_eq!(before.leader_changes_seen_until(&after), Some(2));
        let stepraft = ClusterView { nodes: vec![node(2, true, None)] };
        assert_eq!(stepraft.leader_changes_seen_until(&stepraft), None);
    }

    #[test]
    fn the_longest_gap_counts_the_start_and_the_end() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        // Out of order, with a tie: the longest gap is between 40 and 300.
        let mut ends = [at(300), at(40), at(10), at(40)];
        assert_eq!(longest_gap(start, &mut ends, at(320)), Duration::from_millis(260));
        // Nothing succeeded: the whole level is one gap.
        assert_eq!(longest_gap(start, &mut [], at(500)), Duration::from_millis(500));
        // The last success long before the end.
        assert_eq!(longest_gap(start, &mut [at(5)], at(905)), Duration::from_millis(900));
    }

    #[test]
    fn a_result_reports_rates_and_a_flat_json_object() {
        let level = Level {
            target: Target::Etcd,
            operation: Operation::Write,
            clients: 4,
            duration: Duration::from_secs(2),
            max_operations: None,
            value_bytes: 100,
            connect: Connect::Leader,
        };
        let result = BenchResult {
            level,
            operations: 500,
            errors: 1,
            first_error: Some("503 from a: no leader".into()),
            seconds: 2.5,
            latency: LatencySummary::of(&mut [Duration::from_millis(2)]),
            longest_gap: Duration::from_millis(1500),
            before: ClusterView { nodes: vec![node(2, true, Some(1)), None] },
            after: ClusterView { nodes: vec![node(3, false, Some(2)), node(3, true, None)] },
        };
        assert_eq!(result.per_second(), 200.0);
        let addresses = ["a:1".to_owned(), "b:2".to_owned()];
        let object = result.to_json(&addresses);
        assert_eq!(object["target"], "etcd");
        assert_eq!(object["operation"], "write");
        assert_eq!(object["per_second"], 200.0);
        assert_eq!(object["p999_ms"], 2.0);
        assert_eq!(object["leader_changes"], 1);
        assert_eq!(object["leader_before"], "a:1");
        assert_eq!(object["leader_after"], "b:2");
        assert_eq!(object["leader_changes_seen"], 1);
        assert_eq!(object["longest_gap_ms"], 1500.0);
        let flat = object.as_object().expect("an object").values();
        assert!(flat.into_iter().all(|value| !value.is_object() && !value.is_array()));
    }
}
