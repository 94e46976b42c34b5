//! The row type of the syscall table (see `table.rs`), and the `const`
//! builder methods that keep each row on one line of that table.

use super::{InputSpec, ReplayAction};
use crate::TraceeMemory;

/// Argument masks: bit i stands for argument i.
pub const A0: u8 = 1;
pub const A1: u8 = 1 << 1;
pub const A2: u8 = 1 << 2;
pub const A3: u8 = 1 << 3;
pub const A4: u8 = 1 << 4;
pub const A5: u8 = 1 << 5;

/// Everything rrc knows about one x86-64 syscall.
#[derive(Clone, Copy, Debug)]
pub struct SyscallRow {
    /// The x86-64 syscall number.
    pub nr: i64,
    pub name: &'static str,
    /// The argument names, as many as the call takes.
    pub args: &'static [&'static str],
    /// Which arguments are pointers (their values may move between record
    /// and replay, so replay never compares them).
    pub pointers: u8,
    /// Whether the seccomp filter traps it.
    pub filter: Filter,
    /// How record and replay treat it.
    pub replay: Replay,
    /// Whether it allocates or frees descriptor numbers.
    pub fd_table: When,
    /// Whether the new process starts with a copy of memory (fork).
    pub snapshots_memory: When,
    /// Whether it changes user or group IDs.
    pub credentials: bool,
    /// How long it takes once the thread gets to it (see [`Duration`]).
    pub duration: Duration,
    /// Arguments replay compares (bit i = argument i).
    pub compared: u8,
    /// Divergence reports name the compared arguments with `args` (for the
    /// others they show `argN`).
    pub named_in_reports: bool,
    /// Program data it is given, which replay compares.
    pub inputs: Inputs,
    /// Memory the kernel writes, recorded and restored by replay.
    pub outputs: Outputs,
}

/// What the seccomp filter does with a syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    Trap,
    /// Runs untrapped: it only builds process state.
    Allow,
    /// mmap: anonymous mappings run untrapped; mapping a descriptor traps so
    /// that replay can check the descriptor still refers to the same file.
    AllowAnonymous,
    /// Runs untrapped when every condition holds (the call acts on the
    /// calling thread or process); traps otherwise (it names another
    /// process, which replay must not touch).
    AllowWhen(&'static [ArgIs]),
    /// Runs untrapped unless the program is serialised (`rrc-record
    /// --serialize`): a call that can block, where the thread must give
    /// up the run of the program.
    AllowUnlessSerialized,
}

/// A condition on one argument's low 32 bits (the seccomp filter
/// compares `int` arguments such as pids as double words).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgIs {
    Eq(usize, u32),
    Ne(usize, u32),
}

impl ArgIs {
    /// Whether the condition holds for these arguments.
    pub fn holds(self, args: &[u64; 6]) -> bool {
        match self {
            ArgIs::Eq(i, v) => args[i] as u32 == v,
            ArgIs::Ne(i, v) => args[i] as u32 != v,
        }
    }
}

/// How a syscall takes part in record and replay.
#[derive(Clone, Copy, Debug)]
pub enum Replay {
    /// Not known to rrc: recording reports it, replay cannot reproduce it.
    Unknown,
    /// Known, and run untrapped: never an event.
    Untrapped,
    /// rt_sigreturn: traps only to mark the end of a signal handler (the
    /// handler's thread ran alone until then); never an event.
    HandlerEnd,
    /// Recorded as an event, replayed this way.
    Action(ReplayAction),
    /// Recorded as an event, replayed in a way its arguments decide.
    ByArgs(fn(&[u64; 6]) -> ReplayAction),
}

/// How long a trapped call takes from the thread's arrival at it to its
/// return, which is what its stamp in the event order marks: replay runs
/// the code before an arrival just before the arrival's place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Duration {
    /// It may or may not wait (a read, a lock): its return says nothing of
    /// when the thread got there.
    Unknown,
    /// It never waits for anything (another thread, a peer, a timer):
    /// returned a stop's length after the thread got to it, its stamp
    /// marks that arrival.
    AtOnce,
    /// It waits for time or for another process (a sleep, a wait for a
    /// child): the recorder stamps its entry too (`EnteredAt`), as its
    /// return comes much later. A main thread that sleeps, sets a flag its
    /// workers read and sleeps again set the flag before the second
    /// sleep's entry, and replay runs that code there.
    Waits,
}

/// A property that may depend on the arguments.
#[derive(Clone, Copy, Debug)]
pub enum When {
    Never,
    Always,
    If(fn(&[u64; 6]) -> bool),
}

impl When {
    pub fn holds(self, args: &[u64; 6]) -> bool {
        match self {
            When::Never => false,
            When::Always => true,
            When::If(f) => f(args),
        }
    }
}

