//! Snapshots and log compaction (§7, thesis chapter 5): recording the application's snapshot
//! and compacting the log, sending a snapshot in chunks to a follower that needs compacted
//! entries, and installing one on the follower.

use std::sync::Arc;

use super::{Node, RoleState};
use crate::entry::Command;
use crate::error::SnapshotError;
use crate::io::{Output, Persist};
use crate::membership::Membership;
use crate::message::{InstallSnapshot, InstallSnapshotResponse, Message, SnapshotOutcome};
use crate::progress::ChunkAnswer;
use crate::snapshot::{IncomingSnapshot, Snapshot, SnapshotMeta};
use crate::stats::IgnoredReason;
use crate::types::{LogIndex, NodeId};

impl<T: Command> Node<T> {
    /// `Input::SnapshotTaken`: records the application's snapshot and compacts the log.
    pub(super) fn on_snapshot_taken(&mut self, index: LogIndex, data: Arc<[u8]>) {
        if let Err(error) = self.take_snapshot(index, data) {
            self.pending.notices.push(Output::SnapshotRejected { index, error });
        }
    }

    fn take_snapshot(&mut self, index: LogIndex, data: Arc<[u8]>) -> Result<(), SnapshotError> {
        if index > self.applied {
            return Err(SnapshotError::NotApplied { index, applied: self.applied });
        }
        let current = self.snapshot_index();
        if index <= current {
            return Err(SnapshotError::Stale { index, current });
        }
        // `current < index <= applied <= last`, and the log holds everything after the
        // current snapshot's index: the term is known.
        let Ok(term) = self.log.term(index) else {
            return Err(SnapshotError::Stale { index, current });
        };
        let meta = SnapshotMeta { index, term, membership: self.membership_at(index) };
        let snapshot = Snapshot { meta, data };
        self.persist_log_change(Persist::Snapshot(snapshot.clone()));
        self.snapshot = Some(snapshot);
        self.stats.snapshots_taken += 1;
        // Keep a tail for followers that lag a little: entries are cheaper than a snapshot.
        let through = LogIndex(index.0.saturating_sub(self.config.compaction_tail_entries));
        if through > self.log.offset() {
            self.log.compact_through(through);
            self.persist_log_change(Persist::Compact { through });
        }
        Ok(())
    }

    /// The index of the latest snapshot (0 without one).
    pub(super) fn snapshot_index(&self) -> LogIndex {
        self.snapshot.as_ref().map_or(LogIndex(0), |snapshot| snapshot.meta.index)
    }

    /// The configuration in force at `index`: the latest configuration entry at or before it
    /// in the log, else the snapshot's, else the initial one.
    fn membership_at(&self, index: LogIndex) -> Arc<Membership> {
        let in_log = self
            .log
            .slice(self.log.first_index(), index)
            .iter()
            .rev()
            .find_map(|entry| entry.payload.membership().cloned());
        match (in_log, &self.snapshot) {
            (Some(membership), _) => Arc::new(membership),
            (None, Some(snapshot)) => Arc::clone(&snapshot.meta.membership),
            (None, None) => Arc::new(self.initial_membership.clone()),
        }
    }

