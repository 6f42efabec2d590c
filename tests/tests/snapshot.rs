//! Snapshots, log compaction and InstallSnapshot (§7): the log drops what a snapshot covers,
//! far-behind and new nodes catch up from the leader's snapshot sent in chunks (through loss,
//! duplication and reordering), and nodes restart from a snapshot plus a log suffix.

use std::sync::Arc;

use stepraft::{
    DurableState, Entry, HardState, Input, LogIndex, Membership, MembershipChange, Message, Node,
    NodeId, Output, Payload, Persist, RangeError, ReplicationState, RestoreError, Snapshot,
    SnapshotError, SnapshotMeta, SnapshotOutcome, Term, TermError,
};
use stepraft_tests::{Cluster, Envelope};

/// A three-node cluster with a small compaction tail and small chunks, a leader elected.
fn cluster(tail: u64, chunk_bytes: usize) -> (Cluster, NodeId) {
    let mut cluster = Cluster::with_config(3, |config| {
        config.compaction_tail_entries = tail;
        config.snapshot_chunk_bytes = chunk_bytes;
        config.in_flight_messages_max = 4;
    });
    let leader = cluster.elect(100);
    (cluster, leader)
}

fn propose_all(cluster: &mut Cluster, leader: NodeId, commands: std::ops::Range<u64>) {
    for command in commands {
        cluster.propose(leader, command).expect("leader accepts");
    }
    cluster.run_until(5, |_| false);
}

/// Whether the node recorded the snapshot it was given (no `SnapshotRejected`).
fn recorded(outputs: &[Output<u64>]) -> bool {
    !outputs.iter().any(|output| matches!(output, Output::SnapshotRejected { .. }))
}

fn follower_of(cluster: &Cluster, leader: NodeId) -> NodeId {
    cluster.ids().into_iter().find(|&id| id != leader).expect("a follower")
}

/// A cluster (no compaction tail, chunks of `chunk_bytes`) whose leader compacted away 20
/// commands while one follower was cut off, then healed: `(cluster, leader, lagging)`. The
/// follower can only catch up from the snapshot.
fn lagging_behind_a_snapshot(chunk_bytes: usize) -> (Cluster, NodeId, NodeId) {
    let (mut cluster, leader) = cluster(0, chunk_bytes);
    let lagging = follower_of(&cluster, leader);
    cluster.isolate(lagging);
    propose_all(&mut cluster, leader, 0..20);
    cluster.take_snapshot(leader);
    cluster.heal();
    (cluster, leader, lagging)
}

#[test]
fn a_snapshot_compacts_the_log_but_keeps_the_tail() {
    let (mut cluster, leader) = cluster(10, 64);
    propose_all(&mut cluster, leader, 0..50);
    let applied = cluster.node(leader).applied_index();
    assert_eq!(applied, LogIndex(51), "the no-op and 50 commands");

    let outputs = cluster.take_snapshot(leader);
    assert!(recorded(&outputs), "{outputs:?}");
    let node = cluster.node(leader);
    assert_eq!(node.snapshot().map(|s| s.meta.index), Some(applied));
    assert_eq!(node.first_index(), LogIndex(42), "51 - 10 compacted, a tail of 10 kept");
    assert_eq!(node.log_entries().len(), 10);
    // Compacted indexes say so; the last compacted one still has its term.
    assert_eq!(
        node.term_at(LogIndex(5)),
        Err(TermError::Compacted { index: LogIndex(5), compacted_through: LogIndex(41) })
    );
    assert_eq!(node.term_at(LogIndex(41)), Ok(node.term()));
    assert_eq!(
        node.entries(LogIndex(1)..=LogIndex(45)),
        Err(RangeError::Compacted { start: LogIndex(1), first: LogIndex(42) })
    );
    assert_eq!(node.entries(LogIndex(42)..=LogIndex(45)).map(<[_]>::len), Ok(4));
    // The disk saw the snapshot, then the compaction.
    let disk = cluster.disk(leader);
    assert_eq!(disk.snapshot.as_ref(), node.snapshot());
    assert_eq!(disk.entries.first().map(|e| e.index), Some(LogIndex(42)));
    assert_eq!(disk.entries.as_slice(), node.log_entries());

    // Replication goes on after compaction.
    propose_all(&mut cluster, leader, 50..60);
    for id in cluster.ids() {
        assert_eq!(cluster.applied_commands(id), (0..60).collect::<Vec<_>>());
    }
    cluster.assert_safety();
}

