//! What the driver tells operators: `tracing` events about what the node did (listed in the
//! module documentation of [`super`]), and (feature `metrics`) the node's metrics, updated
//! after every batch.

use std::time::Duration;

use stepraft::{
    Command, Entry, LogIndex, Node, NodeId, NodeStats, Payload, Persist, Role, Snapshot,
};

use super::SLOW_PERSIST;
#[cfg(feature = "metrics")]
use crate::metrics::{NodeMetrics, NodeSample};
use crate::storage::StorageError;

/// The driver's observer: remembers what it last reported, so that it reports changes.
#[derive(Debug)]
pub(super) struct Observer {
    me: NodeId,
    /// The counters as of the end of the previous batch.
    stats: NodeStats,
    #[cfg(feature = "metrics")]
    metrics: NodeMetrics,
}

/// What one persist writes, counted before storage gets it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Written {
    /// Persist instructions.
    pub changes: u64,
    /// Entries appended.
    pub entries: u64,
    /// The appended commands' [`Command::size_bytes`].
    pub bytes: u64,
}

impl Written {
    pub(super) fn of<T: Command>(persists: &[Persist<T>]) -> Written {
        let mut written = Written { changes: persists.len() as u64, ..Written::default() };
        for persist in persists {
            if let Persist::Append(entries) = persist {
                written.entries += entries.len() as u64;
                written.bytes += entries.iter().map(payload_bytes).sum::<u64>();
            }
        }
        written
    }
}

fn payload_bytes<T: Command>(entry: &Entry<T>) -> u64 {
    match &entry.payload {
        Payload::Command(command) => command.size_bytes() as u64,
        _ => 0,
    }
}

impl Observer {
    pub(super) fn new<T: Command>(node: &Node<T>) -> Observer {
        Observer {
            me: node.id(),
            stats: node.stats(),
            #[cfg(feature = "metrics")]
            metrics: {
                let metrics = NodeMetrics::new(node.id());
                metrics.publish(sample(node, LogIndex(0)));
                metrics
            },
        }
    }

    /// The metrics this observer updates.
    #[cfg(feature = "metrics")]
    pub(super) fn metrics(&self) -> &NodeMetrics {
        &self.metrics
    }

    /// After every batch: reports what the core's counters say happened, and publishes the
    /// node's state to the metrics.
    pub(super) fn after_batch<T: Command>(&mut self, node: &Node<T>, delivered: LogIndex) {
        let (before, now) = (self.stats, node.stats());
        if before == now {
            #[cfg(feature = "metrics")]
            self.metrics.publish(sample(node, delivered));
            return;
        }
        let node_id = self.me.0;
        if now.elections_started > before.elections_started {
            tracing::info!(node = node_id, term = node.term().0, "election started");
        }
        if now.snapshots_taken > before.snapshots_taken {
            let index = node.snapshot().map_or(0, |snapshot| snapshot.meta.index.0);
            let first = node.first_index().0;
            tracing::info!(
                node = node_id,
                index,
                first_index = first,
                "snapshot taken, log compacted"
            );
        }
        if now.snapshots_sent > before.snapshots_sent {
            let started = now.snapshots_sent - before.snapshots_sent;
            tracing::info!(
                node = node_id,
                term = node.term().0,
                started,
                "snapshot transfer started"
            );
        }
        for ((reason, count), (_, earlier)) in now.ignored.iter().zip(before.ignored.iter()) {
            if reaches_power_of_two(earlier, count) {
                let reason = reason.name();
                let new = count - earlier;
                tracing::debug!(node = node_id, reason, new, total = count, "ignored inputs");
            }
        }
        self.stats = now;
        #[cfg(feature = "metrics")]
        self.metrics.publish(sample(node, delivered));
        #[cfg(not(feature = "metrics"))]
        let _ = delivered;
    }

    pub(super) fn on_leader_changed(&self, term: stepraft::Term, leader: Option<NodeId>) {
        let leader = leader.map(|leader| leader.0);
        tracing::info!(node = self.me.0, term = term.0, leader, "leadership changed");
        #[cfg(feature = "metrics")]
        self.metrics.count_leader_change();
    }

    pub(super) fn on_role_changed(&self, term: stepraft::Term, role: Role) {
        tracing::debug!(node = self.me.0, term = term.0, role = ?role, "role changed");
    }

    /// Reports the configuration entries among entries delivered to the application.
    pub(super) fn on_applied<T>(&self, entries: &[Entry<T>]) {
        for entry in entries {
            let Payload::Internal(internal) = &entry.payload else { continue };
            let Some(membership) = internal.membership() else { continue };
            let ids = |set: &std::collections::BTreeSet<NodeId>| {
                set.iter().map(|id| id.0).collect::<Vec<_>>()
            };
            tracing::info!(
                node = self.me.0,
                index = entry.index.0,
                term = entry.term.0,
                voters = ?ids(&membership.voters),
                outgoing = ?ids(&membership.outgoing),
                learners = ?ids(&membership.learners),
                "membership change applied"
            );
        }
    }

