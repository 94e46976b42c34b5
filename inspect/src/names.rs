//! Names for the numbers a trace holds: x86_64 syscalls, errno values and
//! signals.

use syscalls::x86_64::Sysno;
use syscalls::Errno;

/// The x86_64 name of a syscall number, `syscall_<nr>` when unknown.
pub fn syscall_name(nr: u32) -> String {
    match known_syscall_name(nr) {
        Some(name) => name.to_string(),
        None => format!("syscall_{nr}"),
    }
}

fn known_syscall_name(nr: u32) -> Option<&'static str> {
    let nr = usize::try_from(nr).ok()?;
    Sysno::new(nr).map(|sysno| sysno.name())
}

/// The errno constant's name (`ENOENT`), if the number is a known errno.
pub fn errno_name(errno: i64) -> Option<&'static str> {
    let errno = i32::try_from(errno).ok()?;
    Errno::new(errno).name()
}

const SIGNAL_NAMES: [&str; 31] = [
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
];

/// The usual glibc real-time signal base (the kernel's 32 and 33 are taken
/// by glibc itself).
const GLIBC_SIGRTMIN: i32 = 34;
const SIGRTMAX: i32 = 64;

/// The x86_64 Linux name of a signal number (`SIGALRM`, `SIGRTMIN+2`).
pub fn signal_name(signo: i32) -> String {
    let standard = usize::try_from(signo)
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|index| SIGNAL_NAMES.get(index));
    match standard {
        Some(name) => name.to_string(),
        None if (GLIBC_SIGRTMIN..=SIGRTMAX).contains(&signo) => {
            format!("SIGRTMIN+{}", signo - GLIBC_SIGRTMIN)
        }
        None => format!("SIG{signo}"),
    }
}