#[test]
fn a_snapshot_inside_the_tail_compacts_nothing() {
    // A tail of 128 entries and 6 applied: the snapshot is recorded, but nothing is dropped,
    // and the disk is not asked to compact.
    let (mut cluster, leader) = cluster(128, 64);
    propose_all(&mut cluster, leader, 0..5);
    let outputs = cluster.take_snapshot(leader);
    assert!(outputs.iter().any(|o| matches!(o, Output::Persist(Persist::Snapshot(_)))));
    assert!(!outputs.iter().any(|o| matches!(o, Output::Persist(Persist::Compact { .. }))));
    assert_eq!(cluster.node(leader).first_index(), LogIndex(1));
}

#[test]
fn a_snapshot_carries_the_configuration_in_force_at_its_index() {
    let (mut cluster, leader) = cluster(0, 64);
    propose_all(&mut cluster, leader, 0..3);
    cluster.take_snapshot(leader);
    let initial = Membership::with_voters(cluster.ids());
    let snapshot = cluster.node(leader).snapshot().expect("taken");
    assert_eq!(*snapshot.meta.membership, initial, "no configuration entry yet: the initial one");
    // A configuration entry in the log, then a snapshot past it: the snapshot must say so,
    // since the entry itself is compacted away.
    cluster.change_membership(leader, MembershipChange::AddLearner(NodeId(7))).expect("accepted");
    propose_all(&mut cluster, leader, 3..6);
    cluster.take_snapshot(leader);
    let node = cluster.node(leader);
    let snapshot = node.snapshot().expect("taken");
    assert!(snapshot.meta.membership.learners.contains(&NodeId(7)), "{:?}", snapshot.meta);
    assert_eq!(*snapshot.meta.membership, *node.membership());
    // And a node restored from that snapshot alone knows the configuration.
    let config = node.config().clone();
    let durable = DurableState {
        hard_state: node.hard_state(),
        snapshot: Some(snapshot.clone()),
        entries: Vec::new(),
    };
    let restored = Node::<u64>::restore(config, durable).expect("restores");
    assert_eq!(restored.membership(), node.membership());
}

#[test]
fn an_install_answer_beyond_the_leaders_log_is_ignored() {
    let (mut cluster, leader, lagging) = lagging_behind_a_snapshot(4);
    // One message at a time, until the leader has started the transfer.
    let pending = |c: &Cluster| c.node(leader).progress(lagging).and_then(|p| p.pending_snapshot());
    for _ in 0..1000 {
        if pending(&cluster).is_some() {
            break;
        }
        if !cluster.deliver_one() {
            cluster.tick(leader);
        }
    }
    assert!(pending(&cluster).is_some(), "a transfer starts");
    let node = cluster.node(leader);
    let (term, index) = (node.term(), node.snapshot().expect("taken").meta.index);
    let (ignored, beyond) = (node.stats().ignored_messages, node.last_index().plus(10));
    let attempt = node.progress(lagging).and_then(|p| p.snapshot_attempt()).expect("sending");
    let response = stepraft::InstallSnapshotResponse {
        term,
        snapshot_index: index,
        attempt,
        outcome: SnapshotOutcome::Installed { match_index: beyond },
    };
    let input =
        Input::Receive { from: lagging, message: Message::InstallSnapshotResponse(response) };
    cluster.step(leader, input);
    let node = cluster.node(leader);
    assert_eq!(node.stats().ignored_messages, ignored + 1);
    let progress = node.progress(lagging).expect("a follower");
    assert!(progress.match_index() < index, "no progress from a forged answer");
}

