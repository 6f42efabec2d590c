//! UDP transport: one datagram per message. The application must bound what shapes a message
//! (entries and bytes per append, snapshot chunk size, configuration size) so that every
//! message fits [`DATAGRAM_BYTES_MAX`] (the key-value server derives those limits from it by
//! encoding its largest messages); one that still does not is an error in the log and a count
//! in [`TransportStats::oversized_outgoing`].

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use stepraft::NodeId;
use tokio::net::UdpSocket;

use super::peers::{is_logged, message_kind, InboundContext, PeerBook, TransportStats};
use super::{Outbox, PeerMessage, Transport, TransportConfig};
use crate::codec::{self, Envelope, WireError, MAGIC};

/// The largest UDP payload over IPv4 (65,535 bytes less the IP and UDP headers; IPv6 allows
/// 20 more, so this fits both).
pub const DATAGRAM_BYTES_MAX: usize = 65_507;

/// The datagram that carries `envelope`: [`MAGIC`], then the payload.
///
/// # Errors
/// [`WireError::Encode`] if serialisation fails.
pub fn encode_datagram<T: Serialize>(envelope: &Envelope<T>) -> Result<Vec<u8>, WireError> {
    let mut datagram = MAGIC.to_vec();
    datagram.extend_from_slice(&codec::encode_payload(envelope)?);
    Ok(datagram)
}

/// Sends each message as one datagram. One that does not fit is not sent: it is logged as
/// an error and counted in [`TransportStats::oversized_outgoing`].
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
    fn send(&mut self, to: NodeId, message: PeerMessage<T>) {
        let kind = message_kind(&message);
        let envelope = Envelope { cluster_id: self.cluster_id, from: self.me, to, message };
        let Ok(datagram) = encode_datagram(&envelope) else {
            self.count_dropped(to, kind, "did not encode");
            return;
        };
        if datagram.len() > DATAGRAM_BYTES_MAX {
            let length = datagram.len();
            self.stats.record_oversized(self.me, to, kind, length, DATAGRAM_BYTES_MAX);
            return;
        }
        let Some(address) = self.book.address(to).and_then(|a| a.parse::<SocketAddr>().ok()) else {
            self.count_dropped(to, kind, "no address, or not ip:port");
            return;
        };
        // Never waits: a full socket buffer loses the datagram, as the network may.
        if self.socket.try_send_to(&datagram, address).is_err() {
            self.count_dropped(to, kind, "the socket did not take it");
        }
    }
}

impl<T> UdpOutbox<T> {
    fn count_dropped(&self, to: NodeId, kind: &str, why: &str) {
        let count = TransportStats::bump(&self.stats.dropped_outgoing);
        if is_logged(count) {
            let (node, to) = (self.me.0, to.0);
            tracing::debug!(node, to, kind, dropped_outgoing = count, "message dropped: {why}");
        }
    }
}

/// Reads datagrams into the driver's inbound queue until the driver stops.
pub async fn receive_datagrams<T: DeserializeOwned>(
    socket: Arc<UdpSocket>,
    context: InboundContext<T>,
) {
    let mut buffer = vec![0u8; DATAGRAM_BYTES_MAX + 1];
    let (node, mut receive_errors) = (context.me.0, 0u64);
    loop {
        let (length, sender) = match socket.recv_from(&mut buffer).await {
            Ok(received) => received,
            Err(error) => {
                receive_errors += 1;
                if is_logged(receive_errors) {
                    tracing::debug!(node, %error, receive_errors, "udp receive failed");
                }
                continue;
            }
        };
        let Some(payload) = buffer[..length].strip_prefix(&MAGIC[..]) else {
            let count = TransportStats::bump(&context.stats.malformed);
            if is_logged(count) {
                tracing::debug!(node, %sender, count, "refused a datagram without the wire magic");
            }
            continue;
        };
        let envelope = match codec::decode_payload::<T>(payload) {
            Ok(envelope) => envelope,
            Err(error) => {
                let (counter, name) = match error {
                    WireError::Version { .. } => (&context.stats.wrong_version, "wrong_version"),
                    _ => (&context.stats.malformed, "malformed"),
                };
                let count = TransportStats::bump(counter);
                if is_logged(count) {
                    tracing::warn!(node, %sender, counter = name, count, "refused a datagram: {error}");
                }
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

/// Starts a UDP transport: binds `config.listen`, reads datagrams into the driver's queue and
/// sends one datagram per message to the peers in `config.peers`, on the current tokio
/// runtime. The node's configuration must keep every message within
/// [`DATAGRAM_BYTES_MAX`] (see the module documentation).
///
/// # Errors
/// The IO error of binding the socket.
pub async fn start<T>(config: TransportConfig) -> std::io::Result<Transport<UdpOutbox<T>, T>>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    let socket = Arc::new(UdpSocket::bind(config.listen).await?);
    let local_address = socket.local_addr()?;
    let (context, inbound) = InboundContext::start(&config);
    let stats = Arc::clone(&context.stats);
    tokio::spawn(receive_datagrams(Arc::clone(&socket), context));
    let outbox =
        UdpOutbox::new(socket, config.me, config.cluster_id, config.peers, Arc::clone(&stats));
    Ok(Transport { outbox, inbound, stats, local_address })
}
