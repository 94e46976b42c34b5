//! What a trace holds. Thread and process ids here are *logical*: assigned
//! in creation order by the recorder and stable across record and replay,
//! unlike kernel tids.

use rrc_synclog::ops;
use serde::{Deserialize, Serialize};

/// Logical thread id: 0 is the first thread of the first process.
pub type ThreadId = u32;
/// Logical process id: 0 is the recorded program's first process.
pub type ProcessId = u32;

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TraceHeader {
    /// Program and arguments as given to rrc-record (argv[0] as typed).
    pub argv: Vec<Vec<u8>>,
    /// The environment the program was started with, `NAME=value`.
    pub env: Vec<Vec<u8>>,
    pub cwd: Vec<u8>,
    /// Absolute path of the executable that was started.
    pub exe: Vec<u8>,
    /// Wall-clock start of the recording, nanoseconds since the epoch.
    pub start_time_unix_ns: u64,
    /// Path of librrc_shim.so as preloaded during the recording.
    pub shim_path: Vec<u8>,
    /// Its size and CRC-32: replay needs the same build, because the
    /// dynamic loader's reads of it are replayed from the trace.
    pub shim_digest: (u64, u32),
    /// Version of the rrc that recorded this trace.
    pub rrc_version: String,
    /// Signals the program started with ignored (bit n-1 for signal n): a
    /// program launched under nohup or from a background job inherits
    /// SIG_IGN, and behaves differently for it.
    pub ignored_signals: u64,
    /// The signal mask it started with.
    pub blocked_signals: u64,
    /// Descriptors above 2 it started with (inherited from whoever started
    /// rrc-record): replay gives it placeholders at these numbers and no
    /// others, so descriptor numbering starts out the same.
    pub inherited_fds: Vec<i32>,
    /// What the executable was when recorded: replay refuses to run
    /// another file under its name.
    pub exe_digest: ExeDigest,
    /// Environment variables kept out of the trace (`rrc-record
    /// --env-secret`): their entries in `env` hold the bare name, and
    /// replay takes each value from its own environment.
    pub secret_env: Vec<SecretVar>,
    /// Recorded one thread at a time (`rrc-record --serialize`): replay
    /// runs the program the same way.
    pub serialized: bool,
}

/// Size, modification time and SHA-256 of an executable.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExeDigest {
    pub size: u64,
    pub mtime_ns: i128,
    pub sha256: [u8; 32],
}

/// A variable whose value the trace does not hold.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SecretVar {
    pub name: Vec<u8>,
    /// Replay needs a value of this length: the environment sits on the
    /// initial stack, so another length moves every address below it.
    pub value_len: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum TraceRecord {
    /// A thread came into existence. `tid` is the kernel tid the program
    /// saw at record time (replay reports it again through gettid).
    ThreadStart {
        thread: ThreadId,
        process: ProcessId,
        parent: Option<ThreadId>,
        tid: i32,
        pid: i32,
    },
    Syscall(SyscallRecord),
    /// A time-stamp counter read (rdtsc/rdtscp), trapped and recorded.
    Tsc(TscRecord),
    /// Synchronisation operations of one thread, in its program order.
    Sync(SyncBatch),
    Signal(SignalRecord),
    ThreadExit {
        thread: ThreadId,
        /// Events (syscalls, time-stamp reads, signals) the thread had when it exited.
        events: u64,
    },
    /// Something rrc could not record faithfully (an unknown syscall).
    Warning {
        thread: ThreadId,
        message: String,
    },
    /// The recording ended; nothing follows.
    End(EndRecord),
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SyscallRecord {
    pub thread: ThreadId,
    /// Position in this thread's event stream (syscalls and signals).
    pub index: u64,
    pub nr: u32,
    pub args: [u64; 6],
    /// Raw kernel return value (negative errno on failure).
    pub ret: i64,
    /// Data the program handed to the kernel that replay checks: paths,
    /// bytes written out.
    #[serde(
        serialize_with = "crate::bytes::serialize_list",
        deserialize_with = "crate::bytes::deserialize_list"
    )]
    pub inputs: Vec<Vec<u8>>,
    /// Every byte the kernel wrote into the program's memory, region by
    /// region in the order the syscall model lists them.
    #[serde(
        serialize_with = "crate::bytes::serialize_list",
        deserialize_with = "crate::bytes::deserialize_list"
    )]
    pub outputs: Vec<Vec<u8>>,
    /// Nanoseconds between this thread's previous syscall return (or its
    /// start) and this one's.
    pub interval_ns: u64,
    /// When it returned, in nanoseconds since the recording started: the
    /// shared timeline that keeps replayed threads from drifting apart.
    pub return_ns: u64,
    /// Its return's place in the event order; `NO_ORDER` for a call that
    /// never returns (exit_group).
    pub order: u64,
    pub extra: SyscallExtra,
    /// Bit i: `inputs[i]` holds the length and SHA-256 of the data, not
    /// the data (see `digest`; read inputs through `input()`).
    pub digested: u32,
}

