//! A node's counters in the Prometheus text exposition format (version 0.0.4), feature
//! `metrics`.
//!
//! Every [`NodeHandle`](crate::driver::NodeHandle) carries a [`NodeMetrics`]. Its driver
//! updates it after every batch; [`NodeMetrics::encode`] (or [`encode`] for several nodes of
//! one process) renders it for a scrape, served with [`CONTENT_TYPE`]. Every series has a
//! `node` label. What is exported:
//!
//! * the node: `stepraft_term`, `stepraft_role{role}` (1 for the current role),
//!   `stepraft_leader_id` (only while a leader is known), `stepraft_commit_index`,
//!   `stepraft_delivered_index` (the last index delivered on the applied stream),
//!   `stepraft_last_log_index`, `stepraft_snapshot_index`, `stepraft_leader_changes_total`;
//! * the application, once it reports with [`NodeMetrics::set_application_applied`]:
//!   `stepraft_application_applied_index` and `stepraft_apply_lag_entries` (the commit index
//!   less the applied one);
//! * the core's [`NodeStats`]: `stepraft_ignored_messages_total{reason}` (by
//!   [`stepraft::IgnoredReason::name`]), `stepraft_elections_started_total`,
//!   `stepraft_lease_reads_total`, `stepraft_snapshots_taken_total`,
//!   `stepraft_snapshots_sent_total`, `stepraft_snapshot_chunks_sent_total`,
//!   `stepraft_snapshot_bytes_sent_total`, `stepraft_snapshot_restarts_total`,
//!   `stepraft_snapshots_installed_total`;
//! * storage: `stepraft_storage_persists_total` (batches, one fsync each),
//!   `stepraft_storage_persisted_changes_total`, `stepraft_storage_appended_entries_total`,
//!   `stepraft_storage_appended_bytes_total` (the commands' [`stepraft::Command::size_bytes`],
//!   not the encoded size), `stepraft_storage_errors_total`,
//!   `stepraft_storage_slow_persists_total` (over
//!   [`SLOW_PERSIST`](crate::driver::SLOW_PERSIST)), and the histogram
//!   `stepraft_storage_persist_seconds` over [`PERSIST_SECONDS_BUCKETS`];
//! * the transport, once attached with [`NodeMetrics::attach_transport`]: every
//!   [`TransportCounts`] field as
//!   `stepraft_transport_<field>_total`.
//!
//! The format is written here rather than with a metrics crate: the set of series is fixed,
//! every value is read from counters the driver keeps anyway, and the text format for
//! counters, gauges and one histogram is a page of code without a dependency.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use stepraft::{LogIndex, NodeId, NodeStats, Role, Term};

use crate::driver::Written;
use crate::network::peers::{TransportCounts, TransportStats};

/// The content type of [`encode`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds, in seconds, of the buckets of `stepraft_storage_persist_seconds` (an
/// implicit `+Inf` bucket follows): from a fast SSD's fsync to a disk that has stalled.
pub const PERSIST_SECONDS_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A node's metrics: cheap to clone, every clone sees the same values.
#[derive(Clone, Debug)]
pub struct NodeMetrics {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    id: NodeId,
    /// The node's state as of the end of the driver's last batch.
    node: Mutex<NodeSample>,
    /// What the application reported applying.
    application_applied: Mutex<Option<LogIndex>>,
    transport: Mutex<Option<Arc<TransportStats>>>,
    leader_changes: AtomicU64,
    storage: StorageCounters,
}

/// The node's state that the driver publishes after every batch.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NodeSample {
    pub term: Term,
    pub role: Role,
    pub leader: Option<NodeId>,
    pub commit: LogIndex,
    pub delivered: LogIndex,
    pub last_index: LogIndex,
    pub snapshot_index: LogIndex,
    pub stats: NodeStats,
}

#[derive(Debug, Default)]
struct StorageCounters {
    persists: AtomicU64,
    changes: AtomicU64,
    entries: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    slow: AtomicU64,
    /// Observations per bucket of [`PERSIST_SECONDS_BUCKETS`], not cumulative; the last one
    /// is `+Inf`.
    buckets: [AtomicU64; PERSIST_SECONDS_BUCKETS.len() + 1],
    /// The sum of the observations, in nanoseconds.
    nanos: AtomicU64,
}

