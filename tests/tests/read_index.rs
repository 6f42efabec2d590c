//! ReadIndex (thesis §6.4): linearizable reads confirmed by a heartbeat round, forwarded reads,
//! and every way a read can fail — never left hanging.

use stepraft::{Input, LogIndex, Message, NodeId, Output, ReadError, ReadId, Role};
use stepraft_tests::Cluster;

fn ready(id: u64, index: u64) -> Output<u64> {
    Output::ReadReady { id: ReadId(id), index: LogIndex(index) }
}

/// A 3- or 5-node cluster with a leader whose no-op is committed everywhere.
fn settled(size: u64) -> (Cluster, NodeId) {
    let mut cluster = Cluster::new(size);
    let leader = cluster.elect(100);
    cluster.run_until(3, |_| false);
    (cluster, leader)
}

#[test]
fn leader_read_is_released_only_after_a_quorum_acknowledges_its_round() {
    let (mut cluster, leader) = settled(3);
    let commit = cluster.node(leader).commit_index().0;
    cluster.read_index(leader, 7);
    assert!(cluster.read_outcomes(leader).is_empty(), "not before the round");
    let heartbeats = cluster
        .in_flight()
        .iter()
        .filter(|envelope| matches!(envelope.message, Message::Heartbeat(_)))
        .count();
    assert_eq!(heartbeats, 2, "the read starts a heartbeat round to every follower");
    cluster.deliver_all();
    assert_eq!(cluster.read_outcomes(leader), [ready(7, commit)]);
}

#[test]
fn a_new_leader_serves_no_read_until_an_entry_of_its_term_commits() {
    let mut cluster = Cluster::new(3);
    cluster.campaign(NodeId(1));
    // Deliver only the votes: node 1 leads but its no-op is not committed yet.
    while cluster.node(NodeId(1)).role() != Role::Leader {
        assert!(cluster.deliver_one());
    }
    assert_eq!(cluster.node(NodeId(1)).commit_index(), LogIndex(0));
    cluster.read_index(NodeId(1), 1);
    assert!(
        !cluster
            .in_flight()
            .iter()
            .any(|e| matches!(&e.message, Message::Heartbeat(h) if h.round > 0)),
        "no read round before the term's first commit"
    );
    cluster.deliver_all();
    assert_eq!(cluster.node(NodeId(1)).commit_index(), LogIndex(1));
    cluster.deliver_all();
    assert_eq!(cluster.read_outcomes(NodeId(1)), [ready(1, 1)]);
}

#[test]
fn a_delayed_ack_of_an_earlier_round_does_not_release_a_read() {
    let (mut cluster, leader) = settled(3);
    // A periodic heartbeat (round 0) goes out; hold its acknowledgements back.
    cluster.tick(leader);
    cluster.deliver_all_but_responses();
    let old_acks = cluster.take_in_flight();
    assert!(!old_acks.is_empty());
    cluster.read_index(leader, 3);
    // The new round's heartbeats are lost; only the old acks arrive, twice.
    cluster.drop_all();
    for ack in old_acks.iter().chain(old_acks.iter()) {
        cluster.inject(ack.clone());
    }
    cluster.deliver_all();
    assert!(cluster.read_outcomes(leader).is_empty(), "old-round acks must not confirm it");
    // The next periodic heartbeat carries the read's round and confirms it.
    cluster.tick(leader);
    cluster.deliver_all();
    assert_eq!(cluster.read_outcomes(leader).len(), 1);
}

#[test]
fn a_duplicated_ack_from_one_follower_counts_once() {
    let (mut cluster, leader) = settled(5);
    cluster.read_index(leader, 9);
    let heartbeats = cluster.take_in_flight();
    // Only one follower gets the round; its ack arrives three times. 2 of 5 is no quorum.
    let one = heartbeats.into_iter().next().expect("a heartbeat");
    cluster.inject(one);
    cluster.deliver_all_but_responses();
    let ack = cluster.take_in_flight().pop().expect("the ack");
    for _ in 0..3 {
        cluster.inject(ack.clone());
    }
    cluster.deliver_all();
    assert!(cluster.read_outcomes(leader).is_empty());
}

