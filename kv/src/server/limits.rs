//! The limits that shape a node's messages, derived from the size of the datagrams it sends,
//! by encoding the largest messages the node can make with the real codec.
//!
//! Three limits of [`Config`] decide how large a message grows: `snapshot_chunk_bytes`
//! (InstallSnapshot), `entries_per_message_max` and `bytes_per_message_max` (AppendEntries).
//! Everything else in a message is bounded by the node's own limits: an id, term or index
//! takes at most 10 bytes (a `u64` varint); a snapshot's metadata holds a configuration of at
//! most `voters_max` voters, as many outgoing voters when it is joint, and `learners_max`
//! learners; a command holds a key and strings that the HTTP body limit bounds.
//!
//! * **Snapshot chunks** get what a datagram leaves beside the largest InstallSnapshot
//!   metadata (every number at its widest, the largest configuration).
//! * **Appends**: `bytes_per_message_max` limits what [`Command::size_bytes`] counts, and
//!   each entry adds bytes it does not count: its index and term, a command's tag and length
//!   prefixes — or a whole configuration, which counts as nothing. The command budget is half
//!   the room left beside the message's own fields, or one largest command if that is more;
//!   `entries_per_message_max` is how many entries the other part frames when every entry
//!   has the widest framing.
//!
//! Neither limit exceeds the core's default ([`Config::new`]).

use std::collections::BTreeSet;
use std::sync::Arc;

use stepraft::{
    AppendEntries, Command, Config, Entry, InstallSnapshot, Internal, LogIndex, Membership,
    Message, NodeId, Payload, SnapshotMeta, Term,
};

use crate::command::{KvCommand, KvOp, Tag};
use stepraft_tokio::codec::Envelope;
use stepraft_tokio::network::udp::{encode_datagram, DATAGRAM_BYTES_MAX};
use stepraft_tokio::network::PeerMessage;

/// A snapshot chunk shorter than this is refused: a transfer would need a datagram for
/// every few hundred bytes of the snapshot, most of each spent on metadata.
pub const SNAPSHOT_CHUNK_BYTES_MIN: usize = 512;

/// What bounds the messages of a node that sends datagrams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatagramBounds {
    /// The largest datagram the transport sends, magic included.
    pub datagram_bytes: usize,
    /// Most voters of a configuration (becomes [`Config::max_voters`]); a joint configuration
    /// holds twice as many.
    pub voters_max: usize,
    /// Most learners of a configuration (the driver's
    /// [`NodeSetup::learners_max`](stepraft_tokio::driver::NodeSetup::learners_max)).
    pub learners_max: usize,
    /// The longest key of a command.
    pub key_bytes_max: usize,
    /// Most bytes of one command's other strings together: a value, both values of a
    /// compare-and-set, or an address. The HTTP body limit bounds them: a JSON string never
    /// decodes to more bytes than it takes in the body.
    pub text_bytes_max: usize,
}

/// The derived limits, as they go into a [`Config`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageLimits {
    /// [`Config::snapshot_chunk_bytes`].
    pub snapshot_chunk_bytes: usize,
    /// [`Config::entries_per_message_max`].
    pub entries_per_message_max: usize,
    /// [`Config::bytes_per_message_max`].
    pub bytes_per_message_max: usize,
}

