//! Per-worker deadlines: a min-heap with lazy deletion.
//!
//! Each connection keeps its current deadline itself and has at most one
//! live heap entry (the earliest it asked for). Deadlines mostly move later
//! as a connection makes progress; those moves cost nothing here: when an
//! entry fires early the owner is simply rescheduled at its real deadline.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, usize, u64)>>,
}

impl Timers {
    /// Schedules a wake-up of connection `key` (with unique id `id`) at `at`.
    pub fn schedule(&mut self, at: Instant, key: usize, id: u64) {
        self.heap.push(Reverse((at, key, id)));
    }

    /// The earliest scheduled instant.
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Pops one entry due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, usize, u64)> {
        match self.heap.peek() {
            Some(Reverse((at, _, _))) if *at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }
}