#[test]
fn a_deposed_leader_rejects_its_pending_reads_instead_of_serving_them() {
    // Plain §5 elections, so that a forced election can depose the old leader at once.
    let mut cluster = Cluster::with_config(3, |config| {
        config.pre_vote = false;
        config.check_quorum = false;
    });
    let old = cluster.elect(100);
    cluster.run_until(3, |_| false);
    cluster.isolate(old);
    cluster.read_index(old, 5);
    // Another node wins a later term at once (a forced election, no ticks pass).
    let other = cluster.ids().into_iter().find(|&id| id != old).expect("another node");
    cluster.drop_all();
    cluster.step(other, Input::Campaign);
    cluster.deliver_all();
    assert!(cluster.read_outcomes(old).is_empty(), "no quorum: still pending");
    // The old leader hears the new term and steps down: the read fails, never served.
    cluster.heal();
    cluster.run_until(20, |c| c.node(old).role() == Role::Follower);
    assert!(matches!(
        cluster.read_outcomes(old),
        [Output::ReadRejected { id: ReadId(5), error: ReadError::LeadershipLost { .. } }]
    ));
}

#[test]
fn a_leader_that_cannot_reach_a_quorum_times_its_reads_out() {
    // Without CheckQuorum an isolated leader never steps down; its read must still end.
    let mut cluster = Cluster::with_config(3, |config| config.check_quorum = false);
    let leader = cluster.elect(100);
    cluster.run_until(3, |_| false);
    cluster.isolate(leader);
    cluster.read_index(leader, 6);
    let election_ticks = cluster.node(leader).config().election_ticks;
    for _ in 0..election_ticks {
        cluster.tick(leader);
        cluster.drop_all();
    }
    assert_eq!(
        cluster.read_outcomes(leader),
        [Output::ReadRejected { id: ReadId(6), error: ReadError::TimedOut }]
    );
}

#[test]
fn a_follower_forwards_its_read_to_the_leader() {
    let (mut cluster, leader) = settled(3);
    cluster.propose(leader, 42).expect("leader accepts");
    cluster.deliver_all();
    let follower = cluster.ids().into_iter().find(|&id| id != leader).expect("a follower");
    let leader_commit = cluster.node(leader).commit_index().0;
    cluster.read_index(follower, 11);
    cluster.deliver_all();
    assert_eq!(cluster.read_outcomes(follower), [ready(11, leader_commit)]);
    assert!(cluster.read_outcomes(leader).is_empty(), "answered to the follower only");
}

#[test]
fn a_node_that_knows_no_leader_rejects_the_read() {
    let mut cluster = Cluster::new(3);
    cluster.read_index(NodeId(2), 1);
    let term = cluster.node(NodeId(2)).term();
    assert_eq!(
        cluster.read_outcomes(NodeId(2)),
        [Output::ReadRejected { id: ReadId(1), error: ReadError::NoLeader { term } }]
    );
}

#[test]
fn a_forwarded_read_with_no_answer_times_out() {
    let (mut cluster, leader) = settled(3);
    let follower = cluster.ids().into_iter().find(|&id| id != leader).expect("a follower");
    cluster.cut_link(follower, leader);
    cluster.read_index(follower, 4);
    cluster.deliver_all();
    let election_ticks = cluster.node(follower).config().election_ticks;
    // A few ticks past the timeout: the read is answered once, not again on every tick (nor
    // when the follower later gives up on its leader and campaigns).
    for _ in 0..election_ticks + 3 {
        cluster.tick(follower);
        cluster.drop_all();
    }
    assert_eq!(
        cluster.read_outcomes(follower),
        [Output::ReadRejected { id: ReadId(4), error: ReadError::TimedOut }]
    );
}

