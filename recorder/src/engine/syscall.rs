//! Recording trapped syscalls. A trapped syscall is seen twice: at its
//! seccomp stop ([`Recorder::syscall_entry`]: inputs read) and at its
//! exit ([`Recorder::syscall_exit`]: result and every byte the kernel
//! wrote read), then sent to the trace writer.

use std::time::Instant;

use anyhow::{bail, Result};
use nix::unistd::Pid;
use rrc_interposer::model::{self, ReplayAction};
use rrc_interposer::{fd_identity, fd_target, is_restart, SyscallRegs, Tracee, TraceeMemory};
use rrc_trace::{ProcessId, SyscallExtra, SyscallRecord, ThreadId, TraceRecord};

use super::limits::AddressLimit;
use super::mapped::mapped_copy;
use super::serial::SerialKey;
use super::threads::{Hold, Run};
use super::{Recorder, Release, Resume};

/// A syscall between its seccomp stop and its exit.
pub(super) struct InFlight {
    pub nr: i64,
    pub args: [u64; 6],
    pub inputs: Vec<Vec<u8>>,
    pub extra: SyscallExtra,
    /// rt_sigaction: (signal, handler, flags) it installs.
    installs: Option<(i32, u64, u64)>,
    /// A fork's place in the event order, taken at its entry (see
    /// `model::snapshots_memory`); other calls take theirs as they return.
    fork_stamp: Option<u64>,
    /// An address-space limit the call sets or reads (see `limits`).
    address_limit: AddressLimit,
    /// The task a clone, fork or vfork made (its ptrace event seen).
    pub created: Option<Pid>,
}

