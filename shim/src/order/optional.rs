//! Calls not every run makes as many times as its recording (a lock's
//! slow path, a spin loop's yields, the win of a C++ static's guard):
//! each recorded one has its place in the event order, and a run's call
//! takes it only if it is the thread's next recorded one, in place;
//! otherwise the caller makes the call unordered.

use std::ffi::c_int;
use std::sync::atomic::Ordering;

use rrc_synclog::{
    futex_wait, SharedSyncLog, SyncEntry, SyncRing, HANDED_OFF, NO_ARRIVAL, WOKEN_BY_WAKE,
};

use super::{
    arrive, in_event_order, record_call, return_at_place, wait_at_rank, Expected, RING_EMPTY_WAIT,
};
use crate::ops;
use crate::session::{self, ErrnoGuard, Session};

/// A call that not every run makes (a futex wait or wake the program made,
/// see `futex`; a yield): a place in the event order, not
/// a lock. `real` makes the call and returns its result (for a futex call
/// the kernel's: a count, or a negated errno), which is what this returns
/// too; `None` when replay does not have this call next (the caller then
/// makes it without waiting long). `val`: a futex wait's expected word,
/// logged (as the entry's `seq`) so that replay knows a lock word's wait
/// (see `before_unseen_lock`); `waits`: the call is a wait, which returns
/// at its place (after the wake that ended it). `settle` runs in replay
/// after a wait that returned 0 when recorded with no wake of the
/// program's on its word while it waited: the kernel woke it (see the
/// replayer's `WakeRanks::during`).
///
/// `release`: a wake that may release a lock word (see `LockRelease`).
#[inline]
pub fn if_recorded(
    op: u32,
    object: u64,
    val: u32,
    waits: bool,
    real: impl FnOnce() -> c_int,
    settle: impl FnOnce(),
    release: Option<&dyn LockRelease>,
) -> Option<c_int> {
    Some(match session::current() {
        None => real(),
        Some(Session::Record(log)) => {
            let handed = std::cell::Cell::new(false);
            let call = || {
                let released = release.filter(|r| log.lock_handoff() && r.releases());
                let woke = real();
                if let Some(r) = released.filter(|_| woke == 1) {
                    handed.set(r.hand_off());
                }
                woke
            };
            let note = || u64::from(val) | if handed.get() { HANDED_OFF } else { 0 };
            record_call(log, op, object, note, call, |_| Some(false))
        }
        Some(Session::Replay(log)) => {
            let _errno = ErrnoGuard::save();
            // How many futex calls a lock's slow path makes depends on
            // races rrc does not order (an uncontended compare-and-swap):
            // a call that is not the thread's next recorded one is left
            // to the caller.
            let Some(expected) = expect_if_next(log, op, object) else {
                if waits {
                    park_if_past_end(log);
                }
                return None;
            };
            if waits && log.orders_events() {
                arrive(log, &expected);
                // Returns at its place, which comes after the wake.
                return_at_place(log, &expected);
                if expected.entry.result == 0 && expected.entry.seq & WOKEN_BY_WAKE == 0 {
                    settle();
                }
            } else if expected.entry.arrival != NO_ARRIVAL && log.orders_events() {
                // A wake happens at its arrival's place: stamped before the
                // call when recorded, so before the return of any wait it
                // ended (whose word FUTEX_WAKE_OP may also have changed).
                wait_at_rank(log, expected.thread.slot, expected.entry.arrival, |_| {
                    real();
                });
                return_at_place(log, &expected);
                if let Some(r) = release.filter(|_| expected.entry.seq & HANDED_OFF != 0) {
                    // The waiter it woke returns after this, at its place:
                    // the order moves on without this thread meanwhile.
                    log.park(expected.thread.slot);
                    r.hand_off();
                }
            } else {
                arrive(log, &expected);
                in_event_order(log, &expected, |_| {
                    real();
                });
            }
            expected.entry.result
        }
    })
}

/// A futex wake that may release a lock word (see `HANDED_OFF`). When
/// recorded with hand-offs, a wake that `releases` the word and woke a
/// thread waits in `hand_off` before its return is stamped, and its entry
/// says whether the lock was handed on; in replay, a wake that handed it
/// on waits the same way after its return.
pub trait LockRelease {
    /// Asked just before the wake: whether it releases a lock word.
    fn releases(&self) -> bool;
    /// Waits, boundedly, until another thread holds the word; whether
    /// one did.
    fn hand_off(&self) -> bool;
}

