//! The recording tracer: one loop over ptrace stops. A trapped syscall is
//! seen twice: at its seccomp stop (inputs read) and at its exit (result
//! and every byte the kernel wrote read), then sent to the trace writer.

use std::collections::{HashMap, HashSet, VecDeque};
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use crossbeam_channel::Sender;
use nix::unistd::Pid;
use rrc_interposer::model::{self, ReplayAction};
use rrc_interposer::{
    fd_identity, fd_target, hide_vdso, poll_any, Polled, SignalStopKind, Stop, StopClock, Tracee,
    TraceeMemory,
};
use rrc_synclog::SharedSyncLog;
use rrc_trace::{
    ExitStatus, ProcessId, SignalPoint, SignalRecord, SyscallExtra, SyscallRecord, ThreadId,
    TraceRecord, TscRecord,
};

use crate::signals::{restarts, Disposition, ProcessDispositions};

/// How long a descriptor call waits for another one of its process that
/// is in flight (a blocking accept can be, for as long as no one connects)
/// before it goes ahead anyway.
const SERIAL_CALL_WAIT: Duration = Duration::from_millis(2);
/// The same for writes to rrc's stdout and stderr, whose order across
/// processes is the order replay prints them in: a write does not block
/// for long, but on a loaded machine its thread can wait milliseconds for
/// a CPU between the write and its exit stop.
const STD_STREAM_WAIT: Duration = Duration::from_millis(100);

fn serial_wait(key: &SerialKey) -> Duration {
    match key {
        SerialKey::StdStreams => STD_STREAM_WAIT,
        _ => SERIAL_CALL_WAIT,
    }
}

/// How long an asynchronous signal that arrived while its thread ran its
/// own code waits for the thread's next syscall before it is delivered
/// where the thread is (replay then delivers it by elapsed time, which
/// is approximate: long enough that compute phases between syscalls keep
/// their signals at syscall boundaries, short enough that a thread that
/// spins waiting for a handler does not wait forever).
const DEFER_LIMIT: Duration = Duration::from_millis(100);
/// How long a signal handler that makes no syscall runs alone before the
/// other threads go on (a handler that waits for another thread's work).
const HANDLER_ALONE_LIMIT: Duration = Duration::from_millis(20);
/// How long a handler that runs alone waits for the process's other
/// threads let go from a syscall just before (see `SETTLE_RECENT`) to
/// reach their next event.
const HANDLER_SETTLE_LIMIT: Duration = Duration::from_millis(10);

/// A syscall between its seccomp stop and its exit.
struct InFlight {
    nr: i64,
    args: [u64; 6],
    inputs: Vec<Vec<u8>>,
    extra: SyscallExtra,
    /// rt_sigaction: (signal, handler, flags) it installs.
    installs: Option<(i32, u64, u64)>,
    /// A fork's place in the event order, taken at its entry (see
    /// `model::snapshots_memory`); other calls take theirs as they return.
    fork_stamp: Option<u64>,
    /// An address-space limit the call sets or reads (see
    /// `RRC_ADDRESS_SPACE`).
    address_limit: AddressLimit,
}

/// Address space rrc adds to every recorded process: the sync log's
/// mapping and the shim, with room to spare. A limit the program puts on
/// its own (RLIMIT_AS: vsftpd sets 200 MB) is raised by this much while it
/// is recorded, or rrc's mappings would leave it too little and its own
/// mmap calls would fail where they succeed natively; the program still
/// reads back the limit it set. Replay does not apply such limits.
const RRC_ADDRESS_SPACE: u64 = rrc_synclog::Layout::TOTAL as u64 + (64 << 20);

/// setrlimit/prlimit64/getrlimit on RLIMIT_AS: where the new limit is
/// (with the program's own bytes, put back at the exit) and where the
/// kernel writes the old one.
#[derive(Default)]
struct AddressLimit {
    new: Option<(u64, Vec<u8>)>,
    old: Option<u64>,
}

impl AddressLimit {
    fn at_entry(tracee: &Tracee, nr: i64, args: &[u64; 6]) -> AddressLimit {
        let as_limit = libc::RLIMIT_AS as u64;
        let (new, old) = match nr {
            libc::SYS_setrlimit if args[0] == as_limit => (args[1], 0),
            libc::SYS_getrlimit if args[0] == as_limit => (0, args[1]),
            libc::SYS_prlimit64 if args[1] == as_limit => (args[2], args[3]),
            _ => return AddressLimit::default(),
        };
        let mut limit = AddressLimit {
            new: None,
            old: (old != 0).then_some(old),
        };
        if new != 0 {
            if let Ok(bytes) = tracee.read(new, 16) {
                let raised = adjust_limit(&bytes, |v| v.saturating_add(RRC_ADDRESS_SPACE));
                if tracee.write(new, &raised).is_ok() {
                    limit.new = Some((new, bytes));
                }
            }
        }
        limit
    }

    /// Puts the program's own bytes back, and lowers the old limit the
    /// kernel reported by what was added.
    fn at_exit(&self, tracee: &Tracee, ret: i64) {
        if let Some((addr, bytes)) = &self.new {
            let _ = tracee.write(*addr, bytes);
        }
        if let Some(addr) = self.old.filter(|_| ret == 0) {
            if let Ok(bytes) = tracee.read(addr, 16) {
                let lowered = adjust_limit(&bytes, |v| v.saturating_sub(RRC_ADDRESS_SPACE));
                let _ = tracee.write(addr, &lowered);
            }
        }
    }
}

/// Applies `f` to both fields of a `struct rlimit` that are not
/// RLIM_INFINITY.
fn adjust_limit(bytes: &[u8], f: impl Fn(u64) -> u64) -> Vec<u8> {
    bytes
        .chunks(8)
        .flat_map(|c| {
            let v = u64::from_ne_bytes(c.try_into().unwrap_or([0xff; 8]));
            let v = if v == libc::RLIM_INFINITY { v } else { f(v) };
            v.to_ne_bytes()
        })
        .collect()
}

/// An asynchronous signal the recorder holds back to a syscall boundary,
/// or has queued again itself (tgkill) to deliver it there.
struct PendingSignal {
    sig: i32,
    siginfo: Vec<u8>,
    since: Instant,
}

