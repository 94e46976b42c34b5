//! Replaying a matched call: by the action the syscall model gives it,
//! emulated (skipped, with the recorded result and memory), run for real
//! (checked at its exit), or turned into another call; and rdtsc.

use std::time::Duration;

use nix::unistd::Pid;
use rrc_interposer::model::{self, ReplayAction};
use rrc_interposer::{SyscallRegs, Tracee, TraceeMemory, TscInstruction};
use rrc_trace::{SyscallExtra, SyscallRecord, ThreadId};

use super::exit::{ExitCheck, InFlight};
use super::live_files;
use super::{diverged, Replayer, Res, Resume};
use crate::divergence::{describe_event, describe_record, Expected, Need, Observed};
use crate::plan::PlannedEvent;

/// How long a fork waits, at its rank, before it copies memory (see
/// `dispatch`).
const FORK_SETTLE: Duration = Duration::from_micros(300);

impl Replayer {
    /// Replays the thread's front event, known to match the call at `regs`.
    pub(super) fn dispatch(&mut self, pid: Pid, thread: ThreadId, mut regs: SyscallRegs) -> Res {
        let (nr, args) = (regs.nr(), regs.args());
        let Some(PlannedEvent::Syscall(record)) =
            self.plan.threads[thread as usize].events.pop_front()
        else {
            return Ok(());
        };
        let record = *record;
        if record.ret == -(libc::EINTR as i64) && swaps_signal_mask(nr, &args) {
            // It swaps in a signal mask and waits: run it for real with the
            // recorded signal already queued, so the mask it installs is
            // the one the handler runs under (and one the program blocks
            // outside the call, as a SIGCHLD around ppoll, gets through).
            // ppoll and its kind only when that matters: run for real,
            // their descriptors may be ready in replay.
            let next = match self.plan.threads[thread as usize].events.front() {
                Some(PlannedEvent::Signal(s)) => Some(s.signo),
                _ => None,
            };
            let run = nr == libc::SYS_rt_sigsuspend
                || next.is_some_and(|sig| super::signals::signal_blocked(pid, sig));
            if run {
                if let Some(sig) = next {
                    self.inject(pid, sig)?;
                }
                return self.run_to_exit(pid, record, args, ExitCheck::Executed);
            }
        }
        if let Some(done) = self.rdtsc_prctl(pid, thread, &mut regs, &record) {
            return done;
        }
        let action = match action_for(&record, nr, &args) {
            // The program's own data, in a file replay keeps live.
            ReplayAction::Emulate
                if live_files::runs_live(nr, &args) && live_files::fd_is_live(pid, args[0]) =>
            {
                if live_files::only_reads(nr) {
                    return self.run_to_exit(pid, record, args, ExitCheck::LiveRead);
                }
                ReplayAction::ExecuteChecked
            }
            action => action,
        };
        match action {
            ReplayAction::Emulate if !super::descriptors::received_fds(&record).is_empty() => {
                self.receive_placeholder_fd(pid, &mut regs, record, args)
            }
            ReplayAction::Emulate => self.emulate(pid, thread, &mut regs, record),
            ReplayAction::Execute | ReplayAction::ExitGroup => {
                self.execute(pid, thread, &mut regs, record, action)
            }
            ReplayAction::Open => {
                if let Some(key) = live_files::shadowed(&self.shadows, &record) {
                    self.reopen_shadow(pid, &mut regs, record, args, key)
                } else if self.may_reopen(pid, &record, &args)
                    || live_files::opens_own_memory(&record)
                {
                    self.run_to_exit(pid, record, args, ExitCheck::Executed)
                } else if let Some(name) = live_files::shadow_name(&record, &args) {
                    self.make_shadow(pid, &mut regs, record, args, name)
                } else {
                    self.make_placeholder(pid, &mut regs, record, args)
                }
            }
            ReplayAction::Placeholder => self.make_placeholder(pid, &mut regs, record, args),
            ReplayAction::ExecuteChecked | ReplayAction::Exec => {
                self.run_to_exit(pid, record, args, ExitCheck::Executed)
            }
            ReplayAction::Spawn => {
                if model::snapshots_memory(nr, &args) {
                    // At its rank: the thread whose lock operation came
                    // just before may have been preempted by our wake-up
                    // before it ran its critical section, which the child
                    // must copy. Forks are rare; give it the CPU briefly.
                    std::thread::sleep(FORK_SETTLE);
                }
                self.run_to_exit(pid, record, args, ExitCheck::ReportRecorded)
            }
            ReplayAction::SignalSend => self.send_signal(pid, thread, &mut regs, record),
            ReplayAction::OnProcess => self.act_on_process(pid, thread, &mut regs, record),
            ReplayAction::ProcessGroup => {
                let mut live_args = args;
                if nr == libc::SYS_setpgid {
                    live_args[0] = self.live_process_id(args[0]);
                    live_args[1] = self.live_process_id(args[1]);
                }
                regs.set_args(&live_args);
                Tracee::new(pid).set_regs(&regs, "map ids of a process group call")?;
                // setsid returns the live session id: the program sees the
                // recorded one.
                self.run_to_exit(pid, record, args, ExitCheck::ReportRecorded)
            }
            ReplayAction::Apply | ReplayAction::ChangeDirectory | ReplayAction::TidAddress => {
                self.run_to_exit(pid, record, args, ExitCheck::ReportRecorded)
            }
            ReplayAction::SharedMemory => self.shared_memory(pid, thread, &mut regs, record),
            ReplayAction::Unsupported => unsupported(thread, &record, nr),
        }
    }

