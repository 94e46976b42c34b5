//! Thread creation: each new thread resolves its identity in the sync log
//! before it runs any of the program's code (see `session::identify_now`).

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};

use libc::{pthread_attr_t, pthread_t};

use crate::{real, session};

type StartRoutine = extern "C" fn(*mut c_void) -> *mut c_void;

/// What a new thread was asked to run.
struct Start {
    routine: StartRoutine,
    arg: *mut c_void,
}

extern "C" fn start_thread(start: *mut c_void) -> *mut c_void {
    // SAFETY: `start` is the Box made for this thread in pthread_create,
    // handed over exactly once.
    let start = unsafe { Box::from_raw(start.cast::<Start>()) };
    if session::serial() {
        // Trapped: the tracer lets the thread's own code run at its turn.
        // SAFETY: gettid takes no arguments.
        unsafe { rrc_synclog::raw_syscall(libc::SYS_gettid, [0; 6]) };
    } else {
        session::identify_now();
    }
    (start.routine)(start.arg)
}

#[no_mangle]
pub unsafe extern "C" fn pthread_create(
    thread: *mut pthread_t,
    attr: *const pthread_attr_t,
    routine: StartRoutine,
    arg: *mut c_void,
) -> c_int {
    let Some(create) = real::pthread_create() else {
        return libc::EAGAIN;
    };
    if session::current().is_none() && !session::serial() {
        // SAFETY: forwards the caller's arguments under the same contract.
        return unsafe { create(thread, attr, routine, arg) };
    }
    load_what_libc_loads_once();
    let start = Box::into_raw(Box::new(Start { routine, arg }));
    // SAFETY: as above, with our start routine, which takes over `start`.
    let result = unsafe { create(thread, attr, start_thread, start.cast()) };
    if result != 0 {
        // SAFETY: no thread was made, so `start` is still ours.
        drop(unsafe { Box::from_raw(start) });
    }
    result
}

/// pthread_join (and what joins through it: C++'s `std::thread::join`,
/// Rust's `JoinHandle::join`, C11's `thrd_join`) takes places in the
/// event order: the code a thread runs before it joins (setting a stop
/// flag its workers poll, say) then has a place too, just before the
/// join, instead of being taken for code that runs just before whatever
/// the thread does after the joined thread has ended.
#[no_mangle]
pub unsafe extern "C" fn pthread_join(thread: pthread_t, retval: *mut *mut c_void) -> c_int {
    let Some(join) = real::pthread_join() else {
        return libc::ESRCH;
    };
    // SAFETY: forwards the caller's arguments under the same contract.
    let wait = || unsafe { join(thread, retval) };
    if let Some(session::Session::Replay(log)) = session::current() {
        if session::this_thread(log).is_err() {
            // A thread the log does not know recorded nothing (recording
            // passes such threads through), and a join takes nothing that
            // another thread's turn depends on: it joins unordered.
            return wait();
        }
    }
    crate::order::real_wait(crate::ops::THREAD_JOIN, thread, wait)
}

