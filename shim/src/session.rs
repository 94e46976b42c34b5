//! Attaching to the tracer's sync log, and who the calling thread is in it.

use std::cell::{Cell, UnsafeCell};
use std::ffi::{c_int, CStr};
use std::mem::MaybeUninit;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

use rrc_synclog::{SharedSyncLog, MODE_RECORD, MODE_REPLAY, SHM_FD_ENV};

/// `SHM_FD_ENV` as a C string, for getenv.
const SHM_FD_ENV_C: &CStr = c"RRC_SHM_FD";
const _: () = assert!(
    bytes_equal(SHM_FD_ENV_C.to_bytes(), SHM_FD_ENV.as_bytes()),
    "SHM_FD_ENV_C must spell rrc_synclog::SHM_FD_ENV"
);

const fn bytes_equal(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// What the shim does with the operations of this process.
#[derive(Clone, Copy)]
pub enum Session {
    Record(&'static SharedSyncLog),
    Replay(&'static SharedSyncLog),
}

// ATTACH_STATE moves UNATTACHED -> ATTACHING -> one of the final three, once.
const UNATTACHED: u8 = 0;
const ATTACHING: u8 = 1;
const PASS_THROUGH: u8 = 2;
const RECORDING: u8 = 3;
const REPLAYING: u8 = 4;

static ATTACH_STATE: AtomicU8 = AtomicU8::new(UNATTACHED);

/// The program is serialised (see `rrc_synclog::ShmHeader::serial`).
static SERIAL: AtomicBool = AtomicBool::new(false);

/// Whether the program is serialised: the shim then orders nothing, and
/// each new thread makes a syscall before its own code runs (see
/// `threads`), where the tracer gives it its turn.
pub fn serial() -> bool {
    SERIAL.load(Ordering::Relaxed)
}

/// The mapping, kept for the life of the process (never unmapped).
struct AttachedLog(UnsafeCell<MaybeUninit<SharedSyncLog>>);

// SAFETY: written once, by the thread that holds ATTACHING, before it
// publishes RECORDING or REPLAYING with a Release store; read only after an
// Acquire load of one of those states. SharedSyncLog itself is Sync.
unsafe impl Sync for AttachedLog {}

static ATTACHED_LOG: AttachedLog = AttachedLog(UnsafeCell::new(MaybeUninit::uninit()));

thread_local! {
    /// Set while this thread attaches, so that a re-entry (a signal
    /// handler doing a sync op) passes through instead of waiting on itself.
    static ATTACHING_HERE: Cell<bool> = const { Cell::new(false) };
}

/// Attaches at load time, while the process is normally single-threaded,
/// so the attach syscalls happen at the same point in record and replay.
#[used]
#[link_section = ".init_array"]
static ATTACH_AT_LOAD: extern "C" fn() = attach_at_load;

extern "C" fn attach_at_load() {
    identify_now();
    if current().is_some() {
        crate::real::resolve_all();
        crate::stdio::flush_at_exit_in_order();
    }
}

/// Resolves the calling thread's identity now, at a point that is the same
/// in record and replay (load, thread start, fork), rather than at its
/// first sync operation: futex calls make that point depend on races (see
/// `futex`), and the lookup's gettid is a replayed syscall. A thread the
/// tracer has not registered stays unresolved and looks again later.
pub fn identify_now() {
    let (Some(Session::Record(log)) | Some(Session::Replay(log))) = current() else {
        return;
    };
    let _ = THREAD_IDENTITY.try_with(|cell| {
        if matches!(cell.get(), ThreadIdentity::Unresolved) {
            if let registered @ ThreadIdentity::Registered(_) = resolve_identity(log) {
                cell.set(registered);
            }
        }
    });
}

/// The session of this process; None when the shim is a pass-through.
#[inline]
pub fn current() -> Option<Session> {
    match ATTACH_STATE.load(Ordering::Acquire) {
        PASS_THROUGH => None,
        RECORDING => Some(Session::Record(attached_log())),
        REPLAYING => Some(Session::Replay(attached_log())),
        _ => attach_slow(),
    }
}

/// Only called once ATTACH_STATE was seen (Acquire) as RECORDING or REPLAYING.
#[inline]
fn attached_log() -> &'static SharedSyncLog {
    // SAFETY: the caller saw a final state that is stored only after
    // ATTACHED_LOG was initialised; it is never written or dropped again.
    unsafe { (*ATTACHED_LOG.0.get()).assume_init_ref() }
}

fn session_for(state: u8) -> Option<Session> {
    match state {
        RECORDING => Some(Session::Record(attached_log())),
        REPLAYING => Some(Session::Replay(attached_log())),
        _ => None,
    }
}

#[cold]
fn attach_slow() -> Option<Session> {
    match ATTACH_STATE.compare_exchange(UNATTACHED, ATTACHING, Ordering::Acquire, Ordering::Acquire)
    {
        Ok(_) => {
            // Usually runs in the constructor: errno must still read 0 in main.
            let _errno = ErrnoGuard::save();
            let _ = ATTACHING_HERE.try_with(|here| here.set(true));
            let state = attach_from_environment();
            ATTACH_STATE.store(state, Ordering::Release);
            let _ = ATTACHING_HERE.try_with(|here| here.set(false));
            session_for(state)
        }
        Err(ATTACHING) => {
            if ATTACHING_HERE.try_with(Cell::get).unwrap_or(true) {
                return None;
            }
            // Attaching is a getenv, an fstat and an mmap: wait it out.
            loop {
                std::hint::spin_loop();
                let state = ATTACH_STATE.load(Ordering::Acquire);
                if state != ATTACHING {
                    return session_for(state);
                }
            }
        }
        Err(state) => session_for(state),
    }
}

/// Runs with ATTACH_STATE == ATTACHING held by this thread.
fn attach_from_environment() -> u8 {
    let Some(fd) = shm_fd_from_environment() else {
        return PASS_THROUGH;
    };
    // SAFETY: attach checks the size, magic and version of whatever `fd`
    // is before trusting the mapping, and fails on anything unmappable.
    let Some(log) = (unsafe { SharedSyncLog::attach(fd) }) else {
        return PASS_THROUGH;
    };
    let state = match log.mode() {
        MODE_RECORD => RECORDING,
        MODE_REPLAY => REPLAYING,
        _ => return PASS_THROUGH, // drops (unmaps) the log
    };
    if log.serial() {
        // One thread at a time runs, in an order the tracer records and
        // replays: the shim orders nothing itself.
        SERIAL.store(true, Ordering::Relaxed);
        return PASS_THROUGH;
    }
    // Record and replay alike, so that both have the same mappings.
    crate::fast::prepare(&log, state == RECORDING);
    // SAFETY: this thread holds ATTACHING, so nobody else touches the slot
    // until the state is published; it is written exactly once.
    unsafe { (*ATTACHED_LOG.0.get()).write(log) };
    // The fd stays open: an exec'd image re-attaches through it.
    // SAFETY: registers a handler that only resets a thread-local.
    unsafe { libc::pthread_atfork(None, None, Some(forget_identity_in_child)) };
    state
}

fn shm_fd_from_environment() -> Option<RawFd> {
    // SAFETY: the name is NUL-terminated; getenv neither allocates nor locks.
    let value = unsafe { libc::getenv(SHM_FD_ENV_C.as_ptr()) };
    if value.is_null() {
        return None;
    }
    // SAFETY: getenv returned a NUL-terminated string in the environment.
    parse_fd(unsafe { CStr::from_ptr(value) }.to_bytes())
}

/// A non-negative decimal descriptor number; nothing else is accepted.
fn parse_fd(text: &[u8]) -> Option<RawFd> {
    if text.is_empty() {
        return None;
    }
    let mut fd: RawFd = 0;
    for &byte in text {
        if !byte.is_ascii_digit() {
            return None;
        }
        fd = fd.checked_mul(10)?.checked_add(RawFd::from(byte - b'0'))?;
    }
    Some(fd)
}

/// A thread's place in the sync log, as registered by the tracer.
#[derive(Clone, Copy, Debug)]
pub struct LogicalThread {
    pub slot: u32,
    pub process: u32,
}

/// A thread the tracer did not register; `tid` is -1 when unknown.
#[derive(Clone, Copy, Debug)]
pub struct UnregisteredThread {
    pub tid: i32,
}

#[derive(Clone, Copy)]
enum ThreadIdentity {
    Unresolved,
    Registered(LogicalThread),
    Unregistered(UnregisteredThread),
}

thread_local! {
    static THREAD_IDENTITY: Cell<ThreadIdentity> = const { Cell::new(ThreadIdentity::Unresolved) };
}

/// Who the calling thread is in the log. Resolved at the thread's first
/// sync op with its only gettid call: rrc replays that syscall, so record
/// and replay must make it at the same point.
#[inline]
pub fn this_thread(log: &SharedSyncLog) -> Result<LogicalThread, UnregisteredThread> {
    THREAD_IDENTITY
        .try_with(|cell| {
            let identity = match cell.get() {
                ThreadIdentity::Unresolved => {
                    let resolved = resolve_identity(log);
                    cell.set(resolved);
                    resolved
                }
                known => known,
            };
            match identity {
                ThreadIdentity::Registered(thread) => Ok(thread),
                ThreadIdentity::Unregistered(thread) => Err(thread),
                ThreadIdentity::Unresolved => Err(UnregisteredThread { tid: -1 }),
            }
        })
        .unwrap_or(Err(UnregisteredThread { tid: -1 }))
}

/// The calling thread, if it is already known: never looks it up (the
/// lookup's gettid is a replayed syscall, and the fast path must not add
/// one where replay, which does not buffer, would not make it).
#[inline]
pub fn known_thread() -> Option<LogicalThread> {
    THREAD_IDENTITY
        .try_with(|cell| match cell.get() {
            ThreadIdentity::Registered(thread) => Some(thread),
            _ => None,
        })
        .ok()
        .flatten()
}

/// Replay: the calling thread's ring, if the thread is known.
pub fn replay_ring() -> Option<&'static rrc_synclog::SyncRing> {
    let Some(Session::Replay(log)) = current() else {
        return None;
    };
    known_thread().and_then(|t| log.ring(t.slot))
}

#[cold]
fn resolve_identity(log: &SharedSyncLog) -> ThreadIdentity {
    // SAFETY: gettid takes no arguments and cannot fail.
    let tid = unsafe { rrc_synclog::raw_syscall(libc::SYS_gettid, [0; 6]) } as i32;
    match log.lookup_thread(tid) {
        Some((slot, process)) if log.ring(slot).is_some() => {
            ThreadIdentity::Registered(LogicalThread { slot, process })
        }
        _ => ThreadIdentity::Unregistered(UnregisteredThread { tid }),
    }
}

/// The forked child's only thread is a new thread of a new process: it
/// must look itself up again (the tracer registers it under its own tid).
unsafe extern "C" fn forget_identity_in_child() {
    let _ = THREAD_IDENTITY.try_with(|cell| cell.set(ThreadIdentity::Unresolved));
    identify_now();
}

/// Operations that unregistered threads did while recording.
static UNRECORDED_OPS: AtomicU64 = AtomicU64::new(0);

/// Counts an operation that was passed through unrecorded (off the hot
/// path: only unregistered threads get here).
pub fn note_unrecorded() {
    UNRECORDED_OPS.fetch_add(1, Ordering::Relaxed);
}

pub fn unrecorded_ops() -> u64 {
    UNRECORDED_OPS.load(Ordering::Relaxed)
}

/// This thread's errno.
pub fn errno() -> c_int {
    // SAFETY: __errno_location returns this thread's errno slot, valid for
    // the life of the thread.
    unsafe { *libc::__errno_location() }
}

pub fn set_errno(value: c_int) {
    // SAFETY: as in errno().
    unsafe { *libc::__errno_location() = value };
}

/// Restores errno on drop, so the shim's own futex calls leave the
/// program's errno as it would be without the shim.
pub struct ErrnoGuard(c_int);

impl ErrnoGuard {
    pub fn save() -> ErrnoGuard {
        ErrnoGuard(errno())
    }
}

impl Drop for ErrnoGuard {
    fn drop(&mut self) {
        set_errno(self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::parse_fd;

    #[test]
    fn fd_numbers_parse_strictly() {
        assert_eq!(parse_fd(b"1000"), Some(1000));
        assert_eq!(parse_fd(b"0"), Some(0));
        assert_eq!(parse_fd(b""), None);
        assert_eq!(parse_fd(b"-1"), None);
        assert_eq!(parse_fd(b"12a"), None);
        assert_eq!(parse_fd(b" 3"), None);
        assert_eq!(parse_fd(b"99999999999"), None);
    }
}
