//! Starting a program under the tracer: fork, ask to be traced, stop, then
//! install the filter and exec. The filter goes in last so that nothing of
//! ours before the exec is trapped.

use std::ffi::CString;
use std::os::fd::RawFd;

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::{build_filter, InterposeError, Result};

/// ptrace options every tracee gets.
pub const TRACE_OPTIONS: libc::c_int = libc::PTRACE_O_TRACESYSGOOD
    | libc::PTRACE_O_TRACESECCOMP
    | libc::PTRACE_O_TRACECLONE
    | libc::PTRACE_O_TRACEFORK
    | libc::PTRACE_O_TRACEVFORK
    | libc::PTRACE_O_TRACEEXEC
    | libc::PTRACE_O_EXITKILL;

pub struct SpawnOptions {
    /// Path of the executable.
    pub program: CString,
    pub argv: Vec<CString>,
    /// `NAME=value` strings: the complete environment.
    pub env: Vec<CString>,
    /// Working directory; `None` keeps ours.
    pub cwd: Option<CString>,
    /// Descriptors to place in the child: (ours, number in the child).
    /// The child's copies are not close-on-exec.
    pub fds: Vec<(RawFd, RawFd)>,
    /// The signal state the program starts with (see [`SignalState`]).
    pub signals: SignalState,
    /// Close every other descriptor the child would inherit from us (a
    /// replay gives the program only the descriptors it was recorded with).
    pub close_inherited: bool,
    /// The program runs one thread at a time: calls that can block trap.
    pub serialized: bool,
    /// The shim's call site makes the hot calls untrapped (see
    /// `rrc_synclog::syscallbuf`): recording only.
    pub fast_path: bool,
}

/// Which signals a program starts with ignored and blocked: the only
/// signal state that survives exec, and part of what a program sees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignalState {
    /// Bit n-1 set: signal n is ignored.
    pub ignored: u64,
    /// Bit n-1 set: signal n is blocked.
    pub blocked: u64,
}

impl SignalState {
    /// The calling process's state (call before changing any of it).
    pub fn current() -> SignalState {
        let mut state = SignalState::default();
        for sig in 1..=64 {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            // SAFETY: querying a disposition with a null new action.
            unsafe {
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                    && old.sa_sigaction == libc::SIG_IGN
                {
                    state.ignored |= 1 << (sig - 1);
                }
            }
        }
        // SAFETY: reading the mask into a stack sigset.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_SETMASK, std::ptr::null(), &mut set);
            for sig in 1..=64 {
                if libc::sigismember(&set, sig) == 1 {
                    state.blocked |= 1 << (sig - 1);
                }
            }
        }
        state
    }

    /// Marks `sig` as ignored or not (for a disposition our own runtime
    /// changed before we could read it).
    pub fn set_ignored(&mut self, sig: i32, ignored: bool) {
        let bit = 1u64 << (sig - 1);
        if ignored {
            self.ignored |= bit;
        } else {
            self.ignored &= !bit;
        }
    }
}

