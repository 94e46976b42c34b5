//! The recording tracer: one loop over ptrace stops. A trapped syscall is
//! seen twice: at its seccomp stop (inputs read) and at its exit (result
//! and every byte the kernel wrote read), then sent to the trace writer.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use crossbeam_channel::Sender;
use nix::unistd::Pid;
use rrc_interposer::model::{self, InputSpec, ReplayAction};
use rrc_interposer::{fd_identity, fd_target, hide_vdso, wait_any, Stop, Tracee, TraceeMemory};
use rrc_synclog::SharedSyncLog;
use rrc_trace::{
    ExitStatus, ProcessId, SignalRecord, SyscallExtra, SyscallRecord, ThreadId, TraceRecord,
};

/// A syscall between its seccomp stop and its exit.
struct InFlight {
    nr: i64,
    args: [u64; 6],
    inputs: Vec<Vec<u8>>,
    extra: SyscallExtra,
}

struct ThreadState {
    logical: ThreadId,
    process: ProcessId,
    events: u64,
    last_return: Instant,
    in_flight: Option<InFlight>,
    /// The kernel's initial SIGSTOP has not been seen yet.
    awaiting_first_stop: bool,
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
    warned: HashSet<String>,
    vdso_hidden: bool,
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
            warned: HashSet::new(),
            vdso_hidden: false,
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
        let process = if new_process {
            let p = self.next_process;
            self.next_process += 1;
            p
        } else {
            parent_state.map_or(0, |t| t.process)
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
        while let Some(stop) = wait_any(false).context("waiting for the traced program")? {
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
        let nr = regs.nr();
        let args = regs.args();
        let Some(thread) = self.threads.get(&pid).map(|t| t.logical) else {
            bail!("seccomp stop of unknown tid {pid}");
        };
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
            self.warn_once(
                thread,
                format!(
                    "ioctl request {:#x} is not known to rrc: memory it writes is not recorded",
                    args[1]
                ),
            )?;
        }
        let inputs = self.read_inputs(&tracee, nr, &args)?;
        if matches!(nr, libc::SYS_write | libc::SYS_writev | libc::SYS_pwrite64)
            && (args[0] == 1 || args[0] == 2)
        {
            let fd = args[0] as usize;
            let target = std::fs::metadata(format!("/proc/{pid}/fd/{fd}"))
                .ok()
                .map(|m| (m.dev(), m.ino()));
            if target.is_some() && target == self.std_streams[fd] {
                extra = SyscallExtra::StdStream(fd as u8);
            }
        }
        if nr == libc::SYS_mmap {
            if let Some(target) = fd_target(pid, args[4] as i32 as i64) {
                extra = SyscallExtra::MappedFd(target);
            }
        }
        let call = InFlight {
            nr,
            args,
            inputs,
            extra,
        };
        if nr == libc::SYS_exit_group {
            // It never returns: record it now.
            self.finish_syscall(pid, call, 0)?;
            tracee.resume(0, "resume into exit_group")?;
            return Ok(());
        }
        if let Some(t) = self.threads.get_mut(&pid) {
            t.in_flight = Some(call);
        }
        tracee.resume_to_syscall_exit("resume to syscall exit")?;
        Ok(())
    }

    fn read_inputs(&self, tracee: &Tracee, nr: i64, args: &[u64; 6]) -> Result<Vec<Vec<u8>>> {
        let mut specs = model::inputs(nr, args);
        if nr == libc::SYS_sendmsg {
            specs = model::sendmsg_inputs(tracee, args[1]).unwrap_or_default();
        }
        Ok(specs
            .into_iter()
            .map(|spec| read_input(tracee, spec))
            .collect())
    }

