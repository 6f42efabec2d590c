//! Three nodes over TCP on loopback, each on its own port: start the transports, tell every
//! node where the others listen, propose on the leader, and wait until every node applied it.
//!
//! `cargo run -p stepraft-tokio --example tcp_cluster`

use std::time::Duration;

use stepraft::{Config, NodeId, Payload};
use stepraft_tokio::driver::{spawn_node, Applied, NodeHandle, NodeSetup};
use stepraft_tokio::network::{tcp, PeerBook, TransportConfig};
use stepraft_tokio::storage::MemoryStorage;

#[tokio::main]
pub async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ids = [NodeId(1), NodeId(2), NodeId(3)];
    let books: Vec<PeerBook> = ids.iter().map(|_| PeerBook::default()).collect();
    let mut transports = Vec::new();
    for (&me, book) in ids.iter().zip(&books) {
        let listen = "127.0.0.1:0".parse()?;
        let config = TransportConfig { me, cluster_id: 1, listen, peers: book.clone() };
        transports.push(tcp::start::<String>(config).await?);
    }
    // Ports were chosen by the OS: now every node learns where the others listen.
    for book in &books {
        for (&id, transport) in ids.iter().zip(&transports) {
            book.insert(id, transport.local_address.to_string());
        }
    }
    let mut nodes: Vec<NodeHandle<String>> = Vec::new();
    for (&id, transport) in ids.iter().zip(transports) {
        let storage = MemoryStorage::default();
        let setup =
            NodeSetup::new(Config::new(id, ids), storage, transport.outbox, transport.inbound);
        let setup = NodeSetup { tick: Duration::from_millis(10), ..setup };
        nodes.push(spawn_node(setup)?);
    }
    let leader = nodes[0].leadership.wait_for(|l| l.leader.is_some()).await?.leader;
    let leader = leader.ok_or("no leader")?;
    println!("node {} leads", leader.0);
    let committed = nodes[(leader.0 - 1) as usize].client.propose(vec!["over tcp".into()]).await?;
    for (node, id) in nodes.iter_mut().zip(ids) {
        let entry = applied_at(node, committed.last).await?;
        println!("node {} applied {entry:?} at {}", id.0, committed.last.0);
    }
    Ok(())
}

/// Waits until `node` applies the entry at `index`; returns its command.
async fn applied_at(
    node: &mut NodeHandle<String>,
    index: stepraft::LogIndex,
) -> Result<String, Box<dyn std::error::Error>> {
    loop {
        let Some(Applied::Entries(entries)) = node.applied.recv().await else {
            return Err("the node stopped or restored a snapshot".into());
        };
        if let Some(entry) = entries.into_iter().find(|entry| entry.index == index) {
            return match entry.payload {
                Payload::Command(command) => Ok(command),
                _ => Err("not a command".into()),
            };
        }
    }
}