    /// Sends `peer` the next chunks of the snapshot being sent to it, as the window allows,
    /// starting a transfer of the latest snapshot when none is under way. A transfer keeps
    /// its snapshot to the end even if a newer one is taken meanwhile (see
    /// `progress/snapshot_send.rs` for why that, and the attempts, make it finish).
    pub(super) fn send_snapshot_chunks(&mut self, peer: NodeId) {
        let RoleState::Leader(leader) = &mut self.role else { return };
        let Some(progress) = leader.progress.get_mut(peer) else { return };
        if progress.snapshot_being_sent().is_none() {
            let Some(snapshot) = &self.snapshot else {
                // Unreachable: the log is only compacted under a snapshot.
                debug_assert!(false, "compacted log without a snapshot");
                return;
            };
            leader.snapshot_attempts += 1;
            progress.become_snapshot(snapshot.clone(), leader.snapshot_attempts);
            self.stats.snapshots_sent += 1;
        }
        let chunk_bytes = self.config.snapshot_chunk_bytes as u64;
        let window = self.config.in_flight_messages_max;
        let mut chunks = Vec::new();
        while let Some(range) = progress.next_chunk(chunk_bytes, window) {
            let snapshot = progress.snapshot_being_sent().expect("invariant: in snapshot state");
            chunks.push(InstallSnapshot {
                term: self.term,
                attempt: range.attempt,
                meta: snapshot.meta.clone(),
                total_bytes: snapshot.data.len() as u64,
                offset: range.start,
                data: snapshot.data[range.start as usize..range.end as usize].to_vec(),
            });
        }
        for chunk in chunks {
            self.stats.snapshot_chunks_sent += 1;
            self.stats.snapshot_bytes_sent += chunk.data.len() as u64;
            self.send(peer, Message::InstallSnapshot(chunk));
        }
    }

    /// A follower receives one chunk from its leader.
    pub(super) fn on_install_snapshot(&mut self, from: NodeId, chunk: InstallSnapshot) {
        let (snapshot_index, attempt) = (chunk.meta.index, chunk.attempt);
        // The index must leave room for the entries after it (index arithmetic never wraps).
        let consistent = chunk.meta.index > LogIndex(0)
            && chunk.meta.index <= LogIndex::MAX_SNAPSHOT_INDEX
            && chunk.meta.term > crate::types::Term(0)
            && chunk.meta.term <= chunk.term
            && chunk.offset.checked_add(chunk.data.len() as u64) <= Some(chunk.total_bytes);
        if !self.accept_leader(from) {
            self.stats.ignore(IgnoredReason::NotFromLeader);
            return;
        }
        let outcome = if !consistent {
            SnapshotOutcome::Refused
        } else if snapshot_index <= self.commit {
            // Everything the snapshot covers is committed here already, and committed entries
            // match the leader's log: nothing to install. A partial copy only holds memory
            // now: every later chunk of it lands here too (the commit never decreases), and a
            // newer snapshot restarts the buffer. So dropping it is for memory alone, and
            // cargo-mutants' "replace with ()" of the call is equivalent in behaviour.
            self.clear_incoming_snapshot();
            SnapshotOutcome::Installed { match_index: self.commit }
        } else {
            match self.receive_chunk(chunk) {
                Some(outcome) => outcome,
                None => {
                    self.stats.ignore(IgnoredReason::Outdated);
                    return;
                }
            }
        };
        let term = self.term;
        let response = InstallSnapshotResponse { term, snapshot_index, attempt, outcome };
        self.send(from, Message::InstallSnapshotResponse(response));
    }

    fn clear_incoming_snapshot(&mut self) {
        if let RoleState::Follower { incoming_snapshot, .. } = &mut self.role {
            *incoming_snapshot = None;
        }
    }

    /// Adds a chunk to the snapshot being received, installing it once complete. `None`: a
    /// chunk of an older snapshot than the one being received, from an abandoned transfer of
    /// this leader (a leader's transfers only move to newer snapshots): not worth an answer.
    fn receive_chunk(&mut self, chunk: InstallSnapshot) -> Option<SnapshotOutcome> {
        let RoleState::Follower { incoming_snapshot, .. } = &mut self.role else {
            return Some(SnapshotOutcome::Refused); // `accept_leader` made this node a follower
        };
        let received = match incoming_snapshot.as_deref() {
            Some(incoming) if incoming.meta.index > chunk.meta.index => return None,
            Some(incoming)
                if incoming.meta == chunk.meta && incoming.total_bytes == chunk.total_bytes =>
            {
                incoming.data.len() as u64
            }
            // Nothing received yet of this snapshot, or a newer one replaces an older one.
            _ => 0,
        };
        if chunk.offset > received {
            // Chunks were lost or reordered; what is held is kept.
            return Some(SnapshotOutcome::Gap { next_offset: received });
        }
        if received == 0 && chunk.offset == 0 {
            *incoming_snapshot = Some(Box::new(IncomingSnapshot {
                meta: chunk.meta.clone(),
                total_bytes: chunk.total_bytes,
                data: Vec::new(),
            }));
        }
        let incoming = incoming_snapshot.as_mut().expect("invariant: buffer created above");
        if chunk.offset == received {
            incoming.data.extend_from_slice(&chunk.data);
        }
        // An older chunk (a duplicate) changes nothing; the answer repeats where we are.
        let received = incoming.data.len() as u64;
        if received < incoming.total_bytes {
            return Some(SnapshotOutcome::Received { next_offset: received });
        }
        let incoming = incoming_snapshot.take().expect("invariant: buffer checked above");
        let IncomingSnapshot { meta, data, .. } = *incoming;
        let index = meta.index;
        self.install_snapshot(Snapshot { meta, data: data.into() });
        Some(SnapshotOutcome::Installed { match_index: index })
    }

