//! The tracer and the program on one processor while the program starts.
//!
//! Until the shim is loaded, every call the dynamic loader makes traps,
//! and each stop wakes the tracer on another processor. In a VM a
//! processor left idle between two such stops is woken through the host,
//! which costs about 140 µs a stop until the host learns to poll
//! (BENCHMARKS.md): `rrc-record -- /bin/true` took 9 ms for its 38 calls.
//! On one processor the stop and the wake-up are a local switch.
//!
//! The pin ends before the program's own code runs: at the shim's first
//! call (its look at the sync log's descriptor, made from its constructor
//! before the program's `main`), or, for a program without the shim (a
//! static one), at the first call that creates a task, asks about
//! processors (`clone`, `fork`, `sched_getaffinity`, ...) or opens a file
//! under `/proc` or `/sys` (where the mask shows), or after
//! [`PINNED_STOPS`] stops, whichever comes first. The program's mask is
//! then the tracer's own from before, as it would have inherited it.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::sync::Mutex;

use nix::unistd::Pid;

/// Seccomp stops the program may make pinned: a dynamic loader's start
/// (about 40), the shim's set-up and a program's first calls.
const PINNED_STOPS: u32 = 128;

static ACTIVE: AtomicBool = AtomicBool::new(false);
static TRACEE: AtomicI32 = AtomicI32::new(0);
static STOPS: AtomicU32 = AtomicU32::new(0);
/// The tracer thread's mask before the pin.
static ORIGINAL: Mutex<Option<libc::cpu_set_t>> = Mutex::new(None);

/// Pins the calling thread (the tracer, about to fork the program, which
/// inherits the pin) to the processor it runs on. Does nothing when the
/// machine has one processor or the mask cannot be read or set, or when
/// `RRC_NO_START_PIN` is set.
pub(crate) fn pin_for_start() {
    if std::env::var_os("RRC_NO_START_PIN").is_some() {
        return;
    }
    let Some(original) = own_mask() else {
        return;
    };
    let Some(one) = this_processor(&original) else {
        return;
    };
    // SAFETY: sched_setaffinity reads a valid mask of its size.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one) } != 0 {
        return;
    }
    if let Ok(mut o) = ORIGINAL.lock() {
        *o = Some(original);
    }
    STOPS.store(0, Ordering::Relaxed);
    ACTIVE.store(true, Ordering::Release);
}

/// The calling thread's mask, if it can run on two processors or more.
pub(crate) fn own_mask() -> Option<libc::cpu_set_t> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity writes at most
    // its size.
    unsafe {
        let mut mask: libc::cpu_set_t = std::mem::zeroed();
        let size = std::mem::size_of::<libc::cpu_set_t>();
        (libc::sched_getaffinity(0, size, &mut mask) == 0 && libc::CPU_COUNT(&mask) >= 2)
            .then_some(mask)
    }
}

/// A mask of the one processor the caller runs on, if `original` has it.
pub(crate) fn this_processor(original: &libc::cpu_set_t) -> Option<libc::cpu_set_t> {
    // SAFETY: sched_getcpu has no preconditions; cpu_set_t is plain data,
    // and a processor number the kernel gives is within its range.
    unsafe {
        let cpu = libc::sched_getcpu();
        if cpu < 0 || !libc::CPU_ISSET(cpu as usize, original) {
            return None;
        }
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu as usize, &mut one);
        Some(one)
    }
}

/// The forked program, whose mask `release` restores.
pub(crate) fn set_tracee(pid: Pid) {
    TRACEE.store(pid.as_raw(), Ordering::Release);
}

/// Whether the pin is still on (the driver then looks at each stop).
pub(crate) fn active() -> bool {
    ACTIVE.load(Ordering::Acquire)
}

/// A seccomp stop of `pid` for call `nr` with `args` (`path`: an open's,
/// as the driver read it): ends the pin before a call that would see or
/// spread it, or once the start is over. At the shim's first call the
/// loader is done: the pin is handed over (the program's mask from before
/// it is returned) for the colocation to keep while the program's first
/// calls trap, and to end as it ends its own (each of those calls would
/// otherwise wake an idle processor through the host: 350–440 µs a call).
pub(crate) fn at_seccomp_stop(
    pid: Pid,
    nr: i64,
    args: &[u64; 6],
    path: Option<&[u8]>,
) -> Option<libc::cpu_set_t> {
    let stops = STOPS.fetch_add(1, Ordering::Relaxed) + 1;
    if shim_starts(nr, args) && TRACEE.load(Ordering::Acquire) == pid.as_raw() {
        return hand_over();
    }
    if ends_pin(nr, args) || opens_kernel_view(pid, nr, args, path) || stops >= PINNED_STOPS {
        release();
    }
    None
}

