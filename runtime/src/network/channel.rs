//! An in-process network of tokio channels, one bounded queue per node.

use std::collections::BTreeMap;

use stepraft::NodeId;
use tokio::sync::mpsc;

use super::{Inbound, Outbox, PeerMessage};

/// One node's view of an in-process network: a sender to every other node's inbound queue.
#[derive(Debug)]
pub struct ChannelOutbox<T> {
    me: NodeId,
    peers: BTreeMap<NodeId, mpsc::Sender<(NodeId, PeerMessage<T>)>>,
}

/// Wires `ids` to each other with bounded channels of `capacity` messages: one
/// `(outbox, inbound)` pair per node, in the order of `ids`.
pub fn channel_network<T>(ids: &[NodeId], capacity: usize) -> Vec<(ChannelOutbox<T>, Inbound<T>)> {
    let (senders, receivers): (Vec<_>, Vec<_>) =
        ids.iter().map(|_| mpsc::channel(capacity)).unzip();
    let all: BTreeMap<NodeId, mpsc::Sender<_>> = ids.iter().copied().zip(senders).collect();
    ids.iter()
        .zip(receivers)
        .map(|(&me, inbound)| {
            let peers = all.iter().filter(|(&id, _)| id != me).map(|(&id, s)| (id, s.clone()));
            (ChannelOutbox { me, peers: peers.collect() }, inbound)
        })
        .collect()
}

impl<T: Send + 'static> Outbox<T> for ChannelOutbox<T> {
    fn send(&mut self, to: NodeId, message: PeerMessage<T>) {
        if let Some(peer) = self.peers.get(&to) {
            // A full queue or a stopped peer loses the message, as a network would.
            let _ = peer.try_send((self.me, message));
        }
    }
}