fn lock<V>(mutex: &Mutex<V>) -> MutexGuard<'_, V> {
    // Every value behind these locks is a plain copy, consistent at any panic point.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl NodeMetrics {
    /// Metrics of node `id` with every value zero, a follower of term 0 that knows no leader,
    /// until a driver updates them: [`spawn_node`](crate::driver::spawn_node) makes the ones
    /// its driver updates; this is for testing code that serves them.
    pub fn new(id: NodeId) -> NodeMetrics {
        let sample = NodeSample {
            term: Term(0),
            role: Role::Follower,
            leader: None,
            commit: LogIndex(0),
            delivered: LogIndex(0),
            last_index: LogIndex(0),
            snapshot_index: LogIndex(0),
            stats: NodeStats::default(),
        };
        NodeMetrics {
            shared: Arc::new(Shared {
                id,
                node: Mutex::new(sample),
                application_applied: Mutex::new(None),
                transport: Mutex::new(None),
                leader_changes: AtomicU64::new(0),
                storage: StorageCounters::default(),
            }),
        }
    }

    /// The application has applied every entry up to `index`: exported with the apply lag.
    pub fn set_application_applied(&self, index: LogIndex) {
        *lock(&self.shared.application_applied) = Some(index);
    }

    /// Exports the counters of the transport this node sends and receives with.
    pub fn attach_transport(&self, stats: Arc<TransportStats>) {
        *lock(&self.shared.transport) = Some(stats);
    }

    /// This node's metrics in the Prometheus text format ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        encode(std::slice::from_ref(self))
    }

    pub(crate) fn publish(&self, sample: NodeSample) {
        *lock(&self.shared.node) = sample;
    }

    pub(crate) fn count_leader_change(&self) {
        self.shared.leader_changes.fetch_add(1, Ordering::Relaxed);
    }

    /// Records one persist that took `elapsed`, slow or not, failed or not.
    pub(crate) fn record_persist(&self, size: Written, elapsed: Duration, slow: bool, ok: bool) {
        let storage = &self.shared.storage;
        let add = |counter: &AtomicU64, value: u64| counter.fetch_add(value, Ordering::Relaxed);
        add(&storage.persists, 1);
        add(&storage.changes, size.changes);
        add(&storage.entries, size.entries);
        add(&storage.bytes, size.bytes);
        add(&storage.errors, u64::from(!ok));
        add(&storage.slow, u64::from(slow));
        let seconds = elapsed.as_secs_f64();
        let bucket = PERSIST_SECONDS_BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(PERSIST_SECONDS_BUCKETS.len());
        add(&storage.buckets[bucket], 1);
        add(&storage.nanos, u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
    }
}

/// The metrics of every node in `nodes`, in the Prometheus text format ([`CONTENT_TYPE`]):
/// each metric's help and type once, then one sample per node.
pub fn encode(nodes: &[NodeMetrics]) -> String {
    let views: Vec<View> = nodes.iter().map(View::of).collect();
    let mut text = Text { out: String::new() };
    text.node_series(&views);
    text.stats_series(&views);
    text.storage_series(&views);
    text.transport_series(&views);
    text.out
}

/// One node's values, read once per scrape.
struct View {
    node: String,
    sample: NodeSample,
    application_applied: Option<LogIndex>,
    transport: Option<TransportCounts>,
    leader_changes: u64,
    storage: [u64; 6],
    buckets: [u64; PERSIST_SECONDS_BUCKETS.len() + 1],
    nanos: u64,
}

impl View {
    fn of(metrics: &NodeMetrics) -> View {
        let shared = &metrics.shared;
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let storage = &shared.storage;
        View {
            node: shared.id.0.to_string(),
            sample: *lock(&shared.node),
            application_applied: *lock(&shared.application_applied),
            transport: lock(&shared.transport).as_ref().map(|stats| stats.counts()),
            leader_changes: get(&shared.leader_changes),
            storage: [
                get(&storage.persists),
                get(&storage.changes),
                get(&storage.entries),
                get(&storage.bytes),
                get(&storage.errors),
                get(&storage.slow),
            ],
            buckets: std::array::from_fn(|bucket| get(&storage.buckets[bucket])),
            nanos: get(&storage.nanos),
        }
    }
}

const ROLES: [(Role, &str); 4] = [
    (Role::Follower, "follower"),
    (Role::PreCandidate, "pre_candidate"),
    (Role::Candidate, "candidate"),
    (Role::Leader, "leader"),
];