    fn on_syscall_exit(&mut self, pid: Pid) -> Result<()> {
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
            // Interrupted: the kernel restarts it after the signal, and the
            // restarted call traps again; the program never sees this one.
            tracee.resume(0, "resume after interrupted syscall")?;
            return Ok(());
        }
        self.finish_syscall(pid, call, ret)?;
        tracee.resume(0, "resume after syscall exit")?;
        Ok(())
    }

    /// Reads the results of a completed syscall and sends its record.
    fn finish_syscall(&mut self, pid: Pid, call: InFlight, ret: i64) -> Result<()> {
        let tracee = Tracee::new(pid);
        let Some(t) = self.threads.get_mut(&pid) else {
            bail!("syscall of unknown tid {pid}");
        };
        let now = Instant::now();
        let interval_ns = now.duration_since(t.last_return).as_nanos() as u64;
        t.last_return = now;
        let index = t.events;
        t.events += 1;
        let thread = t.logical;
        let mut extra = call.extra;
        let action = model::replay_action(call.nr, &call.args);
        if action == ReplayAction::Open && ret >= 0 {
            if let Some(id) = fd_identity(pid, ret) {
                extra = SyscallExtra::Opened(id);
            }
        }
        let regions = if ret >= 0 || call.nr == libc::SYS_nanosleep {
            model::outputs(call.nr, &call.args, ret, &tracee).unwrap_or_default()
        } else {
            Vec::new()
        };
        let mut outputs = Vec::with_capacity(regions.len());
        for r in regions {
            outputs.push(tracee.read(r.addr, r.len).unwrap_or_default());
        }
        self.emit(TraceRecord::Syscall(SyscallRecord {
            thread,
            index,
            nr: call.nr as u32,
            args: call.args,
            ret,
            inputs: call.inputs,
            outputs,
            interval_ns,
            extra,
        }))
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
            }
            libc::PTRACE_EVENT_EXEC => {
                if hide_vdso(&tracee)? {
                    self.vdso_hidden = true;
                }
            }
            _ => {}
        }
        self.resume(pid, 0)
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
        if t.awaiting_first_stop && sig == libc::SIGSTOP {
            t.awaiting_first_stop = false;
            return Tracee::new(pid)
                .resume(0, "start new thread")
                .map_err(Into::into);
        }
        if matches!(
            sig,
            libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
        ) && rrc_interposer::is_group_stop(pid)
        {
            return Tracee::new(pid)
                .resume(0, "resume from group stop")
                .map_err(Into::into);
        }
        let asynchronous = rrc_interposer::signal_info(pid)
            .is_some_and(|si| is_async(&si, sig, &self.process_pid));
        let index = t.events;
        t.events += 1;
        let thread = t.logical;
        self.emit(TraceRecord::Signal(SignalRecord {
            thread,
            index,
            signo: sig,
            asynchronous,
        }))?;
        if asynchronous {
            self.warn_once(
                thread,
                format!(
                    "asynchronous signal {sig} delivered: replay of asynchronous signals is not supported yet"
                ),
            )?;
        }
        Tracee::new(pid).resume(sig, "deliver signal")?;
        Ok(())
    }

    fn on_exit(&mut self, pid: Pid, status: ExitStatus) -> Result<()> {
        self.early_stops.remove(&pid);
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

fn read_input(tracee: &Tracee, spec: InputSpec) -> Vec<u8> {
    match spec {
        InputSpec::Bytes(r) => tracee.read(r.addr, r.len).unwrap_or_default(),
        InputSpec::CString(addr) => tracee.read_cstring(addr, 4096).unwrap_or_default(),
        InputSpec::Iovec { addr, count, limit } => {
            let mut out = Vec::new();
            for i in 0..count.min(1024) {
                let (Ok(base), Ok(len)) = (
                    tracee.read_u64(addr + i * 16),
                    tracee.read_u64(addr + i * 16 + 8),
                ) else {
                    break;
                };
                let take = len.min(limit.saturating_sub(out.len() as u64));
                out.extend(tracee.read(base, take as usize).unwrap_or_default());
            }
            out
        }
    }
}

/// Kernel-internal restart codes, never seen by the program.
pub fn is_restart(ret: i64) -> bool {
    matches!(-ret, 512..=514 | 516)
}

/// Whether a signal came from outside the program (another process, a
/// timer, a child's exit) rather than from its own actions (a fault, raise,
/// kill of itself), which replay reproduces by re-executing.
fn is_async(si: &libc::siginfo_t, sig: i32, traced: &HashMap<ProcessId, i32>) -> bool {
    let code = si.si_code;
    let fault = matches!(
        sig,
        libc::SIGSEGV | libc::SIGBUS | libc::SIGFPE | libc::SIGILL | libc::SIGTRAP
    );
    if fault && code > 0 {
        return false;
    }
    if code == libc::SI_TKILL || code == libc::SI_USER {
        // SAFETY: for SI_USER and SI_TKILL the kernel filled in si_pid.
        let sender = unsafe { si.si_pid() };
        // SIGPIPE raised by the kernel for a write comes as SI_USER from 0.
        return !(traced.values().any(|p| *p == sender) || (sig == libc::SIGPIPE && sender == 0));
    }
    true
}