#[test]
fn stale_and_premature_snapshots_are_refused_with_a_typed_error() {
    let (mut cluster, leader) = cluster(0, 64);
    propose_all(&mut cluster, leader, 0..5);
    let applied = cluster.node(leader).applied_index();
    let data: Arc<[u8]> = Arc::from(&b"state"[..]);
    let ahead =
        cluster.step(leader, Input::SnapshotTaken { index: applied.next(), data: data.clone() });
    assert!(ahead.contains(&Output::SnapshotRejected {
        index: applied.next(),
        error: SnapshotError::NotApplied { index: applied.next(), applied },
    }));
    let outputs = cluster.take_snapshot(leader);
    assert!(recorded(&outputs));
    let again = cluster.step(leader, Input::SnapshotTaken { index: applied, data });
    assert!(again.contains(&Output::SnapshotRejected {
        index: applied,
        error: SnapshotError::Stale { index: applied, current: applied },
    }));
    assert_eq!(cluster.node(leader).first_index(), applied.next(), "no tail: all compacted");
}

#[test]
fn a_far_behind_follower_catches_up_by_a_chunked_snapshot() {
    let (mut cluster, leader) = cluster(5, 16);
    let lagging = follower_of(&cluster, leader);
    cluster.isolate(lagging);
    propose_all(&mut cluster, leader, 0..100);
    cluster.take_snapshot(leader);
    assert!(
        cluster.node(leader).first_index() > LogIndex(2),
        "the follower's next entries are gone"
    );

    cluster.heal();
    let restored = cluster
        .run_until(50, |c| c.node(lagging).applied_index() == c.node(leader).applied_index());
    assert!(restored, "the follower catches up");
    assert_eq!(cluster.applied_commands(lagging), (0..100).collect::<Vec<_>>());
    let follower = cluster.node(lagging);
    assert_eq!(follower.stats().snapshots_installed, 1);
    assert_eq!(follower.snapshot(), cluster.node(leader).snapshot());
    assert_eq!(follower.first_index(), follower.snapshot().expect("installed").meta.index.next());
    // 100 commands of 8 bytes in chunks of 16 bytes: many chunks, none larger than 16.
    let stats = cluster.node(leader).stats();
    assert!(stats.snapshot_chunks_sent >= 50, "{stats:?}");
    assert_eq!(stats.snapshots_sent, 1, "one transfer, never restarted on a lossless network");
    assert_eq!(
        cluster.node(leader).progress(lagging).map(|p| p.state()),
        Some(ReplicationState::Replicate)
    );
    // What the follower applied from the snapshot is what the others applied entry by entry.
    assert!(cluster.applied(lagging).len() < 10, "the prefix came from the snapshot");
    cluster.assert_safety();
}

#[test]
fn chunks_lost_duplicated_and_reordered_still_install() {
    let (mut cluster, _, lagging) = lagging_behind_a_snapshot(8);
    let mut round = 0u64;
    let installed = cluster.run_until_with(
        200,
        |c| {
            // Shuffle the network each round: drop every third chunk, duplicate every other one,
            // and deliver in reverse order.
            round += 1;
            let mut chunks = 0;
            let mut kept: Vec<Envelope> = Vec::new();
            for envelope in c.take_in_flight() {
                if matches!(envelope.message, Message::InstallSnapshot(_)) {
                    chunks += 1;
                    if (chunks + round) % 3 == 0 {
                        continue;
                    }
                    if chunks % 2 == 0 {
                        kept.push(envelope.clone());
                    }
                }
                kept.push(envelope);
            }
            for envelope in kept.into_iter().rev() {
                c.inject(envelope);
            }
        },
        |c| c.node(lagging).stats().snapshots_installed > 0,
    );
    assert!(installed, "the transfer completes despite the faults");
    assert!(cluster.run_until(20, |c| c.applied_commands(lagging).len() == 20));
    assert_eq!(cluster.applied_commands(lagging), (0..20).collect::<Vec<_>>());
    cluster.assert_safety();
}

