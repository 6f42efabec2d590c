//! The `stepraft-kv serve` node: driver, storage, transport, the application task and the HTTP
//! API, all on one listening port (peer connections announce themselves with the wire magic).

pub mod api;
pub mod app;
pub mod error;
pub mod limits;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use stepraft::{Config, NodeId};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

use crate::command::KvCommand;
use crate::http::server::{read_request, write_response, Response};
use api::ApiContext;
use app::App;
use limits::{DatagramBounds, FitError};
use stepraft_tokio::codec::MAGIC;
use stepraft_tokio::driver::{spawn_node, DriverError, NodeSetup};
use stepraft_tokio::network::peers::{InboundContext, TransportStats};
use stepraft_tokio::network::tcp::{read_peer_frames, TcpOutbox};
use stepraft_tokio::network::udp::{receive_datagrams, UdpOutbox, DATAGRAM_BYTES_MAX};
use stepraft_tokio::network::{Outbox, PeerBook};
use stepraft_tokio::storage::{RedbStorage, StallableStorage, StorageError, StoreIdentity};

/// How peers exchange Raft messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    /// Length-delimited frames over TCP (the default).
    Tcp,
    /// One datagram per message; the limits that shape messages are derived from the
    /// datagram size ([`limits`]), so that every message fits.
    Udp,
}

/// The voter and learner limits of a UDP node given none: a snapshot message carries the
/// whole configuration, so it must be bounded.
pub const UDP_MEMBERS_MAX_DEFAULT: usize = 9;

/// Everything `serve` needs.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// This node's id.
    pub id: NodeId,
    /// The address for HTTP and peer traffic.
    pub listen: SocketAddr,
    /// The other members and their addresses (this node may be listed too).
    pub peers: Vec<(NodeId, String)>,
    /// The data directory.
    pub data: PathBuf,
    /// The cluster's id: stores and messages of another cluster are refused.
    pub cluster_id: u64,
    /// Start without a configuration and wait to be added by the cluster.
    pub join: bool,
    /// The real length of one logical tick.
    pub tick: Duration,
    /// The peer transport.
    pub transport: TransportKind,
    /// Serve linearizable reads under a leader lease (clock assumption: see the core docs).
    pub lease_reads: bool,
    /// How long an HTTP request waits for the cluster before `504`.
    pub request_timeout: Duration,
    /// Snapshot the key-value state every this many applied entries and compact the log
    /// (0: never).
    pub snapshot_every: u64,
    /// Entries kept before a snapshot's index when compacting, for followers that lag a little.
    pub compaction_tail: u64,
    /// Most voters of a configuration; `None`: no limit over TCP,
    /// [`UDP_MEMBERS_MAX_DEFAULT`] over UDP.
    pub voters_max: Option<usize>,
    /// Most learners of a configuration; `None`: no limit over TCP,
    /// [`UDP_MEMBERS_MAX_DEFAULT`] over UDP.
    pub learners_max: Option<usize>,
    /// Fault injection for tests: every storage write waits while this file exists, as
    /// behind a disk stuck in an fsync ([`StallableStorage`]).
    pub stall_storage_while: Option<PathBuf>,
}

impl ServeOptions {
    /// The largest HTTP body accepted: bounded so that one command fits a message (and a UDP
    /// datagram with the UDP transport).
    pub fn body_bytes_max(&self) -> usize {
        match self.transport {
            TransportKind::Tcp => 1 << 20,
            TransportKind::Udp => 16 << 10,
        }
    }

    /// The voter limit in force (see [`ServeOptions::voters_max`]).
    pub fn effective_voters_max(&self) -> usize {
        self.voters_max.unwrap_or(match self.transport {
            TransportKind::Tcp => usize::MAX,
            TransportKind::Udp => UDP_MEMBERS_MAX_DEFAULT,
        })
    }

    /// The learner limit in force (see [`ServeOptions::learners_max`]).
    pub fn effective_learners_max(&self) -> usize {
        self.learners_max.unwrap_or(match self.transport {
            TransportKind::Tcp => usize::MAX,
            TransportKind::Udp => UDP_MEMBERS_MAX_DEFAULT,
        })
    }
}

