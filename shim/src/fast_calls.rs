//! The calls the fast path buffers (see `fast`), each as libc defines it
//! on x86-64: the same system call with the same arguments libc would
//! make, so that a replay, which calls libc, makes the call recorded.
//! Each names the memory rrc's syscall model reads for the call (its
//! inputs, checked in replay, and the outputs the kernel wrote), which
//! the recorder then reads through that model.
//!
//! The program's stdout and stderr (1 and 2) always trap: their writes
//! are ordered with rrc's own output, and replay prints them.

#![allow(clippy::missing_safety_doc)]

use std::ffi::{c_int, c_long, c_uint, c_void};

use libc::{clockid_t, iovec, msghdr, pollfd, size_t, sockaddr, socklen_t, ssize_t, time_t};

use crate::fast::{buffered, buffered_as, libc_result, Regions, MAX_REGIONS};
use crate::real;

/// The largest socket address rrc's model records.
const SOCKADDR_MAX: usize = 128;
/// `struct epoll_event` on x86-64 (packed).
const EPOLL_EVENT: usize = 12;
/// The most events a buffered epoll_wait asks for: small enough that a
/// buffer takes many calls between drains (each must leave room for all).
const EPOLL_MOST: usize = 1024;
/// iovecs a buffered call may have (each is a region).
const MAX_IOV: usize = MAX_REGIONS - 2;

/// An `int` argument as libc passes it to the kernel: zero-extended (a
/// descriptor of -1 is 0xffffffff in the register, which replay compares).
fn int(v: c_int) -> u64 {
    u64::from(v as u32)
}

fn std_stream(fd: c_int) -> bool {
    crate::std_dups::is_std(fd)
}

/// Returned counts as a length: 0 for an error.
fn count(ret: i64) -> usize {
    ret.max(0) as usize
}

/// The iovec array, if it is short enough to buffer, with its total length.
///
/// # Safety
/// `iov` must point at `n` iovecs (the call's own contract).
unsafe fn iovecs<'a>(iov: *const iovec, n: c_int) -> Option<(&'a [iovec], usize)> {
    let n = usize::try_from(n)
        .ok()
        .filter(|n| (1..=MAX_IOV).contains(n))?;
    if iov.is_null() {
        return None;
    }
    // SAFETY: the caller's contract: `iov` points at `n` iovecs.
    let list = unsafe { std::slice::from_raw_parts(iov, n) };
    let total = list
        .iter()
        .try_fold(0usize, |t, v| t.checked_add(v.iov_len))?;
    Some((list, total))
}

/// The iovec array and, for a read of `got` bytes, the part of each
/// buffer it filled (the model's scatter); for a write, all of each.
fn iov_regions(r: &mut Regions, list: &[iovec], got: Option<usize>) {
    r.add(list.as_ptr() as u64, std::mem::size_of_val(list));
    let mut left = got.unwrap_or(usize::MAX);
    for v in list {
        if left == 0 {
            break;
        }
        let take = v.iov_len.min(left);
        r.add(v.iov_base as u64, take);
        if got.is_some() {
            left -= take;
        }
    }
}

/// A read into one buffer, `buf` of `n` bytes (`read`, `pread64`): the
/// kernel wrote the bytes it returned.
///
/// # Safety
/// The call's own contract for `args`.
unsafe fn read_into(nr: i64, args: [u64; 6], buf: *mut c_void, n: size_t) -> Option<i64> {
    // SAFETY: the caller's contract.
    unsafe { buffered(nr, args, n, |ret, r| r.add(buf as u64, count(ret).min(n))) }
}

/// A write from one buffer, `buf` of `n` bytes (`write`, `pwrite64`), to
/// `fd` unless it is stdout or stderr: the bytes are the call's input.
///
/// # Safety
/// The call's own contract for `args`.
unsafe fn write_from(
    nr: i64,
    args: [u64; 6],
    fd: c_int,
    buf: *const c_void,
    n: size_t,
) -> Option<i64> {
    if std_stream(fd) {
        return None;
    }
    // SAFETY: the caller's contract.
    unsafe {
        buffered(nr, args, n, |ret, r| {
            let faulted = ret == -(libc::EFAULT as i64);
            r.add(buf as u64, if faulted { 0 } else { n });
        })
    }
}

