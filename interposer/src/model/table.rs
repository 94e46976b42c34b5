//! The syscall table: one row per x86-64 syscall, everything rrc knows
//! about it. Rows are sorted by number; `row()` finds one through an index
//! built at compile time.
//!
//! A row starts with the number, name and argument names, then says:
//! `ptr` which arguments are pointers; `untrapped` (the seccomp filter lets
//! it run) or `act` (how replay handles it as an event; none: unknown to
//! rrc); `fds` whether it allocates or frees descriptor numbers; `forks`
//! whether the new process copies memory; `creds` whether it changes IDs;
//! `cmp` the arguments replay compares; `named` whether divergence
//! reports use the argument names; `input` the program data replay
//! compares; `out` the memory the kernel writes. Argument-dependent rules
//! are functions: those below, and the ones in `outputs.rs` and
//! `inputs.rs` that `Out::Custom`/`In::Custom` point to.

use super::bpf;
use super::inputs::sendto_inputs;
use super::outputs as o;
use super::row::{ArgIs, Inputs as In, Outputs as Out, SyscallRow, When, A0, A1, A2, A3, A4, A5};
use super::sent::{copy_inputs, sendfile_inputs, tee_inputs};
use super::ReplayAction::{self, *};
use super::{InputSpec, Region, MAX_INPUT};

