//! What happened in a simulation, event by event: kept in a short ring for failure reports,
//! and in full (as JSON lines) when replaying a seed.

use std::collections::VecDeque;
use std::fmt;

use serde::Serialize;
use stepraft::{AppendOutcome, Message, SnapshotOutcome};

/// How many recent events a failure report shows.
pub const RECENT_EVENTS: usize = 40;

/// One event at one simulated instant.
#[derive(Clone, Debug, Serialize)]
pub struct TraceRecord {
    /// Simulated time, in microseconds since the start.
    pub time_us: u64,
    /// What happened.
    #[serde(flatten)]
    pub event: TraceEvent,
}

/// The kinds of events a trace records.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TraceEvent {
    /// A message reached its destination and was stepped.
    Deliver {
        /// Sender.
        from: u64,
        /// Receiver.
        to: u64,
        /// The message, summarized.
        message: MessageSummary,
        /// When it was sent, in simulated microseconds (the timeline draws the flight).
        sent_us: u64,
    },
    /// A message was lost.
    Drop {
        /// Sender.
        from: u64,
        /// Intended receiver.
        to: u64,
        /// The message, summarized.
        message: MessageSummary,
        /// When it was sent (the record's own time for a message lost on sending).
        sent_us: u64,
        /// `loss`, `partition`, `down` or `flaky`.
        reason: &'static str,
    },
    /// The network will deliver a message twice.
    Duplicate {
        /// Sender.
        from: u64,
        /// Receiver.
        to: u64,
        /// The message, summarized.
        message: MessageSummary,
    },
    /// A node crashed, losing everything it had not persisted.
    Crash {
        /// The node.
        node: u64,
        /// Whether the crash struck between two outputs of one step.
        mid_step: bool,
    },
    /// A crashed node restarted from its durable state.
    Restart {
        /// The node.
        node: u64,
    },
    /// A node restored its state machine from a snapshot (installed or after a restart).
    Restore {
        /// The node.
        node: u64,
        /// The snapshot's index.
        index: u64,
    },
    /// A node stopped stepping.
    Pause {
        /// The node.
        node: u64,
    },
    /// A paused node resumed and processed its backlog.
    Resume {
        /// The node.
        node: u64,
        /// Messages that waited for it.
        backlog: usize,
    },
    /// Links were cut.
    Partition {
        /// `split`, `isolate-leader`, `minority` or `one-way`.
        kind: &'static str,
        /// The directed links cut, as `(from, to)`.
        cuts: Vec<(u64, u64)>,
    },
    /// Every link was restored.
    Heal,
    /// The discovery workload announced node `about` to node `to`.
    Announce {
        /// The node told.
        to: u64,
        /// The node it learns of.
        about: u64,
        /// Lost on the way (faults, or `to` was down).
        lost: bool,
    },
    /// A node's role or known leader changed.
    Role {
        /// The node.
        node: u64,
        /// `follower`, `candidate` or `leader`.
        role: &'static str,
        /// Its term.
        term: u64,
        /// The leader it knows.
        leader: Option<u64>,
    },
    /// A node's commit index advanced.
    Commit {
        /// The node.
        node: u64,
        /// The new commit index.
        index: u64,
    },
    /// A node applied committed entries to its state machine.
    Apply {
        /// The node.
        node: u64,
        /// The last index applied.
        index: u64,
    },
    /// A client sent a request.
    Invoke {
        /// The client.
        client: u64,
        /// The client's request number.
        request: u64,
        /// The node it was sent to.
        node: u64,
    },
    /// A client request completed.
    Complete {
        /// The client.
        client: u64,
        /// The client's request number.
        request: u64,
        /// `ok`, `redirect`, `rejected`, `lost` or `timeout`.
        outcome: &'static str,
        /// The log index of the command, when acknowledged.
        index: Option<u64>,
    },
    /// The simulation moved to another phase.
    Phase {
        /// `safety` or `liveness`.
        phase: &'static str,
    },
    /// A checker fired.
    Violation {
        /// The property.
        property: String,
        /// What was seen.
        detail: String,
    },
}

/// The fields of a message that matter for reading a trace.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct MessageSummary {
    /// Message kind.
    pub kind: &'static str,
    /// Sender's term.
    pub term: u64,
    /// `prev_log_index` / `last_log_index` / match index / read round / read index, by kind.
    pub index: u64,
    /// Entries carried (AppendEntries).
    pub entries: u64,
    /// Granted (votes) or success (appends).
    pub ok: bool,
}

