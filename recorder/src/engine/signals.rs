//! Signal stops: where each delivered signal goes in its thread's stream
//! (synchronous, at a syscall's entry or return, while waiting, or after
//! an elapsed time), asynchronous signals held back to the next syscall
//! boundary (see `deferred`), and signal handlers that run alone (see
//! `alone`).

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use nix::unistd::Pid;
use rrc_interposer::{is_restart, Tracee};
use rrc_synclog::syscallbuf::FAST_SITE_END;
use rrc_trace::{ProcessId, SignalPoint, SignalRecord, TraceRecord};

use super::deferred::DEFER_LIMIT;
use super::dispositions::{restarts, Disposition};
use super::syscall::InFlight;
use super::threads::Hold;
use super::{Recorder, Release, Resume};

/// How long a handler that runs alone waits for the process's other
/// threads let go from a syscall just before (see `SETTLE_RECENT`) to
/// reach their next event.
const HANDLER_SETTLE_LIMIT: Duration = Duration::from_millis(10);

use rrc_interposer::may_be_tsc_fault as may_be_tsc;

impl Recorder {
    /// Delivers a signal the thread caused itself (a fault, `raise`).
    pub(super) fn deliver_ending_signal(&mut self, pid: Pid, sig: i32) -> Result<()> {
        self.emit_signal(pid, sig, SignalPoint::Synchronous, Vec::new())?;
        self.resume(pid, Resume::Run(sig, "deliver signal"))
    }

    /// Whether `sig`, delivered now, ends `process`: no handler, and a
    /// default action that terminates.
    fn ends_process(&self, process: ProcessId, sig: i32) -> bool {
        let handled = self
            .dispositions
            .get(&process)
            .is_some_and(|d| !matches!(d.get(sig), Disposition::Default));
        !handled && rrc_interposer::kills_by_default(sig)
    }

    /// A signal about to be delivered to `pid`.
    pub(super) fn signal_stop(&mut self, pid: Pid, sig: i32) -> Result<()> {
        let tracee = Tracee::new(pid);
        let info = rrc_interposer::signal_info(pid);
        let code = info.map_or(0, |si| si.si_code);
        if let Some((nr, _)) = info
            .as_ref()
            .and_then(|si| rrc_interposer::foreign_syscall(sig, si))
        {
            // Ends the recording (the program is killed with us).
            bail!(
                "the program made a 32-bit system call (int 0x80), which rrc cannot record \
                 (i386 call number {nr})"
            );
        }
        if may_be_tsc(sig, code) && !self.program_traps_tsc(pid) {
            if let Some(done) = self.record_tsc(pid)? {
                return Ok(done);
            }
        }
        let Some(t) = self.threads.get_mut(&pid) else {
            return Ok(());
        };
        // Our own tgkill of a held signal: the program gets the original
        // siginfo, and the signal is placed like any asynchronous one.
        let injected = t.signals.delivered(sig);
        if let Some(original) = &injected {
            tracee.set_siginfo_bytes(original)?;
        }
        let was_injected = injected.is_some();
        // The siginfo fetched above: one PTRACE_GETSIGINFO per stop.
        let siginfo = match injected {
            Some(original) => original,
            None => info
                .as_ref()
                .map(rrc_interposer::siginfo_to_bytes)
                .unwrap_or_default(),
        };
        // A SIGSEGV from the kernel that is no rdtsc rrc emulates (one the
        // program asked to fault on, a general protection fault) is the
        // thread's own fault too.
        let fault = !was_injected && (rrc_interposer::is_fault(sig, code) || may_be_tsc(sig, code));
        let raised_by_kernel_for_this_call =
            matches!(sig, libc::SIGPIPE | libc::SIGXFSZ) && code == libc::SI_KERNEL;
        let own = t.self_signals.iter().position(|s| *s == sig);
        if !was_injected && (fault || raised_by_kernel_for_this_call || own.is_some()) {
            if let Some(i) = own {
                t.self_signals.remove(i);
            }
            let process = t.process;
            if self.ends_process(process, sig) && self.waits_for_std_writes(pid, process) {
                self.hold(pid, Hold::Signal(sig));
                // Serialised, it had the run of the program: the write it
                // waits for records its return only with that run.
                let next = self.token.give_back(pid).map(Release::Token);
                return self.release_all(next.into_iter().collect());
            }
            return self.deliver_ending_signal(pid, sig);
        }
        // Asynchronous: delivered at a syscall boundary.
        let regs = tracee.regs("read registers at signal stop")?;
        let process = t.process;
        if let Some((call, code)) = t.interrupted.take() {
            return self.signal_in_interrupted_call(pid, sig, siginfo, process, call, code);
        }
        let at_return = t.last_exit_rip == Some(regs.regs.rip);
        let handled = self
            .dispositions
            .get(&process)
            .is_some_and(|d| matches!(d.get(sig), Disposition::Handler { .. }));
        if at_return {
            // Its handler may write what the other threads read (a stop
            // flag): it runs alone, once they have reached their next
            // event, at a place in the order replay can keep.
            let at = if handled && !was_injected {
                match self.run_handler_alone(pid, process, |r| Ok(r.log.stamp_event()))? {
                    (order, true) => SignalPoint::AfterReturn(order),
                    (_, false) => SignalPoint::SyscallReturn,
                }
            } else {
                SignalPoint::SyscallReturn
            };
            self.emit_signal(pid, sig, at, siginfo)?;
            return self.resume(pid, Resume::Run(sig, "deliver signal"));
        }
        let in_untrapped_call = (regs.regs.orig_rax as i64) >= 0
            && (is_restart(regs.ret()) || regs.ret() == -(libc::EINTR as i64));
        if in_untrapped_call && !was_injected && handled {
            // Asleep in a futex wait, it runs no code of its own: the
            // handler's place is a place in the event order, and it runs
            // there alone.
            let (order, _) = self.run_handler_alone(pid, process, |r| Ok(r.log.stamp_event()))?;
            self.emit_signal(pid, sig, SignalPoint::WhileWaiting(order), siginfo)?;
            return self.resume(pid, Resume::Run(sig, "deliver signal"));
        }
        if in_untrapped_call && !was_injected && regs.regs.rip == FAST_SITE_END {
            // Blocked in a buffered call (the fast path), with no handler
            // to run: the kernel restarts the call, which returns after
            // the signal, as a trapped call would; replay, which traps it,
            // delivers the signal at its entry.
            self.emit_signal(pid, sig, SignalPoint::SyscallEntry, siginfo)?;
            return self.resume(pid, Resume::Run(sig, "deliver signal"));
        }
        if in_untrapped_call || was_injected {
            // Blocked in a call that runs untrapped (a futex wait), or a
            // held signal the program had blocked until now: deliver here;
            // replay delivers it after the same elapsed time.
            let last_return = self
                .threads
                .get(&pid)
                .map_or_else(Instant::now, |t| t.last_return);
            let elapsed = Instant::now().duration_since(last_return).as_nanos() as u64;
            self.emit_signal(pid, sig, SignalPoint::Elapsed(elapsed), siginfo)?;
            return self.resume(pid, Resume::Run(sig, "deliver signal"));
        }
        // Running its own code (or the shim's, in a buffered call that is
        // not blocked in the kernel): hold the signal back to the thread's
        // next syscall, where replay can deliver it at the same point.
        if let Some(t) = self.threads.get_mut(&pid) {
            t.signals.hold(sig, siginfo, Instant::now());
        }
        self.note_held_signals(pid);
        self.resume(
            pid,
            Resume::Run(0, "hold a signal back to the next syscall"),
        )
    }

