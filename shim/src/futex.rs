//! Futex waits and wakes that programs make through libc's `syscall()`:
//! the contended paths of locks and condvars rrc cannot otherwise see
//! (Rust's `std::sync`, `std::thread::park`, hand-written locks). Each one
//! takes a place in the event order, as a sync operation on the futex
//! word. Replay wakes for real at the wake's place; a wait does not block
//! in the kernel at all but returns its recorded result at its place,
//! after every event that came before its return when recorded (the wake
//! that ended it among them). A futex wait may always return early, so
//! callers re-check their word: this is a wake-up the program allows.

use std::ffi::c_long;
use std::sync::atomic::Ordering;

use rrc_synclog::{ops, raw_syscall};

use crate::order;
use crate::session;

/// The longest a futex wait the recording does not have blocks in replay.
const UNMATCHED_WAIT_NS: i64 = 1_000_000;

/// The longest a replayed wait waits for a wake the kernel makes (see
/// `settle_woken`): a thread's exit takes well under this.
const WOKEN_SETTLE_NS: i64 = 2_000_000;

const CMD_MASK: c_long = !(libc::FUTEX_PRIVATE_FLAG | libc::FUTEX_CLOCK_REALTIME) as c_long;

#[no_mangle]
pub unsafe extern "C" fn rrc_futex(
    uaddr: c_long,
    op: c_long,
    val: c_long,
    timeout: c_long,
    uaddr2: c_long,
    val3: c_long,
) -> c_long {
    let args = [uaddr, op, val, timeout, uaddr2, val3].map(|a| a as u64);
    let real = || {
        // SAFETY: the program's own futex call, its arguments unchanged.
        let r = unsafe { raw_syscall(libc::SYS_futex, args) };
        // Results are counts of threads or negated errno values.
        r.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
    };
    let kind = match op & CMD_MASK {
        c if c == libc::FUTEX_WAIT as c_long || c == libc::FUTEX_WAIT_BITSET as c_long => {
            Some((ops::FUTEX_WAIT, true))
        }
        // Wakes, and the calls that wake and change a word or move
        // waiters (their side effects happen at the wake's place too).
        c if c == libc::FUTEX_WAKE as c_long
            || c == libc::FUTEX_WAKE_BITSET as c_long
            || c == libc::FUTEX_WAKE_OP as c_long
            || c == libc::FUTEX_REQUEUE as c_long
            || c == libc::FUTEX_CMP_REQUEUE as c_long =>
        {
            Some((ops::FUTEX_WAKE, false))
        }
        _ => None,
    };
    let result = match kind {
        Some((code, waits)) => {
            let settle = || settle_woken(uaddr, op, val);
            let word = uaddr as u64;
            let wake = Wake { word, op, val };
            let release = (!waits).then_some(&wake as &dyn order::LockRelease);
            order::if_recorded(code, word, val as u32, waits, real, settle, release)
                .unwrap_or_else(|| unmatched(uaddr, op, val, waits))
        }
        None => real(),
    };
    if result < 0 {
        session::set_errno(-result);
        -1
    } else {
        c_long::from(result)
    }
}

/// A futex wake of the program's, as a possible release of a lock word.
struct Wake {
    word: u64,
    op: c_long,
    val: c_long,
}

impl order::LockRelease for Wake {
    /// A plain wake of one waiter on a free word: the unlock of Rust's
    /// `Mutex` and of hand-written locks (the word set free, then one
    /// waiter woken).
    fn releases(&self) -> bool {
        self.op & CMD_MASK == libc::FUTEX_WAKE as c_long && self.val == 1 && word_is(self.word, 0)
    }

    fn hand_off(&self) -> bool {
        // Often held already: no nap then.
        let gate = rrc_synclog::LockGate {
            word: self.word,
            free: 0,
        };
        !word_is(gate.word, gate.free) || wait_until_held(gate)
    }
}

/// A replayed wait that was woken when recorded, with no wake of the
/// program's on its word while it waited, whose word still holds the
/// value it waited on: the wake came from the kernel, which no event
/// orders (a thread's exit clearing its `set_tid_address` or
/// `CLONE_CHILD_CLEARTID` word), and has not happened yet in replay. Wait
/// for it for real, boundedly, so the program finds the word as it did.
#[cold]
fn settle_woken(uaddr: c_long, op: c_long, val: c_long) {
    // SAFETY: the program's futex word, which the kernel accepted as an
    // aligned u32 when recorded; read atomically as the kernel does.
    let now = unsafe { (*(uaddr as *const std::sync::atomic::AtomicU32)).load(Ordering::Acquire) };
    if now == val as u32 {
        bounded_wait(uaddr, op, val, WOKEN_SETTLE_NS);
    }
}

