//! Recorded signals: delivering each where it was delivered when
//! recorded (at a syscall's entry or return, by elapsed time, at its
//! place in the event order), holding a process-ending one until the
//! process's other threads are done, and letting a thread go on after
//! one of its events.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nix::unistd::Pid;
use rrc_interposer::{kills_by_default, Tracee};
use rrc_trace::{SignalPoint, ThreadId};

use super::holds::Hold;
use super::order::blocked_in_futex;
use super::pacing::Timed;
use super::threads::ThreadState;
use super::{diverged, Replayer, Res, Resume};
use crate::divergence::{describe_event, Expected, Observed};
use crate::plan::PlannedEvent;

/// How long, at most, a signal handler that ran alone when recorded waits
/// for the process's other threads to reach their next event (the
/// recorder waits as long).
const HANDLER_SETTLE_LIMIT: Duration = Duration::from_millis(10);

/// Whether `sig` is in the thread's blocked mask (from /proc; unreadable
/// counts as blocked, which reports rather than retries).
pub(crate) fn signal_blocked(pid: Pid, sig: i32) -> bool {
    signal_mask(pid, "SigBlk:").is_none_or(|mask| mask & (1u64 << (sig - 1)) != 0)
}

/// Whether `pid`'s process has a handler for `sig`, or ignores it (then it
/// does not end the process).
pub(crate) fn signal_handled(pid: Pid, sig: i32) -> bool {
    let bit = 1u64 << (sig - 1);
    ["SigCgt:", "SigIgn:"]
        .iter()
        .any(|field| signal_mask(pid, field).is_some_and(|mask| mask & bit != 0))
}

/// A signal mask from `/proc/PID/status`.
fn signal_mask(pid: Pid, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
}

/// How many of a thread's loaded events `publish_next_call` looks at.
const NEXT_CALL_LOOKAHEAD: usize = 64;

impl Replayer {
    /// Tells the shim the rank of the thread's next recorded call that
    /// traps (see `SyncRing::next_call_rank`), as the thread goes on
    /// toward it: the calls it answers in-process before that one it
    /// bounds by what it was fed, and this one stays ahead of the thread
    /// until the thread stops at it.
    fn publish_next_call(&self, thread: ThreadId) {
        let plan = &self.plan;
        let mut index = None;
        if let Some(p) = plan.threads.get(thread as usize) {
            // At every let-go, so only a short look ahead: past it, the
            // shim goes by what it was fed.
            for event in p.events.loaded().take(NEXT_CALL_LOOKAHEAD) {
                match event {
                    // One the shim may answer (see `fed_call`): no stop.
                    PlannedEvent::Syscall(s)
                        if self.in_process
                            && rrc_synclog::syscallbuf::FAST_CALLS.contains(&i64::from(s.nr))
                            && matches!(
                                s.extra,
                                rrc_trace::SyscallExtra::None | rrc_trace::SyscallExtra::Buffered
                            ) => {}
                    PlannedEvent::Syscall(s) => {
                        index = Some(s.index);
                        break;
                    }
                    PlannedEvent::Tsc(x) => {
                        index = Some(x.index);
                        break;
                    }
                    PlannedEvent::Signal(_) => break,
                }
            }
        }
        let rank = index.and_then(|i| plan.return_rank.get(&(thread, i)).copied());
        let none_left = plan
            .threads
            .get(thread as usize)
            .is_some_and(|p| p.events.is_empty());
        if let Some(ring) = self.log.ring(thread) {
            let word = match rank {
                _ if none_left => rrc_synclog::NO_CALLS_LEFT,
                Some(r) => r.saturating_add(1),
                None => 0,
            };
            ring.next_call_rank.store(word, Ordering::Release);
        }
    }

