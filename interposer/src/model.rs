#![allow(non_upper_case_globals)] // libc spells syscall numbers SYS_name.

//! What rrc knows about each x86-64 syscall: whether the seccomp filter
//! traps it, which memory the kernel writes (recorded, and restored during
//! replay), which program data replay compares (paths, bytes written out),
//! which arguments must match, and how replay treats it.

use libc::c_long;

use crate::TraceeMemory;

/// How replay handles a trapped syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayAction {
    /// Skip the syscall; inject the recorded return value and memory.
    Emulate,
    /// Let it run: it only builds process state.
    Execute,
    /// Let it run, then check its return value and memory against the trace
    /// (descriptor creation, whose numbers must not drift).
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
    /// mapped to live ones.
    SignalSend,
    /// setpgid/setsid: process groups must exist for real (a later
    /// kill(-pgid) needs them): run with recorded ids mapped to live ones,
    /// reporting the recorded result.
    ProcessGroup,
    /// chdir/fchdir: run for real, so that relative paths the program
    /// opens later resolve as they did (replay checks that before it
    /// reopens a file); the program sees the recorded result, whether or
    /// not the directory is still there.
    ChangeDirectory,
    /// exit_group: run it once the process's other threads have reached
    /// the end of their recorded events, as they had when it was recorded.
    ExitGroup,
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
    /// Bytes a descriptor's file holds at an offset (what sendfile sends):
    /// `offset_ptr` 0 means the descriptor's own position.
    FileRange {
        fd: u64,
        offset_ptr: u64,
        count: u64,
    },
}

/// Syscalls the filter lets run untrapped: they only build process state,
/// and with the same program and inputs they give the same results.
pub fn runs_untrapped(nr: c_long) -> bool {
    use libc::*;
    matches!(
        nr,
        SYS_brk
            | SYS_munmap
            | SYS_mprotect
            | SYS_mremap
            | SYS_madvise
            | SYS_mlock
            | SYS_mlock2
            | SYS_munlock
            | SYS_mlockall
            | SYS_munlockall
            | SYS_msync
            | SYS_membarrier
            | SYS_futex
            | SYS_futex_waitv
            | SYS_set_robust_list
            | SYS_get_robust_list
            | SYS_set_tid_address
            | SYS_rseq
            | SYS_arch_prctl
            | SYS_sigaltstack
            | SYS_sched_yield
            | SYS_sched_setaffinity
            | SYS_setpriority
            | SYS_exit
            | SYS_prctl
            | SYS_fadvise64
            | SYS_readahead
            | SYS_pkey_alloc
            | SYS_pkey_free
            | SYS_pkey_mprotect
    )
}

/// fork, and clone without CLONE_VM or CLONE_VFORK: the child starts
/// with a copy of memory as it is at that moment, so where the call falls
/// among the other threads' work decides what the child sees. Its place
/// in the event order is taken at its entry (record) and it runs only at
/// that place (replay). glibc forks with clone; clone3 makes its threads.
pub fn snapshots_memory(nr: c_long, args: &[u64; 6]) -> bool {
    match nr {
        libc::SYS_fork => true,
        libc::SYS_clone => args[0] & (libc::CLONE_VM | libc::CLONE_VFORK) as u64 == 0,
        _ => false,
    }
}

/// Calls that change the process's user or group IDs (replay runs them
/// for real when it can, see the replayer's `action_for`).
pub fn changes_credentials(nr: c_long) -> bool {
    use libc::*;
    matches!(
        nr,
        SYS_setuid
            | SYS_setgid
            | SYS_setreuid
            | SYS_setregid
            | SYS_setresuid
            | SYS_setresgid
            | SYS_setgroups
    )
}

/// Calls that allocate or free descriptor numbers. The kernel hands out
/// the lowest free number, so their relative order decides every number
/// the program sees: the recorder runs at most one at a time per process,
/// making the trace's order their true order, which replay then follows.
pub fn changes_descriptor_table(nr: c_long, args: &[u64; 6]) -> bool {
    use libc::*;
    match nr {
        SYS_fcntl => matches!(args[1] as i32, F_DUPFD | F_DUPFD_CLOEXEC),
        _ => matches!(
            nr,
            SYS_close
                | SYS_close_range
                | SYS_dup
                | SYS_dup2
                | SYS_dup3
                | SYS_open
                | SYS_openat
                | SYS_openat2
                | SYS_creat
                | SYS_socket
                | SYS_socketpair
                | SYS_accept
                | SYS_accept4
                | SYS_pipe
                | SYS_pipe2
                | SYS_eventfd
                | SYS_eventfd2
                | SYS_epoll_create
                | SYS_epoll_create1
                | SYS_memfd_create
                | SYS_timerfd_create
                | SYS_signalfd
                | SYS_signalfd4
                | SYS_inotify_init
                | SYS_inotify_init1
        ),
    }
}