/// `order` of an event with no place in the event order.
pub const NO_ORDER: u64 = u64::MAX;

/// Facts about a syscall beyond its registers and memory that replay needs.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum SyscallExtra {
    #[default]
    None,
    /// open/openat produced a descriptor for this file.
    Opened(FileIdentity),
    /// clone/clone3 that made a thread in the same process.
    NewThread(ThreadId),
    /// fork/vfork/clone that made a new process, with its first thread.
    NewProcess {
        process: ProcessId,
        thread: ThreadId,
    },
    /// A write to the recorder's own stdout (1) or stderr (2).
    StdStream(u8),
    /// mmap of a file descriptor: what the descriptor referred to.
    MappedFd(Vec<u8>),
    /// The syscall is unknown to rrc: only its return value was recorded.
    Unknown,
    /// A trapped call whose entry has a place of its own in the event
    /// order, as the thread got there. accept/accept4 that made a
    /// descriptor: the kernel takes the descriptor number as the call
    /// starts, so while it blocks, other calls skip that number, and
    /// replay makes its placeholder at that place. Calls that wait (a
    /// sleep, a wait for a child): the code before one ran before its
    /// entry, not before its return, which comes much later.
    EnteredAt(u64),
    /// Made from the shim's untrapped call site and logged in-process
    /// (the fast path), not trapped; replay replays it as any other.
    Buffered,
    /// execve or execveat that started a program: the 16 bytes the
    /// kernel put at its `AT_RANDOM` (an input no call shows).
    Exec { random: [u8; 16] },
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileIdentity {
    pub path: Vec<u8>,
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i128,
    pub regular: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SyncBatch {
    pub thread: ThreadId,
    /// Index of the first operation of this batch in the thread's sync stream.
    pub first: u64,
    /// Packed as differences from one operation to the next (`syncpack`).
    #[serde(
        serialize_with = "crate::syncpack::serialize",
        deserialize_with = "crate::syncpack::deserialize"
    )]
    pub ops: Vec<SyncRecord>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SyncRecord {
    /// Address of the sync object at record time (its identity).
    pub object: u64,
    /// This acquisition's place in the object's order; meaningless when
    /// the operation did not acquire.
    pub seq: u64,
    /// Its place in the recording's event order (sync operations and
    /// syscall returns of all threads, one sequence).
    pub order: u64,
    /// The thread's place in that order when it arrived at the operation
    /// (before the real call), `NO_ORDER` if unknown: replay runs the
    /// code before a lock at this place.
    pub arrival: u64,
    pub op: SyncOp,
    /// Return value the program saw.
    pub result: i32,
}