    /// A signal that interrupted a trapped call (its exit showed
    /// ERESTART* with `code`): the call is restarted after it, or returns
    /// EINTR, as the kernel decides from the disposition.
    fn signal_in_interrupted_call(
        &mut self,
        pid: Pid,
        sig: i32,
        siginfo: Vec<u8>,
        process: ProcessId,
        call: InFlight,
        code: i64,
    ) -> Result<()> {
        let disposition = self
            .dispositions
            .get(&process)
            .map(|d| d.get(sig))
            .unwrap_or_default();
        let handler = matches!(disposition, Disposition::Handler { .. });
        if restarts(code, disposition) {
            if -code == 516 {
                if let Some(t) = self.threads.get_mut(&pid) {
                    t.restart_block = Some((call.nr, call.args));
                }
            }
            let at = if handler {
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
            let alone = if handler {
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
        self.resume(pid, Resume::Run(sig, "deliver signal"))
    }

    fn emit_signal(&mut self, pid: Pid, sig: i32, at: SignalPoint, siginfo: Vec<u8>) -> Result<()> {
        let Some(t) = self.threads.get_mut(&pid) else {
            return Ok(());
        };
        let index = t.count_event();
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
            self.alone
                .begin_handler(process, pid, barrier, Instant::now());
        }
        Ok((order, barrier.is_some()))
    }

    /// See [`Self::run_handler_alone`]: the barrier's name, once the
    /// threads let go just before have settled.
    fn raise_handler_barrier(&mut self, pid: Pid, process: ProcessId) -> Option<u64> {
        if self.alone.holds(process) {
            return None;
        }
        let slot = self.threads.get(&pid).map(|t| t.logical)?;
        // The barrier's own name: a stamp no event carries (replay ranks
        // only the stamps events carry, so it leaves no gap).
        let barrier = self.log.begin_handler(slot);
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

    /// A held signal whose thread made no syscall for DEFER_LIMIT is
    /// delivered where the thread is.
    pub(super) fn release_overdue_signals(&mut self) -> Result<()> {
        let now = Instant::now();
        let overdue: Vec<Pid> = self
            .threads
            .iter()
            .filter(|(_, t)| t.signals.deadline().is_some_and(|d| now >= d))
            .map(|(p, _)| *p)
            .collect();
        for pid in overdue {
            let tgid = self.tgid_of(pid);
            let Some(t) = self.threads.get_mut(&pid) else {
                continue;
            };
            let Some(signal) = t.signals.next_overdue(now) else {
                continue;
            };
            let sig = signal.sig;
            t.signals.queued(signal);
            let thread = t.logical;
            self.note_held_signals(pid);
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
}