    /// Replaces the log prefix the snapshot covers (§7): a log that holds the snapshot's last
    /// entry keeps what follows it; any other log is discarded. The application restores its
    /// state machine from the snapshot at the end of the step.
    fn install_snapshot(&mut self, snapshot: Snapshot) {
        let SnapshotMeta { index, term, .. } = snapshot.meta;
        debug_assert!(index > self.commit, "only snapshots past the commit are installed");
        self.persist_log_change(Persist::Snapshot(snapshot.clone()));
        if self.log.matches(index, term) {
            self.log.compact_through(index);
            self.persist_log_change(Persist::Compact { through: index });
        } else {
            self.log.reset_to(index, term);
        }
        self.snapshot = Some(snapshot);
        self.commit = index;
        self.stats.snapshots_installed += 1;
        self.refresh_membership_from_log();
    }

    /// The leader hears how a chunk went. `Installed` is a fact about the follower's log
    /// whichever attempt it answers; the other outcomes count only for the current attempt.
    pub(super) fn on_install_snapshot_response(
        &mut self,
        from: NodeId,
        response: InstallSnapshotResponse,
    ) {
        let last_index = self.log.last_index();
        let RoleState::Leader(leader) = &mut self.role else {
            self.stats.ignore(IgnoredReason::UnexpectedInRole);
            return;
        };
        let Some(progress) = leader.progress.get_mut(from) else {
            self.stats.ignore(IgnoredReason::NotMember);
            return;
        };
        let fresh_attempt = leader.snapshot_attempts + 1;
        let current = progress.snapshot_attempt() == Some(response.attempt)
            && progress.pending_snapshot() == Some(response.snapshot_index);
        let answer = match response.outcome {
            SnapshotOutcome::Installed { match_index } if match_index <= last_index => {
                if progress.on_success(match_index) {
                    self.maybe_commit();
                }
                self.maybe_send_timeout_now(from);
                ChunkAnswer::Counted
            }
            SnapshotOutcome::Installed { .. } => {
                // An install beyond our log: not from an honest follower of this leader.
                self.stats.ignore(IgnoredReason::Malformed);
                return;
            }
            _ if !current => ChunkAnswer::Ignored,
            SnapshotOutcome::Received { next_offset } => {
                progress.on_chunk_answer(response.attempt, next_offset, false, fresh_attempt)
            }
            SnapshotOutcome::Gap { next_offset } => {
                progress.on_chunk_answer(response.attempt, next_offset, true, fresh_attempt)
            }
            SnapshotOutcome::Refused => {
                progress.on_snapshot_refused();
                ChunkAnswer::Counted
            }
        };
        match answer {
            ChunkAnswer::Ignored => {
                // About an attempt that is over, or a transfer restarted or finished.
                self.stats.ignore(IgnoredReason::Outdated);
                return;
            }
            ChunkAnswer::Restarted => {
                if let RoleState::Leader(leader) = &mut self.role {
                    leader.snapshot_attempts = fresh_attempt;
                }
                self.stats.snapshot_restarts += 1;
            }
            ChunkAnswer::Counted => {}
        }
        self.send_append(from, false);
    }
}
