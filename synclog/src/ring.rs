//! A thread's ring of sync operations: recording, the thread pushes and
//! the drainer pops; replay, the feeder pushes and the thread pops.

use std::sync::atomic::Ordering;

use crate::{SyncEntry, SyncRing, RING_CAPACITY};

impl SyncRing {
    pub fn len(&self) -> u64 {
        self.head
            .load(Ordering::Acquire)
            .wrapping_sub(self.tail.load(Ordering::Acquire))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Single producer: appends if there is room.
    pub fn push(&self, e: SyncEntry) -> bool {
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Acquire);
        if head.wrapping_sub(tail) >= RING_CAPACITY as u64 {
            return false;
        }
        let cell = &self.entries[(head as usize) & (RING_CAPACITY - 1)];
        cell.object.store(e.object, Ordering::Relaxed);
        cell.seq.store(e.seq, Ordering::Relaxed);
        cell.order.store(e.order, Ordering::Relaxed);
        cell.arrival.store(e.arrival, Ordering::Relaxed);
        cell.late_to.store(e.late_to, Ordering::Relaxed);
        cell.gate_after.store(e.gate_after, Ordering::Relaxed);
        cell.op.store(e.op, Ordering::Relaxed);
        cell.result.store(e.result, Ordering::Relaxed);
        self.head.store(head.wrapping_add(1), Ordering::Release);
        true
    }

    /// Single consumer: looks at the oldest entry without removing it.
    pub fn peek(&self) -> Option<SyncEntry> {
        self.peek_at(0)
    }

    /// Single consumer: looks at the entry `ahead` places after the oldest,
    /// if it has been pushed.
    pub fn peek_at(&self, ahead: u64) -> Option<SyncEntry> {
        let at = self.tail.load(Ordering::Relaxed).wrapping_add(ahead);
        let head = self.head.load(Ordering::Acquire);
        if head.wrapping_sub(at) as i64 <= 0 {
            return None;
        }
        let cell = &self.entries[(at as usize) & (RING_CAPACITY - 1)];
        Some(SyncEntry {
            object: cell.object.load(Ordering::Relaxed),
            seq: cell.seq.load(Ordering::Relaxed),
            order: cell.order.load(Ordering::Relaxed),
            arrival: cell.arrival.load(Ordering::Relaxed),
            late_to: cell.late_to.load(Ordering::Relaxed),
            gate_after: cell.gate_after.load(Ordering::Relaxed),
            op: cell.op.load(Ordering::Relaxed),
            result: cell.result.load(Ordering::Relaxed),
        })
    }

    /// Single consumer: removes the oldest entry.
    pub fn pop(&self) -> Option<SyncEntry> {
        let e = self.peek()?;
        let tail = self.tail.load(Ordering::Relaxed);
        self.tail.store(tail.wrapping_add(1), Ordering::Release);
        Some(e)
    }

    /// Entries consumed so far: the index of the next one in the stream.
    pub fn consumed(&self) -> u64 {
        self.tail.load(Ordering::Acquire)
    }

    pub fn produced(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }
}
