//! Recording and enforcing the order in which threads acquire sync objects.
//!
//! Record: after the real call, an acquisition takes the object's next
//! turn (while holding it, so turns follow the real order) and the thread
//! appends `(object, turn, op, result)` to its ring.
//! Replay: a thread takes its next recorded entry, waits until the object's
//! turn counter reaches the recorded turn, acquires for real, and passes
//! the turn on. Recorded failures are returned without touching the object.
//!
//! Every entry also carries the operation's place in the event order (see
//! `rrc_synclog`): recorded as a stamp, replayed as a rank the thread waits
//! for before the operation and passes on after it. So does the thread's
//! arrival at the operation, stamped before the real call: replay passes
//! that rank on as the thread gets there, so the code it ran before the
//! call (and the unlocked accesses in it) comes where it came when
//! recorded among the other threads' events.

use std::ffi::c_int;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rrc_synclog::{
    futex_wait, futex_wake, ObjectTurn, SharedSyncLog, SyncEntry, SyncRing, DIVERGENCE_OP_MISMATCH,
    DIVERGENCE_TABLE_FULL, DIVERGENCE_UNKNOWN_THREAD, NO_ARRIVAL, RING_CAPACITY,
};

use crate::ops;
use crate::session::{self, ErrnoGuard, LogicalThread, Session};

mod optional;
pub use optional::{if_recorded, won_when_recorded, LockRelease};

/// Poke the drainer (record) or feeder (replay) when a ring crosses half.
const RING_HALF: u64 = (RING_CAPACITY / 2) as u64;
/// How long a recording thread sleeps on a full ring before retrying.
const RING_FULL_WAIT: Duration = Duration::from_millis(1);
/// How long a replaying thread sleeps on an empty ring before retrying.
const RING_EMPTY_WAIT: Duration = Duration::from_millis(1);
/// Spins on a turn counter before sleeping on it.
const TURN_SPINS: u32 = 100;
/// Upper bound of one sleep on a turn counter (a safety net for lost wakes).
const TURN_WAIT: Duration = Duration::from_millis(10);
/// One sleep on an object's turn: short, to see the tracer let it go.
const TURN_NAP: Duration = Duration::from_millis(2);
/// Turn recorded when the turn table was full (the divergence is reported).
const NO_TURN: u64 = u64::MAX;

/// Which results mean the call acquired the object.
#[derive(Clone, Copy)]
pub enum Acquisition {
    /// Mutexes: 0, or EOWNERDEAD (a robust mutex acquired from a dead owner).
    Mutex,
    /// Everything else: only 0 (for semaphores, the errno form: 0 = success).
    ZeroOnly,
}

impl Acquisition {
    fn acquired(self, result: c_int) -> bool {
        match self {
            Acquisition::Mutex => result == 0 || result == libc::EOWNERDEAD,
            Acquisition::ZeroOnly => result == 0,
        }
    }
}

/// A lock-like acquisition. `attempt` is the real call as the program made
/// it; `acquire_blocking` is the plain blocking form replay uses for a
/// recorded success. Both return / use result codes (errno values for sem).
#[inline]
pub fn acquire(
    op: u32,
    object: u64,
    acquisition: Acquisition,
    attempt: impl FnOnce() -> c_int,
    acquire_blocking: impl FnOnce(),
) -> c_int {
    if crate::site_unwind::is_unwinder_state(object) {
        // libgcc's own locks, once the unwinder knows the call site.
        return attempt();
    }
    match session::current() {
        None => attempt(),
        Some(Session::Record(log)) => record_call(
            log,
            op,
            object,
            || 0,
            attempt,
            |result| Some(acquisition.acquired(result)),
        ),
        Some(Session::Replay(log)) => {
            let _errno = ErrnoGuard::save();
            let expected = expect_next(log, op, object);
            arrive(log, &expected);
            if acquisition.acquired(expected.entry.result) {
                take_recorded_turn(log, &expected, op, acquire_blocking);
            } else {
                // A recorded failure touches nothing, but still happens at
                // its place in the event order.
                in_event_order(log, &expected, |_| {});
            }
            expected.entry.result
        }
    }
}

