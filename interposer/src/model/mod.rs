//! What rrc knows about each x86-64 syscall: whether the seccomp filter
//! traps it, which memory the kernel writes (recorded, and restored during
//! replay), which program data replay compares (paths, bytes written out),
//! which arguments must match, and how replay treats it.
//!
//! All of it is declared once, one row per syscall, in `table.rs` (the
//! row type is [`SyscallRow`]); the functions here look it up.

mod bpf;
mod cmsg;
mod inputs;
mod ioctl;
mod outputs;
mod row;
mod sent;
mod table;
#[cfg(test)]
mod tests;
mod tids;

use libc::c_long;

pub use cmsg::{received_fds, scm_rights};
pub use inputs::{
    inputs, read_gather, read_inputs, read_inputs_from, sendmsg_inputs, sockaddr_meaningful_len,
    MAX_INPUT,
};
pub use ioctl::{ioctl_is_known, ioctl_output_len, ioctl_request};
pub use outputs::outputs;
pub use row::{ArgIs, Duration, Filter, Inputs, OutputFn, Outputs, Replay, SyscallRow, When};
pub use sent::{sends_from_descriptor, sends_to, sent_count_arg, sent_from_position};
pub use table::{row, rows};
pub use tids::{clone_tid_writes, TidWrites};

/// How replay handles a trapped syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayAction {
    /// Skip the syscall; inject the recorded return value and memory.
    Emulate,
    /// Let it run: it only builds process state.
    Execute,
    /// Let it run for its effect on the process itself, but give the
    /// program the recorded result: a descriptor's status flags (a
    /// placeholder may refuse a flag the recorded file took, O_DIRECT on a
    /// memfd), a limit on its own resources.
    Apply,
    /// Let it run, then check its return value and memory against the trace
    /// (descriptor creation, whose numbers must not drift; unshare and
    /// seccomp, process state that later calls depend on).
    ExecuteChecked,
    /// open/openat/creat: reopen the same unchanged file read-only, or give
    /// the program a placeholder descriptor with the recorded number.
    Open,
    /// A descriptor whose other end is outside the process (socket, accept):
    /// a placeholder with the recorded number.
    Placeholder,
    /// clone/clone3/fork/vfork: run it and map the new thread or process.
    Spawn,
    /// execve/execveat: run it.
    Exec,
    /// kill/tgkill/tkill/rt_(tg)sigqueueinfo: run it with the recorded ids
    /// mapped to live ones when they all name the program's own live
    /// processes, threads or process group; otherwise (another process,
    /// -1 for every process) emulated: nothing is sent.
    SignalSend,
    /// setpriority/sched_setaffinity naming a process (not the caller,
    /// which the filter lets through untrapped): run with the id mapped to
    /// the live one when it is one of the program's own, reporting the
    /// recorded result; otherwise emulated, so that replay never acts on
    /// a process outside the program.
    OnProcess,
    /// setpgid/setsid: process groups must exist for real (a later
    /// kill(-pgid) needs them): run with recorded ids mapped to live ones,
    /// reporting the recorded result.
    ProcessGroup,
    /// chdir/fchdir: run for real, so that relative paths the program
    /// opens later resolve as they did (replay checks that before it
    /// reopens a file); the program sees the recorded result, whether or
    /// not the directory is still there.
    ChangeDirectory,
    /// set_tid_address: run for real (the kernel clears that address and
    /// wakes a futex waiter there when the thread exits, which
    /// pthread_join and the program's own waits need); the program sees
    /// the recorded thread id it returns.
    TidAddress,
    /// exit_group: run it once the process's other threads have reached
    /// the end of their recorded events, as they had when it was recorded.
    ExitGroup,
    /// System V shared memory (shmget, shmat, shmctl(IPC_RMID)): replay
    /// makes a private segment of its own for each one the program made,
    /// attaches it at the recorded address and removes it, with recorded
    /// ids mapped to replay's; the program sees the recorded results.
    SharedMemory,
    /// Not known to rrc: replay cannot reproduce it.
    Unsupported,
}