#[no_mangle]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    let args = [int(fd), buf as u64, n as u64, 0, 0, 0];
    // SAFETY: the program's arguments, under read's contract.
    match unsafe { read_into(libc::SYS_read, args, buf, n) } {
        Some(ret) => libc_result(ret) as ssize_t,
        // SAFETY: forwards the program's arguments to libc.
        None => real::read().map_or(-1, |f| unsafe { f(fd, buf, n) }),
    }
}

#[no_mangle]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    let args = [int(fd), buf as u64, n as u64, 0, 0, 0];
    // SAFETY: the program's arguments, under write's contract.
    match unsafe { write_from(libc::SYS_write, args, fd, buf, n) } {
        Some(ret) => libc_result(ret) as ssize_t,
        // SAFETY: forwards the program's arguments to libc.
        None => real::write().map_or(-1, |f| unsafe { f(fd, buf, n) }),
    }
}

/// pread and pread64 (one function on x86-64).
#[no_mangle]
pub unsafe extern "C" fn pread64(fd: c_int, buf: *mut c_void, n: size_t, off: i64) -> ssize_t {
    let args = [int(fd), buf as u64, n as u64, off as u64, 0, 0];
    // SAFETY: the program's arguments, under pread's contract.
    match unsafe { read_into(libc::SYS_pread64, args, buf, n) } {
        Some(ret) => libc_result(ret) as ssize_t,
        // SAFETY: forwards the program's arguments to libc.
        None => real::pread64().map_or(-1, |f| unsafe { f(fd, buf, n, off) }),
    }
}

#[no_mangle]
pub unsafe extern "C" fn pread(fd: c_int, buf: *mut c_void, n: size_t, off: i64) -> ssize_t {
    // SAFETY: the same function under another name.
    unsafe { pread64(fd, buf, n, off) }
}

/// pwrite and pwrite64 (one function on x86-64).
#[no_mangle]
pub unsafe extern "C" fn pwrite64(fd: c_int, buf: *const c_void, n: size_t, off: i64) -> ssize_t {
    let args = [int(fd), buf as u64, n as u64, off as u64, 0, 0];
    // SAFETY: the program's arguments, under pwrite's contract.
    match unsafe { write_from(libc::SYS_pwrite64, args, fd, buf, n) } {
        Some(ret) => libc_result(ret) as ssize_t,
        // SAFETY: forwards the program's arguments to libc.
        None => real::pwrite64().map_or(-1, |f| unsafe { f(fd, buf, n, off) }),
    }
}

#[no_mangle]
pub unsafe extern "C" fn pwrite(fd: c_int, buf: *const c_void, n: size_t, off: i64) -> ssize_t {
    // SAFETY: the same function under another name.
    unsafe { pwrite64(fd, buf, n, off) }
}

#[no_mangle]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    // SAFETY: readv's contract: `iov` points at `n` iovecs.
    let fast = unsafe { iovecs(iov, n) }.and_then(|(list, total)| {
        let args = [int(fd), iov as u64, int(n), 0, 0, 0];
        let most = total + std::mem::size_of_val(list);
        // SAFETY: the program's arguments; the regions are its iovecs.
        unsafe {
            buffered(libc::SYS_readv, args, most, |ret, r| {
                iov_regions(r, list, Some(count(ret)))
            })
        }
    });
    match fast {
        Some(ret) => libc_result(ret) as ssize_t,
        // SAFETY: forwards the program's arguments to libc.
        None => real::readv().map_or(-1, |f| unsafe { f(fd, iov, n) }),
    }
}

