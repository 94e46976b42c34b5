//! C11 `<threads.h>`: glibc implements `mtx_lock`, `cnd_wait` and
//! `thrd_create` by calling its pthread functions directly, inside libc,
//! where the shim's pthread wrappers are never reached. Each is defined
//! here as glibc defines it (the C11 types are the pthread ones under
//! another name), through the shim's wrappers, so C11 locks are ordered
//! like pthread ones and C11 threads start as pthread ones do.

use std::ffi::{c_int, c_void};

use libc::{pthread_cond_t, pthread_mutex_t, pthread_t, timespec};

use crate::threads::{pthread_create, pthread_join};
use crate::{
    pthread_cond_timedwait, pthread_cond_wait, pthread_mutex_lock, pthread_mutex_timedlock,
    pthread_mutex_trylock,
};

// glibc's <threads.h> result codes.
const THRD_SUCCESS: c_int = 0;
const THRD_BUSY: c_int = 1;
const THRD_ERROR: c_int = 2;
const THRD_NOMEM: c_int = 3;
const THRD_TIMEDOUT: c_int = 4;

/// glibc's marker for a thread made by thrd_create (pthread_create takes
/// it in place of attributes).
const ATTR_C11_THREAD: *const libc::pthread_attr_t = usize::MAX as *const libc::pthread_attr_t;

/// A pthread error code as a C11 result, as glibc maps it.
fn thrd_result(err: c_int) -> c_int {
    match err {
        0 => THRD_SUCCESS,
        libc::ENOMEM => THRD_NOMEM,
        libc::ETIMEDOUT => THRD_TIMEDOUT,
        libc::EBUSY => THRD_BUSY,
        _ => THRD_ERROR,
    }
}

type C11Start = extern "C" fn(*mut c_void) -> c_int;

#[no_mangle]
pub unsafe extern "C" fn thrd_create(
    thr: *mut pthread_t,
    func: C11Start,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: as glibc does: the thread's int result comes back in the
    // register a pointer result would, and thrd_join reads it as an int.
    let routine =
        unsafe { std::mem::transmute::<C11Start, extern "C" fn(*mut c_void) -> *mut c_void>(func) };
    // SAFETY: thrd_create's contract is pthread_create's.
    thrd_result(unsafe { pthread_create(thr, ATTR_C11_THREAD, routine, arg) })
}

#[no_mangle]
pub unsafe extern "C" fn thrd_join(thr: pthread_t, res: *mut c_int) -> c_int {
    let mut result: *mut c_void = std::ptr::null_mut();
    // SAFETY: a thrd_t is a pthread_t; `result` lives across the call.
    let err = unsafe { pthread_join(thr, &mut result) };
    if err == 0 && !res.is_null() {
        // SAFETY: the caller's pointer, as glibc writes it: the thread's
        // int result, returned where a pointer would be.
        unsafe { *res = result as usize as c_int };
    }
    thrd_result(err)
}

#[no_mangle]
pub unsafe extern "C" fn mtx_lock(m: *mut pthread_mutex_t) -> c_int {
    // SAFETY: an mtx_t is a pthread_mutex_t (glibc's layout).
    thrd_result(unsafe { pthread_mutex_lock(m) })
}

#[no_mangle]
pub unsafe extern "C" fn mtx_trylock(m: *mut pthread_mutex_t) -> c_int {
    // SAFETY: as for mtx_lock.
    thrd_result(unsafe { pthread_mutex_trylock(m) })
}

#[no_mangle]
pub unsafe extern "C" fn mtx_timedlock(m: *mut pthread_mutex_t, at: *const timespec) -> c_int {
    // SAFETY: as for mtx_lock.
    thrd_result(unsafe { pthread_mutex_timedlock(m, at) })
}

#[no_mangle]
pub unsafe extern "C" fn cnd_wait(c: *mut pthread_cond_t, m: *mut pthread_mutex_t) -> c_int {
    // SAFETY: a cnd_t is a pthread_cond_t, an mtx_t a pthread_mutex_t.
    thrd_result(unsafe { pthread_cond_wait(c, m) })
}

#[no_mangle]
pub unsafe extern "C" fn cnd_timedwait(
    c: *mut pthread_cond_t,
    m: *mut pthread_mutex_t,
    at: *const timespec,
) -> c_int {
    // SAFETY: as for cnd_wait.
    thrd_result(unsafe { pthread_cond_timedwait(c, m, at) })
}
