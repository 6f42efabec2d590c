//! Schedules as data: a run records its decisions; running the recording reproduces the run;
//! schedules round-trip through JSON; and a failing schedule shrinks to a handful of events.

use stepraft_sim::schedule::{EventKind, Schedule};
use stepraft_sim::shrink::{shrink, FailureKind};
use stepraft_sim::{run, Outcome, PlantedBug, Property, SimConfig};

fn config(seed: u64) -> SimConfig {
    let mut config = SimConfig::new(seed);
    config.duration_us = 3_000_000;
    config.keep_trace = true;
    config
}

#[test]
fn running_a_recorded_schedule_reproduces_the_run() {
    let mut faults = 0;
    for seed in [1, 2, 3, 7, 11] {
        let original = run(&config(seed));
        assert_eq!(original.outcome, Outcome::Passed);
        let schedule = original.schedule.clone();
        assert!(schedule.events.iter().any(|e| matches!(e.kind, EventKind::ClientOp { .. })));
        faults += schedule
            .events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Crash { .. } | EventKind::Partition { .. }))
            .count();
        let mut replay_config = schedule.config();
        replay_config.keep_trace = true;
        let replay = run(&replay_config);
        let (a, b) = (original.trace.expect("kept"), replay.trace.expect("kept"));
        let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
        let first_difference = a.iter().zip(&b).position(|(x, y)| x != y);
        assert_eq!(
            first_difference,
            None,
            "seed {seed}: {:?}",
            first_difference.map(|i| (a[i], b[i]))
        );
        assert_eq!(a.len(), b.len(), "seed {seed}");
        assert_eq!(replay.schedule, schedule, "a scripted run records its own schedule");
    }
    assert!(faults > 0, "the seeds exercise crashes or partitions");
}

fn plant(config: &mut SimConfig) {
    config.plant = Some(PlantedBug::LoseLastEntryOnCrash);
}

#[test]
fn a_planted_failing_schedule_shrinks_to_a_handful_of_events() {
    let failing = (0..50)
        .map(|seed| {
            let mut config = SimConfig::new(seed);
            config.duration_us = 5_000_000;
            config.overrides.crashes = Some(true);
            plant(&mut config);
            run(&config)
        })
        .find(|result| {
            FailureKind::of(&result.outcome)
                == Some(FailureKind::Violated(Property::RestartFromDisk))
        })
        .expect("the planted bug fails some seed");
    let original = failing.schedule.events.len();
    assert!(original > 50, "a real run has many events ({original})");

    let shrunk = shrink(&failing.schedule, &plant, |_, _| {}).expect("the schedule fails");
    let events = &shrunk.schedule.events;
    assert!(events.len() <= 4, "shrunk from {original} to {}: {events:#?}", events.len());
    assert!(events.iter().any(|e| matches!(e.kind, EventKind::Crash { .. })), "a crash is needed");
    assert_eq!(shrunk.property, FailureKind::Violated(Property::RestartFromDisk));

    // The minimal schedule, saved as JSON, replays to the same failure; without the planted
    // bug it passes: the failure is the bug's, not the schedule's.
    let reloaded = Schedule::from_json(&shrunk.schedule.to_json()).expect("round trip");
    assert_eq!(reloaded, shrunk.schedule);
    let mut config = reloaded.config();
    plant(&mut config);
    assert_eq!(FailureKind::of(&run(&config).outcome), Some(shrunk.property));
    assert_eq!(run(&reloaded.config()).outcome, Outcome::Passed);
}