/// A piece of tracee memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub addr: u64,
    pub len: usize,
}

/// Program data handed to a syscall that replay compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputSpec {
    Bytes(Region),
    /// NUL-terminated string (a path), read up to PATH_MAX.
    CString(u64),
    /// Gather list: `count` iovecs at `addr`, up to `limit` bytes in all.
    Iovec {
        addr: u64,
        count: u64,
        limit: u64,
    },
    /// A socket address: compared by its meaningful bytes only (padding
    /// and whatever follows a Unix path may be uninitialised).
    SockAddr(Region),
    /// Bytes a descriptor's file holds at an offset, or a pipe holds (what
    /// sendfile, copy_file_range, splice and tee send): `offset_ptr` 0
    /// means the descriptor's own position.
    FileRange {
        fd: u64,
        offset_ptr: u64,
        count: u64,
    },
}

/// Syscalls the filter lets run untrapped: they only build process state,
/// and with the same program and inputs they give the same results.
pub fn runs_untrapped(nr: c_long) -> bool {
    row(nr).is_some_and(|r| r.filter == Filter::Allow)
}

/// Whether the call copies the process's memory into a new one (fork,
/// clone without CLONE_VM or CLONE_VFORK): where it falls among the other
/// threads' work decides what the child sees, so its place in the event
/// order is taken at its entry (record) and it runs only at that place
/// (replay).
pub fn snapshots_memory(nr: c_long, args: &[u64; 6]) -> bool {
    row(nr).is_some_and(|r| r.snapshots_memory.holds(args))
}

/// Calls that never wait: trapped, their return is stamped a stop's
/// length after the thread got there, which marks its arrival (see
/// [`Duration::AtOnce`]).
pub fn returns_at_once(nr: c_long) -> bool {
    row(nr).is_some_and(|r| r.duration == Duration::AtOnce)
}

/// Calls that wait for time or for another process: the recorder stamps
/// their entry as well as their return (see [`Duration::Waits`]).
pub fn waits(nr: c_long) -> bool {
    row(nr).is_some_and(|r| r.duration == Duration::Waits)
}

/// Calls that change the process's user or group IDs (replay runs them
/// for real when it can, see the replayer's `action_for`).
pub fn changes_credentials(nr: c_long) -> bool {
    row(nr).is_some_and(|r| r.credentials)
}

/// Calls that allocate or free descriptor numbers. The kernel hands out
/// the lowest free number, so their relative order decides every number
/// the program sees: the recorder runs at most one at a time per process,
/// making the trace's order their true order, which replay then follows.
pub fn changes_descriptor_table(nr: c_long, args: &[u64; 6]) -> bool {
    row(nr).is_some_and(|r| r.fd_table.holds(args))
}

/// seccomp(SECCOMP_SET_MODE_FILTER) or prctl(PR_SET_SECCOMP,
/// SECCOMP_MODE_FILTER): the program installs a filter of its own, which
/// can fail calls or raise SIGSYS for them before rrc's sees them (the
/// recorder then stops buffering calls).
pub fn installs_program_filter(nr: c_long, args: &[u64; 6]) -> bool {
    const SECCOMP_MODE_FILTER: u64 = 2;
    (nr == libc::SYS_seccomp && args[0] == 1)
        || (nr == libc::SYS_prctl
            && args[0] as u32 == outputs::PR_SET_SECCOMP
            && args[1] == SECCOMP_MODE_FILTER)
}

/// Syscalls rrc knows how to record (whether or not they trap).
pub fn is_known(nr: c_long) -> bool {
    row(nr).is_some_and(SyscallRow::is_known)
}

/// rt_sigreturn traps only to mark the end of a signal handler (the
/// handler's thread ran alone until then): it is never an event.
pub fn marks_handler_end(nr: c_long) -> bool {
    row(nr).is_some_and(|r| matches!(r.replay, Replay::HandlerEnd))
}

