//! The event order in replay: the rank that may happen next (a counter
//! in the shared header), the threads waiting for theirs, and the
//! serialised replay's baton. The shim's sync operations and in-process
//! answers wait here; the tracer moves the order past ranks it lets go.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::{futex_wait, futex_wake, rank_is_past, word, word_plus_one, SharedSyncLog};

/// How the run of the program passes between threads
/// (`ShmHeader::serial` holds it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// Threads run in parallel between their events.
    Parallel = 0,
    /// Recorded and replayed one thread at a time; the shim orders
    /// nothing itself.
    Serial = 1,
    /// Replay of a parallel recording: each thread's code after an event
    /// runs before the next event happens (the baton), the shim ordering
    /// as usual.
    Segments = 2,
}

impl SharedSyncLog {
    /// Replay: the thread of the event at `rank` waits in the shim for its
    /// recorded interval (`None`: it is done).
    pub fn pacing_at(&self, rank: Option<u64>) {
        let v = rank.map_or(0, word_plus_one);
        self.header().pacing_turn.store(v, Ordering::SeqCst);
    }

    /// Replay: whether the order stands at `turn` because its event's
    /// thread waits for its recorded interval in the shim.
    pub fn turn_is_pacing(&self, turn: u32) -> bool {
        self.header().pacing_turn.load(Ordering::SeqCst) == turn.wrapping_add(1)
    }

    /// Replay: whether events wait for their rank.
    pub fn orders_events(&self) -> bool {
        self.header().ordering.load(Ordering::Relaxed) != 0
    }

    /// Replay: turns event ordering on or off (before the program runs).
    pub fn set_ordering(&self, on: bool) {
        self.header().ordering.store(on as u32, Ordering::Relaxed);
    }

    /// Replay: the rank of the next event allowed to happen. Ranks are
    /// compared in 32 bits, as the futex word holds them.
    pub fn order_turn(&self) -> u32 {
        self.header().order_turn.load(Ordering::SeqCst)
    }

    /// Replay: blocks until event `rank` may happen. `false` when the
    /// order has already passed it: the tracer skipped it because this
    /// thread was blocked at a later rank, and it must not be passed on.
    ///
    /// Also `false` when the tracer sets the ring's `released_early` to
    /// `rank + 1`: it let this event go ahead of the order.
    ///
    /// `slot` is the waiting thread's, whose ring says what it waits for
    /// (`waiting_for_rank`, set by the caller): it sleeps on its own word
    /// and is woken alone when the order gets there (see
    /// [`Self::wake_rank_sleepers`]), not with every other waiter.
    pub fn wait_for_rank(&self, rank: u64, spins: u32, nap: Duration, slot: Option<u32>) -> bool {
        let h = self.header();
        let target = word(rank);
        let ring = slot.and_then(|s| self.ring(s));
        let released = || {
            ring.is_some_and(|r| r.released_early.load(Ordering::SeqCst) == target.wrapping_add(1))
        };
        let bit = slot.filter(|s| *s < 64).map(|s| 1u64 << s);
        let mut spun = 0;
        loop {
            let current = h.order_turn.load(Ordering::SeqCst);
            if current == target {
                return true;
            }
            if rank_is_past(target, current) || released() {
                return false;
            }
            if spun < spins {
                spun += 1;
                std::hint::spin_loop();
                continue;
            }
            match (ring, bit) {
                (Some(r), Some(bit)) => {
                    let seen = r.rank_wake.load(Ordering::SeqCst);
                    h.rank_sleepers.fetch_or(bit, Ordering::SeqCst);
                    // Looked at again once announced: a move made before
                    // the announcement woke nobody.
                    let now = h.order_turn.load(Ordering::SeqCst);
                    if now == current && !released() {
                        futex_wait(&r.rank_wake, seen, Some(nap));
                    }
                    h.rank_sleepers.fetch_and(!bit, Ordering::SeqCst);
                }
                _ => {
                    h.order_waiters.fetch_add(1, Ordering::SeqCst);
                    futex_wait(&h.order_turn, current, Some(nap));
                    h.order_waiters.fetch_sub(1, Ordering::SeqCst);
                }
            }
        }
    }

