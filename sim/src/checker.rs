//! Raft's safety properties, checked continuously as the simulation runs.
//!
//! The checker sees what an omniscient observer would: every leader elected, every entry
//! persisted, every commit and every apply, on every node, across crashes. Each `on_*` method
//! returns the first violation it finds.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use stepraft::{
    DurableState, Entry, HardState, LogIndex, NodeId, Payload, Persist, SnapshotMeta, Term,
};

use crate::fast_hash::FastHashMap;
use crate::kv::KvCommand;

/// A property the simulator checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Property {
    /// At most one leader per term, ever.
    ElectionSafety,
    /// Two logs holding an entry with the same index and term are identical up to it.
    LogMatching,
    /// An entry committed in term t is in the log of every leader of a later term.
    LeaderCompleteness,
    /// No two nodes apply different entries at one index; a committed entry never changes.
    StateMachineSafety,
    /// A leader never truncates its own log.
    LeaderAppendOnly,
    /// A node's commit index never decreases within its lifetime, nor its durable one ever.
    MonotonicCommit,
    /// A node applies each index once, in order.
    MonotonicApplied,
    /// A node's durable term never decreases.
    MonotonicDurableTerm,
    /// A crashed node restarts from exactly what it persisted.
    RestartFromDisk,
    /// After faults stop, a leader is elected and acknowledged writes reach every node.
    Liveness,
    /// After faults stop, every member's log reaches the leader's commit.
    CatchUp,
    /// The client history is linearizable.
    Linearizability,
    /// The two linearizability oracles agree (a disagreement is a checker bug).
    OracleAgreement,
    /// A snapshot covers committed entries only, names the committed entry at its index, and
    /// restores the state that replaying the committed log up to its index gives.
    SnapshotSafety,
}

impl Property {
    /// Whether this is a safety (not a liveness) property.
    pub fn is_safety(self) -> bool {
        !matches!(self, Property::Liveness | Property::CatchUp)
    }
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Property::ElectionSafety => "election safety",
            Property::LogMatching => "log matching",
            Property::LeaderCompleteness => "leader completeness",
            Property::StateMachineSafety => "state machine safety",
            Property::LeaderAppendOnly => "leader append-only",
            Property::MonotonicCommit => "monotonic commit",
            Property::MonotonicApplied => "monotonic applied",
            Property::MonotonicDurableTerm => "monotonic durable term",
            Property::RestartFromDisk => "restart from disk",
            Property::Liveness => "liveness",
            Property::CatchUp => "catch-up",
            Property::Linearizability => "linearizability",
            Property::OracleAgreement => "oracle agreement",
            Property::SnapshotSafety => "snapshot safety",
        };
        f.write_str(name)
    }
}

/// A property that failed, with what was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The property.
    pub property: Property,
    /// A human-readable account.
    pub detail: String,
}

impl Violation {
    fn new(property: Property, detail: String) -> Violation {
        Violation { property, detail }
    }
}

/// An entry reduced to what identity means for the checks: its term and a fingerprint of its
/// payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct EntryId {
    term: Term,
    payload: u64,
}

impl EntryId {
    fn of(entry: &Entry<KvCommand>) -> EntryId {
        let payload = match &entry.payload {
            Payload::Command(command) => command.fingerprint(),
            _ => 0,
        };
        EntryId { term: entry.term, payload }
    }
}

/// Per-node facts the monotonicity checks compare against.
#[derive(Clone, Copy, Debug, Default)]
struct NodeFacts {
    /// Commit index in the current lifetime.
    commit: LogIndex,
    /// Last applied index in the current lifetime.
    applied: LogIndex,
    /// The last hard state written to disk (survives crashes).
    durable: HardState,
}