struct ThreadState {
    logical: ThreadId,
    process: ProcessId,
    events: u64,
    last_return: Instant,
    in_flight: Option<InFlight>,
    /// The kernel's initial SIGSTOP has not been seen yet.
    awaiting_first_stop: bool,
    /// Where the thread was at its last syscall exit; a signal stop there
    /// means the signal is delivered as that syscall returns.
    last_exit_rip: Option<u64>,
    /// A syscall the kernel will restart or fail with EINTR, depending on
    /// the signal that interrupted it (its exit showed ERESTART*).
    interrupted: Option<(InFlight, i64)>,
    /// The syscall restart_syscall will continue (ERESTART_RESTARTBLOCK).
    restart_block: Option<(i64, [u64; 6])>,
    /// Asynchronous signals held back to the next syscall boundary, in
    /// arrival order.
    held: VecDeque<PendingSignal>,
    injection: Option<PendingSignal>,
    /// Signals the thread sent itself (raise, abort): synchronous.
    self_signals: Vec<i32>,
}

/// Where a returning event sits in its thread's stream and in time.
struct ReturnStamp {
    index: u64,
    interval_ns: u64,
    return_ns: u64,
    /// Place in the event order shared with the shim's sync operations.
    order: u64,
}

impl ThreadState {
    /// Counts an event that returns to the program now (a syscall or an
    /// rdtsc), and times it against the thread's previous one.
    /// `order` is the event-order stamp, taken while the thread is still
    /// stopped (NO_ORDER for a call that never returns).
    fn stamp_return(&mut self, epoch: Instant, order: u64) -> ReturnStamp {
        let now = Instant::now();
        let stamp = ReturnStamp {
            index: self.events,
            interval_ns: now.duration_since(self.last_return).as_nanos() as u64,
            return_ns: now.duration_since(epoch).as_nanos() as u64,
            order,
        };
        self.last_return = now;
        self.events += 1;
        stamp
    }
}

/// Calls whose recorded order must be the order they ran in, so they run
/// one at a time: the descriptor-table calls of one process (replay gives
/// out the same numbers), and writes to our stdout/stderr from any process
/// (replay prints them in the recorded order).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum SerialKey {
    Descriptors(ProcessId),
    StdStreams,
}

/// The calls of one `SerialKey`: the one running, and those waiting.
#[derive(Default)]
struct SerialCalls {
    in_flight: Option<Pid>,
    /// Threads stopped at the entry of such a call, and since when.
    waiting: VecDeque<(Pid, Instant)>,
}

pub struct Recorder {
    sink: Sender<TraceRecord>,
    log: Arc<SharedSyncLog>,
    threads: HashMap<Pid, ThreadState>,
    /// New tasks whose first stop arrived before their parent's event.
    early_stops: HashSet<Pid>,
    next_thread: Arc<AtomicU32>,
    next_process: ProcessId,
    /// Each traced process's pid as the program sees it.
    process_pid: HashMap<ProcessId, i32>,
    main_status: Option<ExitStatus>,
    root: Pid,
    std_streams: [Option<(u64, u64)>; 3],
    /// Whether a process's fd 1 or 2 is our own stdout/stderr, by
    /// (process, fd): kept until a descriptor-table call or exec of that
    /// process completes (all of them trap), so a write needs no stat.
    std_stream_of: HashMap<(ProcessId, u64), Option<u8>>,
    warned: HashSet<String>,
    dispositions: ProcessDispositions,
    clock: StopClock,
    /// When the recording started: syscall returns are stamped from here.
    epoch: Instant,
    serial_calls: HashMap<SerialKey, SerialCalls>,
    /// Threads let through while another call of their key was in flight.
    descriptor_bypass: HashSet<Pid>,
    /// When the recording started, as file times count: a file changed
    /// since may be gone or different when replayed.
    started: SystemTime,
    /// Processes with a fork copying their memory.
    forking: HashMap<ProcessId, Fork>,
    /// Threads stopped at a syscall exit while their process forks: their
    /// returns are stamped, and they run on, once the child exists.
    after_fork: Vec<Pid>,
}

/// A fork in flight: which thread makes it, and its stamp.
#[derive(Clone, Copy)]
/// A thread that runs alone in its process's share of the event order:
/// a fork copying memory, or a signal handler (`since` set) that must not
/// run for ever with the others held.
struct Fork {
    forker: Pid,
    stamp: u64,
    handler_since: Option<Instant>,
}

fn stream_identity(fd: i32) -> Option<(u64, u64)> {
    let meta = std::fs::metadata(format!("/proc/self/fd/{fd}")).ok()?;
    Some((meta.dev(), meta.ino()))
}

impl Recorder {
    pub fn new(
        sink: Sender<TraceRecord>,
        log: Arc<SharedSyncLog>,
        next_thread: Arc<AtomicU32>,
        root: Pid,
        clock: StopClock,
    ) -> Result<Recorder> {
        let mut r = Recorder {
            sink,
            log,
            threads: HashMap::new(),
            early_stops: HashSet::new(),
            next_thread,
            next_process: 0,
            process_pid: HashMap::new(),
            main_status: None,
            root,
            std_streams: [None, stream_identity(1), stream_identity(2)],
            std_stream_of: HashMap::new(),
            warned: HashSet::new(),
            dispositions: HashMap::new(),
            clock,
            epoch: Instant::now(),
            serial_calls: HashMap::new(),
            descriptor_bypass: HashSet::new(),
            started: SystemTime::now(),
            forking: HashMap::new(),
            after_fork: Vec::new(),
        };
        r.add_thread(root, None, true)?;
        // The root already took its initial stop in spawn_traced.
        if let Some(t) = r.threads.get_mut(&root) {
            t.awaiting_first_stop = false;
        }
        Ok(r)
    }

    fn emit(&self, rec: TraceRecord) -> Result<()> {
        self.sink
            .send(rec)
            .map_err(|_| anyhow::anyhow!("the trace writer stopped (disk full or I/O error?)"))
    }

