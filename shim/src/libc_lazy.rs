//! State glibc loads on first use and keeps for the whole process, as
//! sync objects: the name services (users, groups, hosts: `nsswitch.conf`,
//! the nscd socket it tries, the resolver's files), the time zone
//! (`/etc/localtime`; `syslog` reads it too, and connects to the log
//! socket on first use) and the message catalogs error strings come from
//! (`libc.mo`, in a locale other than C). Which thread loads them, and whether a thread still
//! tries nscd after another found it missing, is decided by glibc's own
//! locks and flags, which no interposition sees: threads that look up a
//! user or a host, or format local time, concurrently make those calls in
//! another thread in replay. Each call here is made whole in the recorded
//! order (op `LIBC_STATE`, one object per state), for real, as `rand` is
//! (`libc_state`): the calls of one state no longer overlap, which costs
//! little next to the files and sockets they read.

use std::cell::Cell;
use std::ffi::{c_char, c_int};
use std::sync::atomic::AtomicU32;

use libc::{addrinfo, gid_t, group, hostent, passwd, sockaddr, socklen_t, time_t, tm, uid_t};
use rrc_synclog::ops;

use crate::order;
use crate::real;

/// The states, as objects (addresses of these statics, the same in record
/// and replay).
static NAME_SERVICES: AtomicU32 = AtomicU32::new(0);
static TIME_ZONE: AtomicU32 = AtomicU32::new(0);
static MESSAGES: AtomicU32 = AtomicU32::new(0);

thread_local! {
    /// In one of these calls: one it makes itself (a name-service module
    /// that looks a user up) goes straight to libc, not into the lock its
    /// caller holds.
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

/// Takes `state` at its recorded turn, unless this thread is in one of
/// these calls already (or a recording had it not taken): true when
/// taken, and [`leave`] must follow. The real call is made either way.
fn enter(state: &'static AtomicU32) -> bool {
    if INSIDE.with(|i| i.replace(true)) {
        return false;
    }
    let taken = order::enter_recorded_order(ops::LIBC_STATE, state);
    if !taken {
        INSIDE.with(|i| i.set(false));
    }
    taken
}

/// Lets go what [`enter`] took.
fn leave(state: &'static AtomicU32) {
    order::leave_recorded_order(state);
    INSIDE.with(|i| i.set(false));
}

/// Makes `call` whole at `state`'s recorded turn.
fn in_recorded_order<T>(state: &'static AtomicU32, call: impl FnOnce() -> T) -> T {
    let taken = enter(state);
    let out = call();
    if taken {
        leave(state);
    }
    out
}

/// [`enter`] on the time-zone state, for the C wrappers of `syslog` and
/// its kind (variadic, so C; glibc formats the local time inside): 1 when
/// taken, and `rrc_time_zone_leave` must follow.
#[no_mangle]
pub extern "C" fn rrc_time_zone_enter() -> c_int {
    c_int::from(enter(&TIME_ZONE))
}

/// [`leave`] on the time-zone state.
#[no_mangle]
pub extern "C" fn rrc_time_zone_leave() {
    leave(&TIME_ZONE);
}

/// Defines one wrapper per function: the real call, made in the recorded
/// order of `$state`; `$failed` when libc has no such function.
macro_rules! ordered {
    ($( $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $state:ident, $failed:expr; )*) => {$(
        /// # Safety
        /// The C function's own contract.
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            // SAFETY: the program's arguments, under the function's contract.
            let real = || real::$name().map_or($failed, |f| unsafe { f($($arg),*) });
            in_recorded_order(&$state, real)
        }
    )*};
}

ordered! {
    getpwuid(uid: uid_t) -> *mut passwd = NAME_SERVICES, std::ptr::null_mut();
    getpwuid_r(
        uid: uid_t, pwd: *mut passwd, buf: *mut c_char, len: usize, result: *mut *mut passwd
    ) -> c_int = NAME_SERVICES, libc::ENOSYS;
    getpwnam(name: *const c_char) -> *mut passwd = NAME_SERVICES, std::ptr::null_mut();
    getpwnam_r(
        name: *const c_char, pwd: *mut passwd, buf: *mut c_char, len: usize,
        result: *mut *mut passwd
    ) -> c_int = NAME_SERVICES, libc::ENOSYS;
    getgrgid(gid: gid_t) -> *mut group = NAME_SERVICES, std::ptr::null_mut();
    getgrgid_r(
        gid: gid_t, grp: *mut group, buf: *mut c_char, len: usize, result: *mut *mut group
    ) -> c_int = NAME_SERVICES, libc::ENOSYS;
    getgrnam(name: *const c_char) -> *mut group = NAME_SERVICES, std::ptr::null_mut();
    getgrnam_r(
        name: *const c_char, grp: *mut group, buf: *mut c_char, len: usize,
        result: *mut *mut group
    ) -> c_int = NAME_SERVICES, libc::ENOSYS;
    getaddrinfo(
        node: *const c_char, service: *const c_char, hints: *const addrinfo,
        res: *mut *mut addrinfo
    ) -> c_int = NAME_SERVICES, libc::EAI_SYSTEM;
    getnameinfo(
        addr: *const sockaddr, addrlen: socklen_t, host: *mut c_char, hostlen: socklen_t,
        serv: *mut c_char, servlen: socklen_t, flags: c_int
    ) -> c_int = NAME_SERVICES, libc::EAI_SYSTEM;
    gethostbyname(name: *const c_char) -> *mut hostent = NAME_SERVICES, std::ptr::null_mut();
    gethostbyname_r(
        name: *const c_char, ret: *mut hostent, buf: *mut c_char, len: usize,
        result: *mut *mut hostent, h_errnop: *mut c_int
    ) -> c_int = NAME_SERVICES, libc::ENOSYS;
    localtime(t: *const time_t) -> *mut tm = TIME_ZONE, std::ptr::null_mut();
    localtime_r(t: *const time_t, out: *mut tm) -> *mut tm = TIME_ZONE, std::ptr::null_mut();
    mktime(t: *mut tm) -> time_t = TIME_ZONE, -1;
    tzset() -> () = TIME_ZONE, ();
    ctime(t: *const time_t) -> *mut c_char = TIME_ZONE, std::ptr::null_mut();
    ctime_r(t: *const time_t, buf: *mut c_char) -> *mut c_char = TIME_ZONE, std::ptr::null_mut();
    strerror(e: c_int) -> *mut c_char = MESSAGES, std::ptr::null_mut();
    strerror_r(e: c_int, buf: *mut c_char, len: usize) -> *mut c_char = MESSAGES, std::ptr::null_mut();
    strsignal(sig: c_int) -> *mut c_char = MESSAGES, std::ptr::null_mut();
    perror(s: *const c_char) -> () = MESSAGES, ();
}

/// The XSI `strerror_r` (what `<string.h>` gives programs built without
/// `_GNU_SOURCE`).
///
/// # Safety
/// `strerror_r`'s contract.
#[no_mangle]
pub unsafe extern "C" fn __xpg_strerror_r(e: c_int, buf: *mut c_char, len: usize) -> c_int {
    // SAFETY: the program's arguments, under the function's contract.
    let real = || real::xpg_strerror_r().map_or(libc::ENOSYS, |f| unsafe { f(e, buf, len) });
    in_recorded_order(&MESSAGES, real)
}