/// Syscalls rrc knows how to record (whether or not they trap).
pub fn is_known(nr: c_long) -> bool {
    runs_untrapped(nr) || nr == libc::SYS_rt_sigreturn || replay_action_kind(nr).is_some()
}

/// rt_sigreturn traps only to mark the end of a signal handler (the
/// handler's thread ran alone until then): it is never an event.
pub fn marks_handler_end(nr: c_long) -> bool {
    nr == libc::SYS_rt_sigreturn
}

fn replay_action_kind(nr: c_long) -> Option<ReplayAction> {
    use libc::*;
    use ReplayAction::*;
    Some(match nr {
        SYS_open | SYS_openat | SYS_creat | SYS_openat2 => Open,
        SYS_socket | SYS_accept | SYS_accept4 => Placeholder,
        // Descriptor numbers must come out as recorded: these run for real
        // (in the recorded order across threads) and are checked.
        SYS_pipe | SYS_pipe2 | SYS_socketpair | SYS_dup | SYS_dup2 | SYS_dup3 | SYS_eventfd
        | SYS_eventfd2 | SYS_epoll_create | SYS_epoll_create1 | SYS_memfd_create
        | SYS_timerfd_create | SYS_signalfd | SYS_signalfd4 | SYS_inotify_init
        | SYS_inotify_init1 | SYS_close | SYS_close_range => ExecuteChecked,
        // Signal masks decide where a signal can be delivered: trapped so
        // that an unblocked signal arrives at a visible syscall return.
        SYS_mmap | SYS_rt_sigaction | SYS_rt_sigprocmask => Execute,
        SYS_clone | SYS_clone3 | SYS_fork | SYS_vfork => Spawn,
        SYS_execve | SYS_execveat => Exec,
        SYS_kill | SYS_tgkill | SYS_tkill | SYS_rt_sigqueueinfo | SYS_rt_tgsigqueueinfo => {
            SignalSend
        }
        SYS_exit_group => ExitGroup,
        SYS_setsid | SYS_setpgid => ProcessGroup,
        SYS_chdir | SYS_fchdir => ChangeDirectory,
        SYS_fcntl => Emulate, // refined by replay_action()
        SYS_read
        | SYS_write
        | SYS_pread64
        | SYS_pwrite64
        | SYS_readv
        | SYS_writev
        | SYS_preadv
        | SYS_pwritev
        | SYS_preadv2
        | SYS_pwritev2
        | SYS_lseek
        | SYS_stat
        | SYS_fstat
        | SYS_lstat
        | SYS_newfstatat
        | SYS_statx
        | SYS_statfs
        | SYS_fstatfs
        | SYS_access
        | SYS_faccessat
        | SYS_faccessat2
        | SYS_readlink
        | SYS_readlinkat
        | SYS_getdents
        | SYS_getdents64
        | SYS_getcwd
        | SYS_mkdir
        | SYS_mkdirat
        | SYS_rmdir
        | SYS_unlink
        | SYS_unlinkat
        | SYS_rename
        | SYS_renameat
        | SYS_renameat2
        | SYS_link
        | SYS_linkat
        | SYS_symlink
        | SYS_symlinkat
        | SYS_chmod
        | SYS_fchmod
        | SYS_fchmodat
        | SYS_chown
        | SYS_fchown
        | SYS_lchown
        | SYS_fchownat
        | SYS_truncate
        | SYS_ftruncate
        | SYS_fsync
        | SYS_fdatasync
        | SYS_sync
        | SYS_syncfs
        | SYS_utimensat
        | SYS_fallocate
        | SYS_flock
        | SYS_umask
        | SYS_getrandom
        | SYS_clock_gettime
        | SYS_clock_getres
        | SYS_gettimeofday
        | SYS_time
        | SYS_nanosleep
        | SYS_clock_nanosleep
        | SYS_getpid
        | SYS_gettid
        | SYS_getppid
        | SYS_getuid
        | SYS_geteuid
        | SYS_getgid
        | SYS_getegid
        | SYS_getgroups
        | SYS_getresuid
        | SYS_getresgid
        | SYS_getpgid
        | SYS_getpgrp
        | SYS_getsid
        | SYS_uname
        | SYS_sysinfo
        | SYS_getrusage
        | SYS_times
        | SYS_getrlimit
        | SYS_setrlimit
        | SYS_prlimit64
        | SYS_sched_getaffinity
        | SYS_getcpu
        | SYS_getpriority
        | SYS_ioctl
        | SYS_poll
        | SYS_ppoll
        | SYS_select
        | SYS_pselect6
        | SYS_epoll_ctl
        | SYS_epoll_wait
        | SYS_epoll_pwait
        | SYS_epoll_pwait2
        | SYS_connect
        | SYS_bind
        | SYS_listen
        | SYS_recvfrom
        | SYS_recvmsg
        | SYS_sendto
        | SYS_sendmsg
        | SYS_shutdown
        | SYS_getsockname
        | SYS_getpeername
        | SYS_getsockopt
        | SYS_setsockopt
        | SYS_wait4
        | SYS_waitid
        | SYS_timerfd_settime
        | SYS_timerfd_gettime
        | SYS_setitimer
        | SYS_getitimer
        | SYS_alarm
        | SYS_pause
        | SYS_rt_sigsuspend
        | SYS_rt_sigtimedwait
        | SYS_rt_sigpending
        | SYS_sendfile
        | SYS_splice
        | SYS_tee
        | SYS_copy_file_range
        | SYS_capget
        | SYS_sched_getscheduler
        | SYS_sched_getparam
        | SYS_inotify_add_watch
        | SYS_inotify_rm_watch
        | SYS_sysfs
        | SYS_syslog
        | SYS_restart_syscall
        | SYS_timer_create
        | SYS_timer_settime
        | SYS_timer_gettime
        | SYS_timer_getoverrun
        | SYS_timer_delete
        | SYS_sched_getattr
        | SYS_recvmmsg
        | SYS_sendmmsg
        | SYS_getxattr
        | SYS_lgetxattr
        | SYS_fgetxattr
        | SYS_listxattr
        | SYS_flistxattr
        | SYS_mincore
        | SYS_personality
        | SYS_setuid
        | SYS_setgid
        | SYS_setreuid
        | SYS_setregid
        | SYS_setresuid
        | SYS_setresgid
        | SYS_setfsuid
        | SYS_setfsgid
        | SYS_setgroups
        | SYS_capset
        | SYS_chroot
        | SYS_umount2
        | SYS_sched_setscheduler
        | SYS_sched_setparam
        | SYS_ioprio_set
        | SYS_ioprio_get
        | SYS_mknod
        | SYS_mknodat => Emulate,
        _ => return None,
    })
}