/// Makes `call` on a state libc or another library keeps behind a lock of
/// its own (`state`, a shim static, is the object) at its recorded turn,
/// as op `op`, and returns what it returned (None if it was not made: a
/// recording that had it fail). A small lock of our own is the object:
/// taken, as a mutex is, before the call and its place in the order, and
/// let go after it, so the syscalls the call makes (a name service reads
/// its files) come after that place in both runs, and the calls on one
/// state never overlap.
pub fn call_in_recorded_order<T: Copy>(
    op: u32,
    state: &'static AtomicU32,
    call: impl Fn() -> T,
) -> Option<T> {
    if !enter_recorded_order(op, state) {
        return None;
    }
    let out = call();
    leave_recorded_order(state);
    Some(out)
}

/// The first half of [`call_in_recorded_order`]: takes `state` at its
/// recorded turn; false if a recording had it not taken (then nothing is
/// held). [`leave_recorded_order`] lets it go.
pub fn enter_recorded_order(op: u32, state: &'static AtomicU32) -> bool {
    enter_recorded_order_at(op, state as *const AtomicU32 as u64, state)
}

/// [`enter_recorded_order`] for an object in the program's memory
/// (`object`, its address) that the shim may not write: `lock`, a word of
/// the shim's own, stands in for it. [`leave_recorded_order`] takes `lock`.
pub fn enter_recorded_order_at(op: u32, object: u64, lock: &'static AtomicU32) -> bool {
    let locked = std::cell::Cell::new(false);
    let take = || {
        small_lock(lock);
        locked.set(true);
    };
    acquire(
        op,
        object,
        Acquisition::ZeroOnly,
        || {
            take();
            0
        },
        take,
    );
    locked.get()
}

/// Lets go a state [`enter_recorded_order`] took.
pub fn leave_recorded_order(state: &AtomicU32) {
    small_unlock(state);
}

/// The lock of `call_in_recorded_order` (0 free, 1 held, 2 held with
/// waiters).
fn small_lock(word: &AtomicU32) {
    if word
        .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
        .is_ok()
    {
        return;
    }
    while word.swap(2, Ordering::Acquire) != 0 {
        futex_wait(word, 2, None);
    }
}

fn small_unlock(word: &AtomicU32) {
    if word.swap(0, Ordering::Release) == 2 {
        futex_wake(word, 1);
    }
}

/// pthread_cond_wait and its timed forms. The object is the mutex, which
/// the call always re-acquires. Replay never waits on the condvar: it
/// releases the mutex and re-acquires it at its recorded turn, which POSIX
/// allows as a spurious wake-up and which gives the program's predicate
/// the value it had when recorded.
#[inline]
pub fn cond_wait(
    op: u32,
    mutex: u64,
    wait: impl FnOnce() -> c_int,
    release_mutex: impl FnOnce(),
    acquire_mutex: impl FnOnce(),
) -> c_int {
    match session::current() {
        None => wait(),
        Some(Session::Record(log)) => record_call(log, op, mutex, || 0, wait, |_| Some(true)),
        Some(Session::Replay(log)) => {
            let _errno = ErrnoGuard::save();
            // Release first, as the real wait does: a thread whose recorded
            // wait never returned parks in expect_next, and must not park
            // holding the mutex.
            release_mutex();
            let expected = expect_next(log, op, mutex);
            arrive(log, &expected);
            take_recorded_turn(log, &expected, op, acquire_mutex);
            expected.entry.result
        }
    }
}

