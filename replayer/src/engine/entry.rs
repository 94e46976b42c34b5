//! A trapped syscall's entry: matched against the thread's next recorded
//! event, held until its turn when it must wait, then replayed
//! (`emulate.rs`). A recorded signal due at this entry is delivered here.

use nix::unistd::Pid;
use rrc_interposer::model;
use rrc_interposer::{SyscallRegs, Tracee};
use rrc_trace::{RecordedInput, SignalPoint, SignalRecord, SyscallRecord, ThreadId};

use super::emulate::runs_in_recorded_order;
use super::holds::Hold;
use super::returns::Step;
use super::signals::signal_blocked;
use super::{diverged, Halt, Replayer, Res, Resume};
use crate::divergence::{
    describe_call, describe_event, describe_record, digest_difference, first_difference, Expected,
    Need, Observed,
};
use crate::plan::PlannedEvent;

impl Replayer {
    /// A `SECCOMP_RET_TRACE` stop: the thread is entering a trapped call.
    /// `opened`: an open's inputs if the driver read them at this stop (a
    /// thread let go from a hold has its path read again here).
    pub(super) fn seccomp_stop(
        &mut self,
        pid: Pid,
        regs: SyscallRegs,
        opened: Option<Vec<Vec<u8>>>,
    ) -> Res {
        if self.diverged() {
            return Ok(());
        }
        let nr = regs.nr();
        self.end_handler_alone(pid)?;
        if model::marks_handler_end(nr) {
            return Ok(self.resume(pid, Resume::Continue(0), "resume into rt_sigreturn")?);
        }
        let Some(thread) = self.live.get(&pid).map(|t| t.logical) else {
            return Err(Halt::Failed(anyhow::anyhow!(
                "seccomp stop of unknown tid {pid}"
            )));
        };
        let tracee = Tracee::new(pid);
        let opened = opened.or_else(|| model::open_inputs(&tracee, nr, &regs.args()));
        if opened.as_deref().is_some_and(model::opens_read_once_file) {
            // Answered by rrc in both runs, in whichever thread (not an
            // event: see READ_ONCE_BY_LIBC).
            let mut regs = regs;
            tracee.skip_syscall(&mut regs, -(libc::ENOENT as i64))?;
            return Ok(self.resume(pid, Resume::Continue(0), "resume past a read-once file")?);
        }
        let plan = &self.plan.threads[thread as usize];
        if nr == libc::SYS_restart_syscall
            && !matches!(plan.events.front(), Some(PlannedEvent::Syscall(r)) if r.nr as i64 == nr)
        {
            // The kernel continuing an untraced call (a futex wait with a
            // timeout, in the program or the shim) after a signal that
            // replay held back: not an event, as it was not when recorded.
            return Ok(self.resume(
                pid,
                Resume::Continue(0),
                "resume an untraced call's restart",
            )?);
        }
        if let Some(sig) = self.fatal_last_signal(thread) {
            if !self.process_may_exit(thread) {
                self.hold(
                    pid,
                    Hold::FatalSignal {
                        sig,
                        at_entry: true,
                    },
                );
                return Ok(());
            }
            return self.deliver_fatal(pid, sig, true);
        }
        if let Some(rank) = self.signal_turn_ahead(thread) {
            // Woken sooner than when recorded: it waits here for the
            // signal's place in the order.
            self.hold(pid, Hold::SignalTurn(rank));
            return Ok(());
        }
        self.match_entry(pid, thread, regs, opened)
    }

    /// The rank of the thread's next event, a signal delivered while it
    /// waited when recorded, if the order has yet to get there.
    fn signal_turn_ahead(&self, thread: ThreadId) -> Option<u64> {
        let Some(PlannedEvent::Signal(s)) = self.plan.threads[thread as usize].events.front()
        else {
            return None;
        };
        if !matches!(s.at, SignalPoint::WhileWaiting(_)) || !self.order.enabled() {
            return None;
        }
        let rank = self.plan.return_rank.get(&(thread, s.index)).copied()?;
        (!self.rank_reached(rank)).then_some(rank)
    }