/// Gives the (forked, not yet exec'd) child the recorded ignored signals
/// and mask (our own handlers are reset by exec; SIGCHLD is blocked here
/// for the tracer's signalfd).
///
/// # Safety
/// Called in the child between fork and exec: it makes only
/// async-signal-safe calls on a stack sigset.
unsafe fn set_signals(signals: &SignalState) {
    // SAFETY: see the function's contract.
    unsafe {
        for sig in 1..=64 {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            let ignored = signals.ignored & (1 << (sig - 1)) != 0;
            libc::signal(
                sig,
                if ignored {
                    libc::SIG_IGN
                } else {
                    libc::SIG_DFL
                },
            );
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in 1..=64 {
            if signals.blocked & (1 << (sig - 1)) != 0 {
                libc::sigaddset(&mut set, sig);
            }
        }
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// Forks and execs the program under ptrace with the seccomp filter. On
/// return the child is running towards its `execve`, which traps: the
/// caller's event loop sees it as the first seccomp stop.
/// The pointers of `strings`, then a null one (argv, envp).
fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    let mut v: Vec<*const libc::c_char> = strings.iter().map(|a| a.as_ptr()).collect();
    v.push(std::ptr::null());
    v
}

/// In the forked child, leading its own process group: makes that group
/// the terminal's foreground.
///
/// # Safety
/// Only async-signal-safe calls, for a child between fork and exec.
unsafe fn take_terminal_in_child() {
    // A background group changing the foreground gets SIGTTOU unless it
    // blocks it; the mask is set for good later.
    let mut ttou: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut ttou);
    libc::sigaddset(&mut ttou, libc::SIGTTOU);
    libc::sigprocmask(libc::SIG_BLOCK, &ttou, std::ptr::null_mut());
    libc::tcsetpgrp(0, libc::getpid());
}

/// The huge-page setting (`PR_GET_THP_DISABLE`) rrc started with, which
/// the programs it starts get back.
static PROGRAM_THP_DISABLE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// Turns transparent huge pages off for rrc's own process, before it
/// allocates much: its allocator asks for them, and each fresh one was
/// zeroed 2 MB at a time, a fifth of the recorder's processor time under
/// a busy program. Programs started with [`spawn_traced`] get the setting
/// from before.
pub fn no_huge_pages_for_rrc() {
    // SAFETY: prctl with these options takes and returns plain integers.
    unsafe {
        let was = libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0);
        if was < 0 {
            return;
        }
        PROGRAM_THP_DISABLE.store(was, std::sync::atomic::Ordering::Relaxed);
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

pub fn spawn_traced(opts: &SpawnOptions) -> Result<Pid> {
    let program = opts.program.to_string_lossy().into_owned();
    let fail = |reason: String| InterposeError::Spawn {
        program: program.clone(),
        reason,
    };
    let filter = build_filter(opts.serialized, opts.fast_path)?;
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    let argv = null_terminated(&opts.argv);
    let envp = null_terminated(&opts.env);
    let to_close: Vec<RawFd> = if opts.close_inherited {
        inherited_fds()
            .into_iter()
            .filter(|fd| !opts.fds.iter().any(|(_, to)| to == fd))
            .collect()
    } else {
        Vec::new()
    };
    // The program gets a process group of its own, so that what it sends
    // to its group (kill(0, sig), killpg) reaches its own processes and
    // not the tracer. When we own the terminal, the program's group takes
    // it over, as a shell hands it to a job.
    // SAFETY: isatty/tcgetpgrp/getpgrp only query descriptor 0 and us.
    let take_terminal = unsafe { libc::isatty(0) == 1 && libc::tcgetpgrp(0) == libc::getpgrp() };
    // SAFETY: getpid has no preconditions.
    let tracer = unsafe { libc::getpid() };

    let program_thp = PROGRAM_THP_DISABLE.load(std::sync::atomic::Ordering::Relaxed);
    // Read here: the environment's lock and an allocation have no place
    // in the forked child (another thread may hold either at the fork).
    let trap_tsc = std::env::var_os("RRC_EXP_NO_TSC").is_none();
    // The child inherits it; the driver ends it (see `startup_pin`).
    crate::startup_pin::pin_for_start();
    // SAFETY: after fork the child only makes async-signal-safe calls on
    // data prepared above (no allocation, no locks) and ends in execve or
    // _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        crate::startup_pin::release();
        return Err(fail(format!("fork: {}", std::io::Error::last_os_error())));
    }
    if pid == 0 {
        // SAFETY: see above; every pointer refers to memory owned by this
        // (copied) address space and outlives the calls.
        unsafe {
            // Until the tracer has set PTRACE_O_EXITKILL, nothing else ends
            // this child if the tracer dies: it would stay stopped forever.
            // If the tracer died before this line, the parent is not it.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            if libc::getppid() != tracer {
                libc::_exit(126);
            }
            libc::setpgid(0, 0);
            // The program's huge-page setting is the one we started with.
            libc::prctl(libc::PR_SET_THP_DISABLE, program_thp, 0, 0, 0);
            if take_terminal {
                take_terminal_in_child();
            }
            for &(from, to) in &opts.fds {
                if from == to {
                    let flags = libc::fcntl(from, libc::F_GETFD);
                    libc::fcntl(from, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
                } else if libc::dup2(from, to) < 0 {
                    libc::_exit(126);
                }
            }
            for &fd in &to_close {
                libc::close(fd);
            }
            set_signals(&opts.signals);
            if let Some(cwd) = &opts.cwd {
                // A recorded directory that no longer exists is not fatal:
                // the program's file accesses are replayed from the trace.
                libc::chdir(cwd.as_ptr());
            }
            // Same layout in record and replay: mappings and stacks land at
            // the same addresses, so pointer-derived values agree.
            libc::personality(libc::ADDR_NO_RANDOMIZE as libc::c_ulong);
            if libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) < 0 {
                libc::_exit(126);
            }
            libc::raise(libc::SIGSTOP);
            // Traced with EXITKILL from here on; the program must not
            // inherit a parent-death signal it did not ask for.
            libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0);
            // rdtsc/rdtscp fault (SIGSEGV) so the tracer can record them;
            // the setting survives exec and is inherited by every thread.
            if trap_tsc {
                libc::prctl(libc::PR_SET_TSC, libc::PR_TSC_SIGSEGV, 0, 0, 0);
            }
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                libc::_exit(126);
            }
            if libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &prog as *const libc::sock_fprog,
            ) != 0
            {
                libc::_exit(126);
            }
            libc::execve(opts.program.as_ptr(), argv.as_ptr(), envp.as_ptr());
            libc::_exit(127);
        }
    }
    // Also from this side, so the group exists whichever runs first.
    // SAFETY: setpgid on our own, not yet exec'd, child.
    unsafe { libc::setpgid(pid, pid) };
    if take_terminal {
        TOOK_TERMINAL.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let child = Pid::from_raw(pid);
    crate::startup_pin::set_tracee(child);
    match waitpid(child, Some(WaitPidFlag::__WALL)) {
        Ok(WaitStatus::Stopped(_, nix::sys::signal::Signal::SIGSTOP)) => {}
        Ok(other) => return Err(fail(format!("unexpected first stop: {other:?}"))),
        Err(e) => return Err(fail(format!("waiting for the first stop: {e}"))),
    }
    // SAFETY: PTRACE_SETOPTIONS takes the options in data, no pointers.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_SETOPTIONS,
            pid,
            std::ptr::null_mut::<libc::c_void>(),
            TRACE_OPTIONS as libc::c_long,
        )
    };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        // SAFETY: plain kill of our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        return Err(fail(format!("PTRACE_SETOPTIONS: {e}")));
    }
    crate::Tracee::new(child).resume(0, "resume after setting trace options")?;
    Ok(child)
}

