//! Log replication (§5.3, §5.4.2): proposals, AppendEntries on both sides, heartbeats, commit.

use super::{peer_progress, Node, RoleState};
use crate::entry::{Command, Entry, Payload};
use crate::error::ProposeError;
use crate::io::{Output, Persist, Proposal};
use crate::message::{
    AppendEntries, AppendEntriesResponse, AppendOutcome, ConflictHint, Heartbeat,
    HeartbeatResponse, Message,
};
use crate::stats::IgnoredReason;
use crate::types::{LogIndex, NodeId};

impl<T: Command> Node<T> {
    pub(super) fn on_propose(&mut self, proposal: Proposal<T>) {
        match self.try_append_proposal(proposal.commands, proposal.condition) {
            Ok((first, last)) => {
                self.pending.notices.push(Output::Accepted {
                    proposal: proposal.id,
                    first,
                    last,
                    term: self.term,
                });
                self.maybe_commit();
                self.broadcast_append();
            }
            Err(error) => {
                self.pending.notices.push(Output::Rejected { proposal: proposal.id, error })
            }
        }
    }

    /// Appends the commands on the leader, or says why not.
    fn try_append_proposal(
        &mut self,
        commands: Vec<T>,
        condition: Option<crate::io::AppendCondition>,
    ) -> Result<(LogIndex, LogIndex), ProposeError> {
        let term = self.term;
        let leader_hint = self.leader();
        let RoleState::Leader(leader) = &mut self.role else {
            return Err(ProposeError::NotLeader { leader: leader_hint, term });
        };
        if let Some(transfer) = leader.transfer {
            // §3.10: new entries would only delay the target catching up.
            return Err(ProposeError::TransferInProgress { target: transfer.target });
        }
        if commands.is_empty() {
            return Err(ProposeError::Empty);
        }
        let (last_index, last_term) = (self.log.last_index(), self.log.last_term());
        if let Some(condition) = condition {
            if (condition.last_index, condition.last_term) != (last_index, last_term) {
                return Err(ProposeError::ConditionFailed {
                    expected_index: condition.last_index,
                    expected_term: condition.last_term,
                    last_index,
                    last_term,
                });
            }
        }
        let bytes: u64 = commands.iter().map(|command| command.size_bytes() as u64).sum();
        let would_be = leader.uncommitted_bytes.saturating_add(bytes);
        if would_be > self.config.uncommitted_bytes_max {
            return Err(ProposeError::TooManyUncommittedBytes {
                would_be,
                limit: self.config.uncommitted_bytes_max,
            });
        }
        leader.uncommitted_bytes = would_be;
        let first = last_index.next();
        let mut entries = self.pending.entry_buffers.pop().unwrap_or_default();
        entries.extend(commands.into_iter().zip(first.0..).map(|(command, index)| Entry {
            term,
            index: LogIndex(index),
            payload: Payload::Command(command),
        }));
        let last = first.plus(entries.len() as u64 - 1);
        // The log keeps clones and the persist takes the vector: one allocation per proposal.
        self.log.extend_from_slice(&entries);
        self.persist_leader_append(entries);
        Ok((first, last))
    }

    /// Sends new entries to every follower that is not paused.
    pub(super) fn broadcast_append(&mut self) {
        // Walk the peers by key rather than collecting them: no allocation on the hot path.
        let mut next = self.next_peer(None);
        while let Some(peer) = next {
            self.send_append(peer, true);
            next = self.next_peer(Some(peer));
        }
    }

    /// The leader's first peer after `after` (or its first peer), in id order.
    fn next_peer(&self, after: Option<NodeId>) -> Option<NodeId> {
        let RoleState::Leader(leader) = &self.role else { return None };
        leader.progress.key_after(after)
    }

