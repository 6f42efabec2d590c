//! The discrete-event queue: events ordered by (simulated time, sequence number).
//!
//! The heap orders small keys only; the events themselves (which may carry whole messages)
//! sit in a slab and never move while the heap sifts.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Events of type `E` in (time, insertion) order.
#[derive(Debug)]
pub struct EventQueue<E> {
    /// Earliest first: the time in the high 64 bits, then the sequence number, then the slot
    /// (`SLOT_BITS`). One integer compares and moves faster than a tuple while the heap sifts;
    /// the sequence alone already orders ties, so the slot never decides the order.
    heap: BinaryHeap<Reverse<u128>>,
    slots: Vec<Option<E>>,
    free: Vec<usize>,
    sequence: u64,
}

/// Bits of a heap key that hold the slot: up to 16M events queued at once.
const SLOT_BITS: u32 = 24;

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue { heap: BinaryHeap::new(), slots: Vec::new(), free: Vec::new(), sequence: 0 }
    }
}

impl<E> EventQueue<E> {
    /// Schedules `event` at `time_us`; ties keep insertion order.
    pub fn push(&mut self, time_us: u64, event: E) {
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(event);
                slot
            }
            None => {
                self.slots.push(Some(event));
                self.slots.len() - 1
            }
        };
        assert!(slot < 1 << SLOT_BITS, "invariant: fewer than 2^24 events queued at once");
        assert!(self.sequence < 1 << (64 - SLOT_BITS), "invariant: fewer than 2^40 events");
        self.sequence += 1;
        let order = u128::from(self.sequence) << SLOT_BITS | slot as u128;
        self.heap.push(Reverse(u128::from(time_us) << 64 | order));
    }

    /// Removes the earliest event.
    pub fn pop(&mut self) -> Option<(u64, E)> {
        let Reverse(key) = self.heap.pop()?;
        let (time_us, slot) = ((key >> 64) as u64, (key as usize) & ((1 << SLOT_BITS) - 1));
        let event = self.slots[slot].take().expect("invariant: a queued slot holds its event");
        self.free.push(slot);
        Some((time_us, event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_by_time_then_insertion_order() {
        let mut queue = EventQueue::default();
        queue.push(5, "late");
        queue.push(1, "first");
        queue.push(1, "second");
        queue.push(3, "middle");
        let order: Vec<_> = std::iter::from_fn(|| queue.pop()).collect();
        assert_eq!(order, [(1, "first"), (1, "second"), (3, "middle"), (5, "late")]);
        queue.push(2, "reused slot");
        assert_eq!(queue.pop(), Some((2, "reused slot")));
        assert_eq!(queue.pop(), None);
    }
}
