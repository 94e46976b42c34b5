//! librrc_shim.so: preloaded into every program rrc traces. It interposes
//! the pthread / semaphore synchronisation functions and, through the
//! shared sync log the tracer hands over in `RRC_SHM_FD`, records the order
//! in which threads acquire each object (record) or enforces the recorded
//! order (replay). Without a usable log it only forwards to libc.
//!
//! Each interposed function resolves its real definition with
//! `dlsym(RTLD_NEXT, ...)` on first use; the record/replay logic lives in
//! `order`, attaching and thread identity in `session`.

// The exported functions carry the C contracts of the functions they stand
// in for; restating them per function adds nothing.
#![allow(clippy::missing_safety_doc)]
#![deny(unsafe_op_in_unsafe_fn)]

use rrc_synclog::ops;
mod c11;
mod fast;
mod fast_calls;
mod fortify;
mod futex;
mod libc_lazy;
mod libc_state;
mod once;
mod openmp;
mod order;
mod random;
mod real;
mod replay_fast;
mod session;
mod site_unwind;
mod static_init;
mod std_copy;
mod std_dups;
mod stdio;
mod threads;
mod tsc;

use std::ffi::c_int;

use libc::{
    clockid_t, pthread_barrier_t, pthread_cond_t, pthread_mutex_t, pthread_rwlock_t,
    pthread_spinlock_t, sem_t, timespec,
};

use order::Acquisition;

/// An object's identity in the log: its address.
#[inline]
fn address<T>(object: *const T) -> u64 {
    object as usize as u64
}

/// Operations an unregistered thread did while recording (diagnostics).
#[no_mangle]
pub extern "C" fn rrc_shim_unrecorded_ops() -> u64 {
    session::unrecorded_ops()
}

// ---------------------------------------------------------------- mutexes

/// A mutex acquisition; replay uses a plain blocking lock for a recorded
/// success.
///
/// # Safety
/// `mutex` must be valid for pthread_mutex_lock.
#[inline]
unsafe fn mutex_acquire(
    op: u32,
    mutex: *mut pthread_mutex_t,
    attempt: impl FnOnce() -> c_int,
) -> c_int {
    let Some(lock) = real::mutex_lock() else {
        return libc::ENOSYS;
    };
    let acquire_blocking = || {
        // SAFETY: the caller guarantees `mutex` is valid for locking.
        unsafe { lock(mutex) };
    };
    order::acquire(
        op,
        address(mutex),
        Acquisition::Mutex,
        attempt,
        acquire_blocking,
    )
}

