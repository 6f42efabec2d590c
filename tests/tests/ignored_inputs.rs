//! `NodeStats::ignored_messages` counts every input a node drops as stale, meaningless or
//! hostile, exactly once, and `NodeStats::ignored` says why. Runtimes export it to spot misbehaving peers, so each reason to
//! ignore is checked here on its own, in the state where it applies.

use stepraft::{
    AppendEntries, AppendEntriesResponse, AppendOutcome, ConflictHint, Heartbeat,
    HeartbeatResponse, IgnoredReason, Input, InstallSnapshot, InstallSnapshotResponse, LogIndex,
    Membership, Message, NodeId, ReadId, ReadIndexResponse, RequestVote, RequestVoteResponse, Role,
    SnapshotMeta, SnapshotOutcome, Term, TimeoutNow,
};
use stepraft_tests::Cluster;

const STRANGER: NodeId = NodeId(9);

/// An elected three-node cluster, every message delivered: `(cluster, leader, a follower, the
/// other follower)`.
fn elected() -> (Cluster, NodeId, NodeId, NodeId) {
    let mut cluster = Cluster::new(3);
    let leader = cluster.elect(100);
    cluster.deliver_all();
    let mut followers = cluster.ids().into_iter().filter(|&id| id != leader);
    let (follower, other) = (followers.next().expect("two"), followers.next().expect("two"));
    (cluster, leader, follower, other)
}

/// Feeds `input` to `id` and checks it was counted as ignored, once, for `reason` and no
/// other, without changing the node's term, role or log.
fn assert_ignored(
    cluster: &mut Cluster,
    id: NodeId,
    input: Input<u64>,
    reason: IgnoredReason,
    why: &str,
) {
    let observe = |cluster: &Cluster| {
        let node = cluster.node(id);
        let stats = node.stats();
        (stats.ignored_messages, stats.ignored, node.term(), node.role(), node.last_index())
    };
    let (total, counts, term, role, last) = observe(cluster);
    cluster.step(id, input);
    let after = observe(cluster);
    assert_eq!((after.2, after.3, after.4), (term, role, last), "{why}: the node changed");
    assert_eq!(after.0, total + 1, "{why}: counted once");
    for (counted, count) in after.1.iter() {
        let expected = counts.get(counted) + u64::from(counted == reason);
        assert_eq!(count, expected, "{why}: the {} count ({reason:?} expected)", counted.name());
    }
    assert_eq!(after.1.total(), after.0, "{why}: the reasons add up to the total");
}

fn receive(from: NodeId, message: Message<u64>) -> Input<u64> {
    Input::Receive { from, message }
}

