//! The Raft paper (Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm",
//! extended version) on log replication, as scenario tests: §5.3 replication, commitment, the
//! consistency check and truncation of conflicting entries, Figure 7's divergent followers, and
//! §5.4.2 / Figure 8, committing entries from previous terms. Each test cites the section it
//! checks; terms and elections are in `raft_paper_election.rs`.
//!
//! Single nodes are driven by hand with `step_in_place`; whole clusters run on the in-memory
//! harness, or on the small `Net` when nodes must start from a log built with `Node::restore`
//! (Figures 7 and 8).

use std::collections::BTreeSet;

use stepraft::{
    AppendEntries, AppendEntriesResponse, AppendOutcome, ConflictHint, DurableState, Entry,
    HardState, Input, LogIndex, Message, Node, NodeId, Persist, RangeError, Role, Term,
};
use stepraft_tests::{
    append, append_response, applied, config, entry, fresh, hard, log_of_terms, log_persists, noop,
    persists, receive, reply, restored, sends, success, terms_of, win_election, Cluster, Net,
};

// ----- §5.3: log replication -----

/// §5.3, §8: a new leader appends a no-op entry of its term and at once sends AppendEntries
/// carrying it to every follower, including those that did not vote for it.
#[test]
fn new_leader_appends_noop_of_its_term_and_sends_it_to_every_follower() {
    let mut node = restored(config(1, 3), hard(1, None, 0), &[1, 1]);
    let outputs = win_election(&mut node);
    assert_eq!(node.term(), Term(2));
    let noop = noop(3, 2);
    assert_eq!(node.log_entries().last(), Some(&noop));
    assert_eq!((node.last_index(), node.last_term()), (LogIndex(3), Term(2)));
    assert!(log_persists(&outputs).contains(&Persist::Append(vec![noop.clone()])));
    let expected = append(2, 2, 1, vec![noop], 0);
    assert_eq!(sends(&outputs), vec![(NodeId(2), expected.clone()), (NodeId(3), expected)]);
}

/// §5.3: an entry is committed once the leader has replicated it on a majority of servers, and
/// not before. Here each follower's copy is delivered by hand.
#[test]
fn entry_commits_once_a_majority_stores_it_and_not_before() {
    let leader = NodeId(1);
    let mut cluster = Cluster::new(5);
    cluster.campaign(leader);
    cluster.deliver_all();
    assert_eq!(cluster.node(leader).commit_index(), LogIndex(1));
    let index = cluster.propose(leader, 42).expect("leader accepts");
    assert_eq!(index, LogIndex(2));
    let appends = cluster.take_in_flight();
    assert_eq!(appends.len(), 4, "one AppendEntries per follower");
    let append_to =
        |id: u64| appends.iter().find(|envelope| envelope.to == NodeId(id)).cloned().expect("sent");

    // Stored on the leader and node 2: 2 of 5.
    cluster.inject(append_to(2));
    cluster.deliver_all();
    assert_eq!(cluster.node(NodeId(2)).last_index(), index);
    assert_eq!(cluster.node(leader).commit_index(), LogIndex(1));
    assert_eq!(
        cluster.node(leader).entries(index..=index),
        Err(RangeError::NotCommitted { end: index, commit: LogIndex(1) })
    );
    assert!(cluster.applied_commands(leader).is_empty());

    // Stored on node 3 too: 3 of 5, a majority.
    cluster.inject(append_to(3));
    cluster.deliver_all();
    assert_eq!(cluster.node(leader).commit_index(), index);
    assert_eq!(cluster.applied_commands(leader), [42]);
    let committed = cluster.node(leader).entries(index..=index).expect("committed");
    assert_eq!(committed[0].command(), Some(&42));

    // The remaining copies change nothing.
    cluster.inject(append_to(4));
    cluster.inject(append_to(5));
    cluster.deliver_all();
    assert_eq!(cluster.node(leader).commit_index(), index);
    cluster.assert_safety();
}