/// A metric's name, its help, and where its value comes from.
type Described<F> = (&'static str, &'static str, F);
type ViewValue = fn(&View) -> Option<u64>;
type StatsValue = fn(&NodeStats) -> u64;
type TransportValue = fn(&TransportCounts) -> u64;

/// The text being written. Writing to a `String` cannot fail, so `write!` results are
/// dropped.
struct Text {
    out: String,
}

impl Text {
    fn header(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// `name{node="…"[,label="…"]} value`.
    fn sample(&mut self, name: &str, node: &str, label: Option<(&str, &str)>, value: u64) {
        let _ = write!(self.out, "{name}{{node=\"{}\"", escape_label(node));
        if let Some((key, label_value)) = label {
            let _ = write!(self.out, ",{key}=\"{}\"", escape_label(label_value));
        }
        let _ = writeln!(self.out, "}} {value}");
    }

    /// One series per node, skipping the nodes for which `value` is `None`; nothing at all
    /// when no node has a value.
    fn series(
        &mut self,
        views: &[View],
        (name, kind, help): (&str, &str, &str),
        value: impl Fn(&View) -> Option<u64>,
    ) {
        let values: Vec<(&str, u64)> =
            views.iter().filter_map(|view| Some((view.node.as_str(), value(view)?))).collect();
        if values.is_empty() {
            return;
        }
        self.header(name, kind, help);
        for (node, value) in values {
            self.sample(name, node, None, value);
        }
    }

    fn node_series(&mut self, views: &[View]) {
        self.series(views, ("stepraft_term", "gauge", "The node's current term."), |v| {
            Some(v.sample.term.0)
        });
        self.header("stepraft_role", "gauge", "The node's role: 1 for the current one.");
        for view in views {
            for (role, name) in ROLES {
                let value = u64::from(view.sample.role == role);
                self.sample("stepraft_role", &view.node, Some(("role", name)), value);
            }
        }
        let gauges: [Described<ViewValue>; 5] = [
            (
                "stepraft_leader_id",
                "The leader this node knows; absent while none is known.",
                |v| v.sample.leader.map(|leader| leader.0),
            ),
            ("stepraft_commit_index", "The highest log index known committed.", |v| {
                Some(v.sample.commit.0)
            }),
            ("stepraft_delivered_index", "The last index delivered on the applied stream.", |v| {
                Some(v.sample.delivered.0)
            }),
            ("stepraft_last_log_index", "The index of the last log entry.", |v| {
                Some(v.sample.last_index.0)
            }),
            ("stepraft_snapshot_index", "The index of the latest snapshot (0: none).", |v| {
                Some(v.sample.snapshot_index.0)
            }),
        ];
        for (name, help, value) in gauges {
            self.series(views, (name, "gauge", help), value);
        }
        let help = "The last index the application reported applied.";
        self.series(views, ("stepraft_application_applied_index", "gauge", help), |v| {
            Some(v.application_applied?.0)
        });
        let help = "Committed entries the application has not applied yet.";
        self.series(views, ("stepraft_apply_lag_entries", "gauge", help), |v| {
            Some(v.sample.commit.0.saturating_sub(v.application_applied?.0))
        });
        let help = "Changes of role or known leader.";
        self.series(views, ("stepraft_leader_changes_total", "counter", help), |v| {
            Some(v.leader_changes)
        });
    }

    fn stats_series(&mut self, views: &[View]) {
        let name = "stepraft_ignored_messages_total";
        self.header(name, "counter", "Inputs the core ignored, by reason.");
        for view in views {
            for (reason, count) in view.sample.stats.ignored.iter() {
                self.sample(name, &view.node, Some(("reason", reason.name())), count);
            }
        }
        let counters: [Described<StatsValue>; 8] = [
            ("stepraft_elections_started_total", "Elections this node started.", |s| {
                s.elections_started
            }),
            ("stepraft_lease_reads_total", "Reads served under the leader lease.", |s| {
                s.lease_reads
            }),
            ("stepraft_snapshots_taken_total", "Snapshots recorded from the application.", |s| {
                s.snapshots_taken
            }),
            ("stepraft_snapshots_sent_total", "Snapshot transfers started as a leader.", |s| {
                s.snapshots_sent
            }),
            ("stepraft_snapshot_chunks_sent_total", "InstallSnapshot chunks sent.", |s| {
                s.snapshot_chunks_sent
            }),
            ("stepraft_snapshot_bytes_sent_total", "Snapshot data bytes sent in chunks.", |s| {
                s.snapshot_bytes_sent
            }),
            (
                "stepraft_snapshot_restarts_total",
                "Snapshot transfers restarted after a gap.",
                |s| s.snapshot_restarts,
            ),
            ("stepraft_snapshots_installed_total", "Snapshots installed from a leader.", |s| {
                s.snapshots_installed
            }),
        ];
        for (name, help, value) in counters {
            self.series(views, (name, "counter", help), |v| Some(value(&v.sample.stats)));
        }
    }

    fn storage_series(&mut self, views: &[View]) {
        let counters: [(&str, &str); 6] = [
            ("stepraft_storage_persists_total", "Batches made durable, one fsync each."),
            ("stepraft_storage_persisted_changes_total", "Persist instructions written."),
            ("stepraft_storage_appended_entries_total", "Log entries appended."),
            ("stepraft_storage_appended_bytes_total", "Command bytes of the appended entries."),
            ("stepraft_storage_errors_total", "Failed persists (the node stops at the first)."),
            ("stepraft_storage_slow_persists_total", "Persists slower than the warning threshold."),
        ];
        for (position, (name, help)) in counters.into_iter().enumerate() {
            self.series(views, (name, "counter", help), |v| Some(v.storage[position]));
        }
        let name = "stepraft_storage_persist_seconds";
        self.header(name, "histogram", "Time of each persist (write and fsync), in seconds.");
        for view in views {
            let mut cumulative = 0;
            for (position, count) in view.buckets.iter().enumerate() {
                cumulative += count;
                let bound = PERSIST_SECONDS_BUCKETS
                    .get(position)
                    .map_or_else(|| "+Inf".to_owned(), |bound| bound.to_string());
                let bucket = format!("{name}_bucket");
                self.sample(&bucket, &view.node, Some(("le", &bound)), cumulative);
            }
            let seconds = Duration::from_nanos(view.nanos).as_secs_f64();
            let node = escape_label(&view.node);
            let _ = writeln!(self.out, "{name}_sum{{node=\"{node}\"}} {seconds}");
            self.sample(&format!("{name}_count"), &view.node, None, cumulative);
        }
    }

    fn transport_series(&mut self, views: &[View]) {
        let counters: [Described<TransportValue>; 6] = [
            (
                "stepraft_transport_dropped_outgoing_total",
                "Outgoing messages dropped: a full peer queue, or no address.",
                |c| c.dropped_outgoing,
            ),
            (
                "stepraft_transport_oversized_outgoing_total",
                "Outgoing messages larger than the transport carries: never sent.",
                |c| c.oversized_outgoing,
            ),
            (
                "stepraft_transport_wrong_version_total",
                "Frames or datagrams of another wire version.",
                |c| c.wrong_version,
            ),
            ("stepraft_transport_wrong_cluster_total", "Messages from another cluster.", |c| {
                c.wrong_cluster
            }),
            (
                "stepraft_transport_unknown_peer_total",
                "Messages from a node not in the address book, or for another node.",
                |c| c.unknown_peer,
            ),
            (
                "stepraft_transport_malformed_total",
                "Frames that did not decode or exceeded the size limit.",
                |c| c.malformed,
            ),
        ];
        for (name, help, value) in counters {
            self.series(views, (name, "counter", help), |v| v.transport.as_ref().map(value));
        }
    }
}

/// Help text escapes backslashes and newlines.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Label values escape backslashes, double quotes and newlines.
fn escape_label(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> NodeSample {
        NodeSample {
            term: Term(3),
            role: Role::Leader,
            leader: Some(NodeId(2)),
            commit: LogIndex(10),
            delivered: LogIndex(10),
            last_index: LogIndex(11),
            snapshot_index: LogIndex(0),
            stats: NodeStats::default(),
        }
    }

    fn with_sample(id: NodeId, sample: NodeSample) -> NodeMetrics {
        let metrics = NodeMetrics::new(id);
        metrics.publish(sample);
        metrics
    }

    /// The value of the one line that starts with `series ` (name and labels).
    fn value(text: &str, series: &str) -> Option<String> {
        let mut found =
            text.lines().filter_map(|line| line.strip_prefix(series)?.strip_prefix(' '));
        let value = found.next()?.to_owned();
        assert!(found.next().is_none(), "{series} appears once");
        Some(value)
    }

    #[test]
    fn the_histogram_is_cumulative_and_counts_every_persist() {
        let metrics = with_sample(NodeId(2), sample());
        let size = Written { changes: 2, entries: 3, bytes: 40 };
        for millis in [0, 3, 3, 700, 20_000] {
            let elapsed = Duration::from_millis(millis);
            metrics.record_persist(size, elapsed, millis >= 1000, true);
        }
        let text = metrics.encode();
        let bucket = |le: &str| {
            let series =
                format!("stepraft_storage_persist_seconds_bucket{{node=\"2\",le=\"{le}\"}}");
            value(&text, &series).unwrap_or_else(|| panic!("no {series} in {text}"))
        };
        assert_eq!(bucket("0.0005"), "1");
        assert_eq!(bucket("0.0025"), "1");
        assert_eq!(bucket("0.005"), "3");
        assert_eq!(bucket("1"), "4");
        assert_eq!(bucket("10"), "4");
        assert_eq!(bucket("+Inf"), "5");
        let node = "{node=\"2\"}";
        assert_eq!(
            value(&text, &format!("stepraft_storage_persist_seconds_count{node}")),
            Some("5".into())
        );
        assert_eq!(
            value(&text, &format!("stepraft_storage_persist_seconds_sum{node}")),
            Some("20.706".into())
        );
        assert_eq!(
            value(&text, &format!("stepraft_storage_persists_total{node}")),
            Some("5".into())
        );
        assert_eq!(
            value(&text, &format!("stepraft_storage_appended_entries_total{node}")),
            Some("15".into())
        );
        assert_eq!(
            value(&text, &format!("stepraft_storage_slow_persists_total{node}")),
            Some("1".into())
        );
        assert!(text.contains("# TYPE stepraft_storage_persist_seconds histogram\n"), "{text}");
    }

    #[test]
    fn optional_series_appear_once_their_source_does() {
        let metrics = with_sample(NodeId(1), NodeSample { leader: None, ..sample() });
        let text = metrics.encode();
        for absent in ["stepraft_leader_id", "stepraft_apply_lag_entries", "stepraft_transport_"] {
            assert!(!text.contains(absent), "{absent} in {text}");
        }
        assert_eq!(value(&text, "stepraft_role{node=\"1\",role=\"leader\"}"), Some("1".into()));
        assert_eq!(value(&text, "stepraft_role{node=\"1\",role=\"follower\"}"), Some("0".into()));
        metrics.set_application_applied(LogIndex(7));
        let stats = Arc::new(TransportStats::default());
        TransportStats::bump(&stats.wrong_cluster);
        metrics.attach_transport(stats);
        let text = metrics.encode();
        assert_eq!(value(&text, "stepraft_apply_lag_entries{node=\"1\"}"), Some("3".into()));
        let wrong_cluster = "stepraft_transport_wrong_cluster_total{node=\"1\"}";
        assert_eq!(value(&text, wrong_cluster), Some("1".into()));
        let stale = "stepraft_ignored_messages_total{node=\"1\",reason=\"stale_term\"}";
        assert_eq!(value(&text, stale), Some("0".into()));
    }

    #[test]
    fn several_nodes_share_each_header() {
        let nodes = [with_sample(NodeId(1), sample()), with_sample(NodeId(2), sample())];
        let text = encode(&nodes);
        assert_eq!(text.matches("# TYPE stepraft_term gauge").count(), 1);
        assert_eq!(value(&text, "stepraft_term{node=\"1\"}"), Some("3".into()));
        assert_eq!(value(&text, "stepraft_term{node=\"2\"}"), Some("3".into()));
    }

    #[test]
    fn every_line_is_a_comment_or_a_sample_of_a_declared_metric() {
        let metrics = with_sample(NodeId(1), sample());
        metrics.set_application_applied(LogIndex(1));
        metrics.attach_transport(Arc::new(TransportStats::default()));
        let text = metrics.encode();
        let mut declared = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("name and type");
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
                declared.push(name.to_owned());
            } else if !line.starts_with("# HELP ") {
                let (series, number) = line.rsplit_once(' ').expect("series and value");
                assert!(number.parse::<f64>().is_ok(), "{line}");
                let name = series.split('{').next().expect("a name");
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix))
                    .filter(|base| declared.last().is_some_and(|last| last == base))
                    .unwrap_or(name);
                assert_eq!(declared.last().map(String::as_str), Some(family), "{line}");
            }
        }
        assert!(declared.len() > 30, "{declared:?}");
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(escape_help("a\\b\nc \"d\""), "a\\\\b\\nc \"d\"");
    }
}
