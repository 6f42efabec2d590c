//! Per-follower replication state on the leader and its transitions (flow control).
//!
//! A follower is either being **probed** — the leader does not know where their logs agree,
//! sends one AppendEntries and waits for its answer — or being **replicated** to — the leader
//! knows the match point and streams entries optimistically, up to `in_flight_messages_max`
//! unacknowledged messages.

use std::collections::VecDeque;

use crate::message::ConflictHint;
use crate::types::{LogIndex, Term};

/// How the leader is currently sending to one follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplicationState {
    /// Searching for the point where the logs agree, one message at a time.
    Probe,
    /// Streaming entries after a known match point.
    Replicate,
}

/// What the leader knows about one follower's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The highest index known to be replicated on the follower.
    /// invariant: `match_index < next_index`.
    match_index: LogIndex,
    /// The index of the next entry to send.
    next_index: LogIndex,
    /// In probe state: whether a probe is outstanding.
    probe_sent: bool,
    /// In replicate state: the last index of each unacknowledged AppendEntries, ascending.
    in_flight: VecDeque<LogIndex>,
    state: ReplicationState,
}

impl Progress {
    /// A follower about which nothing is known, when the leader's log ends at `last_index`.
    pub(crate) fn new(last_index: LogIndex) -> Progress {
        Progress {
            match_index: LogIndex(0),
            next_index: last_index.next(),
            probe_sent: false,
            in_flight: VecDeque::new(),
            state: ReplicationState::Probe,
        }
    }

    /// The highest index known to be replicated on the follower.
    pub fn match_index(&self) -> LogIndex {
        self.match_index
    }

    /// The index of the next entry the leader will send.
    pub fn next_index(&self) -> LogIndex {
        self.next_index
    }

    /// Probing or replicating.
    pub fn state(&self) -> ReplicationState {
        self.state
    }

    /// The number of unacknowledged AppendEntries with entries.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether the leader must wait before sending more entries.
    pub(crate) fn is_paused(&self, in_flight_max: usize) -> bool {
        match self.state {
            ReplicationState::Probe => self.probe_sent,
            ReplicationState::Replicate => self.in_flight.len() >= in_flight_max,
        }
    }

    /// Records that an AppendEntries ending at `last_sent` left (with or without entries).
    pub(crate) fn on_sent(&mut self, last_sent: LogIndex, entry_count: usize) {
        match self.state {
            ReplicationState::Probe => self.probe_sent = true,
            ReplicationState::Replicate => {
                if entry_count > 0 {
                    self.next_index = last_sent.next();
                    self.in_flight.push_back(last_sent);
                }
            }
        }
    }

    /// Records a successful append up to `match_index`. Returns whether the match index
    /// advanced.
    pub(crate) fn on_success(&mut self, match_index: LogIndex) -> bool {
        let advanced = match_index > self.match_index;
        if advanced {
            self.match_index = match_index;
        }
        if self.next_index <= match_index {
            self.next_index = match_index.next();
        }
        while self.in_flight.front().is_some_and(|&last| last <= match_index) {
            self.in_flight.pop_front();
        }
        if self.state == ReplicationState::Probe && match_index >= self.match_index {
            // The probe found the match point: stream from there.
            self.state = ReplicationState::Replicate;
            self.probe_sent = false;
            self.next_index = self.match_index.next();
            self.in_flight.clear();
        }
        advanced
    }

    /// Handles a rejection of the append whose previous index was `rejected_prev_index`.
    /// `last_index_of_term` looks up the leader's own log. Returns whether the progress moved
    /// (a stale rejection is ignored and returns `false`).
    pub(crate) fn on_conflict(
        &mut self,
        rejected_prev_index: LogIndex,
        hint: ConflictHint,
        last_index_of_term: impl Fn(Term) -> Option<LogIndex>,
    ) -> bool {
        let stale = match self.state {
            ReplicationState::Replicate => rejected_prev_index <= self.match_index,
            ReplicationState::Probe => rejected_prev_index != self.next_index.prev(),
        };
        if stale || rejected_prev_index == LogIndex(0) {
            // Index 0 always matches, so a rejection there is stale or hostile.
            return false;
        }
        let suggested = match hint.term.and_then(last_index_of_term) {
            Some(last_of_term) => last_of_term.next(),
            None => hint.index,
        };
        // Move back at least one step and never below what is known to match.
        self.next_index = suggested.min(rejected_prev_index).max(self.match_index.next());
        self.state = ReplicationState::Probe;
        self.probe_sent = false;
        self.in_flight.clear();
        true
    }

    /// A heartbeat answer proves the follower is reachable: let one more message go.
    pub(crate) fn on_heartbeat_response(&mut self) {
        match self.state {
            ReplicationState::Probe => self.probe_sent = false,
            ReplicationState::Replicate => {
                // A lost AppendEntries is never acknowledged; free a slot so that the stream
                // cannot stall forever, as the next append will expose the gap.
                self.in_flight.pop_front();
            }
        }
    }

    /// Checks the field invariants (cheap).
    pub(crate) fn assert_invariants(&self, leader_last_index: LogIndex) {
        assert!(self.match_index < self.next_index, "invariant: match < next");
        assert!(self.match_index <= leader_last_index, "invariant: match <= leader last");
        assert!(self.next_index <= leader_last_index.next(), "invariant: next <= last + 1");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_terms(_: Term) -> Option<LogIndex> {
        None
    }

    #[test]
    fn probe_sends_one_message_then_waits() {
        let mut progress = Progress::new(LogIndex(10));
        assert!(!progress.is_paused(4));
        progress.on_sent(LogIndex(10), 0);
        assert!(progress.is_paused(4));
        progress.on_heartbeat_response();
        assert!(!progress.is_paused(4));
    }

    #[test]
    fn successful_probe_switches_to_replicate() {
        let mut progress = Progress::new(LogIndex(10));
        progress.on_sent(LogIndex(10), 0);
        assert!(progress.on_success(LogIndex(10)));
        assert_eq!(progress.state(), ReplicationState::Replicate);
        assert_eq!(progress.next_index(), LogIndex(11));
    }

    #[test]
    fn replicate_streams_until_the_window_is_full() {
        let mut progress = Progress::new(LogIndex(0));
        progress.on_success(LogIndex(0));
        progress.on_sent(LogIndex(5), 5);
        progress.on_sent(LogIndex(9), 4);
        assert_eq!(progress.next_index(), LogIndex(10));
        assert!(progress.is_paused(2));
        progress.on_success(LogIndex(5));
        assert!(!progress.is_paused(2));
        assert_eq!(progress.in_flight(), 1);
    }

    #[test]
    fn conflict_backs_off_to_the_hint_and_ignores_stale_rejections() {
        let mut progress = Progress::new(LogIndex(10));
        progress.on_sent(LogIndex(10), 0);
        // Stale: not the probe that is outstanding.
        let hint = ConflictHint { index: LogIndex(4), term: None };
        assert!(!progress.on_conflict(LogIndex(7), hint, no_terms));
        assert!(progress.on_conflict(LogIndex(10), hint, no_terms));
        assert_eq!(progress.next_index(), LogIndex(4));
        assert!(!progress.is_paused(1));
    }

    #[test]
    fn conflict_uses_the_leaders_last_entry_of_the_conflicting_term() {
        let mut progress = Progress::new(LogIndex(10));
        let hint = ConflictHint { index: LogIndex(2), term: Some(Term(3)) };
        assert!(progress.on_conflict(LogIndex(10), hint, |_| Some(LogIndex(6))));
        assert_eq!(progress.next_index(), LogIndex(7));
    }
}
