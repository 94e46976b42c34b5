//! `splice` into stdout or stderr moves only bytes that are there.
//!
//! The tracer records what a splice prints by reading, as the call
//! starts, the bytes its source holds (`model::sent`), and makes the call
//! move no more than those. A splice that waits for an empty pipe to fill
//! (Rust's `io::copy` from a child's stdout to `stdout().lock()` waits in
//! splice for each line), or that finds bytes which arrived after that
//! reading, would move bytes the trace lacks. So the shim makes the call
//! only once `poll` says the source has something, non-blocking, and makes
//! any wait in `poll` (for the source, or for room in the destination).
//! Each look, wait and try is an ordinary event, recorded and replayed. A
//! caller that asked not to wait (`SPLICE_F_NONBLOCK`, or non-blocking
//! descriptors) gets `EAGAIN` as from the kernel. Splices anywhere else
//! are left alone.

use std::ffi::{c_int, c_short, c_uint};

use libc::{loff_t, size_t, ssize_t};

use crate::fast_calls;
use crate::real;
use crate::session::{errno, set_errno};
use crate::std_dups::is_std;

#[no_mangle]
pub unsafe extern "C" fn splice(
    fd_in: c_int,
    off_in: *mut loff_t,
    fd_out: c_int,
    off_out: *mut loff_t,
    len: size_t,
    flags: c_uint,
) -> ssize_t {
    let Some(real_splice) = real::splice() else {
        return -1;
    };
    // SAFETY (each call below): the program's arguments, under splice's
    // contract, forwarded to libc.
    let call = |flags| unsafe { real_splice(fd_in, off_in, fd_out, off_out, len, flags) };
    if !is_std(fd_out) {
        return call(flags);
    }
    let caller_waits = flags & libc::SPLICE_F_NONBLOCK == 0;
    loop {
        if !ready(fd_in, libc::POLLIN, 0) {
            if !caller_waits || non_blocking(fd_in) {
                set_errno(libc::EAGAIN);
                return -1;
            }
            ready(fd_in, libc::POLLIN, -1);
            continue;
        }
        let n = call(flags | libc::SPLICE_F_NONBLOCK);
        if n >= 0 || errno() != libc::EAGAIN || !caller_waits || non_blocking(fd_out) {
            return n;
        }
        // The destination is full.
        ready(fd_out, libc::POLLOUT, -1);
    }
}

/// Whether `fd` was opened or set non-blocking (then splice does not wait).
fn non_blocking(fd: c_int) -> bool {
    // SAFETY: F_GETFL only reads the descriptor's flags.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    fl >= 0 && fl & libc::O_NONBLOCK != 0
}

/// Whether `fd` has `events` (or an error or hang-up), waiting up to
/// `timeout` ms (-1: until it does; false when a signal ends the wait).
fn ready(fd: c_int, events: c_short, timeout: c_int) -> bool {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { fast_calls::poll(&mut p, 1, timeout) > 0 }
}
