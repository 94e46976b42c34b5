//! The replay tracer. Each trapped syscall is matched against the next
//! recorded event of its thread; emulated calls are skipped at their
//! seccomp stop with the recorded result and memory injected; calls that
//! build process state run for real, and those whose results must agree
//! (descriptor numbers) are checked at their exit.
//!
//! Where each concern lives:
//! - `mod.rs`: the engine's state, the stop handler the shared tracer
//!   loop (`rrc_interposer::drive`) calls, the one place threads are
//!   resumed, and divergences as values (`Halt`).
//! - `threads.rs`: one record per live thread; creation, exec, exit.
//! - `entry.rs`: a trapped syscall's entry: match it, or hold it.
//! - `emulate.rs`: replaying a matched call (emulate, run, rdtsc).
//! - `rdtsc.rs`: the rdtsc trap's `prctl`s: patches as the recorder made.
//! - `descriptors.rs`: placeholder descriptors, mapped copies, reopens.
//! - `live_files.rs`: memfds and shadows of files the program filled,
//!   whose I/O and mappings run for real.
//! - `sysv_shm.rs`: System V shared memory, made again by replay.
//! - `exit.rs`: checking a call replay ran for real at its exit.
//! - `returns.rs`: letting a replayed call return: order, interval, late.
//! - `order.rs`: the event order across threads (ranks, queued returns).
//! - `pacing.rs`: recorded intervals and timed releases.
//! - `signals.rs`: recorded signals: injection, fatal ones, ranked ones.
//! - `holds.rs`: threads held at a syscall entry, and deadlocks.
//! - `giveway.rs`: holds giving way when nothing else can move.
//! - `output.rs`: the program's stdout/stderr, in the recorded order.
//! - `report.rs`: the stall report.

mod baton;
mod descriptors;
mod emulate;
mod entry;
mod exit;
mod giveway;
mod holds;
mod inprocess;
mod live_files;
mod order;
mod output;
mod pacing;
mod rdtsc;
mod report;
mod returns;
mod signals;
mod sysv_shm;
mod threads;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use nix::unistd::Pid;
use rrc_interposer::{
    Ended, Idle, InterposeError, StopClock, StopHandler, SyscallRegs, TaskEvent, Tracee,
};
use rrc_synclog::SharedSyncLog;
use rrc_trace::{ExitStatus, ProcessId, ThreadId};

use crate::divergence::{Cause, Divergence, Expected, Observed};
use crate::feed::ReplayShared;
use crate::plan::ReplayPlan;

pub use giveway::WayStats;
pub(crate) use output::stderr_mid_line;

use giveway::Standstill;
use order::EventOrder;
use output::OutputOrder;
use pacing::Pacing;
use threads::{LiveThread, ThreadState};

/// What a replayed syscall return is held against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Anchor {
    /// Only the thread's own previous return: each thread keeps its
    /// recorded pace, but threads drift apart over time.
    Thread,
    /// Also the recording's shared timeline: no return comes before its
    /// recorded time since the start, so threads stay aligned.
    Shared,
}

/// How replay re-creates the recorded timing.
#[derive(Clone, Copy, Debug)]
pub struct ReplayOptions {
    pub enforce_intervals: bool,
    pub anchor: Anchor,
    pub order_returns: bool,
    /// Run the code after a return only when the thread's next event is
    /// next in the order (see `returns::LateReturn`).
    pub late_returns: bool,
    /// Hot calls answered in the shim, without a stop (`inprocess`).
    pub in_process: bool,
}

/// Interval enforcement figures, for `--stats`.
#[derive(Debug, Default)]
pub struct IntervalStats {
    /// Whether to keep the per-syscall samples below (`--stats` only: 8
    /// bytes a syscall, which a long replay must not pay for nothing).
    pub keep_samples: bool,
    /// Actual minus recorded interval, ns, for every replayed syscall.
    pub error_ns: Vec<i64>,
    /// The same for the syscalls whose return was held back.
    pub held_error_ns: Vec<i64>,
    pub held_total: Duration,
    /// Ranks of the event order skipped because their thread was blocked
    /// at a later rank of its own (it ran its events in another order).
    pub inversions: u64,
    /// Returns let go before their rank because the thread owning the
    /// current rank was blocked outside rrc's view (an internal lock).
    pub early_returns: u64,
    /// Returns held until the thread's next event was next in the order.
    pub late_returns: u64,
    /// Of those, let go before that because the order stood still.
    pub late_released_stalled: u64,
    /// Calls the shim answered in-process (`inprocess`).
    pub in_process: u64,
}