    /// Matches the call against the thread's next event; replays it, or
    /// holds it until its turn.
    /// `inputs`: the call's inputs if they were read already.
    fn match_entry(
        &mut self,
        pid: Pid,
        thread: ThreadId,
        regs: SyscallRegs,
        inputs: Option<Vec<Vec<u8>>>,
    ) -> Res {
        let (nr, args) = (regs.nr(), regs.args());
        let inputs = inputs.unwrap_or_else(|| model::read_inputs(&Tracee::new(pid), nr, &args));
        let call = || describe_call(nr, &args, &inputs);
        let record = match self.plan.threads[thread as usize].events.front() {
            Some(PlannedEvent::Syscall(r)) => r,
            Some(PlannedEvent::Signal(s))
                if matches!(
                    s.at,
                    SignalPoint::SyscallEntry
                        | SignalPoint::Elapsed(_)
                        | SignalPoint::WhileWaiting(_)
                        | SignalPoint::AfterReturn(_)
                ) =>
            {
                let s = s.clone();
                return self.signal_at_entry(pid, thread, regs, &s, call());
            }
            Some(other) => {
                let expected = Expected::Next(Some(describe_event(other)));
                let observed = Observed::Call {
                    call: call(),
                    differs: None,
                };
                return diverged(thread, expected, observed);
            }
            None => {
                // It was blocked in this call when the recording ended (or
                // the program has gone somewhere new; the end decides).
                if super::debug_on() {
                    super::debug_log(format_args!("past end: t{thread} at {}", call()));
                }
                self.hold(pid, Hold::PastEnd);
                return Ok(());
            }
        };
        if let Some(mismatch) = self.mismatch(record, nr, &args, &inputs) {
            let expected = Expected::Event {
                event: describe_record(record),
                need: Need::Itself,
            };
            let observed = Observed::Call {
                call: call(),
                differs: Some(mismatch),
            };
            return diverged(thread, expected, observed);
        }
        self.enter(pid, thread, regs)
    }

    /// The thread's matched call goes in: past its entry's place, if it
    /// has one, then through what else it must wait for, then replayed.
    /// Also where a thread held for its entry's place comes back to.
    pub(super) fn enter(&mut self, pid: Pid, thread: ThreadId, regs: SyscallRegs) -> Res {
        if let Some(entry) = self.entry_turn(thread, regs.nr(), &regs.args()) {
            if !self.rank_reached(entry) {
                self.hold(pid, Hold::RunTurn(entry));
                return Ok(());
            }
            self.run_steps(Step::Advance(Some(entry)))?;
        }
        let Some(PlannedEvent::Syscall(record)) = self.plan.threads[thread as usize].events.front()
        else {
            return Ok(());
        };
        match self.entry_hold(thread, record, regs.nr(), &regs.args()) {
            Some(hold) => {
                self.hold(pid, hold);
                Ok(())
            }
            None => self.dispatch(pid, thread, regs),
        }
    }

    /// The live tgid of another process of the program that a SIGKILL
    /// sent by this call ends (kill or tgkill that succeeded when
    /// recorded; not a process group).
    fn killed_process(
        &self,
        thread: ThreadId,
        record: &SyscallRecord,
        nr: i64,
        args: &[u64; 6],
    ) -> Option<i32> {
        let (target, sig) = match nr {
            libc::SYS_kill => (args[0] as i32, args[1]),
            libc::SYS_tgkill => (args[0] as i32, args[2]),
            _ => return None,
        };
        if sig != libc::SIGKILL as u64 || target <= 0 || record.ret != 0 {
            return None;
        }
        let live = self.live_process_id(target as u32 as u64) as i32;
        let own = self
            .live
            .values()
            .find(|t| t.logical == thread)?
            .tgid
            .as_raw();
        let ours = self.live.values().any(|t| t.tgid.as_raw() == live);
        (live != own && ours).then_some(live)
    }

    /// What a matched call must wait for at its entry, if anything.
    fn entry_hold(
        &self,
        thread: ThreadId,
        record: &SyscallRecord,
        nr: i64,
        args: &[u64; 6],
    ) -> Option<Hold> {
        // A call that ends its process (exit_group, a SIGKILL the thread
        // sends itself) never returned when recorded, and execve ends the
        // process's other threads: it waits until they have replayed
        // everything they did.
        let ends_other_threads = matches!(nr, libc::SYS_execve | libc::SYS_execveat);
        if (record.order == rrc_trace::NO_ORDER || ends_other_threads)
            && !self.process_may_exit(thread)
        {
            return Some(Hold::ProcessExit);
        }
        if let Some(child) = super::holds::reported_child_end(record) {
            let live = self.live_process_id(child as u32 as u64) as i32;
            if !self.hold_over(thread, Hold::ChildEnd(live)) {
                return Some(Hold::ChildEnd(live));
            }
        }
        if let Some(tgid) = self.killed_process(thread, record, nr, args) {
            let hold = Hold::KillTarget {
                tgid,
                since: std::time::Instant::now(),
                rank: self.plan.return_rank.get(&(thread, record.index)).copied(),
            };
            if !self.hold_over(thread, hold) {
                return Some(hold);
            }
        }
        if self.order.enabled() && runs_in_recorded_order(record, nr, args) {
            let key = (thread, record.index);
            let entry = self.plan.entry_rank.get(&key);
            if let Some(&rank) = entry.or_else(|| self.plan.return_rank.get(&key)) {
                if !self.rank_reached(rank) {
                    return Some(Hold::RunTurn(rank));
                }
            }
        }
        None
    }