/// The codes are the shim's (`rrc_synclog::ops`), defined there once.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum SyncOp {
    MutexLock = ops::MUTEX_LOCK as u8,
    MutexTrylock = ops::MUTEX_TRYLOCK as u8,
    MutexTimedlock = ops::MUTEX_TIMEDLOCK as u8,
    CondWait = ops::COND_WAIT as u8,
    CondTimedwait = ops::COND_TIMEDWAIT as u8,
    RwlockRdlock = ops::RWLOCK_RDLOCK as u8,
    RwlockWrlock = ops::RWLOCK_WRLOCK as u8,
    RwlockTryrdlock = ops::RWLOCK_TRYRDLOCK as u8,
    RwlockTrywrlock = ops::RWLOCK_TRYWRLOCK as u8,
    RwlockTimedrdlock = ops::RWLOCK_TIMEDRDLOCK as u8,
    RwlockTimedwrlock = ops::RWLOCK_TIMEDWRLOCK as u8,
    SemWait = ops::SEM_WAIT as u8,
    SemTrywait = ops::SEM_TRYWAIT as u8,
    SemTimedwait = ops::SEM_TIMEDWAIT as u8,
    SpinLock = ops::SPIN_LOCK as u8,
    SpinTrylock = ops::SPIN_TRYLOCK as u8,
    BarrierWait = ops::BARRIER_WAIT as u8,
    StdioLock = ops::STDIO_LOCK as u8,
    FutexWait = ops::FUTEX_WAIT as u8,
    FutexWake = ops::FUTEX_WAKE as u8,
    LibcState = ops::LIBC_STATE as u8,
    OmpLock = ops::OMP_LOCK as u8,
    OmpLoop = ops::OMP_LOOP as u8,
    StaticInit = ops::STATIC_INIT as u8,
    ThreadJoin = ops::THREAD_JOIN as u8,
    SchedYield = ops::SCHED_YIELD as u8,
}

// Every shim code has a variant and `ALL` lists them in code order, so
// `from_u8` decodes exactly what the shim writes.
const _: () = {
    assert!(SyncOp::ALL.len() == ops::ALL.len());
    let mut i = 0;
    while i < SyncOp::ALL.len() {
        assert!(SyncOp::ALL[i] as u32 == ops::ALL[i]);
        i += 1;
    }
};

impl SyncOp {
    pub const ALL: [SyncOp; 26] = [
        SyncOp::MutexLock,
        SyncOp::MutexTrylock,
        SyncOp::MutexTimedlock,
        SyncOp::CondWait,
        SyncOp::CondTimedwait,
        SyncOp::RwlockRdlock,
        SyncOp::RwlockWrlock,
        SyncOp::RwlockTryrdlock,
        SyncOp::RwlockTrywrlock,
        SyncOp::RwlockTimedrdlock,
        SyncOp::RwlockTimedwrlock,
        SyncOp::SemWait,
        SyncOp::SemTrywait,
        SyncOp::SemTimedwait,
        SyncOp::SpinLock,
        SyncOp::SpinTrylock,
        SyncOp::BarrierWait,
        SyncOp::StdioLock,
        SyncOp::FutexWait,
        SyncOp::FutexWake,
        SyncOp::LibcState,
        SyncOp::OmpLock,
        SyncOp::OmpLoop,
        SyncOp::StaticInit,
        SyncOp::ThreadJoin,
        SyncOp::SchedYield,
    ];

    /// See `rrc_synclog::ops::optional`.
    pub fn optional(self) -> bool {
        ops::optional(self as u32)
    }

    pub fn from_u8(v: u8) -> Option<SyncOp> {
        SyncOp::ALL.iter().copied().find(|op| *op as u8 == v)
    }