    /// [`Self::wait_for_rank`] for the thread of `slot`, which says in its
    /// ring meanwhile what it waits for (`waiting_for_rank`, read by the
    /// tracer's stall reports and its checks for threads blocked at a later
    /// rank of their own, and by the wake-ups).
    pub fn wait_for_rank_of(&self, slot: u32, rank: u64, spins: u32, nap: Duration) -> bool {
        let ring = self.ring(slot);
        if let Some(r) = ring {
            r.waiting_for_rank
                .store(word_plus_one(rank), Ordering::SeqCst);
        }
        let at = self.wait_for_rank(rank, spins, nap, ring.map(|_| slot));
        if let Some(r) = ring {
            r.waiting_for_rank.store(0, Ordering::Relaxed);
        }
        at
    }

    /// Wakes the threads asleep in [`Self::wait_for_rank`] whose rank the
    /// order, now at `turn`, has reached or passed (and, with `slot`, that
    /// thread whatever it waits for).
    fn wake_rank_sleepers(&self, turn: u32, slot: Option<u32>) {
        let mut sleepers = self.header().rank_sleepers.load(Ordering::SeqCst);
        while sleepers != 0 {
            let s = sleepers.trailing_zeros();
            sleepers &= sleepers - 1;
            let Some(r) = self.ring(s) else { continue };
            let wants = r.waiting_for_rank.load(Ordering::SeqCst);
            let due = wants != 0 && {
                let rank = wants.wrapping_sub(1);
                rank == turn || rank_is_past(rank, turn)
            };
            if due || slot == Some(s) {
                r.rank_wake.fetch_add(1, Ordering::SeqCst);
                futex_wake(&r.rank_wake, 1);
            }
        }
    }

    /// Replay: sleeps until the order moves from `current` (a rank word)
    /// or `nap` has passed.
    pub fn nap_on_order(&self, current: u32, nap: Duration) {
        let h = self.header();
        h.order_waiters.fetch_add(1, Ordering::SeqCst);
        futex_wait(&h.order_turn, current, Some(nap));
        h.order_waiters.fetch_sub(1, Ordering::SeqCst);
    }

    /// Replay: whether the order, at `current`, has reached `rank` (both
    /// rank words).
    pub fn reached_word(rank: u32, current: u32) -> bool {
        current == rank || rank_is_past(rank, current)
    }

    /// Replay: how in-process returns keep their recorded intervals (see
    /// `ShmHeader::pacing`).
    pub fn pacing(&self) -> u32 {
        self.header().pacing.load(Ordering::Relaxed)
    }

    pub fn set_pacing(&self, mode: u32) {
        self.header().pacing.store(mode, Ordering::Relaxed);
    }

    /// Replay: whether the order, at `current`, has passed `rank`.
    pub fn rank_passed(&self, rank: u64) -> bool {
        rank_is_past(word(rank), self.order_turn())
    }

    /// Replay: the event at the current rank has happened; the next may.
    /// Wakes sleeping threads, and the tracer if it waits for the new rank.
    pub fn advance_rank(&self) {
        let h = self.header();
        // SeqCst pairs with the waiters' increments and with the tracer's
        // store of tracer_wants: either side sees the other.
        let now = h.order_turn.fetch_add(1, Ordering::SeqCst).wrapping_add(1);
        self.wake_rank_sleepers(now, None);
        if h.order_waiters.load(Ordering::SeqCst) > 0 {
            futex_wake(&h.order_turn, i32::MAX);
        }
        if h.tracer_wants.load(Ordering::SeqCst) == now.wrapping_add(1) {
            h.tracer_wake.fetch_add(1, Ordering::SeqCst);
            futex_wake(&h.tracer_wake, i32::MAX);
        }
    }

    /// Whether the program is serialised (see [`Schedule::Serial`]).
    pub fn serial(&self) -> bool {
        self.header().serial.load(Ordering::Relaxed) == Schedule::Serial as u32
    }

    /// Whether the order moves on only when the thread whose event
    /// happened reaches its next one (serialised, or in segments).
    pub fn baton_order(&self) -> bool {
        self.header().serial.load(Ordering::Relaxed) != Schedule::Parallel as u32
    }