    /// Sends `peer` the entries after its next index, within the per-message limits. With
    /// `allow_empty`, sends an entry-less AppendEntries when there is nothing new — a probe
    /// that checks the consistency point. When those entries were compacted away, sends the
    /// snapshot instead (§7).
    pub(super) fn send_append(&mut self, peer: NodeId, allow_empty: bool) {
        let RoleState::Leader(leader) = &mut self.role else { return };
        let Some(progress) = leader.progress.get_mut(peer) else { return };
        let next = progress.next_index();
        let prev_log_index = next.prev();
        let Ok(prev_log_term) = self.log.term(prev_log_index) else {
            // `next <= last + 1`, so the only missing term is a compacted one.
            self.send_snapshot_chunks(peer);
            return;
        };
        if progress.state() == crate::progress::ReplicationState::Snapshot {
            // A newer snapshot would let it catch up with entries; until the leader compacts
            // further, finish the transfer under way.
            self.send_snapshot_chunks(peer);
            return;
        }
        if progress.is_paused(self.config.in_flight_messages_max) {
            return;
        }
        let entries = select_batch(
            self.log.slice(next, self.log.last_index()),
            self.config.entries_per_message_max,
            self.config.bytes_per_message_max,
        );
        if entries.is_empty() && !allow_empty {
            return;
        }
        progress.on_sent(prev_log_index.plus(entries.len() as u64), entries.len());
        let mut buffer = self.pending.entry_buffers.pop().unwrap_or_default();
        buffer.extend_from_slice(entries);
        let message = AppendEntries {
            term: self.term,
            prev_log_index,
            prev_log_term,
            entries: buffer,
            leader_commit: self.commit,
        };
        self.send(peer, Message::AppendEntries(message));
    }

    /// Sends every follower a heartbeat of a new round (see `read.rs` for what rounds prove).
    pub(super) fn broadcast_heartbeat(&mut self) {
        let RoleState::Leader(leader) = &mut self.role else { return };
        let round = leader.reads.start_round(self.config.election_ticks);
        // A follower may only commit what it is known to hold (§5.3's consistency guarantee).
        let heartbeats: Vec<(NodeId, Heartbeat)> = leader
            .progress
            .iter()
            .map(|(peer, progress)| {
                let commit = self.commit.min(progress.match_index());
                (peer, Heartbeat { term: self.term, commit, round })
            })
            .collect();
        for (peer, heartbeat) in heartbeats {
            self.send(peer, Message::Heartbeat(heartbeat));
        }
    }

    /// Makes this node a follower of `from` on hearing from the leader of its term. Returns
    /// `false` when the message cannot come from a legitimate leader and must be ignored.
    pub(super) fn accept_leader(&mut self, from: NodeId) -> bool {
        match self.role {
            RoleState::Leader(_) => return false, // two leaders in one term: hostile input
            RoleState::Follower { leader: Some(known), .. } if known != from => return false,
            RoleState::Follower { ref mut leader, .. } => *leader = Some(from),
            // §5.2: a candidate that hears from a leader of its term steps down.
            RoleState::PreCandidate { .. } | RoleState::Candidate { .. } => {
                self.become_follower(self.term, Some(from))
            }
        }
        self.election_elapsed = 0;
        self.restarted_recently = false;
        true
    }

    pub(super) fn on_append_entries(&mut self, from: NodeId, request: AppendEntries<T>) {
        if !is_well_formed(&request) {
            self.stats.ignore(IgnoredReason::Malformed);
            return;
        }
        if !self.accept_leader(from) {
            self.stats.ignore(IgnoredReason::NotFromLeader);
            return;
        }
        let term = self.term;
        if request.prev_log_index < self.log.offset() {
            // The consistency point is inside this node's snapshot, which only covers
            // committed entries: they match the leader's. Say how far this node is known to
            // match, so that the leader resumes from there.
            let outcome = AppendOutcome::Success { match_index: self.commit };
            self.send(
                from,
                Message::AppendEntriesResponse(AppendEntriesResponse { term, outcome }),
            );
            return;
        }
        if !self.log.matches(request.prev_log_index, request.prev_log_term) {
            let hint = self.conflict_hint(request.prev_log_index);
            let outcome =
                AppendOutcome::Conflict { rejected_prev_index: request.prev_log_index, hint };
            self.send(
                from,
                Message::AppendEntriesResponse(AppendEntriesResponse { term, outcome }),
            );
            return;
        }
        let last_new = request.prev_log_index.plus(request.entries.len() as u64);
        if !self.append_from_leader(request.entries) {
            self.stats.ignore(IgnoredReason::ContradictsCommitted);
            return;
        }
        // §5.3: commit up to the leader's commit, but only what this message proved matches.
        self.commit = self.commit.max(request.leader_commit.min(last_new));
        let outcome = AppendOutcome::Success { match_index: last_new };
        self.send(from, Message::AppendEntriesResponse(AppendEntriesResponse { term, outcome }));
    }