/// §5.3: committing an entry commits every entry before it: a single acknowledgement of the
/// last of three entries commits all three at once.
#[test]
fn committing_current_term_entry_commits_all_preceding_entries() {
    let leader = NodeId(1);
    let mut cluster = Cluster::new(3);
    cluster.campaign(leader);
    cluster.deliver_all();
    assert_eq!(cluster.node(leader).commit_index(), LogIndex(1));
    for command in [10, 11, 12] {
        cluster.propose(leader, command).expect("leader accepts");
    }
    let to_node_2: Vec<_> =
        cluster.take_in_flight().into_iter().filter(|e| e.to == NodeId(2)).collect();
    assert_eq!(to_node_2.len(), 3);
    for envelope in to_node_2 {
        cluster.inject(envelope);
    }
    for _ in 0..3 {
        cluster.deliver_one();
    }
    assert_eq!(cluster.node(NodeId(2)).last_index(), LogIndex(4));
    // Lose every acknowledgement but the last one.
    let last_ack = cluster.take_in_flight().pop().expect("acknowledgements");
    assert!(matches!(
        &last_ack.message,
        Message::AppendEntriesResponse(AppendEntriesResponse {
            outcome: AppendOutcome::Success { match_index: LogIndex(4) },
            ..
        })
    ));
    assert_eq!(cluster.node(leader).commit_index(), LogIndex(1));
    cluster.inject(last_ack);
    cluster.deliver_all();
    assert_eq!(cluster.node(leader).commit_index(), LogIndex(4));
    let applied_now = applied(cluster.last_outputs(leader));
    let indexes: Vec<LogIndex> = applied_now.iter().map(|entry| entry.index).collect();
    assert_eq!(indexes, [LogIndex(2), LogIndex(3), LogIndex(4)]);
    assert_eq!(cluster.applied_commands(leader), [10, 11, 12]);
}

/// §5.3: followers learn the commit index from the leader's heartbeats and apply the newly
/// committed entries in order.
#[test]
fn followers_learn_commit_index_from_heartbeat_and_apply() {
    let leader = NodeId(1);
    let followers = [NodeId(2), NodeId(3)];
    let mut cluster = Cluster::new(3);
    cluster.campaign(leader);
    cluster.deliver_all();
    let index = cluster.propose(leader, 7).expect("leader accepts");
    cluster.deliver_all();
    assert_eq!(cluster.node(leader).commit_index(), index);
    for follower in followers {
        assert_eq!(cluster.node(follower).last_index(), index);
        assert!(cluster.node(follower).commit_index() < index, "not told yet");
        assert!(cluster.applied_commands(follower).is_empty());
    }
    cluster.tick(leader);
    cluster.deliver_all();
    for follower in followers {
        assert_eq!(cluster.node(follower).commit_index(), index);
        assert_eq!(cluster.applied_commands(follower), [7]);
        assert_eq!(cluster.applied(follower).len(), 2, "the no-op is applied too");
    }
    cluster.assert_safety();
}

/// §5.3: followers also learn the commit index from the `leader_commit` of the next
/// AppendEntries.
#[test]
fn followers_learn_commit_index_from_next_append_entries() {
    let leader = NodeId(1);
    let mut cluster = Cluster::new(3);
    cluster.campaign(leader);
    cluster.deliver_all();
    let first = cluster.propose(leader, 7).expect("leader accepts");
    cluster.deliver_all();
    assert!(cluster.node(NodeId(2)).commit_index() < first);
    cluster.propose(leader, 8).expect("leader accepts");
    let appends = cluster.take_in_flight();
    let to_node_2 = appends.into_iter().find(|e| e.to == NodeId(2)).expect("sent");
    assert!(matches!(
        &to_node_2.message,
        Message::AppendEntries(AppendEntries { leader_commit, .. }) if *leader_commit == first
    ));
    cluster.inject(to_node_2);
    cluster.deliver_one();
    assert_eq!(cluster.node(NodeId(2)).commit_index(), first);
    assert_eq!(cluster.applied_commands(NodeId(2)), [7]);
}

