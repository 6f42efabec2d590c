//! What an election node is told at start: who it is, whether it founds the group, the group's
//! voter limits, and its timers.

use std::time::Duration;

use stepraft::{Config, NodeId};

/// The shortest tick: a shorter one is taken as this, so that a zero tick cannot make the
/// node spin.
pub const TICK_MIN: Duration = Duration::from_millis(1);

/// How one election node behaves. [`ElectionConfig::new`] gives the defaults; set the fields
/// that differ, then pass it to [`start`](super::start), which checks it with
/// [`Config::validate`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ElectionConfig {
    /// This node's id, unique in the group and never reused (see the module documentation:
    /// a restarted process joins under a new id).
    pub id: NodeId,
    /// This node forms the group: once it knows `min_voters` nodes (itself included) it
    /// writes the first configuration and campaigns. Exactly one node of a group, once in
    /// the group's life ([`Config::founder`]).
    pub founder: bool,
    /// No election starts while the configuration has fewer voters than this, and a voter
    /// announced as departed is removed only while this many remain ([`Config::min_voters`]).
    pub min_voters: usize,
    /// Announced nodes become voters while there are fewer than this; the others follow the
    /// leader as learners, which hear of every leadership change but do not vote
    /// ([`Config::max_voters`]). A large group elects faster with a few voters (5, say).
    pub max_voters: usize,
    /// The real length of one logical tick (at least [`TICK_MIN`]).
    pub tick: Duration,
    /// A follower that hears from no leader for a random number of ticks in
    /// `[election_ticks, 2 · election_ticks)` starts an election ([`Config::election_ticks`]).
    pub election_ticks: u32,
    /// A leader sends heartbeats every this many ticks; below `election_ticks`
    /// ([`Config::heartbeat_ticks`]).
    pub heartbeat_ticks: u32,
}

impl ElectionConfig {
    /// The defaults: not the founder, `min_voters` 1, no `max_voters`, 50 ms ticks, elections
    /// after 10–19 ticks (0.5–1 s without a leader), heartbeats every tick.
    pub fn new(id: NodeId) -> ElectionConfig {
        let core = Config::new(id, []);
        ElectionConfig {
            id,
            founder: false,
            min_voters: core.min_voters,
            max_voters: core.max_voters,
            tick: Duration::from_millis(50),
            election_ticks: core.election_ticks,
            heartbeat_ticks: core.heartbeat_ticks,
        }
    }

    /// The tick period the node runs on.
    pub(super) fn tick_period(&self) -> Duration {
        self.tick.max(TICK_MIN)
    }

    /// The core's configuration: a node that starts knowing nobody, with PreVote and
    /// CheckQuorum on (the core's defaults), so that a node cut off and back cannot depose a
    /// healthy leader, and a leader cut off from its voters steps down.
    pub(super) fn core_config(&self) -> Config {
        let mut config = Config::new(self.id, []);
        config.founder = self.founder;
        config.min_voters = self.min_voters;
        config.max_voters = self.max_voters;
        config.election_ticks = self.election_ticks;
        config.heartbeat_ticks = self.heartbeat_ticks;
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_make_a_valid_core_config_of_a_node_that_knows_nobody() {
        let config = ElectionConfig::new(NodeId(7)).core_config();
        assert_eq!(config.validate(), Ok(()));
        assert!(config.voters.is_empty() && config.learners.is_empty());
        assert!(config.pre_vote && config.check_quorum && !config.leader_persist_acks);
    }

    #[test]
    fn every_field_reaches_the_core_config() {
        let mut election = ElectionConfig::new(NodeId(7));
        election.founder = true;
        election.min_voters = 3;
        election.max_voters = 5;
        election.election_ticks = 20;
        election.heartbeat_ticks = 4;
        let config = election.core_config();
        assert_eq!(config.id, NodeId(7));
        assert!(config.founder);
        assert_eq!((config.min_voters, config.max_voters), (3, 5));
        assert_eq!((config.election_ticks, config.heartbeat_ticks), (20, 4));
    }

    #[test]
    fn a_zero_tick_is_taken_as_the_minimum() {
        let mut election = ElectionConfig::new(NodeId(7));
        election.tick = Duration::ZERO;
        assert_eq!(election.tick_period(), TICK_MIN);
        election.tick = Duration::from_millis(20);
        assert_eq!(election.tick_period(), Duration::from_millis(20));
    }
}