    /// Where the leader should resume after the consistency check failed at `prev_index`.
    fn conflict_hint(&self, prev_index: LogIndex) -> ConflictHint {
        match self.log.term(prev_index) {
            Ok(term) => ConflictHint {
                index: self.log.first_index_of_term(term).unwrap_or(prev_index),
                term: Some(term),
            },
            Err(_) => ConflictHint { index: self.log.last_index().next(), term: None },
        }
    }

    /// Appends the entries that are new, truncating only at a real conflict (§5.3): entries
    /// already present with the same term are skipped, so a duplicated or reordered message
    /// never removes anything. Returns `false` (and changes nothing) if the leader would
    /// overwrite a committed entry, which a legitimate leader never does.
    fn append_from_leader(&mut self, mut entries: Vec<Entry<T>>) -> bool {
        let mut first_new = entries.len();
        let mut truncated = false;
        for (position, entry) in entries.iter().enumerate() {
            match self.log.term(entry.index) {
                Ok(term) if term == entry.term => continue,
                // Only the last compacted entry's term is known; earlier ones are in the
                // snapshot, which holds committed entries only.
                Err(crate::error::TermError::Compacted { .. }) => continue,
                Ok(_) => {
                    if entry.index <= self.commit {
                        return false;
                    }
                    self.log.truncate_from(entry.index);
                    self.persist_log_change(Persist::Truncate { from: entry.index });
                    truncated = true;
                }
                Err(crate::error::TermError::BeyondLog { .. }) => {}
            }
            first_new = position;
            break;
        }
        // Reuse the message's vector for the persist: usually every entry is new, and then
        // nothing is allocated here.
        entries.drain(..first_new);
        if !entries.is_empty() {
            self.adopt_appended_membership(&entries);
            self.log.extend_from_slice(&entries);
            self.persist_log_change(Persist::Append(entries));
        }
        if truncated {
            // A truncated configuration entry is undone (§4.1): recompute from the log.
            self.refresh_membership_from_log();
        }
        true
    }

    pub(super) fn on_append_entries_response(
        &mut self,
        from: NodeId,
        response: AppendEntriesResponse,
    ) {
        let last_index = self.log.last_index();
        let Some(progress) = peer_progress(&mut self.role, &mut self.stats, from) else { return };
        match response.outcome {
            AppendOutcome::Success { match_index } if match_index <= last_index => {
                // An acknowledgement at or below the commit index cannot move the majority's
                // index past it, so the commit computation is skipped (the second answer to
                // each append, in a three-node cluster). Neither is the computation needed
                // when the answer moved nothing (a duplicate). A saving only: computing anyway
                // changes nothing, so cargo-mutants' `>` -> `>=` and `&&` -> `||` here are
                // equivalent.
                if progress.on_success(match_index) && match_index > self.commit {
                    self.maybe_commit();
                }
                self.send_append(from, false);
                self.maybe_send_timeout_now(from);
            }
            AppendOutcome::Conflict { rejected_prev_index, hint }
                if rejected_prev_index <= last_index =>
            {
                let log = &self.log;
                if progress.on_conflict(rejected_prev_index, hint, |t| log.last_index_of_term(t)) {
                    self.send_append(from, true);
                }
            }
            // An ack beyond our log, or a stale-term answer at our own term: not from an
            // honest follower of this leader.
            AppendOutcome::Success { .. }
            | AppendOutcome::Conflict { .. }
            | AppendOutcome::StaleTerm => self.stats.ignore(IgnoredReason::Malformed),
        }
    }