/// A divergence found while handling a stop: the thread it is about,
/// and both sides. Rendered into a [`Divergence`] by `Replayer::report`.
#[derive(Debug)]
pub(crate) struct Found {
    pub thread: ThreadId,
    /// The event index, when it is not the thread's count of replayed
    /// events (a sync operation's).
    pub index: Option<u64>,
    pub expected: Expected,
    pub observed: Observed,
}

/// Why handling a stop ended early.
#[derive(Debug)]
pub(crate) enum Halt {
    /// The program no longer does what was recorded: nothing more is
    /// done for this stop (the program is killed).
    Diverged(Box<Found>),
    /// rrc itself failed (or a tracee vanished mid-stop).
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for Halt {
    fn from(e: anyhow::Error) -> Halt {
        Halt::Failed(e)
    }
}

impl From<InterposeError> for Halt {
    fn from(e: InterposeError) -> Halt {
        Halt::Failed(e.into())
    }
}

/// The engine's result type.
pub(crate) type Res<T = ()> = std::result::Result<T, Halt>;

/// A divergence of `thread` at its current event.
pub(crate) fn diverged<T>(thread: ThreadId, expected: Expected, observed: Observed) -> Res<T> {
    Err(Halt::Diverged(Box::new(Found {
        thread,
        index: None,
        expected,
        observed,
    })))
}

/// How a stopped thread is let go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resume {
    /// Run on (`PTRACE_CONT`), delivering this signal (0: none).
    Continue(i32),
    /// Run to the syscall's exit (`PTRACE_SYSCALL`).
    ToExit,
}

pub struct Replayer {
    /// Serialised replay, and segments: who has the run of the program
    /// (see `baton`).
    baton: baton::BatonWatch,
    /// Patches rdtsc where the recording did (see `emulate`).
    rdtsc: rrc_interposer::RdtscScanner,
    plan: ReplayPlan,
    log: Arc<SharedSyncLog>,
    shared: Arc<ReplayShared>,
    /// Every thread followed, by live tid: all of its state in one record.
    live: HashMap<Pid, LiveThread>,
    /// The program's output, printed in the recorded order.
    output: OutputOrder,
    /// Recorded tid/pid -> live one, for signals the program sends.
    live_id: HashMap<i32, i32>,
    root: Pid,
    main_status: Option<ExitStatus>,
    shim_recorded: Vec<u8>,
    shim_now: Vec<u8>,
    /// Memfds standing in for files the program filled (`live_files.rs`).
    shadows: live_files::Shadows,
    /// System V segments replay made (`sysv_shm.rs`).
    segments: sysv_shm::Segments,
    clock: StopClock,
    /// The event order across threads (with `--order-returns`).
    order: EventOrder,
    /// Recorded intervals, and the deadlines of timed holds.
    pacing: Pacing,
    late_returns: bool,
    /// Hot calls are fed to the shim (`inprocess`).
    in_process: bool,
    /// Instants as the shim's clock counts them.
    mono: inprocess::MonoClock,
    /// Processes ending (exit_group made, or a fatal signal delivered):
    /// their held threads are about to be killed, not deadlocked.
    ending: HashSet<ProcessId>,
    /// How long nothing has moved (see `giveway.rs`).
    standstill: Standstill,
    /// A recording ended by an outside SIGKILL: replay has killed the
    /// program where its events ended (see `end_as_killed`).
    killed_at_end: bool,
    pub stats: IntervalStats,
    /// Holds that gave way, and stalls.
    pub ways: WayStats,
    /// Another try may follow a divergence (see `retrying`).
    may_retry: bool,
}

