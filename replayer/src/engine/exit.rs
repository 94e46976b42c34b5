//! The exit of a call replay ran for real: its result must agree with
//! the recording (or is replaced by the recorded one); then it returns in
//! order (`returns.rs`).

use nix::unistd::Pid;
use rrc_interposer::model;
use rrc_interposer::{is_restart, SyscallRegs, Tracee, TraceeMemory};
use rrc_trace::{SyscallRecord, ThreadId};

use super::returns::Step;
use super::{diverged, Replayer, Res, Resume};
use crate::divergence::{describe_record, Expected, Need, Observed};
use crate::plan::PlannedEvent;

/// What a thread resumed to its syscall exit is waiting to have checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ExitCheck {
    /// Ran for real: return value and memory must match the recording.
    Executed,
    /// Ran as a placeholder descriptor: the number must match; then the
    /// recorded memory is injected.
    Placeholder,
    /// Ran as a shadow memfd of the file with this recorded device and
    /// inode (`live_files.rs`): checked as a placeholder, then kept.
    Shadow((u64, u64)),
    /// A read of a live file (`live_files.rs`), run for its effect on the
    /// file's position: the program gets the recorded result and bytes
    /// (the file may lack what an emulated call put there, a splice from
    /// a pipe whose data replay never wrote).
    LiveRead,
    /// shmget made replay's own segment: it must exist; the program sees
    /// the recorded id, and replay keeps the pair.
    NewSegment,
    /// mmap of a file turned into anonymous memory: it must land at the
    /// recorded address; then the recorded bytes of the file fill it.
    MappedCopy,
    /// Ran for its effect on the process (clone/fork, setsid, chdir): the
    /// program sees the recorded return value (a child id, a session id).
    ReportRecorded,
    /// mmap of a file's code, run for real as the action says (unchecked):
    /// stopped at its exit only to patch its rdtsc, as the recorder did.
    MappedCode,
    /// recvmsg that received a descriptor (SCM_RIGHTS), run as a
    /// placeholder: it must take this number; then the recorded message
    /// and return value are given to the program.
    ReceivedFd(i32),
}

/// A call running for real, to be checked at its exit.
pub(crate) struct InFlight {
    pub record: SyscallRecord,
    pub args: [u64; 6],
    pub check: ExitCheck,
}

/// A divergence at the exit: the recorded call, with what replay needed
/// of it, and what happened.
fn at_exit<T>(thread: ThreadId, record: &SyscallRecord, need: Need, observed: Observed) -> Res<T> {
    let expected = Expected::Event {
        event: describe_record(record),
        need,
    };
    diverged(thread, expected, observed)
}

impl Replayer {
    /// The exit of a syscall resumed with `PTRACE_SYSCALL`.
    pub(super) fn syscall_exit(&mut self, pid: Pid) -> Res {
        let Some(t) = self.live.get_mut(&pid) else {
            return Ok(self.resume(pid, Resume::Continue(0), "resume")?);
        };
        let Some(call) = t.in_flight.take() else {
            return Ok(self.resume(pid, Resume::Continue(0), "resume")?);
        };
        let thread = t.logical;
        if self.diverged() {
            return Ok(());
        }
        let tracee = Tracee::new(pid);
        let mut regs = tracee.regs("read registers at syscall exit")?;
        let ret = regs.ret();
        if is_restart(ret) && call.record.ret != -(libc::EINTR as i64) {
            // Interrupted by a signal of the replay itself (a real child's
            // SIGCHLD): the kernel restarts it once that signal is
            // suppressed, and the call traps again. Put the event back.
            let thread_plan = &mut self.plan.threads[thread as usize];
            thread_plan
                .events
                .push_front(PlannedEvent::Syscall(Box::new(call.record)));
            return Ok(self.resume(pid, Resume::Continue(0), "resume an interrupted syscall")?);
        }
        self.check_exit(&tracee, thread, &call, &mut regs)?;
        match call.check {
            ExitCheck::Shadow(key) => self.keep_shadow(pid, key, ret),
            ExitCheck::NewSegment => self.keep_segment(call.record.ret, ret),
            _ => {}
        }
        let record = call.record;
        let own_mode = &self.log.header().own_tsc_mode;
        self.rdtsc
            .after_call(pid, record.nr as i64, &call.args, ret, own_mode);
        if record.nr as i64 == libc::SYS_rt_sigprocmask && record.ret == 0 && call.args[1] != 0 {
            self.note_segv_mask(pid);
        }
        self.complete(thread);
        // An accept's descriptor is in place: the order moves past its
        // entry (its return keeps its own place).
        let entry = self.plan.entry_rank.get(&(thread, record.index)).copied();
        self.run_steps(Step::Advance(entry))?;
        let rank = self.plan.return_rank.get(&(thread, record.index)).copied();
        self.return_in_order(pid, rank, record.interval_ns, record.return_ns)
    }

    /// Checks the call's result against the recording, and gives the
    /// program the recorded one where replay made another call.
    fn check_exit(
        &self,
        tracee: &Tracee,
        thread: ThreadId,
        call: &InFlight,
        regs: &mut SyscallRegs,
    ) -> Res {
        let ret = regs.ret();
        let record = &call.record;
        let interrupted_as_recorded = is_restart(ret) && record.ret == -(libc::EINTR as i64);
        match call.check {
            ExitCheck::Executed if interrupted_as_recorded => {}
            ExitCheck::Executed | ExitCheck::Placeholder | ExitCheck::Shadow(_)
                if ret != record.ret =>
            {
                return at_exit(thread, record, Need::Itself, Observed::Returned(ret));
            }
            ExitCheck::Executed => {
                let regions = model::outputs(record.nr as i64, &call.args, ret, tracee)?;
                let now: Vec<Vec<u8>> = regions
                    .iter()
                    .map(|r| tracee.read(r.addr, r.len).unwrap_or_default())
                    .collect();
                if now != record.outputs {
                    let observed = Observed::Text("different results in memory".into());
                    return at_exit(thread, record, Need::Itself, observed);
                }
            }
            ExitCheck::Placeholder | ExitCheck::Shadow(_) => {
                self.inject_outputs(tracee, record, &call.args)?
            }
            ExitCheck::MappedCopy if ret != record.ret => {
                let observed = Observed::ReturnedAddress(ret);
                return at_exit(thread, record, Need::MappedCopy, observed);
            }
            ExitCheck::MappedCopy => {
                if let Some(bytes) = record.outputs.first() {
                    tracee.write(ret as u64, bytes)?;
                }
            }
            ExitCheck::ReceivedFd(fd) if ret != i64::from(fd) => {
                let observed = Observed::PlaceholderTook(ret);
                return at_exit(thread, record, Need::ReceivingFd(fd), observed);
            }
            ExitCheck::ReceivedFd(_) => {
                self.inject_outputs(tracee, record, &call.args)?;
                regs.regs.rax = record.ret as u64;
                tracee.set_regs(regs, "give recvmsg its recorded result")?;
            }
            ExitCheck::NewSegment if ret < 0 => {
                return at_exit(thread, record, Need::Itself, Observed::Returned(ret));
            }
            ExitCheck::LiveRead => {
                self.inject_outputs(tracee, record, &call.args)?;
                regs.regs.rax = record.ret as u64;
                tracee.set_regs(regs, "give a live read its recorded result")?;
            }
            ExitCheck::NewSegment | ExitCheck::ReportRecorded => {
                regs.regs.rax = record.ret as u64;
                tracee.set_regs(regs, "report the recorded result")?;
            }
            ExitCheck::MappedCode => {}
        }
        Ok(())
    }
}