/// How replay treats this call. `None` for untrapped syscalls.
pub fn replay_action(nr: c_long, args: &[u64; 6]) -> ReplayAction {
    if nr == libc::SYS_fcntl {
        return match args[1] as i32 {
            libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => ReplayAction::ExecuteChecked,
            libc::F_SETFD | libc::F_GETFD | libc::F_SETFL => ReplayAction::Execute,
            _ => ReplayAction::Emulate,
        };
    }
    replay_action_kind(nr).unwrap_or(ReplayAction::Unsupported)
}

/// Arguments replay compares (bit i = argument i): descriptors, flags,
/// sizes; never pointers, whose values may legitimately move.
pub fn compared_args(nr: c_long) -> u8 {
    use libc::*;
    const A0: u8 = 1;
    const A1: u8 = 2;
    const A2: u8 = 4;
    const A3: u8 = 8;
    match nr {
        SYS_read | SYS_write | SYS_readv | SYS_writev => A0 | A2,
        SYS_pread64 | SYS_pwrite64 => A0 | A2 | A3,
        SYS_preadv | SYS_pwritev | SYS_preadv2 | SYS_pwritev2 => A0 | A2 | A3,
        SYS_lseek => A0 | A1 | A2,
        SYS_openat => A0 | A2,
        SYS_open => A1,
        SYS_fstat | SYS_fstatfs | SYS_fsync | SYS_fdatasync | SYS_fchdir => A0,
        SYS_getrandom => A1 | A2, // len, flags
        SYS_clock_gettime | SYS_clock_getres => A0,
        SYS_clock_nanosleep => A0 | A1,
        SYS_fcntl => A0 | A1,
        SYS_ioctl => A0 | A1,
        SYS_getdents | SYS_getdents64 => A0 | A2,
        SYS_pipe2 => A1,
        SYS_socket => A0 | A1 | A2,
        // connect/bind: the address is compared as data, not its pointer.
        SYS_connect | SYS_bind => A0 | A2,
        SYS_listen | SYS_shutdown => A0 | A1,
        SYS_accept | SYS_getsockname | SYS_getpeername => A0,
        SYS_accept4 => A0 | A3,
        SYS_recvfrom | SYS_sendto => A0 | A2 | A3,
        SYS_recvmsg | SYS_sendmsg => A0 | A2,
        SYS_getsockopt | SYS_setsockopt => A0 | A1 | A2,
        SYS_epoll_ctl => A0 | A1 | A2,
        SYS_epoll_wait | SYS_epoll_pwait | SYS_epoll_pwait2 => A0 | A2,
        SYS_poll => A1,
        SYS_wait4 => A0 | A2,
        SYS_mmap => A1 | A2 | A3 | (1 << 4) | (1 << 5),
        SYS_exit_group | SYS_rt_sigaction | SYS_rt_sigprocmask => A0,
        SYS_kill | SYS_rt_sigqueueinfo => A1,
        SYS_tgkill | SYS_rt_tgsigqueueinfo => A2,
        SYS_tkill => A1,
        SYS_sendfile => A0 | A1 | A3,
        SYS_ftruncate => A0 | A1,
        SYS_fchmod => A0 | A1,
        SYS_umask => A0,
        SYS_dup | SYS_dup2 | SYS_dup3 | SYS_close_range => A0 | A1,
        SYS_close => A0,
        SYS_eventfd2 => A0 | A1,
        SYS_epoll_create1 | SYS_inotify_init1 => A0,
        SYS_timerfd_create => A0 | A1,
        SYS_memfd_create => A1,
        SYS_unlinkat | SYS_mkdirat => A0 | A2,
        SYS_mkdir | SYS_chmod => A1,
        SYS_newfstatat => A0 | A3,
        SYS_faccessat | SYS_faccessat2 => A0 | A2,
        SYS_access => A1,
        SYS_getrlimit | SYS_setrlimit => A0,
        SYS_prlimit64 => A1,
        _ => 0,
    }
}

