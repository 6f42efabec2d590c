//! The TCP proxy in front of one server: relays peer connections frame by frame, applying
//! each frame's link fate, and HTTP connections byte for byte.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use stepraft_tokio::codec::{FRAME_BYTES_MAX, MAGIC};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{sender_of, Fate, Links};

/// Frames held per relayed connection (delayed ones included); beyond, frames are dropped,
/// as an overloaded network would.
const HELD_FRAMES_MAX: usize = 4096;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Accepts connections on `listener` for the server `node` at `upstream`, forever.
pub async fn serve_tcp(listener: TcpListener, node: u64, upstream: SocketAddr, links: Arc<Links>) {
    loop {
        let Ok((client, _)) = listener.accept().await else { continue };
        tokio::spawn(relay(client, node, upstream, Arc::clone(&links)));
    }
}

async fn relay(mut client: TcpStream, node: u64, upstream: SocketAddr, links: Arc<Links>) {
    let mut magic = [0u8; 4];
    if client.read_exact(&mut magic).await.is_err() {
        return;
    }
    let Ok(Ok(mut server)) =
        tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(upstream)).await
    else {
        return; // the server is down: the client sees its connection closed
    };
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    if server.write_all(&magic).await.is_err() {
        return;
    }
    if magic == MAGIC {
        relay_frames(client, server, node, &links).await;
    } else {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
    }
}

/// Reads frames from the sender and hands each, with its due time, to a writer task that
/// delivers them in order; stops when either side closes or the links are reset.
async fn relay_frames(mut client: TcpStream, server: TcpStream, node: u64, links: &Links) {
    let mut resets = links.subscribe_resets();
    let (held, mut due) = mpsc::channel::<(Instant, Vec<u8>)>(HELD_FRAMES_MAX);
    let writer = tokio::spawn(async move {
        let mut server = server;
        while let Some((at, frame)) = due.recv().await {
            tokio::time::sleep_until(at).await;
            if server.write_all(&frame).await.is_err() {
                return;
            }
        }
    });
    let mut sender = None;
    let mut last_due = Instant::now();
    loop {
        let frame = tokio::select! {
            frame = read_frame(&mut client) => frame,
            _ = resets.changed() => break,
        };
        let Some(frame) = frame else { break };
        let from = match sender {
            Some(from) => from,
            None => match sender_of(&frame[4..]) {
                Some(from) => *sender.insert(from),
                None => break, // not a message of ours: let the server refuse the next one
            },
        };
        if held.is_closed() {
            break;
        }
        if let Fate::Deliver(delay) = links.fate((from, node)) {
            last_due = last_due.max(Instant::now() + delay);
            let _ = held.try_send((last_due, frame));
        }
    }
    writer.abort();
}

/// One frame, length prefix included; `None` at the end of the stream or on a bad length.
async fn read_frame(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut length = [0u8; 4];
    stream.read_exact(&mut length).await.ok()?;
    let payload = u32::from_be_bytes(length) as usize;
    if payload > FRAME_BYTES_MAX {
        return None;
    }
    let mut frame = vec![0u8; 4 + payload];
    frame[..4].copy_from_slice(&length);
    stream.read_exact(&mut frame[4..]).await.ok()?;
    Some(frame)
}
