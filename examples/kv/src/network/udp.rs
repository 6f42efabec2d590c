//! UDP transport (the blog seed's choice): one datagram per message, for deployments whose
//! messages all fit — the server caps entries and values so that they do.

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use stepraft::{Message, NodeId};
use tokio::net::UdpSocket;

use super::peers::{InboundContext, PeerBook, TransportStats};
use super::Outbox;
use crate::codec::{self, Envelope, WireError, MAGIC};

/// The largest UDP payload over IPv4.
pub const DATAGRAM_BYTES_MAX: usize = 65_507;

/// Sends each message as one datagram; one that does not fit is dropped and counted.
#[derive(Debug)]
pub struct UdpOutbox<T> {
    socket: Arc<UdpSocket>,
    me: NodeId,
    cluster_id: u64,
    book: PeerBook,
    stats: Arc<TransportStats>,
    _commands: PhantomData<fn(T)>,
}

impl<T> UdpOutbox<T> {
    /// An outbox sending from `socket` (the one [`receive_datagrams`] reads).
    pub fn new(
        socket: Arc<UdpSocket>,
        me: NodeId,
        cluster_id: u64,
        book: PeerBook,
        stats: Arc<TransportStats>,
    ) -> Self {
        UdpOutbox { socket, me, cluster_id, book, stats, _commands: PhantomData }
    }
}

impl<T: Serialize + Send + 'static> Outbox<T> for UdpOutbox<T> {
    fn send(&mut self, to: NodeId, message: Message<T>) {
        let address = self.book.address(to).and_then(|a| a.parse::<SocketAddr>().ok());
        let envelope = Envelope { cluster_id: self.cluster_id, from: self.me, to, message };
        let datagram =
            codec::encode_payload(&envelope).map(|payload| [&MAGIC[..], &payload].concat());
        match (address, datagram) {
            (Some(address), Ok(datagram)) if datagram.len() <= DATAGRAM_BYTES_MAX => {
                // Never waits: a full socket buffer loses the datagram, as the network may.
                if self.socket.try_send_to(&datagram, address).is_err() {
                    TransportStats::bump(&self.stats.dropped_outgoing);
                }
            }
            _ => TransportStats::bump(&self.stats.dropped_outgoing),
        }
    }
}

/// Reads datagrams into the driver's inbound queue until the driver stops.
pub async fn receive_datagrams<T: DeserializeOwned>(
    socket: Arc<UdpSocket>,
    context: InboundContext<T>,
) {
    let mut buffer = vec![0u8; DATAGRAM_BYTES_MAX + 1];
    loop {
        let Ok((length, _)) = socket.recv_from(&mut buffer).await else { continue };
        let Some(payload) = buffer[..length].strip_prefix(&MAGIC[..]) else {
            TransportStats::bump(&context.stats.malformed);
            continue;
        };
        let envelope = match codec::decode_payload::<T>(payload) {
            Ok(envelope) => envelope,
            Err(WireError::Version { .. }) => {
                TransportStats::bump(&context.stats.wrong_version);
                continue;
            }
            Err(_) => {
                TransportStats::bump(&context.stats.malformed);
                continue;
            }
        };
        if context.check(&envelope).is_err() {
            continue;
        }
        if context.sender.send((envelope.from, envelope.message)).await.is_err() {
            return;
        }
    }
}
