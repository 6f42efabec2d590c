//! The fault families and how each is done to the cluster and undone.

use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::Rng;
use serde_json::json;
use stepraft_kv::client::KvClient;

use crate::cluster::{Cluster, Transport};

/// A fault family.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// Cut the peer links between two sides (the leader or a random node alone, or a minority
    /// from a majority), both ways.
    Partition,
    /// Cut one node's peer links in one direction only: it hears and is not heard, or the
    /// reverse.
    OneWay,
    /// Delay the messages of one node's links or of every link by 10-150 ms.
    Delay,
    /// Lose messages: every relayed connection reset every 300 ms and 20% of messages lost
    /// over TCP, 30% lost over UDP.
    Drop,
    /// `kill -9` a node (the leader half the time) and restart it on its data.
    Kill,
    /// SIGSTOP the leader, cut off from the others half the time, then SIGCONT it (and keep it
    /// cut off for half a second more, so that it must not serve reads from the lease it
    /// had).
    PauseLeader,
    /// SIGSTOP a follower, then SIGCONT it.
    PauseFollower,
    /// Stall every storage write of a node (the leader most of the time), as a disk stuck in
    /// an fsync would.
    DiskStall,
    /// Replace a voter under load: start a new node, add it as a learner, promote it, remove
    /// a follower.
    Membership,
}

impl Fault {
    /// Every family.
    pub const ALL: [Fault; 9] = [
        Fault::Partition,
        Fault::OneWay,
        Fault::Delay,
        Fault::Drop,
        Fault::Kill,
        Fault::PauseLeader,
        Fault::PauseFollower,
        Fault::DiskStall,
        Fault::Membership,
    ];

    /// The family's command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Partition => "partition",
            Fault::OneWay => "one-way",
            Fault::Delay => "delay",
            Fault::Drop => "drop",
            Fault::Kill => "kill",
            Fault::PauseLeader => "pause-leader",
            Fault::PauseFollower => "pause-follower",
            Fault::DiskStall => "disk-stall",
            Fault::Membership => "membership",
        }
    }
}

/// How to undo a fault in force.
#[derive(Debug)]
enum Undo {
    Links,
    Restart(u64),
    Resume { node: u64, cut: bool },
    Unstall(u64),
    Nothing,
}

/// A fault in force.
#[derive(Debug)]
pub struct Injection {
    /// Its family.
    pub fault: Fault,
    /// What was done, e.g. "kill -9 node 2 (leader)".
    pub description: String,
    undo: Undo,
    resets_connections: bool,
}

impl Injection {
    /// Called every few hundred milliseconds while the fault is in force.
    pub fn keep_up(&self, cluster: &Cluster) {
        if self.resets_connections {
            cluster.links().reset_connections();
        }
    }

    /// Ends the fault.
    ///
    /// # Errors
    /// The IO error of restarting a server.
    pub fn undo(self, cluster: &mut Cluster) -> std::io::Result<()> {
        match self.undo {
            Undo::Links => cluster.links().heal(),
            Undo::Restart(node) => cluster.restart(node)?,
            Undo::Resume { node, cut } => {
                cluster.resume(node);
                if cut {
                    std::thread::sleep(Duration::from_millis(500));
                    cluster.links().heal();
                }
            }
            Undo::Unstall(node) => cluster.unstall_disk(node),
            Undo::Nothing => {}
        }
        Ok(())
    }
}

fn below(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    rng.next_u64() % n.max(1)
}

fn pick<T: Copy>(rng: &mut ChaCha8Rng, items: &[T]) -> Option<T> {
    (!items.is_empty()).then(|| items[below(rng, items.len() as u64) as usize])
}

/// The leader with probability `percent`/100 (when there is one), else a random live node;
/// with its description.
fn target(cluster: &Cluster, rng: &mut ChaCha8Rng, percent: u64) -> Option<(u64, String)> {
    if below(rng, 100) < percent {
        if let Some(leader) = cluster.leader() {
            return Some((leader, format!("node {leader} (leader)")));
        }
    }
    let node = pick(rng, &cluster.live())?;
    Some((node, format!("node {node}")))
}

/// Cuts both ways between `side` and every other member.
fn cut_off(cluster: &Cluster, side: &[u64]) {
    for &inside in side {
        for other in cluster.ids().into_iter().filter(|other| !side.contains(other)) {
            cluster.links().cut((inside, other));
            cluster.links().cut((other, inside));
        }
    }
}