    /// Skips the syscall, giving it the recorded result and memory; a
    /// write to stdout or stderr is printed here, in the recorded order
    /// (`output.rs`), without waiting for earlier ones.
    pub(super) fn emulate(
        &mut self,
        pid: Pid,
        thread: ThreadId,
        regs: &mut SyscallRegs,
        record: SyscallRecord,
    ) -> Res {
        let tracee = Tracee::new(pid);
        let args = regs.args();
        if let Some(missing) = unrecorded_output(&record) {
            let expected = Expected::Event {
                event: describe_record(&record),
                need: Need::RecordedOutput,
            };
            return diverged(thread, expected, Observed::Text(missing));
        }
        self.inject_outputs(&tracee, &record, &args)?;
        regs.regs.orig_rax = u64::MAX; // -1: the kernel skips the call
        regs.regs.rax = record.ret as u64;
        tracee.set_regs(regs, "inject a recorded result")?;
        self.complete(thread);
        let rank = self.plan.return_rank.get(&(thread, record.index)).copied();
        if let SyscallExtra::StdStream(fd) = record.extra {
            let n = usize::try_from(record.ret).unwrap_or(0);
            let data = record
                .inputs
                .first()
                .map_or(&[][..], |d| &d[..n.min(d.len())]);
            let rank = self.plan.output_rank.get(&(thread, record.index)).copied();
            self.put_output(rank, fd as i32, data.to_vec());
        }
        self.return_in_order(pid, rank, record.interval_ns, record.return_ns)
    }

    /// A call that runs as the program made it (exit_group among them).
    fn execute(
        &mut self,
        pid: Pid,
        thread: ThreadId,
        regs: &mut SyscallRegs,
        record: SyscallRecord,
        action: ReplayAction,
    ) -> Res {
        let (nr, args) = (regs.nr(), regs.args());
        if action == ReplayAction::ExitGroup {
            if let Some(t) = self.live.get(&pid) {
                self.ending.insert(t.process);
            }
        }
        let copied = record.outputs.len() == 1 || super::descriptors::maps_dev_zero(&record);
        let live = nr == libc::SYS_mmap && live_files::fd_is_live(pid, args[4]);
        if live && record.ret >= 0 {
            // Mapped for real, so that its pages are the file's.
            self.check_live_mapping(pid, thread, &record, &args)?;
        } else if nr == libc::SYS_mmap && record.ret >= 0 && copied {
            return self.map_recorded_copy(pid, regs, record, args);
        }
        if let (SyscallExtra::MappedFd(recorded), false) = (&record.extra, live) {
            self.check_mapped_file(pid, thread, &record, recorded, args[4])?;
        }
        if rrc_interposer::maps_code_of_a_file(nr, &args, record.ret) {
            // Its rdtsc is patched at its exit (see `exit`).
            return self.run_to_exit(pid, record, args, ExitCheck::MappedCode);
        }
        self.complete(thread);
        if action == ReplayAction::ExitGroup {
            self.let_go(pid, 0)
        } else {
            let rank = self.plan.return_rank.get(&(thread, record.index)).copied();
            self.return_in_order(pid, rank, record.interval_ns, record.return_ns)
        }
    }