/// Why no limits make a node's messages fit its datagrams.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FitError {
    /// The datagram size is above what UDP carries.
    #[error("datagrams of {datagram_bytes} bytes exceed the UDP maximum of {max}")]
    DatagramTooLarge {
        /// The size asked for.
        datagram_bytes: usize,
        /// [`DATAGRAM_BYTES_MAX`].
        max: usize,
    },
    /// The largest configuration has more members than a datagram has bytes.
    #[error(
        "a configuration of {voters_max} voters (twice that when joint) and {learners_max} \
         learners cannot fit a {datagram_bytes}-byte datagram; lower the voter or learner limit"
    )]
    ConfigurationTooLarge {
        /// The voter limit.
        voters_max: usize,
        /// The learner limit.
        learners_max: usize,
        /// The datagram size.
        datagram_bytes: usize,
    },
    /// The snapshot metadata leaves too little of a datagram for data.
    #[error(
        "an InstallSnapshot of a configuration of {voters_max} voters (twice that when joint) \
         and {learners_max} learners takes {metadata_bytes} bytes before any data, leaving \
         {chunk_bytes} of a {datagram_bytes}-byte datagram, below the {min} a chunk needs; \
         lower the voter or learner limit"
    )]
    SnapshotChunkTooSmall {
        /// The data bytes a chunk could carry.
        chunk_bytes: usize,
        /// [`SNAPSHOT_CHUNK_BYTES_MIN`].
        min: usize,
        /// The datagram bytes of a chunk without data.
        metadata_bytes: usize,
        /// The datagram size.
        datagram_bytes: usize,
        /// The voter limit.
        voters_max: usize,
        /// The learner limit.
        learners_max: usize,
    },
    /// The largest command does not fit an AppendEntries alone.
    #[error(
        "an AppendEntries takes up to {framing_bytes} bytes of fields and entry framing (an \
         entry may carry the whole configuration) besides the {command_bytes} bytes of the \
         largest command, more than a {datagram_bytes}-byte datagram holds; lower the request \
         size, voter or learner limit"
    )]
    CommandTooLarge {
        /// What the largest command counts ([`Command::size_bytes`]).
        command_bytes: usize,
        /// The message's own fields and the widest framing of one entry.
        framing_bytes: usize,
        /// The datagram size.
        datagram_bytes: usize,
    },
    /// The initial configuration has more voters than the limit.
    #[error("{voters} initial voters, more than the limit of {max}")]
    TooManyInitialVoters {
        /// The initial voters.
        voters: usize,
        /// The limit.
        max: usize,
    },
    /// The initial configuration has more learners than the limit.
    #[error("{learners} initial learners, more than the limit of {max}")]
    TooManyInitialLearners {
        /// The initial learners.
        learners: usize,
        /// The limit.
        max: usize,
    },
}

impl MessageLimits {
    /// Writes these limits into `config`.
    pub fn apply_to(&self, config: &mut Config) {
        config.snapshot_chunk_bytes = self.snapshot_chunk_bytes;
        config.entries_per_message_max = self.entries_per_message_max;
        config.bytes_per_message_max = self.bytes_per_message_max;
    }
}

impl DatagramBounds {
    /// Checks `config`'s initial configuration against these bounds, then writes the derived
    /// limits and the voter limit into it.
    ///
    /// # Errors
    /// A [`FitError`] when the messages cannot fit, or the initial configuration is larger
    /// than the bounds.
    pub fn fit(&self, config: &mut Config) -> Result<MessageLimits, FitError> {
        if config.voters.len() > self.voters_max {
            let (voters, max) = (config.voters.len(), self.voters_max);
            return Err(FitError::TooManyInitialVoters { voters, max });
        }
        if config.learners.len() > self.learners_max {
            let (learners, max) = (config.learners.len(), self.learners_max);
            return Err(FitError::TooManyInitialLearners { learners, max });
        }
        let limits = self.derive()?;
        limits.apply_to(config);
        config.max_voters = self.voters_max;
        Ok(limits)
    }

    /// The largest limits under which every message fits a datagram.
    ///
    /// # Errors
    /// A [`FitError`] when no limits make the messages fit.
    pub fn derive(&self) -> Result<MessageLimits, FitError> {
        if self.datagram_bytes > DATAGRAM_BYTES_MAX {
            let datagram_bytes = self.datagram_bytes;
            return Err(FitError::DatagramTooLarge { datagram_bytes, max: DATAGRAM_BYTES_MAX });
        }
        // Every member takes at least a byte: check before building the configuration.
        let members = self.voters_max.saturating_mul(2).saturating_add(self.learners_max);
        if members > self.datagram_bytes {
            return Err(FitError::ConfigurationTooLarge {
                voters_max: self.voters_max,
                learners_max: self.learners_max,
                datagram_bytes: self.datagram_bytes,
            });
        }
        let membership = Arc::new(largest_membership(self.voters_max, self.learners_max));
        let snapshot_chunk_bytes = self.snapshot_chunk_bytes(&membership)?;
        let (entries_per_message_max, bytes_per_message_max) = self.append_limits(&membership)?;
        Ok(MessageLimits { snapshot_chunk_bytes, entries_per_message_max, bytes_per_message_max })
    }

    /// The most data bytes an InstallSnapshot with the largest metadata carries in a datagram.
    fn snapshot_chunk_bytes(&self, membership: &Arc<Membership>) -> Result<usize, FitError> {
        let metadata_bytes = datagram_bytes(install_snapshot(membership, 0));
        let mut chunk_bytes = self.datagram_bytes.saturating_sub(metadata_bytes);
        // The data's length prefix grows with the data (by at most two bytes here).
        while chunk_bytes > 0
            && datagram_bytes(install_snapshot(membership, chunk_bytes)) > self.datagram_bytes
        {
            chunk_bytes -= 1;
        }
        if chunk_bytes < SNAPSHOT_CHUNK_BYTES_MIN {
            return Err(FitError::SnapshotChunkTooSmall {
                chunk_bytes,
                min: SNAPSHOT_CHUNK_BYTES_MIN,
                metadata_bytes,
                datagram_bytes: self.datagram_bytes,
                voters_max: self.voters_max,
                learners_max: self.learners_max,
            });
        }
        Ok(chunk_bytes.min(core_defaults().snapshot_chunk_bytes))
    }