/// Argument names for reports; `None` marks a pointer.
pub fn arg_names(nr: c_long) -> &'static [&'static str] {
    use libc::*;
    match nr {
        SYS_read | SYS_write => &["fd", "buf", "count"],
        SYS_pread64 | SYS_pwrite64 => &["fd", "buf", "count", "offset"],
        SYS_readv | SYS_writev => &["fd", "iov", "iovcnt"],
        SYS_openat => &["dirfd", "path", "flags", "mode"],
        SYS_open => &["path", "flags", "mode"],
        SYS_lseek => &["fd", "offset", "whence"],
        SYS_ioctl => &["fd", "request", "arg"],
        SYS_fcntl => &["fd", "cmd", "arg"],
        SYS_getrandom => &["buf", "len", "flags"],
        SYS_clock_gettime => &["clock", "tp"],
        SYS_mmap => &["addr", "len", "prot", "flags", "fd", "offset"],
        _ => &[],
    }
}

/// Program data given to the syscall that replay checks byte for byte.
/// Read at the syscall's entry.
pub fn inputs(nr: c_long, a: &[u64; 6]) -> Vec<InputSpec> {
    use libc::*;
    use InputSpec::*;
    let bytes = |addr: u64, len: u64| {
        Bytes(Region {
            addr,
            len: len.min(MAX_INPUT) as usize,
        })
    };
    let path = |addr: u64| if addr == 0 { None } else { Some(CString(addr)) };
    match nr {
        SYS_write | SYS_pwrite64 => vec![bytes(a[1], a[2])],
        SYS_writev | SYS_pwritev | SYS_pwritev2 => vec![Iovec {
            addr: a[1],
            count: a[2],
            limit: MAX_INPUT,
        }],
        SYS_sendto => {
            let mut v = vec![bytes(a[1], a[2])];
            if a[4] != 0 {
                v.push(SockAddr(Region {
                    addr: a[4],
                    len: (a[5] & 0xffff_ffff).min(128) as usize,
                }));
            }
            v
        }
        SYS_open | SYS_creat | SYS_stat | SYS_lstat | SYS_access | SYS_readlink | SYS_unlink
        | SYS_mkdir | SYS_rmdir | SYS_chdir | SYS_truncate | SYS_chmod | SYS_chown | SYS_lchown
        | SYS_statfs | SYS_execve => path(a[0]).into_iter().collect(),
        SYS_openat
        | SYS_openat2
        | SYS_newfstatat
        | SYS_statx
        | SYS_faccessat
        | SYS_faccessat2
        | SYS_readlinkat
        | SYS_unlinkat
        | SYS_mkdirat
        | SYS_fchmodat
        | SYS_fchownat
        | SYS_utimensat
        | SYS_execveat
        | SYS_inotify_add_watch => path(a[1]).into_iter().collect(),
        SYS_rename | SYS_link | SYS_symlink => path(a[0]).into_iter().chain(path(a[1])).collect(),
        SYS_renameat | SYS_renameat2 | SYS_linkat => {
            path(a[1]).into_iter().chain(path(a[3])).collect()
        }
        SYS_symlinkat => path(a[0]).into_iter().chain(path(a[2])).collect(),
        SYS_sendfile => vec![FileRange {
            fd: a[1],
            offset_ptr: a[2],
            count: a[3].min(MAX_INPUT),
        }],
        SYS_connect | SYS_bind => vec![SockAddr(Region {
            addr: a[1],
            len: (a[2] & 0xffff_ffff).min(128) as usize,
        })],
        _ => Vec::new(),
    }
}