/// How many arguments an x86_64 syscall takes, for syscalls this table
/// knows; the caller decides what to show for the others.
pub fn syscall_arg_count(nr: u32) -> Option<usize> {
    let count = match known_syscall_name(nr)? {
        "sched_yield" | "getpid" | "getppid" | "getuid" | "geteuid" | "getgid" | "getegid"
        | "gettid" | "fork" | "vfork" | "pause" | "getpgrp" | "setsid" | "sync" | "munlockall"
        | "vhangup" | "rt_sigreturn" | "inotify_init" | "restart_syscall" => 0,

        "close"
        | "brk"
        | "exit"
        | "exit_group"
        | "dup"
        | "pipe"
        | "alarm"
        | "uname"
        | "fsync"
        | "fdatasync"
        | "chdir"
        | "fchdir"
        | "rmdir"
        | "unlink"
        | "umask"
        | "times"
        | "sysinfo"
        | "setuid"
        | "setgid"
        | "getpgid"
        | "setfsuid"
        | "setfsgid"
        | "getsid"
        | "time"
        | "epoll_create"
        | "epoll_create1"
        | "personality"
        | "acct"
        | "chroot"
        | "set_tid_address"
        | "shmdt"
        | "iopl"
        | "eventfd"
        | "inotify_init1"
        | "io_destroy"
        | "mlockall"
        | "swapoff"
        | "timer_getoverrun"
        | "timer_delete"
        | "unshare"
        | "syncfs"
        | "adjtimex"
        | "uselib"
        | "userfaultfd"
        | "pkey_free"
        | "memfd_secret"
        | "mq_unlink"
        | "sched_getscheduler"
        | "sched_get_priority_max"
        | "sched_get_priority_min"
        | "_sysctl" => 1,

        "stat"
        | "fstat"
        | "lstat"
        | "munmap"
        | "access"
        | "dup2"
        | "nanosleep"
        | "getitimer"
        | "shutdown"
        | "listen"
        | "kill"
        | "msgget"
        | "flock"
        | "truncate"
        | "ftruncate"
        | "getcwd"
        | "rename"
        | "mkdir"
        | "creat"
        | "link"
        | "symlink"
        | "chmod"
        | "fchmod"
        | "gettimeofday"
        | "getrlimit"
        | "getrusage"
        | "setpgid"
        | "setreuid"
        | "setregid"
        | "getgroups"
        | "setgroups"
        | "capget"
        | "capset"
        | "rt_sigpending"
        | "rt_sigsuspend"
        | "sigaltstack"
        | "utime"
        | "ustat"
        | "statfs"
        | "fstatfs"
        | "getpriority"
        | "sched_setparam"
        | "sched_getparam"
        | "sched_rr_get_interval"
        | "mlock"
        | "munlock"
        | "pivot_root"
        | "arch_prctl"
        | "setrlimit"
        | "settimeofday"
        | "umount2"
        | "swapon"
        | "sethostname"
        | "setdomainname"
        | "delete_module"
        | "removexattr"
        | "lremovexattr"
        | "fremovexattr"
        | "tkill"
        | "io_setup"
        | "timer_gettime"
        | "clock_settime"
        | "clock_gettime"
        | "clock_getres"
        | "utimes"
        | "mq_notify"
        | "ioprio_get"
        | "inotify_rm_watch"
        | "set_robust_list"
        | "timerfd_create"
        | "timerfd_gettime"
        | "eventfd2"
        | "pipe2"
        | "fanotify_init"
        | "clock_adjtime"
        | "setns"
        | "memfd_create"
        | "pkey_alloc"
        | "io_uring_setup"
        | "fsopen"
        | "pidfd_open"
        | "clone3"
        | "landlock_restrict_self"
        | "process_mrelease" => 2,

        "read"
        | "write"
        | "open"
        | "poll"
        | "lseek"
        | "mprotect"
        | "ioctl"
        | "readv"
        | "writev"
        | "msync"
        | "mincore"
        | "madvise"
        | "shmget"
        | "shmat"
        | "shmctl"
        | "setitimer"
        | "socket"
        | "connect"
        | "accept"
        | "sendmsg"
        | "recvmsg"
        | "bind"
        | "getsockname"
        | "getpeername"
        | "execve"
        | "semget"
        | "semop"
        | "msgctl"
        | "fcntl"
        | "getdents"
        | "readlink"
        | "chown"
        | "fchown"
        | "lchown"
        | "syslog"
        | "setresuid"
        | "getresuid"
        | "setresgid"
        | "getresgid"
        | "rt_sigqueueinfo"
        | "mknod"
        | "sysfs"
        | "setpriority"
        | "sched_setscheduler"
        | "modify_ldt"
        | "ioperm"
        | "init_module"
        | "readahead"
        | "listxattr"
        | "llistxattr"
        | "flistxattr"
        | "sched_setaffinity"
        | "sched_getaffinity"
        | "io_submit"
        | "io_cancel"
        | "lookup_dcookie"
        | "getdents64"
        | "timer_create"
        | "tgkill"
        | "set_mempolicy"
        | "mq_getsetattr"
        | "ioprio_set"
        | "inotify_add_watch"
        | "mkdirat"
        | "futimesat"
        | "unlinkat"
        | "symlinkat"
        | "fchmodat"
        | "faccessat"
        | "get_robust_list"
        | "signalfd"
        | "dup3"
        | "getcpu"
        | "open_by_handle_at"
        | "finit_module"
        | "sched_setattr"
        | "seccomp"
        | "getrandom"
        | "bpf"
        | "membarrier"
        | "mlock2"
        | "open_tree"
        | "fsmount"
        | "fspick"
        | "close_range"
        | "pidfd_getfd"
        | "landlock_create_ruleset"
        | "map_shadow_stack" => 3,

        "rt_sigaction"
        | "rt_sigprocmask"
        | "pread64"
        | "pwrite64"
        | "sendfile"
        | "socketpair"
        | "wait4"
        | "semctl"
        | "msgsnd"
        | "ptrace"
        | "rt_sigtimedwait"
        | "reboot"
        | "quotactl"
        | "getxattr"
        | "lgetxattr"
        | "fgetxattr"
        | "semtimedop"
        | "fadvise64"
        | "timer_settime"
        | "clock_nanosleep"
        | "epoll_wait"
        | "epoll_ctl"
        | "mq_open"
        | "kexec_load"
        | "request_key"
        | "migrate_pages"
        | "openat"
        | "mknodat"
        | "newfstatat"
        | "renameat"
        | "readlinkat"
        | "tee"
        | "sync_file_range"
        | "vmsplice"
        | "utimensat"
        | "fallocate"
        | "timerfd_settime"
        | "accept4"
        | "signalfd4"
        | "rt_tgsigqueueinfo"
        | "prlimit64"
        | "sendmmsg"
        | "sched_getattr"
        | "pkey_mprotect"
        | "rseq"
        | "pidfd_send_signal"
        | "io_uring_register"
        | "openat2"
        | "faccessat2"
        | "quotactl_fd"
        | "landlock_add_rule"
        | "set_mempolicy_home_node"
        | "cachestat"
        | "fchmodat2"
        | "futex_wake"
        | "futex_requeue" => 4,

        "select" | "mremap" | "setsockopt" | "getsockopt" | "clone" | "msgrcv" | "prctl"
        | "mount" | "setxattr" | "lsetxattr" | "fsetxattr" | "io_getevents"
        | "remap_file_pages" | "get_mempolicy" | "mq_timedsend" | "mq_timedreceive" | "waitid"
        | "add_key" | "keyctl" | "fchownat" | "linkat" | "ppoll" | "preadv" | "pwritev"
        | "perf_event_open" | "recvmmsg" | "fanotify_mark" | "name_to_handle_at" | "kcmp"
        | "renameat2" | "kexec_file_load" | "execveat" | "statx" | "move_mount" | "fsconfig"
        | "process_madvise" | "mount_setattr" | "futex_waitv" => 5,

        "mmap" | "sendto" | "recvfrom" | "futex" | "mbind" | "pselect6" | "splice"
        | "move_pages" | "epoll_pwait" | "process_vm_readv" | "process_vm_writev"
        | "copy_file_range" | "preadv2" | "pwritev2" | "io_pgetevents" | "io_uring_enter"
        | "epoll_pwait2" | "futex_wait" => 6,

        _ => return None,
    };
    Some(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_known_and_unknown_syscalls() {
        assert_eq!(syscall_name(0), "read");
        assert_eq!(syscall_name(257), "openat");
        assert_eq!(syscall_name(1000), "syscall_1000");
        assert_eq!(syscall_name(u32::MAX), format!("syscall_{}", u32::MAX));
    }

    #[test]
    fn names_errnos_and_signals() {
        assert_eq!(errno_name(2), Some("ENOENT"));
        assert_eq!(errno_name(100_000), None);
        assert_eq!(signal_name(14), "SIGALRM");
        assert_eq!(signal_name(31), "SIGSYS");
        assert_eq!(signal_name(36), "SIGRTMIN+2");
        assert_eq!(signal_name(0), "SIG0");
        assert_eq!(signal_name(-3), "SIG-3");
    }

    #[test]
    fn counts_arguments_of_common_syscalls() {
        assert_eq!(syscall_arg_count(0), Some(3));
        assert_eq!(syscall_arg_count(9), Some(6));
        assert_eq!(syscall_arg_count(39), Some(0));
        assert_eq!(syscall_arg_count(5000), None);
    }

    /// Every name and argument count, compared with a golden file made
    /// before the names came from rrc's syscall table (`RRC_BLESS=1`
    /// rewrites it after an intended change).
    #[test]
    fn names_and_counts_match_golden() {
        use std::fmt::Write as _;
        let golden = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/names.txt");
        let mut now = String::new();
        for nr in (0..=1100).chain([u32::MAX]) {
            let _ = writeln!(now, "{nr} {} {:?}", syscall_name(nr), syscall_arg_count(nr));
        }
        if std::env::var_os("RRC_BLESS").is_some() {
            std::fs::write(golden, &now).expect("write golden");
            return;
        }
        assert_eq!(std::fs::read_to_string(golden).expect("golden"), now);
    }
}