#[test]
fn a_gap_is_answered_with_the_expected_offset_and_a_duplicate_changes_nothing() {
    let (mut cluster, leader) = cluster(0, 4);
    let lagging = follower_of(&cluster, leader);
    cluster.isolate(lagging);
    propose_all(&mut cluster, leader, 0..4);
    cluster.take_snapshot(leader);
    cluster.heal();
    cluster.drop_all();
    // The next heartbeat answer makes the leader probe, learn of the gap and send the first
    // chunk (one, until it is answered).
    let mut first = None;
    for _ in 0..10 {
        cluster.tick(leader);
        // Deliver everything but the chunks, which the test hands over itself.
        loop {
            let pending = cluster.take_in_flight();
            if pending.is_empty() {
                break;
            }
            for envelope in pending {
                match envelope.message {
                    Message::InstallSnapshot(chunk) => first = first.or(Some(chunk)),
                    message => {
                        cluster.step(envelope.to, Input::Receive { from: envelope.from, message });
                    }
                }
            }
        }
        if first.is_some() {
            break;
        }
    }
    let first = first.expect("a chunk was sent");
    let data = cluster.node(leader).snapshot().expect("taken").data.clone();
    assert!(data.len() > 8, "at least three chunks of 4 bytes");
    let by_offset = |offset: u64| {
        let end = (offset as usize + 4).min(data.len());
        stepraft::InstallSnapshot {
            offset,
            data: data[offset as usize..end].to_vec(),
            ..first.clone()
        }
    };
    let answer = |cluster: &mut Cluster, chunk: &stepraft::InstallSnapshot| {
        let outputs = cluster.step(
            lagging,
            Input::Receive { from: leader, message: Message::InstallSnapshot(chunk.clone()) },
        );
        outputs.iter().find_map(|output| match output {
            Output::Send { message: Message::InstallSnapshotResponse(response), .. } => {
                Some(response.outcome)
            }
            _ => None,
        })
    };
    // The first chunk of a transfer starts it at once.
    assert_eq!(
        answer(&mut cluster, &by_offset(0)),
        Some(SnapshotOutcome::Received { next_offset: 4 })
    );
    // A later chunk of a newer snapshot does not: that transfer must start at offset 0.
    let mut newer = by_offset(4);
    newer.meta.index = newer.meta.index.next();
    assert_eq!(answer(&mut cluster, &newer), Some(SnapshotOutcome::Gap { next_offset: 0 }));
    // A chunk of an older snapshot comes from a transfer the leader abandoned: ignored,
    // without an answer.
    let mut older = by_offset(0);
    older.meta.index = older.meta.index.prev();
    let ignored = cluster.node(lagging).stats().ignored_messages;
    assert_eq!(answer(&mut cluster, &older), None);
    assert_eq!(cluster.node(lagging).stats().ignored_messages, ignored + 1);
    assert_eq!(
        answer(&mut cluster, &by_offset(0)),
        Some(SnapshotOutcome::Received { next_offset: 4 }),
        "the first transfer is kept"
    );
    assert_eq!(
        answer(&mut cluster, &by_offset(0)),
        Some(SnapshotOutcome::Received { next_offset: 4 }),
        "duplicate"
    );
    assert_eq!(answer(&mut cluster, &by_offset(8)), Some(SnapshotOutcome::Gap { next_offset: 4 }));
    assert_eq!(
        answer(&mut cluster, &by_offset(4)),
        Some(SnapshotOutcome::Received { next_offset: 8 })
    );
    cluster.drop_all();
    assert!(cluster.run_until(30, |c| c.applied_commands(lagging) == (0..4).collect::<Vec<_>>()));
    cluster.assert_safety();
}

