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

use rrc_synclog::{ops, raw_syscall};

use crate::order;
use crate::session;

/// The longest a futex wait the recording does not have blocks in replay.
const UNMATCHED_WAIT_NS: i64 = 1_000_000;

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
        c if c == libc::FUTEX_WAKE as c_long || c == libc::FUTEX_WAKE_BITSET as c_long => {
            Some((ops::FUTEX_WAKE, false))
        }
        _ => None,
    };
    let result = match kind {
        Some((code, waits)) => order::futex(code, uaddr as u64, waits, real)
            .unwrap_or_else(|| unmatched(uaddr, op, val, waits)),
        None => real(),
    };
    if result < 0 {
        session::set_errno(-result);
        -1
    } else {
        c_long::from(result)
    }
}

/// A futex call replay does not have next for this thread: a wake is made
/// for real; a wait blocks one millisecond at most (callers re-check their
/// word after any return of a futex wait), so it can never stall replay.
#[cold]
fn unmatched(uaddr: c_long, op: c_long, val: c_long, waits: bool) -> i32 {
    let private = op & libc::FUTEX_PRIVATE_FLAG as c_long;
    let (cmd, timeout) = if waits {
        (libc::FUTEX_WAIT as c_long, UNMATCHED_WAIT_NS)
    } else {
        (libc::FUTEX_WAKE as c_long, 0)
    };
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: timeout,
    };
    let tsp = if waits {
        &ts as *const libc::timespec as u64
    } else {
        0
    };
    // SAFETY: the program's futex word, with a relative timeout that lives
    // across the call.
    let r = unsafe {
        raw_syscall(
            libc::SYS_futex,
            [uaddr as u64, (cmd | private) as u64, val as u64, tsp, 0, 0],
        )
    };
    if waits && r == -i64::from(libc::ETIMEDOUT) {
        0
    } else {
        r.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
    }
}