/// A call that only the thread that won logs (a C++ static constructed:
/// `static_init`): `attempt` is the real call, `won` says whether its
/// result is a win. In replay, the thread whose next recorded entry is
/// this win makes the call at its place in the event order; any other
/// first waits, through `wait_for_winner`, until the winner is done, so
/// it loses as it did.
pub fn won_when_recorded(
    op: u32,
    object: u64,
    attempt: impl FnOnce() -> c_int,
    won: impl FnOnce(c_int) -> bool,
    wait_for_winner: impl FnOnce(),
) -> c_int {
    match session::current() {
        None => attempt(),
        Some(Session::Record(log)) => record_call(
            log,
            op,
            object,
            || 0,
            attempt,
            |result| won(result).then_some(false),
        ),
        Some(Session::Replay(log)) => match expect_if_next(log, op, object) {
            Some(expected) => {
                let _errno = ErrnoGuard::save();
                arrive(log, &expected);
                let mut result = expected.entry.result;
                in_event_order(log, &expected, |_| result = attempt());
                result
            }
            None => {
                wait_for_winner();
                attempt()
            }
        },
    }
}

/// Takes the thread's next recorded entry if it is this call, one that
/// not every run makes (an optional call: a futex call, a yield; a C++
/// static's win, see `won_when_recorded`); leaves the stream as it is
/// otherwise. Before a call that is not optional, the optional calls
/// recorded before it that this run did not make are stepped over, as
/// `expect_next` does (a constructor's guard release that woke nobody
/// here). Before a futex call, so are up to `IDLE_AHEAD` recorded futex
/// calls that did nothing (see `idle_futex`) on the way to this call's
/// own entry.
fn expect_if_next(log: &SharedSyncLog, op: u32, object: u64) -> Option<Expected> {
    let thread = session::this_thread(log).ok()?;
    let ring = log.ring(thread.slot)?;
    let (ahead, entry) = if ops::optional(op) {
        idle_before_own(op, object, |n| entry_unless_ended(log, ring, n))?
    } else {
        let mut ahead = 0;
        loop {
            let entry = entry_unless_ended(log, ring, ahead)?;
            if !ops::optional(entry.op) {
                break (ahead, entry);
            }
            ahead += 1;
        }
    };
    if entry.op != op || entry.object != object {
        return None;
    }
    if ops::optional(op) && recorded_after_next_call(log, thread.slot, ring, &entry) {
        // Recorded after a call this thread has yet to make: this one is
        // an extra (a lock's slow path taken at another turn of a loop).
        return None;
    }
    for _ in 0..ahead {
        ring.pop();
    }
    Some(Expected::taken(log, ring, thread, entry))
}

/// How many recorded futex calls that did nothing a futex call may pass
/// over to its own entry: a lock's slow path that found the lock free
/// here takes none, and the next call the thread makes on another lock
/// (Rust's stdout lock after its queue's) must not wait for them.
const IDLE_AHEAD: u64 = 4;

/// A recorded futex call whose making or not changed nothing: a wait that
/// found its word changed (EAGAIN, it did not sleep), a wake that woke
/// nobody. A run that did not make it passes over it.
fn idle_futex(entry: &SyncEntry) -> bool {
    (entry.op == ops::FUTEX_WAIT && entry.result == -libc::EAGAIN)
        || (entry.op == ops::FUTEX_WAKE && entry.result == 0)
}

/// The entry an optional call is checked against, and how many of the
/// thread's next entries (`entry_at(n)`, `n` ahead) come before it: a
/// futex call's own entry after idle ones (`idle_futex`), up to
/// `IDLE_AHEAD` of them; otherwise the next entry. `None` past the end of
/// the thread's stream.
fn idle_before_own(
    op: u32,
    object: u64,
    mut entry_at: impl FnMut(u64) -> Option<SyncEntry>,
) -> Option<(u64, SyncEntry)> {
    let next = entry_at(0)?;
    let own = |e: &SyncEntry| (e.op, e.object) == (op, object);
    let futex = op == ops::FUTEX_WAIT || op == ops::FUTEX_WAKE;
    let (mut ahead, mut entry) = (0, next);
    while futex && !own(&entry) && idle_futex(&entry) && ahead < IDLE_AHEAD {
        ahead += 1;
        match entry_at(ahead) {
            Some(e) => entry = e,
            None => break,
        }
    }
    Some(if own(&entry) {
        (ahead, entry)
    } else {
        (0, next)
    })
}

