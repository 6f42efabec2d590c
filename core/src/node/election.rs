//! Leader election (§5.2, §5.4.1) with PreVote (thesis §9.6) and CheckQuorum: timers, role
//! changes, votes.

use std::collections::BTreeMap;

use rand_core::Rng;

use super::read::LeaderReads;
use super::{LeaderState, Node, RoleState};
use crate::entry::{Command, Entry, Payload};
use crate::error::CampaignError;
use crate::io::Output;
use crate::membership::VoterLists;
use crate::message::{
    AppendEntriesResponse, AppendOutcome, HeartbeatResponse, InstallSnapshotResponse, Message,
    ReadIndexResponse, RequestVote, RequestVoteResponse, SnapshotOutcome,
};
use crate::peer_map::PeerMap;
use crate::progress::Progress;
use crate::quorum::VoteResult;
use crate::stats::IgnoredReason;
use crate::types::{NodeId, Term};

impl<T: Command> Node<T> {
    pub(super) fn on_tick(&mut self) {
        match &mut self.role {
            RoleState::Leader(leader) => {
                leader.reads.tick();
                leader.heartbeat_elapsed += 1;
                if leader.heartbeat_elapsed >= self.config.heartbeat_ticks {
                    leader.heartbeat_elapsed = 0;
                    self.broadcast_heartbeat();
                }
                self.tick_transfer();
                self.expire_leader_reads();
                self.election_elapsed = self.election_elapsed.saturating_add(1);
                if self.election_elapsed >= self.config.election_ticks {
                    self.election_elapsed = 0;
                    self.check_quorum();
                }
            }
            RoleState::Follower { .. }
            | RoleState::PreCandidate { .. }
            | RoleState::Candidate { .. } => {
                self.expire_forwarded_reads();
                self.election_elapsed = self.election_elapsed.saturating_add(1);
                if self.election_elapsed >= self.election_timeout {
                    self.start_election();
                }
            }
        }
    }

    /// An election timeout: ask first with PreVote when enabled, else campaign at once.
    pub(super) fn start_election(&mut self) {
        self.restarted_recently = false;
        if self.config.pre_vote {
            self.become_pre_candidate();
        } else {
            self.become_candidate(false);
        }
    }

    /// `Input::Campaign`: start an election now, through PreVote when it is on (as etcd does),
    /// so that even an operator's campaign cannot disrupt a healthy leader.
    pub(super) fn on_campaign(&mut self) {
        let voters = self.membership.all_voters().count();
        let refused = if matches!(self.role, RoleState::Leader(_)) {
            Some(CampaignError::AlreadyLeader)
        } else if self.membership.is_empty() {
            let (known, min_voters) = (self.known_count(), self.config.min_voters);
            Some(CampaignError::NoConfiguration { known, min_voters })
        } else if !self.membership.is_voter(self.config.id) {
            Some(CampaignError::NotVoter)
        } else if voters < self.config.min_voters {
            Some(CampaignError::TooFewVoters { voters, min_voters: self.config.min_voters })
        } else {
            None
        };
        match refused {
            Some(error) => self.pending.notices.push(Output::CampaignRejected { error }),
            None => self.start_election(),
        }
    }

    /// CheckQuorum: a leader that did not hear from a quorum during the last election timeout
    /// may be on the minority side of a partition; it steps down so that clients go elsewhere.
    fn check_quorum(&mut self) {
        let RoleState::Leader(leader) = &mut self.role else { return };
        let me = self.config.id;
        let heard_from_quorum =
            self.membership.has_quorum(|voter| voter == me || leader.recent_active.contains(voter));
        leader.recent_active.clear();
        if self.config.check_quorum && !heard_from_quorum {
            self.become_follower(self.term, None);
        }
    }

    /// Whether this node heard from a live leader (or is one) within the minimum election
    /// timeout, with CheckQuorum on: vote requests are then ignored (leader stickiness).
    ///
    /// With lease reads on, a node that just restarted counts as having heard from a leader
    /// until its first election timeout: before the crash it may have acknowledged a heartbeat
    /// that some leader's lease relies on, and forgetting that would let it help elect another
    /// leader inside the lease.
    pub(super) fn is_in_leader_lease(&self) -> bool {
        let knows_leader = match self.role {
            RoleState::Follower { leader, .. } => leader.is_some() || self.restarted_recently,
            RoleState::Leader(_) => true,
            RoleState::PreCandidate { .. } | RoleState::Candidate { .. } => false,
        };
        self.config.check_quorum
            && knows_leader
            && self.election_elapsed < self.config.election_ticks
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
        self.change_role(RoleState::Follower {
            leader,
            forwarded_reads: Vec::new(),
            incoming_snapshot: None,
        });
        self.reset_election_timer();
    }

    /// PreVote: ask for votes for the next term without moving to it, so that a node that
    /// cannot win (cut off, or behind) never bumps the cluster's term.
    fn become_pre_candidate(&mut self) {
        if !self.may_campaign() {
            return;
        }
        let Some(next_term) = self.term.next() else { return };
        self.change_role(RoleState::PreCandidate {
            votes: BTreeMap::from([(self.config.id, true)]),
        });
        self.reset_election_timer();
        let request = self.vote_request(next_term, false);
        for peer in self.peer_voters() {
            self.send(peer, Message::PreVote(request));
        }
        self.maybe_win_pre_vote();
    }