    fn add_thread(&mut self, tid: Pid, parent: Option<Pid>, new_process: bool) -> Result<ThreadId> {
        let logical = self.next_thread.load(Ordering::Acquire);
        let parent_state = parent.and_then(|p| self.threads.get(&p));
        let parent_logical = parent_state.map(|t| t.logical);
        let parent_process = parent_state.map(|t| t.process);
        let process = if new_process {
            let p = self.next_process;
            self.next_process += 1;
            // A child starts with its parent's dispositions.
            let inherited = parent_process
                .and_then(|pp| self.dispositions.get(&pp).cloned())
                .unwrap_or_default();
            self.dispositions.insert(p, inherited);
            p
        } else {
            parent_process.unwrap_or(0)
        };
        if !self.log.register_thread(tid.as_raw(), logical, process) {
            bail!(
                "more than {} threads: rrc's sync log is full",
                rrc_synclog::MAX_THREADS
            );
        }
        self.next_thread.store(logical + 1, Ordering::Release);
        let pid = *self.process_pid.entry(process).or_insert(tid.as_raw());
        self.threads.insert(
            tid,
            ThreadState {
                logical,
                process,
                events: 0,
                last_return: Instant::now(),
                in_flight: None,
                awaiting_first_stop: true,
                last_exit_rip: None,
                interrupted: None,
                restart_block: None,
                held: VecDeque::new(),
                injection: None,
                self_signals: Vec::new(),
            },
        );
        self.emit(TraceRecord::ThreadStart {
            thread: logical,
            process,
            parent: parent_logical,
            tid: tid.as_raw(),
            pid,
        })?;
        Ok(logical)
    }

    fn warn_once(&mut self, thread: ThreadId, message: String) -> Result<()> {
        if self.warned.insert(message.clone()) {
            eprintln!("rrc-record: warning: {message}");
            self.emit(TraceRecord::Warning { thread, message })?;
        }
        Ok(())
    }

    /// Runs until every traced thread is gone; returns the program's status.
    pub fn run(mut self) -> Result<ExitStatus> {
        loop {
            let stop = match poll_any().context("waiting for the traced program")? {
                Polled::Stop(stop) => stop,
                Polled::Gone => break,
                Polled::Nothing => {
                    self.release_overdue_signals()?;
                    self.release_overdue_handlers()?;
                    self.release_overdue_serial_calls()?;
                    match self.next_held_deadline() {
                        // Nothing timed: block in waitpid itself, which
                        // costs fewer syscalls per stop than ppoll on the
                        // signalfd (SIGCHLDs left there are drained later).
                        None => match rrc_interposer::wait_any(false)
                            .context("waiting for the traced program")?
                        {
                            Some(stop) => stop,
                            None => break,
                        },
                        next => {
                            self.clock.wait(next);
                            continue;
                        }
                    }
                }
            };
            let result = match stop {
                Stop::Seccomp(pid) => self.on_seccomp(pid),
                Stop::SyscallExit(pid) => self.on_syscall_exit(pid),
                Stop::Event(pid, ev) => self.on_event(pid, ev),
                Stop::Signal(pid, sig) => self.on_signal(pid, sig),
                Stop::Exited(pid, code) => self.on_exit(pid, ExitStatus::Exited(code)),
                Stop::Killed(pid, sig) => self.on_exit(pid, ExitStatus::Signaled(sig)),
            };
            if let Err(e) = result {
                // A thread that vanished mid-stop (killed by exit_group or
                // SIGKILL) is reported by wait later; anything else is ours.
                match e.downcast_ref::<rrc_interposer::InterposeError>() {
                    Some(ie) if ie.tracee_gone() => {}
                    _ => return Err(e),
                }
            }
        }
        self.main_status
            .context("the traced program's exit status was never reported")
    }

    fn resume(&self, pid: Pid, signal: i32) -> Result<()> {
        let t = Tracee::new(pid);
        let in_flight = self
            .threads
            .get(&pid)
            .is_some_and(|t| t.in_flight.is_some());
        if in_flight {
            t.resume_to_syscall_exit("resume to syscall exit")?;
        } else {
            t.resume(signal, "resume")?;
        }
        Ok(())
    }