    /// A signal about to be delivered to a followed thread.
    pub(super) fn signal_stop(&mut self, pid: Pid, sig: i32) -> Res {
        let Some(t) = self.live.get(&pid) else {
            return Ok(());
        };
        let thread = t.logical;
        let injected = t.injecting == Some(sig);
        if self.diverged() {
            return Ok(());
        }
        let tracee = Tracee::new(pid);
        let code = rrc_interposer::signal_info(pid).map_or(0, |si| si.si_code);
        // An rdtsc the program asked to fault on (PR_TSC_SIGSEGV) was
        // recorded as its SIGSEGV, not as a value.
        let program_fault = matches!(
            self.plan.threads[thread as usize].events.front(),
            Some(PlannedEvent::Signal(s)) if s.signo == sig && s.at == SignalPoint::Synchronous
        );
        if rrc_interposer::may_be_tsc_fault(sig, code) && !program_fault {
            let mut regs = tracee.regs("read registers at rdtsc fault")?;
            if let Some(insn) = tracee.tsc_instruction_at(regs.regs.rip) {
                return self.replay_tsc(pid, thread, &mut regs, insn);
            }
        }
        let plan = &self.plan.threads[thread as usize];
        let front = match plan.events.front() {
            Some(PlannedEvent::Signal(s)) if s.signo == sig => Some(s.clone()),
            _ => None,
        };
        match front {
            Some(s)
                if !injected
                    && s.at == SignalPoint::Synchronous
                    && self.ending_signal(thread, false) == Some(sig)
                    && !self.process_may_exit(thread) =>
            {
                // Its last event ends the process: the others first.
                self.hold(pid, Hold::Fault(sig));
                Ok(())
            }
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
                    SignalPoint::WhileWaiting(_) | SignalPoint::AfterReturn(_) => {
                        self.plan.return_rank.get(&(thread, s.index)).copied()
                    }
                    _ => None,
                };
                self.let_go(pid, sig)?;
                if let Some(rank) = ranked {
                    // Its handler runs alone, as when recorded.
                    if self.order.enabled() && self.rank_is_now(rank) {
                        if let Some(t) = self.live.get_mut(&pid) {
                            t.handler_alone = Some(rank);
                        }
                    } else if !self.log.rank_passed(rank) {
                        self.order.went_early(rank);
                    }
                }
                Ok(())
            }
            _ if rrc_interposer::is_fault(sig, code)
                || (sig == libc::SIGSEGV && code == libc::SI_KERNEL)
                || injected =>
            {
                let next = plan.events.front().map(describe_event);
                diverged(thread, Expected::Next(next), Observed::Signal(sig))
            }
            // A real signal of the replay itself (a real child's SIGCHLD,
            // a stray kill): the program gets the recorded ones only.
            _ => Ok(self.resume_on(pid)?),
        }
    }

    /// Resumes a thread after one of its events, first arranging the
    /// delivery of the next one if it is a recorded asynchronous signal.
    pub(super) fn let_go(&mut self, pid: Pid, signal: i32) -> Res {
        let Some(t) = self.live.get(&pid) else {
            return Ok(self.resume(pid, Resume::Continue(signal), "resume")?);
        };
        self.publish_next_call(t.logical);
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
            Some((
                _,
                SignalPoint::SyscallReturn
                    | SignalPoint::InterruptedCall
                    | SignalPoint::AfterReturn(_)
            ))
        );
        if signal == 0 && at_return {
            if let Some(sig) = self.fatal_last_signal(logical) {
                if !self.process_may_exit(logical) {
                    // Stays stopped where it is until the others are done.
                    self.hold(
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
            Some((sig, SignalPoint::AfterReturn(_))) => {
                // Kept after its return until the handler's place (see
                // `late_return_rank`); the others reach their next event
                // first, as the recorder let them.
                self.let_others_settle(pid);
                self.inject(pid, sig)?
            }
            Some((sig, SignalPoint::Elapsed(ns))) => {
                // Recorded as the time since the thread's last syscall
                // returned: several signals to a thread that makes no call
                // between them (a timer against a busy loop) count from
                // the first one's start, not each from the one before it.
                let now = Instant::now();
                let base = self
                    .live
                    .get_mut(&pid)
                    .map_or(now, |t| *t.elapsed_base.get_or_insert(now));
                let at = (base + Duration::from_nanos(ns)).max(now);
                self.pacing.push(at, pid, Timed::Signal { sig });
            }
            // Without the event order there is no place to wait for.
            Some((sig, SignalPoint::WhileWaiting(_))) if !self.order.enabled() => {
                self.inject(pid, sig)?
            }
            _ => {}
        }
        Ok(self.resume(pid, Resume::Continue(signal), "resume")?)
    }

    /// Queues a recorded signal for a thread; its delivery stop is then
    /// recognised as ours.
    pub(super) fn inject(&mut self, pid: Pid, sig: i32) -> rrc_interposer::Result<()> {
        let Some(t) = self.live.get_mut(&pid) else {
            return Ok(());
        };
        if t.injecting.is_some() {
            return Ok(());
        }
        t.injecting = Some(sig);
        let (logical, process, tgid) = (t.logical, t.process, t.tgid);
        if self.fatal_last_signal(logical) == Some(sig) {
            self.ending.insert(process);
        }
        Tracee::new(pid).queue_signal(tgid, sig)
    }

    /// The asynchronous signal that ends the process, if it is the
    /// thread's last recorded event.
    pub(super) fn fatal_last_signal(&self, thread: ThreadId) -> Option<i32> {
        self.ending_signal(thread, true)
    }

    /// The signal that ends the process, asynchronous or the thread's own
    /// (a fault, `abort`'s), if it is the thread's last recorded event.
    fn ending_signal(&self, thread: ThreadId, asynchronous: bool) -> Option<i32> {
        let events = &self.plan.threads[thread as usize].events;
        let sig = match events.front() {
            Some(PlannedEvent::Signal(s))
                if events.len() == 1
                    && s.asynchronous == asynchronous
                    && kills_by_default(s.signo) =>
            {
                s.signo
            }
            _ => return None,
        };
        // A program with a handler for it (a server's SIGTERM that sets a
        // stop flag) goes on after it: the handler runs where recorded.
        let pid = self
            .live
            .iter()
            .find(|(_, t)| t.logical == thread)
            .map(|(pid, _)| *pid)?;
        (!signal_handled(pid, sig)).then_some(sig)
    }

    /// Delivers a held process-ending fault (see `Hold::Fault`), at the
    /// signal stop where it was held.
    pub(super) fn deliver_fault(&mut self, pid: Pid, thread: ThreadId, sig: i32) -> Res {
        let plan = &mut self.plan.threads[thread as usize];
        plan.events.pop_front();
        plan.done += 1;
        self.let_go(pid, sig)
    }

    /// Delivers the process-ending signal to a thread stopped at a
    /// syscall's entry (which is skipped) or exit.
    pub(super) fn deliver_fatal(&mut self, pid: Pid, sig: i32, at_entry: bool) -> Res {
        let tracee = Tracee::new(pid);
        if at_entry {
            let mut regs = tracee.regs("read registers to deliver a fatal signal")?;
            tracee.rewind_syscall(&mut regs)?;
        }
        self.inject(pid, sig)?;
        Ok(self.resume(pid, Resume::Continue(0), "resume to take a fatal signal")?)
    }

    /// The earliest signal due at a place in the event order (delivered
    /// while its thread waited in a futex when recorded) whose thread is
    /// live: its rank, thread and signal.
    pub(super) fn next_ranked_signal(&self) -> Option<(u64, Pid, i32)> {
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
    pub(super) fn deliver_ranked_signal(&mut self) -> Res {
        if !self.order.enabled() {
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
            || matches!(t.state, ThreadState::Held(_))
            || t.handler_alone.is_some()
            || Self::return_pending(t)
            || !blocked_in_futex(pid)
        {
            return Ok(());
        }
        self.let_others_settle(pid);
        Ok(self.inject(pid, sig)?)
    }

    /// Waits (briefly) for the other threads of `pid`'s process that
    /// returned recently to reach their next event, as the recorder did
    /// before a handler that ran alone.
    pub(super) fn let_others_settle(&self, pid: Pid) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_control_and_harmless_signals_do_not_end_the_process() {
        for sig in [libc::SIGCHLD, libc::SIGCONT, libc::SIGWINCH, libc::SIGSTOP] {
            assert!(!kills_by_default(sig), "{sig}");
        }
        for sig in [libc::SIGTERM, libc::SIGKILL, libc::SIGUSR1, libc::SIGALRM] {
            assert!(kills_by_default(sig), "{sig}");
        }
    }

    extern "C" fn ignore_it(_: libc::c_int) {}

    #[test]
    fn a_signal_with_a_handler_or_ignored_does_not_end_the_process() {
        let me = nix::unistd::getpid();
        // SAFETY: a handler that does nothing, for a signal the test
        // process never gets; SIGXFSZ is set to be ignored.
        unsafe {
            libc::signal(libc::SIGUSR2, ignore_it as *const () as libc::sighandler_t);
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        }
        assert!(signal_handled(me, libc::SIGUSR2));
        assert!(signal_handled(me, libc::SIGXFSZ));
        assert!(!signal_handled(me, libc::SIGVTALRM));
    }
}
