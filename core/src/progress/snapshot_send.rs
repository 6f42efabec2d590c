//! One snapshot transfer from the leader to a follower: which bytes are on the way, which the
//! follower confirmed, and which answers still count.
//!
//! # Why a transfer always finishes
//!
//! Assume the network delivers every message eventually (possibly late, reordered or
//! duplicated), the follower stays up and the leader keeps its term. Let `r` be the number of
//! bytes the follower holds; `r` never decreases. The follower answers every chunk with `r`
//! (`Received`), or with `Gap` at `r` when the chunk starts past it, and echoes the chunk's
//! attempt.
//!
//! 1. Only a `Gap` of the *current* attempt starts a new attempt, at the gap's offset `g`, and
//!    a new attempt sends one chunk, at `g`, and nothing else until that chunk is answered.
//!    `r >= g` when the chunk arrives, so its answer reports more than `g` (the chunk extends
//!    the buffer, or it is a duplicate and the answer is the larger `r`). Any later gap of the
//!    attempt is therefore past `g`: attempts start at strictly increasing offsets, so there
//!    are at most `total / chunk + 1` of them. Answers to chunks of older attempts (the
//!    rest of a window sent before the gap, duplicates) cannot start another one: this is
//!    what stops a window of in-flight chunks from answering one gap with a burst of restarts.
//! 2. Within an attempt, chunks leave in offset order. A lost chunk or a lost answer shows as
//!    a heartbeat period in which the follower answers heartbeats but confirms nothing new;
//!    the leader then resends from the last confirmed offset, one chunk at a time. Answers are
//!    cumulative, so a lost answer loses no progress: the next one carries it.
//! 3. The transfer keeps the snapshot it started with (the leader may take newer ones
//!    meanwhile): a newer snapshot does not restart it, so a leader that snapshots more often
//!    than a transfer takes still finishes one. If the follower then needs entries that the
//!    leader has compacted since, a fresh transfer of the newer snapshot starts, from a match
//!    index that has moved forward.
//!
//! A follower that restarts loses its buffer (`r` drops to 0); its next answer is a `Gap` of
//! the current attempt at 0, which starts a new attempt from there.

use crate::snapshot::Snapshot;

/// The byte range of one chunk to send, and the attempt it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChunkRange {
    /// The attempt the chunk belongs to; the follower echoes it.
    pub(crate) attempt: u64,
    /// Where the chunk starts in the snapshot.
    pub(crate) start: u64,
    /// Where it ends (exclusive).
    pub(crate) end: u64,
}

/// What an answer about a chunk did to the transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChunkAnswer {
    /// The answer is about an earlier attempt (or repeats what is known): nothing changed.
    Ignored,
    /// The follower confirmed bytes of this attempt.
    Counted,
    /// The follower reported a gap: a new attempt starts at its offset.
    Restarted,
}

/// A snapshot transfer to one follower.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SnapshotSend {
    /// The snapshot being sent, kept for the whole transfer.
    snapshot: Snapshot,
    /// The current attempt: answers to chunks of other attempts do not move the transfer.
    attempt: u64,
    /// Where the next chunk starts.
    next_offset: u64,
    /// The highest offset the follower confirmed holding in this attempt.
    acked_offset: u64,
    /// Chunks of this attempt sent and not yet answered.
    in_flight: usize,
    /// Until an answer of this attempt arrives, only one chunk may be on the way.
    awaiting_first_answer: bool,
    /// `acked_offset` at the last heartbeat answer, to notice a stalled transfer.
    acked_at_last_heartbeat: u64,
}

impl SnapshotSend {
    /// A transfer of `snapshot`, from its first byte, as `attempt`.
    pub(crate) fn new(snapshot: Snapshot, attempt: u64) -> SnapshotSend {
        SnapshotSend {
            snapshot,
            attempt,
            next_offset: 0,
            acked_offset: 0,
            in_flight: 0,
            awaiting_first_answer: true,
            acked_at_last_heartbeat: 0,
        }
    }

    /// The snapshot being sent.
    pub(crate) fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The current attempt.
    pub(crate) fn attempt(&self) -> u64 {
        self.attempt
    }

    /// The highest offset the follower confirmed holding.
    pub(crate) fn acked_offset(&self) -> u64 {
        self.acked_offset
    }

    /// Chunks sent and not yet answered.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    fn total(&self) -> u64 {
        self.snapshot.data.len() as u64
    }

    fn window(&self, in_flight_max: usize) -> usize {
        if self.awaiting_first_answer {
            1
        } else {
            in_flight_max.max(1)
        }
    }

    /// Whether the leader must wait before sending another chunk.
    pub(crate) fn is_paused(&self, in_flight_max: usize) -> bool {
        // An empty snapshot is one empty chunk: sent once `next_offset` reached the end and a
        // chunk left, which `in_flight` or an answer records.
        let all_sent = self.next_offset >= self.total() && !self.is_unsent_empty_snapshot();
        all_sent || self.in_flight >= self.window(in_flight_max)
    }

    fn is_unsent_empty_snapshot(&self) -> bool {
        self.total() == 0 && self.in_flight == 0 && self.awaiting_first_answer
    }

    /// Reserves the next chunk, at most `chunk_bytes` long, if the window allows.
    pub(crate) fn next_chunk(
        &mut self,
        chunk_bytes: u64,
        in_flight_max: usize,
    ) -> Option<ChunkRange> {
        if self.is_paused(in_flight_max) {
            return None;
        }
        let total = self.total();
        let start = self.next_offset.min(total);
        let end = start.saturating_add(chunk_bytes.max(1)).min(total);
        self.next_offset = end;
        self.in_flight += 1;
        Some(ChunkRange { attempt: self.attempt, start, end })
    }

    /// The follower answered a chunk of `attempt`: it holds `next_offset` bytes, and with
    /// `gap` it could not use a chunk that started past them. `fresh_attempt` names the
    /// attempt a restart would start (unique for the leader's term).
    pub(crate) fn on_answer(
        &mut self,
        attempt: u64,
        next_offset: u64,
        gap: bool,
        fresh_attempt: u64,
    ) -> ChunkAnswer {
        if attempt != self.attempt {
            return ChunkAnswer::Ignored;
        }
        if gap {
            // Below the confirmed offset only if the follower lost its buffer (a restart):
            // start again from what it holds now.
            self.restart_from(next_offset.min(self.total()));
            self.attempt = fresh_attempt;
            return ChunkAnswer::Restarted;
        }
        self.in_flight = self.in_flight.saturating_sub(1);
        self.awaiting_first_answer = false;
        if next_offset > self.acked_offset {
            self.acked_offset = next_offset.min(self.total());
            // The follower may hold more than this attempt sent (chunks of an earlier one).
            self.next_offset = self.next_offset.max(self.acked_offset);
        }
        ChunkAnswer::Counted
    }

    /// A heartbeat answer: the follower is reachable. If it confirmed nothing for a whole
    /// heartbeat period, chunks or answers were lost: resend from the confirmed offset.
    pub(crate) fn on_heartbeat_response(&mut self) {
        if self.acked_offset == self.acked_at_last_heartbeat {
            self.restart_from(self.acked_offset);
        }
        self.acked_at_last_heartbeat = self.acked_offset;
    }

    fn restart_from(&mut self, offset: u64) {
        self.next_offset = offset;
        self.acked_offset = offset;
        self.acked_at_last_heartbeat = offset;
        self.in_flight = 0;
        self.awaiting_first_answer = true;
    }
}