/// §5.3 (Figure 2, AppendEntries rule 5): a follower sets its commit index to
/// min(leaderCommit, index of last new entry) — never past what the message proved matches,
/// even when its log holds more (possibly divergent) entries.
#[test]
fn follower_commit_is_capped_at_index_of_last_new_entry() {
    // Entries 4 and 5 come from a deposed leader of term 2.
    let mut follower = restored(config(2, 3), hard(2, None, 0), &[1, 1, 1, 2, 2]);
    // The leader of term 3 has committed 5 entries of its own log; this message only covers
    // index 3.
    let outputs = receive(&mut follower, 1, append(3, 2, 1, vec![entry(3, 1)], 5));
    assert_eq!(reply(&outputs, 1), append_response(3, success(3)));
    assert_eq!(follower.commit_index(), LogIndex(3));
    assert_eq!(applied(&outputs), log_of_terms(&[1, 1, 1]));
    assert_eq!(follower.last_index(), LogIndex(5));

    // An empty follower told of a commit index beyond the entries sent commits only those.
    let mut follower = fresh(2, 3);
    let outputs = receive(&mut follower, 1, append(1, 0, 0, log_of_terms(&[1, 1]), 9));
    assert_eq!(reply(&outputs, 1), append_response(1, success(2)));
    assert_eq!(follower.commit_index(), LogIndex(2));
    assert_eq!(applied(&outputs), log_of_terms(&[1, 1]));
}

/// §5.3: the consistency check fails when the follower's log is too short to hold
/// `prev_log_index`: it answers `Conflict` with a hint at its last index + 1 and no term, and
/// changes nothing.
#[test]
fn follower_with_too_short_log_rejects_append_with_hint_at_its_end() {
    let mut follower = restored(config(2, 3), hard(2, None, 0), &[1, 1]);
    let outputs = receive(&mut follower, 1, append(2, 5, 2, vec![entry(6, 2)], 0));
    let outcome = AppendOutcome::Conflict {
        rejected_prev_index: LogIndex(5),
        hint: ConflictHint { index: LogIndex(3), term: None },
    };
    assert_eq!(reply(&outputs, 1), append_response(2, outcome));
    assert_eq!(terms_of(&follower), [1, 1]);
    assert!(log_persists(&outputs).is_empty());
}

/// §5.3: the consistency check fails when the follower holds another term at
/// `prev_log_index`: it answers `Conflict` with the first index of that term and the term, and
/// changes nothing.
#[test]
fn follower_with_other_term_at_prev_index_rejects_append_with_first_index_of_that_term() {
    let mut follower = restored(config(2, 3), hard(3, None, 0), &[1, 1, 2, 2, 2]);
    let outputs = receive(&mut follower, 1, append(3, 4, 3, vec![entry(5, 3)], 0));
    let outcome = AppendOutcome::Conflict {
        rejected_prev_index: LogIndex(4),
        hint: ConflictHint { index: LogIndex(3), term: Some(Term(2)) },
    };
    assert_eq!(reply(&outputs, 1), append_response(3, outcome));
    assert_eq!(terms_of(&follower), [1, 1, 2, 2, 2]);
    assert!(log_persists(&outputs).is_empty());

    // The same follower accepts a request whose previous entry it does hold.
    let outputs = receive(&mut follower, 1, append(3, 2, 1, vec![entry(3, 3)], 0));
    assert_eq!(reply(&outputs, 1), append_response(3, success(3)));
}

/// §5.3: only a conflict truncates. A duplicated, reordered or stale (shorter) AppendEntries
/// whose entries are already in the log never removes the entries after them.
#[test]
fn stale_shorter_append_never_truncates_matching_entries() {
    let mut follower = fresh(2, 3);
    let long = append(1, 0, 0, log_of_terms(&[1, 1, 1, 1, 1]), 0);
    let outputs = receive(&mut follower, 1, long.clone());
    assert_eq!(reply(&outputs, 1), append_response(1, success(5)));
    assert_eq!(follower.last_index(), LogIndex(5));

    let stale_and_reordered = [
        (append(1, 0, 0, log_of_terms(&[1, 1]), 0), 2),
        (append(1, 2, 1, vec![entry(3, 1), entry(4, 1)], 0), 4),
        (long, 5),
        (append(1, 1, 1, vec![], 0), 1),
    ];
    for (message, match_index) in stale_and_reordered {
        let outputs = receive(&mut follower, 1, message.clone());
        assert_eq!(reply(&outputs, 1), append_response(1, success(match_index)), "{message:?}");
        assert_eq!(follower.last_index(), LogIndex(5), "{message:?}");
        assert!(log_persists(&outputs).is_empty(), "{message:?}");
    }
    assert_eq!(follower.log_entries(), log_of_terms(&[1, 1, 1, 1, 1]));
}

