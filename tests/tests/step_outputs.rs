//! What one step hands the IO layer, beyond the protocol rules: the order of hard-state writes
//! around log writes, and no output that asks for nothing.

use stepraft::{
    AppendEntries, Config, Entry, HardState, Input, LogIndex, Message, Node, NodeId, Output,
    Payload, Persist, Term,
};
use stepraft_tests::Cluster;

/// A follower that learns a new term from an AppendEntries carrying entries writes the new
/// term first, with its old commit index, then the entries, then the new commit index. A
/// crash between two writes can then never leave entries of a term the node has not entered,
/// nor a commit index pointing past the durable log.
#[test]
fn a_new_term_is_written_before_its_entries_and_the_commit_after_them() {
    let ids = [NodeId(1), NodeId(2), NodeId(3)];
    let mut follower: Node<u64> = Node::new(Config::new(NodeId(2), ids)).expect("valid config");
    let entry = |index: u64| Entry {
        term: Term(3),
        index: LogIndex(index),
        payload: Payload::Command(index),
    };
    let append = AppendEntries {
        term: Term(3),
        prev_log_index: LogIndex(0),
        prev_log_term: Term(0),
        entries: vec![entry(1), entry(2)],
        leader_commit: LogIndex(2),
    };
    let input = Input::Receive { from: NodeId(1), message: Message::AppendEntries(append) };
    let outputs = follower.step_in_place(input);
    let persists: Vec<&Persist<u64>> = outputs
        .iter()
        .filter_map(|output| match output {
            Output::Persist(persist) => Some(persist),
            _ => None,
        })
        .collect();
    let new_term = HardState { term: Term(3), voted_for: None, commit: LogIndex(0) };
    let committed = HardState { commit: LogIndex(2), ..new_term };
    assert_eq!(
        persists,
        vec![
            &Persist::HardState(new_term),
            &Persist::Append(vec![entry(1), entry(2)]),
            &Persist::HardState(committed),
        ]
    );
}

/// Entries already applied and a snapshot already in the state machine are not handed over
/// again: an idle node's steps emit no `Apply` and no `RestoreSnapshot`.
#[test]
fn an_idle_node_emits_no_apply_and_no_restore() {
    let mut cluster = Cluster::new(3);
    let leader = cluster.elect(100);
    for command in 1..=3 {
        cluster.propose(leader, command).expect("leader");
        cluster.deliver_all();
    }
    cluster.tick_all();
    cluster.deliver_all();
    let follower = cluster.ids().into_iter().find(|&id| id != leader).expect("a follower");
    assert_eq!(cluster.node(follower).applied_index(), cluster.node(leader).commit_index());
    // The snapshot covers exactly what is applied: nothing to restore.
    cluster.take_snapshot(follower);
    for _ in 0..3 {
        let outputs = cluster.tick(follower);
        let needless = outputs
            .iter()
            .find(|output| matches!(output, Output::Apply(_) | Output::RestoreSnapshot(_)));
        assert_eq!(needless, None, "nothing new to apply or restore");
    }
}
