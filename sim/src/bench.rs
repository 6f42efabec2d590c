//! The throughput benchmark: three nodes in one thread, in memory, messages handed over
//! directly (no event queue, no faults), N entries of their own 64-byte payload proposed B per
//! loop iteration, every entry applied on all three nodes and verified at the end.
//!
//! Each node's storage is a model of a disk: it checks that every write lands in order and
//! counts the bytes, but keeps no entries in memory — a runtime's log lives on disk, and the
//! benchmark measures the core's memory, not a second in-memory copy of the log.

use std::collections::VecDeque;
use std::time::Instant;

use serde::Serialize;
use stepraft::{
    Config, Entry, HardState, Input, LogIndex, Message, Node, NodeId, Output, Payload, Persist,
    Proposal, ProposalId, Role,
};

use crate::rng::mix;

/// The payload type: shared bytes, so that handing an entry to a message, a persist and an
/// apply costs a reference count, not a copy — what a real runtime would use (`bytes::Bytes`
/// plays the same role).
type Bytes = std::sync::Arc<[u8]>;

/// What to run.
#[derive(Clone, Copy, Debug)]
pub struct BenchConfig {
    /// Entries to replicate.
    pub entries: u64,
    /// Entries proposed per loop iteration.
    pub batch: u64,
    /// Payload bytes per entry.
    pub payload: usize,
}

/// The JSON line the benchmark prints.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// Entries replicated and applied on all three nodes.
    pub entries: u64,
    /// Entries proposed per iteration.
    pub batch: u64,
    /// Payload bytes per entry.
    pub payload: usize,
    /// Entries per wall-clock second.
    pub entries_per_sec: f64,
    /// CPU seconds of the process during the run.
    pub cpu_secs: f64,
    /// Wall-clock seconds of the run.
    pub wall_secs: f64,
    /// Messages exchanged between the nodes.
    pub messages: u64,
    /// Payload bytes the three nodes wrote to their (modelled) disks.
    pub bytes_persisted: u64,
    /// The process's peak resident set size, in KiB (Linux `VmHWM`), for the memory recipe.
    pub peak_rss_kib: u64,
}

/// One node and its storage, in memory.
struct BenchNode {
    /// Reused output buffer (see `Node::step_into`).
    outputs: Vec<Output<Bytes>>,
    node: Node<Bytes>,
    disk: DiskModel,
    applied: u64,
    /// A running fingerprint of the applied commands, in order.
    digest: u64,
}

/// Runs the benchmark.
///
/// # Panics
/// If the three nodes do not end with the same N entries applied: the benchmark measures a
/// correct run or nothing.
pub fn run_bench(config: BenchConfig) -> BenchReport {
    let ids = [NodeId(1), NodeId(2), NodeId(3)];
    let mut nodes: Vec<BenchNode> = ids
        .iter()
        .map(|&id| {
            let mut node_config = Config::new(id, ids);
            node_config.entries_per_message_max = 4096;
            node_config.bytes_per_message_max = 4 << 20;
            node_config.uncommitted_bytes_max = u64::MAX;
            BenchNode {
                outputs: Vec::new(),
                node: Node::new(node_config).expect("valid"),
                disk: DiskModel::default(),
                applied: 0,
                digest: 0,
            }
        })
        .collect();
    let mut network: VecDeque<(NodeId, NodeId, Message<Bytes>)> = VecDeque::new();
    let mut messages = 0u64;
    step(&mut nodes, &mut network, 0, Input::Campaign);
    deliver(&mut nodes, &mut network, &mut messages);
    assert_eq!(nodes[0].node.role(), Role::Leader, "node 1 leads");

    let (cpu_before, started) = (cpu_seconds(), Instant::now());
    let mut proposed = 0;
    // A client's request as it arrives: the bytes are built in a buffer, then copied into the
    // entry's own shared allocation (one allocation and one copy per entry).
    let mut request = vec![0xA5u8; config.payload];
    while proposed < config.entries {
        let count = config.batch.min(config.entries - proposed);
        let commands = (proposed..proposed + count)
            .map(|index| {
                if let Some(first) = request.first_mut() {
                    *first = index as u8;
                }
                Bytes::from(&request[..])
            })
            .collect();
        let proposal = Proposal::batch(ProposalId(proposed), commands);
        step(&mut nodes, &mut network, 0, Input::Propose(proposal));
        deliver(&mut nodes, &mut network, &mut messages);
        proposed += count;
    }
    // Followers learn the final commit index with the next heartbeat.
    while nodes.iter().any(|n| n.applied < config.entries) {
        step(&mut nodes, &mut network, 0, Input::Tick);
        deliver(&mut nodes, &mut network, &mut messages);
    }
    let (wall, cpu) = (started.elapsed().as_secs_f64(), cpu_seconds() - cpu_before);
    let digest = nodes[0].digest;
    for node in &nodes {
        assert_eq!(node.applied, config.entries, "every node applied every entry");
        assert_eq!(node.digest, digest, "every node applied the same entries");
    }
    BenchReport {
        entries: config.entries,
        batch: config.batch,
        payload: config.payload,
        entries_per_sec: config.entries as f64 / wall.max(1e-9),
        cpu_secs: cpu,
        wall_secs: wall,
        messages,
        bytes_persisted: nodes.iter().map(|node| node.disk.bytes).sum(),
        peak_rss_kib: peak_rss_kib(),
    }
}