#[test]
fn a_node_restarts_from_its_snapshot_and_log_suffix() {
    let (mut cluster, leader) = cluster(3, 64);
    propose_all(&mut cluster, leader, 0..30);
    let follower = follower_of(&cluster, leader);
    cluster.take_snapshot(follower);
    propose_all(&mut cluster, leader, 30..40);
    let snapshot = cluster.node(follower).snapshot().cloned().expect("taken");
    assert!(
        cluster.disk(follower).entries.first().is_some_and(|e| e.index < snapshot.meta.index),
        "tail kept on disk"
    );

    cluster.crash(follower);
    cluster.restart(follower);
    let outputs = cluster.tick(follower);
    let restore = outputs.iter().position(|o| matches!(o, Output::RestoreSnapshot(_)));
    let apply = outputs.iter().position(|o| matches!(o, Output::Apply(_)));
    assert!(restore.is_some() && restore < apply, "restore, then apply the suffix: {outputs:?}");
    match &outputs[apply.expect("apply")] {
        Output::Apply(entries) => {
            assert_eq!(entries.first().map(|e| e.index), Some(snapshot.meta.index.next()))
        }
        _ => unreachable!(),
    }
    assert_eq!(cluster.applied_commands(follower), (0..40).collect::<Vec<_>>());
    assert_eq!(cluster.node(follower).first_index(), snapshot.meta.index.next());
    propose_all(&mut cluster, leader, 40..45);
    assert_eq!(cluster.applied_commands(follower), (0..45).collect::<Vec<_>>());
    cluster.assert_safety();
}

#[test]
fn a_new_node_joins_from_the_snapshot_and_learns_the_membership() {
    let (mut cluster, leader) = cluster(2, 32);
    propose_all(&mut cluster, leader, 0..40);
    cluster.take_snapshot(leader);
    cluster.add_passive_node(NodeId(4));
    cluster.change_membership(leader, MembershipChange::AddLearner(NodeId(4))).expect("valid");
    assert!(cluster.run_until(50, |c| c.applied_commands(NodeId(4)).len() == 40));
    let joined = cluster.node(NodeId(4));
    assert_eq!(joined.stats().snapshots_installed, 1);
    assert!(joined.membership().learners.contains(&NodeId(4)));
    cluster.change_membership(leader, MembershipChange::PromoteLearner(NodeId(4))).expect("valid");
    propose_all(&mut cluster, leader, 40..42);
    assert_eq!(cluster.applied_commands(NodeId(4)), (0..42).collect::<Vec<_>>());
    assert!(cluster.node(NodeId(4)).membership().voters.contains(&NodeId(4)));
    cluster.assert_safety();
}

#[test]
fn a_snapshot_replaces_a_conflicting_log() {
    let (mut cluster, old) = cluster(0, 16);
    propose_all(&mut cluster, old, 0..3);
    // The old leader appends entries nobody else gets, then is cut off.
    cluster.isolate(old);
    for command in 100..105 {
        cluster.propose(old, command).expect("still leader");
    }
    cluster.drop_all();
    assert!(cluster.run_until(200, |c| c.leader().is_some_and(|l| l != old)));
    let new = cluster.leader().expect("a new leader");
    propose_all(&mut cluster, new, 3..30);
    cluster.take_snapshot(new);
    let conflicting = cluster.node(old).log_entries().iter().map(|e| e.index).max();
    assert!(
        conflicting < Some(cluster.node(new).first_index()),
        "the old leader needs the snapshot"
    );
    cluster.heal();
    assert!(cluster.run_until(100, |c| c.applied_commands(old) == (0..30).collect::<Vec<_>>()));
    assert!(cluster.node(old).log_entries().iter().all(|e| e.command().is_none_or(|&c| c < 100)));
    cluster.assert_safety();
}