    pub(super) fn on_restore(&self, snapshot: &Snapshot) {
        let (index, term) = (snapshot.meta.index.0, snapshot.meta.term.0);
        let bytes = snapshot.data.len();
        tracing::info!(
            node = self.me.0,
            index,
            term,
            bytes,
            "restoring the state machine from a snapshot"
        );
    }

    /// Reports one persist: its time to the metrics, a warning when it took longer than
    /// [`SLOW_PERSIST`], an error when it failed.
    pub(super) fn on_persist(
        &self,
        written: Written,
        elapsed: Duration,
        error: Option<&StorageError>,
    ) {
        let slow = elapsed > SLOW_PERSIST;
        #[cfg(feature = "metrics")]
        self.metrics.record_persist(written, elapsed, slow, error.is_none());
        let elapsed_ms = elapsed.as_millis() as u64;
        if let Some(error) = error {
            tracing::error!(node = self.me.0, %error, elapsed_ms, "storage failed; the node stops");
        } else if slow {
            tracing::warn!(
                node = self.me.0,
                elapsed_ms,
                changes = written.changes,
                entries = written.entries,
                threshold_ms = SLOW_PERSIST.as_millis() as u64,
                "slow persist: the write and fsync took longer than the threshold"
            );
        }
    }
}

/// Whether a count that went from `earlier` to `now` reached a power of two on the way: a
/// peer that sends a stale message every tick makes a handful of lines, not one per tick,
/// and each line still gives the total (the exact counts are in the metrics).
fn reaches_power_of_two(earlier: u64, now: u64) -> bool {
    now > earlier && (earlier == 0 || now.ilog2() > earlier.ilog2())
}

#[cfg(feature = "metrics")]
fn sample<T: Command>(node: &Node<T>, delivered: LogIndex) -> NodeSample {
    NodeSample {
        term: node.term(),
        role: node.role(),
        leader: node.leader(),
        commit: node.commit_index(),
        delivered,
        last_index: node.last_index(),
        snapshot_index: node.snapshot().map_or(LogIndex(0), |snapshot| snapshot.meta.index),
        stats: node.stats(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignored_inputs_are_logged_when_their_count_reaches_a_power_of_two() {
        let logged: Vec<u64> = (0..100).filter(|&n| reaches_power_of_two(n, n + 1)).collect();
        assert_eq!(logged, [0, 1, 3, 7, 15, 31, 63], "at counts 1, 2, 4, ..., 64");
        assert!(reaches_power_of_two(5, 9), "8 on the way");
        assert!(!reaches_power_of_two(9, 15));
        assert!(!reaches_power_of_two(4, 4));
    }
}

#[cfg(all(test, feature = "metrics"))]
mod metrics_tests {
    use super::*;
    use stepraft::{Config, HardState, Term};

    fn observer() -> Observer {
        let node = Node::<String>::new(Config::new(NodeId(1), [NodeId(1)])).expect("valid");
        Observer::new(&node)
    }

    fn count(text: &str, series: &str) -> u64 {
        let line = text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' '));
        line.and_then(|value| value.parse().ok()).unwrap_or_else(|| panic!("{series}: {text}"))
    }

    #[test]
    fn a_persist_over_the_threshold_counts_as_slow_and_a_failed_one_as_an_error() {
        let observer = observer();
        let written = Written::of::<String>(&[Persist::HardState(HardState {
            term: Term(1),
            voted_for: None,
            commit: LogIndex(0),
        })]);
        observer.on_persist(written, Duration::from_millis(3), None);
        observer.on_persist(written, SLOW_PERSIST + Duration::from_millis(1), None);
        let failed = StorageError::Corrupt("test".into());
        observer.on_persist(written, Duration::from_millis(3), Some(&failed));
        let text = observer.metrics().encode();
        assert_eq!(count(&text, "stepraft_storage_persists_total{node=\"1\"}"), 3);
        assert_eq!(count(&text, "stepraft_storage_slow_persists_total{node=\"1\"}"), 1);
        assert_eq!(count(&text, "stepraft_storage_errors_total{node=\"1\"}"), 1);
        assert_eq!(count(&text, "stepraft_storage_persisted_changes_total{node=\"1\"}"), 3);
    }

    #[test]
    fn appended_entries_and_command_bytes_are_counted() {
        let entry = |index, command: &str| Entry {
            term: Term(1),
            index: LogIndex(index),
            payload: Payload::Command(command.to_owned()),
        };
        let noop = Entry { term: Term(1), index: LogIndex(3), payload: Payload::noop() };
        let appended = Persist::Append(vec![entry(1, "abc"), entry(2, "de"), noop]);
        let written = Written::of(&[appended, Persist::Truncate { from: LogIndex(4) }]);
        assert_eq!(written, Written { changes: 2, entries: 3, bytes: 5 });
    }
}