/// A wait that always happens for real (the threads need it:
/// pthread_barrier_wait, pthread_join), at its places in the order;
/// replay returns the recorded result, so the same thread is a barrier's
/// serial one.
#[inline]
pub fn real_wait(op: u32, object: u64, wait: impl FnOnce() -> c_int) -> c_int {
    match session::current() {
        None => wait(),
        Some(Session::Record(log)) => record_call(log, op, object, || 0, wait, |_| Some(false)),
        Some(Session::Replay(log)) => {
            let _errno = ErrnoGuard::save();
            let expected = expect_next(log, op, object);
            arrive(log, &expected);
            wait();
            // Stamped after the wait when recorded, so ranked after every
            // thread's arrival: take the rank only once through.
            in_event_order(log, &expected, |_| {});
            expected.entry.result
        }
    }
}

/// Makes the real call and logs it, unless `logged` says not to: it
/// gives, from the result, whether the call acquired the object, or None
/// for a call not logged at all (a C++ static's loser). `note` gives the
/// entry's `seq` when the call did not acquire, once it is made. The thread is
/// looked up first so its one gettid comes before the real call in both
/// record and replay.
#[inline]
fn record_call(
    log: &SharedSyncLog,
    op: u32,
    object: u64,
    note: impl FnOnce() -> u64,
    call: impl FnOnce() -> c_int,
    logged: impl FnOnce(c_int) -> Option<bool>,
) -> c_int {
    let thread = session::this_thread(log);
    // Stamped before any wait below: the thread got here (and ran the code
    // before) when it did, even if a fork or a handler then holds it.
    let arrival = log.stamp_event();
    // Not into a lock while a fork copies memory: what the child gets is
    // then what the operations stamped before the fork left (waiting
    // after the acquisition instead would hand the child a held lock).
    log.wait_for_forks(thread.as_ref().ok().map(|t| t.slot));
    let result = call();
    match thread {
        Ok(thread) => {
            if let Some(acquired) = logged(result) {
                let seq = if acquired {
                    Seq::Acquired
                } else {
                    Seq::Note(note())
                };
                record(log, thread, op, object, seq, result, arrival);
            }
        }
        Err(_) => session::note_unrecorded(),
    }
    result
}

/// An entry's `seq`: the object's next turn, for a call that acquired
/// it, or a note of the call's own.
enum Seq {
    Acquired,
    Note(u64),
}

#[inline]
fn record(
    log: &SharedSyncLog,
    thread: LogicalThread,
    op: u32,
    object: u64,
    seq: Seq,
    result: c_int,
    arrival: u64,
) {
    let Some(ring) = log.ring(thread.slot) else {
        session::note_unrecorded();
        return;
    };
    if op != ops::SCHED_YIELD {
        crate::threads::other_event_logged();
    }
    let seq = if let Seq::Note(note) = seq {
        note
    } else {
        match log.object(thread.process, object) {
            // Still holding the object, so turns follow the real order.
            Some(turn) => u64::from(turn.turn.fetch_add(1, Ordering::AcqRel)),
            None => {
                let index = ring.produced();
                log.report_divergence(DIVERGENCE_TABLE_FULL, thread.slot, index, None, op, object);
                NO_TURN
            }
        }
    };
    // Still holding an acquired object: stamps follow the real order.
    let order = log.stamp_event();
    // A fork (or another thread's handler) stamped before this operation
    // and raised while it acquired: what the thread does next must not
    // reach the child (or the handler), as in replay.
    log.wait_for_barrier_before(order, thread.slot);
    push(
        log,
        ring,
        SyncEntry {
            object,
            seq,
            order,
            arrival,
            late_to: rrc_synclog::NO_ARRIVAL,
            gate_after: rrc_synclog::NO_ARRIVAL,
            op,
            result,
        },
    );
}

#[inline]
fn push(log: &SharedSyncLog, ring: &SyncRing, entry: SyncEntry) {
    if ring.push(entry) {
        // Lengths seen after successive pushes rise by at most one, so this
        // is hit once each time the ring climbs past half.
        if ring.len() == RING_HALF + 1 {
            log.poke_service();
        }
        return;
    }
    push_when_drained(log, ring, entry);
}

#[cold]
fn push_when_drained(log: &SharedSyncLog, ring: &SyncRing, entry: SyncEntry) {
    let _errno = ErrnoGuard::save();
    loop {
        let seen = ring.popped.load(Ordering::Acquire);
        if ring.push(entry) {
            return;
        }
        log.poke_service();
        futex_wait(&ring.popped, seen, Some(RING_FULL_WAIT));
    }
}