#[test]
fn a_single_node_cluster_serves_reads_at_once() {
    let mut cluster = Cluster::new(1);
    cluster.campaign(NodeId(1));
    cluster.propose(NodeId(1), 1).expect("leader");
    let outputs = cluster.step(NodeId(1), Input::ReadIndex(ReadId(2)));
    assert!(outputs.contains(&ready(2, 2)));
}

fn with_leases(config: &mut stepraft::Config) {
    config.lease_reads = true;
}

#[test]
fn a_leader_holding_its_lease_serves_reads_without_a_round() {
    let mut cluster = Cluster::with_config(3, with_leases);
    let leader = cluster.elect(100);
    cluster.run_until(3, |_| false);
    let commit = cluster.node(leader).commit_index().0;
    let outputs = cluster.step(leader, Input::ReadIndex(ReadId(1)));
    assert!(outputs.contains(&ready(1, commit)), "served in the same step");
    assert!(cluster.in_flight().is_empty(), "no heartbeat round was needed");
    assert_eq!(cluster.node(leader).stats().lease_reads, 1);
}

#[test]
fn a_lease_runs_out_without_acknowledgements_and_the_read_falls_back_to_a_round() {
    let mut cluster = Cluster::with_config(3, with_leases);
    let leader = cluster.elect(100);
    cluster.run_until(3, |_| false);
    cluster.isolate(leader);
    let config = cluster.node(leader).config().clone();
    for _ in 0..config.election_ticks - config.lease_margin_ticks {
        cluster.tick(leader);
        cluster.drop_all();
    }
    cluster.read_index(leader, 2);
    assert!(cluster.read_outcomes(leader).is_empty(), "no lease: waits for a quorum round");
    assert_eq!(cluster.node(leader).stats().lease_reads, 0);
    // CheckQuorum deposes it, and the read fails rather than hanging.
    cluster.run_until(config.election_ticks * 2, |c| c.node(leader).role() != Role::Leader);
    assert!(matches!(
        cluster.read_outcomes(leader),
        [Output::ReadRejected { id: ReadId(2), error: ReadError::LeadershipLost { .. } }]
    ));
}

#[test]
fn a_leader_that_sent_timeout_now_no_longer_trusts_its_lease() {
    let mut cluster = Cluster::with_config(3, with_leases);
    let leader = cluster.elect(100);
    cluster.run_until(3, |_| false);
    let target = cluster.ids().into_iter().find(|&id| id != leader).expect("a follower");
    cluster.step(leader, Input::TransferLeadership(target));
    // The TimeoutNow is in flight: the target may be elected at any moment.
    cluster.read_index(leader, 3);
    assert!(cluster.read_outcomes(leader).is_empty());
    cluster.deliver_all();
    assert!(matches!(
        cluster.read_outcomes(leader),
        [Output::ReadRejected { id: ReadId(3), .. }] | [Output::ReadReady { id: ReadId(3), .. }]
    ));
    assert_eq!(cluster.node(leader).stats().lease_reads, 0);
}

