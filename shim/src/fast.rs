//! The fast path (recording; replay's side is `replay_fast`): a hot call is made from the shim's own call
//! site, which the seccomp filter lets through untrapped, and logged in
//! the thread's syscall buffer with its place in the event order, its
//! return time and the memory it read or wrote (see
//! `rrc_synclog::syscallbuf`). The tracer turns the entries into the
//! records a trapped call would have given. Replay does not buffer: the
//! same calls trap there and are replayed as any other.
//!
//! A call goes the trapped way instead when the fast path is off or not
//! ready (a library constructor that runs before ours), when the thread is
//! not known yet, inside a signal handler that interrupted a buffered call,
//! when the tracer holds a signal for the thread or a vfork child borrows
//! its stack, and when its memory would not fit in the buffer.

use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, Ordering};

use rrc_synclog::syscallbuf::{
    entry_len, EntryHead, BOUNDARY_NR, FAST_CODE, FAST_PAGE, RETURN_AT_ONCE, TRACED_SIGNAL_HELD,
};
use rrc_synclog::{raw_syscall, SharedSyncLog};

use crate::session::{self, Session};

/// The call site is mapped and the recording has the fast path on.
static READY: AtomicBool = AtomicBool::new(false);

/// The most memory one buffered call may snapshot; larger calls trap.
pub const MAX_SNAPSHOT: usize = 64 << 10;
/// The most memory regions one call snapshots.
pub const MAX_REGIONS: usize = 18;