    fn on_seccomp(&mut self, pid: Pid) -> Result<()> {
        let tracee = Tracee::new(pid);
        let regs = tracee.regs("read registers at seccomp stop")?;
        // A handler that ran alone ends at its thread's next syscall.
        self.end_fork(pid)?;
        if model::marks_handler_end(regs.nr()) {
            // Trapped only to mark where a handler ends; not an event.
            return Ok(tracee.resume(0, "resume into rt_sigreturn")?);
        }
        let Some(t) = self.threads.get_mut(&pid) else {
            bail!("seccomp stop of unknown tid {pid}");
        };
        let thread = t.logical;
        let process = t.process;
        let serial = if model::changes_descriptor_table(regs.nr(), &regs.args()) {
            Some(SerialKey::Descriptors(process))
        } else if writes_out(regs.nr())
            && (regs.args()[0] == 1 || regs.args()[0] == 2)
            && self.std_stream(pid, process, regs.args()[0]).is_some()
        {
            Some(SerialKey::StdStreams)
        } else {
            None
        };
        if serial.is_some_and(|key| self.must_wait_for_serial_call(pid, key)) {
            // Stays stopped until the one in flight has returned.
            return Ok(());
        }
        let Some(t) = self.threads.get_mut(&pid) else {
            bail!("seccomp stop of unknown tid {pid}");
        };
        t.last_exit_rip = None;
        let next_held = if t.injection.is_none() {
            t.held.pop_front()
        } else {
            None
        };
        if let Some(signal) = next_held {
            // A signal held back to this boundary: queue it and let the
            // call run. A wait (pause, epoll_wait, read) then sees it
            // pending and is interrupted as if the signal had come while it
            // blocked; any other call completes and the signal arrives at
            // its return. Either way it lands where replay can put it.
            let tgid = self.tgid_of(pid);
            tracee.queue_signal(tgid, signal.sig)?;
            if let Some(t) = self.threads.get_mut(&pid) {
                t.injection = Some(signal);
            }
        }
        let Some(t) = self.threads.get_mut(&pid) else {
            bail!("seccomp stop of unknown tid {pid}");
        };
        let mut nr = regs.nr();
        let mut args = regs.args();
        // An interrupted call that comes back before any signal reached this
        // thread (another thread took a process-wide signal) is restarted
        // transparently: the program never saw the interruption.
        let interrupted = t.interrupted.take().map(|(call, _)| (call.nr, call.args));
        if nr == libc::SYS_restart_syscall {
            // Continues a call interrupted with ERESTART_RESTARTBLOCK:
            // record it as that call, which replay re-executes.
            match t.restart_block.take().or(interrupted) {
                Some((orig_nr, orig_args)) => {
                    nr = orig_nr;
                    args = orig_args;
                }
                None => {
                    // Continues an untraced call (a futex wait with a
                    // timeout): not an event of the program's.
                    return Ok(tracee.resume(0, "resume an untraced call's restart")?);
                }
            }
        }
        let mut extra = SyscallExtra::None;
        if !model::is_known(nr) {
            extra = SyscallExtra::Unknown;
            self.warn_once(
                thread,
                format!(
                    "syscall {} ({nr}) is not supported: only its return value is recorded, and replay will stop there",
                    model::name(nr)
                ),
            )?;
        } else if nr == libc::SYS_ioctl && !model::ioctl_is_known(args[1]) {
            extra = SyscallExtra::Unknown;
            self.warn_once(
                thread,
                format!(
                    "ioctl request {:#x} is not supported: only its return value is recorded, and replay will stop there",
                    model::ioctl_request(args[1])
                ),
            )?;
        }
        let inputs = model::read_inputs(&tracee, nr, &args);
        if writes_out(nr) && (args[0] == 1 || args[0] == 2) {
            if let Some(stream) = self.std_stream(pid, process, args[0]) {
                extra = SyscallExtra::StdStream(stream);
            }
        }
        if nr == libc::SYS_mmap {
            if let Some(target) = fd_target(pid, args[4] as i32 as i64) {
                extra = SyscallExtra::MappedFd(target);
            }
        }
        if matches!(nr, libc::SYS_accept | libc::SYS_accept4) {
            extra = SyscallExtra::ReservedAt(self.log.stamp_event());
        }
        if matches!(
            nr,
            libc::SYS_tgkill
                | libc::SYS_tkill
                | libc::SYS_kill
                | libc::SYS_rt_sigqueueinfo
                | libc::SYS_rt_tgsigqueueinfo
        ) {
            self.note_self_signal(pid, nr, &args);
        }
        let installs = if nr == libc::SYS_rt_sigaction && args[1] != 0 {
            let handler = tracee.read_u64(args[1]).unwrap_or(0);
            let flags = tracee.read_u64(args[1] + 8).unwrap_or(0);
            Some((args[0] as i32, handler, flags))
        } else {
            None
        };
        let fork_stamp = model::snapshots_memory(nr, &args).then(|| {
            let stamp = self.log.begin_fork();
            self.forking.insert(
                process,
                Fork {
                    forker: pid,
                    stamp,
                    handler_since: None,
                },
            );
            stamp
        });
        let address_limit = AddressLimit::at_entry(&tracee, nr, &args);
        let call = InFlight {
            nr,
            args,
            inputs,
            extra,
            installs,
            fork_stamp,
            address_limit,
        };
        if nr == libc::SYS_exit_group {
            // It never returns: record it now.
            self.finish_syscall(pid, call, 0, false)?;
            tracee.resume(0, "resume into exit_group")?;
            return Ok(());
        }
        if let Some(t) = self.threads.get_mut(&pid) {
            t.in_flight = Some(call);
        }
        tracee.resume_to_syscall_exit("resume to syscall exit")?;
        Ok(())
    }

    fn on_syscall_exit(&mut self, pid: Pid) -> Result<()> {
        // Made or failed: either way the fork copies no more.
        self.end_fork(pid)?;
        let forking = self
            .threads
            .get(&pid)
            .and_then(|t| self.forking.get(&t.process))
            .is_some_and(|f| f.forker != pid);
        if forking {
            // Its return, stamped now, would come after the fork in the
            // order while its code ran during the copy.
            self.after_fork.push(pid);
            return Ok(());
        }
        let result = self.record_syscall_exit(pid);
        // After its record: the trace then has descriptor calls in the
        // order they ran.
        self.finish_serial_call(pid)?;
        result
    }

    fn record_syscall_exit(&mut self, pid: Pid) -> Result<()> {
        let tracee = Tracee::new(pid);
        let regs = tracee.regs("read registers at syscall exit")?;
        let ret = regs.ret();
        let Some(t) = self.threads.get_mut(&pid) else {
            bail!("syscall exit of unknown tid {pid}");
        };
        let Some(call) = t.in_flight.take() else {
            // An exit stop we did not ask for (cannot happen with our
            // resume discipline); just go on.
            tracee.resume(0, "resume after unexpected syscall exit")?;
            return Ok(());
        };
        if is_restart(ret) {
            // Interrupted by a signal: whether the program sees EINTR or a
            // restarted call is decided when the signal is delivered.
            t.interrupted = Some((call, ret));
            tracee.resume(0, "resume after interrupted syscall")?;
            return Ok(());
        }
        t.last_exit_rip = Some(regs.regs.rip);
        let process = t.process;
        call.address_limit.at_exit(&tracee, ret);
        if let Some((sig, handler, flags)) = call.installs.filter(|_| ret == 0) {
            self.dispositions
                .entry(process)
                .or_default()
                .set(sig, handler, flags);
        }
        if matches!(call.nr, libc::SYS_execve | libc::SYS_execveat) && ret == 0 {
            if let Some(d) = self.dispositions.get_mut(&process) {
                d.after_exec();
            }
        }
        if model::changes_descriptor_table(call.nr, &call.args)
            || matches!(call.nr, libc::SYS_execve | libc::SYS_execveat)
        {
            self.std_stream_of.retain(|(p, _), _| *p != process);
        }
        self.finish_syscall(pid, call, ret, true)?;
        tracee.resume(0, "resume after syscall exit")?;
        Ok(())
    }