#[test]
fn the_disk_keeps_a_matching_log_and_discards_a_conflicting_one() {
    let entry = |index: u64, term: u64| Entry {
        term: Term(term),
        index: LogIndex(index),
        payload: Payload::Command(index),
    };
    let snapshot = |index: u64, term: u64| Snapshot {
        meta: SnapshotMeta {
            index: LogIndex(index),
            term: Term(term),
            membership: Membership::with_voters([NodeId(1)]).into(),
        },
        data: Arc::from(&b"s"[..]),
    };
    let mut disk: DurableState<u64> = DurableState::default();
    disk.apply(&Persist::Append((1..=5).map(|i| entry(i, 1)).collect()));
    disk.apply(&Persist::Snapshot(snapshot(3, 1)));
    assert_eq!(disk.entries.len(), 5, "the log holds the snapshot's entry: kept");
    disk.apply(&Persist::Compact { through: LogIndex(3) });
    assert_eq!(disk.first_index(), LogIndex(4));
    disk.apply(&Persist::Append(vec![entry(6, 1)]));
    assert_eq!(disk.last_index(), LogIndex(6));
    disk.apply(&Persist::Truncate { from: LogIndex(5) });
    assert_eq!(disk.last_index(), LogIndex(4));
    disk.apply(&Persist::Snapshot(snapshot(4, 2)));
    assert!(disk.entries.is_empty(), "another term at the snapshot's index: discarded");
    assert_eq!(disk.first_index(), LogIndex(5));
    disk.apply(&Persist::Append(vec![entry(5, 2)]));
    disk.hard_state = HardState { term: Term(2), voted_for: None, commit: LogIndex(4) };
    let node =
        Node::restore(stepraft::Config::new(NodeId(1), [NodeId(1)]), disk).expect("restores");
    assert_eq!(
        (node.first_index(), node.last_index(), node.commit_index()),
        (LogIndex(5), LogIndex(5), LogIndex(4))
    );
}

#[test]
fn a_durable_log_that_does_not_continue_the_snapshot_is_refused() {
    let config = stepraft::Config::new(NodeId(1), [NodeId(1)]);
    let snapshot = Snapshot {
        meta: SnapshotMeta {
            index: LogIndex(10),
            term: Term(2),
            membership: Membership::with_voters([NodeId(1)]).into(),
        },
        data: Arc::from(&[][..]),
    };
    let hard_state = HardState { term: Term(3), voted_for: None, commit: LogIndex(0) };
    let with_log = |first: u64, term: u64| DurableState {
        hard_state,
        snapshot: Some(snapshot.clone()),
        entries: (first..first + 3)
            .map(|i| Entry { term: Term(term), index: LogIndex(i), payload: Payload::Command(i) })
            .collect(),
    };
    let refused = Some(RestoreError::LogDoesNotFollowSnapshot { snapshot_index: LogIndex(10) });
    assert_eq!(Node::<u64>::restore(config.clone(), with_log(12, 2)).err(), refused, "a gap");
    assert_eq!(
        Node::<u64>::restore(config.clone(), with_log(9, 3)).err(),
        refused,
        "another term at 10"
    );
    assert_eq!(
        Node::<u64>::restore(config.clone(), with_log(5, 2)).err(),
        refused,
        "ends before 10"
    );
    let node = Node::<u64>::restore(config.clone(), with_log(9, 2)).expect("a tail that overlaps");
    assert_eq!(
        (node.first_index(), node.last_index(), node.commit_index()),
        (LogIndex(11), LogIndex(11), LogIndex(10))
    );
    // The boundary: a stored log whose first entry is the snapshot's own entry.
    let node = Node::<u64>::restore(config.clone(), with_log(10, 2)).expect("from the snapshot");
    assert_eq!((node.first_index(), node.last_index()), (LogIndex(11), LogIndex(12)));
    assert_eq!(Node::<u64>::restore(config.clone(), with_log(10, 1)).err(), refused, "term at 10");
    let node = Node::<u64>::restore(config, with_log(11, 2)).expect("right after the snapshot");
    assert_eq!(node.last_index(), LogIndex(13));
}

