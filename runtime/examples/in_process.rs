//! Three nodes in one process, wired with channels only (the leader-election seed's style):
//! wait for a leader, propose through the seeds' request channel, watch events, then read the
//! committed log back by index range.
//!
//! `cargo run -p stepraft-tokio --example in_process`

use std::time::Duration;

use stepraft::{Config, LogIndex, NodeId};
use stepraft_tokio::driver::{
    spawn_node, ClientRequest, Event, NodeSetup, Request, RequestId, Response,
};
use stepraft_tokio::network::channel_network;
use stepraft_tokio::storage::MemoryStorage;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ids = [NodeId(1), NodeId(2), NodeId(3)];
    let (mut requests, mut node_one_events) = (Vec::new(), None);
    for ((outbox, inbound), &id) in channel_network(&ids, 1024).into_iter().zip(&ids) {
        let (config, storage) = (Config::new(id, ids), MemoryStorage::<String>::default());
        let tick = Duration::from_millis(10);
        let node = spawn_node(NodeSetup {
            config,
            storage,
            outbox,
            inbound,
            tick,
            learners_max: usize::MAX,
        })?;
        requests.push(node.requests);
        if id == NodeId(1) {
            node_one_events = Some(node.events);
            continue;
        }
        // Nodes 2 and 3 print what they apply; a node's events must be consumed for it to go on.
        let mut events = node.events;
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if let Event::Applied(entries) = event {
                    println!("node {} applied {} entries", id.0, entries.len());
                }
            }
        });
    }
    let mut events = node_one_events.expect("node 1 was spawned");

    let leader = loop {
        if let Some(Event::LeaderChanged { leader: Some(leader), term, .. }) = events.recv().await {
            println!("node 1 sees node {} lead term {}", leader.0, term.0);
            break leader;
        }
    };
    let leader_requests = &requests[(leader.0 - 1) as usize];
    for (n, word) in ["hello", "replicated", "world"].into_iter().enumerate() {
        let request = Request::Propose(vec![word.to_owned()]);
        leader_requests.send(ClientRequest { id: RequestId(n as u64), request }).await?;
    }
    // Node 1 learns the commit with the leader's next message; then ask it for the log.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let range = Request::ReadRange { start: LogIndex(1), end: LogIndex(4) };
    requests[0].send(ClientRequest { id: RequestId(100), request: range }).await?;
    while let Some(event) = events.recv().await {
        if let Event::Response { id: RequestId(100), response } = event {
            match response {
                Response::Entries(entries) => {
                    for entry in entries {
                        println!("node 1 log: {} {:?}", entry.index.0, entry.command());
                    }
                }
                other => println!("node 1 could not read the log yet: {other:?}"),
            }
            break;
        }
    }
    Ok(())
}