    /// kill, tkill, tgkill, rt_sigqueueinfo...: run for real, with the
    /// recorded ids turned into live ones, when every id names the
    /// program's own live process, thread or process group; a signal to
    /// anything else (another process, -1: every process) is not sent
    /// again: the program gets the recorded result.
    fn send_signal(
        &mut self,
        pid: Pid,
        thread: ThreadId,
        regs: &mut SyscallRegs,
        record: SyscallRecord,
    ) -> Res {
        let (nr, args) = (regs.nr(), regs.args());
        let ids: &[usize] = match nr {
            libc::SYS_kill | libc::SYS_tkill | libc::SYS_rt_sigqueueinfo => &[0],
            _ => &[0, 1],
        };
        let mut live_args = args;
        for &i in ids {
            // kill's negative ids are process groups.
            let group = nr == libc::SYS_kill && (args[i] as i32) < 0;
            match self.own_live_id(args[i], group) {
                Some(live) => live_args[i] = live,
                None => return self.emulate(pid, thread, regs, record),
            }
        }
        if record.order == rrc_trace::NO_ORDER {
            // It ended its own process when recorded (SIGKILL): threads
            // still held there are not a deadlock.
            if let Some(t) = self.live.get(&pid) {
                self.ending.insert(t.process);
            }
        }
        self.run_with_live_ids(pid, regs, record, live_args, ExitCheck::Executed)
    }

    /// Runs the call for real with `live_args` (recorded ids mapped to
    /// live ones); the exit is checked against the recorded arguments.
    fn run_with_live_ids(
        &mut self,
        pid: Pid,
        regs: &mut SyscallRegs,
        record: SyscallRecord,
        live_args: [u64; 6],
        check: ExitCheck,
    ) -> Res {
        let args = regs.args();
        regs.set_args(&live_args);
        Tracee::new(pid).set_regs(regs, "map recorded ids to live ones")?;
        self.run_to_exit(pid, record, args, check)
    }

    /// setpriority, sched_setaffinity naming a process: made for real only
    /// on the program's own thread, process or process group (the id
    /// mapped to the live one), else emulated.
    fn act_on_process(
        &mut self,
        pid: Pid,
        thread: ThreadId,
        regs: &mut SyscallRegs,
        record: SyscallRecord,
    ) -> Res {
        let (nr, args) = (regs.nr(), regs.args());
        let (at, group) = match nr {
            libc::SYS_setpriority => (1, args[0] as u32 == libc::PRIO_PGRP),
            _ => (0, false),
        };
        let Some(live) = self.own_live_id(args[at], group) else {
            return self.emulate(pid, thread, regs, record);
        };
        let mut live_args = args;
        live_args[at] = live;
        self.run_with_live_ids(pid, regs, record, live_args, ExitCheck::ReportRecorded)
    }