    /// Entries and command bytes per AppendEntries such that the largest one fits.
    fn append_limits(&self, membership: &Arc<Membership>) -> Result<(usize, usize), FitError> {
        let entries_cap = core_defaults().entries_per_message_max;
        let header_bytes = append_header_bytes(entries_cap);
        let framing_bytes = self.entry_framing_bytes(membership);
        let command_bytes = self.command_bytes_max();
        let room = self.datagram_bytes.saturating_sub(header_bytes);
        if command_bytes.saturating_add(framing_bytes) > room {
            return Err(FitError::CommandTooLarge {
                command_bytes,
                framing_bytes: header_bytes + framing_bytes,
                datagram_bytes: self.datagram_bytes,
            });
        }
        // Each batch counts at most `bytes` (the core sends an entry past the byte limit
        // alone, and none counts more than `command_bytes <= bytes`); each of its entries adds
        // at most `framing_bytes`.
        let bytes = command_bytes.max(room / 2).min(room - framing_bytes);
        let entries = ((room - bytes) / framing_bytes).min(entries_cap);
        let bytes = bytes.min(core_defaults().bytes_per_message_max);
        Ok((entries, bytes))
    }

    /// The most bytes an entry adds to an AppendEntries beyond what it counts.
    fn entry_framing_bytes(&self, membership: &Arc<Membership>) -> usize {
        let configuration = Payload::Internal(Internal::configuration((**membership).clone()));
        let internal = [configuration, Payload::noop()].into_iter().map(entry);
        let commands = self.commands_at_longest().into_iter().map(Payload::Command).map(entry);
        internal
            .chain(commands)
            .map(|entry| encoded_bytes(&entry) - entry.size_bytes())
            .max()
            .expect("invariant: the candidates are not empty")
    }

    /// One command of every kind with each string at its longest. The framing a command adds
    /// depends on its strings only through their length prefixes, which grow with them, so
    /// these add the most. (A new kind of [`KvOp`] belongs here and in
    /// [`DatagramBounds::largest_commands`].)
    fn commands_at_longest(&self) -> Vec<KvCommand> {
        let (key, text) = ("k".repeat(self.key_bytes_max), "v".repeat(self.text_bytes_max));
        [
            KvOp::Put { key: key.clone(), value: text.clone() },
            KvOp::Delete { key: key.clone() },
            KvOp::Cas { key, expected: Some(text.clone()), new: text.clone() },
            KvOp::SetPeerAddress { node: NodeId(u64::MAX), address: text },
        ]
        .into_iter()
        .map(widest_command)
        .collect()
    }

    /// The commands that count the most bytes of every kind, their strings within the
    /// bounds (a compare-and-set's two values share the text bound).
    fn largest_commands(&self) -> Vec<KvCommand> {
        let (key, text) = ("k".repeat(self.key_bytes_max), "v".repeat(self.text_bytes_max));
        [
            KvOp::Put { key: key.clone(), value: text.clone() },
            KvOp::Delete { key: key.clone() },
            KvOp::Cas { key, expected: Some(String::new()), new: text.clone() },
            KvOp::SetPeerAddress { node: NodeId(u64::MAX), address: text },
        ]
        .into_iter()
        .map(widest_command)
        .collect()
    }

    /// The most bytes one command counts.
    fn command_bytes_max(&self) -> usize {
        let commands = self.largest_commands();
        let counted = commands.iter().map(Command::size_bytes);
        counted.max().expect("invariant: the candidates are not empty")
    }
}

/// The core's default limits, which the derived ones never exceed.
fn core_defaults() -> Config {
    Config::new(NodeId(1), [NodeId(1)])
}

/// A configuration of `voters_max` voters, as many other outgoing voters and `learners_max`
/// learners, every id as wide as an id encodes.
fn largest_membership(voters_max: usize, learners_max: usize) -> Membership {
    let mut ids = (0..).map(|offset: u64| NodeId(u64::MAX - offset));
    let mut take = |count: usize| ids.by_ref().take(count).collect::<BTreeSet<_>>();
    let voters = take(voters_max);
    let outgoing = take(voters_max);
    let learners = take(learners_max);
    Membership { voters, outgoing, learners }
}