    /// Sets the schedule (before the program runs).
    pub fn set_schedule(&self, schedule: Schedule) {
        self.header()
            .serial
            .store(schedule as u32, Ordering::Relaxed);
    }

    /// Replay: the event of thread `slot` at `rank` has happened. The
    /// order moves on at once, or, serialised, when the thread reaches its
    /// next event ([`SharedSyncLog::park`]): the code it runs in between
    /// then runs alone, as it did when recorded.
    pub fn finish_rank(&self, slot: u32, rank: u64) {
        let h = self.header();
        if !self.baton_order() || slot == u32::MAX {
            self.advance_rank();
            return;
        }
        h.baton.store(
            (u64::from(slot) + 1) << 32 | u64::from(word(rank)),
            Ordering::SeqCst,
        );
    }

    /// Replay, serialised: thread `slot` has reached its next event (or
    /// ended, or cannot go on by itself): if it has the run of the
    /// program, the order moves on.
    pub fn park(&self, slot: u32) {
        let h = self.header();
        let baton = h.baton.load(Ordering::SeqCst);
        if baton >> 32 != u64::from(slot) + 1
            || h.baton
                .compare_exchange(baton, 0, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
        {
            return;
        }
        if self.skip_rank(baton as u32) {
            let now = (baton as u32).wrapping_add(1);
            if h.tracer_wants.load(Ordering::SeqCst) == now.wrapping_add(1) {
                h.tracer_wake.fetch_add(1, Ordering::SeqCst);
                futex_wake(&h.tracer_wake, i32::MAX);
            }
        }
    }

    /// Replay, serialised: the thread that has the run of the program.
    pub fn baton_holder(&self) -> Option<u32> {
        let b = self.header().baton.load(Ordering::SeqCst) >> 32;
        (b != 0).then(|| (b - 1) as u32)
    }

    /// Replay (tracer): lets the thread of `slot`, waiting for `rank`, go
    /// ahead of the order.
    pub fn release_early(&self, slot: u32, rank: u32) {
        if let Some(r) = self.ring(slot) {
            r.released_early
                .store(rank.wrapping_add(1), Ordering::SeqCst);
            self.wake_rank_sleepers(self.order_turn(), Some(slot));
            futex_wake(&self.header().order_turn, i32::MAX);
        }
    }

    /// Replay (tracer): moves the order past `rank` if it is still there,
    /// waking whoever waits; `false` if it had moved on.
    pub fn skip_rank(&self, rank: u32) -> bool {
        let h = self.header();
        if h.order_turn
            .compare_exchange(
                rank,
                rank.wrapping_add(1),
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .is_err()
        {
            return false;
        }
        self.wake_rank_sleepers(rank.wrapping_add(1), None);
        if h.order_waiters.load(Ordering::SeqCst) > 0 {
            futex_wake(&h.order_turn, i32::MAX);
        }
        true
    }

    /// Replay (tracer): asks to be woken through `tracer_wake` when the
    /// order reaches `rank`; `None` cancels. Returns whether it already has.
    pub fn tracer_wants_rank(&self, rank: Option<u64>) -> bool {
        let h = self.header();
        match rank {
            None => {
                h.tracer_wants.store(0, Ordering::SeqCst);
                false
            }
            Some(r) => {
                h.tracer_wants.store(word_plus_one(r), Ordering::SeqCst);
                h.order_turn.load(Ordering::SeqCst) == word(r)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{SharedSyncLog, MODE_REPLAY};

    #[test]
    fn a_thread_pacing_at_the_turn_is_seen_as_rrcs_hold_only_at_that_turn() {
        let (_fd, log) = SharedSyncLog::create(MODE_REPLAY).expect("create");
        assert!(!log.turn_is_pacing(0), "nobody paces at first");
        log.pacing_at(Some(7));
        assert!(log.turn_is_pacing(7));
        assert!(!log.turn_is_pacing(6) && !log.turn_is_pacing(8));
        log.pacing_at(None);
        assert!(!log.turn_is_pacing(7), "done pacing");
        // Ranks compare in 32 bits, as the order's turn does.
        log.pacing_at(Some((1 << 32) + 5));
        assert!(log.turn_is_pacing(5));
    }
}
