//! rdtsc untrapped, and clocks read through the vDSO.
//!
//! The program starts with rdtsc trapped (`PR_TSC_SIGSEGV`), so that the
//! tracer records it, and with the vDSO hidden, as its clocks run rdtsc.
//! A thread of the shim asks the tracer whether the trap may end
//! (`syscallbuf::TSC_ASK`): the tracer patches each rdtsc the process
//! has mapped into a fault of its own and answers yes (unless code it
//! cannot patch keeps the trap). Only a thread can change its own trap:
//! a thread asks once it has made `ASK_AFTER` wrapped calls, and ends it
//! from the call site (untrapped for `prctl`); threads it creates later
//! inherit that. The answer is a recorded result, and the count the same
//! in replay, so replay's shim does the same at the same point.
//!
//! Recording, the shim then reads the clocks the program asks for, and
//! its own, through the vDSO (tens of nanoseconds, not a system call), in
//! a thread whose trap has ended, until the program sets its own rdtsc
//! mode (`ShmHeader::own_tsc_mode`). Replay answers clock reads from
//! the trace and never uses the vDSO.

use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rrc_synclog::raw_syscall;
use rrc_synclog::syscallbuf::{TSC_ASK, TSC_FREE_NO_VDSO, TSC_KEEP};

use crate::session::Session;

type ClockGettime = unsafe extern "C" fn(libc::clockid_t, *mut libc::timespec) -> c_int;
type Gettimeofday = unsafe extern "C" fn(*mut libc::timeval, *mut c_void) -> c_int;
type Time = unsafe extern "C" fn(*mut libc::time_t) -> libc::time_t;

/// The vDSO's functions (0: not found, or not to be used).
static CLOCK_GETTIME: AtomicUsize = AtomicUsize::new(0);
static GETTIMEOFDAY: AtomicUsize = AtomicUsize::new(0);
static TIME: AtomicUsize = AtomicUsize::new(0);

const UNKNOWN: u8 = 0;
const FREE: u8 = 1;
const TRAPPED: u8 = 2;

thread_local! {
    /// Whether rdtsc traps in this thread (it inherited the state of the
    /// thread that created it, which may not have been ours to know).
    static THREAD_TSC: Cell<u8> = const { Cell::new(UNKNOWN) };
}

/// Calls to the functions the fast path wraps that a thread makes before
/// it asks: a thread busy with calls (a server's worker) switches with
/// other programs often, and pays for the trap at each switch; a thread
/// that makes a few keeps the trap, and the timing it had before rrc
/// patched anything, which the replay of an ordinary program's races
/// leans on (BENCHMARKS.md: Rust programs that print from threads replayed
/// less often when every thread left the trap at once).
const ASK_AFTER: u32 = 1000;

/// The call site is mapped (the shim's `prctl` goes through from it).
static SITE_OK: AtomicBool = AtomicBool::new(false);
/// Recording (the vDSO's clocks may be used).
static RECORDING: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Wrapped calls this thread made (see `ASK_AFTER`).
    static CALLS: Cell<u32> = const { Cell::new(0) };
}

/// At the shim's start, record and replay alike: notes whether the call
/// site is mapped, and asks at once if the trap had already ended (the
/// setting survives `exec`), so that a new image's code is patched or the
/// trap restored before it runs.
pub fn prepare(site_ok: bool, recording: bool) {
    SITE_OK.store(site_ok, Ordering::Relaxed);
    RECORDING.store(recording, Ordering::Relaxed);
    if site_ok && own_trap_ended() {
        ask();
    }
}

/// Counts a call to a wrapped function; the `ASK_AFTER`th asks. The same
/// count in record and replay: the program makes the same calls.
#[inline]
pub fn count_call() {
    let n = CALLS
        .try_with(|c| {
            let n = c.get().saturating_add(1);
            c.set(n);
            n
        })
        .unwrap_or(0);
    if n == ASK_AFTER {
        busy();
    }
}

#[cold]
fn busy() {
    if !SITE_OK.load(Ordering::Relaxed) || crate::session::current().is_none() {
        return;
    }
    if own_trap_ended() {
        // Created by a thread whose trap had ended.
        let _ = THREAD_TSC.try_with(|t| t.set(FREE));
        return;
    }
    ask();
}