/// The recorded entry for the operation a replaying thread is doing.
struct Expected {
    thread: LogicalThread,
    /// Position of the operation in the thread's sync stream.
    index: u64,
    entry: SyncEntry,
}

impl Expected {
    /// `entry`, the oldest in the thread's `ring`, taken off it as the
    /// operation the thread is doing.
    fn taken(
        log: &SharedSyncLog,
        ring: &SyncRing,
        thread: LogicalThread,
        entry: SyncEntry,
    ) -> Self {
        let index = ring.consumed();
        ring.pop();
        // The feeder refills on a poke: ask once each time the ring drains
        // to half.
        if ring.len() == RING_HALF {
            log.poke_service();
        }
        Expected {
            thread,
            index,
            entry,
        }
    }
}

/// Takes the thread's next recorded entry, which must be for `op`. Does
/// not return on a divergence.
fn expect_next(log: &SharedSyncLog, op: u32, object: u64) -> Expected {
    let thread = match session::this_thread(log) {
        Ok(thread) => thread,
        // No stream position for an unknown thread: the index carries its tid.
        Err(unknown) => diverge(
            log,
            DIVERGENCE_UNKNOWN_THREAD,
            u32::MAX,
            unknown.tid as u64,
            None,
            op,
            object,
        ),
    };
    let Some(ring) = log.ring(thread.slot) else {
        diverge(
            log,
            DIVERGENCE_UNKNOWN_THREAD,
            thread.slot,
            0,
            None,
            op,
            object,
        )
    };
    let mut index = ring.consumed();
    let mut entry = match ring.peek() {
        Some(entry) => entry,
        None => wait_for_entry(log, ring),
    };
    // Optional calls (futex calls, yields) this thread made when recorded
    // but not now (see `futex`): stepped over; the replayer skips their
    // ranks, as for any event a thread passes by.
    while ops::optional(entry.op) && !ops::optional(op) {
        ring.pop();
        index = ring.consumed();
        entry = match ring.peek() {
            Some(entry) => entry,
            None => wait_for_entry(log, ring),
        };
    }
    if entry.op != op {
        diverge(
            log,
            DIVERGENCE_OP_MISMATCH,
            thread.slot,
            index,
            Some(entry),
            op,
            object,
        );
    }
    Expected::taken(log, ring, thread, entry)
}

#[cold]
fn wait_for_entry(log: &SharedSyncLog, ring: &SyncRing) -> SyncEntry {
    loop {
        let seen = ring.pushed.load(Ordering::Acquire);
        if let Some(entry) = ring.peek() {
            return entry;
        }
        if ring.closed.load(Ordering::Acquire) != 0 {
            // The feeder pushes before it closes: look once more.
            if let Some(entry) = ring.peek() {
                return entry;
            }
            // Past the end of the recorded stream: when recorded, this
            // thread was blocked in this operation until the end (an idle
            // worker in cond_wait at exit). Block the same way; if the
            // program then cannot finish, the replayer's watchdog says so.
            ring.parked_past_end.store(1, Ordering::Release);
            log.poke_service();
            park_forever();
        }
        log.poke_service();
        futex_wait(&ring.pushed, seen, Some(RING_EMPTY_WAIT));
    }
}

