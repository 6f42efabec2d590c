//! Real time as logical ticks, measured on a monotonic clock.
//!
//! The core's lease contract: a runtime delivers, before any other input, the ticks that
//! elapsed while it could not step the node (a frozen process, a storage write that blocked
//! the loop, a slow scheduler). A leader that stepped a read queued during a stall before
//! hearing of the time that passed would answer it from a lease that has ended. So the driver
//! asks this clock before every input how many ticks are due, and steps them first (and so
//! does the election-only task, [`crate::election`]).

use std::time::Duration;

use tokio::time::Instant;

/// Counts whole tick periods on the monotonic clock.
#[derive(Debug)]
pub(crate) struct TickClock {
    period: Duration,
    /// When the next tick is due; ticks before it were handed out.
    next_due: Instant,
    /// Most ticks handed out at once (see [`TickClock::take_due`]).
    burst_max: u64,
}

impl TickClock {
    /// A clock whose first tick is due one `period` after `now`. After a stall, at most
    /// `burst_max` ticks are handed out at once.
    pub(crate) fn new(period: Duration, now: Instant, burst_max: u64) -> TickClock {
        let period = period.max(Duration::from_micros(1));
        TickClock { period, next_due: now + period, burst_max: burst_max.max(1) }
    }

    /// When the next tick is due.
    pub(crate) fn next_due(&self) -> Instant {
        self.next_due
    }

    /// The ticks that became due by `now`, which are then no longer due. A stall of any
    /// length yields at least `burst_max` of them, which is enough for the node to draw every
    /// conclusion the elapsed time allows (its lease ended, its election timeout fired), and
    /// keeps a stall of hours from turning into millions of steps.
    pub(crate) fn take_due(&mut self, now: Instant) -> u64 {
        if now < self.next_due {
            return 0;
        }
        let period_ns = self.period.as_nanos();
        let late_ns = now.duration_since(self.next_due).as_nanos();
        let due = 1 + late_ns / period_ns;
        let advance = Duration::from_nanos(u64::try_from(due * period_ns).unwrap_or(u64::MAX));
        self.next_due += advance;
        u64::try_from(due).unwrap_or(u64::MAX).min(self.burst_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERIOD: Duration = Duration::from_millis(10);

    #[test]
    fn nothing_is_due_before_the_first_period_ends() {
        let start = Instant::now();
        let mut clock = TickClock::new(PERIOD, start, 100);
        assert_eq!(clock.take_due(start), 0);
        assert_eq!(clock.take_due(start + Duration::from_millis(9)), 0);
        assert_eq!(clock.take_due(start + PERIOD), 1);
        assert_eq!(clock.take_due(start + PERIOD), 0, "handed out once");
    }

    #[test]
    fn a_stall_yields_every_tick_that_elapsed_at_once() {
        let start = Instant::now();
        let mut clock = TickClock::new(PERIOD, start, 100);
        // Frozen for 2.5 s: 250 periods, capped at the burst bound.
        assert_eq!(clock.take_due(start + Duration::from_millis(255)), 25);
        assert_eq!(clock.next_due(), start + Duration::from_millis(260));
        assert_eq!(clock.take_due(start + Duration::from_millis(2_600)), 100, "capped");
        // The cap does not shift the schedule: the next tick is one period later.
        assert_eq!(clock.take_due(start + Duration::from_millis(2_609)), 0);
        assert_eq!(clock.take_due(start + Duration::from_millis(2_610)), 1);
    }
}
