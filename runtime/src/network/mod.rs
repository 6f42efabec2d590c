//! How a driver's messages reach its peers: the [`Outbox`] trait and its implementations —
//! in-process channels, TCP, and UDP.

mod channel;
mod message;
pub mod peers;
#[cfg(feature = "tcp")]
pub mod tcp;
#[cfg(feature = "udp")]
pub mod udp;

pub use channel::{channel_network, ChannelOutbox};
pub use message::{ForwardAnswer, Forwarded, PeerMessage};
pub use peers::PeerBook;

use std::net::SocketAddr;
use std::sync::Arc;

use stepraft::NodeId;

use peers::TransportStats;

/// Messages queued for the driver before a transport's readers wait for it.
pub const INBOUND_QUEUE: usize = 4096;

/// What a transport needs to know to start: who this node is, in which cluster, where to
/// listen, and where its peers are (the book can grow later, as membership changes).
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// This node.
    pub me: NodeId,
    /// The cluster's id: messages of another cluster are refused.
    pub cluster_id: u64,
    /// Where to listen (port 0: any free port; see [`Transport::local_address`]).
    pub listen: SocketAddr,
    /// The peers' addresses.
    pub peers: PeerBook,
}

/// A started transport: what [`crate::driver::NodeSetup`] takes, and its counters.
#[derive(Debug)]
pub struct Transport<O, T> {
    /// Where the driver sends.
    pub outbox: O,
    /// Where the driver reads what peers sent.
    pub inbound: Inbound<T>,
    /// What the transport dropped or refused.
    pub stats: Arc<TransportStats>,
    /// The address it listens on.
    pub local_address: SocketAddr,
}

/// Messages arriving for a driver, tagged with the peer they came from.
pub type Inbound<T> = tokio::sync::mpsc::Receiver<(NodeId, PeerMessage<T>)>;

/// Where a driver hands the messages its node sends.
///
/// `send` must not block: Raft tolerates loss and retries, so an implementation drops a
/// message it cannot queue (a slow or dead peer must never stall the node or other peers).
pub trait Outbox<T>: Send + 'static {
    /// Queues `message` for `to`, or drops it.
    fn send(&mut self, to: NodeId, message: PeerMessage<T>);
}

/// A boxed outbox is an outbox, so a server can pick its transport at run time.
impl<T: 'static> Outbox<T> for Box<dyn Outbox<T>> {
    fn send(&mut self, to: NodeId, message: PeerMessage<T>) {
        (**self).send(to, message)
    }
}