#[test]
fn a_transfer_cut_by_a_leader_change_restarts_cleanly_from_the_new_leader() {
    let (mut cluster, old) = cluster(0, 8);
    let ids = cluster.ids();
    let lagging = follower_of(&cluster, old);
    let other = ids.into_iter().find(|&id| id != old && id != lagging).expect("a third node");
    cluster.isolate(lagging);
    propose_all(&mut cluster, old, 0..10);
    cluster.take_snapshot(old);
    cluster.take_snapshot(other);
    cluster.heal();
    // Let only the first chunk of the old leader's snapshot through, then crash it.
    let mut delivered_first_chunk = false;
    for _ in 0..10 {
        cluster.tick(old);
        while !cluster.in_flight().is_empty() {
            for envelope in cluster.take_in_flight() {
                let input = Input::Receive { from: envelope.from, message: envelope.message };
                match &input {
                    Input::Receive { message: Message::InstallSnapshot(chunk), .. } => {
                        if chunk.offset == 0 && !delivered_first_chunk {
                            delivered_first_chunk = true;
                            cluster.step(envelope.to, input);
                        }
                    }
                    _ => {
                        cluster.step(envelope.to, input);
                    }
                }
            }
        }
        if delivered_first_chunk {
            break;
        }
    }
    assert!(delivered_first_chunk);
    assert_eq!(cluster.node(lagging).stats().snapshots_installed, 0, "only partly received");
    cluster.crash(old);
    assert!(cluster.run_until(300, |c| c.leader() == Some(other)), "the up-to-date node leads");
    assert!(cluster.run_until(100, |c| c.applied_commands(lagging) == (0..10).collect::<Vec<_>>()));
    assert_eq!(cluster.node(lagging).stats().snapshots_installed, 1);
    assert_eq!(cluster.node(lagging).snapshot(), cluster.node(other).snapshot());
    cluster.assert_safety();
}

#[test]
fn an_append_from_inside_the_snapshot_is_acknowledged_only_up_to_the_commit() {
    // A follower with a snapshot through 5 and uncommitted entries 6..=7 of term 1.
    let entry = |index: u64, term: u64| Entry {
        term: Term(term),
        index: LogIndex(index),
        payload: Payload::Command(index),
    };
    let voters = [NodeId(1), NodeId(2), NodeId(3)];
    let durable = DurableState {
        hard_state: HardState { term: Term(1), voted_for: None, commit: LogIndex(5) },
        snapshot: Some(Snapshot {
            meta: SnapshotMeta {
                index: LogIndex(5),
                term: Term(1),
                membership: Membership::with_voters(voters).into(),
            },
            data: Arc::from(&[][..]),
        }),
        entries: vec![entry(6, 1), entry(7, 1)],
    };
    let mut node = Node::restore(stepraft::Config::new(NodeId(2), voters), durable).expect("valid");
    // A leader of term 2 with a stale view sends from index 4: its entries past 5 differ.
    let append = stepraft::AppendEntries {
        term: Term(2),
        prev_log_index: LogIndex(3),
        prev_log_term: Term(1),
        entries: vec![entry(4, 1), entry(5, 1), entry(6, 2), entry(7, 2), entry(8, 2)],
        leader_commit: LogIndex(8),
    };
    let outputs = node
        .step_in_place(Input::Receive { from: NodeId(1), message: Message::AppendEntries(append) });
    let answer = outputs.iter().find_map(|output| match output {
        Output::Send { message: Message::AppendEntriesResponse(response), .. } => {
            Some(response.outcome)
        }
        _ => None,
    });
    // Only the committed prefix is known to match; claiming 8 would let the leader count
    // entries this node does not hold.
    assert_eq!(answer, Some(stepraft::AppendOutcome::Success { match_index: LogIndex(5) }));
    assert_eq!(node.commit_index(), LogIndex(5));
    assert_eq!(node.term_at(LogIndex(7)), Ok(Term(1)), "nothing was appended or truncated");
}

/// Steps the cluster one message (or, when the network is empty, one tick of every node) at a
/// time until `done` holds; returns whether it did within `steps_max` steps.
fn step_until(cluster: &mut Cluster, steps_max: u32, done: impl Fn(&Cluster) -> bool) -> bool {
    for _ in 0..steps_max {
        if done(cluster) {
            return true;
        }
        if !cluster.deliver_one() {
            cluster.tick_all();
        }
    }
    done(cluster)
}

