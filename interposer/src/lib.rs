//! Interposition on a traced program: a seccomp-bpf filter that traps only
//! the syscalls rrc must record or emulate, a ptrace tracer that follows
//! every thread, and the syscall model that says what each trapped call
//! reads and writes.
//!
//! The recorder and the replayer share one tracer loop, [`drive`], and
//! implement [`StopHandler`]; this crate also gives them the mechanics:
//! [`spawn_traced`], [`Tracee`] (registers and memory of one stopped
//! thread) and [`model`].

mod auxv;
mod clock;
mod colocate;
mod driver;
mod elf;
mod filter;
mod idmap;
pub mod model;
mod quiesce;
mod rdtsc_scan;
mod spawn;
mod startup_pin;
mod stop;
mod tracee;

pub use auxv::{prepare_exec, AT_RANDOM_LEN};
pub use clock::StopClock;
pub use driver::{drive, is_restart, Ended, Idle, Prologue, SignalStep, StopHandler, TaskEvent};
pub use filter::build_filter;
pub use idmap::{IdHasher, IdMap};
pub use quiesce::{is_running, wait_until_settled, SETTLE_RECENT};
pub use rdtsc_scan::{
    code_has_rdtsc, elf_has_rdtsc, maps_code_of_a_file, may_be_tsc_fault, prewarm_rdtsc_scan,
    RdtscScan, RdtscScanner, ScanAhead,
};
pub use spawn::{
    fd_identity, fd_target, file_digest, identity_of, inherited_fds, no_huge_pages_for_rrc,
    reclaim_terminal, shim_path, spawn_traced, traced_env, SignalState, SpawnOptions,
    TRACE_OPTIONS,
};
pub use stop::{
    foreign_syscall, is_fault, kills_by_default, poll_any, signal_info, signal_stop_kind, wait_any,
    Polled, SignalStopKind, Stop,
};
pub use tracee::{siginfo_to_bytes, SyscallRegs, Tracee, TraceeMemory, TscInstruction};

use nix::errno::Errno;

#[derive(Debug, thiserror::Error)]
pub enum InterposeError {
    #[error("tid {tid}: {op}: {errno}")]
    Tracee {
        tid: i32,
        op: &'static str,
        errno: Errno,
    },
    #[error("tid {tid}: {op} at {addr:#x} ({len} bytes): {errno}")]
    Memory {
        tid: i32,
        op: &'static str,
        addr: u64,
        len: usize,
        errno: Errno,
    },
    #[error("cannot build the seccomp filter: {0}")]
    Filter(String),
    #[error("cannot start {program}: {reason}")]
    Spawn { program: String, reason: String },
}

impl InterposeError {
    /// The tracee no longer exists (killed, or exited under us): a normal
    /// outcome that the wait loop will report, not a tracer failure.
    pub fn tracee_gone(&self) -> bool {
        matches!(
            self,
            InterposeError::Tracee {
                errno: Errno::ESRCH,
                ..
            } | InterposeError::Memory {
                errno: Errno::ESRCH,
                ..
            }
        )
    }
}

pub type Result<T> = std::result::Result<T, InterposeError>;

/// Calls [`no_huge_pages_for_rrc`] from a constructor, before anything
/// allocates: the allocator's first arena comes from Rust's runtime
/// set-up, before `main`, and was zeroed 2 MB at a time otherwise. Used
/// once, at the top level of a binary's main module.
#[macro_export]
macro_rules! no_huge_pages_before_main {
    () => {
        #[used]
        #[link_section = ".init_array"]
        static NO_HUGE_PAGES: extern "C" fn() = {
            extern "C" fn before_main() {
                $crate::no_huge_pages_for_rrc();
            }
            before_main
        };
    };
}