/// §5.3: a real conflict (same index, different term) deletes the existing entry and all that
/// follow it; `Persist::Truncate` comes before the `Persist::Append` of the new entries.
#[test]
fn conflicting_append_truncates_suffix_before_appending() {
    let start = DurableState {
        hard_state: hard(2, None, 0),
        snapshot: None,
        entries: log_of_terms(&[1, 1, 2, 2]),
    };
    let mut follower = Node::restore(config(2, 3), start.clone()).expect("restores");
    let outputs = receive(&mut follower, 1, append(3, 1, 1, vec![entry(2, 1), entry(3, 3)], 0));
    assert_eq!(reply(&outputs, 1), append_response(3, success(3)));
    assert_eq!(terms_of(&follower), [1, 1, 3]);
    assert_eq!(
        log_persists(&outputs),
        [Persist::Truncate { from: LogIndex(3) }, Persist::Append(vec![entry(3, 3)])]
    );
    // Executing the persists in order leaves the disk equal to the node's log.
    let mut disk = start;
    persists(&outputs).iter().for_each(|persist| disk.apply(persist));
    assert_eq!(disk.entries, follower.log_entries());
    assert_eq!(disk.hard_state, follower.hard_state());
}

// ----- §5.3, Figure 7: the leader repairs divergent logs -----

/// The log of the leader for term 8 in Figure 7.
const FIGURE_7_LEADER: [u64; 10] = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];

/// A Figure 7 server: it has seen term 7 (the term of follower (d)'s last entries) and holds
/// the common prefix `[1, 1, 1]` committed.
fn figure_7_server(id: u64, size: u64, terms: &[u64]) -> Node<u64> {
    restored(config(id, size), hard(7, None, 3), terms)
}

/// The leader's log once it has won term 8 and appended its no-op.
fn figure_7_leader_log() -> Vec<Entry<u64>> {
    let mut log = log_of_terms(&FIGURE_7_LEADER);
    log.push(noop(11, 8));
    log
}

/// Node 1 with the leader's log, node 2 with the follower's log, node 3 with a copy of the
/// leader's log (the vote the leader needs). Node 1 campaigns into term 8 and the network runs
/// until quiet: node 2's log must then equal the leader's.
fn assert_figure_7_follower_repaired(follower_log: &[u64]) {
    let mut net = Net::new(vec![
        figure_7_server(1, 3, &FIGURE_7_LEADER),
        figure_7_server(2, 3, follower_log),
        figure_7_server(3, 3, &FIGURE_7_LEADER),
    ]);
    net.step(1, Input::Campaign);
    net.deliver_all();
    let leader = net.node(1);
    assert_eq!((leader.role(), leader.term()), (Role::Leader, Term(8)));
    assert_eq!(leader.log_entries(), figure_7_leader_log());
    assert_eq!(net.node(2).log_entries(), leader.log_entries(), "follower {follower_log:?}");
    assert_eq!(net.node(2).term(), Term(8));
    assert_eq!(net.node(2).leader(), Some(NodeId(1)));
    assert_eq!(leader.commit_index(), LogIndex(11));
}

/// §5.3, Figure 7 (a): a follower missing the leader's last entry is brought up to date.
#[test]
fn leader_repairs_figure_7_follower_a_missing_one_entry() {
    assert_figure_7_follower_repaired(&[1, 1, 1, 4, 4, 5, 5, 6, 6]);
}

/// §5.3, Figure 7 (b): a follower missing many entries is brought up to date.
#[test]
fn leader_repairs_figure_7_follower_b_missing_many_entries() {
    assert_figure_7_follower_repaired(&[1, 1, 1, 4]);
}

/// §5.3, Figure 7 (c): a follower with an extra uncommitted entry of term 6 loses it.
#[test]
fn leader_repairs_figure_7_follower_c_with_extra_entry() {
    assert_figure_7_follower_repaired(&[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6]);
}

/// §5.3, Figure 7 (d): a follower with extra entries of a later term (7) loses them.
#[test]
fn leader_repairs_figure_7_follower_d_with_extra_entries_of_later_term() {
    assert_figure_7_follower_repaired(&[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7]);
}

