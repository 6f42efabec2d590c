//! The address book and the checks every inbound message passes, whatever the transport.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde::Serialize;
use stepraft::{Message, NodeId};

use super::PeerMessage;
use tokio::sync::mpsc;

use crate::codec::Envelope;

/// Known peers and their `host:port`, shared by the transport and the server (which adds the
/// addresses that membership changes replicate).
#[derive(Clone, Debug, Default)]
pub struct PeerBook {
    addresses: Arc<RwLock<BTreeMap<NodeId, String>>>,
}

impl PeerBook {
    /// A book holding `peers`.
    pub fn new(peers: impl IntoIterator<Item = (NodeId, String)>) -> PeerBook {
        PeerBook { addresses: Arc::new(RwLock::new(peers.into_iter().collect())) }
    }

    /// The address of `peer`.
    pub fn address(&self, peer: NodeId) -> Option<String> {
        self.read().get(&peer).cloned()
    }

    /// Records or replaces the address of `peer`.
    pub fn insert(&self, peer: NodeId, address: String) {
        self.addresses
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(peer, address);
    }

    /// Whether `peer` is known.
    pub fn contains(&self, peer: NodeId) -> bool {
        self.read().contains_key(&peer)
    }

    /// Every known peer and its address.
    pub fn all(&self) -> BTreeMap<NodeId, String> {
        self.read().clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<NodeId, String>> {
        // The map is always consistent: a panic elsewhere cannot leave half an insert.
        self.addresses.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Counters of what the transport dropped or refused; exported by `/status`.
#[derive(Debug, Default)]
pub struct TransportStats {
    /// Outgoing messages dropped because a peer's queue was full or it had no address.
    pub dropped_outgoing: AtomicU64,
    /// Outgoing messages larger than the transport can carry (a datagram, a frame): never
    /// sent, and logged as errors, since a configuration whose messages fit makes none.
    pub oversized_outgoing: AtomicU64,
    /// Frames or datagrams of another wire version.
    pub wrong_version: AtomicU64,
    /// Messages from another cluster.
    pub wrong_cluster: AtomicU64,
    /// Messages from a node not in the address book, or addressed to another node.
    pub unknown_peer: AtomicU64,
    /// Frames that did not decode, or exceeded the size limit.
    pub malformed: AtomicU64,
}

/// A snapshot of [`TransportStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TransportCounts {
    /// See [`TransportStats::dropped_outgoing`].
    pub dropped_outgoing: u64,
    /// See [`TransportStats::oversized_outgoing`].
    pub oversized_outgoing: u64,
    /// See [`TransportStats::wrong_version`].
    pub wrong_version: u64,
    /// See [`TransportStats::wrong_cluster`].
    pub wrong_cluster: u64,
    /// See [`TransportStats::unknown_peer`].
    pub unknown_peer: u64,
    /// See [`TransportStats::malformed`].
    pub malformed: u64,
}

impl TransportStats {
    /// Reads every counter.
    pub fn counts(&self) -> TransportCounts {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        TransportCounts {
            dropped_outgoing: get(&self.dropped_outgoing),
            oversized_outgoing: get(&self.oversized_outgoing),
            wrong_version: get(&self.wrong_version),
            wrong_cluster: get(&self.wrong_cluster),
            unknown_peer: get(&self.unknown_peer),
            malformed: get(&self.malformed),
        }
    }

    /// Adds one to `counter` and returns the new count.
    pub fn bump(counter: &AtomicU64) -> u64 {
        counter.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Counts a message from `me` to `to` that encodes to `length` bytes, above the
    /// transport's `limit`, and logs it as an error: the first one, then whenever the count
    /// reaches a power of two, so that a message the leader retries every tick cannot flood
    /// the log while every line still gives the total.
    pub fn record_oversized(
        &self,
        me: NodeId,
        to: NodeId,
        kind: &str,
        length: usize,
        limit: usize,
    ) {
        let count = TransportStats::bump(&self.oversized_outgoing);
        if is_logged(count) {
            tracing::error!(
                node = me.0,
                to = to.0,
                kind,
                bytes = length,
                limit,
                oversized_outgoing = count,
                "message not sent: larger than the transport's limit"
            );
        }
    }
}

/// Whether the `count`-th occurrence of a repeated event is logged: the first, then each time
/// the count reaches a power of two. A peer that retries every tick (or reconnects every few
/// milliseconds) then makes a few dozen lines in a day, not one per attempt, and every line
/// still says how many there were.
pub fn is_logged(count: u64) -> bool {
    count.is_power_of_two()
}

/// The name of a message's kind, for logs.
pub fn message_kind<T>(message: &PeerMessage<T>) -> &'static str {
    let message = match message {
        PeerMessage::Raft(message) => message,
        PeerMessage::Forward { .. } => return "Forward",
        PeerMessage::ForwardAnswer { .. } => return "ForwardAnswer",
    };
    match message {
        Message::RequestVote(_) => "RequestVote",
        Message::RequestVoteResponse(_) => "RequestVoteResponse",
        Message::PreVote(_) => "PreVote",
        Message::PreVoteResponse(_) => "PreVoteResponse",
        Message::TimeoutNow(_) => "TimeoutNow",
        Message::AppendEntries(_) => "AppendEntries",
        Message::AppendEntriesResponse(_) => "AppendEntriesResponse",
        Message::Heartbeat(_) => "Heartbeat",
        Message::HeartbeatResponse(_) => "HeartbeatResponse",
        Message::ReadIndexRequest(_) => "ReadIndexRequest",
        Message::ReadIndexResponse(_) => "ReadIndexResponse",
        Message::InstallSnapshot(_) => "InstallSnapshot",
        Message::InstallSnapshotResponse(_) => "InstallSnapshotResponse",
        // `Message` is non-exhaustive: a kind added later is still named, generically.
        _ => "message",
    }
}

/// Why an inbound message was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RefusedMessage {
    /// The sender belongs to another cluster.
    #[error("message from cluster {theirs}, this node is in cluster {ours}")]
    WrongCluster {
        /// This node's cluster.
        ours: u64,
        /// The sender's.
        theirs: u64,
    },
    /// The sender is not a known peer.
    #[error("message from unknown peer {0}")]
    UnknownPeer(NodeId),
    /// The message is for another node.
    #[error("message for {to}, this node is {me}")]
    NotForMe {
        /// The addressee.
        to: NodeId,
        /// This node.
        me: NodeId,
    },
}

/// What inbound transports need to accept a message: who we are, who we know, where to put it.
#[derive(Debug)]
pub struct InboundContext<T> {
    /// This node.
    pub me: NodeId,
    /// This node's cluster.
    pub cluster_id: u64,
    /// The known peers.
    pub book: PeerBook,
    /// The driver's inbound queue.
    pub sender: mpsc::Sender<(NodeId, PeerMessage<T>)>,
    /// Shared counters.
    pub stats: Arc<TransportStats>,
}

impl<T> Clone for InboundContext<T> {
    fn clone(&self) -> Self {
        InboundContext {
            me: self.me,
            cluster_id: self.cluster_id,
            book: self.book.clone(),
            sender: self.sender.clone(),
            stats: Arc::clone(&self.stats),
        }
    }
}

impl<T> InboundContext<T> {
    /// The context of a transport started from `config`, with fresh counters; returns it and
    /// the driver's inbound queue.
    pub fn start(config: &super::TransportConfig) -> (InboundContext<T>, super::Inbound<T>) {
        let (sender, inbound) = mpsc::channel(super::INBOUND_QUEUE);
        let context = InboundContext {
            me: config.me,
            cluster_id: config.cluster_id,
            book: config.peers.clone(),
            sender,
            stats: Arc::new(TransportStats::default()),
        };
        (context, inbound)
    }