    pub fn name(self) -> &'static str {
        match self {
            SyncOp::MutexLock => "pthread_mutex_lock",
            SyncOp::MutexTrylock => "pthread_mutex_trylock",
            SyncOp::MutexTimedlock => "pthread_mutex_timedlock",
            SyncOp::CondWait => "pthread_cond_wait",
            SyncOp::CondTimedwait => "pthread_cond_timedwait",
            SyncOp::RwlockRdlock => "pthread_rwlock_rdlock",
            SyncOp::RwlockWrlock => "pthread_rwlock_wrlock",
            SyncOp::RwlockTryrdlock => "pthread_rwlock_tryrdlock",
            SyncOp::RwlockTrywrlock => "pthread_rwlock_trywrlock",
            SyncOp::RwlockTimedrdlock => "pthread_rwlock_timedrdlock",
            SyncOp::RwlockTimedwrlock => "pthread_rwlock_timedwrlock",
            SyncOp::SemWait => "sem_wait",
            SyncOp::SemTrywait => "sem_trywait",
            SyncOp::SemTimedwait => "sem_timedwait",
            SyncOp::SpinLock => "pthread_spin_lock",
            SyncOp::SpinTrylock => "pthread_spin_trylock",
            SyncOp::BarrierWait => "pthread_barrier_wait",
            SyncOp::StdioLock => "flockfile",
            SyncOp::FutexWait => "futex_wait",
            SyncOp::FutexWake => "futex_wake",
            SyncOp::LibcState => "libc state (rand, name services, time zone, messages)",
            SyncOp::OmpLock => "omp_set_lock/omp critical",
            SyncOp::OmpLoop => "omp loop chunk",
            SyncOp::StaticInit => "C++ static constructed (__cxa_guard_acquire)",
            SyncOp::ThreadJoin => "pthread_join",
            SyncOp::SchedYield => "sched_yield",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SignalRecord {
    pub thread: ThreadId,
    /// Position in the thread's event stream.
    pub index: u64,
    pub signo: i32,
    /// True when the signal came from outside the thread (kill, timer,
    /// child exit) and replay must inject it; false when the thread caused
    /// it itself (raise, fault) and replay lets it happen again.
    pub asynchronous: bool,
    /// Where an asynchronous signal was delivered, which is where replay
    /// delivers it again.
    pub at: SignalPoint,
    /// The siginfo the program received (raw `siginfo_t`), for
    /// asynchronous signals: replay hands the same one to the handler.
    pub siginfo: Vec<u8>,
}

/// Where in a thread's execution an asynchronous signal was delivered.
/// rrc has no instruction counter (no hardware performance counters), so
/// the recorder delivers asynchronous signals at syscall boundaries.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum SignalPoint {
    /// The thread caused it itself; replay lets it happen again.
    #[default]
    Synchronous,
    /// As the thread returned from its previous syscall (the event before).
    SyscallReturn,
    /// As the thread returned from the call the signal interrupted (the
    /// event before, which failed with EINTR), and the handler ran alone:
    /// no other thread's event took a place in the order until it
    /// returned (or made a syscall). Replay keeps that order.
    InterruptedCall,
    /// While the thread waited, in a call that runs untrapped (a futex
    /// wait: `pthread_join`, a condition variable) or in one the signal
    /// interrupted and the kernel restarted (`SA_RESTART`), when the event
    /// order reached this stamp; the handler then ran alone, as for
    /// `InterruptedCall`. Replay delivers it at the same place in the
    /// order (at the entry of the thread's next syscall if it is there).
    WhileWaiting(u64),
    /// At the entry of the thread's next syscall, which ran after the
    /// handler (a restarted call, or a signal held back to this boundary).
    SyscallEntry,
    /// While the thread ran code without syscalls, this many nanoseconds
    /// after its previous syscall return: replay delivers it by time, which
    /// is approximate.
    Elapsed(u64),
    /// As the thread returned from its previous syscall (the event before),
    /// to a handler that ran alone at this stamp, once the process's other
    /// threads had reached their next event: what the handler writes (a
    /// stop flag, a tick count) is seen by the events after the stamp and
    /// by none before. Replay keeps the thread after its return until the
    /// order gets there.
    AfterReturn(u64),
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TscRecord {
    pub thread: ThreadId,
    /// Position in the thread's event stream.
    pub index: u64,
    pub value: u64,
    /// IA32_TSC_AUX for rdtscp; `None` for rdtsc.
    pub aux: Option<u32>,
    pub interval_ns: u64,
    /// Nanoseconds since the recording started.
    pub return_ns: u64,
    /// Its place in the event order.
    pub order: u64,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(i32),
}

impl ExitStatus {
    /// Shell convention: the code, or 128 + signal number.
    pub fn as_shell_code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c,
            ExitStatus::Signaled(s) => 128 + s,
        }
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Exited(c) => write!(f, "exited with status {c}"),
            ExitStatus::Signaled(s) => write!(f, "killed by signal {s}"),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct EndRecord {
    pub exit: ExitStatus,
    /// Wall-clock duration of the recording.
    pub duration_ns: u64,
}