    /// Reads the results of a completed syscall and sends its record.
    /// `returns` is false for a call the thread never comes back from
    /// (exit_group, a SIGKILL it sent itself): it has no place in the
    /// event order.
    /// Returns the call's stamp in the event order.
    fn finish_syscall(&mut self, pid: Pid, call: InFlight, ret: i64, returns: bool) -> Result<u64> {
        let tracee = Tracee::new(pid);
        let Some(t) = self.threads.get_mut(&pid) else {
            bail!("syscall of unknown tid {pid}");
        };
        let order = match call.fork_stamp {
            _ if !returns => rrc_trace::NO_ORDER,
            Some(stamp) => stamp,
            None => self.log.stamp_event(),
        };
        let stamp = t.stamp_return(self.epoch, order);
        let (thread, index) = (t.logical, stamp.index);
        let mut extra = call.extra;
        if ret < 0 && matches!(extra, SyscallExtra::ReservedAt(_)) {
            // Made no descriptor: nothing to place (its stamp is left
            // unused, which replay's dense ranks ignore).
            extra = SyscallExtra::None;
        }
        let action = model::replay_action(call.nr, &call.args);
        if action == ReplayAction::Open && ret >= 0 {
            if let Some(id) = fd_identity(pid, ret) {
                extra = SyscallExtra::Opened(id);
            }
        }
        // The model knows which failures still write (an interrupted
        // sleep or select writes the time it had left).
        let regions = model::outputs(call.nr, &call.args, ret, &tracee).unwrap_or_default();
        let mut outputs = Vec::with_capacity(regions.len());
        for r in regions {
            outputs.push(tracee.read(r.addr, r.len).unwrap_or_default());
        }
        if call.nr == libc::SYS_mmap && ret >= 0 {
            if let Some(bytes) = mapped_copy(pid, &call.args, self.started) {
                outputs.push(bytes);
            }
        }
        self.emit(TraceRecord::Syscall(SyscallRecord {
            thread,
            index,
            nr: call.nr as u32,
            args: call.args,
            ret,
            inputs: call.inputs,
            outputs,
            interval_ns: stamp.interval_ns,
            return_ns: stamp.return_ns,
            order: stamp.order,
            extra,
        }))?;
        Ok(stamp.order)
    }

    /// The handler about to run on `pid` runs alone: the other threads'
    /// lock operations wait (after stamping their arrival) until it
    /// returns or makes a syscall, so whatever it writes is seen by the
    /// events after it in the order and by none before. This raises that
    /// barrier, lets threads let go just before run on to their next
    /// event, and only then has `place` stamp the handler's place (so it
    /// comes after their arrivals); the other threads' syscall returns
    /// then wait for the handler too. Returns the stamp, and whether the
    /// handler runs alone (not when a fork holds the process already).
    fn run_handler_alone(
        &mut self,
        pid: Pid,
        process: ProcessId,
        place: impl FnOnce(&mut Self) -> Result<u64>,
    ) -> Result<(u64, bool)> {
        let barrier = self.raise_handler_barrier(pid, process);
        let order = place(self)?;
        if let Some(barrier) = barrier {
            self.forking.insert(
                process,
                Fork {
                    forker: pid,
                    stamp: barrier,
                    handler_since: Some(Instant::now()),
                },
            );
        }
        Ok((order, barrier.is_some()))
    }

    /// See [`Self::run_handler_alone`]: the barrier's name, once the
    /// threads let go just before have settled.
    fn raise_handler_barrier(&mut self, pid: Pid, process: ProcessId) -> Option<u64> {
        if self.forking.contains_key(&process) {
            return None;
        }
        let slot = self.threads.get(&pid).map(|t| t.logical)?;
        // The barrier's own name: a stamp no event carries (replay ranks
        // only the stamps events carry, so it leaves no gap).
        let barrier = self.log.stamp_event();
        self.log.begin_handler(barrier, slot);
        // Threads let go just before (their return stamped earlier) first
        // run on to their next event, as replay lets them.
        let now = Instant::now();
        let others: Vec<Pid> = self
            .threads
            .iter()
            .filter(|(p, t)| {
                **p != pid
                    && t.process == process
                    && now.duration_since(t.last_return) < rrc_interposer::SETTLE_RECENT
            })
            .map(|(p, _)| *p)
            .collect();
        rrc_interposer::wait_until_settled(&others, HANDLER_SETTLE_LIMIT);
        Some(barrier)
    }

    /// Ends handlers that have run alone for too long.
    fn release_overdue_handlers(&mut self) -> Result<()> {
        let now = Instant::now();
        let overdue: Vec<Pid> = self
            .forking
            .values()
            .filter(|f| {
                f.handler_since
                    .is_some_and(|s| now >= s + HANDLER_ALONE_LIMIT)
            })
            .map(|f| f.forker)
            .collect();
        for pid in overdue {
            self.end_fork(pid)?;
        }
        Ok(())
    }

    fn on_event(&mut self, pid: Pid, event: i32) -> Result<()> {
        let tracee = Tracee::new(pid);
        match event {
            libc::PTRACE_EVENT_CLONE | libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK => {
                let child =
                    Pid::from_raw(tracee.event_message("read new tid at clone event")? as i32);
                let new_process =
                    event != libc::PTRACE_EVENT_CLONE || !self.clone_makes_thread(pid);
                let logical = self.add_thread(child, Some(pid), new_process)?;
                let process = self.threads.get(&child).map_or(0, |t| t.process);
                if let Some(call) = self
                    .threads
                    .get_mut(&pid)
                    .and_then(|t| t.in_flight.as_mut())
                {
                    call.extra = if new_process {
                        SyscallExtra::NewProcess {
                            process,
                            thread: logical,
                        }
                    } else {
                        SyscallExtra::NewThread(logical)
                    };
                }
                if self.early_stops.remove(&child) {
                    if let Some(t) = self.threads.get_mut(&child) {
                        t.awaiting_first_stop = false;
                    }
                    Tracee::new(child).resume(0, "start new thread")?;
                }
                // The child has its copy of memory.
                self.end_fork(pid)?;
            }
            libc::PTRACE_EVENT_EXEC => {
                let former = tracee.event_message("read the former tid at exec")? as i32;
                if former != pid.as_raw() {
                    self.exec_from_thread(Pid::from_raw(former), pid)?;
                }
                hide_vdso(&tracee)?;
            }
            _ => {}
        }
        self.resume(pid, 0)
    }