/// The continuous safety checker.
#[derive(Debug, Default)]
pub struct SafetyChecker {
    /// Election Safety: the leader of each term.
    leaders: BTreeMap<Term, NodeId>,
    /// Log Matching, checked by induction: each `(index, term)` ever persisted anywhere always
    /// has the same payload and the same predecessor term. Lookups only, never iterated.
    persisted: FastHashMap<(LogIndex, Term), (Term, u64)>,
    /// Every committed entry, by index (position = index - 1), with the term in which its
    /// commitment was first observed. That term is never earlier than the term it was really
    /// committed in (a node learns of a commit at the committing leader's term or later), so
    /// checking leaders of later terms against it never reports a false violation.
    committed: Vec<(EntryId, Term)>,
    /// Every applied entry, by index (position = index - 1).
    applied: Vec<EntryId>,
    nodes: BTreeMap<NodeId, NodeFacts>,
}

impl SafetyChecker {
    /// A checker that has seen nothing.
    pub fn new() -> SafetyChecker {
        SafetyChecker::default()
    }

    /// How many entries are known to be committed cluster-wide.
    pub fn committed_len(&self) -> u64 {
        self.committed.len() as u64
    }

    /// `node` became leader of `term` holding `log` (Election Safety, Leader Completeness).
    pub fn on_leader(
        &mut self,
        node: NodeId,
        term: Term,
        log: &[Entry<KvCommand>],
    ) -> Result<(), Violation> {
        if let Some(&other) = self.leaders.get(&term) {
            if other != node {
                return Err(Violation::new(
                    Property::ElectionSafety,
                    format!("{node} and {other} both lead {term}"),
                ));
            }
        }
        self.leaders.insert(term, node);
        // Entries before the first one the leader holds are in its snapshot, which
        // `on_snapshot` checks against the committed log.
        let first = log.first().map_or(LogIndex(1), |entry| entry.index);
        let skip = (first.0 - 1) as usize;
        for (position, &(committed, commit_term)) in self.committed.iter().enumerate().skip(skip) {
            let found = log.get(position - skip).map(EntryId::of);
            // A leader of a term older than the commit (e.g. a paused node elected late with
            // stale votes) is not bound by it.
            if commit_term < term && found != Some(committed) {
                return Err(Violation::new(
                    Property::LeaderCompleteness,
                    format!(
                        "{node} leads {term} without entry {} of {}, committed by {commit_term} \
                         (has {:?})",
                        position + 1,
                        committed.term,
                        found.map(|id| id.term)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `node` persisted `entries` after an entry of `prev_term` (Log Matching).
    pub fn on_append(
        &mut self,
        node: NodeId,
        prev_term: Term,
        entries: &[Entry<KvCommand>],
    ) -> Result<(), Violation> {
        let mut prev_term = prev_term;
        for entry in entries {
            let id = EntryId::of(entry);
            let seen =
                *self.persisted.entry((entry.index, entry.term)).or_insert((prev_term, id.payload));
            if seen != (prev_term, id.payload) {
                return Err(Violation::new(
                    Property::LogMatching,
                    format!(
                        "{node} stores entry {}@{} after a {} entry; elsewhere it follows a {} \
                         entry or holds another payload",
                        entry.index.0, entry.term, prev_term, seen.0
                    ),
                ));
            }
            prev_term = entry.term;
        }
        Ok(())
    }

    /// `node` is about to make `change` durable on `disk` (which does not hold it yet):
    /// dispatches to the checks of each kind of change. `leading` says whether the node was
    /// leader throughout the step that produced the change.
    pub fn on_persist(
        &mut self,
        node: NodeId,
        leading: bool,
        change: &Persist<KvCommand>,
        disk: &DurableState<KvCommand>,
    ) -> Result<(), Violation> {
        match change {
            Persist::HardState(hard_state) => self.on_hard_state(node, *hard_state),
            Persist::Append(entries) => {
                // The entry before the first appended one, as the disk holds it: a stored
                // entry, or the snapshot's last one.
                let prev_term = match entries.first() {
                    Some(first) if first.index > LogIndex(1) => {
                        let prev = first.index.prev();
                        let stored =
                            prev.0.checked_sub(disk.first_index().0).and_then(|position| {
                                disk.entries.get(position as usize).map(|entry| entry.term)
                            });
                        let snapshot = disk
                            .snapshot
                            .as_ref()
                            .filter(|snapshot| snapshot.meta.index == prev)
                            .map(|snapshot| snapshot.meta.term);
                        stored.or(snapshot).unwrap_or(Term(0))
                    }
                    _ => Term(0),
                };
                self.on_append(node, prev_term, entries)
            }
            Persist::Truncate { from } => self.on_truncate(node, leading, *from),
            Persist::Snapshot(snapshot) => self.on_snapshot(node, &snapshot.meta),
            Persist::Compact { through } => {
                let covered = disk.snapshot.as_ref().map_or(LogIndex(0), |s| s.meta.index);
                if *through > covered {
                    return Err(Violation::new(
                        Property::SnapshotSafety,
                        format!("{node} compacts through {} beyond its snapshot", through.0),
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// `node` stores or restores a snapshot described by `meta`: it must cover committed
    /// entries only and end at the committed entry of its index.
    pub fn on_snapshot(&mut self, node: NodeId, meta: &SnapshotMeta) -> Result<(), Violation> {
        let committed = meta.index.0.checked_sub(1).and_then(|p| self.committed.get(p as usize));
        match committed {
            Some(&(id, _)) if id.term == meta.term => Ok(()),
            Some(&(id, _)) => Err(Violation::new(
                Property::SnapshotSafety,
                format!(
                    "{node} has a snapshot ending at {}@{}, but an entry of {} was committed there",
                    meta.index.0, meta.term, id.term
                ),
            )),
            None => Err(Violation::new(
                Property::SnapshotSafety,
                format!("{node} has a snapshot through {}, which is not committed", meta.index.0),
            )),
        }
    }

    /// `node` restored its state machine from the snapshot `meta`: applying goes on after it.
    pub fn on_restore_snapshot(
        &mut self,
        node: NodeId,
        meta: &SnapshotMeta,
    ) -> Result<(), Violation> {
        self.on_snapshot(node, meta)?;
        let facts = self.nodes.entry(node).or_default();
        if meta.index <= facts.applied {
            return Err(Violation::new(
                Property::MonotonicApplied,
                format!(
                    "{node} restored a snapshot at {} after applying {}",
                    meta.index.0, facts.applied.0
                ),
            ));
        }
        facts.applied = meta.index;
        Ok(())
    }

    /// `node` truncated its log; `leading` says whether it was leader throughout the step.
    pub fn on_truncate(
        &mut self,
        node: NodeId,
        leading: bool,
        from: LogIndex,
    ) -> Result<(), Violation> {
        if leading {
            return Err(Violation::new(
                Property::LeaderAppendOnly,
                format!("leader {node} truncated its log from {}", from.0),
            ));
        }
        Ok(())
    }

    /// `node` wrote `hard_state` to disk (durable term and commit never decrease).
    pub fn on_hard_state(&mut self, node: NodeId, hard_state: HardState) -> Result<(), Violation> {
        let facts = self.nodes.entry(node).or_default();
        let before = facts.durable;
        facts.durable = hard_state;
        if hard_state.term < before.term {
            return Err(Violation::new(
                Property::MonotonicDurableTerm,
                format!("{node} persisted {} after {}", hard_state.term, before.term),
            ));
        }
        if hard_state.commit < before.commit {
            return Err(Violation::new(
                Property::MonotonicCommit,
                format!(
                    "{node} persisted commit {} after {}",
                    hard_state.commit.0, before.commit.0
                ),
            ));
        }
        Ok(())
    }

    /// `node` restarted: its in-memory commit and applied indexes start over.
    pub fn on_restart(&mut self, node: NodeId) {
        let facts = self.nodes.entry(node).or_default();
        facts.commit = LogIndex(0);
        facts.applied = LogIndex(0);
    }

    /// `node`, in `term`, reports commit index `commit` with `log` (monotonic commit; a
    /// committed entry never changes).
    pub fn on_commit(
        &mut self,
        node: NodeId,
        term: Term,
        commit: LogIndex,
        log: &[Entry<KvCommand>],
    ) -> Result<(), Violation> {
        let facts = self.nodes.entry(node).or_default();
        if commit < facts.commit {
            return Err(Violation::new(
                Property::MonotonicCommit,
                format!("{node} commit went from {} to {}", facts.commit.0, commit.0),
            ));
        }
        let from = facts.commit.0 as usize;
        facts.commit = commit;
        // Entries before the first held one were compacted into a snapshot (checked when it
        // was stored).
        let first = log.first().map_or(commit.next(), |entry| entry.index);
        let skip = (first.0 - 1) as usize;
        for position in from.max(skip)..commit.0 as usize {
            let Some(entry) = log.get(position - skip) else {
                return Err(Violation::new(
                    Property::StateMachineSafety,
                    format!("{node} commits {} beyond its log", commit.0),
                ));
            };
            self.record_committed(node, position, EntryId::of(entry), term)?;
        }
        Ok(())
    }

    fn record_committed(
        &mut self,
        node: NodeId,
        position: usize,
        id: EntryId,
        term: Term,
    ) -> Result<(), Violation> {
        match self.committed.get(position) {
            Some(&(known, _)) if known != id => Err(Violation::new(
                Property::StateMachineSafety,
                format!(
                    "{node} commits entry {} of {}, but an entry of {} was committed there",
                    position + 1,
                    id.term,
                    known.term
                ),
            )),
            Some(_) => Ok(()),
            None if position == self.committed.len() => {
                self.committed.push((id, term));
                Ok(())
            }
            None => Err(Violation::new(
                Property::StateMachineSafety,
                format!("{node} commits entry {} ahead of a gap", position + 1),
            )),
        }
    }

    /// `node` applied `entries` (State Machine Safety, applied in order).
    pub fn on_apply(
        &mut self,
        node: NodeId,
        entries: &[Entry<KvCommand>],
    ) -> Result<(), Violation> {
        for entry in entries {
            let facts = self.nodes.entry(node).or_default();
            if entry.index != facts.applied.next() {
                return Err(Violation::new(
                    Property::MonotonicApplied,
                    format!("{node} applied {} after {}", entry.index.0, facts.applied.0),
                ));
            }
            facts.applied = entry.index;
            let position = (entry.index.0 - 1) as usize;
            let id = EntryId::of(entry);
            match self.applied.get(position) {
                Some(&known) if known != id => {
                    return Err(Violation::new(
                        Property::StateMachineSafety,
                        format!(
                            "{node} applied entry {} of {}; another node applied one of {} there",
                            entry.index.0, entry.term, known.term
                        ),
                    ))
                }
                Some(_) => {}
                None if position == self.applied.len() => self.applied.push(id),
                None => {
                    return Err(Violation::new(
                        Property::StateMachineSafety,
                        format!("{node} applied {} ahead of a gap", entry.index.0),
                    ))
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64, request: u64) -> Entry<KvCommand> {
        Entry {
            term: Term(term),
            index: LogIndex(index),
            payload: Payload::Command(KvCommand::new(
                crate::workload::RequestId { client: 1, request },
                crate::history::KvOp::Get { key: 0 },
            )),
        }
    }

    fn fires(result: Result<(), Violation>, property: Property) {
        match result {
            Err(violation) => assert_eq!(violation.property, property, "{violation:?}"),
            Ok(()) => panic!("{property} did not fire"),
        }
    }

    fn meta(index: u64, term: u64) -> SnapshotMeta {
        SnapshotMeta {
            index: LogIndex(index),
            term: Term(term),
            membership: stepraft::Membership::with_voters([NodeId(1)]).into(),
        }
    }

    #[test]
    fn snapshot_safety_fires_on_an_uncommitted_or_foreign_snapshot() {
        let mut checker = SafetyChecker::new();
        let log = [entry(1, 1, 10), entry(2, 1, 11)];
        checker.on_commit(NodeId(1), Term(1), LogIndex(2), &log).unwrap();
        checker.on_snapshot(NodeId(1), &meta(2, 1)).unwrap();
        fires(checker.on_snapshot(NodeId(1), &meta(3, 1)), Property::SnapshotSafety);
        fires(checker.on_snapshot(NodeId(2), &meta(2, 2)), Property::SnapshotSafety);
    }

    #[test]
    fn a_restored_snapshot_moves_applied_forward_only() {
        let mut checker = SafetyChecker::new();
        let log = [entry(1, 1, 10), entry(2, 1, 11), entry(3, 1, 12)];
        checker.on_commit(NodeId(1), Term(1), LogIndex(3), &log).unwrap();
        checker.on_apply(NodeId(2), &log[..2]).unwrap();
        fires(checker.on_restore_snapshot(NodeId(2), &meta(1, 1)), Property::MonotonicApplied);
        checker.on_restore_snapshot(NodeId(3), &meta(2, 1)).unwrap();
        // Applying goes on right after the snapshot, and only there.
        fires(checker.on_apply(NodeId(3), &log[..1]), Property::MonotonicApplied);
        checker.on_apply(NodeId(3), &log[2..]).unwrap();
    }

    #[test]
    fn commits_and_leaders_skip_the_compacted_prefix_but_not_the_rest() {
        let mut checker = SafetyChecker::new();
        let log = [entry(1, 1, 10), entry(2, 1, 11), entry(3, 1, 12)];
        checker.on_commit(NodeId(1), Term(1), LogIndex(3), &log).unwrap();
        // A node holding only 3 (1..=2 compacted) commits 3 and may lead.
        checker.on_commit(NodeId(2), Term(1), LogIndex(3), &log[2..]).unwrap();
        checker.on_leader(NodeId(2), Term(2), &log[2..]).unwrap();
        // Holding another entry at 3 is still caught.
        let other = [entry(3, 1, 99)];
        fires(checker.on_leader(NodeId(3), Term(3), &other), Property::LeaderCompleteness);
    }

    #[test]
    fn election_safety_fires_on_two_leaders_in_one_term() {
        let mut checker = SafetyChecker::new();
        checker.on_leader(NodeId(1), Term(2), &[]).unwrap();
        checker.on_leader(NodeId(1), Term(2), &[]).unwrap();
        fires(checker.on_leader(NodeId(2), Term(2), &[]), Property::ElectionSafety);
    }

    #[test]
    fn log_matching_fires_on_same_index_and_term_with_other_content() {
        let mut checker = SafetyChecker::new();
        checker.on_append(NodeId(1), Term(0), &[entry(1, 1, 10), entry(2, 1, 11)]).unwrap();
        checker.on_append(NodeId(2), Term(0), &[entry(1, 1, 10)]).unwrap();
        fires(checker.on_append(NodeId(2), Term(1), &[entry(2, 1, 99)]), Property::LogMatching);
    }

    #[test]
    fn log_matching_fires_on_a_different_prefix() {
        let mut checker = SafetyChecker::new();
        checker.on_append(NodeId(1), Term(0), &[entry(1, 1, 10), entry(2, 2, 11)]).unwrap();
        // Node 2 holds (2, t2) after an entry of term 2 instead of term 1.
        fires(checker.on_append(NodeId(2), Term(2), &[entry(2, 2, 11)]), Property::LogMatching);
    }

    #[test]
    fn leader_completeness_fires_when_a_leader_lacks_a_committed_entry() {
        let mut checker = SafetyChecker::new();
        checker
            .on_commit(NodeId(1), Term(1), LogIndex(2), &[entry(1, 1, 1), entry(2, 1, 2)])
            .unwrap();
        checker.on_leader(NodeId(2), Term(2), &[entry(1, 1, 1), entry(2, 1, 2)]).unwrap();
        fires(
            checker.on_leader(NodeId(3), Term(3), &[entry(1, 1, 1)]),
            Property::LeaderCompleteness,
        );
    }

    #[test]
    fn leader_completeness_does_not_bind_leaders_of_terms_before_the_commit() {
        let mut checker = SafetyChecker::new();
        let log = [entry(1, 1, 1), entry(2, 1, 2)];
        // Entry 2 of term 1 is committed by the leader of term 5 ...
        checker.on_commit(NodeId(1), Term(5), LogIndex(2), &log).unwrap();
        // ... so a node elected late in term 3 with stale votes need not hold it (the seed 410
        // false alarm), but a leader of term 6 must.
        checker.on_leader(NodeId(3), Term(3), &log[..1]).unwrap();
        fires(checker.on_leader(NodeId(3), Term(6), &log[..1]), Property::LeaderCompleteness);
    }

    #[test]
    fn state_machine_safety_fires_on_different_applies_and_changed_commits() {
        let mut checker = SafetyChecker::new();
        checker.on_apply(NodeId(1), &[entry(1, 1, 1)]).unwrap();
        fires(checker.on_apply(NodeId(2), &[entry(1, 2, 5)]), Property::StateMachineSafety);
        let mut checker = SafetyChecker::new();
        checker.on_commit(NodeId(1), Term(1), LogIndex(1), &[entry(1, 1, 1)]).unwrap();
        fires(
            checker.on_commit(NodeId(2), Term(1), LogIndex(1), &[entry(1, 2, 1)]),
            Property::StateMachineSafety,
        );
    }

    #[test]
    fn monotonicity_checks_fire() {
        let mut checker = SafetyChecker::new();
        checker
            .on_commit(NodeId(1), Term(1), LogIndex(2), &[entry(1, 1, 1), entry(2, 1, 2)])
            .unwrap();
        fires(
            checker.on_commit(NodeId(1), Term(1), LogIndex(1), &[entry(1, 1, 1)]),
            Property::MonotonicCommit,
        );
        checker.on_apply(NodeId(1), &[entry(1, 1, 1)]).unwrap();
        fires(checker.on_apply(NodeId(1), &[entry(3, 1, 3)]), Property::MonotonicApplied);
        let high = HardState { term: Term(5), voted_for: None, commit: LogIndex(2) };
        checker.on_hard_state(NodeId(1), high).unwrap();
        let lower_term = HardState { term: Term(4), ..high };
        fires(checker.on_hard_state(NodeId(1), lower_term), Property::MonotonicDurableTerm);
        let lower_commit = HardState { commit: LogIndex(1), ..high };
        fires(checker.on_hard_state(NodeId(1), lower_commit), Property::MonotonicCommit);
    }

    #[test]
    fn leader_append_only_fires_on_a_leader_truncating() {
        let mut checker = SafetyChecker::new();
        checker.on_truncate(NodeId(1), false, LogIndex(3)).unwrap();
        fires(checker.on_truncate(NodeId(1), true, LogIndex(3)), Property::LeaderAppendOnly);
    }

    #[test]
    fn a_restart_resets_the_lifetime_counters_only() {
        let mut checker = SafetyChecker::new();
        checker.on_apply(NodeId(1), &[entry(1, 1, 1)]).unwrap();
        checker.on_restart(NodeId(1));
        checker.on_apply(NodeId(1), &[entry(1, 1, 1)]).unwrap();
        fires(checker.on_apply(NodeId(2), &[entry(1, 1, 2)]), Property::StateMachineSafety);
    }
}
