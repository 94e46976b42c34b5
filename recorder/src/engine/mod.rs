//! The recording tracer. The shared loop (`rrc_interposer::drive`) waits
//! for stops; this engine decides what each one means and writes it to
//! the trace. Where each concern lives:
//!
//! - `threads`: each thread's record, start, exec, end
//! - `syscall`: trapped syscalls, entry to exit
//! - `serial`: calls that run one at a time (descriptor table, our stdout)
//! - `alone`: forks and signal handlers that run alone in their process
//! - `signals`, `deferred`, `dispositions`: signal stops, signals held
//!   back to a syscall boundary, what each signal does
//! - `tasks`: clone, fork and exec events
//! - `mapped`, `limits`, `tsc`: mapped-file copies, RLIMIT_AS, rdtsc
//! - `visible`: prctl answers that would show rrc's own set-up
//!
//! Threads the engine keeps stopped (a serial call waiting, a return held
//! while another thread runs alone) are let go by values ([`Release`])
//! that `serial` and `alone` hand back; [`Recorder::release_all`] runs
//! them, and every resume goes through [`Recorder::resume`], which lets
//! each stop go exactly once.

mod alone;
mod buffered;
mod deferred;
mod dispositions;
mod left_behind;
mod limits;
mod mapped;
mod serial;
mod signals;
mod std_write;
mod syscall;
mod tasks;
mod threads;
mod token;
mod tsc;
mod visible;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result};
use nix::unistd::Pid;
use rrc_interposer::{
    Ended, Idle, InterposeError, StopClock, StopHandler, SyscallRegs, TaskEvent, Tracee,
};
use rrc_synclog::SharedSyncLog;
use rrc_trace::{ExitStatus, ProcessId, SyscallRecord, ThreadId, TraceRecord, TraceSender};

use alone::Alone;
use dispositions::ProcessDispositions;
use serial::{SerialCalls, SerialKey, StdStreams};
use threads::{Hold, Run, ThreadState};
use token::Token;

pub struct Recorder {
    sink: TraceSender,
    log: Arc<SharedSyncLog>,
    threads: rrc_interposer::IdMap<Pid, ThreadState>,
    next_thread: Arc<AtomicU32>,
    next_process: ProcessId,
    /// Each traced process's pid as the program sees it.
    process_pid: HashMap<ProcessId, i32>,
    main_status: Option<ExitStatus>,
    root: Pid,
    /// The initial process, once its leader has ended.
    root_process: Option<ProcessId>,
    /// The end of what it left behind (`left_behind.rs`).
    left_behind: left_behind::LeftBehind,
    /// The program installed a seccomp filter of its own: no thread
    /// buffers calls from then on (see `buffered.rs`).
    own_filter: bool,
    std_streams: StdStreams,
    own_sinks: std_write::OwnSinks,
    warned: HashSet<String>,
    dispositions: ProcessDispositions,
    clock: StopClock,
    /// When the recording started: syscall returns are stamped from here.
    epoch: Instant,
    serial: SerialCalls,
    /// When the recording started, as file times count: a file changed
    /// since may be gone or different when replayed.
    started: SystemTime,
    alone: Alone,
    token: Token,
    /// With the fast path on: when threads' buffers are next read while
    /// they run (see `buffered`).
    next_drain: Option<Instant>,
    /// Keep large sent data whole instead of as a digest
    /// (`rrc-record --full-inputs`).
    full_inputs: bool,
    /// Where threads' buffered calls are read into (see `buffered`).
    buffered_bytes: Vec<u8>,
    /// The calls parsed from them, kept for the same reason.
    buffered_calls: Vec<rrc_synclog::syscallbuf::BufferedCall>,
    /// Some were read since the last periodic read (see `buffered`).
    buffered_since_drain: bool,
    /// Answers the shim's question whether rdtsc must stay trapped (see
    /// `visible`); `None`: it always must (`rrc-record --trap-rdtsc`).
    rdtsc: Option<rrc_interposer::RdtscScanner>,
}

/// A thread the engine kept stopped, to let go now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Release {
    /// Held at the entry of a serial call: its seccomp stop is handled
    /// again, taking the slot, or going without it (`bypass`) when it
    /// waited too long.
    Entry { pid: Pid, bypass: bool },
    /// Held at the stop of a process-ending signal in the same queue
    /// (`Hold::Signal`): it takes the slot if free and is delivered.
    Signal { pid: Pid, sig: i32 },
    /// Held at a syscall exit while another thread ran alone: its exit is
    /// handled now.
    Exit(Pid),
    /// Held at a syscall exit for the run of the program (serialised
    /// recording), which it has now.
    Token(Pid),
}