    pub(super) fn on_heartbeat(&mut self, from: NodeId, heartbeat: Heartbeat) {
        if !self.accept_leader(from) {
            self.stats.ignore(IgnoredReason::NotFromLeader);
            return;
        }
        self.commit = self.commit.max(heartbeat.commit.min(self.log.last_index()));
        let (term, round) = (self.term, heartbeat.round);
        self.send(from, Message::HeartbeatResponse(HeartbeatResponse { term, round }));
    }

    pub(super) fn on_heartbeat_response(&mut self, from: NodeId, response: HeartbeatResponse) {
        let last_index = self.log.last_index();
        let RoleState::Leader(leader) = &mut self.role else {
            self.stats.ignore(IgnoredReason::UnexpectedInRole);
            return;
        };
        let Some(progress) = leader.progress.get_mut(from) else {
            self.stats.ignore(IgnoredReason::NotMember);
            return;
        };
        progress.on_heartbeat_response();
        // Probe only when nothing is in flight: an empty append overtaking in-flight entries
        // would be refused and needlessly drop the follower back to probing.
        let behind = progress.match_index() < last_index
            && (progress.state() == crate::progress::ReplicationState::Probe
                || progress.in_flight() == 0);
        leader.reads.on_ack(from, response.round);
        if behind {
            self.send_append(from, true);
        }
        self.confirm_reads();
    }

    /// Advances the commit index to the highest index stored on a majority, provided that
    /// entry is of the current term (§5.4.2, Figure 8). Returns whether it advanced.
    pub(super) fn maybe_commit(&mut self) -> bool {
        let own_match = self.self_match_index();
        let RoleState::Leader(leader) = &mut self.role else { return false };
        let (me, progress) = (self.config.id, &leader.progress);
        let match_of = |voter| {
            if voter == me {
                own_match
            } else {
                progress.get(voter).map_or(LogIndex(0), |p| p.match_index())
            }
        };
        let candidate = leader.voter_lists.committed_index(&mut leader.match_scratch, match_of);
        debug_assert_eq!(
            candidate,
            self.membership.committed_index(match_of),
            "the voter lists follow the configuration"
        );
        if candidate <= self.commit || self.log.term(candidate) != Ok(self.term) {
            return false;
        }
        let newly_committed = self.log.slice(self.commit.next(), candidate);
        let bytes: u64 = newly_committed
            .iter()
            .filter(|entry| entry.term == self.term)
            .map(|entry| entry.size_bytes() as u64)
            .sum();
        leader.uncommitted_bytes = leader.uncommitted_bytes.saturating_sub(bytes);
        self.commit = candidate;
        // The first commit of this term also opens the reads that waited for it (§6.4).
        self.release_reads_awaiting_commit();
        self.after_membership_commit();
        true
    }
}

/// The longest prefix of `entries` within the count and byte limits; at least one entry if
/// any, so that an entry larger than the byte limit still gets through.
fn select_batch<T: Command>(
    entries: &[Entry<T>],
    count_max: usize,
    bytes_max: usize,
) -> &[Entry<T>] {
    let entries = &entries[..entries.len().min(count_max)];
    let mut bytes = 0usize;
    for (position, entry) in entries.iter().enumerate() {
        bytes = bytes.saturating_add(entry.size_bytes());
        if bytes > bytes_max && position > 0 {
            return &entries[..position];
        }
    }
    entries
}

/// Whether an AppendEntries is internally consistent: entries numbered consecutively after
/// `prev_log_index`, terms non-decreasing from `prev_log_term` and not above the message term.
/// A message failing this did not come from a correct leader.
fn is_well_formed<T>(request: &AppendEntries<T>) -> bool {
    let mut expected_index = request.prev_log_index;
    let mut previous_term = request.prev_log_term;
    if request.prev_log_term > request.term {
        return false;
    }
    for entry in &request.entries {
        let Some(index) = expected_index.0.checked_add(1) else { return false };
        expected_index = LogIndex(index);
        if entry.index != expected_index || entry.term < previous_term || entry.term > request.term
        {
            return false;
        }
        previous_term = entry.term;
    }
    true
}