/// §5.3, Figure 7 (e): a follower missing entries and holding extra ones of term 4.
#[test]
fn leader_repairs_figure_7_follower_e_missing_and_extra_entries() {
    assert_figure_7_follower_repaired(&[1, 1, 1, 4, 4, 4, 4]);
}

/// §5.3, Figure 7 (f): a follower with many entries of terms 2 and 3 that no other server has.
#[test]
fn leader_repairs_figure_7_follower_f_with_divergent_terms() {
    assert_figure_7_follower_repaired(&[1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]);
}

/// §5.3, §5.4.1, Figure 7 as a whole: the seven servers together. The leader is elected by
/// (a), (b), (e) and (f) — (c) and (d) hold more up-to-date logs and refuse — and then brings
/// every log to equal its own.
#[test]
fn leader_repairs_all_figure_7_followers_at_once() {
    let followers: [&[u64]; 6] = [
        &[1, 1, 1, 4, 4, 5, 5, 6, 6],
        &[1, 1, 1, 4],
        &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
        &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
        &[1, 1, 1, 4, 4, 4, 4],
        &[1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
    ];
    let mut servers = vec![figure_7_server(1, 7, &FIGURE_7_LEADER)];
    servers.extend(followers.iter().zip(2..).map(|(log, id)| figure_7_server(id, 7, log)));
    let mut net = Net::new(servers);
    net.step(1, Input::Campaign);
    net.deliver_all();
    let leader = net.node(1);
    assert_eq!((leader.role(), leader.term()), (Role::Leader, Term(8)));
    for id in 2..=7 {
        assert_eq!(net.node(id).log_entries(), figure_7_leader_log(), "server {id}");
    }
    assert_eq!(net.node(1).commit_index(), LogIndex(11));
}

/// The `(prev_log_index, prev_log_term)` of an AppendEntries.
fn prev_of(message: &Message<u64>) -> (u64, u64) {
    match message {
        Message::AppendEntries(request) => (request.prev_log_index.0, request.prev_log_term.0),
        other => panic!("expected AppendEntries, got {other:?}"),
    }
}

/// §5.3 (the optimization at the end of the section): with the follower's conflict hint the
/// leader backs up over a whole conflicting term per rejection, not one entry per round trip.
/// The answers are those of Figure 7's followers (f) and (e) to the leader of term 8.
#[test]
fn leader_skips_a_whole_conflicting_term_per_rejection() {
    let conflict = |rejected: u64, index: u64, term: Option<u64>| {
        let hint = ConflictHint { index: LogIndex(index), term: term.map(Term) };
        append_response(
            8,
            AppendOutcome::Conflict { rejected_prev_index: LogIndex(rejected), hint },
        )
    };
    let mut leader = figure_7_server(1, 3, &FIGURE_7_LEADER);
    let outputs = win_election(&mut leader);
    assert!(sends(&outputs).iter().all(|(_, message)| prev_of(message) == (10, 6)));

    // (f) holds term 3 at index 10, a run starting at 7; the leader has no term 3.
    let outputs = receive(&mut leader, 2, conflict(10, 7, Some(3)));
    assert_eq!(prev_of(&reply(&outputs, 2)), (6, 5));
    // (f) holds term 2 at index 6, a run starting at 4; the leader has no term 2.
    let outputs = receive(&mut leader, 2, conflict(6, 4, Some(2)));
    assert_eq!(prev_of(&reply(&outputs, 2)), (3, 1));

    // (e) is too short for index 10: it ends at 7.
    let outputs = receive(&mut leader, 3, conflict(10, 8, None));
    assert_eq!(prev_of(&reply(&outputs, 3)), (7, 5));
    // (e) holds term 4 at index 7; the leader's own term-4 run ends at 5.
    let outputs = receive(&mut leader, 3, conflict(7, 4, Some(4)));
    assert_eq!(prev_of(&reply(&outputs, 3)), (5, 4));
}

// ----- §5.4.2, Figure 8: committing entries from previous terms -----

/// The servers of Figure 8 (c), before S1's term-4 election: entry 1 committed everywhere;
/// S1 led term 2 and replicated its entry 2 to S2 only; S5 led term 3 and appended its own
/// entry 2. S5 has since seen term 4. One entry per message, so that replication of entry 2 and
/// of the no-op can be told apart.
fn figure_8_servers() -> Net {
    let server = |id: u64, hard_state: HardState, terms: &[u64]| {
        let mut config = config(id, 5);
        config.entries_per_message_max = 1;
        restored(config, hard_state, terms)
    };
    Net::new(vec![
        server(1, hard(3, None, 1), &[1, 2]),
        server(2, hard(3, None, 1), &[1, 2]),
        server(3, hard(3, None, 1), &[1]),
        server(4, hard(3, None, 1), &[1]),
        server(5, hard(4, None, 1), &[1, 3]),
    ])
}

/// §5.4.2, Figure 8 (c)–(d): S1, leader of term 4, replicates its term-2 entry to a majority
/// (S1, S2, S3) but must not count that as committing it: S5 can still be elected and
/// overwrite the entry on every server — which would have lost a committed entry.
#[test]
fn leader_never_commits_previous_term_entry_by_counting_replicas() {
    let mut net = figure_8_servers();
    net.down = BTreeSet::from([NodeId(4), NodeId(5)]);
    net.step(1, Input::Campaign);
    // S1 crashes before its term-4 entry reaches S3: S3 gets entry 2 and nothing after.
    net.deliver_all_except(|net, to, message| {
        to == NodeId(3)
            && net.node(3).last_index() == LogIndex(2)
            && matches!(message, Message::AppendEntries(_))
    });
    assert_eq!((net.node(1).role(), net.node(1).term()), (Role::Leader, Term(4)));
    for id in 1..=3 {
        assert_eq!(net.node(id).term_at(LogIndex(2)), Ok(Term(2)), "S{id} stores entry 2");
    }
    assert_eq!(net.node(3).last_index(), LogIndex(2));
    assert_eq!(net.node(1).commit_index(), LogIndex(1), "entry 2 is on a majority, uncommitted");
    assert!(net.node(1).entries(LogIndex(2)..=LogIndex(2)).is_err());
    assert!(!net.anyone_applied(2, 2));

    // Figure 8 (d): S1 is down; S5 is elected by S3, S4 and itself, and overwrites entry 2.
    net.down = BTreeSet::from([NodeId(1)]);
    net.queue.clear();
    net.step(5, Input::Campaign);
    net.deliver_all();
    assert_eq!((net.node(5).role(), net.node(5).term()), (Role::Leader, Term(5)));
    for id in 2..=5 {
        assert_eq!(net.node(id).term_at(LogIndex(2)), Ok(Term(3)), "S{id}");
    }
    assert_eq!(net.node(5).commit_index(), LogIndex(3));
    assert!(!net.anyone_applied(2, 2), "the overwritten entry was never applied");
    assert!(net.anyone_applied(2, 3));
}

/// §5.4.2, Figure 8 (e): once S1 replicates an entry of its own term (its no-op) to a
/// majority, that entry and the term-2 entry before it are committed, and S5 can no longer
/// be elected.
#[test]
fn previous_term_entry_commits_once_current_term_entry_reaches_majority() {
    let mut net = figure_8_servers();
    net.down = BTreeSet::from([NodeId(4), NodeId(5)]);
    net.step(1, Input::Campaign);
    net.deliver_all();
    let s1 = net.node(1);
    assert_eq!((s1.role(), s1.term()), (Role::Leader, Term(4)));
    assert_eq!(terms_of(s1), [1, 2, 4]);
    for id in 2..=3 {
        assert_eq!(terms_of(net.node(id)), [1, 2, 4], "S{id}");
    }
    assert_eq!(s1.commit_index(), LogIndex(3));
    let committed = s1.entries(LogIndex(1)..=LogIndex(3)).expect("committed");
    assert_eq!(committed[1], entry(2, 2));
    assert!(net.anyone_applied(2, 2));

    // S5 cannot win: S1, S2 and S3 hold a more up-to-date log than its own.
    net.down.clear();
    net.step(5, Input::Campaign);
    net.deliver_all();
    assert_ne!(net.node(5).role(), Role::Leader);
    for id in 1..=4 {
        assert_ne!(net.node(id).term_at(LogIndex(2)), Ok(Term(3)), "S{id}");
    }
}