/// Does a fault of family `fault` to `cluster`; `None` when it does not apply now (no leader
/// to pause, say).
///
/// # Errors
/// The IO error of starting a server (membership changes).
pub fn inject(
    fault: Fault,
    cluster: &mut Cluster,
    transport: Transport,
    rng: &mut ChaCha8Rng,
) -> std::io::Result<Option<Injection>> {
    let injection = |description: String, undo| Injection {
        fault,
        description,
        undo,
        resets_connections: false,
    };
    let ids = cluster.ids();
    Ok(match fault {
        Fault::Partition => {
            let side = if below(rng, 2) == 0 {
                match target(cluster, rng, 60) {
                    Some((node, _)) => vec![node],
                    None => return Ok(None),
                }
            } else {
                let mut shuffled = ids.clone();
                for i in (1..shuffled.len()).rev() {
                    shuffled.swap(i, below(rng, i as u64 + 1) as usize);
                }
                shuffled.truncate((ids.len() - 1) / 2);
                shuffled
            };
            cut_off(cluster, &side);
            Some(injection(format!("partition {side:?} from the rest"), Undo::Links))
        }
        Fault::OneWay => {
            let Some((node, who)) = target(cluster, rng, 60) else { return Ok(None) };
            let outbound = below(rng, 2) == 0;
            for other in ids.iter().copied().filter(|&other| other != node) {
                let link = if outbound { (node, other) } else { (other, node) };
                cluster.links().cut(link);
            }
            let what = if outbound { "is not heard" } else { "hears nobody" };
            Some(injection(format!("{who} {what}"), Undo::Links))
        }
        Fault::Delay => {
            let delay = Duration::from_millis(10 + below(rng, 141));
            let whole = below(rng, 2) == 0;
            let node = pick(rng, &ids);
            for &from in &ids {
                for &to in &ids {
                    if from != to && (whole || Some(from) == node || Some(to) == node) {
                        cluster.links().delay((from, to), delay);
                    }
                }
            }
            let scope = match (whole, node) {
                (false, Some(node)) => format!("node {node}'s links"),
                _ => "every link".to_owned(),
            };
            Some(injection(format!("{} ms on {scope}", delay.as_millis()), Undo::Links))
        }
        Fault::Drop => {
            let percent = if transport == Transport::Udp { 30 } else { 20 };
            for &from in &ids {
                for &to in &ids {
                    if from != to {
                        cluster.links().lose((from, to), percent);
                    }
                }
            }
            let resets = transport == Transport::Tcp;
            let description = if resets {
                format!("{percent}% lost, connections reset every 300 ms")
            } else {
                format!("{percent}% of datagrams lost")
            };
            Some(Injection { fault, description, undo: Undo::Links, resets_connections: resets })
        }
        Fault::Kill => {
            let Some((node, who)) = target(cluster, rng, 50) else { return Ok(None) };
            cluster.kill(node);
            Some(injection(format!("kill -9 {who}"), Undo::Restart(node)))
        }
        Fault::PauseLeader => {
            let Some(leader) = cluster.leader() else { return Ok(None) };
            let cut = below(rng, 2) == 0;
            if cut {
                cut_off(cluster, &[leader]);
            }
            cluster.pause(leader);
            let how = if cut { ", cut off" } else { "" };
            Some(injection(
                format!("SIGSTOP node {leader} (leader){how}"),
                Undo::Resume { node: leader, cut },
            ))
        }
        Fault::PauseFollower => {
            let leader = cluster.leader();
            let followers: Vec<u64> =
                cluster.live().into_iter().filter(|&n| Some(n) != leader).collect();
            let Some(node) = pick(rng, &followers) else { return Ok(None) };
            cluster.pause(node);
            Some(injection(
                format!("SIGSTOP node {node} (follower)"),
                Undo::Resume { node, cut: false },
            ))
        }
        Fault::DiskStall => {
            let Some((node, who)) = target(cluster, rng, 70) else { return Ok(None) };
            cluster.stall_disk(node);
            Some(injection(format!("disk of {who} stalled"), Undo::Unstall(node)))
        }
        Fault::Membership => {
            replace_voter(cluster, rng)?.map(|description| injection(description, Undo::Nothing))
        }
    })
}

/// Starts a new node, adds it as a learner, promotes it once it has caught up, and removes a
/// follower; returns what was done, or `None` if the cluster had no leader to ask.
fn replace_voter(cluster: &mut Cluster, rng: &mut ChaCha8Rng) -> std::io::Result<Option<String>> {
    let Some(leader) = cluster.leader() else { return Ok(None) };
    let Some(leader_address) = cluster.address(leader).map(str::to_owned) else { return Ok(None) };
    let Some(status) = cluster.status(leader) else { return Ok(None) };
    let voters: Vec<u64> = status["members"]["voters"]
        .as_array()
        .map(|ids| ids.iter().filter_map(|id| id.as_u64()).collect())
        .unwrap_or_default();
    let joiner = cluster.spawn_joiner()?;
    let proxy = cluster.proxy(joiner).unwrap_or_default().to_owned();
    let mut admin = KvClient::new(vec![leader_address], Duration::from_secs(3));
    let add = json!({ "id": joiner, "address": proxy, "learner": true });
    if let Err(error) = retry(|| admin.call("POST", "/members", Some(&add))) {
        cluster.forget(joiner);
        return Ok(Some(format!("adding node {joiner} failed ({error}); it was stopped")));
    }
    // Promote once it holds what the leader had committed (bounded: the fault must end).
    let commit = status["commit"].as_u64().unwrap_or_default();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < deadline
        && cluster.status(joiner).and_then(|s| s["applied"].as_u64()).is_none_or(|a| a < commit)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let promote = format!("/members/{joiner}/promote");
    if let Err(error) = retry(|| admin.call("POST", &promote, None)) {
        return Ok(Some(format!(
            "added node {joiner} as a learner; promoting it failed ({error})"
        )));
    }
    let followers: Vec<u64> = voters.into_iter().filter(|&v| v != leader).collect();
    let Some(victim) = pick(rng, &followers) else {
        return Ok(Some(format!("added node {joiner} as a voter")));
    };
    let remove = format!("/members/{victim}");
    match retry(|| admin.call("DELETE", &remove, None)) {
        Ok(_) => {
            cluster.forget(victim);
            Ok(Some(format!("replaced node {victim} by node {joiner}")))
        }
        Err(error) => {
            Ok(Some(format!("added node {joiner}; removing node {victim} failed ({error})")))
        }
    }
}

/// Retries `call` on answers that promise no effect (503), for up to 5 s.
fn retry<V>(
    mut call: impl FnMut() -> Result<V, stepraft_kv::client::ClientError>,
) -> Result<V, stepraft_kv::client::ClientError> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match call() {
            Err(stepraft_kv::client::ClientError::Status { status: 503, .. })
                if std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            result => return result,
        }
    }
}