/// Asks the tracer, and ends or restores the calling thread's trap as it
/// answers; recording, finds the vDSO's clocks once it says where it is.
fn ask() {
    let args = [
        libc::PR_SET_TSC as u64,
        libc::PR_TSC_ENABLE as u64,
        TSC_ASK,
        0,
        0,
        0,
    ];
    // SAFETY: prctl(PR_SET_TSC) with a valid mode; trapped, so the tracer
    // answers it (an untraced run just sets the mode it already has).
    let answer = unsafe { raw_syscall(libc::SYS_prctl, args) };
    let mode = match answer {
        TSC_KEEP => libc::PR_TSC_SIGSEGV,
        a if a >= TSC_FREE_NO_VDSO => libc::PR_TSC_ENABLE,
        _ => return,
    };
    let set = [libc::PR_SET_TSC as u64, mode as u64, 0, 0, 0, 0];
    // SAFETY: prctl(PR_SET_TSC) with a valid mode, from the site.
    if unsafe { crate::fast::site_syscall(libc::SYS_prctl, set) } != 0 {
        return;
    }
    let state = if mode == libc::PR_TSC_ENABLE {
        FREE
    } else {
        TRAPPED
    };
    let _ = THREAD_TSC.try_with(|t| t.set(state));
    let unfound = CLOCK_GETTIME.load(Ordering::Relaxed) == 0;
    if RECORDING.load(Ordering::Relaxed) && answer > TSC_FREE_NO_VDSO && unfound {
        // SAFETY: the tracer named the start of the vDSO's mapping, an
        // ELF image the kernel maps whole and never unmaps.
        unsafe { find_vdso_functions(answer as usize) };
    }
}

/// Whether the calling thread may run the vDSO's clocks now.
fn vdso_usable() -> bool {
    let Some(Session::Record(log)) = crate::session::current() else {
        return false;
    };
    if log.header().own_tsc_mode.load(Ordering::Relaxed) != 0 {
        return false;
    }
    THREAD_TSC
        .try_with(|t| {
            if t.get() == UNKNOWN {
                t.set(if own_trap_ended() { FREE } else { TRAPPED });
            }
            t.get() == FREE
        })
        .unwrap_or(false)
}

/// Asks the kernel whether the calling thread's rdtsc runs untrapped.
fn own_trap_ended() -> bool {
    let mut mode: c_int = 0;
    let args = [
        libc::PR_GET_TSC as u64,
        &mut mode as *mut c_int as u64,
        0,
        0,
        0,
        0,
    ];
    // SAFETY: prctl(PR_GET_TSC) writes one int to a valid pointer; from
    // the site (untrapped), which is mapped once a vDSO function is known.
    let ret = unsafe { crate::fast::site_syscall(libc::SYS_prctl, args) };
    ret == 0 && mode == libc::PR_TSC_ENABLE
}

/// Makes clock call `nr` through the vDSO, as a raw system call returns;
/// `None` when it must be a system call.
///
/// # Safety
/// The arguments must be valid for call `nr`.
pub unsafe fn vdso_call(nr: i64, args: &[u64; 6]) -> Option<i64> {
    let f = match nr {
        libc::SYS_clock_gettime if handled_clock(args[0]) => CLOCK_GETTIME.load(Ordering::Relaxed),
        libc::SYS_gettimeofday => GETTIMEOFDAY.load(Ordering::Relaxed),
        libc::SYS_time => TIME.load(Ordering::Relaxed),
        _ => return None,
    };
    if f == 0 || !vdso_usable() {
        return None;
    }
    // SAFETY: `f` is the vDSO's function for call `nr` (found by name),
    // which takes the call's arguments and returns what the call would
    // (clock_gettime and gettimeofday: 0 or -errno; time: the time).
    let ret = unsafe {
        match nr {
            libc::SYS_clock_gettime => {
                let f: ClockGettime = std::mem::transmute::<usize, ClockGettime>(f);
                i64::from(f(
                    args[0] as libc::clockid_t,
                    args[1] as *mut libc::timespec,
                ))
            }
            libc::SYS_gettimeofday => {
                let f: Gettimeofday = std::mem::transmute::<usize, Gettimeofday>(f);
                i64::from(f(args[0] as *mut libc::timeval, args[1] as *mut c_void))
            }
            _ => {
                let f: Time = std::mem::transmute::<usize, Time>(f);
                f(args[0] as *mut libc::time_t)
            }
        }
    };
    Some(ret)
}