#[test]
fn a_follower_counts_what_it_ignores() {
    let (mut cluster, leader, follower, other) = elected();
    let term = cluster.node(follower).term();
    let heartbeat = Message::Heartbeat(Heartbeat { term, commit: LogIndex(0), round: 0 });
    assert_ignored(
        &mut cluster,
        follower,
        receive(follower, heartbeat.clone()),
        IgnoredReason::FromSelf,
        "from itself",
    );
    assert_ignored(
        &mut cluster,
        follower,
        receive(other, heartbeat),
        IgnoredReason::NotFromLeader,
        "heartbeat, not the leader",
    );
    let vote = RequestVote {
        term: term.next().expect("small term"),
        last_log_index: LogIndex(100),
        last_log_term: term,
        transfer: false,
    };
    let input = receive(other, Message::RequestVote(vote));
    assert_ignored(
        &mut cluster,
        follower,
        input,
        IgnoredReason::LeaderLease,
        "a vote request inside the leader's lease",
    );
    let input = Input::Persisted { index: LogIndex(0), term: Term(0) };
    assert_ignored(
        &mut cluster,
        follower,
        input,
        IgnoredReason::Outdated,
        "an acknowledgement of nothing new",
    );
    let ack = AppendEntriesResponse {
        term,
        outcome: AppendOutcome::Success { match_index: LogIndex(1) },
    };
    let input = receive(other, Message::AppendEntriesResponse(ack));
    assert_ignored(
        &mut cluster,
        follower,
        input,
        IgnoredReason::UnexpectedInRole,
        "an append answer to a follower",
    );
    let input = receive(other, Message::HeartbeatResponse(HeartbeatResponse { term, round: 1 }));
    assert_ignored(
        &mut cluster,
        follower,
        input,
        IgnoredReason::UnexpectedInRole,
        "a heartbeat answer to a follower",
    );
    let stale = HeartbeatResponse { term: Term(0), round: 1 };
    let input = receive(other, Message::HeartbeatResponse(stale));
    assert_ignored(
        &mut cluster,
        follower,
        input,
        IgnoredReason::StaleTerm,
        "an answer from an earlier term",
    );
    let granted = RequestVoteResponse { term, granted: true };
    let input = receive(other, Message::RequestVoteResponse(granted));
    assert_ignored(
        &mut cluster,
        follower,
        input,
        IgnoredReason::UnexpectedInRole,
        "a vote after the election",
    );
    let pre_vote = RequestVoteResponse { term: term.next().expect("small"), granted: true };
    let input = receive(other, Message::PreVoteResponse(pre_vote));
    assert_ignored(
        &mut cluster,
        follower,
        input,
        IgnoredReason::UnexpectedInRole,
        "a pre-vote answer while following",
    );
    let read = ReadIndexResponse { term, id: ReadId(999), index: Some(LogIndex(1)) };
    let input = receive(leader, Message::ReadIndexResponse(read));
    assert_ignored(
        &mut cluster,
        follower,
        input,
        IgnoredReason::Outdated,
        "an answer to a read never forwarded",
    );
    let input = receive(other, Message::TimeoutNow(TimeoutNow { term }));
    assert_ignored(
        &mut cluster,
        follower,
        input,
        IgnoredReason::NotFromLeader,
        "TimeoutNow, not from the leader",
    );
    let chunk = InstallSnapshot {
        term,
        attempt: 1,
        meta: SnapshotMeta {
            index: LogIndex(1),
            term,
            membership: Membership::with_voters(cluster.ids()).into(),
        },
        total_bytes: 1,
        offset: 0,
        data: vec![0],
    };
    let input = receive(other, Message::InstallSnapshot(chunk));
    assert_ignored(
        &mut cluster,
        follower,
        input,
        IgnoredReason::NotFromLeader,
        "a snapshot chunk, not from the leader",
    );
    let append = AppendEntries {
        term,
        prev_log_index: LogIndex(0),
        prev_log_term: Term(0),
        entries: Vec::new(),
        leader_commit: LogIndex(0),
    };
    let input = receive(other, Message::AppendEntries(append.clone()));
    assert_ignored(
        &mut cluster,
        follower,
        input,
        IgnoredReason::NotFromLeader,
        "an append, not from the leader",
    );
    let last = cluster.node(follower).last_index();
    let entry = |index: u64, term: Term| stepraft::Entry {
        term,
        index: LogIndex(index),
        payload: stepraft::Payload::Command(index),
    };
    let (prev_log_term, next) = (cluster.node(follower).last_term(), last.next().0);
    let malformed = [
        vec![entry(next + 1, term)], // a gap after prev_log_index
        vec![entry(next, term), entry(next + 2, term)], // a gap between entries
        vec![entry(next, Term(term.0 + 1))], // an entry from a later term
    ];
    for entries in malformed {
        let append =
            AppendEntries { prev_log_index: last, prev_log_term, entries, ..append.clone() };
        let input = receive(leader, Message::AppendEntries(append));
        assert_ignored(
            &mut cluster,
            follower,
            input,
            IgnoredReason::Malformed,
            "a malformed append from the leader",
        );
    }
}

#[test]
fn an_append_that_would_overwrite_a_committed_entry_is_ignored_and_counted() {
    let (mut cluster, leader, follower, _) = elected();
    // A second term, so that an entry of the first can contradict a committed one.
    cluster.step(leader, Input::TransferLeadership(follower));
    cluster.run_until(100, |c| c.node(follower).role() == Role::Leader);
    cluster.run_until(100, |c| c.node(leader).commit_index() == c.node(follower).last_index());
    let (term, last) = (cluster.node(follower).term(), cluster.node(follower).last_index());
    assert!(
        term > Term(1) && cluster.node(leader).commit_index() == last,
        "entry {last} committed"
    );
    let earlier = cluster.node(leader).term_at(last.prev()).expect("held");
    assert!(earlier < term);
    // The new leader's committed entry at `last`, rewritten with the term before it.
    let forged =
        stepraft::Entry { term: earlier, index: last, payload: stepraft::Payload::Command(7) };
    let append = AppendEntries {
        term,
        prev_log_index: last.prev(),
        prev_log_term: earlier,
        entries: vec![forged],
        leader_commit: last,
    };
    let input = receive(follower, Message::AppendEntries(append));
    assert_ignored(
        &mut cluster,
        leader,
        input,
        IgnoredReason::ContradictsCommitted,
        "an append contradicting a committed entry",
    );
    assert_eq!(cluster.node(leader).term_at(last), Ok(term), "the committed entry stays");
}