/// A follower that restarts in the middle of a transfer has lost the chunks it confirmed; its
/// gap answer at offset 0 must start the transfer over. (Before attempts, the leader ignored
/// a gap below what it had seen confirmed and resent the same later chunks forever.)
#[test]
fn a_follower_that_restarts_mid_transfer_receives_the_snapshot_from_the_start() {
    let (mut cluster, leader, lagging) = lagging_behind_a_snapshot(4);
    let confirmed =
        |c: &Cluster| c.node(leader).progress(lagging).and_then(|p| p.snapshot_offset());
    assert!(step_until(&mut cluster, 10_000, |c| confirmed(c) >= Some(8)), "chunks confirmed");
    assert_eq!(cluster.node(lagging).stats().snapshots_installed, 0, "mid-transfer");
    cluster.crash(lagging);
    cluster.restart(lagging);
    let caught_up = cluster
        .run_until(50, |c| c.node(lagging).applied_index() == c.node(leader).applied_index());
    assert!(caught_up, "the transfer finishes after the restart");
    assert_eq!(cluster.node(lagging).stats().snapshots_installed, 1);
    assert!(cluster.node(leader).stats().snapshot_restarts >= 1, "the gap at 0 restarted it");
    assert_eq!(cluster.node(lagging).snapshot(), cluster.node(leader).snapshot());
    cluster.assert_safety();
}

/// A leader that takes a new snapshot more often than a transfer takes keeps sending the one
/// the transfer started with, so the transfer finishes. (Restarting with each newer snapshot
/// never finished one.)
#[test]
fn newer_snapshots_on_the_leader_do_not_restart_a_transfer_under_way() {
    let (mut cluster, leader, lagging) = lagging_behind_a_snapshot(4);
    let mut command = 100;
    let installed = cluster.run_until_with(
        100,
        |c| {
            // A new command and a new snapshot every round.
            command += 1;
            c.propose(leader, command).expect("leader accepts");
            c.deliver_all();
            c.take_snapshot(leader);
        },
        |c| c.node(lagging).stats().snapshots_installed > 0,
    );
    assert!(installed, "a transfer finishes while the leader keeps snapshotting");
    let first = cluster.node(lagging).snapshot().expect("installed").meta.index;
    assert!(first < cluster.node(leader).snapshot().expect("taken").meta.index, "an older one");
    // Once the leader stops compacting, a fresh transfer of its latest snapshot completes the
    // catch-up.
    let caught_up = cluster
        .run_until(100, |c| c.node(lagging).applied_index() == c.node(leader).applied_index());
    assert!(caught_up, "the follower catches up");
    assert_eq!(cluster.node(lagging).applied_index(), cluster.node(leader).applied_index());
    cluster.assert_safety();
}

/// One chunk lost from a full window: every chunk after it reports the same gap, and only the
/// first of those answers starts a new attempt.
#[test]
fn a_chunk_lost_from_a_full_window_costs_one_restart() {
    let (mut cluster, leader, lagging) = lagging_behind_a_snapshot(4);
    let mut dropped = false;
    for _ in 0..10_000 {
        if cluster.node(lagging).stats().snapshots_installed > 0 {
            break;
        }
        let pending = cluster.take_in_flight();
        if pending.is_empty() {
            cluster.tick_all();
        }
        for envelope in pending {
            let lose = matches!(&envelope.message,
                Message::InstallSnapshot(chunk) if chunk.offset == 8 && !dropped);
            dropped |= lose;
            if !lose {
                cluster.step(
                    envelope.to,
                    Input::Receive { from: envelope.from, message: envelope.message },
                );
            }
        }
    }
    assert!(dropped, "the chunk at 8 was dropped");
    assert_eq!(cluster.node(lagging).stats().snapshots_installed, 1);
    let stats = cluster.node(leader).stats();
    assert_eq!(stats.snapshot_restarts, 1, "{stats:?}");
    assert_eq!(stats.snapshots_sent, 1, "{stats:?}");
    cluster.assert_safety();
}