#[test]
fn a_restarted_node_stays_loyal_for_an_election_timeout_so_leases_hold() {
    let mut cluster = Cluster::with_config(3, with_leases);
    let leader = cluster.elect(100);
    cluster.run_until(3, |_| false);
    let ids = cluster.ids();
    let mut others = ids.iter().copied().filter(|&id| id != leader);
    let (restarted, asker) = (others.next().expect("follower"), others.next().expect("follower"));
    cluster.crash(restarted);
    cluster.restart(restarted);
    let node = cluster.node(restarted);
    let request = stepraft::RequestVote {
        term: node.term().next().expect("term"),
        last_log_index: node.last_index(),
        last_log_term: node.last_term(),
        transfer: false,
    };
    let pre_vote = |cluster: &mut Cluster| {
        let message = Message::PreVote(request);
        cluster.step(restarted, Input::Receive { from: asker, message }).into_iter().any(
            |o| matches!(o, Output::Send { message: Message::PreVoteResponse(r), .. } if r.granted),
        )
    };
    // Before the crash it acknowledged the leader, whose lease may rely on it: no vote yet.
    assert!(!pre_vote(&mut cluster));
    let term = cluster.node(restarted).term();
    let _ = cluster
        .step(restarted, Input::Receive { from: asker, message: Message::RequestVote(request) });
    assert_eq!(cluster.node(restarted).term(), term, "the vote request is ignored");
    cluster.drop_all();
    // After an election timeout without a leader, it may help elect one again.
    let election_ticks = cluster.node(restarted).config().election_ticks;
    for _ in 0..election_ticks {
        cluster.tick(restarted);
        cluster.drop_all();
    }
    let _ = pre_vote(&mut cluster);
    assert!(
        cluster.node(restarted).voted_for().is_none() || cluster.node(restarted).term() >= term
    );
}

#[test]
fn an_ack_of_a_round_never_sent_releases_no_read() {
    let (mut cluster, leader) = settled(3);
    cluster.read_index(leader, 9);
    // The real heartbeats are lost; a confused or hostile peer acknowledges a future round.
    cluster.drop_all();
    let term = cluster.node(leader).term();
    for follower in cluster.ids().into_iter().filter(|&id| id != leader) {
        let message =
            Message::HeartbeatResponse(stepraft::HeartbeatResponse { term, round: 1 << 40 });
        cluster.inject(stepraft_tests::Envelope { from: follower, to: leader, message });
    }
    cluster.deliver_all();
    assert!(cluster.read_outcomes(leader).is_empty(), "only acks of rounds sent count");
}

#[test]
fn a_lease_given_up_for_a_transfer_stays_given_up_once_the_transfer_is_abandoned() {
    let mut cluster = Cluster::with_config(3, with_leases);
    let leader = cluster.elect(100);
    cluster.run_until(3, |_| false);
    let target = cluster.ids().into_iter().find(|&id| id != leader).expect("a follower");
    // The target never hears from the leader again, so the transfer cannot complete.
    cluster.cut_link(leader, target);
    cluster.step(leader, Input::TransferLeadership(target));
    let ticks = cluster.node(leader).config().election_ticks;
    cluster.run_until(ticks * 2, |c| c.node(leader).transfer_target().is_none());
    assert_eq!(cluster.node(leader).transfer_target(), None, "the transfer was abandoned");
    assert_eq!(cluster.node(leader).role(), Role::Leader);
    cluster.step(leader, Input::ReadIndex(ReadId(4)));
    assert_eq!(cluster.node(leader).stats().lease_reads, 0, "no lease read this term");
}

#[test]
fn a_read_waiting_for_the_terms_first_commit_times_out_once_after_an_election_timeout() {
    let mut cluster = Cluster::with_config(3, |config| config.check_quorum = false);
    cluster.campaign(NodeId(1));
    while cluster.node(NodeId(1)).role() != Role::Leader {
        assert!(cluster.deliver_one());
    }
    // The no-op never reaches the followers: the term's first commit never comes.
    cluster.isolate(NodeId(1));
    cluster.drop_all();
    cluster.read_index(NodeId(1), 5);
    let ticks = cluster.node(NodeId(1)).config().election_ticks;
    for _ in 0..ticks - 1 {
        cluster.tick(NodeId(1));
        cluster.drop_all();
    }
    assert!(cluster.read_outcomes(NodeId(1)).is_empty(), "still waiting");
    for _ in 0..ticks {
        cluster.tick(NodeId(1));
        cluster.drop_all();
    }
    assert_eq!(
        cluster.read_outcomes(NodeId(1)),
        [Output::ReadRejected { id: ReadId(5), error: ReadError::TimedOut }],
        "answered once, after an election timeout"
    );
}