#[test]
fn a_leader_counts_what_it_ignores() {
    let (mut cluster, leader, follower, _) = elected();
    let term = cluster.node(leader).term();
    let read = ReadIndexResponse { term, id: ReadId(1), index: Some(LogIndex(1)) };
    let input = receive(follower, Message::ReadIndexResponse(read));
    assert_ignored(
        &mut cluster,
        leader,
        input,
        IgnoredReason::UnexpectedInRole,
        "a read answer to a leader",
    );
    let input = receive(STRANGER, Message::HeartbeatResponse(HeartbeatResponse { term, round: 1 }));
    assert_ignored(
        &mut cluster,
        leader,
        input,
        IgnoredReason::NotMember,
        "a heartbeat answer from a non-member",
    );
    let beyond = cluster.node(leader).last_index().plus(5);
    let ack =
        AppendEntriesResponse { term, outcome: AppendOutcome::Success { match_index: beyond } };
    let input = receive(follower, Message::AppendEntriesResponse(ack));
    assert_ignored(
        &mut cluster,
        leader,
        input,
        IgnoredReason::Malformed,
        "an acknowledgement beyond the leader's log",
    );
    let hint = ConflictHint { index: beyond, term: None };
    let outcome = AppendOutcome::Conflict { rejected_prev_index: beyond, hint };
    let input =
        receive(follower, Message::AppendEntriesResponse(AppendEntriesResponse { term, outcome }));
    assert_ignored(
        &mut cluster,
        leader,
        input,
        IgnoredReason::Malformed,
        "a rejection of an append never sent",
    );
    let answer = InstallSnapshotResponse {
        term,
        snapshot_index: LogIndex(1),
        attempt: 1,
        outcome: SnapshotOutcome::Received { next_offset: 1 },
    };
    let input = receive(follower, Message::InstallSnapshotResponse(answer));
    assert_ignored(
        &mut cluster,
        leader,
        input,
        IgnoredReason::Outdated,
        "a chunk answer with no transfer under way",
    );
    let granted = RequestVoteResponse { term, granted: true };
    let input = receive(follower, Message::RequestVoteResponse(granted));
    assert_ignored(
        &mut cluster,
        leader,
        input,
        IgnoredReason::UnexpectedInRole,
        "a late vote to a leader",
    );
}

#[test]
fn candidates_count_answers_from_non_voters() {
    let mut cluster = Cluster::with_config(3, |config| config.pre_vote = false);
    cluster.campaign(NodeId(1));
    assert_eq!(cluster.node(NodeId(1)).role(), Role::Candidate);
    let term = cluster.node(NodeId(1)).term();
    let input = receive(
        STRANGER,
        Message::RequestVoteResponse(RequestVoteResponse { term, granted: true }),
    );
    assert_ignored(
        &mut cluster,
        NodeId(1),
        input,
        IgnoredReason::NotMember,
        "a vote from a non-voter",
    );

    let mut cluster = Cluster::new(3);
    cluster.campaign(NodeId(1));
    assert_eq!(cluster.node(NodeId(1)).role(), Role::PreCandidate);
    let next = cluster.node(NodeId(1)).term().next().expect("small term");
    let answer = RequestVoteResponse { term: next, granted: true };
    let input = receive(STRANGER, Message::PreVoteResponse(answer));
    assert_ignored(
        &mut cluster,
        NodeId(1),
        input,
        IgnoredReason::NotMember,
        "a pre-vote from a non-voter",
    );
    let stale = RequestVoteResponse { term: Term(next.0 + 5), granted: true };
    let input = receive(NodeId(2), Message::PreVoteResponse(stale));
    assert_ignored(
        &mut cluster,
        NodeId(1),
        input,
        IgnoredReason::Outdated,
        "a pre-vote for another round",
    );
}

/// Every kind of answer from an earlier term is dropped as `stale_term`; a request from one is
/// answered instead (with the current term, §5.1), so it counts nothing.
#[test]
fn answers_from_an_earlier_term_are_counted_as_stale_term() {
    let (mut cluster, leader, follower, _) = elected();
    let stale = Term(0);
    let answers = [
        Message::RequestVoteResponse(RequestVoteResponse { term: stale, granted: true }),
        Message::HeartbeatResponse(HeartbeatResponse { term: stale, round: 1 }),
        Message::AppendEntriesResponse(AppendEntriesResponse {
            term: stale,
            outcome: AppendOutcome::Success { match_index: LogIndex(1) },
        }),
        Message::ReadIndexResponse(ReadIndexResponse { term: stale, id: ReadId(1), index: None }),
        Message::TimeoutNow(TimeoutNow { term: stale }),
    ];
    for answer in answers {
        let input = receive(follower, answer.clone());
        assert_ignored(&mut cluster, leader, input, IgnoredReason::StaleTerm, "a stale answer");
    }
    let before = cluster.node(leader).stats();
    let heartbeat = Heartbeat { term: stale, commit: LogIndex(0), round: 0 };
    cluster.step(leader, receive(follower, Message::Heartbeat(heartbeat)));
    assert_eq!(cluster.node(leader).stats().ignored, before.ignored, "a stale request is answered");
}