impl MessageSummary {
    /// Summarizes `message`.
    pub fn of<T>(message: &Message<T>) -> MessageSummary {
        let term = message.term().0;
        let (kind, index, entries, ok) = match message {
            Message::RequestVote(m) => ("RequestVote", m.last_log_index.0, 0, true),
            Message::RequestVoteResponse(m) => ("RequestVoteResponse", 0, 0, m.granted),
            Message::PreVote(m) => ("PreVote", m.last_log_index.0, 0, true),
            Message::PreVoteResponse(m) => ("PreVoteResponse", 0, 0, m.granted),
            Message::TimeoutNow(_) => ("TimeoutNow", 0, 0, true),
            Message::AppendEntries(m) => {
                ("AppendEntries", m.prev_log_index.0, m.entries.len() as u64, true)
            }
            Message::AppendEntriesResponse(m) => match m.outcome {
                AppendOutcome::Success { match_index } => {
                    ("AppendEntriesResponse", match_index.0, 0, true)
                }
                AppendOutcome::Conflict { rejected_prev_index, .. } => {
                    ("AppendEntriesResponse", rejected_prev_index.0, 0, false)
                }
                _ => ("AppendEntriesResponse", 0, 0, false),
            },
            Message::Heartbeat(m) => ("Heartbeat", m.round, 0, true),
            Message::HeartbeatResponse(m) => ("HeartbeatResponse", m.round, 0, true),
            Message::ReadIndexRequest(m) => ("ReadIndexRequest", m.id.0, 0, true),
            Message::ReadIndexResponse(m) => {
                ("ReadIndexResponse", m.index.map_or(0, |index| index.0), 0, m.index.is_some())
            }
            // `index` is the snapshot's; `entries` counts the chunk's bytes.
            Message::InstallSnapshot(m) => {
                ("InstallSnapshot", m.meta.index.0, m.data.len() as u64, true)
            }
            Message::InstallSnapshotResponse(m) => match m.outcome {
                SnapshotOutcome::Received { .. } | SnapshotOutcome::Installed { .. } => {
                    ("InstallSnapshotResponse", m.snapshot_index.0, 0, true)
                }
                _ => ("InstallSnapshotResponse", m.snapshot_index.0, 0, false),
            },
            _ => ("Other", 0, 0, true),
        };
        MessageSummary { kind, term, index, entries, ok }
    }
}

impl fmt::Display for MessageSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} t{} i{}", self.kind, self.term, self.index)?;
        if self.entries > 0 {
            write!(f, " +{}", self.entries)?;
        }
        if !self.ok {
            write!(f, " (refused)")?;
        }
        Ok(())
    }
}

impl fmt::Display for TraceRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>10.3}ms  ", self.time_us as f64 / 1000.0)?;
        match &self.event {
            TraceEvent::Deliver { from, to, message, .. } => write!(f, "{from}->{to} {message}"),
            TraceEvent::Drop { from, to, message, reason, .. } => {
                write!(f, "{from}->{to} {message} DROPPED ({reason})")
            }
            TraceEvent::Duplicate { from, to, message } => {
                write!(f, "{from}->{to} {message} DUPLICATED")
            }
            TraceEvent::Crash { node, mid_step } => {
                write!(f, "n{node} CRASH{}", if *mid_step { " mid-step" } else { "" })
            }
            TraceEvent::Restart { node } => write!(f, "n{node} RESTART"),
            TraceEvent::Restore { node, index } => write!(f, "n{node} restore snapshot {index}"),
            TraceEvent::Pause { node } => write!(f, "n{node} PAUSE"),
            TraceEvent::Resume { node, backlog } => write!(f, "n{node} RESUME backlog={backlog}"),
            TraceEvent::Partition { kind, cuts } => write!(f, "PARTITION {kind} {cuts:?}"),
            TraceEvent::Heal => write!(f, "HEAL"),
            TraceEvent::Announce { to, about, lost } => {
                write!(f, "n{to} told of n{about}{}", if *lost { " LOST" } else { "" })
            }
            TraceEvent::Role { node, role, term, leader } => {
                write!(f, "n{node} {role} t{term} leader={leader:?}")
            }
            TraceEvent::Commit { node, index } => write!(f, "n{node} commit {index}"),
            TraceEvent::Apply { node, index } => write!(f, "n{node} apply {index}"),
            TraceEvent::Invoke { client, request, node } => {
                write!(f, "client{client}#{request} -> n{node}")
            }
            TraceEvent::Complete { client, request, outcome, index } => {
                write!(f, "client{client}#{request} {outcome} {index:?}")
            }
            TraceEvent::Phase { phase } => write!(f, "PHASE {phase}"),
            TraceEvent::Violation { property, detail } => {
                write!(f, "VIOLATION {property}: {detail}")
            }
        }
    }
}

/// Collects trace records: the most recent ones, everything when asked to, or nothing.
#[derive(Debug, Default)]
pub struct Tracer {
    enabled: bool,
    recent: VecDeque<TraceRecord>,
    full: Option<Vec<TraceRecord>>,
}

impl Tracer {
    /// A tracer that keeps only the recent events, or everything with `keep_all`.
    pub fn new(keep_all: bool) -> Tracer {
        Tracer {
            enabled: true,
            recent: VecDeque::with_capacity(RECENT_EVENTS),
            full: keep_all.then(Vec::new),
        }
    }

    /// A tracer that records nothing: for runs whose events nobody will read (a passing seed
    /// of a campaign; a failing one is run again with a tracer, which determinism allows).
    pub fn disabled() -> Tracer {
        Tracer { enabled: false, recent: VecDeque::new(), full: None }
    }

    /// Records one event.
    pub fn record(&mut self, time_us: u64, event: TraceEvent) {
        if !self.enabled {
            return;
        }
        let record = TraceRecord { time_us, event };
        if let Some(full) = &mut self.full {
            full.push(record.clone());
        }
        if self.recent.len() == RECENT_EVENTS {
            self.recent.pop_front();
        }
        self.recent.push_back(record);
    }

    /// The most recent events, oldest first.
    pub fn recent(&self) -> impl Iterator<Item = &TraceRecord> {
        self.recent.iter()
    }

    /// Every event, when the tracer keeps them all.
    pub fn all(&self) -> Option<&[TraceRecord]> {
        self.full.as_deref()
    }

    /// The full trace as JSON lines (empty when not kept).
    pub fn to_jsonl(&self) -> String {
        let mut out = String::new();
        for record in self.full.iter().flatten() {
            out.push_str(&serde_json::to_string(record).expect("trace records serialize"));
            out.push('\n');
        }
        out
    }
}