/// A command with `op` and the widest tag.
fn widest_command(op: KvOp) -> KvCommand {
    let tag = Tag { node: NodeId(u64::MAX), incarnation: u64::MAX, request: u64::MAX };
    KvCommand { tag, op }
}

/// An entry with the widest index and term.
fn entry(payload: Payload<KvCommand>) -> Entry<KvCommand> {
    Entry { term: Term(u64::MAX), index: LogIndex(u64::MAX), payload }
}

/// A chunk with the widest numbers, the configuration `membership` and `data_bytes` of data.
fn install_snapshot(membership: &Arc<Membership>, data_bytes: usize) -> Message<KvCommand> {
    let meta = SnapshotMeta {
        index: LogIndex(u64::MAX),
        term: Term(u64::MAX),
        membership: Arc::clone(membership),
    };
    Message::InstallSnapshot(InstallSnapshot {
        term: Term(u64::MAX),
        attempt: u64::MAX,
        meta,
        total_bytes: u64::MAX,
        offset: u64::MAX,
        data: vec![0; data_bytes],
    })
}

/// The datagram bytes of an AppendEntries with the widest numbers and no entries, with its
/// entry count widened to that of `entries_max` entries.
fn append_header_bytes(entries_max: usize) -> usize {
    let empty = Message::AppendEntries(AppendEntries {
        term: Term(u64::MAX),
        prev_log_index: LogIndex(u64::MAX),
        prev_log_term: Term(u64::MAX),
        entries: Vec::new(),
        leader_commit: LogIndex(u64::MAX),
    });
    // postcard writes a sequence's length as a varint, as it writes a `u64`.
    datagram_bytes(empty) + encoded_bytes(&(entries_max as u64)) - encoded_bytes(&0u64)
}

/// The size of the datagram that carries `message`, with the widest envelope.
pub(crate) fn datagram_bytes(message: Message<KvCommand>) -> usize {
    let envelope = Envelope {
        cluster_id: u64::MAX,
        from: NodeId(u64::MAX),
        to: NodeId(u64::MAX),
        message: PeerMessage::Raft(message),
    };
    encode_datagram(&envelope).expect("invariant: every message encodes into a vector").len()
}

