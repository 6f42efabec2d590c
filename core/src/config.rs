//! Node configuration, validated once at construction.

use crate::error::ConfigError;
use crate::membership::Membership;
use crate::types::NodeId;

/// How one node behaves: who it is, who votes, its timers and its limits.
///
/// Time is counted in ticks ([`Input::Tick`](crate::Input::Tick)); the IO layer decides how long
/// a tick lasts in real time. Every limit lives here and is checked by [`Config::validate`],
/// which [`Node::new`](crate::Node::new) calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// This node's id.
    pub id: NodeId,
    /// The initial voters (used until a configuration entry is in the log). Empty for a node
    /// that joins an existing cluster: it stays passive — never campaigns — until it learns
    /// the configuration from a leader.
    pub voters: Vec<NodeId>,
    /// The initial learners: members that receive the log but do not vote.
    pub learners: Vec<NodeId>,
    /// No election starts while the configuration has fewer voters than this.
    pub min_voters: usize,
    /// Membership changes that would make more voters than this are refused, and so is an
    /// initial configuration with more.
    pub max_voters: usize,
    /// This node forms its cluster from nothing (see the crate docs on bootstrap): started with
    /// no voters, it writes the cluster's first configuration — itself and the nodes announced
    /// to it with [`Input::AddNode`](crate::Input::AddNode) — once they make `min_voters`, and
    /// campaigns. Give it to exactly one node of a cluster, once in the cluster's life; every
    /// other node starts with no voters either and waits for the founder's leader.
    pub founder: bool,
    /// Leave a joint configuration automatically once it is committed.
    pub auto_leave_joint: bool,
    /// The minimum election timeout: a follower that hears from no leader for a random number
    /// of ticks in `[election_ticks, 2 · election_ticks)` starts an election (§5.2).
    pub election_ticks: u32,
    /// A leader sends heartbeats every `heartbeat_ticks`; must be below `election_ticks`.
    pub heartbeat_ticks: u32,
    /// Most entries carried by one AppendEntries.
    pub entries_per_message_max: usize,
    /// Most command bytes carried by one AppendEntries. A single entry larger than this is
    /// still sent, alone, so that it can make progress.
    pub bytes_per_message_max: usize,
    /// Most AppendEntries with entries in flight to one follower before the leader waits for
    /// acknowledgements (flow control).
    pub in_flight_messages_max: usize,
    /// Most command bytes the leader holds uncommitted; proposals beyond are refused with
    /// [`ProposeError::TooManyUncommittedBytes`](crate::ProposeError::TooManyUncommittedBytes).
    pub uncommitted_bytes_max: u64,
    /// PreVote (thesis §9.6): a node whose election timer fires first asks whether it could
    /// win, and only then bumps its term — so a node that was cut off cannot disrupt a healthy
    /// leader when it rejoins.
    pub pre_vote: bool,
    /// CheckQuorum: a leader that has not heard from a quorum within an election timeout steps
    /// down, and a node that heard from a leader within the minimum election timeout ignores
    /// vote requests (except a leadership transfer's).
    pub check_quorum: bool,
    /// Serve reads under a leader lease, without a heartbeat round, while a quorum
    /// acknowledged a heartbeat sent within the last `election_ticks - lease_margin_ticks`
    /// ticks. Requires `check_quorum`. Safe only under a clock assumption: see
    /// [`Input::ReadIndex`](crate::Input::ReadIndex) and the crate docs on lease reads.
    ///
    /// The runtime's part of the contract: measure time on a monotonic clock, and before
    /// stepping any input after the node could not run (a paused process, a blocked storage
    /// write, a busy scheduler), step one [`Input::Tick`](crate::Input::Tick) for every tick
    /// period that elapsed. A runtime that hands out missed ticks lazily, between other
    /// inputs, lets a leader answer reads queued during the stall from a lease that has ended.
    pub lease_reads: bool,
    /// Ticks of clock drift the lease tolerates over one election timeout.
    pub lease_margin_ticks: u32,
    /// Parallel leader writes (thesis §10.2.1): a leader's own appends come out as
    /// [`Output::PersistAsync`](crate::Output::PersistAsync), which may complete after the
    /// sends that follow them; the leader counts its own copy toward commitment only once the
    /// runtime reports it durable with [`Input::Persisted`](crate::Input::Persisted).
    pub leader_persist_acks: bool,
    /// Most snapshot bytes carried by one InstallSnapshot chunk: a snapshot is sent in pieces
    /// so that no message is unbounded.
    pub snapshot_chunk_bytes: usize,
    /// Entries kept in the log before a snapshot's index when the application reports the
    /// snapshot: a follower that lags by less than this catches up with entries rather than a
    /// whole snapshot.
    pub compaction_tail_entries: u64,
    /// Seed of the node's private random stream (election timeout jitter). Give each node a
    /// different seed; the same seed and inputs always give the same behaviour.
    pub rng_seed: u64,
}

