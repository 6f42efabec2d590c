//! The UDP proxy in front of one server: forwards each datagram after its link fate.

use std::net::SocketAddr;
use std::sync::Arc;

use stepraft_tokio::codec::MAGIC;
use tokio::net::UdpSocket;

use super::{sender_of, Fate, Links};

/// Relays datagrams arriving on `socket` to the server `node` at `upstream`, forever.
pub async fn serve_udp(socket: UdpSocket, node: u64, upstream: SocketAddr, links: Arc<Links>) {
    let socket = Arc::new(socket);
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let Ok((length, _)) = socket.recv_from(&mut buffer).await else { continue };
        let datagram = buffer[..length].to_vec();
        let Some(from) = datagram.strip_prefix(&MAGIC[..]).and_then(sender_of) else {
            continue;
        };
        match links.fate((from, node)) {
            Fate::Drop => {}
            Fate::Deliver(delay) if delay.is_zero() => {
                let _ = socket.send_to(&datagram, upstream).await;
            }
            Fate::Deliver(delay) => {
                let socket = Arc::clone(&socket);
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = socket.send_to(&datagram, upstream).await;
                });
            }
        }
    }
}