/// Our descriptors above 2 that a program we start would inherit (not
/// close-on-exec), in increasing order: what a recorded program started
/// with besides stdin, stdout and stderr.
pub fn inherited_fds() -> Vec<RawFd> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    let mut fds: Vec<RawFd> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd: &RawFd| {
            // SAFETY: F_GETFD only reads the descriptor's flags; a number
            // that is no longer open (the directory's own) gives -1.
            let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
            fd > 2 && flags >= 0 && flags & libc::FD_CLOEXEC == 0
        })
        .collect();
    fds.sort_unstable();
    fds
}

/// Whether [`spawn_traced`] handed our terminal to the program's group.
static TOOK_TERMINAL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Takes the terminal back from the program's process group, if
/// [`spawn_traced`] handed it over: call once the program has ended.
pub fn reclaim_terminal() {
    if !TOOK_TERMINAL.swap(false, std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    // SAFETY: signal-mask calls on stack-owned sets and tcsetpgrp on fd 0;
    // SIGTTOU is blocked around it because we are a background group now.
    unsafe {
        let mut ttou: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut ttou);
        libc::sigaddset(&mut ttou, libc::SIGTTOU);
        libc::pthread_sigmask(libc::SIG_BLOCK, &ttou, &mut old);
        libc::tcsetpgrp(0, libc::getpgrp());
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    }
}