    /// Checks an envelope's cluster, sender and addressee, counting refusals and logging
    /// them as warnings (a misconfigured peer: the first, then at powers of two of the count,
    /// see [`is_logged`]).
    ///
    /// # Errors
    /// [`RefusedMessage`] when the message must not reach the node.
    pub fn check(&self, envelope: &Envelope<T>) -> Result<(), RefusedMessage> {
        let stats = &self.stats;
        let (refusal, counter, name) = if envelope.cluster_id != self.cluster_id {
            let theirs = envelope.cluster_id;
            let refusal = RefusedMessage::WrongCluster { ours: self.cluster_id, theirs };
            (refusal, &stats.wrong_cluster, "wrong_cluster")
        } else if envelope.to != self.me {
            let refusal = RefusedMessage::NotForMe { to: envelope.to, me: self.me };
            (refusal, &stats.unknown_peer, "unknown_peer")
        } else if !self.book.contains(envelope.from) {
            (RefusedMessage::UnknownPeer(envelope.from), &stats.unknown_peer, "unknown_peer")
        } else {
            return Ok(());
        };
        let count = TransportStats::bump(counter);
        if is_logged(count) {
            let from = envelope.from.0;
            tracing::warn!(
                node = self.me.0,
                from,
                counter = name,
                count,
                "refused a message: {refusal}"
            );
        }
        Err(refusal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use stepraft::{Heartbeat, LogIndex, Term};

    /// Counts the events at `level` that reach it.
    struct Counting {
        level: tracing::Level,
        events: Arc<AtomicUsize>,
    }

    impl tracing::Subscriber for Counting {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            if *event.metadata().level() == self.level {
                self.events.fetch_add(1, Ordering::Relaxed);
            }
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    /// A peer of another cluster that retries every tick makes a warning for the first
    /// message and then at every power of two of the count, never one per message.
    #[test]
    fn refusals_are_counted_each_and_logged_at_powers_of_two() {
        let (sender, _receiver) = mpsc::channel(1);
        let context = InboundContext::<String> {
            me: NodeId(1),
            cluster_id: 7,
            book: PeerBook::new([(NodeId(2), "127.0.0.1:1".to_owned())]),
            sender,
            stats: Arc::new(TransportStats::default()),
        };
        let heartbeat = PeerMessage::Raft(Message::Heartbeat(Heartbeat {
            term: Term(1),
            commit: LogIndex(0),
            round: 0,
        }));
        let envelope =
            Envelope { cluster_id: 8, from: NodeId(2), to: NodeId(1), message: heartbeat };
        let warnings = Arc::new(AtomicUsize::new(0));
        let subscriber = Counting { level: tracing::Level::WARN, events: Arc::clone(&warnings) };
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..1000 {
                assert!(matches!(
                    context.check(&envelope),
                    Err(RefusedMessage::WrongCluster { .. })
                ));
            }
        });
        assert_eq!(context.stats.counts().wrong_cluster, 1000);
        // 1, 2, 4, ..., 512.
        assert_eq!(warnings.load(Ordering::Relaxed), 10);
        let accepted = Envelope { cluster_id: 7, ..envelope };
        assert!(context.check(&accepted).is_ok());
    }
}