#[no_mangle]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    let fast = if std_stream(fd) {
        None
    } else {
        // SAFETY: writev's contract: `iov` points at `n` iovecs.
        unsafe { iovecs(iov, n) }.and_then(|(list, total)| {
            let args = [int(fd), iov as u64, int(n), 0, 0, 0];
            let most = total + std::mem::size_of_val(list);
            // SAFETY: as for readv.
            unsafe {
                buffered(libc::SYS_writev, args, most, |_, r| {
                    iov_regions(r, list, None)
                })
            }
        })
    };
    match fast {
        Some(ret) => libc_result(ret) as ssize_t,
        // SAFETY: forwards the program's arguments to libc.
        None => real::writev().map_or(-1, |f| unsafe { f(fd, iov, n) }),
    }
}

/// recvfrom, and recv (which libc makes as recvfrom with no address).
unsafe fn recv_from(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    alen: *mut socklen_t,
) -> Option<i64> {
    let args = [
        int(fd),
        buf as u64,
        n as u64,
        int(flags),
        addr as u64,
        alen as u64,
    ];
    // SAFETY: the program's arguments; the address length is read only
    // after a successful call, which wrote it.
    unsafe {
        buffered(libc::SYS_recvfrom, args, n + SOCKADDR_MAX + 8, |ret, r| {
            r.add(buf as u64, count(ret).min(n));
            if ret >= 0 && !addr.is_null() && !alen.is_null() {
                let len = (*alen as usize).min(SOCKADDR_MAX);
                r.add(alen as u64, 4);
                r.add(addr as u64, len);
            }
        })
    }
}

#[no_mangle]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t {
    let null = std::ptr::null_mut();
    // SAFETY: recv's contract.
    match unsafe { recv_from(fd, buf, n, flags, null, null.cast()) } {
        Some(ret) => libc_result(ret) as ssize_t,
        // SAFETY: forwards the program's arguments to libc.
        None => real::recv().map_or(-1, |f| unsafe { f(fd, buf, n, flags) }),
    }
}

#[no_mangle]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    alen: *mut socklen_t,
) -> ssize_t {
    // SAFETY: recvfrom's contract.
    match unsafe { recv_from(fd, buf, n, flags, addr, alen) } {
        Some(ret) => libc_result(ret) as ssize_t,
        // SAFETY: forwards the program's arguments to libc.
        None => real::recvfrom().map_or(-1, |f| unsafe { f(fd, buf, n, flags, addr, alen) }),
    }
}

/// sendto, and send (which libc makes as sendto with no address).
unsafe fn send_to(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const sockaddr,
    alen: socklen_t,
) -> Option<i64> {
    if std_stream(fd) {
        return None;
    }
    let args = [
        int(fd),
        buf as u64,
        n as u64,
        int(flags),
        addr as u64,
        alen as u64,
    ];
    // SAFETY: the program's arguments; the bytes sent and the address are
    // the call's inputs.
    unsafe {
        buffered(libc::SYS_sendto, args, n + SOCKADDR_MAX, |ret, r| {
            let faulted = ret == -(libc::EFAULT as i64);
            r.add(buf as u64, if faulted { 0 } else { n });
            if !addr.is_null() && !faulted {
                r.add(addr as u64, (alen as usize).min(SOCKADDR_MAX));
            }
        })
    }
}

#[no_mangle]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t {
    // SAFETY: send's contract.
    match unsafe { send_to(fd, buf, n, flags, std::ptr::null(), 0) } {
        Some(ret) => libc_result(ret) as ssize_t,
        // SAFETY: forwards the program's arguments to libc.
        None => real::send().map_or(-1, |f| unsafe { f(fd, buf, n, flags) }),
    }
}

#[no_mangle]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const sockaddr,
    alen: socklen_t,
) -> ssize_t {
    // SAFETY: sendto's contract.
    match unsafe { send_to(fd, buf, n, flags, addr, alen) } {
        Some(ret) => libc_result(ret) as ssize_t,
        // SAFETY: forwards the program's arguments to libc.
        None => real::sendto().map_or(-1, |f| unsafe { f(fd, buf, n, flags, addr, alen) }),
    }
}

