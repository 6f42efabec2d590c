//! Leadership transfer (thesis §3.10): the leader brings the target up to date, then tells it
//! to campaign at once with `TimeoutNow`; the target's election carries a transfer flag so that
//! voters grant it despite having heard from the leader recently.

use super::{Node, RoleState};
use crate::entry::Command;
use crate::error::TransferError;
use crate::io::Output;
use crate::message::{Message, TimeoutNow};
use crate::stats::IgnoredReason;
use crate::types::NodeId;

/// A transfer in progress.
#[derive(Clone, Copy, Debug)]
pub(super) struct Transfer {
    /// Who should lead next.
    pub(super) target: NodeId,
    /// Ticks since the transfer began; it is abandoned after an election timeout.
    elapsed: u32,
}

impl<T: Command> Node<T> {
    pub(super) fn on_transfer_leadership(&mut self, target: NodeId) {
        let leader_hint = self.leader();
        let error = match &self.role {
            RoleState::Leader(_) if target == self.config.id => Some(TransferError::AlreadyLeader),
            RoleState::Leader(_) if !self.membership.is_voter(target) => {
                Some(TransferError::NotAVoter(target))
            }
            RoleState::Leader(leader) => match leader.transfer {
                Some(transfer) if transfer.target == target => return, // already under way
                Some(transfer) => Some(TransferError::InProgress { target: transfer.target }),
                None => None,
            },
            RoleState::Follower { .. }
            | RoleState::PreCandidate { .. }
            | RoleState::Candidate { .. } => Some(TransferError::NotLeader { leader: leader_hint }),
        };
        if let Some(error) = error {
            self.pending.notices.push(Output::TransferRejected { target, error });
            return;
        }
        if let RoleState::Leader(leader) = &mut self.role {
            leader.transfer = Some(Transfer { target, elapsed: 0 });
        }
        self.maybe_send_timeout_now(target);
    }

    /// Sends `TimeoutNow` once the transfer target holds the leader's whole log; otherwise
    /// keeps replicating to it.
    pub(super) fn maybe_send_timeout_now(&mut self, peer: NodeId) {
        let last_index = self.log.last_index();
        let RoleState::Leader(leader) = &self.role else { return };
        if leader.transfer.is_none_or(|transfer| transfer.target != peer) {
            return;
        }
        let caught_up =
            leader.progress.get(peer).is_some_and(|progress| progress.match_index() == last_index);
        if caught_up {
            if let RoleState::Leader(leader) = &mut self.role {
                leader.reads.revoke_lease();
            }
            let term = self.term;
            self.send(peer, Message::TimeoutNow(TimeoutNow { term }));
        } else {
            self.send_append(peer, true);
        }
    }

    /// Abandons a transfer that has not completed within an election timeout.
    pub(super) fn tick_transfer(&mut self) {
        let RoleState::Leader(leader) = &mut self.role else { return };
        if let Some(transfer) = &mut leader.transfer {
            transfer.elapsed += 1;
            if transfer.elapsed >= self.config.election_ticks {
                leader.transfer = None;
            }
        }
    }

    pub(super) fn on_timeout_now(&mut self, from: NodeId) {
        match self.role {
            RoleState::Follower { leader, .. } if leader == Some(from) || leader.is_none() => {
                self.become_candidate(true)
            }
            RoleState::PreCandidate { .. } => self.become_candidate(true),
            // Another node claims to lead the term this node follows a leader of.
            RoleState::Follower { .. } => self.stats.ignore(IgnoredReason::NotFromLeader),
            RoleState::Candidate { .. } | RoleState::Leader(_) => {
                self.stats.ignore(IgnoredReason::UnexpectedInRole)
            }
        }
    }
}