    /// A thread other than its process's leader ran execve: the kernel
    /// ended the leader, without reporting it, and gave the thread the
    /// leader's tid. The leader's stream ends; the thread's goes on under
    /// the new tid, which the shim now finds it by.
    fn exec_from_thread(&mut self, former: Pid, leader: Pid) -> Result<()> {
        if let Some(old) = self.threads.get(&leader) {
            // Free the slot that maps the leader's tid to the old leader.
            self.log.register_thread(0, old.logical, old.process);
        }
        let status = self.main_status;
        self.on_exit(leader, ExitStatus::Exited(0))?;
        self.main_status = status;
        let Some(t) = self.threads.remove(&former) else {
            return Ok(());
        };
        self.log
            .register_thread(leader.as_raw(), t.logical, t.process);
        self.threads.insert(leader, t);
        Ok(())
    }

    /// Ends the fork `pid` is making, if it makes one: the sync
    /// operations and syscall returns held back for it go on.
    fn end_fork(&mut self, pid: Pid) -> Result<()> {
        let Some(process) = self.threads.get(&pid).map(|t| t.process) else {
            return Ok(());
        };
        match self.forking.get(&process) {
            Some(fork) if fork.forker == pid => {
                self.log.end_fork(fork.stamp);
                self.forking.remove(&process);
            }
            _ => return Ok(()),
        }
        for held in std::mem::take(&mut self.after_fork) {
            self.on_syscall_exit(held)?;
        }
        Ok(())
    }

    /// Whether the clone in flight on `pid` shares the address space's
    /// thread group (a thread) rather than making a process.
    fn clone_makes_thread(&self, pid: Pid) -> bool {
        let Some(call) = self.threads.get(&pid).and_then(|t| t.in_flight.as_ref()) else {
            return true;
        };
        let flags = match call.nr {
            libc::SYS_clone => call.args[0],
            libc::SYS_clone3 => Tracee::new(pid).read_u64(call.args[0]).unwrap_or(0),
            _ => 0,
        };
        flags & libc::CLONE_THREAD as u64 != 0
    }

