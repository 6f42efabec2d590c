//! Leader election (§5.2, §5.4.1): timers, role changes, votes.

use std::collections::BTreeMap;

use rand_core::Rng;

use super::read::LeaderReads;
use super::{LeaderState, Node, RoleState};
use crate::entry::{Command, Entry, Payload};
use crate::io::Persist;
use crate::message::{
    AppendEntriesResponse, AppendOutcome, HeartbeatResponse, Message, ReadIndexResponse,
    RequestVote, RequestVoteResponse,
};
use crate::progress::Progress;
use crate::quorum::{tally_votes, VoteResult};
use crate::types::{NodeId, Term};

impl<T: Command> Node<T> {
    pub(super) fn on_tick(&mut self) {
        match &mut self.role {
            RoleState::Leader(leader) => {
                leader.heartbeat_elapsed += 1;
                if leader.heartbeat_elapsed >= self.config.heartbeat_ticks {
                    leader.heartbeat_elapsed = 0;
                    self.broadcast_heartbeat();
                }
            }
            RoleState::Follower { .. } | RoleState::Candidate { .. } => {
                self.expire_forwarded_reads();
                self.election_elapsed = self.election_elapsed.saturating_add(1);
                if self.election_elapsed >= self.election_timeout {
                    self.become_candidate();
                }
            }
        }
    }

    pub(super) fn on_campaign(&mut self) {
        match self.role {
            RoleState::Leader(_) => {}
            RoleState::Follower { .. } | RoleState::Candidate { .. } => self.become_candidate(),
        }
    }

    /// Restarts the election timer with a fresh random timeout in
    /// `[election_ticks, 2 · election_ticks)`, drawn from the node's own RNG (§5.2).
    pub(super) fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        self.election_timeout = random_timeout(&mut self.rng, self.config.election_ticks);
    }

    pub(super) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        if term > self.term {
            self.term = term;
            self.voted_for = None;
        }
        self.change_role(RoleState::Follower { leader, forwarded_reads: Vec::new() });
        self.reset_election_timer();
    }

    fn become_candidate(&mut self) {
        if !self.voters.contains(&self.config.id) {
            return;
        }
        let Some(term) = self.term.next() else {
            // Term space exhausted (a hostile peer announced u64::MAX): no election can start.
            return;
        };
        self.term = term;
        self.voted_for = Some(self.config.id);
        self.stats.elections_started += 1;
        self.change_role(RoleState::Candidate { votes: BTreeMap::from([(self.config.id, true)]) });
        self.reset_election_timer();
        let request = RequestVote {
            term,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
        };
        let peers: Vec<NodeId> =
            self.voters.iter().copied().filter(|&voter| voter != self.config.id).collect();
        for peer in peers {
            self.send(peer, Message::RequestVote(request));
        }
        self.maybe_win_election();
    }

    fn become_leader(&mut self) {
        let last_index = self.log.last_index();
        let progress = self
            .voters
            .iter()
            .filter(|&&voter| voter != self.config.id)
            .map(|&voter| (voter, Progress::new(last_index)))
            .collect();
        self.change_role(RoleState::Leader(LeaderState {
            progress,
            heartbeat_elapsed: 0,
            uncommitted_bytes: 0,
            match_scratch: Vec::with_capacity(self.voters.len()),
            reads: LeaderReads::default(),
        }));
        // §5.4.2 / §8: a no-op of the new term lets earlier entries commit.
        let noop = Entry { term: self.term, index: last_index.next(), payload: Payload::Noop };
        self.log.append([noop.clone()]);
        self.persist_log_change(Persist::Append(vec![noop]));
        self.maybe_commit();
        self.broadcast_append();
    }

    /// Becomes leader if a majority has granted its vote, follower if a majority refused.
    fn maybe_win_election(&mut self) {
        let RoleState::Candidate { votes } = &self.role else { return };
        match tally_votes(&self.voters, votes) {
            VoteResult::Won => self.become_leader(),
            VoteResult::Lost => self.become_follower(self.term, None),
            VoteResult::Pending => {}
        }
    }

    /// Answers a request from an older term so its sender learns the newer term (§5.1);
    /// drops stale responses.
    pub(super) fn on_stale_term(&mut self, from: NodeId, message: &Message<T>) {
        let term = self.term;
        match message {
            Message::RequestVote(_) => self.send(
                from,
                Message::RequestVoteResponse(RequestVoteResponse { term, granted: false }),
            ),
            Message::AppendEntries(_) => self.send(
                from,
                Message::AppendEntriesResponse(AppendEntriesResponse {
                    term,
                    outcome: AppendOutcome::StaleTerm,
                }),
            ),
            Message::Heartbeat(heartbeat) => {
                let round = heartbeat.round;
                self.send(from, Message::HeartbeatResponse(HeartbeatResponse { term, round }))
            }
            Message::ReadIndexRequest(request) => {
                let response = ReadIndexResponse { term, id: request.id, index: None };
                self.send(from, Message::ReadIndexResponse(response))
            }
            Message::RequestVoteResponse(_)
            | Message::AppendEntriesResponse(_)
            | Message::HeartbeatResponse(_)
            | Message::ReadIndexResponse(_) => self.stats.ignored_messages += 1,
        }
    }

    pub(super) fn on_request_vote(&mut self, from: NodeId, request: RequestVote) {
        // One vote per term (§5.2); a node that already follows a leader of this term does not
        // help elect another.
        let can_vote = self.voted_for == Some(from)
            || (self.voted_for.is_none()
                && matches!(self.role, RoleState::Follower { leader: None, .. }));
        let granted =
            can_vote && self.log.is_up_to_date(request.last_log_index, request.last_log_term);
        if granted {
            // The vote reaches the hard state, which is persisted before this response leaves.
            self.voted_for = Some(from);
            self.election_elapsed = 0;
        }
        let term = self.term;
        self.send(from, Message::RequestVoteResponse(RequestVoteResponse { term, granted }));
    }

    pub(super) fn on_request_vote_response(&mut self, from: NodeId, response: RequestVoteResponse) {
        let RoleState::Candidate { votes } = &mut self.role else {
            // A late answer to an election already decided.
            self.stats.ignored_messages += 1;
            return;
        };
        if !self.voters.contains(&from) {
            // Only voters count; recording others would let a hostile peer grow the map.
            self.stats.ignored_messages += 1;
            return;
        }
        votes.insert(from, response.granted);
        self.maybe_win_election();
    }
}

/// A timeout drawn uniformly from `[base, 2 · base)`.
fn random_timeout(rng: &mut impl Rng, base: u32) -> u32 {
    // Multiply-shift maps a 64-bit draw onto `0..base` without a division.
    let jitter = ((u128::from(rng.next_u64()) * u128::from(base)) >> 64) as u32;
    base + jitter
}
