//! The checked entry points `_FORTIFY_SOURCE` builds call instead of
//! `read`, `recv`, `poll` and the like (Ubuntu's gcc fortifies by
//! default): the same check glibc makes, then the shim's own wrapper, so
//! that a fortified program's hot calls are buffered too. A call that
//! fails the check goes to glibc's own entry point, which reports the
//! overflow and aborts as it would natively.

#![allow(clippy::missing_safety_doc)]

use std::ffi::{c_int, c_void};

use libc::{nfds_t, pollfd, size_t, sockaddr, socklen_t, ssize_t};

use crate::fast_calls;
use crate::real;

#[no_mangle]
pub unsafe extern "C" fn __read_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    len: size_t,
) -> ssize_t {
    if n > len {
        // SAFETY: glibc's own check, which aborts.
        return real::read_chk().map_or(-1, |f| unsafe { f(fd, buf, n, len) });
    }
    // SAFETY: read's contract, checked as glibc checks it.
    unsafe { fast_calls::read(fd, buf, n) }
}

#[no_mangle]
pub unsafe extern "C" fn __pread64_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    off: i64,
    len: size_t,
) -> ssize_t {
    if n > len {
        // SAFETY: glibc's own check, which aborts.
        return real::pread64_chk().map_or(-1, |f| unsafe { f(fd, buf, n, off, len) });
    }
    // SAFETY: pread's contract, checked as glibc checks it.
    unsafe { fast_calls::pread64(fd, buf, n, off) }
}

#[no_mangle]
pub unsafe extern "C" fn __pread_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    off: i64,
    len: size_t,
) -> ssize_t {
    // SAFETY: the same function under another name.
    unsafe { __pread64_chk(fd, buf, n, off, len) }
}

#[no_mangle]
pub unsafe extern "C" fn __recv_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    len: size_t,
    flags: c_int,
) -> ssize_t {
    if n > len {
        // SAFETY: glibc's own check, which aborts.
        return real::recv_chk().map_or(-1, |f| unsafe { f(fd, buf, n, len, flags) });
    }
    // SAFETY: recv's contract, checked as glibc checks it.
    unsafe { fast_calls::recv(fd, buf, n, flags) }
}

#[no_mangle]
pub unsafe extern "C" fn __recvfrom_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    len: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    alen: *mut socklen_t,
) -> ssize_t {
    if n > len {
        // SAFETY: glibc's own check, which aborts.
        return real::recvfrom_chk()
            .map_or(-1, |f| unsafe { f(fd, buf, n, len, flags, addr, alen) });
    }
    // SAFETY: recvfrom's contract, checked as glibc checks it.
    unsafe { fast_calls::recvfrom(fd, buf, n, flags, addr, alen) }
}

#[no_mangle]
pub unsafe extern "C" fn __poll_chk(
    fds: *mut pollfd,
    n: nfds_t,
    timeout: c_int,
    len: size_t,
) -> c_int {
    if (len / std::mem::size_of::<pollfd>()) < n as usize {
        // SAFETY: glibc's own check, which aborts.
        return real::poll_chk().map_or(-1, |f| unsafe { f(fds, n, timeout, len) });
    }
    // SAFETY: poll's contract, checked as glibc checks it.
    unsafe { fast_calls::poll(fds, n, timeout) }
}
