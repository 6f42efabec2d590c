//! Three nodes over TCP or UDP on loopback, each on its own port: start the transports, tell
//! every node where the others listen, propose on the leader, and wait until every node
//! applied it. Over UDP every message must fit one datagram: the configuration bounds what an
//! append carries, and a snapshot chunk (this example never compacts, so it sends none).
//!
//! `cargo run -p stepraft-tokio --example loopback_cluster -- tcp` (or `-- udp`)

use std::time::Duration;

use stepraft::{Config, LogIndex, NodeId, Payload};
use stepraft_tokio::driver::{spawn_node, Applied, NodeHandle, NodeSetup};
use stepraft_tokio::network::{tcp, udp, Inbound, Outbox, PeerBook, TransportConfig};
use stepraft_tokio::storage::MemoryStorage;

type Error = Box<dyn std::error::Error>;

#[tokio::main]
pub async fn main() -> Result<(), Error> {
    let transport = std::env::args().nth(1).unwrap_or_else(|| "tcp".to_owned());
    run(&transport).await
}

/// Runs the example over `transport` (`tcp` or `udp`).
pub async fn run(transport: &str) -> Result<(), Error> {
    let ids = [NodeId(1), NodeId(2), NodeId(3)];
    let books: Vec<PeerBook> = ids.iter().map(|_| PeerBook::default()).collect();
    let mut started: Vec<(Box<dyn Outbox<String>>, Inbound<String>)> = Vec::new();
    for (&me, book) in ids.iter().zip(&books) {
        let listen = "127.0.0.1:0".parse()?;
        let config = TransportConfig { me, cluster_id: 1, listen, peers: book.clone() };
        let (outbox, inbound, address): (Box<dyn Outbox<String>>, _, _) = match transport {
            "tcp" => {
                let t = tcp::start(config).await?;
                (Box::new(t.outbox), t.inbound, t.local_address)
            }
            "udp" => {
                let t = udp::start(config).await?;
                (Box::new(t.outbox), t.inbound, t.local_address)
            }
            other => return Err(format!("unknown transport {other:?}: tcp or udp").into()),
        };
        // Ports are chosen by the OS: every node learns each one as it is bound.
        for book in &books {
            book.insert(me, address.to_string());
        }
        started.push((outbox, inbound));
    }
    let mut nodes: Vec<NodeHandle<String>> = Vec::new();
    for (&id, (outbox, inbound)) in ids.iter().zip(started) {
        let mut config = Config::new(id, ids);
        config.bytes_per_message_max = 32 << 10;
        config.snapshot_chunk_bytes = 32 << 10;
        let setup = NodeSetup::new(config, MemoryStorage::default(), outbox, inbound);
        nodes.push(spawn_node(NodeSetup { tick: Duration::from_millis(10), ..setup })?);
    }
    let leader = nodes[0].leadership.wait_for(|l| l.leader.is_some()).await?.leader;
    let leader = leader.ok_or("no leader")?;
    println!("node {} leads", leader.0);
    let command = format!("over {transport}");
    let committed = nodes[(leader.0 - 1) as usize].client.propose(vec![command.clone()]).await?;
    for (node, id) in nodes.iter_mut().zip(ids) {
        let applied = applied_at(node, committed.last).await?;
        println!("node {} applied {applied:?} at {}", id.0, committed.last.0);
        assert_eq!(applied, command);
    }
    Ok(())
}

/// Waits until `node` applies the entry at `index`; returns its command.
async fn applied_at(node: &mut NodeHandle<String>, index: LogIndex) -> Result<String, Error> {
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