/// Steps node `at` and executes its outputs in order.
fn step(
    nodes: &mut [BenchNode],
    network: &mut VecDeque<(NodeId, NodeId, Message<Bytes>)>,
    at: usize,
    input: Input<Bytes>,
) {
    let bench = &mut nodes[at];
    let from = bench.node.id();
    let mut outputs = std::mem::take(&mut bench.outputs);
    bench.node.step_into(input, &mut outputs);
    for output in outputs.drain(..) {
        match output {
            Output::Persist(change) => {
                bench.disk.write(&change);
                // Written: the vector goes back to the node for its next output.
                if let Persist::Append(entries) = change {
                    bench.node.recycle(entries);
                }
            }
            Output::Send { to, message } => network.push_back((from, to, message)),
            Output::Apply(entries) => {
                for entry in &entries {
                    record(bench, entry);
                }
                bench.node.recycle(entries);
            }
            _ => {}
        }
    }
    bench.outputs = outputs;
}

/// A disk as the benchmark models it: writes are checked to land in order and counted; the
/// entries themselves are not kept in memory.
#[derive(Debug, Default)]
struct DiskModel {
    hard_state: HardState,
    last_index: LogIndex,
    bytes: u64,
}

impl DiskModel {
    fn write(&mut self, change: &Persist<Bytes>) {
        match change {
            Persist::HardState(hard_state) => self.hard_state = *hard_state,
            Persist::Append(entries) => {
                for entry in entries {
                    assert_eq!(entry.index, self.last_index.next(), "appends land in order");
                    self.last_index = entry.index;
                    self.bytes += entry.command().map_or(0, |command| command.len() as u64);
                }
            }
            Persist::Truncate { from } => self.last_index = self.last_index.min(from.prev()),
            _ => {}
        }
        assert!(self.hard_state.commit <= self.last_index, "the commit is on disk");
    }
}

fn record(bench: &mut BenchNode, entry: &Entry<Bytes>) {
    if let Payload::Command(command) = &entry.payload {
        bench.applied += 1;
        bench.digest = mix(bench.digest ^ entry.index.0 ^ (command.len() as u64) << 32);
    }
}

fn deliver(
    nodes: &mut [BenchNode],
    network: &mut VecDeque<(NodeId, NodeId, Message<Bytes>)>,
    messages: &mut u64,
) {
    while let Some((from, to, message)) = network.pop_front() {
        *messages += 1;
        step(nodes, network, (to.0 - 1) as usize, Input::Receive { from, message });
    }
}

/// CPU time of this process, from `/proc/self/schedstat` (nanoseconds on CPU); 0 elsewhere.
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0.0, |nanos| nanos as f64 / 1e9)
}

/// Peak resident set size from `/proc/self/status`; 0 elsewhere.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|line| line.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}
