//! Which descriptors are stdout and stderr or copies of them: writes to
//! them are not buffered but trap, so that the tracer makes and stamps
//! each one in a single step and the trace has the program's output in
//! the order it came out (two threads that buffer writes to one pipe may
//! be stamped in the other order). fds 1 and 2 count by number, whatever
//! they are; a copy made with `dup`, `dup2`, `dup3` or `fcntl`'s
//! `F_DUPFD`/`F_DUPFD_CLOEXEC` of one of them counts too (not one made
//! with a raw syscall, or inherited across `execve`: its writes are
//! buffered, and ordered by their stamps). A copy's bit is not cleared at
//! `close`: a later descriptor with its number traps for nothing, which
//! is slower, never wrong.

use std::sync::atomic::{AtomicU64, Ordering};

use libc::c_int;

/// Descriptors below this are tracked.
const TRACKED: usize = 1024;

/// One bit per descriptor: a copy of stdout or stderr. Per process (a
/// forked child inherits its parent's copies and this with them).
static COPIES: [AtomicU64; TRACKED / 64] = [const { AtomicU64::new(0) }; TRACKED / 64];

/// Whether writes to `fd` are the program's output on stdout or stderr.
pub fn is_std(fd: c_int) -> bool {
    if fd == 1 || fd == 2 {
        return true;
    }
    match usize::try_from(fd) {
        Ok(i) if i < TRACKED => COPIES[i / 64].load(Ordering::Relaxed) & (1 << (i % 64)) != 0,
        _ => false,
    }
}

/// `new` is now a copy of `old` (a failed call, `new` < 0, changes
/// nothing).
fn copied(old: c_int, new: c_int) {
    let Ok(i) = usize::try_from(new) else {
        return;
    };
    if i >= TRACKED {
        return;
    }
    let bit = 1u64 << (i % 64);
    if is_std(old) {
        COPIES[i / 64].fetch_or(bit, Ordering::Relaxed);
    } else {
        COPIES[i / 64].fetch_and(!bit, Ordering::Relaxed);
    }
}

#[no_mangle]
pub extern "C" fn dup(old: c_int) -> c_int {
    // SAFETY: dup takes and returns descriptors only.
    let new = crate::real::dup().map_or(-1, |f| unsafe { f(old) });
    copied(old, new);
    new
}

#[no_mangle]
pub extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    // SAFETY: as for dup.
    let r = crate::real::dup2().map_or(-1, |f| unsafe { f(old, new) });
    copied(old, r);
    r
}

#[no_mangle]
pub extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    // SAFETY: as for dup.
    let r = crate::real::dup3().map_or(-1, |f| unsafe { f(old, new, flags) });
    copied(old, r);
    r
}

/// fcntl's and fcntl64's type (variadic in C: see `real::fcntl`).
type Fcntl = unsafe extern "C" fn(c_int, c_int, libc::c_ulong) -> c_int;

/// Makes the call through `real`, noting the copies `F_DUPFD` and
/// `F_DUPFD_CLOEXEC` make.
///
/// # Safety
/// fcntl's own contract: `arg` is what `cmd` takes (a pointer to the
/// right structure for the commands that take one).
unsafe fn fcntl_through(real: Option<Fcntl>, fd: c_int, cmd: c_int, arg: libc::c_ulong) -> c_int {
    // SAFETY: the caller's contract, passed on as it came.
    let r = real.map_or(-1, |f| unsafe { f(fd, cmd, arg) });
    if cmd == libc::F_DUPFD || cmd == libc::F_DUPFD_CLOEXEC {
        copied(fd, r);
    }
    r
}

/// # Safety
/// As for [`fcntl_through`].
#[no_mangle]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: libc::c_ulong) -> c_int {
    // SAFETY: the caller's contract.
    unsafe { fcntl_through(crate::real::fcntl(), fd, cmd, arg) }
}

/// glibc's name for the same call with 64-bit locks.
///
/// # Safety
/// As for [`fcntl_through`].
#[no_mangle]
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: libc::c_ulong) -> c_int {
    // SAFETY: the caller's contract.
    unsafe { fcntl_through(crate::real::fcntl64(), fd, cmd, arg) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_of_stdout_count_and_a_copy_of_something_else_over_one_does_not() {
        assert!(is_std(1) && is_std(2) && !is_std(0) && !is_std(-1));
        copied(1, 40);
        assert!(is_std(40));
        copied(40, 41);
        assert!(is_std(41), "a copy of a copy");
        copied(0, 40);
        assert!(!is_std(40), "dup2 of stdin over it");
        copied(1, -1);
        copied(1, 5000);
        assert!(!is_std(5000), "beyond the tracked range");
    }
}
