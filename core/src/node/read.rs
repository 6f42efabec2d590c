//! Linearizable reads with ReadIndex (thesis §6.4).
//!
//! The leader records its commit index for the read, then proves it is still the leader by a
//! heartbeat round acknowledged by a quorum; only then is the read released with that index.
//! Rounds are numbered within the term and echoed by followers, so an acknowledgement confirms
//! exactly the reads registered before the heartbeat it answers: a delayed or duplicated ack
//! of an older round cannot release a newer read. A new leader registers no read until an
//! entry of its own term is committed, because before that its commit index may be behind the
//! cluster's. Any read that cannot be served is rejected — none is left pending.
//!
//! **Lease reads** (opt-in, `Config::lease_reads`): with CheckQuorum, a follower that heard
//! from the leader ignores vote requests for `election_ticks` of *its* ticks. A follower that
//! acknowledged a heartbeat the leader sent at leader tick `t` therefore cannot help elect
//! another leader before `t + election_ticks` — provided clocks run at nearly the same rate.
//! The leader treats its lease as valid until `t + election_ticks - lease_margin_ticks` for
//! the quorum-th most recent such `t`, and serves reads in that window without a round.
//!
//! The clock assumption: over one election timeout, no node's ticks run faster than the
//! leader's by more than `lease_margin_ticks`, and a runtime delivers the ticks that elapsed
//! while a process was stalled before any other input (a leader resuming from a long pause
//! must see its lease expire first). A lease is never used after this leader has sent
//! `TimeoutNow`, because a transfer's election deliberately bypasses follower stickiness.

use std::collections::{BTreeMap, VecDeque};

use super::{Node, RoleState};
use crate::entry::Command;
use crate::error::ReadError;
use crate::io::Output;
use crate::message::{Message, ReadIndexRequest, ReadIndexResponse};
use crate::stats::IgnoredReason;
use crate::types::{LogIndex, NodeId, ReadId};

/// Who asked for a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Requester {
    /// This node's own application.
    Local(ReadId),
    /// A follower, on behalf of its application.
    Forwarded { from: NodeId, id: ReadId },
}

#[derive(Clone, Copy, Debug)]
pub(super) struct PendingRead {
    requester: Requester,
    /// The commit index when the read was registered.
    index: LogIndex,
    /// The first heartbeat round sent after registration; its acks confirm the read.
    round: u64,
    /// Leader ticks left before the read is given up (without CheckQuorum a leader cut off
    /// from the majority never steps down, so its reads need their own deadline).
    ticks_left: u32,
}

/// The leader's read bookkeeping.
#[derive(Clone, Debug, Default)]
pub(super) struct LeaderReads {
    /// The latest round; every heartbeat broadcast starts a new one. invariant: pending
    /// rounds are <= round.
    round: u64,
    /// The leader's own tick count in this term.
    ticks: u64,
    /// When recent rounds were sent, as `(round, tick)`, ascending; pruned once too old to
    /// extend a lease.
    sent: VecDeque<(u64, u64)>,
    /// For each peer, the send tick of the latest round it acknowledged.
    acked_sent_at: BTreeMap<NodeId, u64>,
    /// Set once this leader sent `TimeoutNow`: its lease can no longer be trusted.
    lease_revoked: bool,
    /// The highest round each peer acknowledged in this term.
    acked: BTreeMap<NodeId, u64>,
    /// Reads awaiting a quorum, in round order.
    pending: VecDeque<PendingRead>,
    /// Reads that arrived before this term's first commit, with their ticks left.
    awaiting_commit: Vec<(Requester, u32)>,
}

impl LeaderReads {
    /// Starts a new heartbeat round at the current tick and returns its number.
    pub(super) fn start_round(&mut self, election_ticks: u32) -> u64 {
        self.round += 1;
        self.sent.push_back((self.round, self.ticks));
        let horizon = self.ticks.saturating_sub(u64::from(election_ticks));
        // A round sent exactly at the horizon can no longer extend a lease either (a lease is
        // at most `election_ticks` long), so pruning it too (`<=`) would be equivalent.
        while self.sent.front().is_some_and(|&(_, tick)| tick < horizon) {
            self.sent.pop_front();
        }
        self.round
    }

    /// One tick of the leader's clock.
    pub(super) fn tick(&mut self) {
        self.ticks += 1;
    }

    /// Records that `peer` acknowledged heartbeat round `round`.
    pub(super) fn on_ack(&mut self, peer: NodeId, round: u64) {
        if round > self.round {
            return; // never sent by this leader: hostile or from another term's bookkeeping
        }
        let acked = self.acked.entry(peer).or_default();
        *acked = (*acked).max(round);
        if let Ok(position) = self.sent.binary_search_by_key(&round, |&(r, _)| r) {
            let sent_at = self.sent[position].1;
            let latest = self.acked_sent_at.entry(peer).or_default();
            *latest = (*latest).max(sent_at);
        }
    }

