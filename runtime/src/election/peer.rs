//! The application's side of the transport — the [`ElectionPeer`] trait and the
//! [`ElectionMessage`] it carries — and the node's links to its peers: one bounded queue and
//! one sending task per peer, so that a slow or dead peer never holds back the node or the
//! others.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use stepraft::{Message, NodeId};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Messages queued for one peer while its [`ElectionPeer::send`] is busy; more are dropped.
/// Election traffic is a heartbeat or two per tick and carries no commands, so a peer this far
/// behind gains nothing from older messages.
pub const PEER_QUEUE: usize = 64;

/// One message between two election nodes: the sender's id and the Raft message.
///
/// Serializable (serde), for transports that cross a process boundary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectionMessage {
    /// The node that sent it. A transport that knows who its peer is should drop a message
    /// whose `from` says otherwise; the node itself trusts it, as the core trusts
    /// [`Input::Receive`](stepraft::Input::Receive).
    pub from: NodeId,
    /// The message, for the receiving node's core.
    pub message: Message<()>,
}

/// How a node reaches one peer: the whole transport an application supplies.
///
/// The node calls [`send`](ElectionPeer::send) from a task of its own per peer, one message
/// at a time, so `send` may wait (for a connection, a full channel) without delaying the node
/// or its other peers; while it waits, up to [`PEER_QUEUE`] messages queue behind it and later
/// ones are dropped. Delivery may fail silently: Raft retries what matters.
pub trait ElectionPeer: Send + Sync + 'static {
    /// The peer's id. Read once, when the handle is given to the node.
    fn id(&self) -> NodeId;

    /// Delivers `message` to the peer's node — typically into the inbox sender of its
    /// [`ElectionHandle`](super::ElectionHandle) on the other side of the transport — or
    /// gives up.
    fn send(&self, message: ElectionMessage) -> impl Future<Output = ()> + Send;
}

/// Messages the node could not hand to a peer's queue, counted since it started.
#[derive(Debug, Default)]
pub struct DroppedSends {
    unknown_peer: AtomicU64,
    queue_full: AtomicU64,
}

impl DroppedSends {
    /// Messages to a node no handle was given for (or whose handle was removed): a reply to
    /// a node that has not been announced here yet, say.
    pub fn unknown_peer(&self) -> u64 {
        self.unknown_peer.load(Ordering::Relaxed)
    }

    /// Messages to a peer whose queue was full, because its `send` was slow or its sending
    /// task ended (a panic in `send`).
    pub fn queue_full(&self) -> u64 {
        self.queue_full.load(Ordering::Relaxed)
    }
}

/// A queue to one peer and the task that empties it through the peer's handle.
#[derive(Debug)]
struct Link {
    queue: mpsc::Sender<ElectionMessage>,
    task: JoinHandle<()>,
}

impl Link {
    fn start<P: ElectionPeer>(peer: P) -> Link {
        let (queue, mut queued) = mpsc::channel(PEER_QUEUE);
        let task = tokio::spawn(async move {
            while let Some(message) = queued.recv().await {
                peer.send(message).await;
            }
        });
        Link { queue, task }
    }
}

impl Drop for Link {
    /// A `send` that never returns must not outlive the link.
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The node's links, by peer id. Dropping them stops every sending task.
#[derive(Debug)]
pub(super) struct Links {
    me: NodeId,
    peers: BTreeMap<NodeId, Link>,
    dropped: Arc<DroppedSends>,
}

impl Links {
    pub(super) fn new(me: NodeId, dropped: Arc<DroppedSends>) -> Links {
        Links { me, peers: BTreeMap::new(), dropped }
    }

    /// Sends to `id` through `peer` from now on, in place of any earlier handle.
    pub(super) fn insert<P: ElectionPeer>(&mut self, id: NodeId, peer: P) {
        self.peers.insert(id, Link::start(peer));
    }

    /// Stops sending to `id`.
    pub(super) fn remove(&mut self, id: NodeId) {
        self.peers.remove(&id);
    }

