//! OpenMP's locks. `#pragma omp critical` compiles to calls of
//! `GOMP_critical_start` (`GOMP_critical_name_start` for a named one),
//! an `omp atomic` the processor cannot do in one instruction to
//! `GOMP_atomic_start`, and `omp_set_lock` is the lock API; libgomp takes
//! all of them with atomics and raw futex syscalls, which rrc does not
//! see. Each acquisition is made in the recorded order, as a pthread
//! mutex's is (the releases need no order and are libgomp's own).
//!
//! Loops with a dynamic, guided or runtime schedule hand out chunks of
//! iterations through an atomic too: each `GOMP_loop_*_start` and
//! `_next` call is made in the recorded order (op `OMP_LOOP`), so each
//! thread gets the iterations it got when recorded. (Loops over unsigned
//! long long, `GOMP_loop_ull_*`, are not ordered.)

use std::ffi::{c_int, c_long, c_void};
use std::sync::atomic::AtomicU32;

use rrc_synclog::ops;

use crate::order::{self, Acquisition};
use crate::real;

/// A blocking OpenMP acquisition of the lock known as `object`.
fn acquire(object: u64, lock: impl Fn()) {
    order::acquire(
        ops::OMP_LOCK,
        object,
        Acquisition::ZeroOnly,
        || {
            lock();
            0
        },
        &lock,
    );
}

/// Defines each blocking lock function as an acquisition in the recorded
/// order of the lock its argument names (or, without one, of the lock
/// libgomp's function stands for: all unnamed critical sections share
/// one, and so do all `omp atomic` sections done with a lock).
macro_rules! ordered_locks {
    ($( $name:ident => $real:ident ( $($arg:ident : $ty:ty)? ); )*) => {$(
        /// # Safety
        /// As libgomp's function of the same name: its argument, if any,
        /// is the lock or the compiler's pointer for a named section.
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty)?) {
            let Some(real) = real::$real() else {
                return;
            };
            #[allow(unused_mut, unused_assignments)]
            let mut object = real as usize as u64;
            $( object = $arg as u64; )?
            // SAFETY: forwards the caller's argument, if any, under the
            // same contract.
            acquire(object, || unsafe { real($($arg)?) });
        }
    )*};
}

ordered_locks! {
    GOMP_critical_start => gomp_critical_start();
    GOMP_critical_name_start => gomp_critical_name_start(pptr: *mut *mut c_void);
    GOMP_atomic_start => gomp_atomic_start();
    omp_set_lock => omp_set_lock(lock: *mut c_void);
    omp_set_nest_lock => omp_set_nest_lock(lock: *mut c_void);
}

/// # Safety
/// `lock` must be an initialised `omp_lock_t`, as libgomp requires.
#[no_mangle]
pub unsafe extern "C" fn omp_test_lock(lock: *mut c_void) -> c_int {
    let (Some(test), Some(set)) = (real::omp_test_lock(), real::omp_set_lock()) else {
        return 0;
    };
    // Logged as a trylock: 0 acquired, EBUSY not.
    let attempt = || {
        // SAFETY: forwards the caller's argument under the same contract.
        if unsafe { test(lock) } != 0 {
            0
        } else {
            libc::EBUSY
        }
    };
    // SAFETY: as above; replay takes a recorded success for certain.
    let blocking = || unsafe { set(lock) };
    let result = order::acquire(
        ops::OMP_LOCK,
        lock as u64,
        Acquisition::ZeroOnly,
        attempt,
        blocking,
    );
    c_int::from(result == 0)
}

/// The loops' chunks, as one object.
static LOOP_CHUNKS: AtomicU32 = AtomicU32::new(0);

/// Defines each loop function as a call made in the recorded order.
macro_rules! ordered_loop_calls {
    ($( $name:ident => $real:ident ( $($arg:ident : $ty:ty),* ); )*) => {$(
        /// # Safety
        /// As libgomp's function of the same name: the compiler's
        /// arguments for a worksharing loop.
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> bool {
            let Some(real) = real::$real() else {
                return false;
            };
            // SAFETY: forwards the caller's arguments under the same
            // contract.
            let call = || unsafe { real($($arg),*) };
            order::call_in_recorded_order(ops::OMP_LOOP, &LOOP_CHUNKS, call).unwrap_or(false)
        }
    )*};
}

ordered_loop_calls! {
    GOMP_loop_dynamic_start => gomp_loop_dynamic_start(
        start: c_long, end: c_long, incr: c_long, chunk: c_long,
        istart: *mut c_long, iend: *mut c_long
    );
    GOMP_loop_nonmonotonic_dynamic_start => gomp_loop_nonmonotonic_dynamic_start(
        start: c_long, end: c_long, incr: c_long, chunk: c_long,
        istart: *mut c_long, iend: *mut c_long
    );
    GOMP_loop_guided_start => gomp_loop_guided_start(
        start: c_long, end: c_long, incr: c_long, chunk: c_long,
        istart: *mut c_long, iend: *mut c_long
    );
    GOMP_loop_nonmonotonic_guided_start => gomp_loop_nonmonotonic_guided_start(
        start: c_long, end: c_long, incr: c_long, chunk: c_long,
        istart: *mut c_long, iend: *mut c_long
    );
    GOMP_loop_runtime_start => gomp_loop_runtime_start(
        start: c_long, end: c_long, incr: c_long, istart: *mut c_long, iend: *mut c_long
    );
    GOMP_loop_maybe_nonmonotonic_runtime_start => gomp_loop_maybe_nonmonotonic_runtime_start(
        start: c_long, end: c_long, incr: c_long, istart: *mut c_long, iend: *mut c_long
    );
    GOMP_loop_dynamic_next => gomp_loop_dynamic_next(istart: *mut c_long, iend: *mut c_long);
    GOMP_loop_nonmonotonic_dynamic_next
        => gomp_loop_nonmonotonic_dynamic_next(istart: *mut c_long, iend: *mut c_long);
    GOMP_loop_guided_next => gomp_loop_guided_next(istart: *mut c_long, iend: *mut c_long);
    GOMP_loop_nonmonotonic_guided_next
        => gomp_loop_nonmonotonic_guided_next(istart: *mut c_long, iend: *mut c_long);
    GOMP_loop_runtime_next => gomp_loop_runtime_next(istart: *mut c_long, iend: *mut c_long);
    GOMP_loop_maybe_nonmonotonic_runtime_next
        => gomp_loop_maybe_nonmonotonic_runtime_next(istart: *mut c_long, iend: *mut c_long);
}
