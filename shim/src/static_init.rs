//! C++ function-local statics: which of the threads that reach one
//! together runs its constructor. The compiler checks the guard's first
//! byte inline and calls `__cxa_guard_acquire` only while it is 0; the
//! call returns 1 to the one thread that is to construct (the others wait
//! inside it, then get 0). That choice is an atomic in libstdc++, and a
//! constructor that makes syscalls or prints makes them in another thread
//! in replay.
//!
//! The winner logs its win (op `STATIC_INIT`, the guard's address). How
//! many threads call at all depends on timing (the inline check), so the
//! others log nothing; in replay, a thread that did not win waits until
//! the winner has taken the guard (or constructed the static) before its
//! call, which then returns 0, and the recorded winner gets 1. A thread
//! that arrives while the constructor runs waits in libstdc++ on the
//! guard's futex, as it did when recorded (the futex call is logged and
//! replayed as any other).

use std::ffi::c_int;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rrc_synclog::{futex_wait, ops};

use crate::order;
use crate::real;

/// How long a thread that did not win waits for the constructor before it
/// calls anyway (a winner that never comes: the replay has departed, and
/// the divergence shows where).
const WINNER_WAIT: Duration = Duration::from_secs(10);
/// One nap while the constructor runs (it may make replayed syscalls at
/// their recorded pace): short, and asleep in a futex wait of the shim's
/// own, so replay sees the thread is not running its own code. (Not a
/// clock read or a sleep through libc: those are the program's calls.)
const NAP: Duration = Duration::from_micros(200);
const NAPS: u128 = WINNER_WAIT.as_micros() / NAP.as_micros();

/// # Safety
/// The Itanium C++ ABI's contract: `guard` is a static's guard variable.
#[no_mangle]
pub unsafe extern "C" fn __cxa_guard_acquire(guard: *mut u64) -> c_int {
    let Some(real) = real::cxa_guard_acquire() else {
        // No libstdc++ loaded: no C++ static calls this.
        return 0;
    };
    // SAFETY: the guard is the program's, under the function's contract.
    let attempt = || unsafe { real(guard) };
    let wait_for_winner = || {
        // SAFETY: the guard is 8 aligned bytes; its first byte is the
        // "constructed" flag the inline check reads, and libstdc++ keeps
        // its pending and waiting bits in the same 32-bit word: not 0
        // once the winner has it.
        let word = unsafe { &*(guard as *const AtomicU32) };
        for _ in 0..NAPS {
            let seen = word.load(Ordering::Acquire);
            if seen != 0 {
                break;
            }
            futex_wait(word, seen, Some(NAP));
        }
    };
    order::won_when_recorded(
        ops::STATIC_INIT,
        guard as u64,
        attempt,
        |result| result == 1,
        wait_for_winner,
    )
}