#[no_mangle]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    // Control messages (descriptors passed, credentials) trap: replay
    // acts on them.
    // SAFETY: sendmsg's contract: `msg` points at a msghdr.
    let plain = !std_stream(fd) && !msg.is_null() && unsafe { (*msg).msg_controllen } == 0;
    let fast = if plain {
        // SAFETY: as above; its iovecs under the same contract.
        unsafe { iovecs((*msg).msg_iov, (*msg).msg_iovlen as c_int) }.and_then(|(list, total)| {
            let args = [int(fd), msg as u64, int(flags), 0, 0, 0];
            let head = std::mem::size_of::<msghdr>();
            let most = total + std::mem::size_of_val(list) + head;
            // SAFETY: the program's arguments; the regions are its message.
            unsafe {
                buffered(libc::SYS_sendmsg, args, most, |_, r| {
                    r.add(msg as u64, head);
                    iov_regions(r, list, None);
                })
            }
        })
    } else {
        None
    };
    match fast {
        Some(ret) => libc_result(ret) as ssize_t,
        // SAFETY: forwards the program's arguments to libc.
        None => real::sendmsg().map_or(-1, |f| unsafe { f(fd, msg, flags) }),
    }
}

/// epoll_wait and epoll_pwait: the events the kernel wrote. A program
/// may ask for more events than a buffer holds (redis asks for as many as
/// it has descriptors); the call is then made asking for fewer, which
/// epoll allows: events not returned stay ready for the next call.
unsafe fn epoll(nr: c_long, args: [u64; 6], events: *mut c_void, max: c_int) -> Option<i64> {
    let asked = usize::try_from(max).ok().filter(|m| *m > 0)?;
    let fits = asked.min(EPOLL_MOST);
    let room = fits * EPOLL_EVENT;
    let mut made = args;
    made[2] = fits as u64;
    // SAFETY: the program's arguments, under epoll_wait's contract, with
    // a smaller count of the same buffer.
    unsafe {
        buffered_as(nr, args, made, room, |ret, r| {
            r.add(events as u64, (count(ret) * EPOLL_EVENT).min(room))
        })
    }
}

#[no_mangle]
pub unsafe extern "C" fn epoll_wait(
    epfd: c_int,
    events: *mut libc::epoll_event,
    max: c_int,
    timeout: c_int,
) -> c_int {
    let args = [int(epfd), events as u64, int(max), int(timeout), 0, 0];
    // SAFETY: epoll_wait's contract.
    match unsafe { epoll(libc::SYS_epoll_wait, args, events.cast(), max) } {
        Some(ret) => libc_result(ret) as c_int,
        // SAFETY: forwards the program's arguments to libc.
        None => real::epoll_wait().map_or(-1, |f| unsafe { f(epfd, events, max, timeout) }),
    }
}

#[no_mangle]
pub unsafe extern "C" fn epoll_pwait(
    epfd: c_int,
    events: *mut libc::epoll_event,
    max: c_int,
    timeout: c_int,
    mask: *const libc::sigset_t,
) -> c_int {
    // A signal mask changes where signals land: that call traps.
    let fast = if mask.is_null() {
        // libc passes the kernel's sigset size, 8, with the mask.
        let args = [int(epfd), events as u64, int(max), int(timeout), 0, 8];
        // SAFETY: epoll_pwait's contract.
        unsafe { epoll(libc::SYS_epoll_pwait, args, events.cast(), max) }
    } else {
        None
    };
    match fast {
        Some(ret) => libc_result(ret) as c_int,
        // SAFETY: forwards the program's arguments to libc.
        None => real::epoll_pwait().map_or(-1, |f| unsafe { f(epfd, events, max, timeout, mask) }),
    }
}

