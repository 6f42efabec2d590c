//! How a driver's messages reach its peers: the [`Outbox`] trait and its implementations —
//! in-process channels, TCP, and UDP.

mod channel;
pub mod peers;
#[cfg(feature = "tcp")]
pub mod tcp;
#[cfg(feature = "udp")]
pub mod udp;

pub use channel::{channel_network, ChannelOutbox};
pub use peers::PeerBook;

use stepraft::{Message, NodeId};

/// Messages arriving for a driver, tagged with the peer they came from.
pub type Inbound<T> = tokio::sync::mpsc::Receiver<(NodeId, Message<T>)>;

/// Where a driver hands the messages its node sends.
///
/// `send` must not block: Raft tolerates loss and retries, so an implementation drops a
/// message it cannot queue (a slow or dead peer must never stall the node or other peers).
pub trait Outbox<T>: Send + 'static {
    /// Queues `message` for `to`, or drops it.
    fn send(&mut self, to: NodeId, message: Message<T>);
}

/// A boxed outbox is an outbox, so a server can pick its transport at run time.
impl<T: 'static> Outbox<T> for Box<dyn Outbox<T>> {
    fn send(&mut self, to: NodeId, message: Message<T>) {
        (**self).send(to, message)
    }
}
