//! The system calls the shim and the tracer make on the sync log
//! themselves: with the `syscall` instruction, never through libc.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// A system call made with the `syscall` instruction itself, not libc's
/// `syscall()`: librrc_shim.so interposes that function (programs make
/// their futex calls through it), and its own calls must not come back
/// into the interposer.
///
/// # Safety
/// The arguments must be valid for system call `nr`.
#[inline]
pub unsafe fn raw_syscall(nr: i64, args: [u64; 6]) -> i64 {
    let ret: i64;
    // SAFETY: the caller vouches for the arguments; the instruction
    // clobbers only rcx and r11 besides rax.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") nr => ret,
            in("rdi") args[0],
            in("rsi") args[1],
            in("rdx") args[2],
            in("r10") args[3],
            in("r8") args[4],
            in("r9") args[5],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// Blocks while `*word == expected`, up to `timeout`. Shared (not
/// private) futex: the word may be in memory mapped by several processes.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let tsp = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: word is a valid, aligned u32 and tsp a valid timespec or
    // null for the duration of the call.
    unsafe {
        raw_syscall(
            libc::SYS_futex,
            [
                word.as_ptr() as u64,
                libc::FUTEX_WAIT as u64,
                u64::from(expected),
                tsp as u64,
                0,
                0,
            ],
        );
    }
}

pub fn futex_wake(word: &AtomicU32, n: i32) {
    // SAFETY: word is a valid, aligned u32 for the duration of the call.
    unsafe {
        raw_syscall(
            libc::SYS_futex,
            [
                word.as_ptr() as u64,
                libc::FUTEX_WAKE as u64,
                n as u64,
                0,
                0,
                0,
            ],
        );
    }
}