#[no_mangle]
pub unsafe extern "C" fn pthread_mutex_lock(mutex: *mut pthread_mutex_t) -> c_int {
    let Some(lock) = real::mutex_lock() else {
        return libc::ENOSYS;
    };
    let attempt = || {
        // SAFETY: forwards the caller's arguments under the same contract.
        unsafe { lock(mutex) }
    };
    // SAFETY: the caller passed `mutex` to pthread_mutex_lock.
    unsafe { mutex_acquire(ops::MUTEX_LOCK, mutex, attempt) }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_mutex_trylock(mutex: *mut pthread_mutex_t) -> c_int {
    let Some(trylock) = real::mutex_trylock() else {
        return libc::ENOSYS;
    };
    let attempt = || {
        // SAFETY: forwards the caller's arguments under the same contract.
        unsafe { trylock(mutex) }
    };
    // SAFETY: trylock's contract on `mutex` is pthread_mutex_lock's.
    unsafe { mutex_acquire(ops::MUTEX_TRYLOCK, mutex, attempt) }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_mutex_timedlock(
    mutex: *mut pthread_mutex_t,
    abstime: *const timespec,
) -> c_int {
    let Some(timedlock) = real::mutex_timedlock() else {
        return libc::ENOSYS;
    };
    let attempt = || {
        // SAFETY: forwards the caller's arguments under the same contract.
        unsafe { timedlock(mutex, abstime) }
    };
    // SAFETY: timedlock's contract on `mutex` is pthread_mutex_lock's.
    unsafe { mutex_acquire(ops::MUTEX_TIMEDLOCK, mutex, attempt) }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_mutex_clocklock(
    mutex: *mut pthread_mutex_t,
    clock: clockid_t,
    abstime: *const timespec,
) -> c_int {
    let Some(clocklock) = real::mutex_clocklock() else {
        return libc::ENOSYS;
    };
    let attempt = || {
        // SAFETY: forwards the caller's arguments under the same contract.
        unsafe { clocklock(mutex, clock, abstime) }
    };
    // SAFETY: clocklock's contract on `mutex` is pthread_mutex_lock's.
    unsafe { mutex_acquire(ops::MUTEX_TIMEDLOCK, mutex, attempt) }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_mutex_unlock(mutex: *mut pthread_mutex_t) -> c_int {
    match real::mutex_unlock() {
        // SAFETY: forwards the caller's arguments under the same contract.
        Some(unlock) => unsafe { unlock(mutex) },
        None => libc::ENOSYS,
    }
}

// ------------------------------------------------------ condition variables

/// A condvar wait; the logged object is the mutex.
///
/// # Safety
/// `mutex` must be locked by the calling thread, as pthread_cond_wait requires.
#[inline]
unsafe fn cond_wait_common(
    op: u32,
    mutex: *mut pthread_mutex_t,
    wait: impl FnOnce() -> c_int,
) -> c_int {
    let (Some(lock), Some(unlock)) = (real::mutex_lock(), real::mutex_unlock()) else {
        return libc::ENOSYS;
    };
    let release_mutex = || {
        // SAFETY: the caller holds `mutex` (pthread_cond_wait's contract).
        unsafe { unlock(mutex) };
    };
    let acquire_mutex = || {
        // SAFETY: `mutex` is a valid mutex this thread just released.
        unsafe { lock(mutex) };
    };
    order::cond_wait(op, address(mutex), wait, release_mutex, acquire_mutex)
}

#[no_mangle]
pub unsafe extern "C" fn pthread_cond_wait(
    cond: *mut pthread_cond_t,
    mutex: *mut pthread_mutex_t,
) -> c_int {
    let Some(real_wait) = real::cond_wait() else {
        return libc::ENOSYS;
    };
    let wait = || {
        // SAFETY: forwards the caller's arguments under the same contract.
        unsafe { real_wait(cond, mutex) }
    };
    // SAFETY: the caller holds `mutex`, as pthread_cond_wait requires.
    unsafe { cond_wait_common(ops::COND_WAIT, mutex, wait) }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_cond_timedwait(
    cond: *mut pthread_cond_t,
    mutex: *mut pthread_mutex_t,
    abstime: *const timespec,
) -> c_int {
    let Some(real_wait) = real::cond_timedwait() else {
        return libc::ENOSYS;
    };
    let wait = || {
        // SAFETY: forwards the caller's arguments under the same contract.
        unsafe { real_wait(cond, mutex, abstime) }
    };
    // SAFETY: the caller holds `mutex`, as pthread_cond_timedwait requires.
    unsafe { cond_wait_common(ops::COND_TIMEDWAIT, mutex, wait) }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_cond_clockwait(
    cond: *mut pthread_cond_t,
    mutex: *mut pthread_mutex_t,
    clock: clockid_t,
    abstime: *const timespec,
) -> c_int {
    let Some(real_wait) = real::cond_clockwait() else {
        return libc::ENOSYS;
    };
    let wait = || {
        // SAFETY: forwards the caller's arguments under the same contract.
        unsafe { real_wait(cond, mutex, clock, abstime) }
    };
    // SAFETY: the caller holds `mutex`, as pthread_cond_clockwait requires.
    unsafe { cond_wait_common(ops::COND_TIMEDWAIT, mutex, wait) }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_cond_signal(cond: *mut pthread_cond_t) -> c_int {
    match real::cond_signal() {
        // SAFETY: forwards the caller's arguments under the same contract.
        Some(signal) => unsafe { signal(cond) },
        None => libc::ENOSYS,
    }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_cond_broadcast(cond: *mut pthread_cond_t) -> c_int {
    match real::cond_broadcast() {
        // SAFETY: forwards the caller's arguments under the same contract.
        Some(broadcast) => unsafe { broadcast(cond) },
        None => libc::ENOSYS,
    }
}

// ------------------------------------------------------------------ rwlocks

#[derive(Clone, Copy)]
enum RwMode {
    Read,
    Write,
}

/// An rwlock acquisition; replay uses the plain blocking rdlock or wrlock.
///
/// # Safety
/// `rwlock` must be valid for pthread_rwlock_rdlock / wrlock.
#[inline]
unsafe fn rwlock_acquire(
    op: u32,
    rwlock: *mut pthread_rwlock_t,
    mode: RwMode,
    attempt: impl FnOnce() -> c_int,
) -> c_int {
    let blocking = match mode {
        RwMode::Read => real::rwlock_rdlock(),
        RwMode::Write => real::rwlock_wrlock(),
    };
    let Some(lock) = blocking else {
        return libc::ENOSYS;
    };
    let acquire_blocking = || {
        // SAFETY: the caller guarantees `rwlock` is valid for locking.
        unsafe { lock(rwlock) };
    };
    order::acquire(
        op,
        address(rwlock),
        Acquisition::ZeroOnly,
        attempt,
        acquire_blocking,
    )
}

/// Defines an rwlock acquisition entry point that forwards its arguments.
macro_rules! rwlock_entry {
    ($name:ident, $real:ident, $op:expr, $mode:expr $(, $arg:ident: $ty:ty)*) => {
        #[no_mangle]
        pub unsafe extern "C" fn $name(rwlock: *mut pthread_rwlock_t $(, $arg: $ty)*) -> c_int {
            let Some(real_call) = real::$real() else {
                return libc::ENOSYS;
            };
            let attempt = || {
                // SAFETY: forwards the caller's arguments under the same contract.
                unsafe { real_call(rwlock $(, $arg)*) }
            };
            // SAFETY: every rwlock acquisition has rdlock/wrlock's contract on `rwlock`.
            unsafe { rwlock_acquire($op, rwlock, $mode, attempt) }
        }
    };
}

rwlock_entry!(
    pthread_rwlock_rdlock,
    rwlock_rdlock,
    ops::RWLOCK_RDLOCK,
    RwMode::Read
);
rwlock_entry!(
    pthread_rwlock_wrlock,
    rwlock_wrlock,
    ops::RWLOCK_WRLOCK,
    RwMode::Write
);
rwlock_entry!(
    pthread_rwlock_tryrdlock,
    rwlock_tryrdlock,
    ops::RWLOCK_TRYRDLOCK,
    RwMode::Read
);
rwlock_entry!(
    pthread_rwlock_trywrlock,
    rwlock_trywrlock,
    ops::RWLOCK_TRYWRLOCK,
    RwMode::Write
);
rwlock_entry!(
    pthread_rwlock_timedrdlock,
    rwlock_timedrdlock,
    ops::RWLOCK_TIMEDRDLOCK,
    RwMode::Read,
    abstime: *const timespec
);
rwlock_entry!(
    pthread_rwlock_timedwrlock,
    rwlock_timedwrlock,
    ops::RWLOCK_TIMEDWRLOCK,
    RwMode::Write,
    abstime: *const timespec
);
rwlock_entry!(
    pthread_rwlock_clockrdlock,
    rwlock_clockrdlock,
    ops::RWLOCK_TIMEDRDLOCK,
    RwMode::Read,
    clock: clockid_t,
    abstime: *const timespec
);
rwlock_entry!(
    pthread_rwlock_clockwrlock,
    rwlock_clockwrlock,
    ops::RWLOCK_TIMEDWRLOCK,
    RwMode::Write,
    clock: clockid_t,
    abstime: *const timespec
);

#[no_mangle]
pub unsafe extern "C" fn pthread_rwlock_unlock(rwlock: *mut pthread_rwlock_t) -> c_int {
    match real::rwlock_unlock() {
        // SAFETY: forwards the caller's arguments under the same contract.
        Some(unlock) => unsafe { unlock(rwlock) },
        None => libc::ENOSYS,
    }
}

// --------------------------------------------------------------- semaphores

/// A semaphore acquisition. `attempt` is the real call (0 or -1 with
/// errno); the log holds 0 or the errno value. Replay uses sem_wait for a
/// recorded success.
///
/// # Safety
/// `sem` must be valid for sem_wait.
#[inline]
unsafe fn sem_acquire(op: u32, sem: *mut sem_t, attempt: impl FnOnce() -> c_int) -> c_int {
    let Some(wait) = real::sem_wait() else {
        session::set_errno(libc::ENOSYS);
        return -1;
    };
    let attempt_code = || {
        if attempt() == 0 {
            0
        } else {
            session::errno()
        }
    };
    let acquire_blocking = || loop {
        // SAFETY: the caller guarantees `sem` is valid for sem_wait.
        let done = unsafe { wait(sem) } == 0;
        // A signal may interrupt the wait; the recorded call succeeded.
        if done || session::errno() != libc::EINTR {
            break;
        }
    };
    let code = order::acquire(
        op,
        address(sem),
        Acquisition::ZeroOnly,
        attempt_code,
        acquire_blocking,
    );
    if code == 0 {
        0
    } else {
        session::set_errno(code);
        -1
    }
}

/// Defines a semaphore acquisition entry point that forwards its arguments.
macro_rules! sem_entry {
    ($name:ident, $real:ident, $op:expr $(, $arg:ident: $ty:ty)*) => {
        #[no_mangle]
        pub unsafe extern "C" fn $name(sem: *mut sem_t $(, $arg: $ty)*) -> c_int {
            let Some(real_call) = real::$real() else {
                session::set_errno(libc::ENOSYS);
                return -1;
            };
            let attempt = || {
                // SAFETY: forwards the caller's arguments under the same contract.
                unsafe { real_call(sem $(, $arg)*) }
            };
            // SAFETY: every semaphore wait has sem_wait's contract on `sem`.
            unsafe { sem_acquire($op, sem, attempt) }
        }
    };
}

sem_entry!(sem_wait, sem_wait, ops::SEM_WAIT);
sem_entry!(sem_trywait, sem_trywait, ops::SEM_TRYWAIT);
sem_entry!(sem_timedwait, sem_timedwait, ops::SEM_TIMEDWAIT, abstime: *const timespec);
sem_entry!(
    sem_clockwait,
    sem_clockwait,
    ops::SEM_TIMEDWAIT,
    clock: clockid_t,
    abstime: *const timespec
);

#[no_mangle]
pub unsafe extern "C" fn sem_post(sem: *mut sem_t) -> c_int {
    match real::sem_post() {
        // SAFETY: forwards the caller's arguments under the same contract.
        Some(post) => unsafe { post(sem) },
        None => {
            session::set_errno(libc::ENOSYS);
            -1
        }
    }
}

// --------------------------------------------------------------- spinlocks

/// A spinlock acquisition; replay uses pthread_spin_lock.
///
/// # Safety
/// `lock` must be valid for pthread_spin_lock.
#[inline]
unsafe fn spin_acquire(
    op: u32,
    lock: *mut pthread_spinlock_t,
    attempt: impl FnOnce() -> c_int,
) -> c_int {
    let Some(spin_lock) = real::spin_lock() else {
        return libc::ENOSYS;
    };
    let acquire_blocking = || {
        // SAFETY: the caller guarantees `lock` is valid for locking.
        unsafe { spin_lock(lock) };
    };
    order::acquire(
        op,
        address(lock),
        Acquisition::ZeroOnly,
        attempt,
        acquire_blocking,
    )
}

#[no_mangle]
pub unsafe extern "C" fn pthread_spin_lock(lock: *mut pthread_spinlock_t) -> c_int {
    let Some(spin_lock) = real::spin_lock() else {
        return libc::ENOSYS;
    };
    let attempt = || {
        // SAFETY: forwards the caller's arguments under the same contract.
        unsafe { spin_lock(lock) }
    };
    // SAFETY: the caller passed `lock` to pthread_spin_lock.
    unsafe { spin_acquire(ops::SPIN_LOCK, lock, attempt) }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_spin_trylock(lock: *mut pthread_spinlock_t) -> c_int {
    let Some(spin_trylock) = real::spin_trylock() else {
        return libc::ENOSYS;
    };
    let attempt = || {
        // SAFETY: forwards the caller's arguments under the same contract.
        unsafe { spin_trylock(lock) }
    };
    // SAFETY: trylock's contract on `lock` is pthread_spin_lock's.
    unsafe { spin_acquire(ops::SPIN_TRYLOCK, lock, attempt) }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_spin_unlock(lock: *mut pthread_spinlock_t) -> c_int {
    match real::spin_unlock() {
        // SAFETY: forwards the caller's arguments under the same contract.
        Some(unlock) => unsafe { unlock(lock) },
        None => libc::ENOSYS,
    }
}

// ----------------------------------------------------------------- barriers

#[no_mangle]
pub unsafe extern "C" fn pthread_barrier_wait(barrier: *mut pthread_barrier_t) -> c_int {
    let Some(real_wait) = real::barrier_wait() else {
        return libc::ENOSYS;
    };
    let wait = || {
        // SAFETY: forwards the caller's arguments under the same contract.
        unsafe { real_wait(barrier) }
    };
    order::real_wait(ops::BARRIER_WAIT, address(barrier), wait)
}