/// Where librrc_shim.so is: `$RRC_SHIM` if set, else beside the running
/// executable (cargo puts the cdylib there).
pub fn shim_path() -> Result<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("RRC_SHIM") {
        return Ok(p.into());
    }
    let exe = std::env::current_exe().map_err(|e| InterposeError::Spawn {
        program: "librrc_shim.so".into(),
        reason: format!("cannot locate the running executable: {e}"),
    })?;
    let dir = exe.parent().unwrap_or(std::path::Path::new("/"));
    let candidate = dir.join("librrc_shim.so");
    if candidate.is_file() {
        return Ok(candidate);
    }
    Err(InterposeError::Spawn {
        program: "librrc_shim.so".into(),
        reason: format!(
            "not found at {} (build it with `cargo build --release --workspace`, or set RRC_SHIM)",
            candidate.display()
        ),
    })
}

/// Size and CRC-32 of a file (the shim's identity in a trace header).
/// Read through one small buffer: reading the whole shim (megabytes, with
/// its debug information) into fresh memory was a third of rrc-record's
/// own start-up time, in page faults.
pub fn file_digest(path: &std::path::Path) -> std::io::Result<(u64, u32)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 128 << 10];
    let mut h = crc32fast::Hasher::new();
    let mut size = 0u64;
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                h.update(&buf[..n]);
                size += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((size, h.finalize()))
}

/// The environment a traced program runs with: the given one plus the
/// shim preloaded and told where the sync log is.
pub fn traced_env(base: &[Vec<u8>], shim: &std::path::Path) -> Vec<CString> {
    use std::os::unix::ffi::OsStrExt;
    let mut env: Vec<CString> = Vec::with_capacity(base.len() + 2);
    let mut preload = shim.as_os_str().as_bytes().to_vec();
    for var in base {
        if let Some(rest) = var.strip_prefix(b"LD_PRELOAD=") {
            if !rest.is_empty() {
                preload.push(b':');
                preload.extend_from_slice(rest);
            }
            continue;
        }
        if var.starts_with(rrc_synclog::SHM_FD_ENV.as_bytes()) {
            continue;
        }
        if let Ok(c) = CString::new(var.clone()) {
            env.push(c);
        }
    }
    let mut ld = b"LD_PRELOAD=".to_vec();
    ld.extend_from_slice(&preload);
    if let Ok(c) = CString::new(ld) {
        env.push(c);
    }
    if let Ok(c) = CString::new(format!(
        "{}={}",
        rrc_synclog::SHM_FD_ENV,
        rrc_synclog::SHM_FD
    )) {
        env.push(c);
    }
    env
}

/// Identity of what a tracee's descriptor refers to, via /proc.
pub fn fd_target(tid: Pid, fd: i64) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    std::fs::read_link(format!("/proc/{tid}/fd/{fd}"))
        .ok()
        .map(|p| p.as_os_str().as_bytes().to_vec())
}

/// The file a tracee's descriptor refers to, as a trace identity.
pub fn fd_identity(tid: Pid, fd: i64) -> Option<rrc_trace::FileIdentity> {
    let path = fd_target(tid, fd)?;
    let meta = std::fs::metadata(format!("/proc/{tid}/fd/{fd}")).ok()?;
    Some(identity_of(path, &meta))
}

/// A file's identity from its metadata.
pub fn identity_of(path: Vec<u8>, meta: &std::fs::Metadata) -> rrc_trace::FileIdentity {
    use std::os::unix::fs::MetadataExt;
    rrc_trace::FileIdentity {
        path,
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.size(),
        mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
        regular: meta.file_type().is_file(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_files_digest_is_its_size_and_crc_read_in_pieces() {
        let path = std::env::temp_dir().join(format!("rrc-digest-test-{}", std::process::id()));
        // Larger than the read buffer, and not a multiple of it.
        let data: Vec<u8> = (0..300_001u32).map(|i| (i * 31 % 251) as u8).collect();
        std::fs::write(&path, &data).expect("write");
        let digest = super::file_digest(&path);
        let _ = std::fs::remove_file(&path);
        assert_eq!(
            digest.expect("digest"),
            (data.len() as u64, crc32fast::hash(&data))
        );
    }
}