/// Maps the call site's page, in record and replay alike (so that both
/// runs have the same mappings); the fast path is used only when
/// recording with it on. Its mmap and mprotect are anonymous-memory calls
/// the filter lets run untrapped, in both.
pub fn prepare(log: &SharedSyncLog, recording: bool) {
    const MAP_FIXED_NOREPLACE: i32 = 0x10_0000;
    // SAFETY: a new private anonymous page at an address nothing else may
    // be at (NOREPLACE fails rather than replace a mapping).
    let page = unsafe {
        libc::mmap(
            FAST_PAGE as *mut libc::c_void,
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    if page as u64 != FAST_PAGE {
        if page != libc::MAP_FAILED {
            // SAFETY: the page we were given elsewhere, which nothing uses.
            unsafe { libc::munmap(page, 4096) };
        }
        // Taken (an exec'd image that kept it cannot: exec drops all
        // mappings): the calls trap as usual.
        return;
    }
    // SAFETY: the page is ours, writable and 4096 bytes long.
    unsafe {
        std::ptr::copy_nonoverlapping(FAST_CODE.as_ptr(), page.cast::<u8>(), FAST_CODE.len());
    }
    // SAFETY: our page; from now on it is code only.
    let ok = unsafe { libc::mprotect(page, 4096, libc::PROT_READ | libc::PROT_EXEC) } == 0;
    if ok && recording && log.fast_path() && !log.serial() {
        READY.store(true, Ordering::Release);
    }
    crate::tsc::prepare(ok, READY.load(Ordering::Relaxed));
    if ok {
        crate::replay_fast::prepare(log, recording);
    }
}

/// A system call made from the untrapped call site.
///
/// # Safety
/// The arguments must be valid for system call `nr`, and the page must be
/// mapped (`READY`).
#[inline(always)]
pub(crate) unsafe fn site_syscall(nr: i64, args: [u64; 6]) -> i64 {
    let ret: i64;
    // SAFETY: the caller vouches for the arguments; the site is `syscall;
    // ret`, which clobbers rcx and r11 besides rax, and the call pushes a
    // return address (no `nostack`: the compiler keeps the red zone free).
    unsafe {
        std::arch::asm!(
            "call {site}",
            site = in(reg) FAST_PAGE,
            inlateout("rax") nr => ret,
            in("rdi") args[0],
            in("rsi") args[1],
            in("rdx") args[2],
            in("r10") args[3],
            in("r8") args[4],
            in("r9") args[5],
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    ret
}

pub(crate) fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let args = [
        libc::CLOCK_MONOTONIC as u64,
        &mut ts as *mut _ as u64,
        0,
        0,
        0,
        0,
    ];
    // SAFETY: `ts` is a valid timespec. Through the vDSO, or made from the
    // site (untrapped); not logged: it is rrc's own clock read.
    if unsafe { crate::tsc::vdso_call(libc::SYS_clock_gettime, &args) }.is_some() {
        return (ts.tv_sec as u64).wrapping_mul(1_000_000_000) + ts.tv_nsec as u64;
    }
    // SAFETY: as above.
    unsafe { site_syscall(libc::SYS_clock_gettime, args) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000) + ts.tv_nsec as u64
}

/// The return time a call read for the program: a successful
/// `clock_gettime(CLOCK_MONOTONIC)` read the clock our stamps read, as it
/// returned, and a second read would cost a system call (the vDSO is
/// hidden).
fn program_monotonic_ns(nr: i64, args: &[u64; 6], ret: i64) -> Option<u64> {
    if nr != libc::SYS_clock_gettime || args[0] != libc::CLOCK_MONOTONIC as u64 || ret != 0 {
        return None;
    }
    // SAFETY: the call just succeeded, so the kernel wrote a whole
    // timespec at args[1]; read it unaligned, as the program may keep it
    // anywhere.
    let ts = unsafe { std::ptr::read_unaligned(args[1] as *const libc::timespec) };
    Some((ts.tv_sec as u64).wrapping_mul(1_000_000_000) + ts.tv_nsec as u64)
}

/// The buffered calls POSIX makes cancellation points: they may block,
/// and a thread blocked in one must be cancellable there.
fn is_cancellation_point(nr: i64) -> bool {
    !RETURN_AT_ONCE.contains(&nr)
}

extern "C" {
    fn pthread_setcanceltype(kind: c_int, old: *mut c_int) -> c_int;
}

const PTHREAD_CANCEL_ASYNCHRONOUS: c_int = 1;

/// Makes `call` as glibc makes a cancellation point's system call: with
/// the thread's cancellation asynchronous for its duration. glibc's own
/// wrappers do this inline; the call made from our site instead would
/// leave a thread blocked in it deaf to `pthread_cancel` (which signals
/// only a thread that is asynchronous at the time), and a program that
/// cancels a worker waiting in `read` would never end. A cancel that was
/// already pending acts at once, as it does at glibc's wrappers' entry.
fn with_async_cancel(call: impl FnOnce() -> i64) -> i64 {
    let mut old: c_int = 0;
    // SAFETY: `old` is a valid c_int; the type is a valid constant.
    let set = unsafe { pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &mut old) } == 0;
    let ret = call();
    if set && old != PTHREAD_CANCEL_ASYNCHRONOUS {
        // SAFETY: restores the type read above; a null `old` is allowed.
        unsafe { pthread_setcanceltype(old, std::ptr::null_mut()) };
    }
    ret
}

/// Memory regions a call read or wrote, as (address, length).
#[derive(Default)]
pub struct Regions {
    list: [(u64, usize); MAX_REGIONS],
    n: usize,
}

impl Regions {
    pub fn add(&mut self, addr: u64, len: usize) {
        if self.n < MAX_REGIONS {
            self.list[self.n] = (addr, len);
            self.n += 1;
        }
    }

    fn as_slice(&self) -> &[(u64, usize)] {
        &self.list[..self.n]
    }
}

/// Makes call `nr` through the fast path and logs it; `None` when it must
/// go the trapped way (the caller then calls libc). `snapshot_at_most`
/// bounds the memory `regions` will name; `regions` names it once the
/// call has returned `ret`, with the program's memory as it is then.
///
/// # Safety
/// The arguments must be valid for system call `nr`, and every region
/// `regions` names must be readable memory of its length.
#[inline]
pub unsafe fn buffered(
    nr: i64,
    args: [u64; 6],
    snapshot_at_most: usize,
    regions: impl FnOnce(i64, &mut Regions),
) -> Option<i64> {
    // SAFETY: the caller's contract.
    unsafe { buffered_as(nr, args, args, snapshot_at_most, regions) }
}

/// [`buffered`], making the call with `made` arguments but logging it
/// with the program's `args`: a call whose result may be cut short
/// without the program telling the difference (an epoll_wait that
/// returns fewer of its ready events) is made with a bound that fits the
/// buffer. Replay compares and answers the program's own arguments.
///
/// # Safety
/// As for [`buffered`], for both argument lists.
#[inline]
pub unsafe fn buffered_as(
    nr: i64,
    args: [u64; 6],
    made: [u64; 6],
    snapshot_at_most: usize,
    regions: impl FnOnce(i64, &mut Regions),
) -> Option<i64> {
    crate::tsc::count_call();
    if !READY.load(Ordering::Relaxed) || snapshot_at_most > MAX_SNAPSHOT {
        // Replay: answered in-process if the tracer fed it.
        // SAFETY: the caller's contract covers the program's `args`.
        return unsafe { crate::replay_fast::replayed(nr, args) };
    }
    let Some(Session::Record(log)) = session::current() else {
        return None;
    };
    let thread = session::known_thread()?;
    let buf = log.syscall_buf(thread.slot)?;
    if !buf.open() {
        return None;
    }
    // Marked before the room is taken: a signal handler that runs from
    // here on makes its calls the trapped way instead of taking the same
    // room. The tracer reads the mark at a stop of ours: a signal that
    // arrives from here on is held back to the end of the call.
    buf.in_call.store(nr as u32 + 1, Ordering::SeqCst);
    let most = entry_len(std::iter::repeat_n(0, MAX_REGIONS)) + snapshot_at_most + 8 * MAX_REGIONS;
    let room = buf.room(most);
    let Some(at) = room.filter(|_| buf.go_traced.load(Ordering::SeqCst) == 0) else {
        buf.in_call.store(0, Ordering::SeqCst);
        return None;
    };
    // SAFETY: the caller vouches for the arguments; READY says the page
    // is mapped.
    let ret = if let Some(ret) = unsafe { crate::tsc::vdso_call(nr, &made) } {
        ret
    } else if is_cancellation_point(nr) {
        with_async_cancel(|| unsafe { site_syscall(nr, made) })
    } else {
        unsafe { site_syscall(nr, made) }
    };
    // As a trapped call's return waits while a fork copies memory or a
    // handler runs alone.
    log.wait_for_forks(Some(thread.slot));
    let order = log.stamp_event();
    let epoch = log.header().epoch_ns.load(Ordering::Relaxed);
    let return_ns = program_monotonic_ns(nr, &made, ret)
        .unwrap_or_else(monotonic_ns)
        .saturating_sub(epoch);
    let mut named = Regions::default();
    regions(ret, &mut named);
    let len = entry_len(named.as_slice().iter().map(|r| r.1));
    let head = EntryHead {
        len: len as u32,
        regions: named.n as u32,
        nr,
        args,
        ret,
        order,
        return_ns,
    };
    if len <= most {
        // SAFETY: only this thread writes its buffer, between `room` and
        // here; the caller vouches for the regions' memory.
        unsafe { buf.publish(at, head, named.as_slice()) };
    }
    crate::threads::other_event_logged();
    buf.in_call.store(0, Ordering::SeqCst);
    if buf.go_traced.load(Ordering::SeqCst) & TRACED_SIGNAL_HELD != 0 {
        // A signal came while we were in the call: trap once, so that the
        // tracer delivers it here, just after the call, where replay (in
        // which this call traps) delivers it too.
        // SAFETY: a call number no kernel knows, without arguments.
        unsafe { raw_syscall(BOUNDARY_NR, [0; 6]) };
    }
    Some(ret)
}

/// A raw result as libc returns it: -1 with errno set on failure.
pub fn libc_result(ret: i64) -> i64 {
    if ret < 0 && ret > -4096 {
        session::set_errno(-ret as i32);
        -1
    } else {
        ret
    }
}
