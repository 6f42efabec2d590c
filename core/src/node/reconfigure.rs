//! Membership changes (thesis chapter 4): configurations travel in the log and take effect
//! when *appended* — not when committed — so a node always uses the latest configuration in
//! its log, and reverts to the previous one if that entry is truncated away (§4.1).

use super::{Node, RoleState};
use crate::entry::{Command, Entry, Payload};
use crate::error::{MembershipError, ProposeError};
use crate::io::Output;
use crate::membership::{Membership, MembershipChange, VoterLists};
use crate::progress::Progress;
use crate::types::LogIndex;
use crate::ProposalId;

impl<T: Command> Node<T> {
    pub(super) fn on_change_membership(&mut self, id: ProposalId, change: MembershipChange) {
        match self.try_change_membership(&change) {
            Ok(index) => {
                self.pending.notices.push(Output::Accepted {
                    proposal: id,
                    first: index,
                    last: index,
                    term: self.term,
                });
                self.maybe_commit();
                self.broadcast_append();
            }
            Err(error) => self.pending.notices.push(Output::Rejected { proposal: id, error }),
        }
    }

    pub(super) fn try_change_membership(
        &mut self,
        change: &MembershipChange,
    ) -> Result<LogIndex, ProposeError> {
        let (term, leader_hint) = (self.term, self.leader());
        let RoleState::Leader(leader) = &self.role else {
            return Err(ProposeError::NotLeader { leader: leader_hint, term });
        };
        if let Some(transfer) = leader.transfer {
            return Err(ProposeError::TransferInProgress { target: transfer.target });
        }
        if self.log.term(self.commit) != Ok(self.term) {
            // Until it commits an entry of its term, a new leader may not hold the latest
            // configuration: changing it then is the 2015 single-server change bug.
            return Err(MembershipError::LeaderNotReady.into());
        }
        if self.membership_index > self.commit {
            return Err(MembershipError::ChangeInProgress { index: self.membership_index }.into());
        }
        let next = self.membership.apply(change, self.config.max_voters)?;
        Ok(self.append_membership(next))
    }

    /// Appends a configuration entry on the leader; it takes effect at once.
    fn append_membership(&mut self, membership: Membership) -> LogIndex {
        let index = self.log.last_index().next();
        let entry =
            Entry { term: self.term, index, payload: Payload::configuration(membership.clone()) };
        self.persist_leader_append(vec![entry.clone()]);
        self.log.append([entry]);
        self.set_membership(membership, index);
        index
    }

    /// Adopts the latest configuration among newly appended `entries`, if any.
    pub(super) fn adopt_appended_membership(&mut self, entries: &[Entry<T>]) {
        let latest = entries
            .iter()
            .rev()
            .find_map(|entry| Some((entry.payload.membership()?.clone(), entry.index)));
        if let Some((membership, index)) = latest {
            self.set_membership(membership, index);
        }
    }

    /// Recomputes the configuration from the log: the latest configuration entry it holds,
    /// else the snapshot's, else the initial one. Used after a restart, a truncation and a
    /// snapshot install.
    pub(super) fn refresh_membership_from_log(&mut self) {
        let latest = self
            .log_entries()
            .iter()
            .rev()
            .find_map(|entry| Some((entry.payload.membership()?.clone(), entry.index)));
        let (membership, index) = latest.unwrap_or_else(|| match &self.snapshot {
            // The snapshot's configuration is committed, so the snapshot's index is as good
            // as its entry's for every check (`membership_index <= commit`).
            Some(snapshot) => (Membership::clone(&snapshot.meta.membership), snapshot.meta.index),
            None => (self.initial_membership.clone(), LogIndex(0)),
        });
        self.set_membership(membership, index);
    }

    pub(super) fn set_membership(&mut self, membership: Membership, index: LogIndex) {
        self.membership = membership;
        self.membership_index = index;
        self.sync_progress();
    }

    /// Gives a leader a progress entry for every member but itself, and no other.
    fn sync_progress(&mut self) {
        let last_index = self.log.last_index();
        let members = self.membership.members();
        let me = self.config.id;
        let RoleState::Leader(leader) = &mut self.role else { return };
        leader.voter_lists = VoterLists::of(&self.membership);
        leader.progress.retain(|peer, _| members.contains(&peer));
        for &member in members.iter().filter(|&&member| member != me) {
            leader.progress.get_or_insert_with(member, || Progress::new(last_index));
        }
    }

    /// What a leader does once its latest configuration is committed: step down if it is no
    /// longer a voter (§4.2.2), or leave a joint configuration (§4.3).
    pub(super) fn after_membership_commit(&mut self) {
        if !matches!(self.role, RoleState::Leader(_)) || self.commit < self.membership_index {
            return;
        }
        if !self.membership.is_voter(self.config.id) {
            self.become_follower(self.term, None);
        } else if self.membership.is_joint() && self.config.auto_leave_joint {
            let left = Membership { outgoing: Default::default(), ..self.membership.clone() };
            self.append_membership(left);
            self.maybe_commit();
            self.broadcast_append();
        }
    }

    /// Whether this node may start an election: a voter of a configuration with at least
    /// `min_voters` voters.
    pub(super) fn may_campaign(&self) -> bool {
        self.membership.is_voter(self.config.id)
            && self.membership.all_voters().count() >= self.config.min_voters
    }
}
