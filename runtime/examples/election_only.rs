//! Leader election only, three nodes in one process over tokio channels. They start knowing
//! nobody (node 1 is the founder, `min_voters` 3) and are told about each other at run time,
//! in no particular order and once twice; they elect a leader once the founder knows three
//! nodes. Then the leader's task is aborted, as a crash would end it, and the two others
//! elect a new leader of a higher term. Exits with an error unless that happens within 10 s.
//!
//! `cargo run -p stepraft-tokio --example election_only`

use std::time::Duration;

use stepraft::NodeId;
use stepraft_tokio::election::{self, Control, ElectionConfig, ElectionHandle, ElectionMessage};
use stepraft_tokio::election::{ElectionPeer, LeaderChange};
use tokio::sync::mpsc;

type Error = Box<dyn std::error::Error>;

/// The whole transport: a peer is its node's inbox.
struct ChannelPeer {
    id: NodeId,
    inbox: mpsc::Sender<ElectionMessage>,
}

impl ElectionPeer for ChannelPeer {
    fn id(&self) -> NodeId {
        self.id
    }

    async fn send(&self, message: ElectionMessage) {
        // A stopped node loses the message, as a network would.
        let _ = self.inbox.send(message).await;
    }
}

#[tokio::main(flavor = "current_thread")]
pub async fn main() -> Result<(), Error> {
    let run = tokio::time::timeout(Duration::from_secs(10), run());
    run.await.map_err(|_| "no new leader within 10 s")?
}

async fn run() -> Result<(), Error> {
    let mut nodes: Vec<ElectionHandle<ChannelPeer>> = Vec::new();
    for id in [1, 2, 3].map(NodeId) {
        let mut config = ElectionConfig::new(id);
        config.founder = id == NodeId(1);
        config.min_voters = 3;
        config.tick = Duration::from_millis(10);
        nodes.push(election::start(config)?);
    }
    // (to, about): who is told of whom. Node 1 knows three nodes at the fourth announcement
    // and campaigns before node 2 can answer it; Raft retries.
    let announcements = [(3, 1), (1, 2), (2, 3), (1, 3), (3, 2), (2, 3), (2, 1)];
    for (to, about) in announcements {
        let peer =
            ChannelPeer { id: NodeId(about), inbox: nodes[about as usize - 1].inbox.clone() };
        nodes[to as usize - 1].control.send(Control::AddNode(peer)).await?;
    }

    let first = next_leader(&mut nodes[0], None).await?;
    let leader = first.leader.ok_or("no leader")?;
    println!("node {} leads term {}", leader.0, first.term.0);
    // Only a node that holds the group's configuration can campaign: wait until the leader
    // has replicated it to both others, or its crash would leave nobody able to elect.
    for node in &mut nodes {
        node.status.wait_for(|status| status.membership.voters.len() == 3).await?;
    }

    nodes[leader.0 as usize - 1].task.abort();
    println!("node {} stopped", leader.0);
    for (id, node) in (1..).map(NodeId).zip(&mut nodes).filter(|(id, _)| *id != leader) {
        let next = next_leader(node, Some(first)).await?;
        let new_leader = next.leader.ok_or("no leader")?;
        println!("node {} sees node {} lead term {}", id.0, new_leader.0, next.term.0);
    }
    Ok(())
}

/// The next change on `node` that names a leader other than `after`'s, in a later term.
async fn next_leader(
    node: &mut ElectionHandle<ChannelPeer>,
    after: Option<LeaderChange>,
) -> Result<LeaderChange, Error> {
    loop {
        let change = node.changes.recv().await.ok_or("the node stopped")?;
        let later =
            after.is_none_or(|after| change.term > after.term && change.leader != after.leader);
        if change.leader.is_some() && later {
            return Ok(change);
        }
    }
}