impl Config {
    /// A configuration with the default timers and limits: elections after 10–19 ticks,
    /// heartbeats every tick, 1024 entries or 1 MiB per message, 256 messages in flight,
    /// 64 MiB uncommitted, PreVote and CheckQuorum on, snapshots sent in 256 KiB chunks with a
    /// tail of 128 entries kept at compaction. The RNG seed is derived from the id.
    pub fn new(id: NodeId, voters: impl IntoIterator<Item = NodeId>) -> Config {
        Config {
            id,
            voters: voters.into_iter().collect(),
            learners: Vec::new(),
            min_voters: 1,
            max_voters: usize::MAX,
            founder: false,
            auto_leave_joint: true,
            election_ticks: 10,
            heartbeat_ticks: 1,
            entries_per_message_max: 1024,
            bytes_per_message_max: 1 << 20,
            in_flight_messages_max: 256,
            uncommitted_bytes_max: 64 << 20,
            pre_vote: true,
            check_quorum: true,
            lease_reads: false,
            lease_margin_ticks: 2,
            leader_persist_acks: false,
            snapshot_chunk_bytes: 256 << 10,
            compaction_tail_entries: 128,
            rng_seed: id.0,
        }
    }

    /// Checks every value.
    ///
    /// # Errors
    /// The first [`ConfigError`] found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.election_ticks == 0 {
            return Err(ConfigError::ZeroElectionTicks);
        }
        if self.election_ticks.checked_mul(2).is_none() {
            return Err(ConfigError::ElectionTicksTooLarge(self.election_ticks));
        }
        if self.heartbeat_ticks == 0 {
            return Err(ConfigError::ZeroHeartbeatTicks);
        }
        if self.heartbeat_ticks >= self.election_ticks {
            return Err(ConfigError::HeartbeatNotBelowElection {
                heartbeat_ticks: self.heartbeat_ticks,
                election_ticks: self.election_ticks,
            });
        }
        let initial = self.initial_membership()?;
        if self.founder && (!self.voters.is_empty() || !self.learners.is_empty()) {
            return Err(ConfigError::FounderWithMembers);
        }
        if self.min_voters == 0 || self.max_voters < self.min_voters {
            return Err(ConfigError::BadVoterLimits {
                min_voters: self.min_voters,
                max_voters: self.max_voters,
            });
        }
        if initial.voters.len() > self.max_voters {
            let voters = initial.voters.len();
            return Err(ConfigError::TooManyVoters { voters, max_voters: self.max_voters });
        }
        if self.entries_per_message_max == 0 {
            return Err(ConfigError::ZeroEntriesPerMessage);
        }
        if self.bytes_per_message_max == 0 {
            return Err(ConfigError::ZeroBytesPerMessage);
        }
        if self.in_flight_messages_max == 0 {
            return Err(ConfigError::ZeroInFlightMessages);
        }
        if self.uncommitted_bytes_max == 0 {
            return Err(ConfigError::ZeroUncommittedBytes);
        }
        if self.snapshot_chunk_bytes == 0 {
            return Err(ConfigError::ZeroSnapshotChunkBytes);
        }
        if self.lease_reads && !self.check_quorum {
            return Err(ConfigError::LeaseNeedsCheckQuorum);
        }
        if self.lease_reads && self.lease_margin_ticks >= self.election_ticks {
            return Err(ConfigError::LeaseMarginTooLarge {
                lease_margin_ticks: self.lease_margin_ticks,
                election_ticks: self.election_ticks,
            });
        }
        Ok(())
    }

    /// The initial configuration, after checking the lists.
    pub(crate) fn initial_membership(&self) -> Result<Membership, ConfigError> {
        let mut membership = Membership::default();
        for &voter in &self.voters {
            if !membership.voters.insert(voter) {
                return Err(ConfigError::DuplicateMember(voter));
            }
        }
        for &learner in &self.learners {
            if membership.voters.contains(&learner) || !membership.learners.insert(learner) {
                return Err(ConfigError::DuplicateMember(learner));
            }
        }
        Ok(membership)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Config {
        Config::new(NodeId(1), [NodeId(1), NodeId(2), NodeId(3)])
    }

    #[test]
    fn default_config_is_valid() {
        assert_eq!(base().validate(), Ok(()));
    }

    #[test]
    fn equal_voter_limits_are_valid() {
        let mut config = base();
        config.min_voters = 3;
        config.max_voters = 3;
        assert_eq!(config.validate(), Ok(()), "a cluster of exactly three voters");
    }

    #[test]
    fn a_founder_starts_knowing_nobody() {
        let mut config = Config::new(NodeId(1), []);
        config.founder = true;
        config.min_voters = 3;
        assert_eq!(config.validate(), Ok(()));
        config.learners.push(NodeId(2));
        assert_eq!(config.validate(), Err(ConfigError::FounderWithMembers));
    }

    #[test]
    fn every_bad_value_has_its_own_error() {
        type Mutation = fn(&mut Config);
        let cases: Vec<(Mutation, ConfigError)> = vec![
            (|c| c.election_ticks = 0, ConfigError::ZeroElectionTicks),
            (|c| c.election_ticks = u32::MAX, ConfigError::ElectionTicksTooLarge(u32::MAX)),
            (|c| c.heartbeat_ticks = 0, ConfigError::ZeroHeartbeatTicks),
            (
                |c| c.heartbeat_ticks = 10,
                ConfigError::HeartbeatNotBelowElection { heartbeat_ticks: 10, election_ticks: 10 },
            ),
            (
                |c| c.heartbeat_ticks = 20,
                ConfigError::HeartbeatNotBelowElection { heartbeat_ticks: 20, election_ticks: 10 },
            ),
            (|c| c.voters.push(NodeId(2)), ConfigError::DuplicateMember(NodeId(2))),
            (|c| c.learners.push(NodeId(3)), ConfigError::DuplicateMember(NodeId(3))),
            (
                |c| c.min_voters = 0,
                ConfigError::BadVoterLimits { min_voters: 0, max_voters: usize::MAX },
            ),
            (
                |c| {
                    c.min_voters = 3;
                    c.max_voters = 2;
                },
                ConfigError::BadVoterLimits { min_voters: 3, max_voters: 2 },
            ),
            (|c| c.founder = true, ConfigError::FounderWithMembers),
            (|c| c.entries_per_message_max = 0, ConfigError::ZeroEntriesPerMessage),
            (|c| c.bytes_per_message_max = 0, ConfigError::ZeroBytesPerMessage),
            (|c| c.in_flight_messages_max = 0, ConfigError::ZeroInFlightMessages),
            (|c| c.uncommitted_bytes_max = 0, ConfigError::ZeroUncommittedBytes),
            (|c| c.snapshot_chunk_bytes = 0, ConfigError::ZeroSnapshotChunkBytes),
            (
                |c| {
                    c.lease_reads = true;
                    c.check_quorum = false;
                },
                ConfigError::LeaseNeedsCheckQuorum,
            ),
            (
                |c| {
                    c.lease_reads = true;
                    c.lease_margin_ticks = 10;
                },
                ConfigError::LeaseMarginTooLarge { lease_margin_ticks: 10, election_ticks: 10 },
            ),
        ];
        for (mutate, expected) in cases {
            let mut config = base();
            mutate(&mut config);
            assert_eq!(config.validate(), Err(expected));
        }
    }
}
