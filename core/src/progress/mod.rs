//! Per-follower replication state on the leader and its transitions (flow control).
//!
//! A follower is either being **probed** — the leader does not know where their logs agree,
//! sends one AppendEntries and waits for its answer — or being **replicated** to — the leader
//! knows the match point and streams entries optimistically, up to `in_flight_messages_max`
//! unacknowledged messages — or being sent a **snapshot**, because the entries it needs next
//! were compacted away; chunks stream with the same window.

mod snapshot_send;

use std::collections::VecDeque;

use crate::message::ConflictHint;
use crate::snapshot::Snapshot;
use crate::types::{LogIndex, Term};
use snapshot_send::SnapshotSend;
pub(crate) use snapshot_send::{ChunkAnswer, ChunkRange};

/// How the leader is currently sending to one follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplicationState {
    /// Searching for the point where the logs agree, one message at a time.
    Probe,
    /// Streaming entries after a known match point.
    Replicate,
    /// Sending a snapshot in chunks; entries resume once it is installed.
    Snapshot,
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
    /// In snapshot state: the transfer.
    snapshot: Option<SnapshotSend>,
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
            snapshot: None,
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

    /// The number of unacknowledged AppendEntries with entries (or snapshot chunks).
    pub fn in_flight(&self) -> usize {
        match &self.snapshot {
            Some(send) => send.in_flight(),
            None => self.in_flight.len(),
        }
    }

    /// The index of the snapshot being sent, in snapshot state.
    pub fn pending_snapshot(&self) -> Option<LogIndex> {
        self.snapshot.as_ref().map(|send| send.snapshot().meta.index)
    }

    /// In snapshot state: how many bytes of the snapshot the follower confirmed holding.
    pub fn snapshot_offset(&self) -> Option<u64> {
        self.snapshot.as_ref().map(SnapshotSend::acked_offset)
    }

    /// In snapshot state: the current attempt of the transfer (a new one starts when the
    /// follower reports a gap), which chunks carry and answers echo.
    pub fn snapshot_attempt(&self) -> Option<u64> {
        self.snapshot.as_ref().map(SnapshotSend::attempt)
    }

    /// In snapshot state: the snapshot being sent (the one the transfer started with, even if
    /// the leader has taken a newer one since).
    pub(crate) fn snapshot_being_sent(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref().map(SnapshotSend::snapshot)
    }

    /// Whether the leader must wait before sending more entries or chunks.
    pub(crate) fn is_paused(&self, in_flight_max: usize) -> bool {
        match (self.state, &self.snapshot) {
            (ReplicationState::Probe, _) => self.probe_sent,
            (ReplicationState::Replicate, _) => self.in_flight.len() >= in_flight_max,
            (ReplicationState::Snapshot, Some(send)) => send.is_paused(in_flight_max),
            (ReplicationState::Snapshot, None) => true,
        }
    }

    /// Starts sending `snapshot`, as transfer attempt `attempt` (unique in the leader's term).
    pub(crate) fn become_snapshot(&mut self, snapshot: Snapshot, attempt: u64) {
        self.state = ReplicationState::Snapshot;
        self.probe_sent = false;
        self.in_flight.clear();
        self.snapshot = Some(SnapshotSend::new(snapshot, attempt));
    }

    /// Reserves the next chunk of the snapshot, at most `chunk_bytes` long, if the window
    /// allows.
    pub(crate) fn next_chunk(
        &mut self,
        chunk_bytes: u64,
        in_flight_max: usize,
    ) -> Option<ChunkRange> {
        self.snapshot.as_mut()?.next_chunk(chunk_bytes, in_flight_max)
    }

    /// The follower answered a chunk of transfer attempt `attempt`: it holds the snapshot's
    /// bytes up to `next_offset`; with `gap`, it could not use a chunk that started past them.
    /// A gap of the current attempt starts attempt `fresh_attempt` from the follower's offset.
    pub(crate) fn on_chunk_answer(
        &mut self,
        attempt: u64,
        next_offset: u64,
        gap: bool,
        fresh_attempt: u64,
    ) -> ChunkAnswer {
        match self.snapshot.as_mut() {
            Some(send) => send.on_answer(attempt, next_offset, gap, fresh_attempt),
            None => ChunkAnswer::Ignored,
        }
    }

    /// The follower could not use the snapshot: go back to probing, which sends the snapshot
    /// again if the follower still needs compacted entries.
    pub(crate) fn on_snapshot_refused(&mut self) {
        self.snapshot = None;
        self.state = ReplicationState::Probe;
        self.probe_sent = false;
        self.next_index = self.match_index.next();
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
            // Appends are not sent while a snapshot is (see `Node::send_append`).
            ReplicationState::Snapshot => {}
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
        let probe_done = self.state == ReplicationState::Probe && match_index >= self.match_index;
        let snapshot_done =
            self.snapshot.as_ref().is_some_and(|send| match_index >= send.snapshot().meta.index);
        if probe_done || snapshot_done {
            // The probe found the match point, or the snapshot is installed: stream from there.
            self.snapshot = None;
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
            // An answer to an append sent before the snapshot transfer began.
            ReplicationState::Snapshot => true,
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
            ReplicationState::Snapshot => {
                if let Some(send) = self.snapshot.as_mut() {
                    send.on_heartbeat_response();
                }
            }
        }
    }

    /// Checks the field invariants (cheap), at the end of every leader's step. A failure is a
    /// bug in this crate that no test can provoke without planting one, so cargo-mutants'
    /// "replace with ()" of this function survives by design (as `Node::assert_invariants`').
    pub(crate) fn assert_invariants(&self, leader_last_index: LogIndex) {
        assert!(self.match_index < self.next_index, "invariant: match < next");
        assert!(self.match_index <= leader_last_index, "invariant: match <= leader last");
        assert!(self.next_index <= leader_last_index.next(), "invariant: next <= last + 1");
        assert_eq!(
            self.snapshot.is_some(),
            self.state == ReplicationState::Snapshot,
            "invariant: a transfer exactly in snapshot state"
        );
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
    fn an_append_without_entries_takes_no_room_in_the_window() {
        let mut progress = Progress::new(LogIndex(0));
        progress.on_success(LogIndex(0));
        progress.on_sent(LogIndex(3), 3);
        // An empty append (a commit update) while replicating: nothing to acknowledge.
        progress.on_sent(LogIndex(3), 0);
        assert_eq!((progress.in_flight(), progress.next_index()), (1, LogIndex(4)));
        assert!(!progress.is_paused(2));
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

    fn snapshot_of(index: u64, bytes: usize) -> Snapshot {
        let meta = crate::snapshot::SnapshotMeta {
            index: LogIndex(index),
            term: Term(1),
            membership: std::sync::Arc::default(),
        };
        Snapshot { meta, data: vec![7u8; bytes].into() }
    }

    fn range(attempt: u64, start: u64, end: u64) -> Option<ChunkRange> {
        Some(ChunkRange { attempt, start, end })
    }

    #[test]
    fn snapshot_chunks_stream_in_a_window_after_the_first_answer() {
        let mut progress = Progress::new(LogIndex(10));
        progress.become_snapshot(snapshot_of(8, 35), 1);
        assert_eq!(progress.state(), ReplicationState::Snapshot);
        assert_eq!(progress.pending_snapshot(), Some(LogIndex(8)));
        assert_eq!(progress.next_chunk(10, 2), range(1, 0, 10));
        assert_eq!(progress.next_chunk(10, 2), None, "one chunk until the first answer");
        assert_eq!(progress.on_chunk_answer(1, 10, false, 2), ChunkAnswer::Counted);
        assert_eq!(progress.next_chunk(10, 2), range(1, 10, 20));
        assert_eq!(progress.next_chunk(10, 2), range(1, 20, 30));
        assert_eq!(progress.next_chunk(10, 2), None, "window of 2 is full");
        assert!(progress.is_paused(2));
        assert_eq!(progress.on_chunk_answer(1, 20, false, 2), ChunkAnswer::Counted);
        assert_eq!(progress.next_chunk(10, 2), range(1, 30, 35));
        assert!(progress.is_paused(8), "everything is sent");
        assert_eq!(progress.snapshot_offset(), Some(20));
        // Installed: entries resume after the snapshot.
        assert!(progress.on_success(LogIndex(8)));
        assert_eq!(progress.state(), ReplicationState::Replicate);
        assert_eq!(progress.next_index(), LogIndex(9));
        assert_eq!(progress.pending_snapshot(), None);
        progress.assert_invariants(LogIndex(10));
    }

    #[test]
    fn a_gap_starts_one_new_attempt_and_the_rest_of_the_window_is_ignored() {
        let mut progress = Progress::new(LogIndex(10));
        progress.become_snapshot(snapshot_of(8, 50), 1);
        progress.next_chunk(10, 4);
        progress.on_chunk_answer(1, 10, false, 2);
        for _ in 0..4 {
            progress.next_chunk(10, 4);
        }
        // The chunk at 10 was lost: each of the three after it reports the same gap.
        assert_eq!(progress.on_chunk_answer(1, 10, true, 2), ChunkAnswer::Restarted);
        assert_eq!(progress.snapshot_attempt(), Some(2));
        assert_eq!(progress.on_chunk_answer(1, 10, true, 3), ChunkAnswer::Ignored);
        assert_eq!(progress.on_chunk_answer(1, 10, true, 3), ChunkAnswer::Ignored);
        // The new attempt sends one chunk from the gap and waits for its answer.
        assert_eq!(progress.next_chunk(10, 4), range(2, 10, 20));
        assert_eq!(progress.next_chunk(10, 4), None);
        assert_eq!(progress.on_chunk_answer(2, 20, false, 3), ChunkAnswer::Counted);
        assert_eq!(progress.next_chunk(10, 4), range(2, 20, 30));
    }

    #[test]
    fn a_follower_ahead_of_the_attempt_moves_the_next_chunk_forward() {
        let mut progress = Progress::new(LogIndex(10));
        progress.become_snapshot(snapshot_of(8, 50), 1);
        progress.next_chunk(10, 4);
        // The follower got later chunks of an earlier attempt too: it holds 40 bytes.
        progress.on_chunk_answer(1, 40, false, 2);
        assert_eq!(progress.next_chunk(10, 4), range(1, 40, 50));
    }

    #[test]
    fn a_gap_below_the_confirmed_offset_restarts_from_it() {
        // The follower restarted and lost its buffer after confirming 20 bytes.
        let mut progress = Progress::new(LogIndex(10));
        progress.become_snapshot(snapshot_of(8, 50), 1);
        progress.next_chunk(10, 4);
        progress.on_chunk_answer(1, 20, false, 2);
        progress.next_chunk(10, 4);
        assert_eq!(progress.on_chunk_answer(1, 0, true, 2), ChunkAnswer::Restarted);
        assert_eq!(progress.snapshot_offset(), Some(0));
        assert_eq!(progress.next_chunk(10, 4), range(2, 0, 10));
    }

    #[test]
    fn a_stalled_snapshot_is_resent_from_the_last_acknowledged_chunk() {
        let mut progress = Progress::new(LogIndex(10));
        progress.become_snapshot(snapshot_of(8, 30), 1);
        progress.next_chunk(10, 8);
        progress.on_chunk_answer(1, 10, false, 2);
        progress.next_chunk(10, 8);
        progress.next_chunk(10, 8);
        assert_eq!(progress.next_chunk(10, 8), None);
        // An ack arrived since the last heartbeat answer: not stalled.
        progress.on_heartbeat_response();
        assert_eq!(progress.next_chunk(10, 8), None);
        // A whole heartbeat period without an ack: resend from 10, one chunk, same attempt,
        // so that a late answer to the earlier chunks still counts.
        progress.on_heartbeat_response();
        assert_eq!(progress.next_chunk(10, 8), range(1, 10, 20));
        assert_eq!(progress.next_chunk(10, 8), None);
        assert_eq!(progress.on_chunk_answer(1, 30, false, 2), ChunkAnswer::Counted);
        assert_eq!(progress.snapshot_offset(), Some(30));
    }

    #[test]
    fn a_refused_snapshot_falls_back_to_probing() {
        let mut progress = Progress::new(LogIndex(10));
        progress.become_snapshot(snapshot_of(8, 30), 1);
        progress.next_chunk(10, 8);
        // Rejections of appends sent before the transfer began are stale.
        let hint = ConflictHint { index: LogIndex(1), term: None };
        assert!(!progress.on_conflict(LogIndex(10), hint, no_terms));
        progress.on_snapshot_refused();
        assert_eq!(progress.state(), ReplicationState::Probe);
        assert_eq!(progress.next_index(), LogIndex(1));
        assert!(!progress.is_paused(1));
        progress.assert_invariants(LogIndex(10));
    }

    #[test]
    fn an_empty_snapshot_is_one_empty_chunk() {
        let mut progress = Progress::new(LogIndex(3));
        progress.become_snapshot(snapshot_of(3, 0), 1);
        assert_eq!(progress.next_chunk(10, 8), range(1, 0, 0));
        assert_eq!(progress.next_chunk(10, 8), None);
        // Lost: resent after a heartbeat period.
        progress.on_heartbeat_response();
        assert_eq!(progress.next_chunk(10, 8), range(1, 0, 0));
    }

    #[test]
    fn conflict_uses_the_leaders_last_entry_of_the_conflicting_term() {
        let mut progress = Progress::new(LogIndex(10));
        let hint = ConflictHint { index: LogIndex(2), term: Some(Term(3)) };
        assert!(progress.on_conflict(LogIndex(10), hint, |_| Some(LogIndex(6))));
        assert_eq!(progress.next_index(), LogIndex(7));
    }

    mod model {
        //! Random event sequences against what the leader may rely on.

        use proptest::prelude::*;

        use super::*;

        #[derive(Clone, Debug)]
        enum Event {
            /// The leader sends whatever the window allows, ending at `last`.
            Send {
                entries: u8,
            },
            /// An acknowledgement up to an index (maybe stale, maybe new).
            Ack(u8),
            Conflict {
                rejected: u8,
                hint: u8,
            },
            HeartbeatAnswer,
            StartSnapshot,
            Chunk {
                attempt: u8,
                next_offset: u8,
                gap: bool,
            },
            SnapshotRefused,
        }

        fn event() -> impl Strategy<Value = Event> {
            prop_oneof![
                (1u8..4).prop_map(|entries| Event::Send { entries }),
                any::<u8>().prop_map(Event::Ack),
                (any::<u8>(), any::<u8>())
                    .prop_map(|(rejected, hint)| Event::Conflict { rejected, hint }),
                Just(Event::HeartbeatAnswer),
                Just(Event::StartSnapshot),
                (0u8..4, 0u8..40, any::<bool>()).prop_map(|(attempt, next_offset, gap)| {
                    Event::Chunk { attempt, next_offset, gap }
                }),
                Just(Event::SnapshotRefused),
            ]
        }

        proptest! {
            #[test]
            fn progress_keeps_its_promises(events in proptest::collection::vec(event(), 1..80)) {
                const LAST: u64 = 40;
                const WINDOW: usize = 3;
                let last = LogIndex(LAST);
                let mut progress = Progress::new(LogIndex(LAST / 2));
                let mut matched = LogIndex(0);
                let mut attempts = 0;
                for event in events {
                    match event {
                        Event::Send { entries } => {
                            // The leader only sends when not paused (Node::send_append).
                            if progress.state() != ReplicationState::Snapshot
                                && !progress.is_paused(WINDOW)
                            {
                                let next = progress.next_index();
                                let end = next.plus(u64::from(entries)).prev().min(last);
                                let count = (end.0 + 1).saturating_sub(next.0) as usize;
                                progress.on_sent(end.max(next.prev()), count);
                            }
                        }
                        Event::Ack(index) => {
                            // An honest follower acknowledges at most the leader's last index.
                            let index = LogIndex(u64::from(index) % (LAST + 1));
                            let advanced = progress.on_success(index);
                            prop_assert_eq!(advanced, index > matched);
                            matched = matched.max(index);
                        }
                        Event::Conflict { rejected, hint } => {
                            let rejected = LogIndex(u64::from(rejected) % (LAST + 1));
                            let hint = ConflictHint { index: LogIndex(u64::from(hint) % (LAST + 2)), term: None };
                            progress.on_conflict(rejected, hint, |_| None);
                        }
                        Event::HeartbeatAnswer => progress.on_heartbeat_response(),
                        Event::StartSnapshot => {
                            if progress.state() != ReplicationState::Snapshot {
                                attempts += 1;
                                progress.become_snapshot(snapshot_of(LAST / 2, 30), attempts);
                            }
                        }
                        Event::Chunk { attempt, next_offset, gap } => {
                            // Answers name the current attempt or an earlier one.
                            let attempt = attempts.saturating_sub(u64::from(attempt));
                            let before = progress.snapshot_attempt();
                            let answer = progress.on_chunk_answer(
                                attempt, u64::from(next_offset), gap, attempts + 1,
                            );
                            if answer == ChunkAnswer::Restarted {
                                attempts += 1;
                            }
                            // Only an answer of the current attempt moves the transfer.
                            prop_assert!(answer == ChunkAnswer::Ignored || before == Some(attempt));
                            prop_assert_eq!(progress.snapshot_attempt().is_some(), before.is_some());
                            while let Some(range) = progress.next_chunk(7, WINDOW) {
                                prop_assert_eq!(Some(range.attempt), progress.snapshot_attempt());
                                let (start, end) = (range.start, range.end);
                                prop_assert!(start <= end && end <= 30 && end - start <= 7);
                            }
                            prop_assert!(progress.in_flight() <= WINDOW);
                        }
                        Event::SnapshotRefused => {
                            if progress.state() == ReplicationState::Snapshot {
                                progress.on_snapshot_refused();
                                prop_assert_eq!(progress.state(), ReplicationState::Probe);
                            }
                        }
                    }
                    // The match index is exactly the highest acknowledgement: it never goes
                    // back, whatever arrives late or out of order.
                    prop_assert_eq!(progress.match_index(), matched);
                    progress.assert_invariants(last);
                    if progress.state() == ReplicationState::Replicate {
                        prop_assert!(progress.in_flight() <= WINDOW);
                    }
                }
            }
        }
    }
}