#[no_mangle]
pub unsafe extern "C" fn poll(fds: *mut pollfd, n: libc::nfds_t, timeout: c_int) -> c_int {
    let bytes = (n as usize).saturating_mul(std::mem::size_of::<pollfd>());
    let args = [fds as u64, n, int(timeout), 0, 0, 0];
    // SAFETY: the program's arguments; the kernel writes the revents of
    // all `n` entries.
    let fast = unsafe {
        buffered(libc::SYS_poll, args, bytes, |ret, r| {
            if ret >= 0 {
                r.add(fds as u64, bytes)
            }
        })
    };
    match fast {
        Some(ret) => libc_result(ret) as c_int,
        // SAFETY: forwards the program's arguments to libc.
        None => real::poll().map_or(-1, |f| unsafe { f(fds, n, timeout) }),
    }
}

#[no_mangle]
pub unsafe extern "C" fn clock_gettime(clock: clockid_t, tp: *mut libc::timespec) -> c_int {
    let args = [int(clock), tp as u64, 0, 0, 0, 0];
    // SAFETY: the program's arguments; 16 bytes written on success.
    let fast = unsafe {
        buffered(libc::SYS_clock_gettime, args, 16, |ret, r| {
            if ret == 0 {
                r.add(tp as u64, 16)
            }
        })
    };
    match fast {
        Some(ret) => libc_result(ret) as c_int,
        // SAFETY: forwards the program's arguments to libc.
        None => real::clock_gettime().map_or(-1, |f| unsafe { f(clock, tp) }),
    }
}

#[no_mangle]
pub unsafe extern "C" fn gettimeofday(tv: *mut libc::timeval, tz: *mut c_void) -> c_int {
    let args = [tv as u64, tz as u64, 0, 0, 0, 0];
    // SAFETY: the program's arguments; each non-null pointer is written.
    let fast = unsafe {
        buffered(libc::SYS_gettimeofday, args, 24, |ret, r| {
            if ret == 0 {
                r.add(tv as u64, if tv.is_null() { 0 } else { 16 });
                r.add(tz as u64, if tz.is_null() { 0 } else { 8 });
            }
        })
    };
    match fast {
        Some(ret) => libc_result(ret) as c_int,
        // SAFETY: forwards the program's arguments to libc.
        None => real::gettimeofday().map_or(-1, |f| unsafe { f(tv, tz) }),
    }
}

#[no_mangle]
pub unsafe extern "C" fn time(t: *mut time_t) -> time_t {
    let args = [t as u64, 0, 0, 0, 0, 0];
    // SAFETY: the program's argument; written when not null.
    let fast = unsafe {
        buffered(libc::SYS_time, args, 8, |_, r| {
            r.add(t as u64, if t.is_null() { 0 } else { 8 })
        })
    };
    match fast {
        Some(ret) => libc_result(ret) as time_t,
        // SAFETY: forwards the program's argument to libc.
        None => real::time().map_or(-1, |f| unsafe { f(t) }),
    }
}

/// getpid and getppid: the ids the program saw, which replay gives back.
unsafe fn process_id(nr: c_long) -> Option<libc::pid_t> {
    // SAFETY: no arguments, no memory.
    unsafe { buffered(nr, [0; 6], 0, |_, _| {}) }.map(|ret| ret as libc::pid_t)
}

#[no_mangle]
pub unsafe extern "C" fn getpid() -> libc::pid_t {
    // SAFETY: getpid's contract (none).
    match unsafe { process_id(libc::SYS_getpid) } {
        Some(pid) => pid,
        // SAFETY: forwards to libc.
        None => real::getpid().map_or(-1, |f| unsafe { f() }),
    }
}

#[no_mangle]
pub unsafe extern "C" fn getppid() -> libc::pid_t {
    // SAFETY: getppid's contract (none).
    match unsafe { process_id(libc::SYS_getppid) } {
        Some(pid) => pid,
        // SAFETY: forwards to libc.
        None => real::getppid().map_or(-1, |f| unsafe { f() }),
    }
}

// Checked once: the wrappers above assume these sizes.
const _: () = assert!(std::mem::size_of::<msghdr>() == 56);
const _: () = assert!(std::mem::size_of::<pollfd>() == 8);
const _: () = assert!(std::mem::size_of::<c_uint>() == 4);