    fn on_signal(&mut self, pid: Pid, sig: i32) -> Result<()> {
        let Some(t) = self.threads.get_mut(&pid) else {
            // A new task stopping before its parent's clone event.
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
        let tracee = Tracee::new(pid);
        let info = rrc_interposer::signal_info(pid);
        let code = info.map_or(0, |si| si.si_code);
        if sig == libc::SIGSEGV && code == libc::SI_KERNEL {
            if let Some(done) = self.record_tsc(pid)? {
                return Ok(done);
            }
        }
        let Some(t) = self.threads.get_mut(&pid) else {
            return Ok(());
        };
        // Our own tgkill of a held signal: the program gets the original
        // siginfo, and the signal is placed like any asynchronous one.
        let injected = match t.injection.take() {
            Some(inj) if inj.sig == sig => {
                tracee.set_siginfo_bytes(&inj.siginfo)?;
                Some(inj.siginfo)
            }
            other => {
                t.injection = other;
                None
            }
        };
        let was_injected = injected.is_some();
        // The siginfo fetched above: one PTRACE_GETSIGINFO per stop.
        let siginfo = match injected {
            Some(original) => original,
            None => info
                .as_ref()
                .map(rrc_interposer::siginfo_to_bytes)
                .unwrap_or_default(),
        };
        let fault = !was_injected && rrc_interposer::is_fault(sig, code);
        let raised_by_kernel_for_this_call =
            matches!(sig, libc::SIGPIPE | libc::SIGXFSZ) && code == libc::SI_KERNEL;
        let own = t.self_signals.iter().position(|s| *s == sig);
        if !was_injected && (fault || raised_by_kernel_for_this_call || own.is_some()) {
            if let Some(i) = own {
                t.self_signals.remove(i);
            }
            self.emit_signal(pid, sig, SignalPoint::Synchronous, Vec::new())?;
            return Ok(tracee.resume(sig, "deliver signal")?);
        }
        // Asynchronous: delivered at a syscall boundary.
        let regs = tracee.regs("read registers at signal stop")?;
        let process = t.process;
        if let Some((call, code)) = t.interrupted.take() {
            let disposition = self
                .dispositions
                .get(&process)
                .map(|d| d.get(sig))
                .unwrap_or_default();
            if restarts(code, disposition) {
                if -code == 516 {
                    if let Some(t) = self.threads.get_mut(&pid) {
                        t.restart_block = Some((call.nr, call.args));
                    }
                }
                let at = if matches!(disposition, Disposition::Handler { .. }) {
                    // Asleep in the call until now: like a futex wait.
                    let (order, _) =
                        self.run_handler_alone(pid, process, |r| Ok(r.log.stamp_event()))?;
                    SignalPoint::WhileWaiting(order)
                } else {
                    SignalPoint::SyscallEntry
                };
                self.emit_signal(pid, sig, at, siginfo)?;
            } else {
                let eintr = -(libc::EINTR as i64);
                let alone = if matches!(disposition, Disposition::Handler { .. }) {
                    let (_, alone) = self.run_handler_alone(pid, process, |r| {
                        r.finish_syscall(pid, call, eintr, true)
                    })?;
                    alone
                } else {
                    self.finish_syscall(pid, call, eintr, true)?;
                    false
                };
                let at = if alone {
                    SignalPoint::InterruptedCall
                } else {
                    SignalPoint::SyscallReturn
                };
                self.emit_signal(pid, sig, at, siginfo)?;
            }
            return Ok(tracee.resume(sig, "deliver signal")?);
        }
        if t.last_exit_rip == Some(regs.regs.rip) {
            self.emit_signal(pid, sig, SignalPoint::SyscallReturn, siginfo)?;
            return Ok(tracee.resume(sig, "deliver signal")?);
        }
        let in_untrapped_call = (regs.regs.orig_rax as i64) >= 0
            && (is_restart(regs.ret()) || regs.ret() == -(libc::EINTR as i64));
        let handled = self
            .dispositions
            .get(&process)
            .is_some_and(|d| matches!(d.get(sig), Disposition::Handler { .. }));
        if in_untrapped_call && !was_injected && handled {
            // Asleep in a futex wait, it runs no code of its own: the
            // handler's place is a place in the event order, and it runs
            // there alone.
            let (order, _) = self.run_handler_alone(pid, process, |r| Ok(r.log.stamp_event()))?;
            self.emit_signal(pid, sig, SignalPoint::WhileWaiting(order), siginfo)?;
            return Ok(tracee.resume(sig, "deliver signal")?);
        }
        if in_untrapped_call || was_injected {
            // Blocked in a call that runs untrapped (a futex wait), or a
            // held signal the program had blocked until now: deliver here;
            // replay delivers it after the same elapsed time.
            let elapsed = Instant::now().duration_since(t.last_return).as_nanos() as u64;
            self.emit_signal(pid, sig, SignalPoint::Elapsed(elapsed), siginfo)?;
            return Ok(tracee.resume(sig, "deliver signal")?);
        }
        // Running its own code: hold the signal back to the thread's next
        // syscall, where replay can deliver it at the same point.
        // A standard signal already held stays one signal, as it would
        // pending in the kernel; its wait keeps counting from the first
        // arrival, so a periodic timer cannot postpone delivery forever.
        let coalesces = sig < libc::SIGRTMIN() && t.held.iter().any(|h| h.sig == sig);
        if !coalesces {
            t.held.push_back(PendingSignal {
                sig,
                siginfo,
                since: Instant::now(),
            });
        }
        Ok(tracee.resume(0, "hold a signal back to the next syscall")?)
    }

    /// Emulates and records a trapped rdtsc/rdtscp. `None` when the fault
    /// was not one.
    fn record_tsc(&mut self, pid: Pid) -> Result<Option<()>> {
        let tracee = Tracee::new(pid);
        let mut regs = tracee.regs("read registers at rdtsc fault")?;
        let Some(insn) = tracee.tsc_instruction_at(regs.regs.rip) else {
            return Ok(None);
        };
        let (value, aux) = read_tsc(insn);
        tracee.complete_tsc(&mut regs, insn, value, aux)?;
        let Some(t) = self.threads.get_mut(&pid) else {
            return Ok(Some(()));
        };
        let stamp = t.stamp_return(self.epoch, self.log.stamp_event());
        let thread = t.logical;
        self.emit(TraceRecord::Tsc(TscRecord {
            thread,
            index: stamp.index,
            value,
            aux,
            interval_ns: stamp.interval_ns,
            return_ns: stamp.return_ns,
            order: stamp.order,
        }))?;
        tracee.resume(0, "resume after rdtsc")?;
        Ok(Some(()))
    }

    fn emit_signal(&mut self, pid: Pid, sig: i32, at: SignalPoint, siginfo: Vec<u8>) -> Result<()> {
        let Some(t) = self.threads.get_mut(&pid) else {
            return Ok(());
        };
        let index = t.events;
        t.events += 1;
        let thread = t.logical;
        self.emit(TraceRecord::Signal(SignalRecord {
            thread,
            index,
            signo: sig,
            asynchronous: at != SignalPoint::Synchronous,
            at,
            siginfo,
        }))
    }

    /// A thread signalling itself (raise, abort) gets a synchronous signal.
    fn note_self_signal(&mut self, pid: Pid, nr: i64, args: &[u64; 6]) {
        let tgid = self.tgid_of(pid).as_raw();
        let (target, sig) = match nr {
            libc::SYS_tgkill | libc::SYS_rt_tgsigqueueinfo => (args[1] as i32, args[2] as i32),
            libc::SYS_tkill => (args[0] as i32, args[1] as i32),
            // kill() or sigqueue() of its own single-threaded process.
            _ if args[0] as i32 == tgid
                && self
                    .threads
                    .values()
                    .filter(|t| self.process_pid.get(&t.process) == Some(&tgid))
                    .count()
                    == 1 =>
            {
                (pid.as_raw(), args[1] as i32)
            }
            _ => return,
        };
        if target == pid.as_raw() && sig > 0 {
            if let Some(t) = self.threads.get_mut(&pid) {
                t.self_signals.push(sig);
            }
        }
    }

    fn tgid_of(&self, pid: Pid) -> Pid {
        self.threads
            .get(&pid)
            .and_then(|t| self.process_pid.get(&t.process))
            .map_or(pid, |p| Pid::from_raw(*p))
    }

    fn next_held_deadline(&self) -> Option<Instant> {
        let signals = self
            .threads
            .values()
            .filter(|t| t.injection.is_none())
            .filter_map(|t| t.held.front().map(|h| h.since + DEFER_LIMIT));
        let serial_calls = self.serial_calls.iter().filter_map(|(key, d)| {
            d.waiting
                .front()
                .map(|(_, since)| *since + serial_wait(key))
        });
        let handlers = self
            .forking
            .values()
            .filter_map(|f| f.handler_since.map(|s| s + HANDLER_ALONE_LIMIT));
        signals.chain(serial_calls).chain(handlers).min()
    }

    /// Whether the call `pid` is entering must wait for another one of its
    /// key; takes the slot when it need not.
    fn must_wait_for_serial_call(&mut self, pid: Pid, key: SerialKey) -> bool {
        if self.descriptor_bypass.remove(&pid) {
            return false;
        }
        let calls = self.serial_calls.entry(key).or_default();
        match calls.in_flight {
            Some(other) if other != pid => {
                calls.waiting.push_back((pid, Instant::now()));
                true
            }
            _ => {
                calls.in_flight = Some(pid);
                false
            }
        }
    }

    /// Whether `fd` (1 or 2) of the process is our own stdout or stderr.
    fn std_stream(&mut self, pid: Pid, process: ProcessId, fd: u64) -> Option<u8> {
        let streams = self.std_streams;
        *self.std_stream_of.entry((process, fd)).or_insert_with(|| {
            let target = std::fs::metadata(format!("/proc/{pid}/fd/{fd}"))
                .ok()
                .map(|m| (m.dev(), m.ino()));
            (target.is_some() && target == streams[fd as usize]).then_some(fd as u8)
        })
    }

    /// `pid`'s serialised call (if it had a slot) is done: the next
    /// waiting one of that key goes.
    fn finish_serial_call(&mut self, pid: Pid) -> Result<()> {
        let mut next = Vec::new();
        for calls in self.serial_calls.values_mut() {
            if calls.in_flight == Some(pid) {
                calls.in_flight = None;
                next.extend(calls.waiting.pop_front());
            }
        }
        for (next, _) in next {
            // Still stopped at its seccomp stop: process that stop now.
            if self.threads.contains_key(&next) {
                self.on_seccomp(next)?;
            }
        }
        Ok(())
    }

    /// A serialised call that has waited too long goes ahead (the one in
    /// flight is probably blocked, as a blocking accept is).
    fn release_overdue_serial_calls(&mut self) -> Result<()> {
        let now = Instant::now();
        let overdue: Vec<Pid> = self
            .serial_calls
            .iter_mut()
            .filter_map(|(key, d)| match d.waiting.front() {
                Some((pid, since)) if now >= *since + serial_wait(key) => {
                    let pid = *pid;
                    d.waiting.pop_front();
                    Some(pid)
                }
                _ => None,
            })
            .collect();
        for pid in overdue {
            if self.threads.contains_key(&pid) {
                self.descriptor_bypass.insert(pid);
                self.on_seccomp(pid)?;
            }
        }
        Ok(())
    }

    /// A held signal whose thread made no syscall for DEFER_LIMIT is
    /// delivered where the thread is.
    fn release_overdue_signals(&mut self) -> Result<()> {
        let now = Instant::now();
        let overdue: Vec<Pid> = self
            .threads
            .iter()
            .filter(|(_, t)| {
                t.injection.is_none()
                    && t.held.front().is_some_and(|h| now >= h.since + DEFER_LIMIT)
            })
            .map(|(p, _)| *p)
            .collect();
        for pid in overdue {
            let tgid = self.tgid_of(pid);
            let Some(t) = self.threads.get_mut(&pid) else {
                continue;
            };
            let Some(signal) = t.held.pop_front() else {
                continue;
            };
            let sig = signal.sig;
            t.injection = Some(signal);
            let thread = t.logical;
            match Tracee::new(pid).queue_signal(tgid, sig) {
                Ok(()) => {}
                Err(e) if e.tracee_gone() => continue,
                Err(e) => return Err(e.into()),
            }
            self.warn_once(
                thread,
                format!(
                    "signal {sig} arrived while a thread ran without syscalls for {} ms: delivered there; replay delivers it after the same elapsed time, which may not be the same point",
                    DEFER_LIMIT.as_millis()
                ),
            )?;
        }
        Ok(())
    }

    fn on_exit(&mut self, pid: Pid, status: ExitStatus) -> Result<()> {
        self.end_fork(pid)?;
        self.after_fork.retain(|p| *p != pid);
        self.finish_serial_call(pid)?;
        for calls in self.serial_calls.values_mut() {
            calls.waiting.retain(|(p, _)| *p != pid);
        }
        self.early_stops.remove(&pid);
        // A signal the thread sent that ended its own process (raise or
        // kill of SIGKILL): replay must send it too, though it never
        // returned (0: what a successful send returns). Other calls a
        // killed thread was in end with it.
        let unreturned = self.threads.get_mut(&pid).and_then(|t| t.in_flight.take());
        if let Some(call) = unreturned {
            if matches!(status, ExitStatus::Signaled(_))
                && model::replay_action(call.nr, &call.args) == ReplayAction::SignalSend
            {
                self.finish_syscall(pid, call, 0, false)?;
            }
        }
        let Some(t) = self.threads.remove(&pid) else {
            return Ok(());
        };
        self.emit(TraceRecord::ThreadExit {
            thread: t.logical,
            events: t.events,
        })?;
        if pid == self.root {
            self.main_status = Some(status);
        }
        Ok(())
    }
}

/// The bytes an mmap of a file maps (up to the file's end), when replay
/// may not find that file as it was: the program had it open for writing,
/// or it changed while the recording ran (a file the program made). Other
/// files, such as libraries, must be the same files when replayed.
/// Pages past the file's end are not kept: replay maps anonymous memory,
/// where touching them does not raise SIGBUS.
fn mapped_copy(pid: Pid, args: &[u64; 6], started: SystemTime) -> Option<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let fd = args[4] as i32;
    if fd < 0 || args[3] & libc::MAP_ANONYMOUS as u64 != 0 {
        return None;
    }
    let path = format!("/proc/{pid}/fd/{fd}");
    // A memfd (ours, the sync log, or the program's) exists for real in
    // replay: memfd_create runs there.
    if fd_target(pid, fd.into()).is_some_and(|t| t.starts_with(b"/memfd:")) {
        return None;
    }
    let meta = std::fs::metadata(&path).ok()?;
    let writable = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| i32::from_str_radix(f.trim(), 8).ok())
        .is_some_and(|flags| flags & libc::O_ACCMODE != libc::O_RDONLY);
    let changed = meta.modified().is_ok_and(|m| m >= started);
    if !meta.is_file() || !(writable || changed) {
        return None;
    }
    let (offset, len) = (args[5], args[1]);
    let n = meta.len().saturating_sub(offset).min(len);
    if n > model::MAX_INPUT {
        // Too big to keep: replay then stops at this mapping, named.
        return None;
    }
    let mut bytes = vec![0u8; n as usize];
    let file = std::fs::File::open(&path).ok()?;
    file.read_exact_at(&mut bytes, offset).ok()?;
    Some(bytes)
}

/// Calls that send bytes to their first argument's descriptor, whose
/// first input is those bytes: replay prints them when that descriptor
/// is our stdout or stderr.
fn writes_out(nr: i64) -> bool {
    matches!(
        nr,
        libc::SYS_write | libc::SYS_writev | libc::SYS_pwrite64 | libc::SYS_sendfile
    )
}

/// Kernel-internal restart codes, never seen by the program.
pub fn is_restart(ret: i64) -> bool {
    matches!(-ret, 512..=514 | 516)
}

fn read_tsc(insn: rrc_interposer::TscInstruction) -> (u64, Option<u32>) {
    match insn {
        // SAFETY: rdtsc/rdtscp have no preconditions in the tracer, which
        // is not itself under PR_TSC_SIGSEGV.
        rrc_interposer::TscInstruction::Rdtsc => (unsafe { core::arch::x86_64::_rdtsc() }, None),
        rrc_interposer::TscInstruction::Rdtscp => {
            let mut aux = 0u32;
            // SAFETY: as above; aux is a valid out-pointer.
            let v = unsafe { core::arch::x86_64::__rdtscp(&mut aux) };
            (v, Some(aux))
        }
    }
}