impl Recorder {
    /// A thread at the seccomp stop of a trapped call (stopped now, or
    /// released from a serial-call wait): waits for its serial call, or
    /// reads the call's inputs and lets it run to its exit. `opened`: an
    /// open's inputs if the driver read them at this stop (a thread let go
    /// from a wait has its path read again here).
    pub(super) fn syscall_entry(
        &mut self,
        pid: Pid,
        regs: SyscallRegs,
        opened: Option<Vec<Vec<u8>>>,
    ) -> Result<()> {
        if model::marks_handler_end(regs.nr()) {
            // Trapped only to mark where a handler ends; not an event.
            return self.resume(pid, Resume::Run(0, "resume into rt_sigreturn"));
        }
        if Self::is_boundary(regs.nr()) {
            return self.buffered_call_boundary(pid, regs);
        }
        let Some(t) = self.threads.get(&pid) else {
            bail!("seccomp stop of unknown tid {pid}");
        };
        let process = t.process;
        if let Some(key) = self.serial_key(pid, process, &regs) {
            if self.must_wait_for_serial_call(pid, key, super::serial::may_block(regs.nr())) {
                // Stays stopped until the one in flight has returned.
                self.hold(pid, Hold::SerialCall);
                return Ok(());
            }
        }
        let tracee = Tracee::new(pid);
        let opened = opened.or_else(|| model::open_inputs(&tracee, regs.nr(), &regs.args()));
        if opened.as_deref().is_some_and(model::opens_read_once_file) {
            // Answered here in both runs, in whichever thread: not an
            // event (see READ_ONCE_BY_LIBC).
            let mut regs = regs;
            tracee.skip_syscall(&mut regs, -(libc::ENOENT as i64))?;
            return self.resume(pid, Resume::Run(0, "resume past a read-once file"));
        }
        let signalled = self.queue_held_signal(pid)?;
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
                    return self.resume(pid, Resume::Run(0, "resume an untraced call's restart"));
                }
            }
        }
        // The path read above, unless a restart made it another call.
        let inputs = opened.filter(|_| nr == regs.nr());
        let call = self.begin_call(pid, nr, args, inputs)?;
        self.hide_rrc_at_entry(pid, &call)?;
        if nr == regs.nr() {
            self.limit_to_recorded(pid, &regs, &call)?;
        }
        if nr == libc::SYS_exit_group {
            // It never returns: record it now (a serial slot it took
            // goes with its thread, see `serial_key`).
            self.finish_syscall(pid, call, 0, false)?;
            return self.resume(pid, Resume::Run(0, "resume into exit_group"));
        }
        // A signal queued here arrives at the call's return: the kernel's.
        if !signalled && nr == regs.nr() {
            if let Some(ret) = self.write_at_entry(pid, process, &call) {
                return self.finish_at_entry(pid, regs, call, ret);
            }
        }
        if let Some(t) = self.threads.get_mut(&pid) {
            t.in_flight = Some(call);
        }
        self.resume(pid, Resume::ToExit("resume to syscall exit"))
    }

    /// Which serial calls the call at `regs` must run one at a time with.
    fn serial_key(
        &mut self,
        pid: Pid,
        process: ProcessId,
        regs: &SyscallRegs,
    ) -> Option<SerialKey> {
        let (nr, args) = (regs.nr(), regs.args());
        if model::changes_descriptor_table(nr, &args) {
            Some(SerialKey::Descriptors(process))
        } else if model::sends_to(nr, &args)
            .is_some_and(|fd| is_descriptor(fd) && self.std_streams.get(pid, process, fd).is_some())
        {
            Some(SerialKey::StdStreams)
        } else if matches!(
            nr,
            libc::SYS_exit_group | libc::SYS_execve | libc::SYS_execveat
        ) && self.has_other_threads(pid, process)
        {
            // It kills the process's other threads. One let into a write
            // to our stdout meanwhile may put its bytes out and never
            // return to us, and the trace would lack them. So it runs as
            // writes to our stdout do, one at a time with them: it waits
            // for one under way to return, and the process's writes that
            // come after it wait until it has returned (an execve that
            // failed) or its thread is gone.
            Some(SerialKey::StdStreams)
        } else {
            None
        }
    }

    /// A call or signal that kills `process`'s other threads takes the
    /// serial slot of writes to our stdout (see `serial_key`): true when
    /// it must wait for one under way (then it is queued).
    pub(super) fn waits_for_std_writes(&mut self, pid: Pid, process: ProcessId) -> bool {
        self.has_other_threads(pid, process)
            && self.must_wait_for_serial_call(pid, SerialKey::StdStreams, false)
    }

    pub(super) fn has_other_threads(&self, pid: Pid, process: ProcessId) -> bool {
        self.threads
            .iter()
            .any(|(&tid, t)| tid != pid && t.process == process)
    }

    /// Whether the call `pid` is entering must wait for another one of its
    /// key; takes the slot when it need not.
    fn must_wait_for_serial_call(&mut self, pid: Pid, key: SerialKey, blocks: bool) -> bool {
        if let Some(t) = self.threads.get_mut(&pid) {
            if std::mem::take(&mut t.serial_bypass) {
                return false;
            }
        }
        self.serial.enter(pid, key, blocks, Instant::now())
    }

    /// `pid`'s serial call (if it had a slot) is done: the next waiting
    /// one of that key is to go.
    pub(super) fn finish_serial_call(&mut self, pid: Pid) -> Vec<Release> {
        let next = self.serial.finish(pid);
        next.into_iter()
            .map(|pid| self.serial_release(pid, false))
            .collect()
    }

    /// How a thread waiting in a serial queue is let go: at its seccomp
    /// stop (`bypass`: without the slot), or at the stop of the signal it
    /// holds.
    pub(super) fn serial_release(&self, pid: Pid, bypass: bool) -> Release {
        match self.threads.get(&pid).map(|t| t.run) {
            Some(Run::Held(Hold::Signal(sig))) => Release::Signal { pid, sig },
            _ => Release::Entry { pid, bypass },
        }
    }

    /// A signal held back to this boundary: queue it and let the call
    /// run. A wait (pause, epoll_wait, read) then sees it pending and is
    /// interrupted as if the signal had come while it blocked; any other
    /// call completes and the signal arrives at its return. Either way it
    /// lands where replay can put it. Returns whether one was queued.
    pub(super) fn queue_held_signal(&mut self, pid: Pid) -> Result<bool> {
        let Some(t) = self.threads.get_mut(&pid) else {
            bail!("seccomp stop of unknown tid {pid}");
        };
        t.last_exit_rip = None;
        let Some(signal) = t.signals.next() else {
            return Ok(false);
        };
        let tgid = self.tgid_of(pid);
        Tracee::new(pid).queue_signal(tgid, signal.sig)?;
        if let Some(t) = self.threads.get_mut(&pid) {
            t.signals.queued(signal);
        }
        self.note_held_signals(pid);
        Ok(true)
    }

    /// Reads what the call `nr` takes in, at its entry.
    /// `inputs`: the call's inputs if they were read already.
    fn begin_call(
        &mut self,
        pid: Pid,
        nr: i64,
        args: [u64; 6],
        inputs: Option<Vec<Vec<u8>>>,
    ) -> Result<InFlight> {
        let tracee = Tracee::new(pid);
        let process = match self.threads.get(&pid) {
            Some(t) => t.process,
            None => bail!("seccomp stop of unknown tid {pid}"),
        };
        let mut extra = Self::check_supported(nr, &args);
        let inputs = inputs.unwrap_or_else(|| model::read_inputs(&tracee, nr, &args));
        if let Some(fd) = model::sends_to(nr, &args).filter(|fd| is_descriptor(*fd)) {
            if let Some(stream) = self.std_streams.get(pid, process, fd) {
                extra = SyscallExtra::StdStream(stream);
            }
        }
        if nr == libc::SYS_mmap {
            if let Some(target) = fd_target(pid, args[4] as i32 as i64) {
                extra = SyscallExtra::MappedFd(target);
            }
        }
        if matches!(nr, libc::SYS_accept | libc::SYS_accept4)
            || (model::waits(nr) && extra == SyscallExtra::None)
        {
            extra = SyscallExtra::EnteredAt(self.log.stamp_event());
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
            self.alone.begin_fork(process, pid, stamp);
            stamp
        });
        let address_limit = AddressLimit::at_entry(&tracee, nr, &args);
        Ok(InFlight {
            nr,
            args,
            inputs,
            extra,
            installs,
            fork_stamp,
            address_limit,
            created: None,
        })
    }

    /// Warns (once) about a call replay cannot re-create: only its return
    /// value is recorded.
    /// `Unknown` for a call rrc does not model (said at its exit, unless
    /// the kernel did not have it either).
    fn check_supported(nr: i64, args: &[u64; 6]) -> SyscallExtra {
        if !model::is_known(nr) || (nr == libc::SYS_ioctl && !model::ioctl_is_known(args[1])) {
            return SyscallExtra::Unknown;
        }
        SyscallExtra::None
    }

    /// A call rrc does not model, seen at its exit: one that failed with
    /// ENOSYS did nothing (the kernel lacks it too) and replays as that
    /// failure; any other is said once, and replay stops there.
    fn unknown_call_done(
        &mut self,
        thread: ThreadId,
        nr: i64,
        args: &[u64; 6],
        ret: i64,
    ) -> Result<SyscallExtra> {
        if ret == -i64::from(libc::ENOSYS) {
            return Ok(SyscallExtra::None);
        }
        let what = if nr == libc::SYS_ioctl {
            format!("ioctl request {:#x}", model::ioctl_request(args[1]))
        } else {
            format!("syscall {} ({nr})", model::name(nr))
        };
        self.warn_once(
            thread,
            format!(
                "{what} is not supported: only its return value is recorded, and replay will stop there"
            ),
        )?;
        Ok(SyscallExtra::Unknown)
    }

    /// A thread at a syscall exit (stopped now, or released after another
    /// thread ran alone): held while another thread of its process runs
    /// alone, otherwise recorded. Returns the serial call to let go next.
    pub(super) fn syscall_exit(&mut self, pid: Pid) -> Result<Vec<Release>> {
        let held = self
            .threads
            .get(&pid)
            .is_some_and(|t| self.alone.hold_exit(t.process, pid));
        if held {
            self.hold(pid, Hold::Exit);
            return Ok(Vec::new());
        }
        if !self.token.want(pid) {
            self.hold(pid, Hold::Token);
            return Ok(Vec::new());
        }
        let result = self.record_syscall_exit(pid);
        // After its record: the trace then has descriptor calls in the
        // order they ran. The next one goes even when this thread
        // vanished mid-stop.
        let next = self.finish_serial_call(pid);
        match result {
            Err(e) if !super::tracee_gone(&e) => Err(e),
            _ => Ok(next),
        }
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
            return self.resume(pid, Resume::Run(0, "resume after unexpected syscall exit"));
        };
        if is_restart(ret) {
            // Interrupted by a signal: whether the program sees EINTR or a
            // restarted call is decided when the signal is delivered.
            t.interrupted = Some((call, ret));
            return self.resume(pid, Resume::Run(0, "resume after interrupted syscall"));
        }
        t.last_exit_rip = Some(regs.regs.rip);
        let process = t.process;
        let ret = self.hide_rrc_at_exit(pid, &call, ret)?;
        call.address_limit.at_exit(&tracee, ret);
        if model::installs_program_filter(call.nr, &call.args) && ret >= 0 {
            self.program_filter_installed();
        }
        if let Some((sig, handler, flags)) = call.installs.filter(|_| ret == 0) {
            self.dispositions
                .entry(process)
                .or_default()
                .set(sig, handler, flags);
        }
        let execs = matches!(call.nr, libc::SYS_execve | libc::SYS_execveat);
        if execs && ret == 0 {
            if let Some(d) = self.dispositions.get_mut(&process) {
                d.after_exec();
            }
        }
        if execs || model::changes_descriptor_table(call.nr, &call.args) {
            self.std_streams.forget_process(process);
        }
        self.finish_syscall(pid, call, ret, true)?;
        self.resume(pid, Resume::Run(0, "resume after syscall exit"))
    }

    /// Reads the results of a completed syscall and sends its record.
    /// `returns` is false for a call the thread never comes back from
    /// (exit_group, a SIGKILL it sent itself): it has no place in the
    /// event order.
    /// Returns the call's stamp in the event order.
    pub(super) fn finish_syscall(
        &mut self,
        pid: Pid,
        call: InFlight,
        ret: i64,
        returns: bool,
    ) -> Result<u64> {
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
        let thread = t.logical;
        let mut extra = call.extra;
        if matches!(extra, SyscallExtra::Unknown) {
            extra = self.unknown_call_done(thread, call.nr, &call.args, ret)?;
        }
        if ret < 0 && matches!(extra, SyscallExtra::EnteredAt(_)) {
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
            inputs: call.inputs,
            outputs,
            extra,
            ..stamp.record(thread, call.nr, call.args, ret)
        }))?;
        Ok(stamp.order)
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
}

/// Whether a call's argument can name a descriptor (fds are ints; a
/// negative or huge one is refused by the kernel and is nobody's stream).
fn is_descriptor(arg: u64) -> bool {
    (arg as i32) >= 0 && arg <= i32::MAX as u64
}