/// How a stopped thread goes on.
#[derive(Clone, Copy, Debug)]
enum Resume {
    /// Runs (delivering signal `.0` if not 0) to its next stop.
    Run(i32, &'static str),
    /// Runs to the exit of the syscall it is entering.
    ToExit(&'static str),
}

/// Whether `error` only says a tracee vanished mid-stop (killed by
/// exit_group or SIGKILL): wait reports that later.
fn tracee_gone(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<InterposeError>()
        .is_some_and(InterposeError::tracee_gone)
}

impl Recorder {
    pub fn new(
        sink: TraceSender,
        log: Arc<SharedSyncLog>,
        next_thread: Arc<AtomicU32>,
        root: Pid,
        clock: StopClock,
        serialize: bool,
        fast_path: bool,
    ) -> Result<Recorder> {
        let mut r = Recorder {
            sink,
            log,
            threads: rrc_interposer::IdMap::default(),
            next_thread,
            next_process: 0,
            process_pid: HashMap::new(),
            main_status: None,
            root_process: None,
            left_behind: Default::default(),
            own_filter: false,
            root,
            std_streams: StdStreams::new(),
            own_sinks: std_write::OwnSinks::new(),
            warned: HashSet::new(),
            dispositions: HashMap::new(),
            clock,
            epoch: Instant::now(),
            serial: SerialCalls::default(),
            started: SystemTime::now(),
            alone: Alone::default(),
            token: Token::new(serialize, root),
            next_drain: fast_path.then(|| Instant::now() + Self::BUSY_DRAIN_PERIOD),
            full_inputs: false,
            buffered_bytes: Vec::new(),
            buffered_calls: Vec::new(),
            buffered_since_drain: false,
            rdtsc: Some(rrc_interposer::RdtscScanner),
        };
        // Buffered calls' return times count from the same start.
        r.log.set_fast_path(fast_path, monotonic_ns());
        // The root already took its initial stop in spawn_traced.
        r.add_thread(root, None, true)?;
        Ok(r)
    }

    /// Keeps the bytes of large sent data in the trace, not their digest.
    pub fn with_full_inputs(mut self, full: bool) -> Recorder {
        self.full_inputs = full;
        self
    }

    /// Keeps rdtsc trapped in every thread, whatever code the program has.
    pub fn with_rdtsc_trapped(mut self, always: bool) -> Recorder {
        if always {
            self.rdtsc = None;
        }
        self
    }

    /// Runs until every traced thread is gone; returns the program's status.
    pub fn run(mut self) -> Result<ExitStatus> {
        rrc_interposer::drive(&mut self)?;
        self.main_status
            .context("the traced program's exit status was never reported")
    }

    fn emit(&self, mut rec: TraceRecord) -> Result<()> {
        self.finish_record(&mut rec);
        self.sink.send(rec).map_err(|_| writer_stopped())
    }

    /// What every record goes through before it is written (see
    /// [`finish_syscall_record`]).
    fn finish_record(&self, rec: &mut TraceRecord) {
        if let TraceRecord::Syscall(call) = rec {
            finish_syscall_record(call, self.full_inputs);
        }
    }

    fn warn_once(&mut self, thread: ThreadId, message: String) -> Result<()> {
        if self.warned.insert(message.clone()) {
            eprintln!("rrc-record: warning: {message}");
            self.emit(TraceRecord::Warning { thread, message })?;
        }
        Ok(())
    }

    /// A bug in the engine's own bookkeeping: loud in debug builds,
    /// reported (and survived) in release builds.
    fn internal_error(&self, message: std::fmt::Arguments) {
        debug_assert!(false, "{message}");
        eprintln!("rrc-record: internal error: {message}");
    }

    /// `pid` reported a stop the engine is about to handle: its buffered
    /// calls (the fast path) come before anything this stop records.
    fn mark_stopped(&mut self, pid: Pid) -> Result<()> {
        self.drain_buffered(pid)?;
        self.note_stopped(pid);
        Ok(())
    }

    fn note_stopped(&mut self, pid: Pid) {
        let Some(t) = self.threads.get_mut(&pid) else {
            return;
        };
        if let Err(was) = t.run.stop() {
            // Believe the kernel: it is stopped now.
            t.run = Run::Stopped;
            self.internal_error(format_args!("tid {pid} stopped while {was:?}"));
        }
    }

    /// `pid`, stopped, stays stopped until released.
    fn hold(&mut self, pid: Pid, why: Hold) {
        let Some(t) = self.threads.get_mut(&pid) else {
            return;
        };
        if let Err(was) = t.run.hold(why) {
            self.internal_error(format_args!("tid {pid} held ({why:?}) while {was:?}"));
        }
    }

    /// Lets a stopped thread go on: the only place the engine resumes a
    /// thread, and each stop is let go once.
    fn resume(&mut self, pid: Pid, to: Resume) -> Result<()> {
        if let Some(t) = self.threads.get_mut(&pid) {
            if let Err(was) = t.run.resume() {
                self.internal_error(format_args!("resume of tid {pid} while {was:?}"));
                return Ok(());
            }
        }
        let tracee = Tracee::new(pid);
        match to {
            Resume::Run(sig, op) => tracee.resume(sig, op)?,
            Resume::ToExit(op) => tracee.resume_to_syscall_exit(op)?,
        }
        Ok(())
    }

    /// Runs `releases`, and the releases each of them makes due before the
    /// next one (in the order a call stack would: a thread released from a
    /// serial-call wait by a held return goes before the next held return).
    fn release_all(&mut self, releases: Vec<Release>) -> Result<()> {
        if releases.is_empty() {
            return Ok(());
        }
        let mut stack = releases;
        stack.reverse();
        while let Some(release) = stack.pop() {
            match self.release(release) {
                Ok(more) => stack.extend(more.into_iter().rev()),
                // A thread that vanished is reported by wait later; the
                // others still go.
                Err(e) if tracee_gone(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Lets one held thread go: handles its stop again.
    fn release(&mut self, release: Release) -> Result<Vec<Release>> {
        let (pid, why) = match release {
            Release::Entry { pid, .. } => (pid, Hold::SerialCall),
            Release::Signal { pid, sig } => (pid, Hold::Signal(sig)),
            Release::Exit(pid) => (pid, Hold::Exit),
            Release::Token(pid) => (pid, Hold::Token),
        };
        // A thread that ended since is gone from the record.
        let Some(t) = self.threads.get_mut(&pid) else {
            return Ok(Vec::new());
        };
        if let Err(was) = t.run.release(why) {
            self.internal_error(format_args!("release of tid {pid} ({why:?}) while {was:?}"));
            return Ok(Vec::new());
        }
        match release {
            Release::Signal { pid, sig } => {
                // The slot its wait was for, so that no write starts
                // before the signal lands (taken unless the write it
                // waited for is still under way: it goes anyway).
                self.serial.take_if_free(pid, SerialKey::StdStreams);
                self.deliver_ending_signal(pid, sig)?;
                Ok(Vec::new())
            }
            Release::Entry { pid, bypass } => {
                t.serial_bypass |= bypass;
                let regs = Tracee::new(pid).regs("read registers at seccomp stop")?;
                self.syscall_entry(pid, regs, None)?;
                Ok(Vec::new())
            }
            Release::Exit(pid) | Release::Token(pid) => self.syscall_exit(pid),
        }
    }

    /// Ends handlers that have run alone for too long.
    fn release_overdue_handlers(&mut self) -> Result<()> {
        for pid in self.alone.overdue_handlers(Instant::now()) {
            let released = self.end_alone(pid);
            self.release_all(released)?;
        }
        Ok(())
    }

    /// A serial call that has waited too long goes ahead (the one in
    /// flight is probably blocked, as a blocking accept is).
    fn release_overdue_serial_calls(&mut self) -> Result<()> {
        let overdue: Vec<Release> = self
            .serial
            .overdue(Instant::now())
            .into_iter()
            .map(|pid| self.serial_release(pid, true))
            .collect();
        self.release_all(overdue)
    }

    fn next_deadline(&self) -> Option<Instant> {
        let signals = self.threads.values().filter_map(|t| t.signals.deadline());
        signals
            .chain(self.next_drain)
            .chain(self.serial.next_deadline())
            .chain(self.alone.next_deadline())
            .chain(self.token.deadline())
            .chain(self.left_behind.deadline())
            .min()
    }

    /// Serialised: a holder that cannot give the token back by itself
    /// (asleep where rrc does not trap) passes it on anyway.
    fn pass_overdue_token(&mut self) -> Result<()> {
        let next = self.token.overdue(Instant::now(), thread_sleeps_and_cpu);
        match next {
            Some(pid) => self.release_all(vec![Release::Token(pid)]),
            None => Ok(()),
        }
    }
}

impl StopHandler for Recorder {
    type Error = anyhow::Error;

    fn on_seccomp(
        &mut self,
        pid: Pid,
        regs: SyscallRegs,
        opened: Option<Vec<Vec<u8>>>,
    ) -> Result<()> {
        self.mark_stopped(pid)?;
        // A handler that ran alone ends at its thread's next syscall.
        let mut released = self.end_alone(pid);
        // So does its run of the program, serialised.
        released.extend(self.token.give_back(pid).map(Release::Token));
        self.release_all(released)?;
        self.syscall_entry(pid, regs, opened)
    }

    fn on_syscall_exit(&mut self, pid: Pid) -> Result<()> {
        self.mark_stopped(pid)?;
        // Made or failed: either way the fork copies no more.
        let released = self.end_alone(pid);
        self.release_all(released)?;
        let next = self.syscall_exit(pid)?;
        self.release_all(next)?;
        if self.left_behind.call_ended(pid) {
            kill_left_behind(pid);
        }
        Ok(())
    }

    fn on_task_event(&mut self, pid: Pid, event: TaskEvent) -> Result<bool> {
        self.task_event(pid, event)
    }

    fn on_signal(&mut self, pid: Pid, sig: i32) -> Result<()> {
        self.mark_stopped(pid)?;
        self.signal_stop(pid, sig)
    }

    fn on_exit(&mut self, pid: Pid, how: Ended) -> Result<()> {
        let status = match how {
            Ended::Exited(code) => ExitStatus::Exited(code),
            Ended::Killed(sig) => ExitStatus::Signaled(sig),
        };
        self.remove_thread(pid, status)
    }

    fn on_idle(&mut self) -> Result<Idle> {
        if self.next_drain.is_some_and(|due| Instant::now() >= due) {
            let again = self.drain_all_published()?;
            self.next_drain = Some(Instant::now() + again);
        }
        self.release_overdue_signals()?;
        self.release_overdue_handlers()?;
        self.release_overdue_serial_calls()?;
        self.pass_overdue_token()?;
        if self.left_behind.deadline().is_some() {
            for pid in self.left_behind.overdue(Instant::now()) {
                kill_left_behind(pid);
            }
        }
        match self.next_deadline() {
            // Nothing timed: block in waitpid itself, which costs fewer
            // syscalls per stop than ppoll on the signalfd (SIGCHLDs left
            // there are drained later).
            None => Ok(Idle::Block),
            next => {
                self.clock.wait(next);
                Ok(Idle::Poll)
            }
        }
    }

    fn follows(&self, pid: Pid) -> bool {
        self.threads.contains_key(&pid)
    }

    fn tracee_gone(error: &anyhow::Error) -> bool {
        tracee_gone(error)
    }

    fn wait_failed(errno: nix::errno::Errno) -> anyhow::Error {
        anyhow::Error::new(errno).context("waiting for the traced program")
    }
}

/// Ends a thread left behind where it is: SIGKILL to any thread ends its
/// whole process. By its real tid (the program's own pids may be in
/// another pid namespace).
fn kill_left_behind(pid: Pid) {
    // Gone already: waitpid reports its end.
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
}

/// What every syscall record goes through before it is written, trapped
/// or buffered: large sent data becomes its digest (unless
/// `--full-inputs`).
fn finish_syscall_record(call: &mut SyscallRecord, full_inputs: bool) {
    if !full_inputs {
        call.digest_sent_data();
    }
}

fn writer_stopped() -> anyhow::Error {
    anyhow::Error::new(WriterStopped)
}

/// The trace writer's thread ended early; its own error says why (see
/// `main`'s `writer_failure`).
#[derive(Debug)]
pub struct WriterStopped;

impl std::fmt::Display for WriterStopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the trace writer stopped (disk full or I/O error?)")
    }
}

impl std::error::Error for WriterStopped {}

/// CLOCK_MONOTONIC (the clock `Instant` reads) in nanoseconds.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000) + ts.tv_nsec as u64
}

/// Whether a thread sleeps interruptibly (a wait rrc does not trap), and
/// its processor time so far, from /proc.
fn thread_sleeps_and_cpu(pid: Pid) -> (bool, std::time::Duration) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return (false, std::time::Duration::ZERO);
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let asleep = fields.first() == Some(&"S");
    // After the name: utime is field 14 and stime 15 of the whole line.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    (asleep, std::time::Duration::from_millis(ticks * 1000 / hz))
}