/// The postcard size of `value`.
fn encoded_bytes<V: serde::Serialize>(value: &V) -> usize {
    postcard::to_stdvec(value).expect("invariant: every message part encodes into a vector").len()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bounds of `stepraft-kv serve --transport udp` with its default limits.
    fn server_defaults() -> DatagramBounds {
        DatagramBounds {
            datagram_bytes: DATAGRAM_BYTES_MAX,
            voters_max: 9,
            learners_max: 9,
            key_bytes_max: crate::server::api::KEY_BYTES_MAX,
            text_bytes_max: 16 << 10,
        }
    }

    /// The largest AppendEntries under `limits`: as many of the largest commands as the byte
    /// limit lets through, one more for the rest of the byte limit, then entries carrying the
    /// largest configuration up to the count limit.
    fn largest_append(bounds: &DatagramBounds, limits: &MessageLimits) -> Message<KvCommand> {
        let membership = largest_membership(bounds.voters_max, bounds.learners_max);
        let command = bounds.largest_commands().into_iter().max_by_key(Command::size_bytes);
        let command = command.expect("commands");
        let mut entries = Vec::new();
        let mut counted = 0;
        while entries.len() < limits.entries_per_message_max
            && counted + command.size_bytes() <= limits.bytes_per_message_max
        {
            counted += command.size_bytes();
            entries.push(entry(Payload::Command(command.clone())));
        }
        // One more command takes the rest of the byte budget, if a command can be that small.
        let key = "k".repeat(bounds.key_bytes_max);
        let empty = widest_command(KvOp::Put { key: key.clone(), value: String::new() });
        let rest = limits.bytes_per_message_max - counted;
        if entries.len() < limits.entries_per_message_max && rest >= empty.size_bytes() {
            let value = "v".repeat(rest - empty.size_bytes());
            entries.push(entry(Payload::Command(widest_command(KvOp::Put { key, value }))));
        }
        while entries.len() < limits.entries_per_message_max {
            let configuration = Internal::configuration(membership.clone());
            entries.push(entry(Payload::Internal(configuration)));
        }
        Message::AppendEntries(AppendEntries {
            term: Term(u64::MAX),
            prev_log_index: LogIndex(u64::MAX),
            prev_log_term: Term(u64::MAX),
            entries,
            leader_commit: LogIndex(u64::MAX),
        })
    }

    fn bounds_to_check() -> Vec<DatagramBounds> {
        let defaults = server_defaults();
        vec![
            defaults,
            DatagramBounds { voters_max: 1, learners_max: 0, ..defaults },
            DatagramBounds { learners_max: 1000, ..defaults },
            DatagramBounds { text_bytes_max: 48 << 10, ..defaults },
            DatagramBounds {
                datagram_bytes: 1472,
                key_bytes_max: 64,
                text_bytes_max: 512,
                ..defaults
            },
        ]
    }

    #[test]
    fn the_server_defaults_give_these_limits() {
        let limits = server_defaults().derive().expect("the defaults fit");
        eprintln!("derived for the UDP defaults: {limits:?}");
        assert_eq!(
            limits,
            MessageLimits {
                snapshot_chunk_bytes: 65_133,
                entries_per_message_max: 110,
                bytes_per_message_max: 32_713,
            }
        );
    }

    #[test]
    fn a_chunk_of_the_derived_size_fits_and_one_byte_more_does_not() {
        for bounds in bounds_to_check() {
            let limits = bounds.derive().expect("fits");
            let membership = Arc::new(largest_membership(bounds.voters_max, bounds.learners_max));
            let chunk = install_snapshot(&membership, limits.snapshot_chunk_bytes);
            assert!(datagram_bytes(chunk) <= bounds.datagram_bytes, "{bounds:?}");
            let larger = install_snapshot(&membership, limits.snapshot_chunk_bytes + 1);
            assert!(datagram_bytes(larger) > bounds.datagram_bytes, "{bounds:?}: not the largest");
        }
    }

    #[test]
    fn the_largest_append_under_the_derived_limits_fits() {
        for bounds in bounds_to_check() {
            let limits = bounds.derive().expect("fits");
            assert!(limits.entries_per_message_max >= 1 && limits.bytes_per_message_max >= 1);
            let length = datagram_bytes(largest_append(&bounds, &limits));
            assert!(length <= bounds.datagram_bytes, "{bounds:?} {limits:?}: {length} bytes");
            // A batch of only configurations, and one largest command alone, fit too.
            let configurations = MessageLimits { bytes_per_message_max: 0, ..limits };
            let length = datagram_bytes(largest_append(&bounds, &configurations));
            assert!(length <= bounds.datagram_bytes, "{bounds:?}: {length} bytes");
            let one = MessageLimits { entries_per_message_max: 1, ..limits };
            let length = datagram_bytes(largest_append(&bounds, &one));
            assert!(length <= bounds.datagram_bytes, "{bounds:?}: {length} bytes");
        }
    }

    #[test]
    fn impossible_bounds_are_refused() {
        let defaults = server_defaults();
        let refused = |bounds: DatagramBounds| bounds.derive().expect_err("refused");
        assert!(matches!(
            refused(DatagramBounds { datagram_bytes: DATAGRAM_BYTES_MAX + 1, ..defaults }),
            FitError::DatagramTooLarge { .. }
        ));
        assert!(matches!(
            refused(DatagramBounds { voters_max: usize::MAX, ..defaults }),
            FitError::ConfigurationTooLarge { .. }
        ));
        // 6,518 ids: at one byte each they would fit, but each encodes to 10.
        let error = refused(DatagramBounds { learners_max: 6500, ..defaults });
        assert!(matches!(error, FitError::SnapshotChunkTooSmall { .. }), "{error}");
        let error = refused(DatagramBounds { text_bytes_max: 64 << 10, ..defaults });
        assert!(matches!(error, FitError::CommandTooLarge { .. }), "{error}");
        let error = refused(DatagramBounds { datagram_bytes: 1472, ..defaults });
        assert!(matches!(error, FitError::CommandTooLarge { .. }), "{error}");
    }

    #[test]
    fn fit_writes_the_limits_and_refuses_an_initial_configuration_past_them() {
        let ids = (1..=3).map(NodeId);
        let mut config = Config::new(NodeId(1), ids);
        let limits = server_defaults().fit(&mut config).expect("fits");
        assert_eq!(config.snapshot_chunk_bytes, limits.snapshot_chunk_bytes);
        assert_eq!(config.entries_per_message_max, limits.entries_per_message_max);
        assert_eq!(config.bytes_per_message_max, limits.bytes_per_message_max);
        assert_eq!(config.max_voters, 9);
        assert_eq!(config.validate(), Ok(()));

        let mut crowded = Config::new(NodeId(1), (1..=10).map(NodeId));
        let error = server_defaults().fit(&mut crowded).expect_err("ten voters");
        assert_eq!(error, FitError::TooManyInitialVoters { voters: 10, max: 9 });
        assert_eq!(crowded, Config::new(NodeId(1), (1..=10).map(NodeId)), "left unchanged");
    }
}