    /// Writes the recorded memory the call produced into the tracee.
    pub(super) fn inject_outputs(
        &self,
        tracee: &Tracee,
        record: &SyscallRecord,
        args: &[u64; 6],
    ) -> Res {
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
            let expected = Expected::Event {
                event: describe_record(record),
                need: Need::WritingRegions(record.outputs.len()),
            };
            let observed = Observed::Text(format!("{} regions to write", regions.len()));
            return diverged(record.thread, expected, observed);
        }
        for (region, data) in regions.iter().zip(&record.outputs) {
            tracee.write(region.addr, data)?;
        }
        Ok(())
    }

    /// Counts the event as replayed.
    pub(super) fn complete(&mut self, thread: ThreadId) {
        if let Some(p) = self.plan.threads.get_mut(thread as usize) {
            p.done += 1;
        }
    }

    /// Runs the call for real, to be checked at its exit.
    pub(super) fn run_to_exit(
        &mut self,
        pid: Pid,
        record: SyscallRecord,
        args: [u64; 6],
        check: ExitCheck,
    ) -> Res {
        if let Some(t) = self.live.get_mut(&pid) {
            t.in_flight = Some(InFlight {
                record,
                args,
                check,
            });
        }
        Ok(self.resume(pid, Resume::ToExit, "resume to syscall exit")?)
    }

    /// rdtsc or rdtscp trapped (`PR_TSC_SIGSEGV`): give it the recorded
    /// value and let it return like a syscall.
    pub(super) fn replay_tsc(
        &mut self,
        pid: Pid,
        thread: ThreadId,
        regs: &mut SyscallRegs,
        insn: TscInstruction,
    ) -> Res {
        let plan = &mut self.plan.threads[thread as usize];
        if plan.events.front().is_none() {
            // Past its recorded events, like a syscall there: it was
            // killed before it got here (see `Hold::PastEnd`).
            self.hold(pid, super::holds::Hold::PastEnd);
            return Ok(());
        }
        let Some(PlannedEvent::Tsc(r)) = plan.events.front() else {
            let expected = Expected::Next(plan.events.front().map(describe_event));
            let observed = Observed::Instruction(format!("{insn:?}").to_lowercase());
            return diverged(thread, expected, observed);
        };
        let (value, aux, interval, at, index) =
            (r.value, r.aux, r.interval_ns, r.return_ns, r.index);
        let tracee = Tracee::new(pid);
        tracee.complete_tsc(regs, insn, value, aux)?;
        let blocked = self.live.get(&pid).map_or(0, |t| t.segv_blocked);
        tracee.reblock_segv(blocked)?;
        plan.events.pop_front();
        plan.done += 1;
        let rank = self.plan.return_rank.get(&(thread, index)).copied();
        self.return_in_order(pid, rank, interval, at)
    }
}

/// A call rrc recorded only the return value of: replay cannot make it.
fn unsupported(thread: ThreadId, record: &SyscallRecord, nr: i64) -> Res {
    let what = if nr == libc::SYS_ioctl {
        format!(
            "unsupported ioctl request {:#x}",
            model::ioctl_request(record.args[1])
        )
    } else {
        "unsupported syscall".to_string()
    };
    let expected = Expected::Event {
        event: describe_record(record),
        need: Need::Unsupported(what),
    };
    diverged(
        thread,
        expected,
        Observed::Text("replay cannot reproduce it".into()),
    )
}

/// How replay treats this recorded call, made with these arguments.
pub(crate) fn action_for(record: &SyscallRecord, nr: i64, args: &[u64; 6]) -> ReplayAction {
    action_for_as(record, nr, args, running_as_root())
}

/// `action_for`, for a replayer running as root or not.
fn action_for_as(record: &SyscallRecord, nr: i64, args: &[u64; 6], root: bool) -> ReplayAction {
    let action = model::replay_action(nr, args);
    if record.ret == -i64::from(libc::ENOSYS) && action == ReplayAction::Unsupported {
        // A call the kernel does not have (`syscall(-1)`, a number from
        // another kernel) did nothing but fail: it fails again the same way.
        return ReplayAction::Emulate;
    }
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
                | ReplayAction::Apply
        );
    if failed_when_recorded {
        // Fail it the same way, without running it.
        return ReplayAction::Emulate;
    }
    if record.ret == 0 && model::changes_credentials(nr) && root {
        // A process that dropped privileges when recorded drops them again:
        // what it may open, and whether an exec is a set-user-ID one (the
        // loader then runs in secure mode, with other syscalls), follow.
        return ReplayAction::ExecuteChecked;
    }
    action
}

fn running_as_root() -> bool {
    static ROOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    // SAFETY: geteuid has no preconditions and cannot fail.
    *ROOT.get_or_init(|| unsafe { libc::geteuid() == 0 })
}

/// Calls that install a signal mask of their own while they wait.
fn swaps_signal_mask(nr: i64, args: &[u64; 6]) -> bool {
    match nr {
        libc::SYS_rt_sigsuspend => true,
        libc::SYS_ppoll => args[3] != 0,
        libc::SYS_pselect6 => args[5] != 0,
        libc::SYS_epoll_pwait | libc::SYS_epoll_pwait2 => args[4] != 0,
        _ => false,
    }
}

