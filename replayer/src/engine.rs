//! The replay tracer. Each trapped syscall is matched against the next
//! recorded event of its thread; emulated calls are skipped at their
//! seccomp stop with the recorded result and memory injected; calls that
//! build process state run for real, and those whose results must agree
//! (descriptor numbers) are checked at their exit.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::unistd::Pid;
use rrc_interposer::model::{self, ReplayAction};
use rrc_interposer::{
    fd_target, hide_vdso, poll_any, Polled, SignalStopKind, Stop, StopClock, SyscallRegs, Tracee,
    TraceeMemory,
};
use rrc_synclog::SharedSyncLog;
use rrc_trace::{ExitStatus, ProcessId, SignalPoint, SyscallExtra, SyscallRecord, ThreadId};

use crate::divergence::{describe_call, describe_record, first_difference, Divergence};
use crate::feed::ReplayShared;
use crate::plan::{PlannedEvent, ReplayPlan};

/// How long a fork waits, at its rank, before it copies memory (see
/// `dispatch`).
const FORK_SETTLE: Duration = Duration::from_micros(300);

/// What a thread resumed to its syscall exit is waiting to have checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ExitCheck {
    /// Ran for real: return value and memory must match the recording.
    Executed,
    /// Ran as a placeholder descriptor: the number must match; then the
    /// recorded memory is injected.
    Placeholder,
    /// mmap of a file turned into anonymous memory: it must land at the
    /// recorded address; then the recorded bytes of the file fill it.
    MappedCopy,
    /// Ran for its effect on the process (clone/fork, setsid, chdir): the
    /// program sees the recorded return value (a child id, a session id).
    ReportRecorded,
    /// recvmsg that received a descriptor (SCM_RIGHTS), run as a
    /// placeholder: it must take this number; then the recorded message
    /// and return value are given to the program.
    ReceivedFd(i32),
}

/// The descriptors a recorded recvmsg received through SCM_RIGHTS, read
/// from the control buffer it returned (the model lists the returned
/// msg_controllen, the control bytes and msg_flags last).
fn received_fds(record: &SyscallRecord) -> Vec<i32> {
    let n = record.outputs.len();
    if record.nr as i64 != libc::SYS_recvmsg || record.ret < 0 || n < 3 {
        return Vec::new();
    }
    let Ok(len_bytes) = <[u8; 8]>::try_from(record.outputs[n - 3].as_slice()) else {
        return Vec::new();
    };
    let control = &record.outputs[n - 2];
    let len = (u64::from_le_bytes(len_bytes) as usize).min(control.len());
    let mut fds = Vec::new();
    let mut at = 0;
    // struct cmsghdr: u64 cmsg_len, i32 level, i32 type, data; 8-aligned.
    while at + 16 <= len {
        let word = |o: usize, w: usize| {
            control.get(at + o..at + o + w).map_or(0, |b| {
                b.iter().rev().fold(0u64, |v, x| v << 8 | u64::from(*x))
            })
        };
        let cmsg_len = word(0, 8) as usize;
        let (level, kind) = (word(8, 4) as i32, word(12, 4) as i32);
        if cmsg_len < 16 || at + cmsg_len > len {
            break;
        }
        if level == libc::SOL_SOCKET && kind == libc::SCM_RIGHTS {
            for i in 0..(cmsg_len - 16) / 4 {
                fds.push(word(16 + 4 * i, 4) as i32);
            }
        }
        at += cmsg_len.div_ceil(8) * 8;
    }
    fds
}

struct InFlight {
    record: SyscallRecord,
    args: [u64; 6],
    check: ExitCheck,
}

struct LiveThread {
    logical: ThreadId,
    process: ProcessId,
    in_flight: Option<InFlight>,
    awaiting_first_stop: bool,
    /// When its previous syscall returned (or it started).
    last_return: Instant,
    /// Its process's live pid, for tgkill.
    tgid: Pid,
    /// A recorded signal we queued for it and wait to see delivered.
    injecting: Option<i32>,
}

/// What a timed hold releases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timed {
    /// Return from a replayed syscall (its recorded interval has passed).
    Return { interval_ns: u64, rank: Option<u64> },
    /// Queue a recorded signal that arrived while the thread ran its own code.
    Signal { sig: i32 },
}

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
    /// next in the order (see `LateReturn`).
    pub late_returns: bool,
}

/// Interval enforcement figures, for `--stats`.
#[derive(Debug, Default)]
pub struct IntervalStats {
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
}

/// A thread whose syscall return has taken its place in the event order
/// but which is kept stopped until its arrival at its next sync operation
/// is next: the code between the two (which may touch memory other
/// threads touch without a lock: counters, flags, statistics) then runs
/// after the events other threads made meanwhile when recorded, not
/// alongside them. The recorder stamps a return when it lets the thread
/// go, but on a busy machine the thread may run that code much later; its
/// arrival at the next operation is stamped by the thread itself.
#[derive(Clone, Copy, Debug)]
struct LateReturn {
    next_rank: u64,
    since: Instant,
}

/// A thread kept for `LateReturn` goes anyway once the event order has
/// stood still this long: the event that is next may wait on something
/// only this thread's code does (an atomic flag, an internal lock).
const LATE_RETURN_STILL: Duration = Duration::from_micros(300);

/// And, at most, this long in all: a thread computing between events must
/// not be serialised behind other threads' bursts of events.
const LATE_RETURN_LIMIT: Duration = Duration::from_millis(10);

/// How often the tracer checks for threads blocked at a later rank of
/// their own while it has nothing else to do.
const INVERSION_CHECK: Duration = Duration::from_millis(2);

/// How long, at most, a signal handler that ran alone when recorded waits
/// for the process's other threads to reach their next event (the
/// recorder waits as long).
const HANDLER_SETTLE_LIMIT: Duration = Duration::from_millis(10);

/// How long the event order may stand still, with the thread whose event
/// is next asleep in a futex outside rrc's view, before a held return goes
/// ahead early (`break_untraced_block`).
const UNTRACED_BLOCK_WAIT: Duration = Duration::from_millis(20);

/// How far behind the recorded timeline a running thread must be before
/// it counts as stuck (spinning on an atomic that a held-back thread
/// would set: CPython's GIL hand-over needs this).
const STUCK_BEHIND_TIMELINE: Duration = Duration::from_millis(20);

/// Whether a thread is asleep in a futex call (from /proc: its current
/// syscall number, 202 on x86-64).
fn blocked_in_futex(pid: Pid) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/syscall"))
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .and_then(|nr| nr.parse::<i64>().ok())
        == Some(libc::SYS_futex)
}

/// Whether `sig` is in the thread's blocked mask (from /proc; unreadable
/// counts as blocked, which reports rather than retries).
fn signal_blocked(pid: Pid, sig: i32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return true;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigBlk:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .is_none_or(|mask| mask & (1u64 << (sig - 1)) != 0)
}

/// How often a process-ending signal due by elapsed time looks again
/// whether the process's other threads are done.
const FATAL_SIGNAL_RECHECK: Duration = Duration::from_millis(1);

/// Why a thread is held at its seccomp stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hold {
    /// Its write to stdout/stderr must wait for earlier recorded writes.
    OutputTurn(u64),
    /// exit_group: waits for the process's other threads to finish their
    /// recorded events.
    ProcessExit,
    /// Past the end of its recorded events: it was blocked in this call
    /// when the recording ended.
    PastEnd,
    /// A call replay runs for real (it makes or closes descriptors, maps
    /// files, changes signal state) waits to run in the recorded order.
    RunTurn(u64),
    /// Its last recorded event is a signal that ends the process: it waits
    /// for the process's other threads to finish their recorded events, as
    /// they had when the signal killed them. `at_entry`: stopped at a
    /// syscall's entry (which must not run), else at a syscall's exit.
    FatalSignal { sig: i32, at_entry: bool },
    /// At a syscall's entry, while its next recorded event is a signal
    /// delivered at a place in the event order (it waited in a futex when
    /// recorded): delivered here once the order gets there.
    SignalTurn(u64),
}

/// Signals whose default action ends the process.
fn kills_by_default(sig: i32) -> bool {
    !matches!(
        sig,
        libc::SIGCHLD
            | libc::SIGCONT
            | libc::SIGURG
            | libc::SIGWINCH
            | libc::SIGSTOP
            | libc::SIGTSTP
            | libc::SIGTTIN
            | libc::SIGTTOU
    )
}