/// Why a node could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The data directory cannot be used.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// The driver stopped or could not start.
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// The listen address cannot be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The driver task panicked.
    #[error("driver task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// The configuration makes messages that a datagram cannot hold.
    #[error("messages do not fit the udp transport: {0}")]
    DoesNotFit(#[from] FitError),
}

/// Time a new connection has to say what it is, and an idle HTTP connection to send a request.
const FIRST_BYTES_TIMEOUT: Duration = Duration::from_secs(10);
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs a node until its driver stops (a storage failure); never returns otherwise.
///
/// # Errors
/// [`ServeError`] for an unusable data directory or address, or a storage failure.
pub async fn serve(options: ServeOptions) -> Result<(), ServeError> {
    // Refuse a configuration whose messages cannot be sent before touching disk or network.
    let config = node_config(&options)?;
    let identity = StoreIdentity { cluster_id: options.cluster_id, node_id: options.id.0 };
    let storage = RedbStorage::<KvCommand>::open(&options.data, identity)?;
    let storage = StallableStorage::new(storage, options.stall_storage_while.clone());
    let book = PeerBook::new(options.peers.iter().cloned());
    book.insert(options.id, options.listen.to_string());
    let stats = Arc::new(TransportStats::default());
    let bind_error = |source| ServeError::Bind { address: options.listen, source };
    let listener = TcpListener::bind(options.listen).await.map_err(bind_error)?;
    let (inbound_sender, inbound) = mpsc::channel(4096);
    let inbound_context = InboundContext {
        me: options.id,
        cluster_id: options.cluster_id,
        book: book.clone(),
        sender: inbound_sender,
        stats: Arc::clone(&stats),
    };
    let outbox: Box<dyn Outbox<KvCommand>> = match options.transport {
        TransportKind::Tcp => Box::new(TcpOutbox::new(
            options.id,
            options.cluster_id,
            book.clone(),
            Arc::clone(&stats),
        )),
        TransportKind::Udp => {
            let socket = Arc::new(UdpSocket::bind(options.listen).await.map_err(bind_error)?);
            tokio::spawn(receive_datagrams(Arc::clone(&socket), inbound_context.clone()));
            let outbox = UdpOutbox::new(
                socket,
                options.id,
                options.cluster_id,
                book.clone(),
                Arc::clone(&stats),
            );
            Box::new(outbox)
        }
    };
    // The defaults of `NodeSetup::new`, parallel leader writes included.
    let handle = spawn_node(NodeSetup {
        tick: options.tick,
        learners_max: options.effective_learners_max(),
        ..NodeSetup::new(config, storage, outbox, inbound)
    })?;
    handle.metrics.attach_transport(Arc::clone(&stats));
    let (app_sender, app_requests) = mpsc::channel(4096);
    let app = App::new(options.id, book.clone(), handle.client.clone(), options.snapshot_every)
        .report_applied_to(handle.metrics.clone());
    tokio::spawn(app.run(app_requests, handle.applied, handle.leadership));
    let api = Arc::new(ApiContext {
        me: options.id,
        app: app_sender,
        book,
        stats,
        metrics: handle.metrics.clone(),
        request_timeout: options.request_timeout,
    });
    tracing::info!(
        node = options.id.0,
        "listening on {} (data {})",
        options.listen,
        options.data.display()
    );
    let body_bytes_max = options.body_bytes_max();
    let accept = async {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let (api, inbound) = (Arc::clone(&api), inbound_context.clone());
            tokio::spawn(connection(stream, api, inbound, body_bytes_max));
        }
    };
    tokio::select! {
        result = handle.task => result?.map_err(ServeError::from),
        () = accept => Ok(()),
    }
}

