//! Micro-benchmarks of `Node::step`: a follower handling appends, a leader handling an append
//! response that advances its commit index, a tick, and a whole election round.
//!
//! Run with `cargo bench -p stepraft --bench step`.

use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use stepraft::{
    AppendEntries, AppendEntriesResponse, AppendOutcome, Config, Entry, Input, LogIndex, Message,
    Node, NodeId, Output, Payload, Proposal, ProposalId, Term,
};

type Bytes = Arc<[u8]>;

const IDS: [NodeId; 3] = [NodeId(1), NodeId(2), NodeId(3)];

fn node(id: u64) -> Node<Bytes> {
    Node::new(Config::new(NodeId(id), IDS)).expect("valid")
}

/// Three nodes after node 1 won term 1 and replicated its no-op.
fn cluster_with_leader() -> Vec<Node<Bytes>> {
    let mut nodes: Vec<Node<Bytes>> = (1..=3).map(node).collect();
    let mut network = VecDeque::new();
    let mut outputs = Vec::new();
    let mut step = |nodes: &mut Vec<Node<Bytes>>, network: &mut VecDeque<_>, at: u64, input| {
        nodes[(at - 1) as usize].step_into(input, &mut outputs);
        for output in outputs.drain(..) {
            if let Output::Send { to, message } = output {
                network.push_back((NodeId(at), to, message));
            }
        }
    };
    step(&mut nodes, &mut network, 1, Input::Campaign);
    while let Some((from, to, message)) = network.pop_front() {
        step(&mut nodes, &mut network, to.0, Input::Receive { from, message });
    }
    nodes
}

fn append_of(count: u64) -> Message<Bytes> {
    let payload: Bytes = vec![0u8; 64].into();
    let entries = (0..count)
        .map(|i| Entry {
            term: Term(1),
            index: LogIndex(i + 1),
            payload: Payload::Command(payload.clone()),
        })
        .collect();
    Message::AppendEntries(AppendEntries {
        term: Term(1),
        prev_log_index: LogIndex(0),
        prev_log_term: Term(0),
        entries,
        leader_commit: LogIndex(0),
    })
}

fn follower_append(c: &mut Criterion) {
    for count in [1, 64] {
        c.bench_function(&format!("follower handles AppendEntries of {count}"), |b| {
            b.iter_batched(
                || (node(2), append_of(count)),
                |(mut follower, message)| {
                    black_box(follower.step_in_place(Input::Receive { from: NodeId(1), message }))
                },
                BatchSize::SmallInput,
            )
        });
    }
}

fn leader_commit(c: &mut Criterion) {
    let mut nodes = cluster_with_leader();
    let payload: Bytes = vec![0u8; 64].into();
    let _ = nodes[0].step_in_place(Input::Propose(Proposal::one(ProposalId(1), payload)));
    let leader = nodes.swap_remove(0);
    let index = leader.last_index();
    c.bench_function("leader handles an append response and commits", |b| {
        b.iter_batched(
            || leader.clone(),
            |mut leader| {
                let response = AppendEntriesResponse {
                    term: Term(1),
                    outcome: AppendOutcome::Success { match_index: index },
                };
                let message = Message::AppendEntriesResponse(response);
                let outputs = leader.step_in_place(Input::Receive { from: NodeId(2), message });
                assert_eq!(leader.commit_index(), index);
                black_box(outputs)
            },
            BatchSize::SmallInput,
        )
    });
}

fn tick(c: &mut Criterion) {
    let mut follower = node(2);
    let mut outputs = Vec::new();
    c.bench_function("follower tick", |b| {
        b.iter(|| {
            follower.step_into(Input::Tick, &mut outputs);
            outputs.clear();
        })
    });
}

fn election(c: &mut Criterion) {
    c.bench_function("election round, 3 nodes", |b| {
        b.iter(|| black_box(cluster_with_leader()));
    });
}

criterion_group!(benches, follower_append, leader_commit, tick, election);
criterion_main!(benches);
