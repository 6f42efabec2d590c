//! No input a network or a user can produce makes a node panic or corrupt its state: arbitrary
//! sequences of ticks, proposals, campaigns, snapshots and messages — with any term, any index,
//! malformed entry lists and snapshot chunks, unknown senders, itself as sender — are fed to
//! one node, whose end-of-step invariants (asserted inside `step`) must hold throughout.

use std::sync::Arc;

use proptest::prelude::*;
use stepraft::{
    AppendEntries, AppendEntriesResponse, AppendOutcome, Config, ConflictHint, DurableState, Entry,
    HardState, Heartbeat, HeartbeatResponse, Input, InstallSnapshot, InstallSnapshotResponse,
    LogIndex, Membership, Message, Node, NodeId, Output, Payload, Persist, Proposal, ProposalId,
    ReadId, ReadIndexRequest, ReadIndexResponse, RequestVote, RequestVoteResponse, Snapshot,
    SnapshotMeta, SnapshotOutcome, Term, TimeoutNow,
};

/// Small values most of the time, so that messages often make sense; extreme ones sometimes.
fn number() -> impl Strategy<Value = u64> {
    prop_oneof![8 => 0u64..6, 1 => Just(u64::MAX), 1 => Just(u64::MAX - 1), 1 => any::<u64>()]
}

/// Mostly term 1 — the node's own term after it wins the first election — so that messages
/// often reach the handlers of the node's current role instead of only the term checks.
fn term() -> impl Strategy<Value = Term> {
    prop_oneof![6 => Just(Term(1)), 4 => number().prop_map(Term)]
}

fn index() -> impl Strategy<Value = LogIndex> {
    number().prop_map(LogIndex)
}

fn entries() -> impl Strategy<Value = Vec<Entry<u64>>> {
    prop_oneof![
        // Well-formed runs after some index.
        (0u64..6, 0u64..6, 0usize..4).prop_map(|(prev, term, count)| {
            (0..count as u64)
                .map(|i| Entry {
                    term: Term(term),
                    index: LogIndex(prev + 1 + i),
                    payload: Payload::Command(i),
                })
                .collect()
        }),
        // Anything at all.
        proptest::collection::vec(
            (index(), term(), any::<bool>()).prop_map(|(index, term, noop)| Entry {
                term,
                index,
                payload: if noop { Payload::noop() } else { Payload::Command(7) },
            }),
            0..4,
        ),
    ]
}

fn message() -> impl Strategy<Value = Message<u64>> {
    prop_oneof![
        (term(), index(), term(), any::<bool>(), any::<bool>()).prop_map(
            |(term, last_log_index, last_log_term, transfer, pre_vote)| {
                let request = RequestVote { term, last_log_index, last_log_term, transfer };
                if pre_vote {
                    Message::PreVote(request)
                } else {
                    Message::RequestVote(request)
                }
            }
        ),
        (term(), any::<bool>()).prop_map(|(term, granted)| Message::PreVoteResponse(
            RequestVoteResponse { term, granted }
        )),
        term().prop_map(|term| Message::TimeoutNow(TimeoutNow { term })),
        (term(), any::<bool>()).prop_map(|(term, granted)| Message::RequestVoteResponse(
            RequestVoteResponse { term, granted }
        )),
        (term(), index(), term(), entries(), index()).prop_map(
            |(term, prev_log_index, prev_log_term, entries, leader_commit)| {
                Message::AppendEntries(AppendEntries {
                    term,
                    prev_log_index,
                    prev_log_term,
                    entries,
                    leader_commit,
                })
            }
        ),
        (term(), index(), index(), proptest::option::of(term()), 0u8..3).prop_map(
            |(term, a, b, hint_term, kind)| {
                let outcome = match kind {
                    0 => AppendOutcome::Success { match_index: a },
                    1 => AppendOutcome::Conflict {
                        rejected_prev_index: a,
                        hint: ConflictHint { index: b, term: hint_term },
                    },
                    _ => AppendOutcome::StaleTerm,
                };
                Message::AppendEntriesResponse(AppendEntriesResponse { term, outcome })
            }
        ),
        (term(), index(), number()).prop_map(|(term, commit, round)| Message::Heartbeat(
            Heartbeat { term, commit, round }
        )),
        (term(), number()).prop_map(|(term, round)| Message::HeartbeatResponse(
            HeartbeatResponse { term, round }
        )),
        (term(), number()).prop_map(|(term, id)| Message::ReadIndexRequest(ReadIndexRequest {
            term,
            id: ReadId(id)
        })),
        (term(), number(), proptest::option::of(index())).prop_map(|(term, id, index)| {
            Message::ReadIndexResponse(ReadIndexResponse { term, id: ReadId(id), index })
        }),
        (term(), 0u64..4, snapshot_meta(), 0u64..8, 0u64..8, 0usize..5).prop_map(
            |(term, attempt, meta, total_bytes, offset, len)| {
                let data = vec![7u8; len];
                Message::InstallSnapshot(InstallSnapshot {
                    term,
                    attempt,
                    meta,
                    total_bytes,
                    offset,
                    data,
                })
            }
        ),
        (term(), index(), 0u64..4, number(), 0u8..4).prop_map(
            |(term, snapshot_index, attempt, offset, kind)| {
                let outcome = match kind {
                    0 => SnapshotOutcome::Received { next_offset: offset },
                    1 => SnapshotOutcome::Gap { next_offset: offset },
                    2 => SnapshotOutcome::Installed { match_index: LogIndex(offset) },
                    _ => SnapshotOutcome::Refused,
                };
                Message::InstallSnapshotResponse(InstallSnapshotResponse {
                    term,
                    snapshot_index,
                    attempt,
                    outcome,
                })
            }
        ),
    ]
}

