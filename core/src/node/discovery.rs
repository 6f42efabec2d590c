//! Forming a cluster from nodes that start knowing nobody, and growing it as nodes are
//! announced: the founder's bootstrap and the leader's reconciliation of announced nodes with
//! the configuration.
//!
//! # Why bootstrap is safe
//! Only a node configured as [`Config::founder`](crate::Config::founder) ever writes a
//! configuration that no leader replicated to it, and it does so only with an empty log at
//! term 0, as the entry `(index 1, term 0)`, persisted before any message that depends on it
//! leaves. Every other node starts with no configuration, so it can vote but never campaign
//! until a leader of the founder's configuration replicates the log to it. Hence a cluster
//! has exactly one first configuration, every later one descends from it through the log's
//! ordinary single-server changes, and Raft's own arguments (one vote per term, quorum
//! overlap of consecutive configurations) rule out two leaders of one term and two clusters.
//! What the application guarantees: one founder per cluster, once in its life (a founder
//! whose disk was wiped must not found again under its id), and node ids that are unique.

use super::{Node, RoleState};
use crate::entry::{Command, Entry, Payload};
use crate::membership::{Membership, MembershipChange};
use crate::types::{LogIndex, NodeId, Term};

impl<T: Command> Node<T> {
    pub(super) fn on_add_node(&mut self, id: NodeId) {
        if id == self.config.id {
            return;
        }
        self.departed.remove(&id);
        self.known.insert(id);
        self.maybe_bootstrap();
    }

    pub(super) fn on_remove_node(&mut self, id: NodeId) {
        self.known.remove(&id);
        self.departed.insert(id);
    }

    /// The number of nodes this node knows of, itself included.
    pub(super) fn known_count(&self) -> usize {
        self.known.len() + 1
    }

    /// The founder writes the first configuration once enough nodes are known: itself and the
    /// lowest announced ids up to `max_voters` as voters, any others as learners.
    pub(super) fn maybe_bootstrap(&mut self) {
        if !self.config.founder {
            return;
        }
        let pristine = self.term == Term(0)
            && self.log.last_index() == LogIndex(0)
            && self.snapshot.is_none()
            && self.membership.is_empty();
        if !pristine || self.known_count() < self.config.min_voters {
            return;
        }
        let mut membership = Membership::with_voters([self.config.id]);
        for &id in &self.known {
            if membership.voters.len() < self.config.max_voters {
                membership.voters.insert(id);
            } else {
                membership.learners.insert(id);
            }
        }
        let index = LogIndex(1);
        let entry =
            Entry { term: Term(0), index, payload: Payload::configuration(membership.clone()) };
        // Synchronous, not a leader's background append: durable before the campaign's sends.
        self.persist_log_change(crate::io::Persist::Append(vec![entry.clone()]));
        self.log.append([entry]);
        self.set_membership(membership, index);
        self.stats.bootstraps += 1;
        // The minimum is reached: elect now rather than after a timeout.
        self.start_election();
    }

    /// On a leader, one membership change toward the announced nodes, when one is due and the
    /// configuration may change: remove a departed member (a voter only above `min_voters`),
    /// else add an announced non-member as a learner, else promote an announced learner that
    /// has caught up while voters are fewer than `max_voters`.
    pub(super) fn reconcile_announced(&mut self) {
        let RoleState::Leader(leader) = &self.role else { return };
        if (self.known.is_empty() && self.departed.is_empty())
            || leader.transfer.is_some()
            || self.membership_index > self.commit
            || self.membership.is_joint()
            || self.log.term(self.commit) != Ok(self.term)
        {
            return;
        }
        let membership = &self.membership;
        let voters = membership.all_voters().count();
        let removal = self.departed.iter().copied().find(|&id| {
            membership.learners.contains(&id)
                || (membership.is_voter(id) && voters > self.config.min_voters)
        });
        let addition = || self.known.iter().copied().find(|&id| !membership.is_member(id));
        let caught_up = |id| {
            membership.learners.contains(&id)
                && leader.progress.get(id).is_some_and(|p| p.match_index() >= self.commit)
        };
        let promotion = || match voters < self.config.max_voters {
            true => self.known.iter().copied().find(|&id| caught_up(id)),
            false => None,
        };
        // Each search only when the ones before it found nothing.
        let change = removal
            .map(MembershipChange::RemoveNode)
            .or_else(|| addition().map(MembershipChange::AddLearner))
            .or_else(|| promotion().map(MembershipChange::PromoteLearner));
        let Some(change) = change else { return };
        if self.try_change_membership(&change).is_ok() {
            self.stats.announced_changes += 1;
            self.maybe_commit();
            self.broadcast_append();
        }
    }
}