    /// Stops lease reads for the rest of this term.
    pub(super) fn revoke_lease(&mut self) {
        self.lease_revoked = true;
    }
}

/// A read this follower forwarded to its leader.
#[derive(Clone, Copy, Debug)]
pub(super) struct ForwardedRead {
    id: ReadId,
    /// Ticks left before the read is given up.
    ticks_left: u32,
}

impl<T: Command> Node<T> {
    pub(super) fn on_read_index(&mut self, id: ReadId) {
        let election_ticks = self.config.election_ticks;
        let term = self.term;
        match &mut self.role {
            RoleState::Leader(_) => self.leader_read(Requester::Local(id)),
            RoleState::Follower { leader: Some(leader), forwarded_reads, .. } => {
                let leader = *leader;
                forwarded_reads.push(ForwardedRead { id, ticks_left: election_ticks });
                self.send(leader, Message::ReadIndexRequest(ReadIndexRequest { term, id }));
            }
            RoleState::Follower { leader: None, .. }
            | RoleState::PreCandidate { .. }
            | RoleState::Candidate { .. } => self.reject_read(id, ReadError::NoLeader { term }),
        }
    }

    fn reject_read(&mut self, id: ReadId, error: ReadError) {
        self.pending.notices.push(Output::ReadRejected { id, error });
    }

    /// Whether an entry of the current term is committed (a leader's commit index is then
    /// known to be at least the cluster's, §6.4 step 1).
    fn has_committed_in_term(&self) -> bool {
        self.log.term(self.commit) == Ok(self.term)
    }

    fn leader_read(&mut self, requester: Requester) {
        if !self.has_committed_in_term() {
            if let RoleState::Leader(leader) = &mut self.role {
                let ticks_left = self.config.election_ticks;
                leader.reads.awaiting_commit.push((requester, ticks_left));
            }
            return;
        }
        self.register_read(requester);
    }

    /// Starts a heartbeat round that will confirm this read.
    fn register_read(&mut self, requester: Requester) {
        let index = self.commit;
        let me = self.config.id;
        if self.membership.has_quorum(|voter| voter == me) {
            // A single voter is its own quorum.
            self.complete_read(requester, index);
            return;
        }
        if self.holds_lease() {
            self.stats.lease_reads += 1;
            self.complete_read(requester, index);
            return;
        }
        let ticks_left = self.config.election_ticks;
        let RoleState::Leader(leader) = &mut self.role else { return };
        // The heartbeat broadcast below starts this round.
        let round = leader.reads.round + 1;
        leader.reads.pending.push_back(PendingRead { requester, index, round, ticks_left });
        self.broadcast_heartbeat();
    }

    /// Whether lease reads are on and a quorum acknowledged a heartbeat recently enough that no
    /// other leader can have been elected yet (see the module docs for the clock assumption).
    fn holds_lease(&self) -> bool {
        let RoleState::Leader(leader) = &self.role else { return false };
        if !self.config.lease_reads || leader.reads.lease_revoked || leader.transfer.is_some() {
            return false;
        }
        let lease_ticks =
            u64::from(self.config.election_ticks.saturating_sub(self.config.lease_margin_ticks));
        let now = leader.reads.ticks;
        let me = self.config.id;
        self.membership.has_quorum(|voter| {
            voter == me
                || leader
                    .reads
                    .acked_sent_at
                    .get(&voter)
                    .is_some_and(|&sent| sent + lease_ticks > now)
        })
    }

    pub(super) fn release_reads_awaiting_commit(&mut self) {
        let RoleState::Leader(leader) = &mut self.role else { return };
        let waiting = std::mem::take(&mut leader.reads.awaiting_commit);
        for (requester, _) in waiting {
            self.register_read(requester);
        }
    }

    /// Releases every pending read whose round a quorum has acknowledged.
    pub(super) fn confirm_reads(&mut self) {
        let me = self.config.id;
        let RoleState::Leader(leader) = &mut self.role else { return };
        let mut released = Vec::new();
        while let Some(read) = leader.reads.pending.front() {
            let acked = &leader.reads.acked;
            let round = read.round;
            let confirmed = self.membership.has_quorum(|voter| {
                voter == me || acked.get(&voter).is_some_and(|&acked| acked >= round)
            });
            if !confirmed {
                break;
            }
            released.push(*read);
            leader.reads.pending.pop_front();
        }
        for read in released {
            self.complete_read(read.requester, read.index);
        }
    }

    fn complete_read(&mut self, requester: Requester, index: LogIndex) {
        match requester {
            Requester::Local(id) => self.pending.notices.push(Output::ReadReady { id, index }),
            Requester::Forwarded { from, id } => {
                let response = ReadIndexResponse { term: self.term, id, index: Some(index) };
                self.send(from, Message::ReadIndexResponse(response));
            }
        }
    }

