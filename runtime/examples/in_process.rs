//! Three nodes in one process, wired with channels only: wait for a leader, append entries
//! (one of them only if the log's last entry is the one expected), watch what the nodes
//! apply, then read the committed commands back by index range.
//!
//! `cargo run -p stepraft-tokio --example in_process`

use std::time::Duration;

use stepraft::{Config, LogIndex, NodeId, Payload};
use stepraft_tokio::driver::{spawn_node, Applied, NodeHandle, NodeSetup};
use stepraft_tokio::network::channel_network;
use stepraft_tokio::storage::MemoryStorage;

#[tokio::main(flavor = "current_thread")]
pub async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ids = [NodeId(1), NodeId(2), NodeId(3)];
    let mut nodes = Vec::new();
    for ((outbox, inbound), &id) in channel_network(&ids, 1024).into_iter().zip(&ids) {
        let (config, storage) = (Config::new(id, ids), MemoryStorage::<String>::default());
        let setup = NodeSetup::new(config, storage, outbox, inbound);
        let setup = NodeSetup { tick: Duration::from_millis(10), ..setup };
        let NodeHandle { client, mut applied, leadership, .. } = spawn_node(setup)?;
        // Each node prints what it applies. A slow applier holds back nobody: the stream is
        // unbounded, and answers and leadership changes travel apart.
        tokio::spawn(async move {
            while let Some(Applied::Entries(entries)) = applied.recv().await {
                for entry in entries {
                    if let Payload::Command(command) = entry.payload {
                        println!("node {} applies {command:?} at {}", id.0, entry.index.0);
                    }
                }
            }
        });
        nodes.push((client, leadership));
    }

    let known = *nodes[0].1.wait_for(|l| l.leader.is_some()).await?;
    let leader = known.leader.ok_or("no leader")?;
    println!("node 1 sees node {} lead term {}", leader.0, known.term.0);
    let client = nodes[(leader.0 - 1) as usize].0.clone();
    let mut last = None;
    for word in ["hello", "replicated", "world"] {
        let committed = client.propose(vec![word.to_owned()]).await?;
        last = Some((committed.last, committed.term));
    }
    // An optimistic append: only if the log still ends where the last proposal did.
    let (last_index, last_term) = last.ok_or("nothing committed")?;
    let appended = client.append_if_last(vec!["!".to_owned()], last_index, last_term).await?;
    // The same condition again fails: the log has moved on.
    let stale = client.append_if_last(vec!["?".to_owned()], last_index, last_term).await;
    println!(
        "a second append on the same last entry: {}",
        stale.map_or_else(|e| e.to_string(), |_| "appended".into())
    );

    // Any node serves the committed log by index range; commands only, without the leader's
    // no-op.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let commands = nodes[0].0.read_range(LogIndex(1), appended.last, true).await?;
    let words: Vec<String> = commands
        .into_iter()
        .filter_map(|entry| match entry.payload {
            Payload::Command(word) => Some(word),
            _ => None,
        })
        .collect();
    println!("node 1's committed commands: {words:?}");
    assert_eq!(words, ["hello", "replicated", "world", "!"]);
    Ok(())
}