/// Reads the program data a syscall is given, as replay compares it.
pub fn read_inputs(tracee: &crate::Tracee, nr: c_long, args: &[u64; 6]) -> Vec<Vec<u8>> {
    let specs = if nr == libc::SYS_sendmsg {
        sendmsg_inputs(tracee, args[1]).unwrap_or_default()
    } else {
        inputs(nr, args)
    };
    specs
        .into_iter()
        .map(|spec| read_input(tracee, spec))
        .collect()
}

fn read_input(tracee: &crate::Tracee, spec: InputSpec) -> Vec<u8> {
    match spec {
        InputSpec::Bytes(r) => tracee.read(r.addr, r.len).unwrap_or_default(),
        InputSpec::CString(addr) => tracee.read_cstring(addr, 4096).unwrap_or_default(),
        InputSpec::SockAddr(r) => {
            let mut b = tracee.read(r.addr, r.len).unwrap_or_default();
            let family = b.get(..2).map_or(0, |f| u16::from_le_bytes([f[0], f[1]]));
            let meaningful = match family as i32 {
                libc::AF_UNIX => {
                    // Up to the path's NUL; an abstract address (leading
                    // NUL) is all of the given length.
                    match b.get(2) {
                        Some(0) => b.len(),
                        _ => b
                            .iter()
                            .skip(2)
                            .position(|c| *c == 0)
                            .map_or(b.len(), |p| p + 2),
                    }
                }
                libc::AF_INET => 8, // family, port, address; not sin_zero
                libc::AF_INET6 => 28,
                _ => b.len(),
            };
            b.truncate(meaningful.min(b.len()));
            b
        }
        InputSpec::FileRange {
            fd,
            offset_ptr,
            count,
        } => read_file_range(tracee, fd, offset_ptr, count).unwrap_or_default(),
        InputSpec::Iovec { addr, count, limit } => {
            let mut out = Vec::new();
            for i in 0..count.min(1024) {
                let (Ok(base), Ok(len)) = (
                    tracee.read_u64(addr + i * 16),
                    tracee.read_u64(addr + i * 16 + 8),
                ) else {
                    break;
                };
                let take = len.min(limit.saturating_sub(out.len() as u64));
                out.extend(tracee.read(base, take as usize).unwrap_or_default());
            }
            out
        }
    }
}

/// The bytes a descriptor's file holds where sendfile reads them. `None`
/// when the descriptor is not a readable file (a placeholder in replay).
fn read_file_range(
    tracee: &crate::Tracee,
    fd: u64,
    offset_ptr: u64,
    count: u64,
) -> Option<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let tid = tracee.tid;
    let offset = if offset_ptr != 0 {
        tracee.read_u64(offset_ptr).ok()?
    } else {
        let info = std::fs::read_to_string(format!("/proc/{tid}/fdinfo/{fd}")).ok()?;
        info.lines()
            .find_map(|l| l.strip_prefix("pos:"))
            .and_then(|v| v.trim().parse().ok())?
    };
    let file = std::fs::File::open(format!("/proc/{tid}/fd/{fd}")).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut buf = vec![0u8; count as usize];
    let n = file.read_at(&mut buf, offset).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// Inputs larger than this are compared by their first MAX_INPUT bytes.
pub const MAX_INPUT: u64 = 64 << 20;

/// `sendmsg` gathers from a msghdr; read it to find the iovecs.
pub fn sendmsg_inputs(mem: &dyn TraceeMemory, msghdr: u64) -> crate::Result<Vec<InputSpec>> {
    let iov = mem.read_u64(msghdr + 16)?;
    let iovlen = mem.read_u64(msghdr + 24)?;
    Ok(vec![InputSpec::Iovec {
        addr: iov,
        count: iovlen,
        limit: MAX_INPUT,
    }])
}

