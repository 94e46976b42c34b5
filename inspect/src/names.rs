//! Names for the numbers a trace holds: x86_64 syscalls (from rrc's
//! syscall table), errno values and signals.

use rrc_interposer::model;
use syscalls::Errno;

/// The x86_64 name of a syscall number, `syscall_<nr>` when unknown.
pub fn syscall_name(nr: u32) -> String {
    model::name(i64::from(nr))
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

/// How many arguments an x86_64 syscall takes, for syscalls rrc's
/// syscall table has a row for; the caller decides what to show for the
/// others.
pub fn syscall_arg_count(nr: u32) -> Option<usize> {
    model::arg_count(i64::from(nr))
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
