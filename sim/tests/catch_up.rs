//! Catch-up after heal: every member's log reaches the leader's commit within the liveness
//! bound, the checker says which follower is stuck and why, and schedules that once left a
//! follower stuck stay fixed.

use stepraft_sim::schedule::{EventKind, ScheduledEvent};
use stepraft_sim::{run, Outcome, PlantedBug, Property, Schedule};

/// A 3-node schedule: node 3 is cut off for 3 s while a client writes, so that the leader
/// compacts past it (every 8 entries, no tail for seeds like this one) and must send it a
/// snapshot once the partition heals.
fn lagging_follower_schedule() -> Schedule {
    let mut events = Vec::new();
    let cuts = vec![(1, 3), (3, 1), (2, 3), (3, 2)];
    let partition =
        EventKind::Partition { shape: "isolate".into(), cuts, heal_after_us: 3_000_000 };
    events.push(ScheduledEvent { at_us: 500_000, kind: partition });
    for i in 0..60u64 {
        let op = stepraft_sim::history::KvOp::Put { key: i % 3, value: format!("v{i}").into() };
        let kind =
            EventKind::ClientOp { client: 0, op, mode: stepraft_sim::workload::ReadMode::Log };
        events.push(ScheduledEvent { at_us: 600_000 + i * 40_000, kind });
    }
    Schedule {
        seed: 11,
        nodes: 3,
        spares: false,
        clients: 1,
        keys: 3,
        duration_us: 4_000_000,
        liveness_bound_us: 3_000_000,
        pre_vote: true,
        check_quorum: true,
        snapshot_every: 8,
        discovery: false,
        events,
    }
}

#[test]
fn a_follower_behind_a_snapshot_catches_up_after_heal() {
    let result = run(&lagging_follower_schedule().config());
    assert_eq!(result.outcome, Outcome::Passed, "{:?}", result.recent);
    assert!(result.stats.snapshots_installed > 0, "the follower needed a snapshot");
    let catch_up = result.stats.catch_up_us.expect("caught up");
    assert!(catch_up <= result.stats.recovery_us.expect("recovered"));
}

/// A transfer that never completes (the network loses every chunk with data, as a datagram
/// transport loses messages larger than a datagram) is a catch-up failure that names the
/// stuck follower and the leader's view of it.
#[test]
fn a_transfer_that_never_completes_is_a_catch_up_failure_naming_the_follower() {
    let mut config = lagging_follower_schedule().config();
    config.plant = Some(PlantedBug::DropSnapshotChunks);
    let result = run(&config);
    let Outcome::Violated(violation) = result.outcome else {
        panic!("the stuck follower goes unnoticed: {:?}", result.outcome)
    };
    assert_eq!(violation.property, Property::CatchUp, "{}", violation.detail);
    assert!(!violation.property.is_safety());
    let detail = &violation.detail;
    assert!(detail.contains("n3 log ends at"), "{detail}");
    assert!(detail.contains("state=Snapshot"), "{detail}");
    assert!(detail.contains("offset=0") && detail.contains("in_flight="), "{detail}");
    assert_eq!(result.stats.catch_up_us, None);
}

/// Shrunk from a seed that failed liveness before transfers had attempts: a follower
/// restarted after confirming part of a snapshot, and the leader ignored its answers from
/// then on.
#[test]
fn regression_a_follower_restarted_mid_transfer_catches_up() {
    let text = include_str!("regressions/snapshot-livelock-restarted-follower.json");
    let schedule = Schedule::from_json(text).expect("a schedule");
    let result = run(&schedule.config());
    assert_eq!(result.outcome, Outcome::Passed, "{:?}", result.recent);
    assert!(result.stats.catch_up_us.is_some());
}