/// Whether `entry` (an optional call's) was recorded after the thread's
/// next recorded call, which it has not made yet: a trapped one the
/// tracer named (`SyncRing::next_call_rank`), or a buffered one it fed.
fn recorded_after_next_call(
    log: &SharedSyncLog,
    slot: u32,
    ring: &SyncRing,
    entry: &SyncEntry,
) -> bool {
    let at = if entry.arrival != NO_ARRIVAL {
        entry.arrival
    } else {
        entry.order
    };
    let traced = ring.next_call_rank.load(Ordering::Acquire).checked_sub(1);
    let fed = log
        .syscall_buf(slot)
        .and_then(|b| b.next_fed().map(|f| f.head.rank))
        .filter(|r| *r != rrc_synclog::replaybuf::NO_RANK);
    [traced, fed].into_iter().flatten().any(|next| at > next)
}

/// A futex wait no recorded entry matches, by a thread that has replayed
/// every event it had (its sync stream closed and done, and every call):
/// when recorded, it was blocked in this wait when the recording ended.
/// It blocks the same way, until the program ends, rather than for the
/// bounded while of an extra wait: a condvar wait would return
/// spuriously, and the thread run code it never ran (a print that takes
/// stdout's lock away from the threads still to print).
fn park_if_past_end(log: &SharedSyncLog) {
    let Ok(thread) = session::this_thread(log) else {
        return;
    };
    let Some(ring) = log.ring(thread.slot) else {
        return;
    };
    let done = ring.closed.load(Ordering::Acquire) != 0
        && ring.peek().is_none()
        && ring.next_call_rank.load(Ordering::Acquire) == rrc_synclog::NO_CALLS_LEFT;
    if done {
        ring.parked_past_end.store(1, Ordering::Release);
        log.poke_service();
        super::park_forever();
    }
}

/// Waits for the thread's entry `ahead` places after its next; None past
/// the end of its stream.
#[cold]
fn entry_unless_ended(log: &SharedSyncLog, ring: &SyncRing, ahead: u64) -> Option<SyncEntry> {
    loop {
        let seen = ring.pushed.load(Ordering::Acquire);
        if let Some(entry) = ring.peek_at(ahead) {
            return Some(entry);
        }
        if ring.closed.load(Ordering::Acquire) != 0 {
            return ring.peek_at(ahead);
        }
        log.poke_service();
        futex_wait(&ring.pushed, seen, Some(RING_EMPTY_WAIT));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(op: u32, object: u64, result: i32) -> SyncEntry {
        SyncEntry {
            op,
            object,
            result,
            ..SyncEntry::default()
        }
    }

    fn passed(op: u32, object: u64, next: &[SyncEntry]) -> u64 {
        idle_before_own(op, object, |n| next.get(n as usize).copied()).map_or(0, |(a, _)| a)
    }

    #[test]
    fn a_futex_call_passes_over_recorded_calls_that_did_nothing_to_its_own() {
        let (queue, stdout) = (0x3080, 0x3050);
        let eagain = entry(ops::FUTEX_WAIT, queue, -libc::EAGAIN);
        let woke_none = entry(ops::FUTEX_WAKE, queue, 0);
        let own = entry(ops::FUTEX_WAIT, stdout, 0);
        // The queue's lock was free here: its slow path's calls were not made.
        assert_eq!(passed(ops::FUTEX_WAIT, stdout, &[eagain, own]), 1);
        assert_eq!(
            passed(ops::FUTEX_WAIT, stdout, &[eagain, woke_none, own]),
            2
        );
        assert_eq!(passed(ops::FUTEX_WAIT, stdout, &[own, eagain]), 0);
    }

    #[test]
    fn a_futex_call_does_not_pass_over_calls_that_did_something() {
        let (queue, stdout) = (0x3080, 0x3050);
        let slept = entry(ops::FUTEX_WAIT, queue, 0);
        let woke_one = entry(ops::FUTEX_WAKE, queue, 1);
        let own = entry(ops::FUTEX_WAIT, stdout, 0);
        assert_eq!(passed(ops::FUTEX_WAIT, stdout, &[slept, own]), 0);
        assert_eq!(passed(ops::FUTEX_WAIT, stdout, &[woke_one, own]), 0);
        // Not its own within reach, or not a futex call at all.
        let idle = entry(ops::FUTEX_WAIT, queue, -libc::EAGAIN);
        let far = [idle, idle, idle, idle, idle, own];
        assert_eq!(passed(ops::FUTEX_WAIT, stdout, &far), 0);
        assert_eq!(
            passed(ops::SCHED_YIELD, 0, &[idle, entry(ops::SCHED_YIELD, 0, 0)]),
            0
        );
    }
}