impl Replayer {
    pub fn new(
        plan: ReplayPlan,
        log: Arc<SharedSyncLog>,
        shared: Arc<ReplayShared>,
        root: Pid,
        shim_now: Vec<u8>,
        clock: StopClock,
        options: ReplayOptions,
    ) -> Replayer {
        let shim_recorded = plan.header.shim_path.clone();
        let mut r = Replayer {
            baton: baton::BatonWatch::default(),
            rdtsc: rrc_interposer::RdtscScanner,
            plan,
            log,
            shared,
            live: HashMap::new(),
            output: OutputOrder::default(),
            live_id: HashMap::new(),
            root,
            main_status: None,
            shim_recorded,
            shim_now,
            shadows: live_files::Shadows::new(),
            segments: sysv_shm::Segments::new(),
            clock,
            order: EventOrder::new(options.order_returns, Instant::now()),
            pacing: Pacing::new(options.enforce_intervals, options.anchor, Instant::now()),
            late_returns: options.late_returns && options.order_returns,
            in_process: options.in_process,
            mono: inprocess::MonoClock::now(),
            ending: HashSet::new(),
            standstill: Standstill::default(),
            killed_at_end: false,
            stats: IntervalStats::default(),
            ways: WayStats::default(),
            may_retry: false,
        };
        r.adopt(root, 0);
        // The shim's pacing counts from the same start as the tracer's.
        let epoch = r.mono.ns(r.pacing.epoch());
        r.log.set_fast_path(r.in_process, epoch);
        r.log.set_pacing(r.pacing.shim_mode());
        r
    }

    /// Runs the replay to its end. `Ok(())` only for a faithful replay.
    pub fn run(&mut self) -> Result<std::result::Result<(), Divergence>> {
        let driven = rrc_interposer::drive(self);
        self.remove_segments();
        let verdict = driven.map(|()| self.verdict());
        // Whatever was replayed is printed, in the recorded order, before
        // the verdict (a divergence's line comes after it); unless another
        // try may follow, which prints it in its turn.
        if !self.may_retry || !matches!(verdict, Ok(Err(_))) {
            self.flush_output();
        }
        verdict
    }

    /// Another try may follow a divergence (`search.rs`): what this one
    /// replayed ahead of an output it did not is left unprinted, and the
    /// first `printed` outputs, printed by earlier tries, are skipped.
    pub fn retrying(&mut self, printed: u64) {
        self.may_retry = true;
        self.output = OutputOrder::after(printed);
    }

    /// How many of the recorded outputs have been printed, from the first.
    pub fn outputs_printed(&self) -> u64 {
        self.output.printed()
    }

    /// The plan it replays (what the trace says of the program).
    pub fn plan(&self) -> &ReplayPlan {
        &self.plan
    }

    fn verdict(&mut self) -> std::result::Result<(), Divergence> {
        if let Ok(Some(d)) = self.shared.divergence.lock().map(|d| d.clone()) {
            return Err(d);
        }
        for (i, p) in self.plan.threads.iter().enumerate() {
            if !p.started {
                return Err(Divergence {
                    cause: Cause::Threads,
                    thread: Some(i as u32),
                    recorded_tid: p.tid,
                    index: None,
                    expected: "the thread to be created".into(),
                    observed: "the program ended without creating it".into(),
                });
            }
        }
        match self.main_status {
            Some(s) if s == self.plan.exit => Ok(()),
            other => Err(Divergence {
                cause: Cause::Threads,
                thread: None,
                recorded_tid: 0,
                index: None,
                expected: format!("the program to end {}", self.plan.exit),
                observed: other.map_or("no exit status".into(), |s| format!("it {s}")),
            }),
        }
    }

    fn diverged(&self) -> bool {
        self.shared.has_diverged()
    }

    /// Renders a divergence found by a handler, records it (the first
    /// one wins) and kills the program.
    fn report(&mut self, found: Found) {
        let (tid, done) = self
            .plan
            .threads
            .get(found.thread as usize)
            .map_or((0, None), |p| (p.tid, Some(p.done)));
        self.shared.diverge(Divergence {
            thread: Some(found.thread),
            recorded_tid: tid,
            index: found.index.or(done),
            expected: found.expected.to_string(),
            cause: Cause::of(&found.expected, &found.observed),
            observed: found.observed.to_string(),
        });
    }

    /// Ends a stop's handling: a divergence is reported (the loop goes on
    /// until the killed program is gone); an internal error kills the
    /// program, unless it only says a tracee vanished (the loop ignores
    /// that).
    fn finish_stop(&mut self, pid: Pid, result: Res) -> Result<()> {
        match result {
            Ok(()) => {
                self.check_settled(pid);
                Ok(())
            }
            Err(Halt::Diverged(found)) => {
                self.report(*found);
                Ok(())
            }
            Err(Halt::Failed(e)) => {
                if !<Self as StopHandler>::tracee_gone(&e) {
                    self.shared.kill_all();
                }
                Err(e)
            }
        }
    }