const fn s(nr: i64, name: &'static str, args: &'static [&'static str]) -> SyscallRow {
    SyscallRow::new(nr, name, args)
}

/// The first argument (a pid) is 0: the caller.
const CALLER_ARG0: &[ArgIs] = &[ArgIs::Eq(0, 0)];
/// setpriority(PRIO_PROCESS, 0, ...): the calling thread (PRIO_USER with
/// 0 would be every process of the caller's user).
const CALLER_PRIORITY: &[ArgIs] = &[ArgIs::Eq(0, libc::PRIO_PROCESS), ArgIs::Eq(1, 0)];
/// prctl's options rrc traps (linux/prctl.h): the one that names a
/// process, those that would show rrc's own seccomp filter and rdtsc
/// trapping (`PR_TSC_SIGSEGV`) instead of the program's, and the program
/// installing a seccomp filter (the recorder stops buffering calls then).
const PRCTL_TRAPPED: &[ArgIs] = &[
    ArgIs::Ne(0, o::PR_SCHED_CORE),
    ArgIs::Ne(0, o::PR_GET_SECCOMP),
    ArgIs::Ne(0, o::PR_SET_SECCOMP),
    ArgIs::Ne(0, o::PR_GET_TSC),
    ArgIs::Ne(0, o::PR_SET_TSC),
];

/// clone/unshare's flag for a thread's own descriptor table.
const CLONE_FILES: u64 = 0x400;
/// seccomp(2)'s operations and the flag that makes it return a descriptor.
const SECCOMP_SET_MODE_FILTER: u64 = 1;
const SECCOMP_FILTER_FLAG_NEW_LISTENER: u64 = 1 << 3;
/// struct timex's size.
const TIMEX: u64 = 208;

/// The stat structures' sizes.
const STAT: u64 = 144;
const STATFS: u64 = 120;

#[rustfmt::skip]
pub(super) const ROWS: &[SyscallRow] = &[
    s(0, "read", &["fd", "buf", "count"]).ptr(A1).act(Emulate).cmp(A0 | A2).named().out(Out::Returned(1, 1)),
    s(1, "write", &["fd", "buf", "count"]).ptr(A1).act(Emulate).cmp(A0 | A2).named().input(In::Buf(1, 2)),
    s(2, "open", &["path", "flags", "mode"]).ptr(A0).act(Open).fds().cmp(A1).named().input(In::Paths(&[0])),
    s(3, "close", &["fd"]).act(ExecuteChecked).fds().cmp(A0).at_once(),
    s(4, "stat", &["path", "statbuf"]).ptr(A0 | A1).act(Emulate).input(In::Paths(&[0])).out(Out::OnSuccess(&[(1, STAT)])),
    s(5, "fstat", &["fd", "statbuf"]).ptr(A1).act(Emulate).cmp(A0).out(Out::OnSuccess(&[(1, STAT)])).at_once(),
    s(6, "lstat", &["path", "statbuf"]).ptr(A0 | A1).act(Emulate).input(In::Paths(&[0])).out(Out::OnSuccess(&[(1, STAT)])),
    s(7, "poll", &["fds", "nfds", "timeout"]).ptr(A0).act(Emulate).cmp(A1).out(Out::Custom(o::poll)),
    s(8, "lseek", &["fd", "offset", "whence"]).act(Emulate).cmp(A0 | A1 | A2).named().at_once(),
    s(9, "mmap", &["addr", "len", "prot", "flags", "fd", "offset"]).ptr(A0).untrapped_if_anonymous().act(Execute).cmp(A1 | A2 | A3 | A4 | A5).named().at_once(),
    s(10, "mprotect", &["addr", "len", "prot"]).ptr(A0).untrapped(),
    s(11, "munmap", &["addr", "len"]).ptr(A0).untrapped(),
    s(12, "brk", &["addr"]).ptr(A0).untrapped(),
    // Signal masks decide where a signal can be delivered: trapped so that
    // an unblocked signal arrives at a visible syscall return.
    s(13, "rt_sigaction", &["sig", "act", "oact", "sigsetsize"]).ptr(A1 | A2).act(Execute).cmp(A0).at_once(),
    s(14, "rt_sigprocmask", &["how", "set", "oset", "sigsetsize"]).ptr(A1 | A2).act(Execute).cmp(A0).at_once(),
    s(15, "rt_sigreturn", &[]).handler_end(),
    s(16, "ioctl", &["fd", "request", "arg"]).ptr(A2).act_by(ioctl_action).fds_if(ioctl_makes_fd).cmp(A0 | A1).named().out(Out::Custom(o::ioctl)),
    s(17, "pread64", &["fd", "buf", "count", "offset"]).ptr(A1).act(Emulate).cmp(A0 | A2 | A3).named().out(Out::Returned(1, 1)),
    s(18, "pwrite64", &["fd", "buf", "count", "offset"]).ptr(A1).act(Emulate).cmp(A0 | A2 | A3).named().input(In::Buf(1, 2)),
    s(19, "readv", &["fd", "iov", "iovcnt"]).ptr(A1).act(Emulate).cmp(A0 | A2).named().out(Out::Custom(o::readv)),
    s(20, "writev", &["fd", "iov", "iovcnt"]).ptr(A1).act(Emulate).cmp(A0 | A2).named().input(In::Gather(1, 2)),
    s(21, "access", &["path", "mode"]).ptr(A0).act(Emulate).cmp(A1).input(In::Paths(&[0])),
    s(22, "pipe", &["fds"]).ptr(A0).act(ExecuteChecked).fds().out(Out::OnSuccess(&[(0, 8)])),
    s(23, "select", &["nfds", "readfds", "writefds", "exceptfds", "timeout"]).ptr(A1 | A2 | A3 | A4).act(Emulate).out(Out::Custom(o::select)),
    s(24, "sched_yield", &[]).untrapped_unless_serialized().act(Emulate),
    s(25, "mremap", &["old_addr", "old_len", "new_len", "flags", "new_addr"]).ptr(A0 | A4).untrapped(),
    s(26, "msync", &["addr", "len", "flags"]).ptr(A0).untrapped(),
    s(27, "mincore", &["addr", "len", "vec"]).ptr(A0 | A2).act(Emulate).out(Out::Custom(o::mincore)),
    s(28, "madvise", &["addr", "len", "advice"]).ptr(A0).untrapped(),
    // System V shared memory is memory: the program's own segments are
    // made again in replay, and the program's processes share them as
    // they did (see ReplayAction::SharedMemory). Detaching only unmaps.
    s(29, "shmget", &["key", "size", "shmflg"]).act(SharedMemory).cmp(A1 | A2),
    s(30, "shmat", &["shmid", "shmaddr", "shmflg"]).ptr(A1).act(SharedMemory).cmp(A2),
    s(31, "shmctl", &["shmid", "cmd", "buf"]).ptr(A2).act_by(shmctl_action).cmp(A1).out(Out::Custom(o::shmctl)),
    s(32, "dup", &["oldfd"]).act(ExecuteChecked).fds().cmp(A0).at_once(),
    s(33, "dup2", &["oldfd", "newfd"]).act(ExecuteChecked).fds().cmp(A0 | A1).at_once(),
    s(34, "pause", &[]).act(Emulate).waits(),
    s(35, "nanosleep", &["req", "rem"]).ptr(A0 | A1).act(Emulate).out(Out::Custom(o::nanosleep)).waits(),
    s(36, "getitimer", &["which", "value"]).ptr(A1).act(Emulate).out(Out::OnSuccess(&[(1, 32)])),
    s(37, "alarm", &["seconds"]).act(Emulate),
    s(38, "setitimer", &["which", "value", "ovalue"]).ptr(A1 | A2).act(Emulate).out(Out::OnSuccess(&[(2, 32)])),
    s(39, "getpid", &[]).act(Emulate),
    s(40, "sendfile", &["out_fd", "in_fd", "offset", "count"]).ptr(A2).act(Emulate).cmp(A0 | A1 | A3).input(In::Custom(sendfile_inputs)).out(Out::OnSuccess(&[(2, 8)])),
    s(41, "socket", &["domain", "type", "protocol"]).act(Placeholder).fds().cmp(A0 | A1 | A2),
    // The address is compared as data, not its pointer.
    s(42, "connect", &["fd", "addr", "addrlen"]).ptr(A1).act(Emulate).cmp(A0 | A2).input(In::SockAddr(1, 2)),
    s(43, "accept", &["fd", "addr", "addrlen"]).ptr(A1 | A2).act(Placeholder).fds().cmp(A0).out(Out::Custom(o::sockaddr)),
    s(44, "sendto", &["fd", "buf", "len", "flags", "addr", "addrlen"]).ptr(A1 | A4).act(Emulate).cmp(A0 | A2 | A3).input(In::Custom(sendto_inputs)),
    s(45, "recvfrom", &["fd", "buf", "len", "flags", "addr", "addrlen"]).ptr(A1 | A4 | A5).act(Emulate).cmp(A0 | A2 | A3).out(Out::Custom(o::recvfrom)),
    s(46, "sendmsg", &["fd", "msg", "flags"]).ptr(A1).act(Emulate).cmp(A0 | A2).input(In::MsgHdr(1)),
    s(47, "recvmsg", &["fd", "msg", "flags"]).ptr(A1).act(Emulate).cmp(A0 | A2).out(Out::Custom(o::recvmsg)),
    s(48, "shutdown", &["fd", "how"]).act(Emulate).cmp(A0 | A1),
    s(49, "bind", &["fd", "addr", "addrlen"]).ptr(A1).act(Emulate).cmp(A0 | A2).input(In::SockAddr(1, 2)),
    s(50, "listen", &["fd", "backlog"]).act(Emulate).cmp(A0 | A1),
    s(51, "getsockname", &["fd", "addr", "addrlen"]).ptr(A1 | A2).act(Emulate).cmp(A0).out(Out::Custom(o::sockaddr)),
    s(52, "getpeername", &["fd", "addr", "addrlen"]).ptr(A1 | A2).act(Emulate).cmp(A0).out(Out::Custom(o::sockaddr)),
    s(53, "socketpair", &["domain", "type", "protocol", "sv"]).ptr(A3).act(ExecuteChecked).fds().out(Out::OnSuccess(&[(3, 8)])),
    s(54, "setsockopt", &["fd", "level", "optname", "optval", "optlen"]).ptr(A3).act(Emulate).cmp(A0 | A1 | A2).out(Out::Custom(o::setsockopt)),
    s(55, "getsockopt", &["fd", "level", "optname", "optval", "optlen"]).ptr(A3 | A4).act(Emulate).cmp(A0 | A1 | A2).out(Out::Custom(o::getsockopt)),
    s(56, "clone", &["flags", "stack", "parent_tid", "child_tid", "tls"]).ptr(A1 | A2 | A3 | A4).act(Spawn).forks(When::If(clone_copies_memory)),
    s(57, "fork", &[]).act(Spawn).forks(When::Always),
    s(58, "vfork", &[]).act(Spawn),
    s(59, "execve", &["path", "argv", "envp"]).ptr(A0 | A1 | A2).act(Exec).input(In::Paths(&[0])),
    s(60, "exit", &["status"]).untrapped(),
    s(61, "wait4", &["pid", "wstatus", "options", "rusage"]).ptr(A1 | A3).act(Emulate).cmp(A0 | A2).out(Out::Custom(o::wait4)).waits(),
    s(62, "kill", &["pid", "sig"]).act(SignalSend).cmp(A1),
    s(63, "uname", &["buf"]).ptr(A0).act(Emulate).out(Out::OnSuccess(&[(0, 390)])).at_once(),
    // System V semaphores and message queues live outside the process, and
    // the program reaches them only through these calls: all emulated.
    s(64, "semget", &["key", "nsems", "semflg"]).act(Emulate).cmp(A1 | A2),
    s(65, "semop", &["semid", "sops", "nsops"]).ptr(A1).act(Emulate).cmp(A2),
    // The union argument is a value for some commands: not compared.
    s(66, "semctl", &["semid", "semnum", "cmd", "arg"]).act(Emulate).cmp(A1 | A2).out(Out::Custom(o::semctl)),
    s(67, "shmdt", &["shmaddr"]).ptr(A0).untrapped(),
    s(68, "msgget", &["key", "msgflg"]).act(Emulate).cmp(A1),
    // The message is its type (8 bytes) and msgsz bytes of text.
    s(69, "msgsnd", &["msqid", "msgp", "msgsz", "msgflg"]).ptr(A1).act(Emulate).cmp(A2 | A3).input(In::Custom(msgsnd_inputs)),
    s(70, "msgrcv", &["msqid", "msgp", "msgsz", "msgtyp", "msgflg"]).ptr(A1).act(Emulate).cmp(A2 | A3 | A4).out(Out::Custom(o::msgrcv)),
    s(71, "msgctl", &["msqid", "cmd", "buf"]).ptr(A2).act(Emulate).cmp(A1).out(Out::Custom(o::msgctl)),
    s(72, "fcntl", &["fd", "cmd", "arg"]).act_by(fcntl_action).fds_if(fcntl_dups).cmp(A0 | A1).named().out(Out::Custom(o::fcntl)),
    s(73, "flock", &["fd", "operation"]).act(Emulate),
    s(74, "fsync", &["fd"]).act(Emulate).cmp(A0),
    s(75, "fdatasync", &["fd"]).act(Emulate).cmp(A0),
    s(76, "truncate", &["path", "length"]).ptr(A0).act(Emulate).input(In::Paths(&[0])),
    s(77, "ftruncate", &["fd", "length"]).act(Emulate).cmp(A0 | A1),
    s(78, "getdents", &["fd", "dirp", "count"]).ptr(A1).act(Emulate).cmp(A0 | A2).out(Out::Returned(1, 1)),
    s(79, "getcwd", &["buf", "size"]).ptr(A0).act(Emulate).out(Out::Returned(0, 1)).at_once(),
    s(80, "chdir", &["path"]).ptr(A0).act(ChangeDirectory).input(In::Paths(&[0])),
    s(81, "fchdir", &["fd"]).act(ChangeDirectory).cmp(A0),
    s(82, "rename", &["oldpath", "newpath"]).ptr(A0 | A1).act(Emulate).input(In::Paths(&[0, 1])),
    s(83, "mkdir", &["path", "mode"]).ptr(A0).act(Emulate).cmp(A1).input(In::Paths(&[0])),
    s(84, "rmdir", &["path"]).ptr(A0).act(Emulate).input(In::Paths(&[0])),
    s(85, "creat", &["path", "mode"]).ptr(A0).act(Open).fds().input(In::Paths(&[0])),
    s(86, "link", &["oldpath", "newpath"]).ptr(A0 | A1).act(Emulate).input(In::Paths(&[0, 1])),
    s(87, "unlink", &["path"]).ptr(A0).act(Emulate).input(In::Paths(&[0])),
    s(88, "symlink", &["target", "linkpath"]).ptr(A0 | A1).act(Emulate).input(In::Paths(&[0, 1])),
    s(89, "readlink", &["path", "buf", "bufsiz"]).ptr(A0 | A1).act(Emulate).input(In::Paths(&[0])).out(Out::Returned(1, 1)),
    s(90, "chmod", &["path", "mode"]).ptr(A0).act(Emulate).cmp(A1).input(In::Paths(&[0])),
    s(91, "fchmod", &["fd", "mode"]).act(Emulate).cmp(A0 | A1),
    s(92, "chown", &["path", "owner", "group"]).ptr(A0).act(Emulate).input(In::Paths(&[0])),
    s(93, "fchown", &["fd", "owner", "group"]).act(Emulate),
    s(94, "lchown", &["path", "owner", "group"]).ptr(A0).act(Emulate).input(In::Paths(&[0])),
    s(95, "umask", &["mask"]).act(Emulate).cmp(A0),
    s(96, "gettimeofday", &["tv", "tz"]).ptr(A0 | A1).act(Emulate).out(Out::OnSuccess(&[(0, 16), (1, 8)])),
    s(97, "getrlimit", &["resource", "rlim"]).ptr(A1).act(Emulate).cmp(A0).out(Out::OnSuccess(&[(1, 16)])),
    s(98, "getrusage", &["who", "usage"]).ptr(A1).act(Emulate).out(Out::OnSuccess(&[(1, 144)])),
    s(99, "sysinfo", &["info"]).ptr(A0).act(Emulate).out(Out::OnSuccess(&[(0, 112)])).at_once(),
    s(100, "times", &["buf"]).ptr(A0).act(Emulate).out(Out::Always(&[(0, 32)])),
    s(101, "ptrace", &["request", "pid", "addr", "data"]).ptr(A2 | A3),
    s(102, "getuid", &[]).act(Emulate).at_once(),
    s(103, "syslog", &["type", "buf", "len"]).ptr(A1).act(Emulate).cmp(A0).out(Out::Custom(o::syslog)),
    s(104, "getgid", &[]).act(Emulate).at_once(),
    s(105, "setuid", &["uid"]).act(Emulate).creds(),
    s(106, "setgid", &["gid"]).act(Emulate).creds(),
    s(107, "geteuid", &[]).act(Emulate).at_once(),
    s(108, "getegid", &[]).act(Emulate).at_once(),
    s(109, "setpgid", &["pid", "pgid"]).act(ProcessGroup),
    s(110, "getppid", &[]).act(Emulate),
    s(111, "getpgrp", &[]).act(Emulate),
    s(112, "setsid", &[]).act(ProcessGroup),
    s(113, "setreuid", &["ruid", "euid"]).act(Emulate).creds(),
    s(114, "setregid", &["rgid", "egid"]).act(Emulate).creds(),
    s(115, "getgroups", &["size", "list"]).ptr(A1).act(Emulate).out(Out::Custom(o::getgroups)),
    s(116, "setgroups", &["size", "list"]).ptr(A1).act(Emulate).creds(),
    s(117, "setresuid", &["ruid", "euid", "suid"]).act(Emulate).creds(),
    s(118, "getresuid", &["ruid", "euid", "suid"]).ptr(A0 | A1 | A2).act(Emulate).out(Out::OnSuccess(&[(0, 4), (1, 4), (2, 4)])),
    s(119, "setresgid", &["rgid", "egid", "sgid"]).act(Emulate).creds(),
    s(120, "getresgid", &["rgid", "egid", "sgid"]).ptr(A0 | A1 | A2).act(Emulate).out(Out::OnSuccess(&[(0, 4), (1, 4), (2, 4)])),
    s(121, "getpgid", &["pid"]).act(Emulate),
    s(122, "setfsuid", &["fsuid"]).act(Emulate),
    s(123, "setfsgid", &["fsgid"]).act(Emulate),
    s(124, "getsid", &["pid"]).act(Emulate),
    s(125, "capget", &["hdrp", "datap"]).ptr(A0 | A1).act(Emulate).out(Out::Custom(o::capget)),
    // Capabilities are credentials: what prctl (which runs) may raise
    // and what an exec keeps follow them, so capset runs as setuid does.
    s(126, "capset", &["hdrp", "datap"]).ptr(A0 | A1).act(Emulate).creds(),
    s(127, "rt_sigpending", &["set", "sigsetsize"]).ptr(A0).act(Emulate).out(Out::Custom(o::rt_sigpending)),
    s(128, "rt_sigtimedwait", &["set", "info", "timeout", "sigsetsize"]).ptr(A0 | A1 | A2).act(Emulate).out(Out::OnSuccess(&[(1, 128)])),
    s(129, "rt_sigqueueinfo", &["tgid", "sig", "info"]).ptr(A2).act(SignalSend).cmp(A1),
    s(130, "rt_sigsuspend", &["mask", "sigsetsize"]).ptr(A0).act(Emulate),
    s(131, "sigaltstack", &["ss", "old_ss"]).ptr(A0 | A1).untrapped(),
    s(132, "utime", &["path", "times"]).ptr(A0 | A1),
    s(133, "mknod", &["path", "mode", "dev"]).ptr(A0).act(Emulate),
    s(134, "uselib", &["library"]).ptr(A0),
    s(135, "personality", &["persona"]).act(Emulate),
    s(136, "ustat", &["dev", "ubuf"]).ptr(A1),
    s(137, "statfs", &["path", "buf"]).ptr(A0 | A1).act(Emulate).input(In::Paths(&[0])).out(Out::OnSuccess(&[(1, STATFS)])),
    s(138, "fstatfs", &["fd", "buf"]).ptr(A1).act(Emulate).cmp(A0).out(Out::OnSuccess(&[(1, STATFS)])),
    s(139, "sysfs", &["option", "arg1", "arg2"]).act(Emulate),
    s(140, "getpriority", &["which", "who"]).act(Emulate),
    // Calls that may name another process run untrapped only for the
    // caller (an id of 0); naming a process, they are recorded, and replay
    // acts only on the program's own (see ReplayAction::OnProcess).
    s(141, "setpriority", &["which", "who", "prio"]).untrapped_when(CALLER_PRIORITY).act_by(setpriority_action).cmp(A0 | A2),
    s(142, "sched_setparam", &["pid", "param"]).ptr(A1).act(Emulate),
    s(143, "sched_getparam", &["pid", "param"]).ptr(A1).act(Emulate).out(Out::OnSuccess(&[(1, 4)])),
    s(144, "sched_setscheduler", &["pid", "policy", "param"]).ptr(A2).act(Emulate),
    s(145, "sched_getscheduler", &["pid"]).act(Emulate),
    s(146, "sched_get_priority_max", &["policy"]).act(Emulate).cmp(A0),
    s(147, "sched_get_priority_min", &["policy"]).act(Emulate).cmp(A0),
    s(148, "sched_rr_get_interval", &["pid", "tp"]).ptr(A1),
    s(149, "mlock", &["addr", "len"]).ptr(A0).untrapped(),
    s(150, "munlock", &["addr", "len"]).ptr(A0).untrapped(),
    s(151, "mlockall", &["flags"]).untrapped(),
    s(152, "munlockall", &[]).untrapped(),
    s(153, "vhangup", &[]),
    s(154, "modify_ldt", &["func", "ptr", "bytecount"]).ptr(A1),
    // Mount-table changes are never made again: replay does not touch the
    // system (the program's later opens are checked or emulated).
    s(155, "pivot_root", &["new_root", "put_old"]).ptr(A0 | A1).act(Emulate).input(In::Paths(&[0, 1])),
    // Removed from the kernel (ENOSYS): the recorded result.
    s(156, "_sysctl", &["args"]).ptr(A0).act(Emulate),
    // PR_SCHED_CORE takes a pid and can act on another process's cookie.
    s(157, "prctl", &["option", "arg2", "arg3", "arg4", "arg5"]).untrapped_when(PRCTL_TRAPPED).act_by(prctl_action).cmp(A0 | A1).out(Out::Custom(o::prctl)),
    s(158, "arch_prctl", &["code", "addr"]).untrapped(),
    // The system clock is never read back from or set by replay.
    s(159, "adjtimex", &["buf"]).ptr(A0).act(Emulate).out(Out::OnSuccess(&[(0, TIMEX)])),
    s(160, "setrlimit", &["resource", "rlim"]).ptr(A1).act_by(setrlimit_action).cmp(A0),
    s(161, "chroot", &["path"]).ptr(A0).act(Emulate),
    s(162, "sync", &[]).act(Emulate),
    s(163, "acct", &["filename"]).ptr(A0).act(Emulate).input(In::Paths(&[0])),
    s(164, "settimeofday", &["tv", "tz"]).ptr(A0 | A1).act(Emulate),
    // The source need not be a path, but is a string when given.
    s(165, "mount", &["source", "target", "filesystemtype", "mountflags", "data"]).ptr(A0 | A1 | A2 | A4).act(Emulate).cmp(A3).input(In::Paths(&[0, 1, 2])),
    s(166, "umount2", &["target", "flags"]).ptr(A0).act(Emulate),
    s(167, "swapon", &["path", "swapflags"]).ptr(A0),
    s(168, "swapoff", &["path"]).ptr(A0),
    s(169, "reboot", &["magic", "magic2", "cmd", "arg"]).ptr(A3),
    // Names of the system (or of a UTS namespace): never set by replay.
    s(170, "sethostname", &["name", "len"]).ptr(A0).act(Emulate).cmp(A1).input(In::Buf(0, 1)),
    s(171, "setdomainname", &["name", "len"]).ptr(A0).act(Emulate).cmp(A1).input(In::Buf(0, 1)),
    s(172, "iopl", &["level"]),
    s(173, "ioperm", &["from", "num", "turn_on"]),
    s(175, "init_module", &["module_image", "len", "param_values"]).ptr(A0 | A2),
    s(176, "delete_module", &["name", "flags"]).ptr(A0),
    s(179, "quotactl", &["cmd", "special", "id", "addr"]).ptr(A1 | A3).act(Emulate).cmp(A0 | A2).input(In::Paths(&[1])).out(Out::Custom(o::quotactl)),
    s(186, "gettid", &[]).act(Emulate).at_once(),
    s(187, "readahead", &["fd", "offset", "count"]).untrapped(),
    // Extended attributes change files: emulated, like chmod.
    s(188, "setxattr", &["path", "name", "value", "size", "flags"]).ptr(A0 | A1 | A2).act(Emulate).cmp(A3 | A4).input(In::Paths(&[0, 1])),
    s(189, "lsetxattr", &["path", "name", "value", "size", "flags"]).ptr(A0 | A1 | A2).act(Emulate).cmp(A3 | A4).input(In::Paths(&[0, 1])),
    s(190, "fsetxattr", &["fd", "name", "value", "size", "flags"]).ptr(A1 | A2).act(Emulate).cmp(A0 | A3 | A4).input(In::Paths(&[1])),
    s(191, "getxattr", &["path", "name", "value", "size"]).ptr(A0 | A1 | A2).act(Emulate).out(Out::Returned(2, 1)),
    s(192, "lgetxattr", &["path", "name", "value", "size"]).ptr(A0 | A1 | A2).act(Emulate).out(Out::Returned(2, 1)),
    s(193, "fgetxattr", &["fd", "name", "value", "size"]).ptr(A1 | A2).act(Emulate).out(Out::Returned(2, 1)),
    s(194, "listxattr", &["path", "list", "size"]).ptr(A0 | A1).act(Emulate).out(Out::Returned(1, 1)),
    s(195, "llistxattr", &["path", "list", "size"]).ptr(A0 | A1).act(Emulate).input(In::Paths(&[0])).out(Out::Returned(1, 1)),
    s(196, "flistxattr", &["fd", "list", "size"]).ptr(A1).act(Emulate).out(Out::Returned(1, 1)),
    s(197, "removexattr", &["path", "name"]).ptr(A0 | A1).act(Emulate).input(In::Paths(&[0, 1])),
    s(198, "lremovexattr", &["path", "name"]).ptr(A0 | A1).act(Emulate).input(In::Paths(&[0, 1])),
    s(199, "fremovexattr", &["fd", "name"]).ptr(A1).act(Emulate).cmp(A0).input(In::Paths(&[1])),
    s(200, "tkill", &["tid", "sig"]).act(SignalSend).cmp(A1),
    s(201, "time", &["tloc"]).ptr(A0).act(Emulate).out(Out::Always(&[(0, 8)])),
    s(202, "futex", &["uaddr", "op", "val", "timeout", "uaddr2", "val3"]).ptr(A0 | A3 | A4).untrapped_unless_serialized().act_by(futex_action).cmp(A1),
    s(203, "sched_setaffinity", &["pid", "len", "mask"]).ptr(A2).untrapped_when(CALLER_ARG0).act(OnProcess).cmp(A1),
    s(204, "sched_getaffinity", &["pid", "len", "mask"]).ptr(A2).act(Emulate).out(Out::Returned(2, 1)).at_once(),
    s(206, "io_setup", &["nr_events", "ctxp"]).ptr(A1),
    s(207, "io_destroy", &["ctx"]),
    s(208, "io_getevents", &["ctx", "min_nr", "nr", "events", "timeout"]).ptr(A3 | A4),
    s(209, "io_submit", &["ctx", "nr", "iocbpp"]).ptr(A2),
    s(210, "io_cancel", &["ctx", "iocb", "result"]).ptr(A1 | A2),
    s(212, "lookup_dcookie", &["cookie", "buf", "len"]).ptr(A1),
    s(213, "epoll_create", &["size"]).act(ExecuteChecked).fds(),
    s(216, "remap_file_pages", &["addr", "size", "prot", "pgoff", "flags"]).ptr(A0),
    s(217, "getdents64", &["fd", "dirp", "count"]).ptr(A1).act(Emulate).cmp(A0 | A2).out(Out::Returned(1, 1)),
    s(218, "set_tid_address", &["tidptr"]).ptr(A0).act(TidAddress),
    s(219, "restart_syscall", &[]).act(Emulate),
    s(220, "semtimedop", &["semid", "sops", "nsops", "timeout"]).ptr(A1 | A3).act(Emulate).cmp(A2),
    s(221, "fadvise64", &["fd", "offset", "len", "advice"]).untrapped(),
    s(222, "timer_create", &["clockid", "sevp", "timerid"]).ptr(A1 | A2).act(Emulate).out(Out::OnSuccess(&[(2, 4)])),
    s(223, "timer_settime", &["timerid", "flags", "new_value", "old_value"]).ptr(A2 | A3).act(Emulate).out(Out::OnSuccess(&[(3, 32)])),
    s(224, "timer_gettime", &["timerid", "curr_value"]).ptr(A1).act(Emulate).out(Out::OnSuccess(&[(1, 32)])),
    s(225, "timer_getoverrun", &["timerid"]).act(Emulate),
    s(226, "timer_delete", &["timerid"]).act(Emulate),
    s(227, "clock_settime", &["clock", "tp"]).ptr(A1).act(Emulate).cmp(A0),
    s(228, "clock_gettime", &["clock", "tp"]).ptr(A1).act(Emulate).cmp(A0).named().out(Out::OnSuccess(&[(1, 16)])),
    s(229, "clock_getres", &["clock", "res"]).ptr(A1).act(Emulate).cmp(A0).out(Out::OnSuccess(&[(1, 16)])),
    s(230, "clock_nanosleep", &["clock", "flags", "request", "remain"]).ptr(A2 | A3).act(Emulate).cmp(A0 | A1).out(Out::Custom(o::clock_nanosleep)).waits(),
    s(231, "exit_group", &["status"]).act(ExitGroup).cmp(A0),
    s(232, "epoll_wait", &["epfd", "events", "maxevents", "timeout"]).ptr(A1).act(Emulate).cmp(A0 | A2).out(Out::Returned(1, 12)),
    s(233, "epoll_ctl", &["epfd", "op", "fd", "event"]).ptr(A3).act(Emulate).cmp(A0 | A1 | A2),
    s(234, "tgkill", &["tgid", "tid", "sig"]).act(SignalSend).cmp(A2),
    s(235, "utimes", &["path", "times"]).ptr(A0 | A1),
    // NUMA policy decides where pages are placed, never what they hold:
    // emulated (the replaying machine may not have the nodes).
    s(237, "mbind", &["addr", "len", "mode", "nodemask", "maxnode", "flags"]).ptr(A0 | A3).act(Emulate).cmp(A2 | A4 | A5),
    s(238, "set_mempolicy", &["mode", "nodemask", "maxnode"]).ptr(A1).act(Emulate).cmp(A0 | A2),
    s(239, "get_mempolicy", &["mode", "nodemask", "maxnode", "addr", "flags"]).ptr(A0 | A1 | A3).act(Emulate).cmp(A2 | A4).out(Out::Custom(o::get_mempolicy)),
    // POSIX message queues live outside the process: the descriptor is a
    // placeholder and every call on it is emulated.
    s(240, "mq_open", &["name", "oflag", "mode", "attr"]).ptr(A0 | A3).act(Placeholder).fds().cmp(A1).input(In::Paths(&[0])),
    s(241, "mq_unlink", &["name"]).ptr(A0).act(Emulate).input(In::Paths(&[0])),
    s(242, "mq_timedsend", &["mqdes", "msg_ptr", "msg_len", "msg_prio", "abs_timeout"]).ptr(A1 | A4).act(Emulate).cmp(A0 | A2 | A3).input(In::Buf(1, 2)),
    s(243, "mq_timedreceive", &["mqdes", "msg_ptr", "msg_len", "msg_prio", "abs_timeout"]).ptr(A1 | A3 | A4).act(Emulate).cmp(A0 | A2).out(Out::Custom(o::mq_timedreceive)),
    s(244, "mq_notify", &["mqdes", "sevp"]).ptr(A1).act(Emulate).cmp(A0),
    s(245, "mq_getsetattr", &["mqdes", "newattr", "oldattr"]).ptr(A1 | A2).act(Emulate).cmp(A0).out(Out::OnSuccess(&[(2, 64)])),
    s(246, "kexec_load", &["entry", "nr_segments", "segments", "flags"]).ptr(A2),
    s(247, "waitid", &["idtype", "id", "infop", "options", "rusage"]).ptr(A2 | A4).act(Emulate).out(Out::OnSuccess(&[(2, 128), (4, 144)])).waits(),
    // Keys live in the kernel's keyrings, outside the process: emulated.
    s(248, "add_key", &["type", "description", "payload", "plen", "keyring"]).ptr(A0 | A1 | A2).act(Emulate).cmp(A3 | A4).input(In::Paths(&[0, 1])),
    s(249, "request_key", &["type", "description", "callout_info", "dest_keyring"]).ptr(A0 | A1 | A2).act(Emulate).cmp(A3).input(In::Paths(&[0, 1])),
    // Pointer arguments depend on the operation: only it is compared.
    s(250, "keyctl", &["operation", "arg2", "arg3", "arg4", "arg5"]).act(Emulate).cmp(A0).out(Out::Custom(o::keyctl)),
    s(251, "ioprio_set", &["which", "who", "ioprio"]).act(Emulate),
    s(252, "ioprio_get", &["which", "who"]).act(Emulate),
    s(253, "inotify_init", &[]).act(ExecuteChecked).fds(),
    s(254, "inotify_add_watch", &["fd", "path", "mask"]).ptr(A1).act(Emulate).input(In::Paths(&[1])),
    s(255, "inotify_rm_watch", &["fd", "wd"]).act(Emulate),
    s(256, "migrate_pages", &["pid", "maxnode", "old_nodes", "new_nodes"]).ptr(A2 | A3),
    s(257, "openat", &["dirfd", "path", "flags", "mode"]).ptr(A1).act(Open).fds().cmp(A0 | A2).named().input(In::Paths(&[1])),
    s(258, "mkdirat", &["dirfd", "path", "mode"]).ptr(A1).act(Emulate).cmp(A0 | A2).input(In::Paths(&[1])),
    s(259, "mknodat", &["dirfd", "path", "mode", "dev"]).ptr(A1).act(Emulate),
    s(260, "fchownat", &["dirfd", "path", "owner", "group", "flags"]).ptr(A1).act(Emulate).input(In::Paths(&[1])),
    s(261, "futimesat", &["dirfd", "path", "times"]).ptr(A1 | A2),
    s(262, "newfstatat", &["dirfd", "path", "statbuf", "flags"]).ptr(A1 | A2).act(Emulate).cmp(A0 | A3).input(In::Paths(&[1])).out(Out::OnSuccess(&[(2, STAT)])).at_once(),
    s(263, "unlinkat", &["dirfd", "path", "flags"]).ptr(A1).act(Emulate).cmp(A0 | A2).input(In::Paths(&[1])),
    s(264, "renameat", &["olddirfd", "oldpath", "newdirfd", "newpath"]).ptr(A1 | A3).act(Emulate).input(In::Paths(&[1, 3])),
    s(265, "linkat", &["olddirfd", "oldpath", "newdirfd", "newpath", "flags"]).ptr(A1 | A3).act(Emulate).input(In::Paths(&[1, 3])),
    s(266, "symlinkat", &["target", "newdirfd", "linkpath"]).ptr(A0 | A2).act(Emulate).input(In::Paths(&[0, 2])),
    s(267, "readlinkat", &["dirfd", "path", "buf", "bufsiz"]).ptr(A1 | A2).act(Emulate).input(In::Paths(&[1])).out(Out::Returned(2, 1)),
    s(268, "fchmodat", &["dirfd", "path", "mode"]).ptr(A1).act(Emulate).input(In::Paths(&[1])),
    s(269, "faccessat", &["dirfd", "path", "mode"]).ptr(A1).act(Emulate).cmp(A0 | A2).input(In::Paths(&[1])),
    s(270, "pselect6", &["nfds", "readfds", "writefds", "exceptfds", "timeout", "sigmask"]).ptr(A1 | A2 | A3 | A4 | A5).act(Emulate).out(Out::Custom(o::select)),
    s(271, "ppoll", &["fds", "nfds", "tmo_p", "sigmask", "sigsetsize"]).ptr(A0 | A2 | A3).act(Emulate).out(Out::Custom(o::ppoll)),
    // Namespaces and unshared tables are the process's own state, which
    // later calls depend on (a new PID namespace's init, a thread's own
    // descriptor table): run for real, and a replay that cannot make them
    // (another kernel, no privilege) diverges here.
    s(272, "unshare", &["flags"]).act(ExecuteChecked).fds_if(unshares_files).cmp(A0),
    s(273, "set_robust_list", &["head", "len"]).ptr(A0).untrapped(),
    s(274, "get_robust_list", &["pid", "head_ptr", "len_ptr"]).ptr(A1 | A2).untrapped_when(CALLER_ARG0).act(Emulate).out(Out::OnSuccess(&[(1, 8), (2, 8)])),
    s(275, "splice", &["fd_in", "off_in", "fd_out", "off_out", "len", "flags"]).ptr(A1 | A3).act(Emulate).input(In::Custom(copy_inputs)).out(Out::OnSuccess(&[(1, 8), (3, 8)])),
    s(276, "tee", &["fd_in", "fd_out", "len", "flags"]).act(Emulate).input(In::Custom(tee_inputs)),
    s(277, "sync_file_range", &["fd", "offset", "nbytes", "flags"]).act(Emulate).cmp(A0 | A1 | A2 | A3),
    s(278, "vmsplice", &["fd", "iov", "nr_segs", "flags"]).ptr(A1),
    s(279, "move_pages", &["pid", "count", "pages", "nodes", "status", "flags"]).ptr(A2 | A3 | A4),
    s(280, "utimensat", &["dirfd", "path", "times", "flags"]).ptr(A1 | A2).act(Emulate).input(In::Paths(&[1])),
    s(281, "epoll_pwait", &["epfd", "events", "maxevents", "timeout", "sigmask", "sigsetsize"]).ptr(A1 | A4).act(Emulate).cmp(A0 | A2).out(Out::Returned(1, 12)),
    s(282, "signalfd", &["fd", "mask", "sizemask"]).ptr(A1).act(ExecuteChecked).fds(),
    s(283, "timerfd_create", &["clockid", "flags"]).act(ExecuteChecked).fds().cmp(A0 | A1),
    s(284, "eventfd", &["initval"]).act(ExecuteChecked).fds(),
    s(285, "fallocate", &["fd", "mode", "offset", "len"]).act(Emulate),
    s(286, "timerfd_settime", &["fd", "flags", "new_value", "old_value"]).ptr(A2 | A3).act(Emulate).out(Out::OnSuccess(&[(3, 32)])),
    s(287, "timerfd_gettime", &["fd", "curr_value"]).ptr(A1).act(Emulate).out(Out::OnSuccess(&[(1, 32)])),
    s(288, "accept4", &["fd", "addr", "addrlen", "flags"]).ptr(A1 | A2).act(Placeholder).fds().cmp(A0 | A3).out(Out::Custom(o::sockaddr)),
    s(289, "signalfd4", &["fd", "mask", "sizemask", "flags"]).ptr(A1).act(ExecuteChecked).fds(),
    s(290, "eventfd2", &["initval", "flags"]).act(ExecuteChecked).fds().cmp(A0 | A1),
    s(291, "epoll_create1", &["flags"]).act(ExecuteChecked).fds().cmp(A0),
    s(292, "dup3", &["oldfd", "newfd", "flags"]).act(ExecuteChecked).fds().cmp(A0 | A1).at_once(),
    s(293, "pipe2", &["fds", "flags"]).ptr(A0).act(ExecuteChecked).fds().cmp(A1).out(Out::OnSuccess(&[(0, 8)])),
    s(294, "inotify_init1", &["flags"]).act(ExecuteChecked).fds().cmp(A0),
    s(295, "preadv", &["fd", "iov", "iovcnt", "pos_l", "pos_h"]).ptr(A1).act(Emulate).cmp(A0 | A2 | A3).out(Out::Custom(o::readv)),
    s(296, "pwritev", &["fd", "iov", "iovcnt", "pos_l", "pos_h"]).ptr(A1).act(Emulate).cmp(A0 | A2 | A3).input(In::Gather(1, 2)),
    s(297, "rt_tgsigqueueinfo", &["tgid", "tid", "sig", "info"]).ptr(A3).act(SignalSend).cmp(A2),
    // Counters of the machine: a placeholder, whose reads are emulated.
    s(298, "perf_event_open", &["attr", "pid", "cpu", "group_fd", "flags"]).ptr(A0).act(Placeholder).fds().cmp(A2 | A3 | A4),
    s(299, "recvmmsg", &["fd", "msgvec", "vlen", "flags", "timeout"]).ptr(A1 | A4).act(Emulate).out(Out::Custom(o::recvmmsg)),
    // Watches the file system, outside the process: a placeholder.
    s(300, "fanotify_init", &["flags", "event_f_flags"]).act(Placeholder).fds().cmp(A0 | A1),
    s(301, "fanotify_mark", &["fanotify_fd", "flags", "mask", "dirfd", "path"]).ptr(A4).act(Emulate).cmp(A0 | A1 | A2).input(In::Paths(&[4])),
    s(302, "prlimit64", &["pid", "resource", "new_limit", "old_limit"]).ptr(A2 | A3).act_by(prlimit_action).cmp(A1).out(Out::OnSuccess(&[(3, 16)])).at_once(),
    s(303, "name_to_handle_at", &["dirfd", "path", "handle", "mount_id", "flags"]).ptr(A1 | A2 | A3),
    s(304, "open_by_handle_at", &["mount_fd", "handle", "flags"]).ptr(A1),
    s(305, "clock_adjtime", &["clock", "buf"]).ptr(A1).act(Emulate).cmp(A0).out(Out::OnSuccess(&[(1, TIMEX)])),
    s(306, "syncfs", &["fd"]).act(Emulate),
    s(307, "sendmmsg", &["fd", "msgvec", "vlen", "flags"]).ptr(A1).act(Emulate).out(Out::Custom(o::sendmmsg)),
    // Not run: the descriptor may be a placeholder in replay, and calls that
    // see the namespace (uname, opens) are emulated or checked anyway.
    s(308, "setns", &["fd", "nstype"]).act(Emulate).cmp(A0 | A1),
    s(309, "getcpu", &["cpu", "node", "cache"]).ptr(A0 | A1 | A2).act(Emulate).out(Out::OnSuccess(&[(0, 4), (1, 4)])),
    s(310, "process_vm_readv", &["pid", "local_iov", "liovcnt", "remote_iov", "riovcnt", "flags"]).ptr(A1 | A3).act(Emulate).cmp(A2 | A4 | A5).out(Out::Custom(o::readv)),
    // Writes another process's memory: run for real when that process is
    // the program's own, never into another one (ReplayAction::OnProcess).
    s(311, "process_vm_writev", &["pid", "local_iov", "liovcnt", "remote_iov", "riovcnt", "flags"]).ptr(A1 | A3).act(OnProcess).cmp(A2 | A4 | A5),
    s(312, "kcmp", &["pid1", "pid2", "type", "idx1", "idx2"]).act(Emulate).cmp(A2 | A3 | A4),
    s(313, "finit_module", &["fd", "param_values", "flags"]).ptr(A1),
    // Scheduling never changes what a program computes: emulated, as
    // sched_setparam is. getattr writes at most `size` bytes of the
    // kernel's struct sched_attr.
    s(314, "sched_setattr", &["pid", "attr", "flags"]).ptr(A1).act(Emulate).cmp(A2),
    s(315, "sched_getattr", &["pid", "attr", "size", "flags"]).ptr(A1).act(Emulate).cmp(A2 | A3).out(Out::Custom(o::sched_getattr)),
    s(316, "renameat2", &["olddirfd", "oldpath", "newdirfd", "newpath", "flags"]).ptr(A1 | A3).act(Emulate).input(In::Paths(&[1, 3])),
    // The program's own filter decides which later calls fail or raise
    // SIGSYS without ever trapping to rrc (ERRNO and TRAP outrank rrc's
    // TRACE): replay installs it too, and must manage to.
    s(317, "seccomp", &["operation", "flags", "args"]).ptr(A2).act(ExecuteChecked).fds_if(seccomp_listener).cmp(A0 | A1).out(Out::Custom(o::seccomp)),
    s(318, "getrandom", &["buf", "len", "flags"]).ptr(A0).act(Emulate).cmp(A1 | A2).named().out(Out::Returned(0, 1)),
    s(319, "memfd_create", &["name", "flags"]).ptr(A0).act(ExecuteChecked).fds().cmp(A1),
    s(320, "kexec_file_load", &["kernel_fd", "initrd_fd", "cmdline_len", "cmdline", "flags"]).ptr(A3),
    s(321, "bpf", &["cmd", "attr", "size"]).ptr(A1).act_by(bpf::action).fds_if(bpf::makes_fd).cmp(A0 | A2).out(Out::Custom(bpf::outputs)),
    s(322, "execveat", &["dirfd", "path", "argv", "envp", "flags"]).ptr(A1 | A2 | A3).act(Exec).input(In::Paths(&[1])),
    s(323, "userfaultfd", &["flags"]),
    s(324, "membarrier", &["cmd", "flags", "cpu_id"]).untrapped(),
    s(325, "mlock2", &["addr", "len", "flags"]).ptr(A0).untrapped(),
    s(326, "copy_file_range", &["fd_in", "off_in", "fd_out", "off_out", "len", "flags"]).ptr(A1 | A3).act(Emulate).input(In::Custom(copy_inputs)).out(Out::OnSuccess(&[(1, 8), (3, 8)])),
    s(327, "preadv2", &["fd", "iov", "iovcnt", "pos_l", "pos_h", "flags"]).ptr(A1).act(Emulate).cmp(A0 | A2 | A3).out(Out::Custom(o::readv)),
    s(328, "pwritev2", &["fd", "iov", "iovcnt", "pos_l", "pos_h", "flags"]).ptr(A1).act(Emulate).cmp(A0 | A2 | A3).input(In::Gather(1, 2)),
    s(329, "pkey_mprotect", &["addr", "len", "prot", "pkey"]).ptr(A0).untrapped(),
    s(330, "pkey_alloc", &["flags", "access_rights"]).untrapped(),
    s(331, "pkey_free", &["pkey"]).untrapped(),
    s(332, "statx", &["dirfd", "path", "flags", "mask", "statxbuf"]).ptr(A1 | A4).act(Emulate).input(In::Paths(&[1])).out(Out::OnSuccess(&[(4, 256)])).at_once(),
    s(333, "io_pgetevents", &["ctx", "min_nr", "nr", "events", "timeout", "usig"]).ptr(A3 | A4 | A5),
    s(334, "rseq", &["rseq", "rseq_len", "flags", "sig"]).ptr(A0).untrapped(),
    // The descriptor is a placeholder in replay (pidfd_open's): emulated,
    // nothing is sent (a signal the program's own process took is
    // replayed there, as any other it received).
    s(424, "pidfd_send_signal", &["pidfd", "sig", "info", "flags"]).ptr(A2).act(Emulate).cmp(A0 | A1 | A3),
    s(425, "io_uring_setup", &["entries", "params"]).ptr(A1),
    s(426, "io_uring_enter", &["fd", "to_submit", "min_complete", "flags", "arg", "argsz"]).ptr(A4),
    s(427, "io_uring_register", &["fd", "opcode", "arg", "nr_args"]).ptr(A2),
    // A descriptor for a mount: a placeholder, like a socket's.
    s(428, "open_tree", &["dirfd", "path", "flags"]).ptr(A1).act(Placeholder).fds().cmp(A0 | A2).input(In::Paths(&[1])),
    // The new mount API: its descriptors (a file system being set up, a
    // detached mount) are placeholders, and mount-table changes are never
    // made again, as for mount.
    s(429, "move_mount", &["from_dirfd", "from_path", "to_dirfd", "to_path", "flags"]).ptr(A1 | A3).act(Emulate).cmp(A0 | A2 | A4).input(In::Paths(&[1, 3])),
    s(430, "fsopen", &["fsname", "flags"]).ptr(A0).act(Placeholder).fds().cmp(A1).input(In::Paths(&[0])),
    s(431, "fsconfig", &["fd", "cmd", "key", "value", "aux"]).ptr(A2 | A3).act(Emulate).cmp(A0 | A1 | A4),
    s(432, "fsmount", &["fd", "flags", "attr_flags"]).act(Placeholder).fds().cmp(A0 | A1 | A2),
    s(433, "fspick", &["dirfd", "path", "flags"]).ptr(A1).act(Placeholder).fds().cmp(A0 | A2).input(In::Paths(&[1])),
    s(434, "pidfd_open", &["pid", "flags"]).act(Placeholder).fds().cmp(A1),
    s(435, "clone3", &["cl_args", "size"]).ptr(A0).act(Spawn),
    s(436, "close_range", &["first", "last", "flags"]).act(ExecuteChecked).fds().cmp(A0 | A1),
    s(437, "openat2", &["dirfd", "path", "how", "size"]).ptr(A1 | A2).act(Open).fds().input(In::Paths(&[1])),
    s(438, "pidfd_getfd", &["pidfd", "targetfd", "flags"]),
    s(439, "faccessat2", &["dirfd", "path", "mode", "flags"]).ptr(A1).act(Emulate).cmp(A0 | A2).input(In::Paths(&[1])),
    s(440, "process_madvise", &["pidfd", "iov", "vlen", "advice", "flags"]).ptr(A1),
    s(441, "epoll_pwait2", &["epfd", "events", "maxevents", "timeout", "sigmask", "sigsetsize"]).ptr(A1 | A3 | A4).act(Emulate).cmp(A0 | A2).out(Out::Returned(1, 12)),
    s(442, "mount_setattr", &["dirfd", "path", "flags", "attr", "size"]).ptr(A1 | A3).act(Emulate).cmp(A0 | A2 | A4).input(In::Paths(&[1])),
    s(443, "quotactl_fd", &["fd", "cmd", "id", "addr"]).ptr(A3),
    // Landlock restricts what the program may reach, and every call that
    // reaches the file system is replayed from the trace (or checked):
    // emulated, with a placeholder for a ruleset.
    s(444, "landlock_create_ruleset", &["attr", "size", "flags"]).ptr(A0).act_by(landlock_action).fds_if(landlock_makes_ruleset).cmp(A1 | A2),
    s(445, "landlock_add_rule", &["ruleset_fd", "rule_type", "rule_attr", "flags"]).ptr(A2).act(Emulate).cmp(A0 | A1 | A3),
    s(446, "landlock_restrict_self", &["ruleset_fd", "flags"]).act(Emulate).cmp(A0 | A1),
    s(447, "memfd_secret", &["flags"]),
    s(448, "process_mrelease", &["pidfd", "flags"]),
    s(449, "futex_waitv", &["waiters", "nr_futexes", "flags", "timeout", "clockid"]).ptr(A0 | A3).untrapped_unless_serialized().act(Emulate).cmp(A1),
    s(450, "set_mempolicy_home_node", &["start", "len", "home_node", "flags"]),
    s(451, "cachestat", &["fd", "cstat_range", "cstat", "flags"]).ptr(A1 | A2),
    s(452, "fchmodat2", &["dirfd", "path", "mode", "flags"]).ptr(A1).act(Emulate).cmp(A0 | A2 | A3).input(In::Paths(&[1])),
    s(453, "map_shadow_stack", &["addr", "size", "flags"]),
    s(454, "futex_wake", &["uaddr", "mask", "nr", "flags"]).ptr(A0),
    s(455, "futex_wait", &["uaddr", "val", "mask", "flags", "timeout", "clockid"]).ptr(A0 | A4),
    s(456, "futex_requeue", &["waiters", "flags", "nr_wake", "nr_requeue"]).ptr(A0),
];

/// fork, and clone without CLONE_VM or CLONE_VFORK: the child starts
/// with a copy of memory as it is at that moment, so where the call falls
/// among the other threads' work decides what the child sees. Its place
/// in the event order is taken at its entry (record) and it runs only at
/// that place (replay). glibc forks with clone; clone3 makes its threads.
fn clone_copies_memory(args: &[u64; 6]) -> bool {
    args[0] & (libc::CLONE_VM | libc::CLONE_VFORK) as u64 == 0
}

/// unshare(CLONE_FILES) gives the thread a copy of the descriptor table:
/// which numbers it holds depends on the other threads' opens and closes.
fn unshares_files(args: &[u64; 6]) -> bool {
    args[0] & CLONE_FILES != 0
}

/// A filter installed with a notification listener returns a descriptor.
fn seccomp_listener(args: &[u64; 6]) -> bool {
    args[0] == SECCOMP_SET_MODE_FILTER && args[1] & SECCOMP_FILTER_FLAG_NEW_LISTENER != 0
}

/// msgsnd's message: its type and `msgsz` bytes of text.
fn msgsnd_inputs(args: &[u64; 6]) -> Vec<InputSpec> {
    let len = args[2].saturating_add(8).min(MAX_INPUT);
    vec![InputSpec::Bytes(Region {
        addr: args[1],
        len: len as usize,
    })]
}

/// shmctl(IPC_RMID) removes replay's own segment; the rest reads or
/// sets a segment's description, emulated.
fn shmctl_action(args: &[u64; 6]) -> ReplayAction {
    if o::ipc_cmd(args[1]) == libc::IPC_RMID as u64 {
        SharedMemory
    } else {
        Emulate
    }
}

/// Limits on the process's own resources that replay reproduces by
/// running the program's code natively: how far its stack grows (a stack
/// overflow's depth), its data segment, the descriptors it may have open
/// (replay makes pipes and duplicates for real), locked memory, and core
/// dumps. Address space (RLIMIT_AS) is not among them: rrc's own
/// mappings take some of it (the recorder raises it by their size).
fn applies_in_replay(resource: u64) -> bool {
    matches!(
        resource as u32,
        libc::RLIMIT_STACK
            | libc::RLIMIT_DATA
            | libc::RLIMIT_NOFILE
            | libc::RLIMIT_MEMLOCK
            | libc::RLIMIT_CORE
    )
}

/// setrlimit of such a resource runs in replay as well.
fn setrlimit_action(args: &[u64; 6]) -> ReplayAction {
    if applies_in_replay(args[0]) {
        Apply
    } else {
        Emulate
    }
}

/// prlimit64 setting such a limit of the caller itself (glibc's
/// setrlimit), without reading the old one back (which replay would
/// write from its own limits), runs in replay as well.
fn prlimit_action(args: &[u64; 6]) -> ReplayAction {
    if args[0] as u32 == 0 && args[2] != 0 && args[3] == 0 && applies_in_replay(args[1]) {
        Apply
    } else {
        Emulate
    }
}

/// PR_SET_SECCOMP installs the program's own filter, which replay must
/// install too (as seccomp's); the other trapped options are emulated.
fn prctl_action(args: &[u64; 6]) -> ReplayAction {
    if args[0] as u32 == o::PR_SET_SECCOMP {
        ExecuteChecked
    } else {
        Emulate
    }
}

/// landlock_create_ruleset with LANDLOCK_CREATE_RULESET_VERSION returns
/// the ABI's version, not a descriptor.
fn landlock_makes_ruleset(args: &[u64; 6]) -> bool {
    args[2] & 1 == 0
}

fn landlock_action(args: &[u64; 6]) -> ReplayAction {
    if landlock_makes_ruleset(args) {
        Placeholder
    } else {
        Emulate
    }
}

/// setpriority of a user's processes is never made in replay (they are
/// not the program's); of a thread, process or process group, only of the
/// program's own.
fn setpriority_action(args: &[u64; 6]) -> ReplayAction {
    if args[0] as u32 == libc::PRIO_USER {
        Emulate
    } else {
        OnProcess
    }
}

/// fcntl allocates a descriptor number only when it duplicates one.
fn fcntl_dups(args: &[u64; 6]) -> bool {
    matches!(args[1] as i32, libc::F_DUPFD | libc::F_DUPFD_CLOEXEC)
}

/// fcntl's duplicates are checked like dup's; descriptor flags are process
/// state (they decide what exec keeps); the rest is emulated.
fn fcntl_action(args: &[u64; 6]) -> ReplayAction {
    match args[1] as i32 {
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => ExecuteChecked,
        libc::F_SETFD | libc::F_GETFD => Execute,
        libc::F_SETFL => Apply,
        _ => Emulate,
    }
}

/// TIOCGPTPEER opens a terminal's peer: a new descriptor.
fn ioctl_makes_fd(args: &[u64; 6]) -> bool {
    super::ioctl::ioctl_makes_fd(args[1])
}

/// ioctl's descriptor-flag requests are fcntl's F_SETFD and F_SETFL under
/// other names, and run as those do; a peer terminal's descriptor is a
/// placeholder, as the terminal's own is; the rest is emulated.
fn ioctl_action(args: &[u64; 6]) -> ReplayAction {
    match super::ioctl::ioctl_request(args[1]) as libc::c_ulong {
        libc::FIOCLEX | libc::FIONCLEX => Execute,
        libc::FIONBIO | libc::FIOASYNC => Apply,
        super::ioctl::TIOCGPTPEER => Placeholder,
        _ => Emulate,
    }
}

/// Serialised replay (the only time futex traps) runs threads in their
/// recorded order, so a wait need not block: it returns its recorded
/// result at its place, and a wake has no one to wake. Other operations
/// (requeue, wake-op) change memory or queues, and run.
fn futex_action(args: &[u64; 6]) -> ReplayAction {
    let cmd = args[1] as i32 & !(libc::FUTEX_PRIVATE_FLAG | libc::FUTEX_CLOCK_REALTIME);
    match cmd {
        libc::FUTEX_WAIT | libc::FUTEX_WAIT_BITSET | libc::FUTEX_WAKE | libc::FUTEX_WAKE_BITSET => {
            Emulate
        }
        _ => Execute,
    }
}

/// Numbers at or above this have no row (the index's size).
pub(super) const INDEX_LEN: usize = 512;
const NO_ROW: u16 = u16::MAX;

/// `INDEX[nr]` is the position of syscall `nr`'s row in `ROWS`. Building
/// it checks at compile time that rows are sorted, unique and in range.
const INDEX: [u16; INDEX_LEN] = build_index();

const fn build_index() -> [u16; INDEX_LEN] {
    let mut index = [NO_ROW; INDEX_LEN];
    let mut i = 0;
    while i < ROWS.len() {
        let nr = ROWS[i].nr;
        assert!(
            nr >= 0 && (nr as usize) < INDEX_LEN,
            "row number out of range"
        );
        assert!(
            i == 0 || ROWS[i - 1].nr < nr,
            "rows must be sorted and unique"
        );
        index[nr as usize] = i as u16;
        i += 1;
    }
    index
}

/// The syscall's row, if it has one.
pub fn row(nr: i64) -> Option<&'static SyscallRow> {
    let at = *INDEX.get(usize::try_from(nr).ok()?)?;
    ROWS.get(usize::from(at))
}

/// Every row, sorted by number.
pub fn rows() -> &'static [SyscallRow] {
    ROWS
}