    pub(super) fn on_read_index_request(&mut self, from: NodeId, request: ReadIndexRequest) {
        match self.role {
            RoleState::Leader(_) => self.leader_read(Requester::Forwarded { from, id: request.id }),
            RoleState::Follower { .. }
            | RoleState::PreCandidate { .. }
            | RoleState::Candidate { .. } => {
                let response = ReadIndexResponse { term: self.term, id: request.id, index: None };
                self.send(from, Message::ReadIndexResponse(response));
            }
        }
    }

    pub(super) fn on_read_index_response(&mut self, response: ReadIndexResponse) {
        let RoleState::Follower { forwarded_reads, .. } = &mut self.role else {
            self.stats.ignore(IgnoredReason::UnexpectedInRole);
            return;
        };
        let Some(position) = forwarded_reads.iter().position(|read| read.id == response.id) else {
            // Unknown, duplicated or already timed out.
            self.stats.ignore(IgnoredReason::Outdated);
            return;
        };
        forwarded_reads.remove(position);
        let output = match response.index {
            Some(index) => Output::ReadReady { id: response.id, index },
            None => Output::ReadRejected { id: response.id, error: ReadError::RefusedByLeader },
        };
        self.pending.notices.push(output);
    }

    /// Fails a read this leader was holding: locally with `error`, or by refusing the
    /// follower that forwarded it.
    fn fail_read(&mut self, requester: Requester, error: ReadError) {
        match requester {
            Requester::Local(id) => self.reject_read(id, error),
            Requester::Forwarded { from, id } => {
                let response = ReadIndexResponse { term: self.term, id, index: None };
                self.send(from, Message::ReadIndexResponse(response));
            }
        }
    }

    /// Counts down the leader's unconfirmed reads; those still waiting after an election
    /// timeout fail with `TimedOut` rather than hang.
    pub(super) fn expire_leader_reads(&mut self) {
        let RoleState::Leader(leader) = &mut self.role else { return };
        let mut expired = Vec::new();
        leader.reads.pending.retain_mut(|read| {
            read.ticks_left = read.ticks_left.saturating_sub(1);
            let keep = read.ticks_left > 0;
            if !keep {
                expired.push(read.requester);
            }
            keep
        });
        leader.reads.awaiting_commit.retain_mut(|(requester, ticks_left)| {
            *ticks_left = ticks_left.saturating_sub(1);
            let keep = *ticks_left > 0;
            if !keep {
                expired.push(*requester);
            }
            keep
        });
        for requester in expired {
            self.fail_read(requester, ReadError::TimedOut);
        }
    }

    /// Counts down forwarded reads; those without an answer after an election timeout fail.
    pub(super) fn expire_forwarded_reads(&mut self) {
        let RoleState::Follower { forwarded_reads, .. } = &mut self.role else { return };
        let mut expired = Vec::new();
        forwarded_reads.retain_mut(|read| {
            read.ticks_left = read.ticks_left.saturating_sub(1);
            if read.ticks_left == 0 {
                expired.push(read.id);
            }
            read.ticks_left > 0
        });
        for id in expired {
            self.reject_read(id, ReadError::TimedOut);
        }
    }

    /// Replaces the role, first failing every read the old role was holding: a read confirmed
    /// by one leadership must not be released by another.
    pub(super) fn change_role(&mut self, role: RoleState) {
        let old = std::mem::replace(&mut self.role, role);
        let term = self.term;
        match old {
            RoleState::Leader(leader) => {
                let waiting = leader.reads.pending.into_iter().map(|read| read.requester);
                let awaiting =
                    leader.reads.awaiting_commit.into_iter().map(|(requester, _)| requester);
                for requester in waiting.chain(awaiting) {
                    self.fail_read(requester, ReadError::LeadershipLost { term });
                }
            }
            RoleState::Follower { forwarded_reads, .. } => {
                for read in forwarded_reads {
                    self.reject_read(read.id, ReadError::LeadershipLost { term });
                }
            }
            RoleState::PreCandidate { .. } | RoleState::Candidate { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A leader sends a heartbeat round every few ticks for its whole term: the record of
    /// rounds only keeps those recent enough to extend a lease, so it does not grow with the
    /// term's length.
    #[test]
    fn the_record_of_sent_rounds_stays_bounded() {
        let mut reads = LeaderReads::default();
        let election_ticks = 10;
        for tick in 0..3_000 {
            if tick % 3 == 0 {
                reads.start_round(election_ticks);
            }
            reads.tick();
        }
        // Rounds sent in the last `election_ticks` ticks, one every three ticks, plus the
        // one at the horizon.
        assert!(reads.sent.len() <= 5, "{} rounds kept", reads.sent.len());
        assert_eq!(reads.sent.back().map(|&(round, _)| round), Some(1_000));
    }
}