/// Calls whose running (not only returning) must follow the recorded
/// order across threads: those that take or free descriptor numbers, which
/// the recorder ran one at a time, and forks, whose child copies memory
/// as the events ranked before the fork left it (the recorder held later
/// ones back until the copy was made). Nothing else is held at its entry:
/// a held thread may hold locks that the threads before it need.
pub(crate) fn runs_in_recorded_order(record: &SyscallRecord, nr: i64, args: &[u64; 6]) -> bool {
    (model::changes_descriptor_table(nr, args) || model::snapshots_memory(nr, args))
        && action_for(record, nr, args) != ReplayAction::Emulate
}

/// Output to rrc's stdout or stderr whose bytes the recording does not
/// hold in full: splice or tee from a socket, or from a pipe that filled
/// only after the call began (the recorder reads them as the call
/// starts). Printing part of it would be a silent difference.
fn unrecorded_output(record: &SyscallRecord) -> Option<String> {
    let SyscallExtra::StdStream(fd) = record.extra else {
        return None;
    };
    let sent = u64::try_from(record.ret).unwrap_or(0);
    let held = record.inputs.first().map_or(0, |d| d.len() as u64);
    (held < sent).then(|| {
        format!(
            "the recording holds {held} of the {sent} bytes this {} sent to descriptor {fd} \
             (read as the call began: a socket's, or a pipe's that arrived later, are not), \
             so replay cannot print them",
            model::name(i64::from(record.nr))
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(nr: i64, ret: i64, extra: SyscallExtra) -> SyscallRecord {
        SyscallRecord {
            thread: 0,
            index: 0,
            nr: nr as u32,
            args: [0; 6],
            ret,
            inputs: Vec::new(),
            outputs: Vec::new(),
            interval_ns: 0,
            return_ns: 0,
            order: 0,
            extra,
            digested: 0,
        }
    }

    #[test]
    fn a_call_recorded_without_a_model_is_unsupported() {
        let r = record(libc::SYS_read, 3, SyscallExtra::Unknown);
        let args = [0; 6];
        assert_eq!(
            action_for_as(&r, libc::SYS_read, &args, false),
            ReplayAction::Unsupported
        );
    }

    #[test]
    fn a_call_that_failed_when_recorded_fails_again_without_running() {
        let args = [0; 6];
        for nr in [libc::SYS_openat, libc::SYS_socket, libc::SYS_clone] {
            let live = model::replay_action(nr, &args);
            let failed = record(nr, -(libc::ENOENT as i64), SyscallExtra::None);
            assert_eq!(
                action_for_as(&failed, nr, &args, false),
                ReplayAction::Emulate,
                "nr {nr} ({live:?})"
            );
            let ok = record(nr, 3, SyscallExtra::None);
            assert_eq!(action_for_as(&ok, nr, &args, false), live, "nr {nr}");
        }
    }

    #[test]
    fn dropping_privileges_runs_for_real_only_as_root() {
        let args = [1000, 0, 0, 0, 0, 0];
        let r = record(libc::SYS_setuid, 0, SyscallExtra::None);
        let plain = model::replay_action(libc::SYS_setuid, &args);
        assert_eq!(
            action_for_as(&r, libc::SYS_setuid, &args, true),
            ReplayAction::ExecuteChecked
        );
        assert_eq!(action_for_as(&r, libc::SYS_setuid, &args, false), plain);
    }

    #[test]
    fn output_whose_bytes_the_recording_lacks_is_a_divergence_not_a_shorter_print() {
        let mut spliced = record(libc::SYS_splice, 500, SyscallExtra::StdStream(1));
        let why = unrecorded_output(&spliced).expect("none of the 500 bytes held");
        assert!(why.contains("0 of the 500 bytes"), "{why}");
        spliced.inputs = vec![vec![b'x'; 500]];
        assert_eq!(unrecorded_output(&spliced), None);
        let failed = record(
            libc::SYS_splice,
            -(libc::EAGAIN as i64),
            SyscallExtra::StdStream(1),
        );
        assert_eq!(unrecorded_output(&failed), None);
        let elsewhere = record(libc::SYS_splice, 500, SyscallExtra::None);
        assert_eq!(unrecorded_output(&elsewhere), None, "not our stdout");
    }
}