/// Waits for the recorded turn on the recorded object, acquires for real,
/// and passes the turn to the next acquirer.
fn take_recorded_turn(
    log: &SharedSyncLog,
    expected: &Expected,
    op: u32,
    acquire_blocking: impl FnOnce(),
) {
    let entry = &expected.entry;
    let Some(turn) = log.object(expected.thread.process, entry.object) else {
        diverge(
            log,
            DIVERGENCE_TABLE_FULL,
            expected.thread.slot,
            expected.index,
            Some(*entry),
            op,
            entry.object,
        )
    };
    in_event_order(log, expected, |at_rank| {
        // At its rank, every acquisition ranked before it has happened: the
        // object's own turn adds nothing, and for a lock held shared
        // (readers, a semaphore) the two orders can disagree, as the turn
        // and the stamp are taken separately. A skipped rank has no such
        // guarantee: it waits for the turn.
        if !at_rank {
            let ring = log.ring(expected.thread.slot);
            if let Some(r) = ring {
                r.waiting_for_turn
                    .store(rrc_synclog::word_plus_one(entry.seq), Ordering::Relaxed);
            }
            wait_for_turn(ring, turn, entry.seq);
            if let Some(r) = ring {
                r.waiting_for_turn.store(0, Ordering::Relaxed);
            }
        }
        acquire_blocking();
        // SeqCst pairs with the waiter's waiters increment: either it sees
        // the new turn or we see it waiting.
        turn.turn.fetch_add(1, Ordering::SeqCst);
        if turn.waiters.load(Ordering::SeqCst) > 0 {
            futex_wake(&turn.turn, i32::MAX);
        }
    });
}

/// Passes the rank of the thread's arrival at the operation, once the
/// order gets there (when replay enforces it). What follows an arrival
/// is a wait (for the operation's own rank, or in a real join or
/// barrier for the other threads), with no code of the thread's own
/// before it, so the order moves on at once: a thread with the run of
/// the program (segments) hands it on here, not when replay finds it
/// asleep.
#[inline]
fn arrive(log: &SharedSyncLog, expected: &Expected) {
    if expected.entry.arrival == NO_ARRIVAL || !log.orders_events() {
        return;
    }
    wait_at_rank(log, expected.thread.slot, expected.entry.arrival, |_| {});
    log.park(expected.thread.slot);
}

/// Runs `operation` at the entry's rank in the event order (when replay
/// enforces it), then lets the next event happen. `operation` learns
/// whether it runs at its rank (false: ordering is off, or the rank was
/// skipped).
#[inline]
fn in_event_order(log: &SharedSyncLog, expected: &Expected, operation: impl FnOnce(bool)) {
    if !log.orders_events() {
        operation(false);
        return;
    }
    wait_at_rank(log, expected.thread.slot, expected.entry.order, operation);
}

/// Waits for `rank`, runs `operation` (told whether it runs at its rank:
/// false when the tracer skipped the rank or let it go early), and passes
/// the rank on.
#[inline]
fn wait_at_rank(log: &SharedSyncLog, slot: u32, rank: u64, operation: impl FnOnce(bool)) {
    // Arrived at an event: the code since the last one has run.
    log.park(slot);
    let at_rank = log.wait_for_rank_of(slot, rank, TURN_SPINS, TURN_WAIT);
    operation(at_rank);
    if at_rank {
        log.finish_rank(slot, rank);
        crate::futex::before_unseen_lock(log, slot, rank);
    }
}

/// A futex call's return at its place. With a late hold (`late_to`: a
/// wait's, or a wake's in a later try of the replayer's search), the
/// thread then waits until the order gets to its next event before it
/// goes on: what it does once woken (takes the lock again, pops a job)
/// then comes after the events the others made meanwhile when recorded.
/// Goes on anyway when the order stands still for `LATE_STILL` while no
/// thread has the run of the program (the next event may wait for this
/// thread, through a lock rrc does not see) or after about `LATE_LIMIT`
/// in all.
fn return_at_place(log: &SharedSyncLog, expected: &Expected) {
    if expected.entry.late_to == NO_ARRIVAL {
        in_event_order(log, expected, |_| {});
        return;
    }
    let slot = expected.thread.slot;
    log.park(slot);
    if !log.wait_for_rank_of(slot, expected.entry.order, TURN_SPINS, TURN_WAIT) {
        return;
    }
    return_late_to(log, expected.entry.late_to);
    crate::futex::before_unseen_lock(log, slot, expected.entry.order);
}