/// Memory the kernel wrote for a call that returned `ret`, read (record)
/// or to be written (replay) at syscall exit. In replay, `args` and the
/// memory are the live ones, `ret` the recorded one.
pub fn outputs(
    nr: c_long,
    a: &[u64; 6],
    ret: i64,
    mem: &dyn TraceeMemory,
) -> crate::Result<Vec<Region>> {
    use libc::*;
    let mut out = Vec::new();
    let mut add = |addr: u64, len: u64| {
        if addr != 0 && len > 0 {
            out.push(Region {
                addr,
                len: len as usize,
            });
        }
    };
    let ok = ret >= 0;
    let n = ret.max(0) as u64;
    match nr {
        SYS_read | SYS_pread64 | SYS_getdents | SYS_getdents64 => add(a[1], n),
        SYS_getrandom => add(a[0], n),
        SYS_readlink => add(a[1], n),
        SYS_readlinkat => add(a[2], n),
        SYS_getcwd => add(a[0], n),
        SYS_recvfrom if ok => {
            add(a[1], n);
            if a[4] != 0 && a[5] != 0 {
                let alen = mem.read_u32(a[5])? as u64;
                add(a[5], 4);
                add(a[4], alen.min(128));
            }
        }
        SYS_readv | SYS_preadv | SYS_preadv2 if ok => scatter(mem, a[1], a[2], n, &mut add)?,
        SYS_recvmsg if ok => {
            let m = a[1];
            let name = mem.read_u64(m)?;
            let namelen = mem.read_u32(m + 8)? as u64;
            let iov = mem.read_u64(m + 16)?;
            let iovlen = mem.read_u64(m + 24)?;
            let control = mem.read_u64(m + 32)?;
            let controllen = mem.read_u64(m + 40)?;
            add(m + 8, 4);
            add(name, namelen.min(128));
            scatter(mem, iov, iovlen, n, &mut add)?;
            add(m + 40, 8);
            add(control, controllen.min(1 << 16));
            add(m + 48, 4);
        }
        SYS_clock_gettime if ok => add(a[1], 16),
        SYS_clock_getres if ok => add(a[1], 16),
        SYS_gettimeofday if ok => {
            add(a[0], 16);
            add(a[1], 8);
        }
        SYS_time => add(a[0], 8),
        SYS_nanosleep if ret == -(EINTR as i64) => add(a[1], 16),
        // The raw call returns -EINTR (glibc turns it into a positive
        // code); an absolute sleep leaves `remain` alone.
        SYS_clock_nanosleep if ret == -(EINTR as i64) && a[1] & TIMER_ABSTIME as u64 == 0 => {
            add(a[3], 16)
        }
        SYS_stat | SYS_fstat | SYS_lstat if ok => add(a[1], 144),
        SYS_newfstatat if ok => add(a[2], 144),
        SYS_statx if ok => add(a[4], 256),
        SYS_statfs | SYS_fstatfs if ok => add(a[1], 120),
        SYS_uname if ok => add(a[0], 390),
        SYS_sysinfo if ok => add(a[0], 112),
        SYS_getrusage if ok => add(a[1], 144),
        SYS_times => add(a[0], 32),
        SYS_getrlimit if ok => add(a[1], 16),
        SYS_prlimit64 if ok => add(a[3], 16),
        SYS_sched_getaffinity if ok => add(a[2], n),
        SYS_getcpu if ok => {
            add(a[0], 4);
            add(a[1], 4);
        }
        SYS_pipe | SYS_pipe2 if ok => add(a[0], 8),
        SYS_socketpair if ok => add(a[3], 8),
        SYS_wait4 if ok => {
            if ret > 0 {
                add(a[1], 4);
            }
            add(a[3], 144);
        }
        SYS_waitid if ok => {
            add(a[2], 128);
            add(a[4], 144);
        }
        // An interrupted ppoll/select/pselect6 still writes the time it
        // had left (not the descriptor sets).
        SYS_poll if ok => add(a[0], a[1].min(1 << 16) * 8),
        SYS_ppoll if ok || ret == -(EINTR as i64) => {
            if ok {
                add(a[0], a[1].min(1 << 16) * 8);
            }
            add(a[2], 16);
        }
        SYS_select | SYS_pselect6 if ok || ret == -(EINTR as i64) => {
            if ok {
                let words = (a[0].min(1 << 16)).div_ceil(64) * 8;
                add(a[1], words);
                add(a[2], words);
                add(a[3], words);
            }
            add(a[4], 16);
        }
        SYS_epoll_wait | SYS_epoll_pwait | SYS_epoll_pwait2 if ok => add(a[1], n * 12),
        SYS_accept | SYS_accept4 | SYS_getsockname | SYS_getpeername
            if ok && a[1] != 0 && a[2] != 0 =>
        {
            let alen = mem.read_u32(a[2])? as u64;
            add(a[2], 4);
            add(a[1], alen.min(128));
        }
        SYS_getsockopt if ok && a[4] != 0 => {
            let len = mem.read_u32(a[4])? as u64;
            add(a[4], 4);
            add(a[3], len.min(1024));
        }
        SYS_ioctl if ok => ioctl_outputs(mem, a[1], a[2], &mut add)?,
        SYS_fcntl if ok => {
            if matches!(a[1] as i32, F_GETLK | F_OFD_GETLK) {
                add(a[2], 32);
            }
        }
        SYS_getgroups if ok && a[0] > 0 => add(a[1], n * 4),
        SYS_getresuid | SYS_getresgid if ok => {
            add(a[0], 4);
            add(a[1], 4);
            add(a[2], 4);
        }
        SYS_capget if ok => add(a[1], 24),
        SYS_timerfd_gettime if ok => add(a[1], 32),
        SYS_timerfd_settime if ok => add(a[3], 32),
        SYS_getitimer if ok => add(a[1], 32),
        SYS_setitimer if ok => add(a[2], 32),
        SYS_rt_sigtimedwait if ok => add(a[1], 128),
        SYS_rt_sigpending if ok => add(a[0], a[1].min(128)),
        SYS_sendfile if ok => add(a[2], 8),
        SYS_splice | SYS_copy_file_range if ok => {
            add(a[1], 8);
            add(a[3], 8);
        }
        SYS_sched_getparam if ok => add(a[1], 4),
        SYS_timer_create if ok => add(a[2], 4),
        SYS_timer_settime if ok => add(a[3], 32),
        SYS_timer_gettime if ok => add(a[1], 32),
        SYS_getxattr | SYS_lgetxattr if ok => add(a[2], n),
        SYS_fgetxattr if ok => add(a[2], n),
        SYS_listxattr | SYS_flistxattr if ok => add(a[1], n),
        SYS_mincore if ok => add(a[2], a[1].div_ceil(4096)),
        SYS_recvmmsg if ok => recvmmsg_outputs(mem, a[1], n, &mut add)?,
        SYS_sendmmsg if ok => {
            // The kernel writes each sent message's length.
            for i in 0..n.min(1024) {
                add(a[1] + i * 64 + 56, 4);
            }
        }
        _ => {}
    }
    Ok(out)
}