    /// Queues `message` for `to`, or drops and counts it. Logged at debug when a count reaches
    /// a power of two, so that a peer missed on every tick does not make a line per tick.
    pub(super) fn send(&self, to: NodeId, message: Message<()>) {
        let Some(link) = self.peers.get(&to) else {
            self.count_drop(&self.dropped.unknown_peer, to, "a node with no handle");
            return;
        };
        if link.queue.try_send(ElectionMessage { from: self.me, message }).is_err() {
            self.count_drop(&self.dropped.queue_full, to, "a peer whose queue is full");
        }
    }

    fn count_drop(&self, counter: &AtomicU64, to: NodeId, whom: &str) {
        let total = counter.fetch_add(1, Ordering::Relaxed) + 1;
        if total.is_power_of_two() {
            tracing::debug!(node = self.me.0, to = to.0, total, "dropped a message to {whom}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use stepraft::{Heartbeat, LogIndex, Term};

    /// A peer that records what it is sent, or never returns from `send`.
    struct Recording {
        id: NodeId,
        sent: Arc<Mutex<Vec<ElectionMessage>>>,
        stuck: bool,
    }

    impl ElectionPeer for Recording {
        fn id(&self) -> NodeId {
            self.id
        }

        async fn send(&self, message: ElectionMessage) {
            if self.stuck {
                std::future::pending::<()>().await;
            }
            self.sent.lock().expect("no panic while held").push(message);
        }
    }

    fn heartbeat(round: u64) -> Message<()> {
        Message::Heartbeat(Heartbeat { term: Term(1), commit: LogIndex(0), round })
    }

    #[tokio::test(start_paused = true)]
    async fn a_message_reaches_its_peer_and_one_to_an_unknown_id_is_counted() {
        let dropped = Arc::new(DroppedSends::default());
        let mut links = Links::new(NodeId(1), Arc::clone(&dropped));
        let sent = Arc::new(Mutex::new(Vec::new()));
        links.insert(NodeId(2), Recording { id: NodeId(2), sent: Arc::clone(&sent), stuck: false });
        links.send(NodeId(2), heartbeat(1));
        links.send(NodeId(3), heartbeat(2));
        tokio::task::yield_now().await;
        let expected = ElectionMessage { from: NodeId(1), message: heartbeat(1) };
        assert_eq!(*sent.lock().expect("no panic while held"), [expected]);
        assert_eq!((dropped.unknown_peer(), dropped.queue_full()), (1, 0));
        links.remove(NodeId(2));
        links.send(NodeId(2), heartbeat(3));
        assert_eq!(dropped.unknown_peer(), 2, "a removed peer is unknown again");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_peer_fills_only_its_own_queue_and_dies_with_its_link() {
        let dropped = Arc::new(DroppedSends::default());
        let mut links = Links::new(NodeId(1), Arc::clone(&dropped));
        let stuck = Arc::new(Mutex::new(Vec::new()));
        let healthy = Arc::new(Mutex::new(Vec::new()));
        links.insert(NodeId(2), Recording { id: NodeId(2), sent: Arc::clone(&stuck), stuck: true });
        links.insert(
            NodeId(3),
            Recording { id: NodeId(3), sent: Arc::clone(&healthy), stuck: false },
        );
        let task = links.peers[&NodeId(2)].task.abort_handle();
        for round in 0..200 {
            links.send(NodeId(2), heartbeat(round));
            links.send(NodeId(3), heartbeat(round));
            tokio::task::yield_now().await;
        }
        // One message is in the stuck `send`, PEER_QUEUE wait behind it, the rest are dropped.
        assert_eq!(dropped.queue_full(), 200 - 1 - PEER_QUEUE as u64);
        assert_eq!(healthy.lock().expect("no panic while held").len(), 200);
        assert!(!task.is_finished());
        links.remove(NodeId(2));
        tokio::task::yield_now().await;
        assert!(task.is_finished(), "the stuck send was aborted with its link");
    }
}