/// A futex call replay does not have next for this thread: a wake is made
/// for real; a wait blocks one millisecond at most (callers re-check their
/// word after any return of a futex wait), so it can never stall replay.
#[cold]
fn unmatched(uaddr: c_long, op: c_long, val: c_long, waits: bool) -> i32 {
    if waits {
        let ring = session::replay_ring();
        // Bit 0: in the wait now; the rest counts the waits, so that the
        // tracer sees a thread going round its own wait loop as waiting
        // between two of them too. Only this thread writes the word.
        let count = ring.map(|r| {
            let next = (r.waiting_unseen.load(Ordering::Relaxed) | 1).wrapping_add(2);
            r.waiting_unseen.store(next, Ordering::SeqCst);
            next
        });
        let woken = bounded_wait(uaddr, op, val, UNMATCHED_WAIT_NS);
        if let (Some(r), Some(count)) = (ring, count) {
            r.waiting_unseen.store(count & !1, Ordering::SeqCst);
        }
        return woken;
    }
    let private = op & libc::FUTEX_PRIVATE_FLAG as c_long;
    let wake = (libc::FUTEX_WAKE as c_long | private) as u64;
    // SAFETY: the program's futex word.
    let r = unsafe { raw_syscall(libc::SYS_futex, [uaddr as u64, wake, val as u64, 0, 0, 0]) };
    r.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// A real FUTEX_WAIT on the program's word for at most `ns` (under a
/// second); timing out counts as a wake-up (0).
fn bounded_wait(uaddr: c_long, op: c_long, val: c_long, ns: i64) -> i32 {
    let private = op & libc::FUTEX_PRIVATE_FLAG as c_long;
    let wait = (libc::FUTEX_WAIT as c_long | private) as u64;
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: ns,
    };
    let tsp = &ts as *const libc::timespec as u64;
    // SAFETY: the program's futex word, with a relative timeout that lives
    // across the call.
    let r = unsafe { raw_syscall(libc::SYS_futex, [uaddr as u64, wait, val as u64, tsp, 0, 0]) };
    if r == -i64::from(libc::ETIMEDOUT) {
        0
    } else {
        r.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
    }
}

/// A recorded futex wait on a lock word (the "locked, with waiters" value
/// 2 of the usual three-state lock: Rust's `Mutex`, its stdout lock,
/// hand-written locks; or Rust's `Once` running, see `ops::free_word`)
/// says that when its thread got to the lock, another thread held it. In
/// replay, the thread's code from its previous event to the lock is
/// unseen: if the holder is late, the thread finds the lock free and takes
/// it, in another order than recorded. So once the event before such a
/// wait is done (`finished`, the plan's `gate_after`), the thread goes on
/// only when the word is held, or after about `GATE_NAPS` naps: it is a
/// mitigation, and never a hold without a way out.
pub fn before_unseen_lock(log: &rrc_synclog::SharedSyncLog, slot: u32, finished: u64) {
    let Some(ring) = log.ring(slot) else {
        return;
    };
    let Some(next) = ring.peek() else {
        return;
    };
    let Some(gate) = next.lock_gate_after(finished) else {
        return;
    };
    if !word_is(gate.word, gate.free) {
        return;
    }
    let header = log.header();
    header.lock_gates.fetch_add(1, Ordering::Relaxed);
    if !wait_until_held(gate) {
        header.lock_gates_given_way.fetch_add(1, Ordering::Relaxed);
    }
}

/// Naps of `before_unseen_lock`: 50 of 20 µs, about a millisecond, far
/// longer than a holder takes to get from its previous event to the lock
/// when it is on its way.
const GATE_NAP: std::time::Duration = std::time::Duration::from_micros(20);
const GATE_NAPS: u32 = 50;

/// Whether another thread took the lock within the naps.
#[cold]
fn wait_until_held(gate: rrc_synclog::LockGate) -> bool {
    let _errno = session::ErrnoGuard::save();
    let nap = std::sync::atomic::AtomicU32::new(0);
    for _ in 0..GATE_NAPS {
        rrc_synclog::futex_wait(&nap, 0, Some(GATE_NAP));
        if !word_is(gate.word, gate.free) {
            return true;
        }
    }
    false
}

/// Whether the program's word at `addr` is `value`, read by the kernel, so
/// that a word the program has unmapped is an error (taken as another
/// value), not a fault. A compare-and-requeue that moves no waiter: unlike
/// a wait with no timeout, it can never take a wake meant for one of the
/// program's threads.
fn word_is(addr: u64, value: u32) -> bool {
    let spare = std::sync::atomic::AtomicU32::new(0);
    let cmd = (libc::FUTEX_CMP_REQUEUE | libc::FUTEX_PRIVATE_FLAG) as u64;
    // SAFETY: wakes and moves no thread (both counts 0); the kernel reads
    // `addr` itself and fails with EFAULT if it is not mapped; `spare`
    // lives across the call.
    let r = unsafe {
        raw_syscall(
            libc::SYS_futex,
            [addr, cmd, 0, 0, &spare as *const _ as u64, u64::from(value)],
        )
    };
    r == 0
}
