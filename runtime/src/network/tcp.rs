//! TCP transport: one outgoing connection per peer, fed by a bounded queue, reconnecting with
//! exponential backoff; and the reader of incoming peer connections.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use stepraft::NodeId;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::peers::{
    is_logged, message_kind, InboundContext, PeerBook, RefusedMessage, TransportStats,
};
use super::{Outbox, PeerMessage, Transport, TransportConfig};
use crate::codec::{self, Envelope, WireError, FRAME_BYTES_MAX, MAGIC};

/// Frames queued per peer; beyond, messages to that peer are dropped (Raft retries), so a slow
/// peer never holds back the node or the other peers.
pub const PEER_QUEUE_FRAMES: usize = 1024;
const BACKOFF_MIN: Duration = Duration::from_millis(20);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Sends a node's messages over TCP.
#[derive(Debug)]
pub struct TcpOutbox<T> {
    me: NodeId,
    cluster_id: u64,
    book: PeerBook,
    queues: BTreeMap<NodeId, mpsc::Sender<Vec<u8>>>,
    stats: Arc<TransportStats>,
    _commands: PhantomData<fn(T)>,
}

impl<T> TcpOutbox<T> {
    /// An outbox for node `me` of cluster `cluster_id`, dialling the addresses in `book`.
    pub fn new(me: NodeId, cluster_id: u64, book: PeerBook, stats: Arc<TransportStats>) -> Self {
        TcpOutbox { me, cluster_id, book, queues: BTreeMap::new(), stats, _commands: PhantomData }
    }

    fn queue(&mut self, to: NodeId) -> &mpsc::Sender<Vec<u8>> {
        self.queues.entry(to).or_insert_with(|| {
            let (sender, receiver) = mpsc::channel(PEER_QUEUE_FRAMES);
            tokio::spawn(peer_writer(self.me, to, self.book.clone(), receiver));
            sender
        })
    }
}

impl<T: Serialize + Send + 'static> Outbox<T> for TcpOutbox<T> {
    fn send(&mut self, to: NodeId, message: PeerMessage<T>) {
        let kind = message_kind(&message);
        let envelope = Envelope { cluster_id: self.cluster_id, from: self.me, to, message };
        let frame = match codec::encode_frame(&envelope) {
            Ok(frame) => frame,
            Err(WireError::Oversized { length, limit }) => {
                self.stats.record_oversized(self.me, to, kind, length, limit);
                return;
            }
            Err(_) => {
                self.count_dropped(to, kind, "did not encode");
                return;
            }
        };
        if self.queue(to).try_send(frame).is_err() {
            self.count_dropped(to, kind, "the peer's queue is full");
        }
    }
}

impl<T> TcpOutbox<T> {
    fn count_dropped(&self, to: NodeId, kind: &str, why: &str) {
        let count = TransportStats::bump(&self.stats.dropped_outgoing);
        if is_logged(count) {
            let (node, to) = (self.me.0, to.0);
            tracing::debug!(node, to, kind, dropped_outgoing = count, "message dropped: {why}");
        }
    }
}