pub struct Replayer {
    plan: ReplayPlan,
    log: Arc<SharedSyncLog>,
    shared: Arc<ReplayShared>,
    live: HashMap<Pid, LiveThread>,
    early_stops: HashSet<Pid>,
    held: HashMap<Pid, Hold>,
    next_output: u64,
    /// Recorded tid/pid -> live one, for signals the program sends.
    live_id: HashMap<i32, i32>,
    root: Pid,
    main_status: Option<ExitStatus>,
    shim_recorded: Vec<u8>,
    shim_now: Vec<u8>,
    clock: StopClock,
    enforce_intervals: bool,
    anchor: Anchor,
    /// When the replay started: the shared timeline's origin.
    epoch: Instant,
    /// Replay syscall returns across threads in their recorded order.
    order_returns: bool,
    /// Returns waiting for their turn in the recorded order, by rank:
    /// (thread, interval, time on the shared timeline).
    queued_returns: BTreeMap<u64, (Pid, u64, u64)>,
    /// Threads held until a deadline.
    timed: BinaryHeap<Reverse<(Instant, Pid, Timed)>>,
    /// Threads running a handler that ran alone when recorded, with the
    /// rank of the return it followed: the order moves on only when the
    /// handler returns or the thread makes a syscall.
    handler_alone: HashMap<Pid, u64>,
    /// Processes ending (exit_group made, or a fatal signal delivered):
    /// their held threads are about to be killed, not deadlocked.
    ending: HashSet<ProcessId>,
    /// Ranks whose return went ahead early (see `break_untraced_block`):
    /// the order steps over them when it gets there.
    early: BTreeSet<u64>,
    /// The rank the order has been at, and since when.
    order_since: (u32, Instant),
    late_returns: bool,
    /// Threads kept stopped after their return (see `LateReturn`).
    late: HashMap<Pid, LateReturn>,
    pub stats: IntervalStats,
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
            plan,
            log,
            shared,
            live: HashMap::new(),
            early_stops: HashSet::new(),
            held: HashMap::new(),
            next_output: 0,
            live_id: HashMap::new(),
            root,
            main_status: None,
            shim_recorded,
            shim_now,
            clock,
            enforce_intervals: options.enforce_intervals,
            anchor: options.anchor,
            epoch: Instant::now(),
            order_returns: options.order_returns,
            queued_returns: BTreeMap::new(),
            handler_alone: HashMap::new(),
            timed: BinaryHeap::new(),
            ending: HashSet::new(),
            early: BTreeSet::new(),
            order_since: (0, Instant::now()),
            late_returns: options.late_returns && options.order_returns,
            late: HashMap::new(),
            stats: IntervalStats::default(),
        };
        r.adopt(root, 0, false);
        r
    }

    /// Starts following a live thread as logical thread `logical`.
    fn adopt(&mut self, tid: Pid, logical: ThreadId, awaiting_first_stop: bool) {
        debug_log(format_args!(
            "adopt tid {tid} as t{logical} (awaiting first stop: {awaiting_first_stop})"
        ));
        let Some(p) = self.plan.threads.get_mut(logical as usize) else {
            return;
        };
        p.started = true;
        let (process, rec_tid, rec_pid) = (p.process, p.tid, p.pid);
        self.log.register_thread(rec_tid, logical, process);
        self.live_id.insert(rec_tid, tid.as_raw());
        let tgid = Pid::from_raw(self.live_id.get(&rec_pid).copied().unwrap_or(tid.as_raw()));
        if rec_tid == rec_pid {
            if let Ok(mut pids) = self.shared.pids.lock() {
                pids.push(tid.as_raw());
            }
        }
        self.live.insert(
            tid,
            LiveThread {
                logical,
                process,
                in_flight: None,
                awaiting_first_stop,
                last_return: Instant::now(),
                tgid,
                injecting: None,
            },
        );
    }

    fn diverge(&mut self, thread: ThreadId, expected: String, observed: String) {
        let (tid, index) = self
            .plan
            .threads
            .get(thread as usize)
            .map_or((0, None), |p| (p.tid, Some(p.done)));
        self.shared.diverge(Divergence {
            thread: Some(thread),
            recorded_tid: tid,
            index,
            expected,
            observed,
        });
    }

    fn diverged(&self) -> bool {
        self.shared.has_diverged()
    }

    /// Runs the replay to its end. `Ok(())` only for a faithful replay.
    pub fn run(&mut self) -> Result<std::result::Result<(), Divergence>> {
        loop {
            let stop = match poll_any().context("waiting for the replayed program")? {
                Polled::Stop(stop) => stop,
                Polled::Gone => break,
                Polled::Nothing => {
                    self.release_due()?;
                    if self.shared.stalled.load(Ordering::Acquire) && !self.diverged() {
                        let report = self.stall_report();
                        self.shared.diverge(report);
                    }
                    let mut next = self.timed.peek().map(|Reverse((at, _, _))| *at);
                    let wanted = if self.order_returns {
                        self.break_inversions()?;
                        self.break_untraced_block()?;
                        // Look again soon: a thread may block in the shim
                        // at a rank after one of its own, which no stop
                        // would tell.
                        let check = if self.late.is_empty() {
                            INVERSION_CHECK
                        } else {
                            LATE_RETURN_STILL / 2
                        };
                        let soon = Instant::now() + check;
                        next = Some(next.map_or(soon, |n| n.min(soon)));
                        self.rank_wanted()
                    } else {
                        None
                    };
                    if !self.log.tracer_wants_rank(wanted) {
                        self.clock.wait(next);
                    }
                    self.release_due()?;
                    if !self.diverged() {
                        self.release_ranked_return()?;
                    }
                    if !self.diverged() {
                        self.release_holds()?;
                    }
                    continue;
                }
            };
            self.shared.progress.fetch_add(1, Ordering::Relaxed);
            debug_log(format_args!("{stop:?}"));
            let result = match stop {
                Stop::Seccomp(pid) => self.on_seccomp(pid),
                Stop::SyscallExit(pid) => self.on_syscall_exit(pid),
                Stop::Event(pid, ev) => self.on_event(pid, ev),
                Stop::Signal(pid, sig) => self.on_signal(pid, sig),
                Stop::Exited(pid, code) => self.on_exit(pid, ExitStatus::Exited(code)),
                Stop::Killed(pid, sig) => self.on_exit(pid, ExitStatus::Signaled(sig)),
            };
            if let Err(e) = result {
                match e.downcast_ref::<rrc_interposer::InterposeError>() {
                    Some(ie) if ie.tracee_gone() => {}
                    _ => {
                        self.shared.kill_all();
                        return Err(e);
                    }
                }
            }
            if !self.diverged() {
                self.release_holds()?;
            }
        }
        Ok(self.verdict())
    }

    fn verdict(&mut self) -> std::result::Result<(), Divergence> {
        if let Ok(Some(d)) = self.shared.divergence.lock().map(|d| d.clone()) {
            return Err(d);
        }
        for (i, p) in self.plan.threads.iter().enumerate() {
            if !p.started {
                return Err(Divergence {
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
                thread: None,
                recorded_tid: 0,
                index: None,
                expected: format!("the program to end {}", self.plan.exit),
                observed: other.map_or("no exit status".into(), |s| format!("it {s}")),
            }),
        }
    }

    fn resume(&self, pid: Pid, signal: i32) -> Result<()> {
        let t = Tracee::new(pid);
        if self.live.get(&pid).is_some_and(|t| t.in_flight.is_some()) {
            t.resume_to_syscall_exit("resume to syscall exit")?;
        } else {
            t.resume(signal, "resume")?;
        }
        Ok(())
    }

    fn on_seccomp(&mut self, pid: Pid) -> Result<()> {
        if self.diverged() {
            return Ok(());
        }
        let tracee = Tracee::new(pid);
        let regs = tracee.regs("read registers at seccomp stop")?;
        let (nr, args) = (regs.nr(), regs.args());
        self.end_handler_alone(pid)?;
        if model::marks_handler_end(nr) {
            return Ok(tracee.resume(0, "resume into rt_sigreturn")?);
        }
        let Some(thread) = self.live.get(&pid).map(|t| t.logical) else {
            anyhow::bail!("seccomp stop of unknown tid {pid}");
        };
        let plan = &self.plan.threads[thread as usize];
        if nr == libc::SYS_restart_syscall
            && !matches!(plan.events.front(), Some(PlannedEvent::Syscall(r)) if r.nr as i64 == nr)
        {
            // The kernel continuing an untraced call (a futex wait with a
            // timeout, in the program or the shim) after a signal that
            // replay held back: not an event, as it was not when recorded.
            return Ok(tracee.resume(0, "resume an untraced call's restart")?);
        }
        if let Some(sig) = self.fatal_last_signal(thread) {
            if !self.process_may_exit(thread) {
                self.held.insert(
                    pid,
                    Hold::FatalSignal {
                        sig,
                        at_entry: true,
                    },
                );
            } else {
                self.deliver_fatal(pid, sig, true)?;
            }
            return Ok(());
        }
        let plan = &self.plan.threads[thread as usize];
        let inputs = model::read_inputs(&tracee, nr, &args);
        if let Some(PlannedEvent::Signal(s)) = plan.events.front() {
            if let SignalPoint::WhileWaiting(_) = s.at {
                let rank = self.plan.return_rank.get(&(thread, s.index)).copied();
                if let Some(rank) = rank.filter(|_| self.order_returns) {
                    if !self.rank_is_now(rank) && !self.log.rank_passed(rank) {
                        // Woken sooner than when recorded: it waits here
                        // for the signal's place in the order.
                        self.held.insert(pid, Hold::SignalTurn(rank));
                        return Ok(());
                    }
                }
            }
        }
        let plan = &self.plan.threads[thread as usize];
        let record = match plan.events.front() {
            Some(PlannedEvent::Syscall(r)) => r,
            Some(PlannedEvent::Signal(s))
                if matches!(
                    s.at,
                    SignalPoint::SyscallEntry
                        | SignalPoint::Elapsed(_)
                        | SignalPoint::WhileWaiting(_)
                ) =>
            {
                // Delivered at this call's entry when recorded (or it
                // arrived by time and the thread got here first): deliver
                // it now; the call runs again after the handler.
                let sig = s.signo;
                let queued = self
                    .live
                    .get(&pid)
                    .is_some_and(|t| t.injecting == Some(sig));
                if queued
                    && matches!(s.at, SignalPoint::WhileWaiting(_))
                    && !signal_blocked(pid, sig)
                {
                    // Queued while it waited in a futex, which it left for
                    // this call before the signal landed: it lands as the
                    // call is skipped here, and the call runs again after.
                    let mut regs = regs;
                    tracee.rewind_syscall(&mut regs)?;
                    return Ok(tracee.resume(0, "resume to take a queued signal")?);
                }
                if queued {
                    // Queued at this boundary and still not delivered: the
                    // thread has it blocked here, where the recording
                    // delivered it.
                    let expected = format!(
                        "{} delivered before this syscall",
                        describe_event(&PlannedEvent::Signal(s.clone()))
                    );
                    let observed = format!(
                        "{} with the signal blocked",
                        describe_call(nr, &args, &inputs)
                    );
                    self.diverge(thread, expected, observed);
                    return Ok(());
                }
                let mut regs = regs;
                tracee.rewind_syscall(&mut regs)?;
                self.inject(pid, sig)?;
                return Ok(tracee.resume(0, "resume to deliver a recorded signal")?);
            }
            Some(other) => {
                let expected = describe_event(other);
                let observed = describe_call(nr, &args, &inputs);
                self.diverge(thread, expected, observed);
                return Ok(());
            }
            None => {
                // It was blocked in this call when the recording ended (or
                // the program has gone somewhere new; the end decides).
                self.held.insert(pid, Hold::PastEnd);
                return Ok(());
            }
        };
        if let Some(mismatch) = self.mismatch(record, nr, &args, &inputs) {
            let expected = describe_record(record);
            let observed = format!("{} ({mismatch})", describe_call(nr, &args, &inputs));
            self.diverge(thread, expected, observed);
            return Ok(());
        }
        if let Some(&rank) = self.plan.output_rank.get(&(thread, record.index)) {
            if rank != self.next_output {
                self.held.insert(pid, Hold::OutputTurn(rank));
                return Ok(());
            }
        }
        // A call that ends its process (exit_group, a SIGKILL the thread
        // sends itself) never returned when recorded, and execve ends the
        // process's other threads: it waits until they have replayed
        // everything they did.
        let ends_other_threads = matches!(nr, libc::SYS_execve | libc::SYS_execveat);
        if (record.order == rrc_trace::NO_ORDER || ends_other_threads)
            && !self.process_may_exit(thread)
        {
            self.held.insert(pid, Hold::ProcessExit);
            return Ok(());
        }
        if self.order_returns && runs_in_recorded_order(record, nr, &args) {
            let key = (thread, record.index);
            let entry = self.plan.entry_rank.get(&key);
            if let Some(&rank) = entry.or_else(|| self.plan.return_rank.get(&key)) {
                if !self.rank_is_now(rank) && !self.log.rank_passed(rank) {
                    self.held.insert(pid, Hold::RunTurn(rank));
                    return Ok(());
                }
            }
        }
        self.dispatch(pid, thread, regs)
    }

    /// Replays the thread's front event, known to match the call at `regs`.
    fn dispatch(&mut self, pid: Pid, thread: ThreadId, mut regs: SyscallRegs) -> Result<()> {
        let tracee = Tracee::new(pid);
        let (nr, args) = (regs.nr(), regs.args());
        let Some(PlannedEvent::Syscall(record)) =
            self.plan.threads[thread as usize].events.pop_front()
        else {
            return Ok(());
        };
        if nr == libc::SYS_rt_sigsuspend && record.ret == -(libc::EINTR as i64) {
            // It swaps in a signal mask and waits: run it for real with the
            // recorded signal already queued, so the mask it installs is
            // the one the handler runs under.
            if let Some(PlannedEvent::Signal(s)) = self.plan.threads[thread as usize].events.front()
            {
                let sig = s.signo;
                self.inject(pid, sig)?;
            }
            return self.run_to_exit(pid, record, args, ExitCheck::Executed);
        }
        let action = action_for(&record, nr, &args);
        match action {
            ReplayAction::Emulate if !received_fds(&record).is_empty() => {
                self.receive_placeholder_fd(pid, &mut regs, record, args)?
            }
            ReplayAction::Emulate => {
                self.emulate(&tracee, &mut regs, &record)?;
                self.complete(thread);
                let rank = self.plan.return_rank.get(&(thread, record.index)).copied();
                if let SyscallExtra::StdStream(fd) = record.extra {
                    let n = usize::try_from(record.ret).unwrap_or(0);
                    let data = record
                        .inputs
                        .first()
                        .map_or(&[][..], |d| &d[..n.min(d.len())]);
                    write_all(fd as i32, data);
                    self.next_output += 1;
                }
                self.return_in_order(pid, rank, record.interval_ns, record.return_ns)?;
            }
            ReplayAction::Execute | ReplayAction::ExitGroup => {
                if action == ReplayAction::ExitGroup {
                    if let Some(t) = self.live.get(&pid) {
                        self.ending.insert(t.process);
                    }
                }
                if nr == libc::SYS_mmap && record.ret >= 0 && record.outputs.len() == 1 {
                    return self.map_recorded_copy(pid, &mut regs, record, args);
                }
                if let SyscallExtra::MappedFd(recorded) = &record.extra {
                    let now = fd_target(pid, args[4] as i32 as i64);
                    if now.as_deref() != Some(recorded.as_slice())
                        && !self.is_shim(recorded, now.as_deref())
                    {
                        let expected = format!(
                            "{} mapping {}",
                            describe_record(&record),
                            String::from_utf8_lossy(recorded)
                        );
                        // Placeholders are copies of the sync log's descriptor.
                        let placeholder =
                            now.is_some() && now == fd_target(pid, i64::from(rrc_synclog::SHM_FD));
                        let observed = if placeholder {
                            // The open gave a placeholder: the file was not
                            // the recorded one.
                            format!(
                                "a placeholder: {} has changed since it was recorded \
                                 (or is missing), and replay needs the same file",
                                String::from_utf8_lossy(recorded)
                            )
                        } else {
                            format!(
                                "a mapping of {}",
                                now.map_or("nothing".into(), |p| String::from_utf8_lossy(&p)
                                    .into_owned())
                            )
                        };
                        self.diverge(thread, expected, observed);
                        return Ok(());
                    }
                }
                self.complete(thread);
                if action == ReplayAction::ExitGroup {
                    self.resume_thread(pid, 0)?;
                } else {
                    let rank = self.plan.return_rank.get(&(thread, record.index)).copied();
                    self.return_in_order(pid, rank, record.interval_ns, record.return_ns)?;
                }
            }
            ReplayAction::Open => {
                if self.may_reopen(pid, &record, &args) {
                    self.run_to_exit(pid, record, args, ExitCheck::Executed)?;
                } else {
                    self.make_placeholder(pid, &mut regs, record, args)?;
                }
            }
            ReplayAction::Placeholder => self.make_placeholder(pid, &mut regs, record, args)?,
            ReplayAction::ExecuteChecked | ReplayAction::Exec => {
                self.run_to_exit(pid, record, args, ExitCheck::Executed)?;
            }
            ReplayAction::Spawn => {
                if model::snapshots_memory(nr, &args) {
                    // At its rank: the thread whose lock operation came
                    // just before may have been preempted by our wake-up
                    // before it ran its critical section, which the child
                    // must copy. Forks are rare; give it the CPU briefly.
                    std::thread::sleep(FORK_SETTLE);
                }
                self.run_to_exit(pid, record, args, ExitCheck::ReportRecorded)?
            }
            ReplayAction::SignalSend => {
                if record.order == rrc_trace::NO_ORDER {
                    // It ended its own process when recorded (SIGKILL):
                    // threads still held there are not a deadlock.
                    if let Some(t) = self.live.get(&pid) {
                        self.ending.insert(t.process);
                    }
                }
                let mut live_args = args;
                let ids: &[usize] = match nr {
                    libc::SYS_kill | libc::SYS_tkill | libc::SYS_rt_sigqueueinfo => &[0],
                    _ => &[0, 1],
                };
                for &i in ids {
                    live_args[i] = self.live_process_id(args[i]);
                }
                regs.set_args(&live_args);
                tracee.set_regs(&regs, "map ids of a signal sent by the program")?;
                self.run_to_exit(pid, record, args, ExitCheck::Executed)?;
            }
            ReplayAction::ProcessGroup => {
                let mut live_args = args;
                if nr == libc::SYS_setpgid {
                    live_args[0] = self.live_process_id(args[0]);
                    live_args[1] = self.live_process_id(args[1]);
                }
                regs.set_args(&live_args);
                tracee.set_regs(&regs, "map ids of a process group call")?;
                // setsid returns the live session id: the program sees the
                // recorded one.
                self.run_to_exit(pid, record, args, ExitCheck::ReportRecorded)?;
            }
            ReplayAction::ChangeDirectory => {
                self.run_to_exit(pid, record, args, ExitCheck::ReportRecorded)?
            }
            ReplayAction::Unsupported => {
                let what = if nr == libc::SYS_ioctl {
                    format!(
                        "unsupported ioctl request {:#x}",
                        model::ioctl_request(record.args[1])
                    )
                } else {
                    "unsupported syscall".to_string()
                };
                let expected = format!(
                    "{} ({what}: rrc recorded only its return value)",
                    describe_record(&record)
                );
                self.diverge(thread, expected, "replay cannot reproduce it".into());
            }
        }
        Ok(())
    }

    fn is_shim(&self, recorded: &[u8], now: Option<&[u8]>) -> bool {
        recorded == self.shim_recorded.as_slice() && now == Some(self.shim_now.as_slice())
    }

    /// Counts the event as replayed.
    fn complete(&mut self, thread: ThreadId) {
        if let Some(p) = self.plan.threads.get_mut(thread as usize) {
            p.done += 1;
        }
    }

    fn run_to_exit(
        &mut self,
        pid: Pid,
        record: SyscallRecord,
        args: [u64; 6],
        check: ExitCheck,
    ) -> Result<()> {
        if let Some(t) = self.live.get_mut(&pid) {
            t.in_flight = Some(InFlight {
                record,
                args,
                check,
            });
        }
        Tracee::new(pid).resume_to_syscall_exit("resume to syscall exit")?;
        Ok(())
    }

    /// Turns the call into one that makes a placeholder descriptor with
    /// the recorded number (see [`placeholder_call`]).
    fn make_placeholder(
        &mut self,
        pid: Pid,
        regs: &mut SyscallRegs,
        record: SyscallRecord,
        args: [u64; 6],
    ) -> Result<()> {
        let flags = match record.nr as i64 {
            libc::SYS_open => args[1],
            libc::SYS_openat => args[2],
            libc::SYS_socket => args[1],
            libc::SYS_accept4 => args[3],
            _ => 0,
        } as i32;
        let want = record.ret;
        placeholder_call(pid, regs, want, flags & libc::O_CLOEXEC != 0);
        Tracee::new(pid).set_regs(regs, "turn a syscall into a placeholder descriptor")?;
        self.run_to_exit(pid, record, args, ExitCheck::Placeholder)
    }

    /// An mmap of a file the recorder copied (one the program wrote or
    /// made): anonymous memory at the recorded address instead, given the
    /// recorded bytes at the exit.
    fn map_recorded_copy(
        &mut self,
        pid: Pid,
        regs: &mut SyscallRegs,
        record: SyscallRecord,
        args: [u64; 6],
    ) -> Result<()> {
        // A read-only mapping is filled through /proc/PID/mem, which may
        // write into private read-only memory only; shared or not makes
        // no difference to memory nobody writes.
        let writable = args[2] & libc::PROT_WRITE as u64 != 0;
        let sharing = if args[3] & 0x3 == libc::MAP_PRIVATE as u64 || !writable {
            libc::MAP_PRIVATE
        } else {
            libc::MAP_SHARED
        };
        let placement = if args[3] & libc::MAP_FIXED as u64 != 0 {
            libc::MAP_FIXED
        } else {
            libc::MAP_FIXED_NOREPLACE
        };
        let flags = (sharing | libc::MAP_ANONYMOUS | placement) as u64;
        regs.set_args(&[record.ret as u64, args[1], args[2], flags, u64::MAX, 0]);
        Tracee::new(pid).set_regs(regs, "map a recorded copy of a file")?;
        self.run_to_exit(pid, record, args, ExitCheck::MappedCopy)
    }

    /// A recorded pid, tid or process group (negative: kill(-pgid)) as the
    /// live one; 0, -1 and unknown ids stay as they are.
    fn live_process_id(&self, arg: u64) -> u64 {
        let id = arg as i32;
        let (group, abs) = (id < -1, id.unsigned_abs() as i32);
        match self.live_id.get(&abs) {
            Some(&live) if id != 0 && id != -1 => (if group { -live } else { live }) as i64 as u64,
            _ => arg,
        }
    }

    /// A recvmsg that received a descriptor: the descriptor came from
    /// another process whose send replay emulated, so a placeholder takes
    /// its number (the call becomes eventfd2, as for `make_placeholder`).
    fn receive_placeholder_fd(
        &mut self,
        pid: Pid,
        regs: &mut SyscallRegs,
        record: SyscallRecord,
        args: [u64; 6],
    ) -> Result<()> {
        let fds = received_fds(&record);
        if fds.len() != 1 {
            let expected = format!(
                "{} receiving {} descriptors",
                describe_record(&record),
                fds.len()
            );
            self.diverge(
                record.thread,
                expected,
                "replay gives placeholders for one received descriptor per message".into(),
            );
            return Ok(());
        }
        let cloexec = args[2] & libc::MSG_CMSG_CLOEXEC as u64 != 0;
        placeholder_call(pid, regs, i64::from(fds[0]), cloexec);
        Tracee::new(pid).set_regs(regs, "turn recvmsg into a placeholder descriptor")?;
        self.run_to_exit(pid, record, args, ExitCheck::ReceivedFd(fds[0]))
    }

    /// An open can run for real when it only reads, and the file is still
    /// the one that was recorded (or it is the shim, which replay must map).
    fn may_reopen(&self, pid: Pid, record: &SyscallRecord, args: &[u64; 6]) -> bool {
        let flags = match record.nr as i64 {
            libc::SYS_open => args[1],
            libc::SYS_openat => args[2],
            _ => return false,
        } as i32;
        let read_only = flags & libc::O_ACCMODE == libc::O_RDONLY
            && flags & (libc::O_CREAT | libc::O_TRUNC | libc::O_TMPFILE) == 0;
        let SyscallExtra::Opened(id) = &record.extra else {
            return false;
        };
        if id.path == self.shim_recorded {
            return true;
        }
        if !read_only || !id.regular {
            return false;
        }
        let path = std::path::Path::new(std::ffi::OsStr::from_bytes(&id.path));
        let unchanged = std::fs::metadata(path)
            .map(|m| rrc_interposer::identity_of(id.path.clone(), &m) == *id)
            .unwrap_or(false);
        // A relative path must lead to that file from where the program
        // is now (its working directory or directory descriptor).
        let dirfd = match record.nr as i64 {
            libc::SYS_openat => args[0] as i32,
            _ => libc::AT_FDCWD,
        };
        let opened = record.inputs.first().map_or(&[][..], Vec::as_slice);
        unchanged
            && (opened.starts_with(b"/")
                || resolve_live(pid, dirfd, opened).is_some_and(|p| p == path))
    }

    /// Skips the syscall, giving it the recorded result and memory.
    fn emulate(
        &mut self,
        tracee: &Tracee,
        regs: &mut SyscallRegs,
        record: &SyscallRecord,
    ) -> Result<()> {
        let args = regs.args();
        self.inject_outputs(tracee, record, &args)?;
        regs.regs.orig_rax = u64::MAX; // -1: the kernel skips the call
        regs.regs.rax = record.ret as u64;
        tracee.set_regs(regs, "inject a recorded result")?;
        Ok(())
    }

    fn inject_outputs(
        &mut self,
        tracee: &Tracee,
        record: &SyscallRecord,
        args: &[u64; 6],
    ) -> Result<()> {
        let nr = record.nr as i64;
        let mut regions = model::outputs(nr, args, record.ret, tracee)?;
        if record.outputs.len() > 1 {
            // Where later regions lie can depend on lengths the kernel wrote
            // into earlier ones (recvmsg's msg_namelen and msg_controllen):
            // write the regions one at a time, each found after the ones
            // before it hold their recorded contents.
            for i in 0..record.outputs.len() {
                let Some(region) = regions.get(i) else { break };
                tracee.write(region.addr, &record.outputs[i])?;
                regions = model::outputs(nr, args, record.ret, tracee)?;
            }
        }
        if regions.len() != record.outputs.len() {
            let thread = record.thread;
            self.diverge(
                thread,
                format!(
                    "{} writing {} memory regions",
                    describe_record(record),
                    record.outputs.len()
                ),
                format!("{} regions to write", regions.len()),
            );
            return Ok(());
        }
        for (region, data) in regions.iter().zip(&record.outputs) {
            tracee.write(region.addr, data)?;
        }
        Ok(())
    }

    fn mismatch(
        &self,
        r: &SyscallRecord,
        nr: i64,
        args: &[u64; 6],
        inputs: &[Vec<u8>],
    ) -> Option<String> {
        if r.nr as i64 != nr {
            return Some("a different syscall".into());
        }
        let mask = model::compared_args(nr);
        for i in 0..6 {
            if mask & (1 << i) != 0 && r.args[i] != args[i] {
                return Some(format!(
                    "argument {i} differs: recorded {:#x}, now {:#x}",
                    r.args[i], args[i]
                ));
            }
        }
        if r.inputs.len() != inputs.len() {
            return Some("different data passed".into());
        }
        for (rec, now) in r.inputs.iter().zip(inputs) {
            // sendfile from a file replay could not reopen: nothing to read.
            let unreadable = nr == libc::SYS_sendfile && now.is_empty() && r.ret > 0;
            if rec != now
                && !unreadable
                && !(rec == &self.shim_recorded && now == &self.shim_now)
                && rec != &self.with_recorded_tids(now)
            {
                return Some(format!("data differs {}", first_difference(rec, now)));
            }
        }
        None
    }

    /// A path with live tids put back to the recorded ones: glibc builds
    /// /proc/self/task/TID paths from its cached (live) tid, which replay
    /// cannot make equal to the recorded one.
    fn with_recorded_tids(&self, path: &[u8]) -> Vec<u8> {
        let Ok(text) = std::str::from_utf8(path) else {
            return path.to_vec();
        };
        if !text.starts_with("/proc/") {
            return path.to_vec();
        }
        let parts: Vec<String> = text
            .split('/')
            .map(|part| {
                part.parse::<i32>()
                    .ok()
                    .and_then(|live| {
                        self.live_id
                            .iter()
                            .find(|(_, l)| **l == live)
                            .map(|(recorded, _)| recorded.to_string())
                    })
                    .unwrap_or_else(|| part.to_string())
            })
            .collect();
        parts.join("/").into_bytes()
    }

    fn on_syscall_exit(&mut self, pid: Pid) -> Result<()> {
        let tracee = Tracee::new(pid);
        let Some(t) = self.live.get_mut(&pid) else {
            return tracee.resume(0, "resume").map_err(Into::into);
        };
        let Some(call) = t.in_flight.take() else {
            return tracee.resume(0, "resume").map_err(Into::into);
        };
        let thread = t.logical;
        if self.diverged() {
            return Ok(());
        }
        let mut regs = tracee.regs("read registers at syscall exit")?;
        let ret = regs.ret();
        let record = &call.record;
        let interrupted_as_recorded = is_restart(ret) && record.ret == -(libc::EINTR as i64);
        if is_restart(ret) && !interrupted_as_recorded {
            // Interrupted by a signal of the replay itself (a real child's
            // SIGCHLD): the kernel restarts it once that signal is
            // suppressed, and the call traps again. Put the event back.
            let thread_plan = &mut self.plan.threads[thread as usize];
            thread_plan
                .events
                .push_front(PlannedEvent::Syscall(call.record));
            return Ok(tracee.resume(0, "resume an interrupted syscall")?);
        }
        match call.check {
            ExitCheck::Executed if interrupted_as_recorded => {}
            ExitCheck::Executed | ExitCheck::Placeholder if ret != record.ret => {
                let expected = describe_record(record);
                let observed = format!("it returned {ret}");
                self.diverge(thread, expected, observed);
                return Ok(());
            }
            ExitCheck::Executed => {
                let regions = model::outputs(record.nr as i64, &call.args, ret, &tracee)?;
                let now: Vec<Vec<u8>> = regions
                    .iter()
                    .map(|r| tracee.read(r.addr, r.len).unwrap_or_default())
                    .collect();
                if now != record.outputs {
                    let expected = describe_record(record);
                    self.diverge(thread, expected, "different results in memory".into());
                    return Ok(());
                }
            }
            ExitCheck::Placeholder => self.inject_outputs(&tracee, record, &call.args)?,
            ExitCheck::MappedCopy if ret != record.ret => {
                let expected = format!("{} (a copy of the mapped file)", describe_record(record));
                self.diverge(thread, expected, format!("it returned {ret:#x}"));
                return Ok(());
            }
            ExitCheck::MappedCopy => {
                if let Some(bytes) = record.outputs.first() {
                    tracee.write(ret as u64, bytes)?;
                }
            }
            ExitCheck::ReceivedFd(fd) if ret != i64::from(fd) => {
                let expected = format!("{} receiving descriptor {fd}", describe_record(record));
                self.diverge(thread, expected, format!("the placeholder took {ret}"));
                return Ok(());
            }
            ExitCheck::ReceivedFd(_) => {
                self.inject_outputs(&tracee, record, &call.args)?;
                regs.regs.rax = record.ret as u64;
                tracee.set_regs(&regs, "give recvmsg its recorded result")?;
            }
            ExitCheck::ReportRecorded => {
                regs.regs.rax = record.ret as u64;
                tracee.set_regs(&regs, "report the recorded result")?;
            }
        }
        let record = call.record;
        self.complete(thread);
        // An accept's descriptor is in place: the order moves past its
        // entry (its return keeps its own place).
        let entry = self.plan.entry_rank.get(&(thread, record.index)).copied();
        self.advance_return_order(entry)?;
        let rank = self.plan.return_rank.get(&(thread, record.index)).copied();
        self.return_in_order(pid, rank, record.interval_ns, record.return_ns)
    }

    /// With `--order-returns`, a return waits until every return recorded
    /// before it has happened: threads then see each other's syscall
    /// effects, and run the code between syscalls, in the recorded order,
    /// which also orders the data races between them that no lock covers.
    fn return_in_order(
        &mut self,
        pid: Pid,
        rank: Option<u64>,
        interval_ns: u64,
        return_ns: u64,
    ) -> Result<()> {
        match rank {
            Some(r) if self.order_returns && !self.rank_is_now(r) && !self.log.rank_passed(r) => {
                self.queued_returns.insert(r, (pid, interval_ns, return_ns));
                Ok(())
            }
            _ => self.return_after_interval(pid, rank, interval_ns, return_ns),
        }
    }

    /// Whether the event order (shared with the shim's sync operations)
    /// has reached `rank`.
    fn rank_is_now(&self, rank: u64) -> bool {
        self.log.order_turn() == rank as u32
    }

    /// After the return with `rank`: the next event in the order may
    /// happen; if it is a return waiting here, it goes ahead.
    fn advance_return_order(&mut self, rank: Option<u64>) -> Result<()> {
        // A rank already passed (skipped) is not passed on again.
        match rank {
            Some(r) if self.order_returns && self.rank_is_now(r) => {
                self.log.advance_rank();
                self.release_ranked_return()
            }
            _ => Ok(()),
        }
    }

    /// Skips ranks whose thread can no longer reach them: it is blocked at
    /// a later rank of its own, because it ran its events in an order other
    /// than the recorded one (a sync operation before a syscall it made
    /// first when recorded, or the reverse). Waiting would deadlock; the
    /// thread's streams are still checked event by event.
    fn break_inversions(&mut self) -> Result<()> {
        if !self.order_returns {
            return Ok(());
        }
        loop {
            let now = self.log.order_turn();
            if self.early.remove(&u64::from(now)) {
                // Its return already went ahead.
                self.log.skip_rank(now);
                continue;
            }
            let Some(&owner) = self.plan.rank_owner.get(now as usize) else {
                return Ok(());
            };
            let Some(pid) = self
                .live
                .iter()
                .find(|(_, t)| t.logical == owner)
                .map(|(p, _)| *p)
            else {
                return Ok(());
            };
            let later = |rank: u64| rank as u32 != now && !self.log.rank_passed(rank);
            let queued = self
                .queued_returns
                .iter()
                .any(|(r, (p, _, _))| *p == pid && later(*r));
            let run_turn = matches!(self.held.get(&pid), Some(Hold::RunTurn(r)) if later(*r));
            let in_shim = self.log.ring(owner).is_some_and(|ring| {
                let w = ring.waiting_for_rank.load(Ordering::Acquire);
                w != 0 && later(u64::from(w - 1))
            });
            if !(queued || run_turn || in_shim) {
                return Ok(());
            }
            debug_log(format_args!(
                "event order: skipping rank {now} of t{owner}, blocked at a later rank"
            ));
            if !self.log.skip_rank(now) {
                // The order moved meanwhile: look again.
                continue;
            }
            self.stats.inversions += 1;
            self.release_ranked_return()?;
        }
    }

    /// The order has not moved for a while, and the thread whose event is
    /// next is neither at a syscall nor in rrc's shim but asleep in a futex
    /// (most likely a lock rrc does not see, malloc's or stdio's, held by a
    /// thread that the order holds at a syscall), or running well past the
    /// recorded time of that event (spinning until another thread moves). Let the earliest held
    /// return go ahead so it can release it; the order steps over that rank
    /// later. Each step waits `UNTRACED_BLOCK_WAIT` again.
    fn break_untraced_block(&mut self) -> Result<()> {
        if self.order_still_for() < UNTRACED_BLOCK_WAIT {
            return Ok(());
        }
        let now = self.log.order_turn();
        let Some(&owner) = self.plan.rank_owner.get(now as usize) else {
            return Ok(());
        };
        let Some((&pid, t)) = self.live.iter().find(|(_, t)| t.logical == owner) else {
            return Ok(());
        };
        if self.held_by_rrc(pid, t) {
            return Ok(());
        }
        // Running (spinning on another thread's progress, say) rather than
        // asleep: only once it is well behind the recorded timeline for
        // this event, which it had reached by then when recorded.
        let late = match self.plan.threads[owner as usize].events.front() {
            Some(PlannedEvent::Syscall(r)) => Some(r.return_ns),
            Some(PlannedEvent::Tsc(r)) => Some(r.return_ns),
            _ => None,
        }
        .is_some_and(|ns| {
            Instant::now() > self.epoch + Duration::from_nanos(ns) + STUCK_BEHIND_TIMELINE
        });
        if !late && !blocked_in_futex(pid) {
            return Ok(());
        }
        // The earliest event held back, at the tracer or in the shim.
        let queued = self.queued_returns.first_key_value().map(|(r, v)| (*r, *v));
        let in_shim = self
            .live
            .values()
            .filter_map(|t| {
                let w = self
                    .log
                    .ring(t.logical)?
                    .waiting_for_rank
                    .load(Ordering::Acquire);
                (w != 0 && !self.log.rank_passed(u64::from(w - 1)))
                    .then_some((u64::from(w - 1), t.logical))
            })
            .min();
        if let Some((rank, slot)) = in_shim.filter(|(r, _)| queued.is_none_or(|(q, _)| *r < q)) {
            debug_log(format_args!(
                "event order: t{owner} stuck at rank {now}: t{slot}'s sync rank {rank} goes early"
            ));
            self.early.insert(rank);
            self.stats.early_returns += 1;
            self.order_since = (now, Instant::now());
            self.log.release_early(slot, rank as u32);
            return Ok(());
        }
        let Some((rank, (held_pid, interval_ns, return_ns))) = queued else {
            return Ok(());
        };
        self.queued_returns.remove(&rank);
        debug_log(format_args!(
            "event order: t{owner} blocked outside rrc at rank {now}: rank {rank} goes early"
        ));
        self.early.insert(rank);
        self.stats.early_returns += 1;
        self.order_since = (now, Instant::now());
        self.return_after_interval(held_pid, Some(rank), interval_ns, return_ns)
    }

    /// The queued return whose rank has come (the order may have been
    /// moved on by the shim), if any, goes ahead.
    fn release_ranked_return(&mut self) -> Result<()> {
        while let Some((&rank, _)) = self.queued_returns.first_key_value() {
            // A rank the order has passed (skipped) goes too, or it would
            // hide the ones behind it.
            let passed = self.log.rank_passed(rank);
            if !self.rank_is_now(rank) && !passed {
                return Ok(());
            }
            if passed {
                debug_log(format_args!(
                    "event order: rank {rank} was passed while queued"
                ));
            }
            if let Some((pid, interval_ns, return_ns)) = self.queued_returns.remove(&rank) {
                self.return_after_interval(pid, Some(rank), interval_ns, return_ns)?;
            }
            if !passed {
                return Ok(());
            }
        }
        Ok(())
    }

    /// The lowest rank a thread is held for here: the shim's advance to it
    /// must wake the tracer.
    fn rank_wanted(&self) -> Option<u64> {
        let queued = self.queued_returns.keys().next().copied();
        let run_turns = self.held.values().filter_map(|h| match h {
            Hold::RunTurn(rank) | Hold::SignalTurn(rank) => Some(*rank),
            _ => None,
        });
        let early = self.early.first().copied();
        let signals = self.next_ranked_signal().map(|(rank, _, _)| rank);
        let late = self.late.values().map(|l| l.next_rank).min();
        queued
            .into_iter()
            .chain(run_turns)
            .chain(early)
            .chain(signals)
            .chain(late)
            .min()
    }

    /// Lets a replayed syscall return, but no sooner than its recorded
    /// interval after the thread's previous return: emulated calls return
    /// at once, and without this, threads would race ahead of each other
    /// and resolve untracked data races differently than when recorded.
    ///
    /// With `Anchor::Shared` (the default) the return also waits for its
    /// recorded time on the shared timeline, so threads do not drift apart;
    /// BENCHMARKS.md has the measurements behind that choice.
    fn return_after_interval(
        &mut self,
        pid: Pid,
        rank: Option<u64>,
        interval_ns: u64,
        return_ns: u64,
    ) -> Result<()> {
        let Some(t) = self.live.get(&pid) else {
            return Ok(());
        };
        let mut due = t.last_return + Duration::from_nanos(interval_ns);
        if self.anchor == Anchor::Shared {
            due = due.max(self.epoch + Duration::from_nanos(return_ns));
        }
        if self.enforce_intervals && due > Instant::now() {
            self.timed
                .push(Reverse((due, pid, Timed::Return { interval_ns, rank })));
            return Ok(());
        }
        self.return_now(pid, rank, interval_ns, false)
    }

    fn return_now(
        &mut self,
        pid: Pid,
        rank: Option<u64>,
        interval_ns: u64,
        held: bool,
    ) -> Result<()> {
        let now = Instant::now();
        if let Some(t) = self.live.get_mut(&pid) {
            let actual = now.duration_since(t.last_return).as_nanos() as i64;
            let error = actual - interval_ns as i64;
            self.stats.error_ns.push(error);
            if held {
                self.stats.held_error_ns.push(error);
                self.stats.held_total += Duration::from_nanos(interval_ns);
            }
            t.last_return = now;
        }
        let alone = self.live.get(&pid).is_some_and(|t| {
            matches!(
                self.plan.threads[t.logical as usize].events.front(),
                Some(PlannedEvent::Signal(s)) if s.at == SignalPoint::InterruptedCall
            )
        });
        if alone {
            // As when recorded: the others reach their next event first.
            let process = self.live.get(&pid).map(|t| t.process);
            let now = Instant::now();
            let others: Vec<Pid> = self
                .live
                .iter()
                .filter(|(p, t)| {
                    **p != pid
                        && Some(t.process) == process
                        && now.duration_since(t.last_return) < rrc_interposer::SETTLE_RECENT
                })
                .map(|(p, _)| *p)
                .collect();
            rrc_interposer::wait_until_settled(&others, HANDLER_SETTLE_LIMIT);
        }
        if !alone {
            if let Some(next_rank) = self.late_return_rank(pid, rank) {
                self.stats.late_returns += 1;
                self.late.insert(
                    pid,
                    LateReturn {
                        next_rank,
                        since: Instant::now(),
                    },
                );
                self.advance_return_order(rank)?;
                return self.release_late();
            }
        }
        self.resume_thread(pid, 0)?;
        match rank {
            Some(r) if alone && self.order_returns && self.rank_is_now(r) => {
                self.handler_alone.insert(pid, r);
                Ok(())
            }
            _ => self.advance_return_order(rank),
        }
    }

    /// The rank of the thread's arrival at its next sync operation, if its
    /// return at `rank` should wait for it (`LateReturn`): only at its turn
    /// in the order, when that arrival is the thread's next ranked event
    /// and others' events come between, and when its next syscall or
    /// rdtsc has a place in the order too (not a signal).
    fn late_return_rank(&self, pid: Pid, rank: Option<u64>) -> Option<u64> {
        let r = rank.filter(|r| self.late_returns && self.rank_is_now(*r))?;
        let t = self.live.get(&pid)?;
        if t.injecting.is_some() || self.handler_alone.contains_key(&pid) {
            return None;
        }
        let index = match self.plan.threads[t.logical as usize].events.front()? {
            PlannedEvent::Syscall(s) => s.index,
            PlannedEvent::Tsc(x) => x.index,
            PlannedEvent::Signal(_) => return None,
        };
        // Its next call has a place in the order (exit_group has none).
        self.plan.return_rank.get(&(t.logical, index))?;
        let next = self.plan.next_own_rank.get(r as usize).copied()?;
        // Only up to an arrival, stamped as the thread got there; a
        // syscall's return is stamped long after its entry when the call
        // blocks, and the code before it would run too late.
        let arrival = self.plan.arrival_ranks.get(next as usize) == Some(&true);
        (arrival && next > r + 1).then_some(next)
    }

    /// Lets go the threads kept after their return whose next event is
    /// now next (or passed), or that the order has stopped moving for, or
    /// that have been kept long enough.
    fn release_late(&mut self) -> Result<()> {
        if self.late.is_empty() {
            return Ok(());
        }
        // Standing still while the next event's thread waits for its
        // recorded time, or runs toward it, is the recorded pace; only
        // asleep outside rrc's view may it be waiting for a kept thread.
        let still = self.order_still_for() >= LATE_RETURN_STILL && self.next_owner_blocked();
        let ready: Vec<(Pid, bool)> = self
            .late
            .iter()
            .filter_map(|(pid, l)| {
                let turn = self.rank_is_now(l.next_rank) || self.log.rank_passed(l.next_rank);
                (turn || still || l.since.elapsed() >= LATE_RETURN_LIMIT).then_some((*pid, turn))
            })
            .collect();
        for (pid, turn) in ready {
            self.late.remove(&pid);
            if !turn {
                self.stats.late_released_stalled += 1;
            }
            if let Some(t) = self.live.get_mut(&pid) {
                t.last_return = Instant::now();
            }
            self.resume_thread(pid, 0)?;
        }
        Ok(())
    }

    /// How long the event order has stood at its current rank (or since a
    /// held event was last let go ahead of it).
    fn order_still_for(&mut self) -> Duration {
        let now = self.log.order_turn();
        if now != self.order_since.0 {
            self.order_since = (now, Instant::now());
        }
        self.order_since.1.elapsed()
    }

    /// Whether the thread whose event is next in the order is asleep in a
    /// futex outside rrc's shim (a lock or flag rrc does not see).
    fn next_owner_blocked(&self) -> bool {
        let now = self.log.order_turn();
        let Some(&owner) = self.plan.rank_owner.get(now as usize) else {
            return true;
        };
        let Some((&pid, t)) = self.live.iter().find(|(_, t)| t.logical == owner) else {
            return true;
        };
        !self.held_by_rrc(pid, t) && blocked_in_futex(pid)
    }

    /// Whether rrc itself holds the thread: stopped at the tracer (in a
    /// call, held, queued or timed) or waiting in the shim for its turn.
    fn held_by_rrc(&self, pid: Pid, t: &LiveThread) -> bool {
        let at_tracer = t.in_flight.is_some()
            || self.held.contains_key(&pid)
            || self.late.contains_key(&pid)
            || self.queued_returns.values().any(|(p, _, _)| *p == pid)
            || self.timed.iter().any(|Reverse((_, p, _))| *p == pid);
        let in_shim = self.log.ring(t.logical).is_some_and(|r| {
            r.waiting_for_rank.load(Ordering::Acquire) != 0
                || r.waiting_for_turn.load(Ordering::Acquire) != 0
        });
        at_tracer || in_shim
    }

    /// The earliest signal due at a place in the event order (delivered
    /// while its thread waited in a futex when recorded) whose thread is
    /// live: its rank, thread and signal.
    fn next_ranked_signal(&self) -> Option<(u64, Pid, i32)> {
        self.live
            .iter()
            .filter_map(
                |(pid, t)| match self.plan.threads[t.logical as usize].events.front() {
                    Some(PlannedEvent::Signal(s))
                        if matches!(s.at, SignalPoint::WhileWaiting(_)) =>
                    {
                        let rank = self.plan.return_rank.get(&(t.logical, s.index))?;
                        Some((*rank, *pid, s.signo))
                    }
                    _ => None,
                },
            )
            .min()
    }

    /// Delivers the signal whose place in the event order has come, once
    /// the process's other threads have reached their next event (as the
    /// recorder let them): its thread is asleep in a futex wait, as it was.
    fn deliver_ranked_signal(&mut self) -> Result<()> {
        if !self.order_returns {
            return Ok(());
        }
        let Some((rank, pid, sig)) = self.next_ranked_signal() else {
            return Ok(());
        };
        if !self.rank_is_now(rank) {
            return Ok(());
        }
        let Some(t) = self.live.get(&pid) else {
            return Ok(());
        };
        // At the tracer (held at an entry, or a return still to make): the
        // entry hold or the thread's next stop delivers it.
        // Running its own code (not yet at the wait it was in when
        // recorded): a signal queued now could arrive anywhere, so its
        // next syscall entry or futex wait delivers it instead.
        if t.injecting.is_some()
            || self.held.contains_key(&pid)
            || self.handler_alone.contains_key(&pid)
            || self.return_pending(pid, t)
            || !blocked_in_futex(pid)
        {
            return Ok(());
        }
        let process = t.process;
        let now = Instant::now();
        let others: Vec<Pid> = self
            .live
            .iter()
            .filter(|(p, t)| {
                **p != pid
                    && t.process == process
                    && now.duration_since(t.last_return) < rrc_interposer::SETTLE_RECENT
            })
            .map(|(p, _)| *p)
            .collect();
        rrc_interposer::wait_until_settled(&others, HANDLER_SETTLE_LIMIT);
        Ok(self.inject(pid, sig)?)
    }

    /// The handler `pid` ran alone has returned (or the thread made a
    /// syscall, or ended): the event order goes on.
    fn end_handler_alone(&mut self, pid: Pid) -> Result<()> {
        match self.handler_alone.remove(&pid) {
            Some(rank) => self.advance_return_order(Some(rank)),
            None => Ok(()),
        }
    }

    /// Resumes a thread after one of its events, first arranging the
    /// delivery of the next one if it is a recorded asynchronous signal.
    fn resume_thread(&mut self, pid: Pid, signal: i32) -> rrc_interposer::Result<()> {
        let Some(t) = self.live.get(&pid) else {
            return Tracee::new(pid).resume(signal, "resume");
        };
        let next = match self.plan.threads[t.logical as usize].events.front() {
            Some(PlannedEvent::Signal(s)) if t.injecting.is_none() => Some((s.signo, s.at)),
            _ => None,
        };
        let logical = t.logical;
        // Only a signal recorded at this return is held here: one recorded
        // at the next entry or by time comes after code (and sync
        // operations) the thread still has to run.
        let at_return = matches!(
            next,
            Some((_, SignalPoint::SyscallReturn | SignalPoint::InterruptedCall))
        );
        if signal == 0 && at_return {
            if let Some(sig) = self.fatal_last_signal(logical) {
                if !self.process_may_exit(logical) {
                    // Stays stopped where it is until the others are done.
                    self.held.insert(
                        pid,
                        Hold::FatalSignal {
                            sig,
                            at_entry: false,
                        },
                    );
                    return Ok(());
                }
            }
        }
        match next {
            Some((sig, SignalPoint::SyscallReturn | SignalPoint::InterruptedCall)) => {
                self.inject(pid, sig)?
            }
            Some((sig, SignalPoint::Elapsed(ns))) => {
                let at = Instant::now() + Duration::from_nanos(ns);
                self.timed.push(Reverse((at, pid, Timed::Signal { sig })));
            }
            // Without the event order there is no place to wait for.
            Some((sig, SignalPoint::WhileWaiting(_))) if !self.order_returns => {
                self.inject(pid, sig)?
            }
            _ => {}
        }
        Tracee::new(pid).resume(signal, "resume")
    }

    /// Queues a recorded signal for a thread; its delivery stop is then
    /// recognised as ours.
    fn inject(&mut self, pid: Pid, sig: i32) -> rrc_interposer::Result<()> {
        let Some(t) = self.live.get_mut(&pid) else {
            return Ok(());
        };
        if t.injecting.is_some() {
            return Ok(());
        }
        t.injecting = Some(sig);
        let (logical, process) = (t.logical, t.process);
        if self.fatal_last_signal(logical) == Some(sig) {
            self.ending.insert(process);
        }
        let Some(t) = self.live.get(&pid) else {
            return Ok(());
        };
        Tracee::new(pid).queue_signal(t.tgid, sig)
    }

    /// Returns every held thread whose interval has passed.
    fn release_due(&mut self) -> Result<()> {
        while let Some(Reverse((due, pid, what))) = self.timed.peek().copied() {
            if due > Instant::now() {
                break;
            }
            self.timed.pop();
            let result = match what {
                Timed::Return { interval_ns, rank } => {
                    self.return_now(pid, rank, interval_ns, true)
                }
                Timed::Signal { sig } => {
                    let still_due = self.live.get(&pid).is_some_and(|t| {
                        t.injecting.is_none()
                            && matches!(
                                self.plan.threads[t.logical as usize].events.front(),
                                Some(PlannedEvent::Signal(s)) if s.signo == sig
                            )
                    });
                    let logical = self.live.get(&pid).map(|t| t.logical);
                    let must_wait = logical.is_some_and(|l| {
                        self.fatal_last_signal(l).is_some() && !self.process_may_exit(l)
                    });
                    if still_due && must_wait {
                        // Ends the process: not before the other threads
                        // are done (this thread runs or blocks meanwhile).
                        let again = Instant::now() + FATAL_SIGNAL_RECHECK;
                        self.timed
                            .push(Reverse((again, pid, Timed::Signal { sig })));
                        Ok(())
                    } else if still_due {
                        self.inject(pid, sig).map_err(Into::into)
                    } else {
                        Ok(())
                    }
                }
            };
            if let Err(e) = result {
                let gone = e
                    .downcast_ref::<rrc_interposer::InterposeError>()
                    .is_some_and(|ie| ie.tracee_gone());
                if !gone {
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    fn on_event(&mut self, pid: Pid, event: i32) -> Result<()> {
        let tracee = Tracee::new(pid);
        match event {
            libc::PTRACE_EVENT_CLONE | libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK => {
                let child =
                    Pid::from_raw(tracee.event_message("read new tid at clone event")? as i32);
                let extra = self
                    .live
                    .get(&pid)
                    .and_then(|t| t.in_flight.as_ref())
                    .map(|c| c.record.extra.clone());
                let logical = match extra {
                    Some(SyscallExtra::NewThread(l)) => Some(l),
                    Some(SyscallExtra::NewProcess { thread, .. }) => Some(thread),
                    _ => None,
                };
                match logical {
                    Some(l) => {
                        let early = self.early_stops.remove(&child);
                        self.adopt(child, l, !early);
                        if early {
                            Tracee::new(child).resume(0, "start new thread")?;
                        }
                    }
                    None => {
                        let thread = self.live.get(&pid).map_or(0, |t| t.logical);
                        self.diverge(
                            thread,
                            "no new thread here".into(),
                            "the program created a thread or process".into(),
                        );
                        return Ok(());
                    }
                }
            }
            libc::PTRACE_EVENT_EXEC => {
                let former = tracee.event_message("read the former tid at exec")? as i32;
                if former != pid.as_raw() {
                    self.exec_from_thread(Pid::from_raw(former), pid);
                }
                hide_vdso(&tracee)?;
            }
            _ => {}
        }
        self.resume(pid, 0)
    }

    /// A thread other than its process's leader ran execve: the kernel
    /// ended the leader (its recorded events are done: the exec waited for
    /// them) without reporting it, and gave the thread the leader's tid,
    /// by which the shim now finds it (gettid gives the recorded one).
    fn exec_from_thread(&mut self, former: Pid, leader: Pid) {
        if let Some(old) = self.live.remove(&leader) {
            self.held.remove(&leader);
            self.late.remove(&leader);
            self.log.register_thread(0, old.logical, old.process);
        }
        let Some(t) = self.live.remove(&former) else {
            return;
        };
        self.held.remove(&former);
        self.late.remove(&former);
        let recorded_pid = self.plan.threads[t.logical as usize].pid;
        self.log.register_thread(recorded_pid, t.logical, t.process);
        self.live.insert(leader, t);
    }

    fn on_signal(&mut self, pid: Pid, sig: i32) -> Result<()> {
        let Some(t) = self.live.get_mut(&pid) else {
            debug_log(format_args!("early stop of tid {pid} (signal {sig})"));
            self.early_stops.insert(pid);
            return Ok(());
        };
        match rrc_interposer::signal_stop_kind(pid, sig, t.awaiting_first_stop) {
            SignalStopKind::ThreadStart => {
                t.awaiting_first_stop = false;
                return Ok(Tracee::new(pid).resume(0, "start new thread")?);
            }
            SignalStopKind::GroupStop => {
                return Ok(Tracee::new(pid).resume(0, "resume from group stop")?);
            }
            SignalStopKind::Delivery => {}
        }
        let thread = t.logical;
        let injected = t.injecting == Some(sig);
        if self.diverged() {
            return Ok(());
        }
        let tracee = Tracee::new(pid);
        let code = rrc_interposer::signal_info(pid).map_or(0, |si| si.si_code);
        if sig == libc::SIGSEGV && code == libc::SI_KERNEL {
            let mut regs = tracee.regs("read registers at rdtsc fault")?;
            if let Some(insn) = tracee.tsc_instruction_at(regs.regs.rip) {
                return self.replay_tsc(pid, thread, &mut regs, insn);
            }
        }
        let plan = &mut self.plan.threads[thread as usize];
        let front = match plan.events.front() {
            Some(PlannedEvent::Signal(s)) if s.signo == sig => Some(s.clone()),
            _ => None,
        };
        match front {
            Some(s) if injected || s.at == SignalPoint::Synchronous => {
                if injected {
                    tracee.set_siginfo_bytes(&s.siginfo)?;
                    if let Some(t) = self.live.get_mut(&pid) {
                        t.injecting = None;
                    }
                }
                let plan = &mut self.plan.threads[thread as usize];
                plan.events.pop_front();
                plan.done += 1;
                let ranked = match s.at {
                    SignalPoint::WhileWaiting(_) => {
                        self.plan.return_rank.get(&(thread, s.index)).copied()
                    }
                    _ => None,
                };
                self.resume_thread(pid, sig)?;
                if let Some(rank) = ranked {
                    // Its handler runs alone, as when recorded.
                    if self.order_returns && self.rank_is_now(rank) {
                        self.handler_alone.insert(pid, rank);
                    } else if !self.log.rank_passed(rank) {
                        self.early.insert(rank);
                    }
                }
            }
            _ => {
                let fault = rrc_interposer::is_fault(sig, code);
                if fault || injected {
                    let expected = plan
                        .events
                        .front()
                        .map_or("the end of the thread's events".into(), describe_event);
                    self.diverge(thread, expected, format!("signal {}", signal_name(sig)));
                } else {
                    // A real signal of the replay itself (a real child's
                    // SIGCHLD, a stray kill): the program gets the recorded
                    // ones only.
                    self.resume(pid, 0)?;
                }
            }
        }
        Ok(())
    }

    fn replay_tsc(
        &mut self,
        pid: Pid,
        thread: ThreadId,
        regs: &mut SyscallRegs,
        insn: rrc_interposer::TscInstruction,
    ) -> Result<()> {
        let plan = &mut self.plan.threads[thread as usize];
        let Some(PlannedEvent::Tsc(r)) = plan.events.front() else {
            let expected = plan
                .events
                .front()
                .map_or("the end of the thread's events".into(), describe_event);
            self.diverge(thread, expected, format!("{insn:?}").to_lowercase());
            return Ok(());
        };
        let (value, aux, interval, at, index) =
            (r.value, r.aux, r.interval_ns, r.return_ns, r.index);
        Tracee::new(pid).complete_tsc(regs, insn, value, aux)?;
        plan.events.pop_front();
        plan.done += 1;
        let rank = self.plan.return_rank.get(&(thread, index)).copied();
        self.return_in_order(pid, rank, interval, at)
    }

    fn on_exit(&mut self, pid: Pid, status: ExitStatus) -> Result<()> {
        debug_log(format_args!(
            "exit of tid {pid}: {status} (traced: {})",
            self.live.contains_key(&pid)
        ));
        self.early_stops.remove(&pid);
        self.held.remove(&pid);
        self.late.remove(&pid);
        self.end_handler_alone(pid)?;
        let Some(t) = self.live.remove(&pid) else {
            return Ok(());
        };
        if pid == self.root {
            self.main_status = Some(status);
        }
        if self.diverged() {
            return Ok(());
        }
        let plan = &self.plan.threads[t.logical as usize];
        if let Some(next) = plan.events.front() {
            let expected = describe_event(next);
            let left = plan.events.len();
            self.diverge(
                t.logical,
                format!("{expected} ({left} recorded events left)"),
                format!("the thread ended ({status})"),
            );
            return Ok(());
        }
        let consumed = self.log.ring(t.logical).map_or(0, |r| r.consumed()) as usize;
        if consumed < plan.sync.len() && status == ExitStatus::Exited(0) {
            let next = plan.sync[consumed];
            let d = Divergence {
                thread: Some(t.logical),
                recorded_tid: plan.tid,
                index: Some(consumed as u64),
                expected: format!(
                    "sync op #{consumed}: {} on {:#x}",
                    next.op.name(),
                    next.object
                ),
                observed: format!("the thread ended ({status})"),
            };
            self.shared.diverge(d);
        }
        Ok(())
    }

    /// Whether every other thread of the exiting thread's process has
    /// replayed all its recorded events and sync operations.
    fn process_may_exit(&self, thread: ThreadId) -> bool {
        let process = self.plan.threads[thread as usize].process;
        self.live.iter().all(|(pid, t)| {
            if t.logical == thread || t.process != process {
                return true;
            }
            let p = &self.plan.threads[t.logical as usize];
            let sync_done = self
                .log
                .ring(t.logical)
                .is_some_and(|r| r.consumed() as usize >= p.sync.len());
            // Its last event counts as done once it has returned: an exec
            // or exit that ran while the return waited for its turn would
            // kill the thread before the return it made when recorded.
            p.events.is_empty() && sync_done && !self.return_pending(*pid, t)
        })
    }

    /// Whether the thread has a syscall return still to make: running for
    /// real, waiting for its rank, or for its recorded interval.
    fn return_pending(&self, pid: Pid, t: &LiveThread) -> bool {
        t.in_flight.is_some()
            || self.late.contains_key(&pid)
            || self.queued_returns.values().any(|(p, _, _)| *p == pid)
            || self
                .timed
                .iter()
                .any(|Reverse((_, p, timed))| *p == pid && matches!(timed, Timed::Return { .. }))
    }

    /// The signal that ends the process, if it is the thread's last
    /// recorded event.
    fn fatal_last_signal(&self, thread: ThreadId) -> Option<i32> {
        let events = &self.plan.threads[thread as usize].events;
        match events.front() {
            Some(PlannedEvent::Signal(s))
                if events.len() == 1 && s.asynchronous && kills_by_default(s.signo) =>
            {
                Some(s.signo)
            }
            _ => None,
        }
    }

    /// Delivers the process-ending signal to a thread stopped at a
    /// syscall's entry (which is skipped) or exit.
    fn deliver_fatal(&mut self, pid: Pid, sig: i32, at_entry: bool) -> Result<()> {
        let tracee = Tracee::new(pid);
        if at_entry {
            let mut regs = tracee.regs("read registers to deliver a fatal signal")?;
            tracee.rewind_syscall(&mut regs)?;
        }
        self.inject(pid, sig)?;
        Ok(tracee.resume(0, "resume to take a fatal signal")?)
    }

    /// Lets held threads go once what they wait for has happened.
    fn release_holds(&mut self) -> Result<()> {
        loop {
            let ready: Vec<Pid> = self
                .held
                .iter()
                .filter(|(pid, hold)| match **hold {
                    Hold::OutputTurn(rank) => rank == self.next_output,
                    Hold::RunTurn(rank) => self.rank_is_now(rank) || self.log.rank_passed(rank),
                    Hold::ProcessExit => self
                        .live
                        .get(pid)
                        .is_some_and(|t| self.process_may_exit(t.logical)),
                    Hold::FatalSignal { .. } => self
                        .live
                        .get(pid)
                        .is_some_and(|t| self.process_may_exit(t.logical)),
                    Hold::SignalTurn(rank) => self.rank_is_now(rank) || self.log.rank_passed(rank),
                    Hold::PastEnd => false,
                })
                .map(|(pid, _)| *pid)
                .collect();
            if ready.is_empty() {
                break;
            }
            for pid in ready {
                let hold = self.held.remove(&pid);
                let Some(thread) = self.live.get(&pid).map(|t| t.logical) else {
                    continue;
                };
                if let Some(Hold::FatalSignal { sig, at_entry }) = hold {
                    self.deliver_fatal(pid, sig, at_entry)?;
                    continue;
                }
                if let Some(Hold::SignalTurn(_)) = hold {
                    self.on_seccomp(pid)?;
                    continue;
                }
                let regs = Tracee::new(pid).regs("read registers of a held thread")?;
                self.dispatch(pid, thread, regs)?;
            }
        }
        if self.order_returns {
            self.release_ranked_return()?;
            self.deliver_ranked_signal()?;
            self.release_late()?;
        }
        let all_ending = self.held.keys().all(|p| {
            self.live
                .get(p)
                .is_some_and(|t| self.ending.contains(&t.process))
        });
        if !self.held.is_empty() && self.held.len() == self.live.len() && !all_ending {
            self.report_deadlock();
        }
        Ok(())
    }

    /// Nothing has moved for the stall timeout: name the thread that the
    /// others wait for, and what it waits for.
    fn stall_report(&self) -> Divergence {
        let mut lines = Vec::new();
        let mut culprit: Option<(ThreadId, u64, String)> = None;
        let mut threads: Vec<&LiveThread> = self.live.values().collect();
        threads.sort_by_key(|t| t.logical);
        for t in threads {
            let plan = &self.plan.threads[t.logical as usize];
            let ring = self.log.ring(t.logical);
            let consumed = ring.map_or(0, |r| r.consumed()) as usize;
            let parked = ring.is_some_and(|r| r.parked_past_end.load(Ordering::Acquire) != 0);
            let pid = self
                .live
                .iter()
                .find(|(_, l)| l.logical == t.logical)
                .map(|(p, _)| *p);
            let hold = pid.and_then(|p| self.held.get(&p));
            let queued_rank = pid.and_then(|p| {
                self.queued_returns
                    .iter()
                    .find(|(_, (q, _, _))| *q == p)
                    .map(|(r, _)| *r)
            });
            let timed = pid.is_some_and(|p| self.timed.iter().any(|Reverse((_, q, _))| *q == p));
            let waiting_rank = ring.map_or(0, |r| r.waiting_for_rank.load(Ordering::Acquire));
            let in_turn_wait =
                ring.is_some_and(|r| r.waiting_for_turn.load(Ordering::Acquire) != 0);
            let state = if let Some(h) = hold {
                format!("held by replay ({h:?})")
            } else if let Some(rank) = queued_rank {
                format!(
                    "its return (event rank {rank}) waits for rank {} in the event order",
                    self.log.order_turn()
                )
            } else if waiting_rank != 0 {
                format!(
                    "its sync op #{consumed} waits for rank {} in the event order (at rank {})",
                    waiting_rank - 1,
                    self.log.order_turn()
                )
            } else if timed {
                "held for its recorded interval".to_string()
            } else if parked {
                "blocked in a sync operation it never completed when recorded".to_string()
            } else if let Some(next) = plan
                .sync
                .get(consumed)
                .filter(|_| !self.order_returns || in_turn_wait)
            {
                let turn = self
                    .log
                    .object(t.process, next.object)
                    .map_or(0, |o| o.turn.load(Ordering::Acquire));
                let state = format!(
                    "waiting for its turn {} at {} on {:#x} (the object is at turn {turn})",
                    next.seq,
                    next.op.name(),
                    next.object
                );
                if culprit.is_none() {
                    culprit = Some((t.logical, consumed as u64, state.clone()));
                }
                state
            } else if consumed < plan.sync.len() {
                format!(
                    "not waiting in rrc's shim (next sync op #{consumed}): running, or blocked in a call or lock rrc does not see"
                )
            } else {
                "running or blocked in an untraced call".to_string()
            };
            let next_event = plan.events.front().map_or("none".into(), describe_event);
            lines.push(format!("t{}: {state}; next event: {next_event}", t.logical));
        }
        if self.order_returns {
            // Whose event everyone waits for: a syscall return or a sync op.
            let now = self.log.order_turn();
            let returning = self
                .plan
                .return_rank
                .iter()
                .find(|(_, r)| **r as u32 == now)
                .map(|((t, i), _)| (*t, *i, format!("its event {i} to return")));
            let syncing = || {
                self.plan.threads.iter().enumerate().find_map(|(t, p)| {
                    p.sync
                        .iter()
                        .position(|op| op.order as u32 == now)
                        .map(|i| {
                            let op = &p.sync[i];
                            (
                                t as ThreadId,
                                i as u64,
                                format!("its sync op #{i} ({} on {:#x})", op.op.name(), op.object),
                            )
                        })
                })
            };
            if let Some((t, i, what)) = returning.or_else(syncing) {
                let alive = self.live.values().any(|l| l.logical == t);
                lines.push(format!(
                    "rank {now} of the event order is thread {t}'s: {what} ({})",
                    if alive { "alive" } else { "not running" }
                ));
                if culprit.is_none() {
                    culprit = Some((t, i, format!("{what} (event rank {now})")));
                }
            }
        }
        let (thread, index, expected) = culprit.unwrap_or((0, 0, "progress".into()));
        Divergence {
            thread: Some(thread),
            recorded_tid: self.plan.threads.get(thread as usize).map_or(0, |p| p.tid),
            index: Some(index),
            expected: format!("sync op #{index} to proceed ({expected})"),
            observed: format!(
                "no progress in the whole program; threads: {}",
                lines.join("; ")
            ),
        }
    }

    /// Every live thread is held: nothing can move any more.
    fn report_deadlock(&mut self) {
        let Some((&pid, &hold)) = self
            .held
            .iter()
            .find(|(_, h)| **h == Hold::PastEnd)
            .or_else(|| self.held.iter().next())
        else {
            return;
        };
        let Some(thread) = self.live.get(&pid).map(|t| t.logical) else {
            return;
        };
        let observed = Tracee::new(pid)
            .regs("read registers of a held thread")
            .map(|r| {
                let inputs = model::read_inputs(&Tracee::new(pid), r.nr(), &r.args());
                describe_call(r.nr(), &r.args(), &inputs)
            })
            .unwrap_or_else(|_| "a syscall".into());
        let expected = match hold {
            Hold::PastEnd => "no further syscalls (the thread's recorded events have ended)".into(),
            Hold::OutputTurn(rank) => format!(
                "its output to wait for earlier output #{}",
                self.next_output.min(rank)
            ),
            Hold::ProcessExit => "the other threads to finish before exit_group".into(),
            Hold::FatalSignal { sig, .. } => format!(
                "the other threads to finish before {} ends the process",
                signal_name(sig)
            ),
            Hold::SignalTurn(rank) => format!(
                "its signal's rank {rank} in the event order (at rank {})",
                self.log.order_turn()
            ),
            Hold::RunTurn(rank) => format!(
                "its rank {rank} in the event order to run (at rank {})",
                self.log.order_turn()
            ),
        };
        self.diverge(thread, expected, observed);
    }
}

use std::os::unix::ffi::OsStrExt;

/// The file a relative `path` names for tracee `pid` now, seen from its
/// working directory (`AT_FDCWD`) or directory descriptor `dirfd`.
fn resolve_live(pid: Pid, dirfd: i32, path: &[u8]) -> Option<std::path::PathBuf> {
    let base = if dirfd == libc::AT_FDCWD {
        format!("/proc/{pid}/cwd")
    } else {
        format!("/proc/{pid}/fd/{dirfd}")
    };
    let base = std::fs::read_link(base).ok()?;
    std::fs::canonicalize(base.join(std::ffi::OsStr::from_bytes(path))).ok()
}

/// Rewrites the syscall at `regs` into one that makes a placeholder
/// descriptor numbered `want` (the exit check verifies the number).
///
/// The kernel reserves a descriptor number when a call such as a blocking
/// `accept` starts, so a recorded number need not be the lowest free one
/// when the call returned (another thread may have closed a lower one
/// meanwhile): when `want` is free, `dup3` of the sync log's descriptor,
/// present in every tracee, puts the placeholder exactly there. Otherwise
/// (the program closed the sync log, or `want` is taken, which the exit
/// check reports) `eventfd2` takes the lowest free number.
fn placeholder_call(pid: Pid, regs: &mut SyscallRegs, want: i64, cloexec: bool) {
    let fd_path = |fd: i64| format!("/proc/{pid}/fd/{fd}");
    let exact = want >= 0
        && std::fs::symlink_metadata(fd_path(want)).is_err()
        && std::fs::symlink_metadata(fd_path(i64::from(rrc_synclog::SHM_FD))).is_ok();
    if exact {
        let flags = if cloexec { libc::O_CLOEXEC as u64 } else { 0 };
        regs.regs.orig_rax = libc::SYS_dup3 as u64;
        regs.set_args(&[rrc_synclog::SHM_FD as u64, want as u64, flags, 0, 0, 0]);
    } else {
        let flags = if cloexec { libc::EFD_CLOEXEC as u64 } else { 0 };
        regs.regs.orig_rax = libc::SYS_eventfd2 as u64;
        regs.set_args(&[0, flags, 0, 0, 0, 0]);
    }
}

fn write_all(fd: i32, mut data: &[u8]) {
    while !data.is_empty() {
        // SAFETY: data is a valid slice; fd is our own stdout or stderr.
        let n = unsafe { libc::write(fd, data.as_ptr() as *const libc::c_void, data.len()) };
        if n <= 0 {
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        data = &data[n as usize..];
    }
}

/// How replay treats this recorded call, made with these arguments.
fn action_for(record: &SyscallRecord, nr: i64, args: &[u64; 6]) -> ReplayAction {
    let action = model::replay_action(nr, args);
    if matches!(record.extra, SyscallExtra::Unknown) {
        return ReplayAction::Unsupported;
    }
    let failed_when_recorded = record.ret < 0
        && matches!(
            action,
            ReplayAction::Open
                | ReplayAction::Placeholder
                | ReplayAction::Spawn
                | ReplayAction::Exec
        );
    if failed_when_recorded {
        // Fail it the same way, without running it.
        return ReplayAction::Emulate;
    }
    if record.ret == 0 && model::changes_credentials(nr) && running_as_root() {
        // A process that dropped privileges when recorded drops them again:
        // what it may open, and whether an exec is a set-user-ID one (the
        // loader then runs in secure mode, with other syscalls), follow.
        return ReplayAction::ExecuteChecked;
    }
    action
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Calls whose running (not only returning) must follow the recorded
/// order across threads: those that take or free descriptor numbers, which
/// the recorder ran one at a time, and forks, whose child copies memory
/// as the events ranked before the fork left it (the recorder held later
/// ones back until the copy was made). Nothing else is held at its entry:
/// a held thread may hold locks that the threads before it need.
fn runs_in_recorded_order(record: &SyscallRecord, nr: i64, args: &[u64; 6]) -> bool {
    (model::changes_descriptor_table(nr, args) || model::snapshots_memory(nr, args))
        && action_for(record, nr, args) != ReplayAction::Emulate
}

/// `RRC_DEBUG=1`: the tracer's bookkeeping of tasks, on stderr.
fn debug_log(args: std::fmt::Arguments<'_>) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("RRC_DEBUG").is_some()) {
        eprintln!("rrc-replay: debug: {args}");
    }
}

fn describe_event(e: &PlannedEvent) -> String {
    match e {
        PlannedEvent::Syscall(r) => describe_record(r),
        PlannedEvent::Tsc(t) => {
            if t.aux.is_some() {
                "rdtscp".into()
            } else {
                "rdtsc".into()
            }
        }
        PlannedEvent::Signal(s) => {
            let at = match s.at {
                SignalPoint::Synchronous => "raised by the thread",
                SignalPoint::SyscallReturn => "at a syscall return",
                SignalPoint::InterruptedCall => "at the return of the call it interrupted",
                SignalPoint::WhileWaiting(_) => "while it waited",
                SignalPoint::SyscallEntry => "at a syscall entry",
                SignalPoint::Elapsed(_) => "while running its own code",
            };
            format!("signal {} ({at})", signal_name(s.signo))
        }
    }
}

fn is_restart(ret: i64) -> bool {
    matches!(-ret, 512..=514 | 516)
}

pub fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {sig}"))
}