/// A return that has happened at its place, whose thread's next event
/// (`late_to`) comes after other threads' events: the order moves on at
/// once (no baton: the others' events up to the next one of ours go
/// first), and the thread waits until the order gets to `late_to`, within
/// `return_at_place`'s bounds. For futex waits and for calls answered
/// in-process.
pub fn return_late_to(log: &SharedSyncLog, late_to: u64) {
    log.advance_rank();
    let target = rrc_synclog::word(late_to);
    // Counted in naps: a clock read here would be one of the program's
    // calls (the shim's own clock_gettime).
    let (mut seen, mut still, mut naps) = (log.order_turn(), 0, 0);
    loop {
        let now_turn = log.order_turn();
        if SharedSyncLog::reached_word(target, now_turn) {
            return;
        }
        // The next event's thread waiting for its recorded interval is
        // not standing still.
        if now_turn != seen || log.turn_is_pacing(now_turn) {
            (seen, still) = (now_turn, 0);
        }
        // Nearest next event first (see `late_still`).
        let ahead = target.wrapping_sub(now_turn);
        if still >= naps_in(rrc_synclog::late_still(ahead)) || naps >= LATE_NAPS {
            return;
        }
        log.nap_on_order(now_turn, LATE_NAP);
        // A thread with the run of the program (in segments) is on its
        // way to its next event, however long it computes; one asleep is
        // the replayer's to notice (it takes the baton back).
        if log.baton_holder().is_none() {
            still += 1;
        }
        naps += 1;
    }
}

/// `return_at_place` naps this long at a time, goes on after as many naps
/// while the order stands still as make `late_still` (for how far ahead
/// its next event is), and after as many as make `LATE_LIMIT` in all (the
/// tracer's late returns' bounds).
const LATE_NAP: Duration = Duration::from_micros(100);
const LATE_NAPS: u32 = naps_in(rrc_synclog::LATE_LIMIT);

/// How many of `return_at_place`'s naps make `d`.
const fn naps_in(d: Duration) -> u32 {
    (d.as_micros() / LATE_NAP.as_micros()) as u32
}

/// Waits for the object's turn `seq`, unless the tracer lets this wait
/// go (`SyncRing::turn_released`: nothing in the program can move, and
/// the turn belongs to a thread blocked where rrc does not see, a lock of
/// its own or a C++20 semaphore, that may be waiting for this one; a later
/// difference is then reported as a divergence, never a stall).
#[inline]
fn wait_for_turn(ring: Option<&SyncRing>, turn: &ObjectTurn, seq: u64) {
    // The counter is 32 bits and wraps; turns are compared in its width.
    let target = rrc_synclog::word(seq);
    let released = rrc_synclog::word_plus_one(seq);
    let mut spins = 0;
    loop {
        let current = turn.turn.load(Ordering::Acquire);
        // Past it too: an acquisition let go ahead of the event order (the
        // tracer's way out of a hold on a lock rrc does not see) takes a
        // turn that was not its own, and no one would ever set this one.
        if current.wrapping_sub(target) as i32 >= 0 {
            return;
        }
        if spins < TURN_SPINS {
            spins += 1;
            std::hint::spin_loop();
            continue;
        }
        if ring.is_some_and(|r| r.turn_released.load(Ordering::SeqCst) == released) {
            return;
        }
        turn.waiters.fetch_add(1, Ordering::SeqCst);
        futex_wait(&turn.turn, current, Some(TURN_NAP));
        turn.waiters.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Reports a divergence (only the first one in the log sticks) and parks
/// this thread for good: the replayer kills the process.
#[cold]
fn diverge(
    log: &SharedSyncLog,
    kind: u32,
    slot: u32,
    index: u64,
    expected: Option<SyncEntry>,
    observed_op: u32,
    observed_object: u64,
) -> ! {
    log.report_divergence(kind, slot, index, expected, observed_op, observed_object);
    park_forever()
}

/// Blocks the calling thread until the process ends.
pub(super) fn park_forever() -> ! {
    let parked = AtomicU32::new(0);
    loop {
        futex_wait(&parked, 0, None);
    }
}