/// Keeps one connection to `peer` alive and writes its queued frames. Failed attempts and
/// lost connections are logged with rate sense ([`is_logged`]): a dead peer is retried every
/// second, and a peer that closes every connection is redialled at once.
async fn peer_writer(me: NodeId, peer: NodeId, book: PeerBook, mut queue: mpsc::Receiver<Vec<u8>>) {
    let mut backoff = BACKOFF_MIN;
    // Attempts that failed since the last connection, and connections lost since the start.
    let (mut failures, mut lost) = (0u64, 0u64);
    let (node, to) = (me.0, peer.0);
    loop {
        if queue.is_closed() {
            return;
        }
        let address = book.address(peer);
        let connected = match &address {
            Some(address) => {
                match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
                    Ok(connected) => connected,
                    Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
                }
            }
            None => Err(std::io::Error::other("no address")),
        };
        let stream = match connected {
            Ok(stream) => stream,
            Err(error) => {
                failures += 1;
                // A peer still starting is normal: a warning only once it has stayed
                // unreachable for a few attempts.
                if is_logged(failures) && failures >= 4 {
                    tracing::warn!(node, to, ?address, %error, failures, "cannot connect to peer");
                } else if is_logged(failures) {
                    tracing::debug!(node, to, ?address, %error, failures, "cannot connect to peer");
                }
                // Messages queued while the peer is unreachable are stale by the time it is
                // back; Raft resends what still matters. (Not before the first attempt: the
                // message that created this writer is waiting in the queue.)
                while queue.try_recv().is_ok() {}
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        if failures >= 4 {
            tracing::info!(node, to, ?address, failures, "connected to peer");
        }
        (failures, backoff) = (0, BACKOFF_MIN);
        let _ = stream.set_nodelay(true);
        match write_frames(stream, &mut queue).await {
            Ok(()) => return, // the outbox is gone
            Err(error) => {
                lost += 1;
                if is_logged(lost) {
                    tracing::debug!(node, to, %error, lost, "connection to peer lost");
                }
                tokio::time::sleep(backoff).await
            }
        }
    }
}

/// Writes the magic, then frames as they come, flushing whenever the queue runs dry.
async fn write_frames(
    stream: TcpStream,
    queue: &mut mpsc::Receiver<Vec<u8>>,
) -> std::io::Result<()> {
    let mut writer = BufWriter::with_capacity(64 << 10, stream);
    writer.write_all(&MAGIC).await?;
    writer.flush().await?;
    while let Some(frame) = queue.recv().await {
        writer.write_all(&frame).await?;
        while let Ok(frame) = queue.try_recv() {
            writer.write_all(&frame).await?;
        }
        writer.flush().await?;
    }
    Ok(())
}

/// Why an incoming peer connection was closed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerConnectionError {
    /// Reading failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// A frame could not be accepted (oversized, another version).
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The peer is misconfigured or unknown.
    #[error(transparent)]
    Refused(#[from] RefusedMessage),
}

/// Reads frames from a peer connection whose magic was already consumed, until it closes.
/// Returns why it was closed; an orderly close is `Ok`.
///
/// A frame that does not decode is skipped (the framing is intact); another wire version, a
/// wrong cluster, an unknown peer or an oversized frame closes the connection, since that
/// peer will keep sending the same.
///
/// # Errors
/// [`PeerConnectionError`] saying why the connection was dropped.
pub async fn read_peer_frames<T, R>(
    mut stream: R,
    context: &InboundContext<T>,
) -> Result<(), PeerConnectionError>
where
    T: DeserializeOwned,
    R: AsyncRead + Unpin,
{
    let mut payload = Vec::new();
    loop {
        let mut length = [0u8; 4];
        match stream.read_exact(&mut length).await {
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(error) => return Err(error.into()),
        }
        let length = u32::from_be_bytes(length) as usize;
        if length > FRAME_BYTES_MAX {
            let count = TransportStats::bump(&context.stats.malformed);
            let error = WireError::Oversized { length, limit: FRAME_BYTES_MAX };
            log_bad_frame(context.me, &error, "malformed", count);
            return Err(error.into());
        }
        payload.resize(length, 0);
        stream.read_exact(&mut payload).await?;
        let envelope = match codec::decode_payload::<T>(&payload) {
            Ok(envelope) => envelope,
            Err(error @ WireError::Version { .. }) => {
                let count = TransportStats::bump(&context.stats.wrong_version);
                log_bad_frame(context.me, &error, "wrong_version", count);
                return Err(error.into());
            }
            Err(error) => {
                let count = TransportStats::bump(&context.stats.malformed);
                log_bad_frame(context.me, &error, "malformed", count);
                continue;
            }
        };
        context.check(&envelope)?;
        if context.sender.send((envelope.from, envelope.message)).await.is_err() {
            return Ok(()); // the driver stopped
        }
    }
}

/// Logs a frame refused for `error` as a warning, the `count`-th of its `counter`, with rate
/// sense ([`is_logged`]): a peer of another version keeps sending the same.
fn log_bad_frame(me: NodeId, error: &WireError, counter: &str, count: u64) {
    if is_logged(count) {
        tracing::warn!(node = me.0, counter, count, "refused a frame: {error}");
    }
}

/// Starts a TCP transport: listens on `config.listen` for peer connections (each must start
/// with [`MAGIC`]; anything else is closed) and dials peers from `config.peers`, on the current
/// tokio runtime. To share a port with another protocol, accept connections yourself and hand
/// peer ones to [`read_peer_frames`], as the key-value server does.
///
/// # Errors
/// The IO error of binding the listener.
pub async fn start<T>(config: TransportConfig) -> std::io::Result<Transport<TcpOutbox<T>, T>>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    let listener = TcpListener::bind(config.listen).await?;
    let local_address = listener.local_addr()?;
    let (context, inbound) = InboundContext::start(&config);
    let stats = Arc::clone(&context.stats);
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { continue };
            let context = context.clone();
            tokio::spawn(async move {
                let mut magic = [0u8; 4];
                if stream.read_exact(&mut magic).await.is_ok() && magic == MAGIC {
                    if let Err(error) = read_peer_frames(stream, &context).await {
                        tracing::debug!(node = context.me.0, %error, "closed a peer connection");
                    }
                } else {
                    let count = TransportStats::bump(&context.stats.malformed);
                    if is_logged(count) {
                        let node = context.me.0;
                        tracing::debug!(node, count, "closed a connection without the wire magic");
                    }
                }
            });
        }
    });
    let outbox = TcpOutbox::new(config.me, config.cluster_id, config.peers, Arc::clone(&stats));
    Ok(Transport { outbox, inbound, stats, local_address })
}