/// How replay treats this call; `Unsupported` for calls that are never
/// events (untrapped ones, rt_sigreturn) and for unknown ones.
pub fn replay_action(nr: c_long, args: &[u64; 6]) -> ReplayAction {
    row(nr).map_or(ReplayAction::Unsupported, |r| r.action(args))
}

/// Arguments replay compares (bit i = argument i): descriptors, flags,
/// sizes; never pointers, whose values may legitimately move.
pub fn compared_args(nr: c_long) -> u8 {
    row(nr).map_or(0, |r| r.compared)
}

/// prctl options that take no argument after the option: what the other
/// registers hold is whatever the caller's code left there (glibc's
/// wrapper is variadic), not the program's choice.
const PRCTL_NO_ARGUMENT: [u64; 12] = [
    3,  // PR_GET_DUMPABLE
    7,  // PR_GET_KEEPCAPS
    13, // PR_GET_TIMING
    21, // PR_GET_SECCOMP
    30, // PR_GET_TIMERSLACK
    31, // PR_TASK_PERF_EVENTS_DISABLE
    32, // PR_TASK_PERF_EVENTS_ENABLE
    34, // PR_MCE_KILL_GET
    39, // PR_GET_NO_NEW_PRIVS
    42, // PR_GET_THP_DISABLE
    46, // PR_GET_FP_MODE
    56, // PR_GET_TAGGED_ADDR_CTRL
];

/// [`compared_args`] for this call's own arguments: the ones it uses.
pub fn compared_args_of(nr: c_long, args: &[u64; 6]) -> u8 {
    let mask = compared_args(nr);
    if nr == libc::SYS_prctl && PRCTL_NO_ARGUMENT.contains(&(args[0] & 0xffff_ffff)) {
        return mask & 1;
    }
    mask
}

/// Argument names for reports (empty: reports show `argN`).
pub fn arg_names(nr: c_long) -> &'static [&'static str] {
    match row(nr) {
        Some(r) if r.named_in_reports => r.args,
        _ => &[],
    }
}

/// How many arguments the syscall takes, when the table knows it.
pub fn arg_count(nr: c_long) -> Option<usize> {
    row(nr).map(|r| r.args.len())
}

/// The syscall's name, or `syscall_<nr>`.
pub fn name(nr: c_long) -> String {
    if let Some(r) = row(nr) {
        return r.name.to_string();
    }
    // Obsolete and newer calls the table has no row for.
    match usize::try_from(nr).ok().and_then(syscalls::Sysno::new) {
        Some(s) => s.name().to_string(),
        None => format!("syscall_{nr}"),
    }
}

/// Files glibc reads once, on first use, from whichever thread gets there
/// first, behind a flag it sets without a lock (malloc reads
/// `overcommit_memory` the first time a thread's arena shrinks), so that
/// the read lands in another thread in replay. rrc answers an open of one
/// of them itself, in both runs and in any thread, and records nothing:
/// "no such file", after which glibc assumes the kernel's default.
pub const READ_ONCE_BY_LIBC: &[&[u8]] = &[b"/proc/sys/vm/overcommit_memory"];

/// The inputs of an `open` or `openat` at a seccomp stop (its path), read
/// there to see whether it opens one of [`READ_ONCE_BY_LIBC`] and handed on
/// to the call's own handling, which reads no memory twice; `None` for
/// any other call.
pub fn open_inputs(tracee: &crate::Tracee, nr: c_long, args: &[u64; 6]) -> Option<Vec<Vec<u8>>> {
    matches!(nr, libc::SYS_open | libc::SYS_openat).then(|| read_inputs(tracee, nr, args))
}

/// Whether an open's inputs ([`open_inputs`]) name one of
/// [`READ_ONCE_BY_LIBC`].
pub fn opens_read_once_file(inputs: &[Vec<u8>]) -> bool {
    inputs
        .first()
        .is_some_and(|path| READ_ONCE_BY_LIBC.contains(&path.as_slice()))
}