    pub(super) fn become_candidate(&mut self, transfer: bool) {
        if !self.may_campaign() {
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
        let request = self.vote_request(term, transfer);
        for peer in self.peer_voters() {
            self.send(peer, Message::RequestVote(request));
        }
        self.maybe_win_election();
    }

    fn vote_request(&self, term: Term, transfer: bool) -> RequestVote {
        RequestVote {
            term,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
            transfer,
        }
    }

    fn peer_voters(&self) -> Vec<NodeId> {
        self.membership.all_voters().filter(|&voter| voter != self.config.id).collect()
    }

    fn become_leader(&mut self) {
        let last_index = self.log.last_index();
        // Every member but this node gets the log: voters of both halves and learners.
        let progress = self
            .membership
            .members()
            .into_iter()
            .filter(|&member| member != self.config.id)
            .map(|member| (member, Progress::new(last_index)))
            .collect();
        self.change_role(RoleState::Leader(Box::new(LeaderState {
            progress,
            heartbeat_elapsed: 0,
            uncommitted_bytes: 0,
            match_scratch: Vec::new(),
            voter_lists: VoterLists::of(&self.membership),
            reads: LeaderReads::default(),
            recent_active: PeerMap::default(),
            transfer: None,
            snapshot_attempts: 0,
        })));
        self.election_elapsed = 0;
        // §5.4.2 / §8: a no-op of the new term lets earlier entries commit.
        let noop = Entry { term: self.term, index: last_index.next(), payload: Payload::noop() };
        self.log.append([noop.clone()]);
        self.persist_leader_append(vec![noop]);
        self.maybe_commit();
        self.broadcast_append();
    }

    /// Becomes leader if a majority has granted its vote, follower if a majority refused.
    fn maybe_win_election(&mut self) {
        let RoleState::Candidate { votes } = &self.role else { return };
        match self.membership.vote_result(votes) {
            VoteResult::Won => self.become_leader(),
            VoteResult::Lost => self.become_follower(self.term, None),
            VoteResult::Pending => {}
        }
    }

    /// Starts the real election once a majority granted the pre-vote.
    fn maybe_win_pre_vote(&mut self) {
        let RoleState::PreCandidate { votes } = &self.role else { return };
        match self.membership.vote_result(votes) {
            VoteResult::Won => self.become_candidate(false),
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
            Message::InstallSnapshot(chunk) => {
                let response = InstallSnapshotResponse {
                    term,
                    snapshot_index: chunk.meta.index,
                    attempt: chunk.attempt,
                    outcome: SnapshotOutcome::Refused,
                };
                self.send(from, Message::InstallSnapshotResponse(response))
            }
            Message::RequestVoteResponse(_)
            | Message::PreVote(_)
            | Message::PreVoteResponse(_)
            | Message::AppendEntriesResponse(_)
            | Message::HeartbeatResponse(_)
            | Message::ReadIndexResponse(_)
            | Message::InstallSnapshotResponse(_)
            | Message::TimeoutNow(_) => self.stats.ignore(IgnoredReason::StaleTerm),
        }
    }

    pub(super) fn on_request_vote(&mut self, from: NodeId, request: RequestVote) {
        // One vote per term (§5.2); a node that already follows a leader of this term does not
        // help elect another.
        let can_vote = self.voted_for == Some(from)
            || (self.voted_for.is_none()
                && matches!(
                    self.role,
                    RoleState::Follower { leader: None, .. } | RoleState::PreCandidate { .. }
                ));
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
            self.stats.ignore(IgnoredReason::UnexpectedInRole);
            return;
        };
        if !self.membership.is_voter(from) {
            // Only voters count; recording others would let a hostile peer grow the map.
            self.stats.ignore(IgnoredReason::NotMember);
            return;
        }
        votes.insert(from, response.granted);
        self.maybe_win_election();
    }

    /// Answers a pre-vote without changing any state: granted when the asker's log is
    /// up to date, its proposed term is ahead of ours, and no live leader is known here. A
    /// refusal carries our term, so an asker stranded at a lower term catches up.
    pub(super) fn on_pre_vote(&mut self, from: NodeId, request: RequestVote) {
        let granted = request.term > self.term
            && (request.transfer || !self.is_in_leader_lease())
            && self.log.is_up_to_date(request.last_log_index, request.last_log_term);
        let term = if granted { request.term } else { self.term };
        self.send(from, Message::PreVoteResponse(RequestVoteResponse { term, granted }));
    }

    pub(super) fn on_pre_vote_response(&mut self, from: NodeId, response: RequestVoteResponse) {
        if !response.granted && response.term > self.term {
            // The responder is ahead: catch up with its term rather than keep asking.
            self.become_follower(response.term, None);
            return;
        }
        let expected = if response.granted { self.term.next() } else { Some(self.term) };
        let RoleState::PreCandidate { votes } = &mut self.role else {
            self.stats.ignore(IgnoredReason::UnexpectedInRole);
            return;
        };
        if !self.membership.is_voter(from) {
            self.stats.ignore(IgnoredReason::NotMember);
            return;
        }
        if Some(response.term) != expected {
            // An answer to an earlier pre-vote round.
            self.stats.ignore(IgnoredReason::Outdated);
            return;
        }
        votes.insert(from, response.granted);
        self.maybe_win_pre_vote();
    }
}

/// A timeout drawn uniformly from `[base, 2 · base)`.
fn random_timeout(rng: &mut impl Rng, base: u32) -> u32 {
    // Multiply-shift maps a 64-bit draw onto `0..base` without a division.
    let jitter = ((u128::from(rng.next_u64()) * u128::from(base)) >> 64) as u32;
    base + jitter
}