/// Clocks the vDSO reads itself; for others it makes the system call,
/// which would trap from there.
fn handled_clock(clock: u64) -> bool {
    matches!(
        clock as libc::clockid_t,
        libc::CLOCK_REALTIME
            | libc::CLOCK_MONOTONIC
            | libc::CLOCK_MONOTONIC_RAW
            | libc::CLOCK_REALTIME_COARSE
            | libc::CLOCK_MONOTONIC_COARSE
            | libc::CLOCK_BOOTTIME
            | libc::CLOCK_TAI
    )
}

/// Finds the vDSO's clock functions by name in its dynamic symbols.
///
/// # Safety
/// `base` must be the start of the mapped vDSO image.
unsafe fn find_vdso_functions(base: usize) {
    const PT_LOAD: u32 = 1;
    const PT_DYNAMIC: u32 = 2;
    const DT_HASH: u64 = 4;
    const DT_STRTAB: u64 = 5;
    const DT_SYMTAB: u64 = 6;
    // SAFETY: reads within the vDSO's ELF header, program headers, dynamic
    // section, hash table header and symbol table, at the offsets the
    // image's own headers give; the kernel maps the image whole.
    unsafe {
        let at = |off: usize| base + off;
        let read_u16 = |a: usize| std::ptr::read_unaligned(a as *const u16);
        let read_u32 = |a: usize| std::ptr::read_unaligned(a as *const u32);
        let read_u64 = |a: usize| std::ptr::read_unaligned(a as *const u64);
        if std::slice::from_raw_parts(base as *const u8, 6) != b"\x7fELF\x02\x01" {
            return;
        }
        let phoff = read_u64(at(0x20)) as usize;
        let phentsize = usize::from(read_u16(at(0x36)));
        let phnum = usize::from(read_u16(at(0x38)));
        let (mut bias, mut dynamic) = (None, None);
        for i in 0..phnum {
            let ph = at(phoff + i * phentsize);
            let vaddr = read_u64(ph + 16) as usize;
            match read_u32(ph) {
                PT_LOAD if bias.is_none() => bias = Some(base.wrapping_sub(vaddr)),
                PT_DYNAMIC => dynamic = Some(vaddr),
                _ => {}
            }
        }
        let (Some(bias), Some(dynamic)) = (bias, dynamic) else {
            return;
        };
        let (mut hash, mut strtab, mut symtab) = (0, 0, 0);
        let mut d = bias.wrapping_add(dynamic);
        loop {
            let (tag, value) = (read_u64(d), read_u64(d + 8) as usize);
            match tag {
                0 => break,
                DT_HASH => hash = bias.wrapping_add(value),
                DT_STRTAB => strtab = bias.wrapping_add(value),
                DT_SYMTAB => symtab = bias.wrapping_add(value),
                _ => {}
            }
            d += 16;
        }
        if hash == 0 || strtab == 0 || symtab == 0 {
            return;
        }
        // DT_HASH: nbucket, nchain; nchain is the number of symbols.
        let symbols = read_u32(hash + 4) as usize;
        for i in 0..symbols {
            let sym = symtab + i * 24;
            let name = std::ffi::CStr::from_ptr((strtab + read_u32(sym) as usize) as *const _);
            let value = read_u64(sym + 8) as usize;
            if value == 0 {
                continue;
            }
            let slot = match name.to_bytes() {
                b"__vdso_clock_gettime" => &CLOCK_GETTIME,
                b"__vdso_gettimeofday" => &GETTIMEOFDAY,
                b"__vdso_time" => &TIME,
                _ => continue,
            };
            slot.store(bias.wrapping_add(value), Ordering::Relaxed);
        }
    }
}