fn snapshot_meta() -> impl Strategy<Value = SnapshotMeta> {
    (index(), term(), proptest::collection::btree_set(0u64..5, 0..4)).prop_map(
        |(index, term, voters)| SnapshotMeta {
            index,
            term,
            membership: Membership::with_voters(voters.into_iter().map(NodeId)).into(),
        },
    )
}

fn input() -> impl Strategy<Value = Input<u64>> {
    prop_oneof![
        4 => Just(Input::Tick),
        1 => Just(Input::Campaign),
        1 => number().prop_map(|id| Input::ReadIndex(ReadId(id))),
        1 => (0u64..5).prop_map(|target| Input::TransferLeadership(NodeId(target))),
        1 => (0u64..6).prop_map(|id| Input::AddNode(NodeId(id))),
        1 => (0u64..6).prop_map(|id| Input::RemoveNode(NodeId(id))),
        1 => (any::<u64>(), proptest::option::of((index(), term()))).prop_map(|(id, condition)| {
            let proposal = Proposal::one(ProposalId(id), id);
            Input::Propose(match condition {
                Some((index, term)) => proposal.if_last_entry_is(index, term),
                None => proposal,
            })
        }),
        1 => Just(Input::Propose(Proposal::batch(ProposalId(0), Vec::new()))),
        1 => index().prop_map(|index| Input::SnapshotTaken { index, data: Arc::from(&b"state"[..]) }),
        8 => (prop_oneof![4 => 2u64..4, 1 => 0u64..6], message()).prop_map(|(from, message)| Input::Receive {
            from: NodeId(from),
            message
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_inputs_never_break_a_node(
        inputs in proptest::collection::vec(input(), 1..120),
        election_ticks in 2u32..6,
        start_as_leader in any::<bool>(),
    ) {
        let mut config = Config::new(NodeId(1), [NodeId(1), NodeId(2), NodeId(3)]);
        config.election_ticks = election_ticks;
        config.entries_per_message_max = 2;
        config.compaction_tail_entries = 1;
        config.snapshot_chunk_bytes = 3;
        let mut node: Node<u64> = Node::new(config.clone()).expect("valid");
        let mut disk = DurableState::default();
        let mut inputs = inputs;
        if start_as_leader {
            // Win term 1 first, so that leader-side handling meets the hostile inputs too.
            let grant = Message::RequestVoteResponse(RequestVoteResponse { term: Term(1), granted: true });
            inputs.splice(0..0, [Input::Campaign, Input::Receive { from: NodeId(2), message: grant }]);
        }
        for input in inputs {
            let (term, commit) = (node.term(), node.commit_index());
            let outputs = node.step_in_place(input);
            prop_assert!(node.term() >= term);
            prop_assert!(node.commit_index() >= commit);
            // Persists come first; the durable store accepts every one of them in order.
            let first_other = outputs.iter().position(|o| !matches!(o, Output::Persist(_)));
            for (position, output) in outputs.iter().enumerate() {
                if let Output::Persist(change) = output {
                    prop_assert!(first_other.is_none_or(|other| position < other));
                    disk.apply(change);
                }
            }
            prop_assert_eq!(disk.hard_state, node.hard_state());
            prop_assert_eq!(disk.snapshot.as_ref(), node.snapshot());
            let first = node.first_index();
            let disk_suffix: Vec<_> = disk.entries.iter().filter(|e| e.index >= first).collect();
            let node_log: Vec<_> = node.log_entries().iter().collect();
            prop_assert_eq!(disk_suffix, node_log);
        }
        // Whatever happened, the node restarts from its disk.
        let restored = Node::<u64>::restore(config, disk).expect("the disk it wrote restores");
        prop_assert_eq!(restored.last_index(), node.last_index());
    }

    #[test]
    fn arbitrary_durable_state_is_refused_with_an_error_or_restored(
        term in term(),
        voted_for in proptest::option::of(0u64..4),
        commit in index(),
        entries in entries(),
        snapshot in proptest::option::of(snapshot_meta()),
    ) {
        let config = Config::new(NodeId(1), [NodeId(1), NodeId(2), NodeId(3)]);
        let hard_state = HardState { term, voted_for: voted_for.map(NodeId), commit };
        let snapshot = snapshot.map(|meta| Snapshot { meta, data: Arc::from(&[][..]) });
        let durable = DurableState { hard_state, snapshot, entries };
        if let Ok(node) = Node::<u64>::restore(config, durable) {
            let (node, _) = node.step(Input::Tick);
            prop_assert!(node.commit_index() <= node.last_index());
        }
    }
}

#[test]
fn a_truncate_then_append_is_what_the_disk_sees() {
    // Guards the property above: a conflicting append really exercises truncation.
    let config = Config::new(NodeId(2), [NodeId(1), NodeId(2), NodeId(3)]);
    let mut node: Node<u64> = Node::new(config).expect("valid");
    let append = |term: u64, entries: Vec<(u64, u64)>| Input::Receive {
        from: NodeId(1),
        message: Message::AppendEntries(AppendEntries {
            term: Term(term),
            prev_log_index: LogIndex(0),
            prev_log_term: Term(0),
            entries: entries
                .into_iter()
                .map(|(index, term)| Entry {
                    term: Term(term),
                    index: LogIndex(index),
                    payload: Payload::noop(),
                })
                .collect(),
            leader_commit: LogIndex(0),
        }),
    };
    let _ = node.step_in_place(append(1, vec![(1, 1), (2, 1)]));
    let outputs = node.step_in_place(append(2, vec![(1, 1), (2, 2)]));
    let persists: Vec<_> = outputs
        .iter()
        .filter_map(|output| match output {
            Output::Persist(Persist::Truncate { from }) => Some(format!("truncate {}", from.0)),
            Output::Persist(Persist::Append(entries)) => Some(format!("append {}", entries.len())),
            _ => None,
        })
        .collect();
    assert_eq!(persists, ["truncate 2", "append 1"]);
}

/// Found by the property above (a random case met during a mutation run): a leader-to-be
/// installed a hostile snapshot at index 2^64 - 2, won an election in the one-voter
/// configuration it carried, appended its no-op at 2^64 - 1, and then a proposal overflowed
/// the index space. Indexes that close to the end are refused instead, so every index stays
/// far from overflowing.
#[test]
fn regression_a_snapshot_at_the_end_of_the_index_space_is_refused() {
    let config = Config::new(NodeId(1), [NodeId(1), NodeId(2), NodeId(3)]);
    let mut node: Node<u64> = Node::new(config).expect("valid");
    let chunk_at = |index: u64| InstallSnapshot {
        term: Term(2),
        attempt: 1,
        meta: SnapshotMeta {
            index: LogIndex(index),
            term: Term(1),
            membership: Membership::with_voters([NodeId(1)]).into(),
        },
        total_bytes: 1,
        offset: 0,
        data: vec![7],
    };
    let refuses = |node: &mut Node<u64>, index: u64| {
        let chunk = Message::InstallSnapshot(chunk_at(index));
        let outputs = node.step_in_place(Input::Receive { from: NodeId(2), message: chunk });
        outputs.iter().any(|output| {
            matches!(output, Output::Send { message: Message::InstallSnapshotResponse(r), .. }
                if r.outcome == SnapshotOutcome::Refused)
        })
    };
    assert!(refuses(&mut node, u64::MAX - 1));
    assert!(node.snapshot().is_none(), "not installed");
    // Nor is a snapshot at index 0 (the empty prefix, which no snapshot can be).
    assert!(refuses(&mut node, 0));
    // The sequence that used to overflow now runs: the node campaigns in its own
    // configuration and its proposals land at ordinary indexes.
    let _ = node.step_in_place(Input::Campaign);
    let _ = node.step_in_place(Input::Propose(Proposal::one(ProposalId(0), 0)));
    assert!(node.last_index() < LogIndex(u64::MAX / 2));
    // The highest index a snapshot may have is still accepted.
    let highest = LogIndex::MAX_SNAPSHOT_INDEX.0;
    let mut node: Node<u64> =
        Node::new(Config::new(NodeId(1), [NodeId(1), NodeId(2), NodeId(3)])).expect("valid");
    let chunk = Message::InstallSnapshot(chunk_at(highest));
    let _ = node.step_in_place(Input::Receive { from: NodeId(2), message: chunk });
    assert_eq!(node.snapshot().map(|s| s.meta.index), Some(LogIndex(highest)));
    // A disk holding such a snapshot is refused the same way.
    let meta = chunk_at(u64::MAX - 1).meta;
    let durable = DurableState {
        hard_state: HardState { term: Term(2), voted_for: None, commit: LogIndex(0) },
        snapshot: Some(Snapshot { meta, data: Arc::from(&[7u8][..]) }),
        entries: Vec::new(),
    };
    let config = Config::new(NodeId(1), [NodeId(1), NodeId(2), NodeId(3)]);
    assert_eq!(
        Node::<u64>::restore(config.clone(), durable.clone()).err(),
        Some(stepraft::RestoreError::LogDoesNotFollowSnapshot {
            snapshot_index: LogIndex(u64::MAX - 1)
        })
    );
    // One at the highest index allowed restores.
    let mut at_limit = durable;
    if let Some(snapshot) = &mut at_limit.snapshot {
        snapshot.meta.index = LogIndex::MAX_SNAPSHOT_INDEX;
    }
    let restored = Node::<u64>::restore(config, at_limit).expect("at the limit");
    assert_eq!(restored.last_index(), LogIndex::MAX_SNAPSHOT_INDEX);
}