/// The core configuration of a node. Over UDP, the limits that shape messages are derived
/// from the datagram size.
///
/// # Errors
/// [`ServeError::DoesNotFit`] when no limits make every message fit a datagram.
fn node_config(options: &ServeOptions) -> Result<Config, ServeError> {
    let voters: Vec<NodeId> = if options.join {
        Vec::new()
    } else {
        let mut voters: Vec<NodeId> = options.peers.iter().map(|(id, _)| *id).collect();
        voters.push(options.id);
        voters.sort();
        voters.dedup();
        voters
    };
    let mut config = Config::new(options.id, voters);
    config.lease_reads = options.lease_reads;
    config.compaction_tail_entries = options.compaction_tail;
    config.max_voters = options.effective_voters_max();
    if options.transport == TransportKind::Udp {
        let bounds = DatagramBounds {
            datagram_bytes: DATAGRAM_BYTES_MAX,
            voters_max: options.effective_voters_max(),
            learners_max: options.effective_learners_max(),
            key_bytes_max: api::KEY_BYTES_MAX,
            text_bytes_max: options.body_bytes_max(),
        };
        let limits = bounds.fit(&mut config)?;
        tracing::info!(
            node = options.id.0,
            "udp datagrams of {DATAGRAM_BYTES_MAX} bytes: snapshot chunks of {} bytes, \
             appends of at most {} entries and {} command bytes",
            limits.snapshot_chunk_bytes,
            limits.entries_per_message_max,
            limits.bytes_per_message_max
        );
        config.in_flight_messages_max = 64;
    }
    Ok(config)
}

/// Serves one connection: a peer's frames if it starts with the magic, else HTTP.
async fn connection(
    mut stream: TcpStream,
    api: Arc<ApiContext>,
    inbound: InboundContext<KvCommand>,
    body_bytes_max: usize,
) {
    let _ = stream.set_nodelay(true);
    let mut buffer = Vec::new();
    let first_bytes = async {
        let mut chunk = [0u8; 4096];
        while buffer.len() < MAGIC.len() {
            let read = stream.read(&mut chunk).await?;
            if read == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            buffer.extend_from_slice(&chunk[..read]);
        }
        Ok::<(), std::io::Error>(())
    };
    if !matches!(tokio::time::timeout(FIRST_BYTES_TIMEOUT, first_bytes).await, Ok(Ok(()))) {
        return;
    }
    if buffer.starts_with(&MAGIC) {
        let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
        let reader = std::io::Cursor::new(buffer.split_off(MAGIC.len())).chain(stream);
        if let Err(error) = read_peer_frames(reader, &inbound).await {
            // Debug only: a refusal is already a warning from the transport (with rate sense),
            // and a peer that keeps being refused reconnects every few milliseconds.
            tracing::debug!(node = inbound.me.0, "closed peer connection from {peer}: {error}");
        }
        return;
    }
    http_connection(stream, buffer, &api, body_bytes_max).await;
}

async fn http_connection(
    mut stream: TcpStream,
    mut buffer: Vec<u8>,
    api: &ApiContext,
    body_bytes_max: usize,
) {
    loop {
        let read = read_request(&mut stream, &mut buffer, body_bytes_max);
        let request = match tokio::time::timeout(IDLE_TIMEOUT, read).await {
            Ok(Ok(Some(request))) => request,
            Ok(Err(error)) => {
                if let Some(status) = error.status() {
                    let body = serde_json::json!({ "error": error.to_string() });
                    let _ = write_response(&mut stream, &Response::json(status, &body), true).await;
                    close_after_error(stream).await;
                }
                return;
            }
            Ok(Ok(None)) | Err(_) => return,
        };
        let response = api::handle(api, &request).await;
        if write_response(&mut stream, &response, request.close).await.is_err() || request.close {
            return;
        }
    }
}

/// How long a connection refused mid-request may keep sending before it is dropped.
const LINGER_TIMEOUT: Duration = Duration::from_secs(1);

/// Closes a connection whose request was refused: ends the write side, then reads and drops
/// what the client still sends (for at most [`LINGER_TIMEOUT`]), because closing a socket
/// with unread bytes resets the connection, and a reset can destroy the error answer before
/// the client reads it.
async fn close_after_error(mut stream: TcpStream) {
    use tokio::io::AsyncWriteExt;
    if stream.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        let mut chunk = [0u8; 4096];
        while matches!(stream.read(&mut chunk).await, Ok(read) if read > 0) {}
    };
    let _ = tokio::time::timeout(LINGER_TIMEOUT, drain).await;
}