/// Size of `struct ifreq` (an interface name and a union of 24 bytes).
const IFREQ_LEN: u64 = 40;
/// Size of `struct arpreq`.
const ARPREQ_LEN: u64 = 68;

/// ioctl numbers encode their direction in bits 30-31 (1: the program
/// passes data in, 2: the kernel writes data out) and the size of that
/// data in bits 16-29, except for old numbers that predate the scheme
/// (direction 0), which only a table can describe.
const IOC_WRITE: u64 = 1;
const IOC_READ: u64 = 2;

fn ioc_dir(request: u64) -> u64 {
    (request >> 30) & 3
}

fn ioc_size(request: u64) -> u64 {
    (request >> 16) & 0x3fff
}

/// An ioctl's request as the kernel reads it: an `unsigned int`, whatever
/// a sign-extending caller left in the register's upper half.
pub fn ioctl_request(arg: u64) -> u64 {
    arg & 0xffff_ffff
}

/// Known ioctls that write a fixed amount of memory at their argument.
pub fn ioctl_output_len(request: u64) -> Option<u64> {
    Some(match ioctl_request(request) as libc::c_ulong {
        libc::TCGETS => 60,
        libc::TIOCGWINSZ => 8,
        libc::FIONREAD | libc::TIOCGPGRP | libc::TIOCOUTQ | libc::TIOCGSID => 4,
        libc::SIOCGIFNAME
        | libc::SIOCGIFINDEX
        | libc::SIOCGIFFLAGS
        | libc::SIOCGIFADDR
        | libc::SIOCGIFDSTADDR
        | libc::SIOCGIFBRDADDR
        | libc::SIOCGIFNETMASK
        | libc::SIOCGIFMETRIC
        | libc::SIOCGIFMTU
        | libc::SIOCGIFHWADDR
        | libc::SIOCGIFTXQLEN => IFREQ_LEN,
        libc::SIOCGARP | libc::SIOCGRARP => ARPREQ_LEN,
        // Encoded: the kernel writes at most the encoded size.
        r if ioc_dir(r) & IOC_READ != 0 => ioc_size(r),
        _ => return None,
    })
}