/// The shim's look at the sync log's descriptor, from its constructor.
fn shim_starts(nr: i64, args: &[u64; 6]) -> bool {
    nr == libc::SYS_newfstatat && args[0] == rrc_synclog::SHM_FD as u64
}

/// Ends the pin without unpinning anyone: the program's mask, for
/// whoever keeps the pin on.
fn hand_over() -> Option<libc::cpu_set_t> {
    if !ACTIVE.swap(false, Ordering::AcqRel) {
        return None;
    }
    TRACEE.store(0, Ordering::Release);
    ORIGINAL.lock().ok().and_then(|mut o| o.take())
}

/// Whether the call opens a file under `/proc` or `/sys` (a path that
/// cannot be read counts as one). `path`: an `open`'s or `openat`'s, read
/// already; `openat2`'s (rare) is read here.
pub(crate) fn opens_kernel_view(pid: Pid, nr: i64, args: &[u64; 6], path: Option<&[u8]>) -> bool {
    let kernel_view = |p: &[u8]| p.is_empty() || p.starts_with(b"/proc") || p.starts_with(b"/sys");
    match nr {
        libc::SYS_open | libc::SYS_openat => path.is_none_or(kernel_view),
        libc::SYS_openat2 => crate::Tracee::new(pid)
            .read_cstring(args[1], 64)
            .map_or(true, |p| kernel_view(&p)),
        _ => false,
    }
}

/// The shim's first call, calls that create tasks (which would inherit
/// the pin), and calls that read or set a mask or processor.
pub(crate) fn ends_pin(nr: i64, args: &[u64; 6]) -> bool {
    shim_starts(nr, args)
        || matches!(
            nr,
            libc::SYS_clone
                | libc::SYS_clone3
                | libc::SYS_fork
                | libc::SYS_vfork
                | libc::SYS_sched_getaffinity
                | libc::SYS_sched_setaffinity
                | libc::SYS_getcpu
        )
}

/// Gives the program and the tracer back the tracer's mask from before
/// the pin. Idempotent.
pub(crate) fn release() {
    if !ACTIVE.swap(false, Ordering::AcqRel) {
        return;
    }
    let Some(original) = ORIGINAL.lock().ok().and_then(|mut o| o.take()) else {
        return;
    };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    let tracee = TRACEE.swap(0, Ordering::AcqRel);
    // SAFETY: `original` is a valid mask read by sched_getaffinity; a
    // tracee that has ended makes the call fail, which is harmless.
    unsafe {
        if tracee > 0 {
            libc::sched_setaffinity(tracee, size, &original);
        }
        libc::sched_setaffinity(0, size, &original);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shim_starting_and_calls_that_create_tasks_or_ask_about_processors_end_the_pin() {
        let none = [0; 6];
        for nr in [
            libc::SYS_clone3,
            libc::SYS_vfork,
            libc::SYS_sched_getaffinity,
        ] {
            assert!(ends_pin(nr, &none));
        }
        for nr in [
            libc::SYS_openat,
            libc::SYS_mmap,
            libc::SYS_read,
            libc::SYS_execve,
        ] {
            assert!(!ends_pin(nr, &none));
        }
        let shim = [rrc_synclog::SHM_FD as u64, 0, 0, 0, 0, 0];
        assert!(ends_pin(libc::SYS_newfstatat, &shim));
        assert!(!ends_pin(libc::SYS_newfstatat, &[3, 0, 0, 0, 0, 0]));
    }

    #[test]
    fn an_open_under_proc_or_sys_or_of_a_path_not_read_is_a_kernel_view() {
        let pid = Pid::from_raw(1);
        let none = [0; 6];
        let open = |path: Option<&[u8]>| opens_kernel_view(pid, libc::SYS_openat, &none, path);
        assert!(open(Some(b"/proc/self/status")));
        assert!(open(Some(b"/sys/devices/system/cpu/online")));
        assert!(!open(Some(b"/etc/hostname")));
        assert!(open(None), "a path that could not be read");
        assert!(open(Some(b"")), "a path that could not be read");
        assert!(!opens_kernel_view(pid, libc::SYS_close, &none, None));
    }
}