    /// A handled stop leaves its thread resumed or parked, never merely
    /// stopped (but a divergence leaves threads for the kill).
    fn check_settled(&self, pid: Pid) {
        let stopped = self
            .live
            .get(&pid)
            .is_some_and(|t| t.state == ThreadState::Stopped);
        if stopped && !self.diverged() {
            internal_error(format_args!(
                "tid {pid} was neither resumed nor held after its stop"
            ));
        }
    }

    /// Like `finish_stop`, for work done between stops.
    fn finish_idle(&mut self, result: Res) -> Result<()> {
        match result {
            Ok(()) => Ok(()),
            Err(Halt::Diverged(found)) => {
                self.report(*found);
                Ok(())
            }
            Err(Halt::Failed(e)) => Err(e),
        }
    }

    /// A stop of `pid` arrived: it is stopped until resumed here. The
    /// calls its shim answered since its last stop come first.
    fn note_stop(&mut self, pid: Pid) -> Res {
        if let Some(t) = self.live.get_mut(&pid) {
            t.state = ThreadState::Stopped;
        }
        self.take_in_process(pid)
    }

    /// The one place a followed thread is resumed: a thread the engine
    /// already let go (or never saw stop) is not resumed again.
    fn resume(&mut self, pid: Pid, how: Resume, why: &'static str) -> rrc_interposer::Result<()> {
        if let Some(t) = self.live.get_mut(&pid) {
            if t.state == ThreadState::Running {
                internal_error(format_args!(
                    "resuming tid {pid} ({why}), which is not stopped"
                ));
                return Ok(());
            }
            debug_assert!(
                t.state == ThreadState::Stopped,
                "tid {pid} resumed ({why}) while still parked: {:?}",
                t.state
            );
            t.state = ThreadState::Running;
        }
        self.feed_in_process(pid);
        let tracee = Tracee::new(pid);
        match how {
            Resume::Continue(sig) => tracee.resume(sig, why),
            Resume::ToExit => tracee.resume_to_syscall_exit(why),
        }
    }

    /// Resumes a thread as it was going: to its syscall's exit when a
    /// call it runs for real is in flight, else on.
    fn resume_on(&mut self, pid: Pid) -> rrc_interposer::Result<()> {
        if self.live.get(&pid).is_some_and(|t| t.in_flight.is_some()) {
            self.resume(pid, Resume::ToExit, "resume to syscall exit")
        } else {
            self.resume(pid, Resume::Continue(0), "resume")
        }
    }

    /// Nothing to handle: release what is due, wait for the next deadline
    /// (or for the shim to reach a rank a held thread waits for).
    fn idle(&mut self) -> Res {
        self.watch_baton();
        self.release_due()?;
        // A kill waiting for its target ends by time too.
        if self
            .live
            .values()
            .any(|t| matches!(t.hold(), Some(holds::Hold::KillTarget { .. })))
        {
            self.release_holds()?;
        }
        if self.shared.stalled.load(Ordering::Acquire) && !self.diverged() {
            self.ways.stalls_timed_out += 1;
            let report = self.stall_report();
            self.shared.diverge(report);
        }
        let mut next = self.pacing.next_deadline();
        let wanted = if self.order.enabled() {
            self.break_inversions()?;
            self.break_untraced_block()?;
            // Look again soon: a thread may block in the shim at a rank
            // after one of its own, which no stop would tell.
            let check = if self.live.values().any(LiveThread::is_late) {
                returns::LATE_RETURN_STILL / 2
            } else {
                order::INVERSION_CHECK
            };
            let soon = Instant::now() + check;
            next = Some(next.map_or(soon, |n| n.min(soon)));
            self.rank_wanted()
        } else {
            None
        };
        if !self.diverged() {
            self.departed_past_sync_end()?;
            self.give_way()?;
        }
        if !self.order.enabled() && self.live.values().any(|t| t.hold().is_some()) {
            // A hold may have to give way: look again soon (with the
            // order, `INVERSION_CHECK` does).
            let soon = Instant::now() + giveway::GIVE_WAY_QUIET;
            next = Some(next.map_or(soon, |n| n.min(soon)));
        }
        if !self.log.tracer_wants_rank(wanted) {
            self.clock.wait(next);
        }
        self.release_due()?;
        if !self.diverged() {
            self.release_ranked_returns()?;
        }
        if !self.diverged() {
            self.release_holds()?;
        }
        Ok(())
    }
}