/// The memory a known ioctl wrote.
fn ioctl_outputs(
    mem: &dyn TraceeMemory,
    request: u64,
    arg: u64,
    add: &mut dyn FnMut(u64, u64),
) -> crate::Result<()> {
    if ioctl_request(request) == libc::SIOCGIFCONF {
        // struct ifconf { int ifc_len; char *ifc_buf; }: the kernel sets
        // ifc_len to what it wrote into ifc_buf (or needs, when NULL).
        let len = mem.read_u32(arg)? as u64;
        let buf = mem.read_u64(arg + 8)?;
        add(arg, 4);
        if buf != 0 {
            add(buf, len.min(1 << 20));
        }
    } else if let Some(len) = ioctl_output_len(request) {
        add(arg, len);
    }
    Ok(())
}

/// Whether rrc knows what the ioctl writes (possibly nothing).
pub fn ioctl_is_known(request: u64) -> bool {
    let r = ioctl_request(request);
    ioctl_output_len(r).is_some()
        || r == libc::SIOCGIFCONF
        // Encoded as passing data in only: the kernel writes nothing.
        || ioc_dir(r) == IOC_WRITE
        || matches!(
            r as libc::c_ulong,
            libc::FIONBIO
                | libc::FIOCLEX
                | libc::FIONCLEX
                | libc::FIOASYNC
                | libc::TCSETS
                | libc::TCSETSW
                | libc::TCSETSF
                | libc::TIOCSWINSZ
                | libc::TIOCSPGRP
        )
}

/// recvmmsg fills up to `count` mmsghdr entries (64 bytes each: a msghdr
/// and the received length).
fn recvmmsg_outputs(
    mem: &dyn TraceeMemory,
    vec: u64,
    count: u64,
    add: &mut dyn FnMut(u64, u64),
) -> crate::Result<()> {
    for i in 0..count.min(1024) {
        let m = vec + i * 64;
        let len = mem.read_u32(m + 56)? as u64;
        let name = mem.read_u64(m)?;
        let namelen = mem.read_u32(m + 8)? as u64;
        let iov = mem.read_u64(m + 16)?;
        let iovlen = mem.read_u64(m + 24)?;
        add(m + 8, 4);
        add(name, namelen.min(128));
        scatter(mem, iov, iovlen, len, add)?;
        add(m + 40, 8);
        add(m + 48, 4);
        add(m + 56, 4);
    }
    Ok(())
}

/// Splits `total` bytes across an iovec array.
fn scatter(
    mem: &dyn TraceeMemory,
    iov: u64,
    count: u64,
    mut total: u64,
    add: &mut dyn FnMut(u64, u64),
) -> crate::Result<()> {
    for i in 0..count.min(1024) {
        if total == 0 {
            break;
        }
        let base = mem.read_u64(iov + i * 16)?;
        let len = mem.read_u64(iov + i * 16 + 8)?;
        let take = len.min(total);
        add(base, take);
        total -= take;
    }
    Ok(())
}

/// The syscall's name, or `syscall_<nr>`.
pub fn name(nr: c_long) -> String {
    match syscalls::Sysno::new(nr as usize) {
        Some(s) => s.name().to_string(),
        None => format!("syscall_{nr}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_syscalls_are_known() {
        // What memcached, redis and lighttpd were seen to use; a name
        // dropped from the tables by mistake shows up here, not in a replay.
        for nr in [
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_epoll_wait,
            libc::SYS_epoll_ctl,
            libc::SYS_accept4,
            libc::SYS_sendmsg,
            libc::SYS_recvfrom,
            libc::SYS_writev,
            libc::SYS_sendfile,
            libc::SYS_setsockopt,
            libc::SYS_clock_nanosleep,
            libc::SYS_setuid,
            libc::SYS_setgid,
            libc::SYS_setgroups,
            libc::SYS_restart_syscall,
            libc::SYS_timer_create,
            libc::SYS_rt_sigaction,
            libc::SYS_exit_group,
            libc::SYS_prlimit64,
            libc::SYS_sched_getaffinity,
            libc::SYS_uname,
        ] {
            assert!(is_known(nr), "{} should be known", name(nr));
        }
        assert!(
            !is_known(libc::SYS_kcmp),
            "kcmp is the canonical unknown syscall in tests"
        );
    }

    #[test]
    fn untrapped_calls_never_replay_as_emulated() {
        for nr in 0..512 {
            if runs_untrapped(nr) {
                assert!(
                    replay_action_kind(nr).is_none(),
                    "{} is both untrapped and trapped",
                    name(nr)
                );
            }
        }
    }
}
