//! Decoding wait statuses ourselves: nix's decoder rejects realtime
//! signal numbers, which traced programs are free to use.

use nix::errno::Errno;
use nix::unistd::Pid;

/// Why a traced thread stopped or ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// SECCOMP_RET_TRACE: the thread is about to make a trapped syscall.
    Seccomp(Pid),
    /// Syscall exit, after a resume with PTRACE_SYSCALL.
    SyscallExit(Pid),
    /// A ptrace event other than seccomp (PTRACE_EVENT_CLONE, ...).
    Event(Pid, i32),
    /// Signal-delivery stop (or group stop).
    Signal(Pid, i32),
    Exited(Pid, i32),
    Killed(Pid, i32),
}

impl Stop {
    pub fn pid(&self) -> Pid {
        match *self {
            Stop::Seccomp(p)
            | Stop::SyscallExit(p)
            | Stop::Event(p, _)
            | Stop::Signal(p, _)
            | Stop::Exited(p, _)
            | Stop::Killed(p, _) => p,
        }
    }
}

/// What a non-blocking wait found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Polled {
    Stop(Stop),
    /// Threads remain, none has anything to report yet.
    Nothing,
    /// No traced thread is left.
    Gone,
}

/// Looks for a report from any traced thread without blocking.
pub fn poll_any() -> Result<Polled, Errno> {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out-pointer for the call.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::__WALL | libc::WNOHANG) };
        return match pid {
            0 => Ok(Polled::Nothing),
            p if p > 0 => Ok(Polled::Stop(decode(Pid::from_raw(p), status))),
            _ => match Errno::last() {
                Errno::EINTR => continue,
                Errno::ECHILD => Ok(Polled::Gone),
                e => Err(e),
            },
        };
    }
}

/// Waits for any traced thread. `Ok(None)` when none is left, or, with
/// `nohang`, when none has anything to report.
pub fn wait_any(nohang: bool) -> Result<Option<Stop>, Errno> {
    let mut status = 0;
    let flags = libc::__WALL | if nohang { libc::WNOHANG } else { 0 };
    loop {
        // SAFETY: status is a valid out-pointer for the call.
        let pid = unsafe { libc::waitpid(-1, &mut status, flags) };
        if pid < 0 {
            match Errno::last() {
                Errno::EINTR => continue,
                Errno::ECHILD => return Ok(None),
                e => return Err(e),
            }
        }
        if pid == 0 {
            return Ok(None);
        }
        return Ok(Some(decode(Pid::from_raw(pid), status)));
    }
}

fn decode(pid: Pid, status: i32) -> Stop {
    if libc::WIFEXITED(status) {
        return Stop::Exited(pid, libc::WEXITSTATUS(status));
    }
    if libc::WIFSIGNALED(status) {
        return Stop::Killed(pid, libc::WTERMSIG(status));
    }
    let sig = libc::WSTOPSIG(status);
    let event = (status >> 16) & 0xffff;
    if sig == libc::SIGTRAP | 0x80 {
        Stop::SyscallExit(pid)
    } else if sig == libc::SIGTRAP && event == libc::PTRACE_EVENT_SECCOMP {
        Stop::Seccomp(pid)
    } else if sig == libc::SIGTRAP && event != 0 {
        Stop::Event(pid, event)
    } else {
        Stop::Signal(pid, sig)
    }
}

/// True when a SIGSTOP-like stop is a group stop rather than a signal
/// about to be delivered: PTRACE_GETSIGINFO fails with EINVAL then.
fn is_group_stop(pid: Pid) -> bool {
    matches!(nix::sys::ptrace::getsiginfo(pid), Err(Errno::EINVAL))
}

/// The siginfo of a signal-delivery stop.
pub fn signal_info(pid: Pid) -> Option<libc::siginfo_t> {
    nix::sys::ptrace::getsiginfo(pid).ok()
}

/// What a signal stop of a traced thread is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalStopKind {
    /// The SIGSTOP every new task starts with under ptrace.
    ThreadStart,
    /// A group stop (SIGSTOP/SIGTSTP/SIGTTIN/SIGTTOU taking effect), not a
    /// signal to deliver.
    GroupStop,
    /// A signal about to be delivered to the thread.
    Delivery,
}

/// Sorts a signal stop; `awaiting_first_stop` says the thread is new.
pub fn signal_stop_kind(pid: Pid, sig: i32, awaiting_first_stop: bool) -> SignalStopKind {
    if awaiting_first_stop && sig == libc::SIGSTOP {
        SignalStopKind::ThreadStart
    } else if matches!(
        sig,
        libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
    ) && is_group_stop(pid)
    {
        SignalStopKind::GroupStop
    } else {
        SignalStopKind::Delivery
    }
}

/// Signals whose default action ends the process (all but job control
/// and the ones ignored by default).
pub fn kills_by_default(sig: i32) -> bool {
    !matches!(
        sig,
        libc::SIGCHLD
            | libc::SIGCONT
            | libc::SIGURG
            | libc::SIGWINCH
            | libc::SIGSTOP
            | libc::SIGTSTP
            | libc::SIGTTIN
            | libc::SIGTTOU
    )
}

/// A signal the thread caused by faulting (si_code > 0 from the CPU, not a
/// kill and not the kernel's SI_KERNEL, which rdtsc traps use).
pub fn is_fault(sig: i32, si_code: i32) -> bool {
    matches!(
        sig,
        libc::SIGSEGV | libc::SIGBUS | libc::SIGFPE | libc::SIGILL | libc::SIGTRAP | libc::SIGSYS
    ) && si_code > 0
        && si_code != libc::SI_KERNEL
}

/// A system call of another architecture's ABI that the filter refused
/// (SIGSYS from `SECCOMP_RET_TRAP`, see `filter.rs`): a 64-bit program's
/// `int 0x80`. Gives the call's number and its audit architecture.
pub fn foreign_syscall(sig: i32, info: &libc::siginfo_t) -> Option<(i32, u32)> {
    const SYS_SECCOMP: i32 = 1;
    if sig != libc::SIGSYS || info.si_code != SYS_SECCOMP {
        return None;
    }
    // The kernel's siginfo _sigsys member: after signo, errno and code
    // (padded to 16 bytes), a call address, the call number and the
    // architecture.
    let bytes = crate::siginfo_to_bytes(info);
    let word = |at: usize| -> Option<[u8; 4]> { bytes.get(at..at + 4)?.try_into().ok() };
    let syscall = i32::from_ne_bytes(word(24)?);
    let arch = u32::from_ne_bytes(word(28)?);
    (arch != crate::filter::AUDIT_ARCH_X86_64).then_some((syscall, arch))
}