impl StopHandler for Replayer {
    type Error = anyhow::Error;

    fn on_seccomp(
        &mut self,
        pid: Pid,
        regs: SyscallRegs,
        opened: Option<Vec<Vec<u8>>>,
    ) -> Result<()> {
        debug_log(format_args!("seccomp stop of {pid}"));
        let taken = self.note_stop(pid);
        // Serialised: a thread entering a syscall has reached its next
        // event (a fault it takes for cpuid or rdtsc has not: it ran on
        // holding the token when recorded).
        if let Some(t) = self.live.get(&pid) {
            self.log.park(t.logical);
        }
        let result = taken.and_then(|()| self.seccomp_stop(pid, regs, opened));
        self.finish_stop(pid, result)
    }

    fn on_syscall_exit(&mut self, pid: Pid) -> Result<()> {
        debug_log(format_args!("syscall exit of {pid}"));
        let result = self.note_stop(pid).and_then(|()| self.syscall_exit(pid));
        self.finish_stop(pid, result)
    }

    fn on_task_event(&mut self, pid: Pid, event: TaskEvent) -> Result<bool> {
        debug_log(format_args!("{event:?} of {pid}"));
        match self
            .note_stop(pid)
            .and_then(|()| self.task_event(pid, event))
        {
            Ok(adopted) => {
                self.check_settled(pid);
                Ok(adopted)
            }
            Err(halt) => self.finish_stop(pid, Err(halt)).map(|()| false),
        }
    }

    fn on_start(&mut self, pid: Pid) -> Result<()> {
        let result = self.thread_start(pid);
        match result {
            Ok(()) => Ok(()),
            Err(halt) => self.finish_stop(pid, Err(halt)),
        }
    }

    fn on_signal(&mut self, pid: Pid, sig: i32) -> Result<()> {
        debug_log(format_args!("signal {sig} of {pid}"));
        let result = self
            .note_stop(pid)
            .and_then(|()| self.signal_stop(pid, sig));
        self.finish_stop(pid, result)
    }

    fn on_exit(&mut self, pid: Pid, how: Ended) -> Result<()> {
        let status = match how {
            Ended::Exited(code) => ExitStatus::Exited(code),
            Ended::Killed(sig) => ExitStatus::Signaled(sig),
        };
        let result = self
            .take_in_process(pid)
            .and_then(|()| self.thread_ended(pid, status));
        self.finish_stop(pid, result)
    }

    fn on_idle(&mut self) -> Result<Idle> {
        let result = self.idle();
        self.finish_idle(result)?;
        // It waited on its own clock: look for stops again.
        Ok(Idle::Poll)
    }

    fn after_stop(&mut self) -> Result<()> {
        self.shared.progress.fetch_add(1, Ordering::Relaxed);
        if self.diverged() {
            return Ok(());
        }
        self.watch_baton();
        let result = self.release_holds();
        self.finish_idle(result)
    }

    fn follows(&self, pid: Pid) -> bool {
        self.live.contains_key(&pid)
    }

    fn tracee_gone(error: &anyhow::Error) -> bool {
        error
            .downcast_ref::<InterposeError>()
            .is_some_and(InterposeError::tracee_gone)
    }

    fn wait_failed(errno: nix::errno::Errno) -> anyhow::Error {
        anyhow::Error::new(errno).context("waiting for the replayed program")
    }
}

/// `RRC_DEBUG=1`: the tracer's bookkeeping of tasks, on stderr.
pub(crate) fn debug_log(args: std::fmt::Arguments<'_>) {
    if debug_on() {
        eprintln!("rrc-replay: debug: {args}");
    }
}

/// Whether `RRC_DEBUG` is set: for debug lines whose making costs work.
pub(crate) fn debug_on() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("RRC_DEBUG").is_some())
}

/// A broken invariant of the engine's own bookkeeping: said on stderr,
/// never acted on silently.
pub(crate) fn internal_error(args: std::fmt::Arguments<'_>) {
    eprintln!("rrc-replay: internal error: {args}");
}