/// The program data a syscall is given (see [`InputSpec`]); argument
/// indices name where it is.
#[derive(Clone, Copy, Debug)]
pub enum Inputs {
    None,
    /// `len` bytes at `addr`: (addr, len).
    Buf(usize, usize),
    /// An iovec array: (iov, count).
    Gather(usize, usize),
    /// NUL-terminated paths (null pointers skipped).
    Paths(&'static [usize]),
    /// A socket address: (addr, addrlen).
    SockAddr(usize, usize),
    /// A msghdr's iovecs (sendmsg), which only a read of tracee memory
    /// finds: `model::inputs` gives nothing for it, `read_inputs` reads it.
    MsgHdr(usize),
    Custom(fn(&[u64; 6]) -> Vec<InputSpec>),
}

/// Adds a written region (skipped when null or empty).
pub type Add<'a> = dyn FnMut(u64, u64) + 'a;

/// Lists, through `add`, the memory a call wrote given its arguments and
/// return value, reading the tracee's memory where the layout says.
pub type OutputFn = fn(&[u64; 6], i64, &dyn TraceeMemory, &mut Add<'_>) -> crate::Result<()>;

/// The memory a syscall writes; argument indices name where.
#[derive(Clone, Copy, Debug)]
pub enum Outputs {
    None,
    /// `ret` items of `size` bytes at the argument: (arg, size).
    Returned(usize, u64),
    /// Fixed sizes at arguments, when the call succeeded: (arg, len).
    OnSuccess(&'static [(usize, u64)]),
    /// Fixed sizes at arguments, whatever the call returned.
    Always(&'static [(usize, u64)]),
    Custom(OutputFn),
}

impl SyscallRow {
    /// A syscall rrc does not know: trapped, reported, not replayable.
    pub const fn new(nr: i64, name: &'static str, args: &'static [&'static str]) -> Self {
        SyscallRow {
            nr,
            name,
            args,
            pointers: 0,
            filter: Filter::Trap,
            replay: Replay::Unknown,
            fd_table: When::Never,
            snapshots_memory: When::Never,
            credentials: false,
            duration: Duration::Unknown,
            compared: 0,
            named_in_reports: false,
            inputs: Inputs::None,
            outputs: Outputs::None,
        }
    }

    pub const fn ptr(self, pointers: u8) -> Self {
        SyscallRow { pointers, ..self }
    }

    pub const fn untrapped(self) -> Self {
        SyscallRow {
            filter: Filter::Allow,
            replay: Replay::Untrapped,
            ..self
        }
    }

    pub const fn untrapped_if_anonymous(self) -> Self {
        SyscallRow {
            filter: Filter::AllowAnonymous,
            ..self
        }
    }

    /// Untrapped unless serialised (see [`Filter::AllowUnlessSerialized`]);
    /// the row's action says how serialised replay treats it.
    pub const fn untrapped_unless_serialized(self) -> Self {
        SyscallRow {
            filter: Filter::AllowUnlessSerialized,
            ..self
        }
    }

    /// Untrapped only when `conditions` all hold (see [`Filter::AllowWhen`]);
    /// the row's action says how replay treats the trapped calls.
    pub const fn untrapped_when(self, conditions: &'static [ArgIs]) -> Self {
        SyscallRow {
            filter: Filter::AllowWhen(conditions),
            ..self
        }
    }

    pub const fn handler_end(self) -> Self {
        SyscallRow {
            replay: Replay::HandlerEnd,
            ..self
        }
    }

    pub const fn act(self, action: ReplayAction) -> Self {
        SyscallRow {
            replay: Replay::Action(action),
            ..self
        }
    }

    pub const fn act_by(self, action: fn(&[u64; 6]) -> ReplayAction) -> Self {
        SyscallRow {
            replay: Replay::ByArgs(action),
            ..self
        }
    }

    pub const fn fds(self) -> Self {
        SyscallRow {
            fd_table: When::Always,
            ..self
        }
    }

    pub const fn fds_if(self, test: fn(&[u64; 6]) -> bool) -> Self {
        SyscallRow {
            fd_table: When::If(test),
            ..self
        }
    }

    pub const fn forks(self, when: When) -> Self {
        SyscallRow {
            snapshots_memory: when,
            ..self
        }
    }

    pub const fn creds(self) -> Self {
        SyscallRow {
            credentials: true,
            ..self
        }
    }

    /// It never waits (see [`Duration::AtOnce`]).
    pub const fn at_once(self) -> Self {
        SyscallRow {
            duration: Duration::AtOnce,
            ..self
        }
    }

    /// It waits for time or another process (see [`Duration::Waits`]).
    pub const fn waits(self) -> Self {
        SyscallRow {
            duration: Duration::Waits,
            ..self
        }
    }

    pub const fn cmp(self, compared: u8) -> Self {
        SyscallRow { compared, ..self }
    }

    pub const fn named(self) -> Self {
        SyscallRow {
            named_in_reports: true,
            ..self
        }
    }

    pub const fn input(self, inputs: Inputs) -> Self {
        SyscallRow { inputs, ..self }
    }

    pub const fn out(self, outputs: Outputs) -> Self {
        SyscallRow { outputs, ..self }
    }

    /// Whether rrc knows how to record it (whether or not it traps).
    pub fn is_known(&self) -> bool {
        !matches!(self.replay, Replay::Unknown)
    }

    /// How replay treats the call with these arguments.
    pub fn action(&self, args: &[u64; 6]) -> ReplayAction {
        match self.replay {
            Replay::Action(action) => action,
            Replay::ByArgs(f) => f(args),
            Replay::Unknown | Replay::Untrapped | Replay::HandlerEnd => ReplayAction::Unsupported,
        }
    }
}