    /// The entry's place of the thread's next call, one replay answers (a
    /// sleep, a wait for a child: see `SyscallExtra::EnteredAt`). Waited
    /// for before any other hold, and the order moves past it as soon as
    /// it is reached: a wait for a child holds its thread until the child
    /// has ended, and the child's events after this entry must not wait
    /// for the parent. (A call that runs in recorded order waits for its
    /// entry's place in `entry_hold`, and passes it once it has run.)
    pub(super) fn entry_turn(&self, thread: ThreadId, nr: i64, args: &[u64; 6]) -> Option<u64> {
        let Some(PlannedEvent::Syscall(record)) = self.plan.threads[thread as usize].events.front()
        else {
            return None;
        };
        if !self.order.enabled() || runs_in_recorded_order(record, nr, args) {
            return None;
        }
        self.plan.entry_rank.get(&(thread, record.index)).copied()
    }

    /// The thread's next event is a signal delivered at this call's entry
    /// when recorded (or it arrived by time and the thread got here
    /// first): deliver it now; the call runs again after the handler.
    fn signal_at_entry(
        &mut self,
        pid: Pid,
        thread: ThreadId,
        mut regs: SyscallRegs,
        s: &SignalRecord,
        call: String,
    ) -> Res {
        let tracee = Tracee::new(pid);
        let sig = s.signo;
        let queued = self
            .live
            .get(&pid)
            .is_some_and(|t| t.injecting == Some(sig));
        if queued && matches!(s.at, SignalPoint::WhileWaiting(_)) && !signal_blocked(pid, sig) {
            // Queued while it waited in a futex, which it left for this
            // call before the signal landed: it lands as the call is
            // skipped here, and the call runs again after.
            tracee.rewind_syscall(&mut regs)?;
            return Ok(self.resume(pid, Resume::Continue(0), "resume to take a queued signal")?);
        }
        if queued {
            // Queued at this boundary and still not delivered: the thread
            // has it blocked here, where the recording delivered it.
            let expected = Expected::Event {
                event: describe_event(&PlannedEvent::Signal(s.clone())),
                need: Need::SignalFirst,
            };
            return diverged(thread, expected, Observed::CallWithSignalBlocked(call));
        }
        tracee.rewind_syscall(&mut regs)?;
        self.inject(pid, sig)?;
        Ok(self.resume(
            pid,
            Resume::Continue(0),
            "resume to deliver a recorded signal",
        )?)
    }

    /// How the call differs from the recorded one, if it does.
    fn mismatch(
        &self,
        r: &SyscallRecord,
        nr: i64,
        args: &[u64; 6],
        inputs: &[Vec<u8>],
    ) -> Option<String> {
        // Compared in the trace's width: a call number that is not one
        // (`syscall(-1)`) is stored in 32 bits.
        if r.nr != nr as u32 {
            return Some("a different syscall".into());
        }
        let mask = model::compared_args_of(nr, args);
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
        for (rec, now) in r.recorded_inputs().zip(inputs) {
            // Bytes sent from another descriptor (sendfile, splice...),
            // compared only where replay can read them again: not when
            // none were sent, nor from a descriptor replay could not
            // reopen (nothing to read), nor from its position, which
            // replay does not move (reads and seeks are emulated).
            let unreadable = model::sends_from_descriptor(nr)
                && (r.ret <= 0 || now.is_empty() || model::sent_from_position(nr, args));
            if unreadable || rec.matches(now) {
                continue;
            }
            match rec {
                RecordedInput::Bytes(rec) => {
                    if !(rec == self.shim_recorded && now == &self.shim_now)
                        && rec != self.with_recorded_tids(now)
                    {
                        return Some(format!("data differs {}", first_difference(rec, now)));
                    }
                }
                RecordedInput::Digest(d) => {
                    return Some(format!("data differs{}", digest_difference(&d, now)))
                }
                RecordedInput::Malformed => {
                    return Some("data the trace keeps as a damaged digest".into())
                }
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
}