/// sched_yield (C++'s `std::this_thread::yield`, Rust's `yield_now`): a
/// thread spinning on a flag another sets yields between its looks, and
/// each yield takes a place in the event order, so the look that saw the
/// flag comes where it came when recorded. A run may yield more or fewer
/// times than its recording: an optional call (see `ops::optional`).
///
/// Only the first `YIELDS_LOGGED_IN_A_ROW` yields of a run with no other
/// event of the thread between are logged: that orders the looks of a
/// thread waiting for its turn (the look that ends the wait is placed
/// just before the thread's next event, as for any code after a return),
/// while a thread spinning on a lock held across many events (a spin
/// lock of its own) would otherwise log thousands of yields, each a rank
/// that replay, where the lock changes hands elsewhere, must step over.
#[no_mangle]
pub unsafe extern "C" fn sched_yield() -> c_int {
    let Some(real_yield) = real::sched_yield() else {
        return 0;
    };
    // SAFETY: sched_yield takes no arguments.
    let call = || unsafe { real_yield() };
    if matches!(session::current(), Some(session::Session::Record(_))) {
        let run = YIELDS_IN_A_ROW.with(|n| n.replace(n.get().saturating_add(1)));
        if run >= YIELDS_LOGGED_IN_A_ROW {
            return call();
        }
    }
    let op = crate::ops::SCHED_YIELD;
    match crate::order::if_recorded(op, 0, 0, false, call, || {}, None) {
        Some(0) => 0,
        // Not the thread's next recorded call: an extra yield, counted
        // for the tracer (a thread spinning for one it holds).
        None => {
            if let Some(ring) = session::replay_ring() {
                ring.extra_yields
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            call()
        }
        // A recorded failure (none is known): as sched_yield reports one.
        Some(err) => {
            session::set_errno(err.saturating_neg());
            -1
        }
    }
}

const YIELDS_LOGGED_IN_A_ROW: u32 = 8;

thread_local! {
    /// Yields this thread made since its last other logged event.
    static YIELDS_IN_A_ROW: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// The thread logged an event other than a yield (when recorded).
#[inline]
pub(crate) fn other_event_logged() {
    let _ = YIELDS_IN_A_ROW.try_with(|n| n.set(0));
}

/// State glibc loads on first use behind a flag it sets without a lock,
/// with a syscall, loaded by the thread that makes the program's first
/// thread, before that thread exists: otherwise whichever thread gets
/// there first loads it, and replay sees the call in another thread.
/// `qsort` of more than 1 KiB reads the machine's memory size once
/// (`sysinfo`). malloc sizes its arena limit from the processor count
/// (`/sys/devices/system/cpu/online`) when a thread first needs a ninth
/// arena, and two threads may both read it: the limit is set here to
/// what it would compute, unless the user set one. (malloc's read of
/// `overcommit_memory` the tracer answers itself: only a thread's own
/// arena shrinking makes it.)
fn load_what_libc_loads_once() {
    static LOADED: AtomicBool = AtomicBool::new(false);
    if LOADED.swap(true, Ordering::AcqRel) {
        return;
    }
    set_arena_limit();
    extern "C" fn order(a: *const c_void, b: *const c_void) -> c_int {
        // SAFETY: qsort hands us two elements of the u32 array below.
        let (a, b) = unsafe { (*a.cast::<u32>(), *b.cast::<u32>()) };
        a.cmp(&b) as c_int
    }
    let mut values = [0u32; 512];
    let n = values.len();
    for (i, v) in values.iter_mut().enumerate() {
        *v = (n - i) as u32;
    }
    // SAFETY: a valid array of 512 u32s, sorted by a comparison of u32s.
    unsafe {
        libc::qsort(
            values.as_mut_ptr().cast(),
            values.len(),
            std::mem::size_of::<u32>(),
            Some(order),
        )
    };
}

/// glibc's own arena limit (`NARENAS_FROM_NCORES`: 8 a processor, or 16
/// when the count cannot be read), made explicit before any thread needs
/// it; left alone when `MALLOC_ARENA_MAX` or a tunable sets it.
fn set_arena_limit() {
    /// mallopt's parameter (malloc.h), not in the libc crate.
    const M_ARENA_MAX: c_int = -8;
    let user_set = std::env::var_os("MALLOC_ARENA_MAX").is_some()
        || std::env::var_os("GLIBC_TUNABLES")
            .is_some_and(|t| t.to_string_lossy().contains("arena_max"));
    if user_set {
        return;
    }
    // SAFETY: sysconf counts processors as malloc does (`get_nprocs`);
    // mallopt takes the main arena's lock. No thread of the program
    // exists yet.
    unsafe {
        let n = c_int::try_from(libc::sysconf(libc::_SC_NPROCESSORS_ONLN)).unwrap_or(0);
        libc::mallopt(M_ARENA_MAX, 8 * if n >= 1 { n } else { 2 });
    }
}
