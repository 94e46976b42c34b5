//! Threads held at a syscall's entry until what they wait for has
//! happened (their turn to run a call or take a signal in the recorded
//! order, the end of their process's other threads), and the deadlock of
//! every live thread being held (`giveway.rs` lets holds go when nothing
//! else can move).

use std::time::{Duration, Instant};

use nix::unistd::Pid;
use rrc_interposer::model;
use rrc_interposer::Tracee;
use rrc_trace::SyscallRecord;

use super::returns::Step;
use super::threads::ThreadState;
use super::{diverged, Replayer, Res};
use crate::divergence::{describe_call, signal_name, Expected, Observed};

/// Why a thread is held at its seccomp stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hold {
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
    /// At the delivery of a signal the thread caused itself (a fault,
    /// `abort`'s) that ends the process, its last event: waits, as
    /// `FatalSignal` does, for the process's other threads to finish their
    /// recorded events (the write a thread made as the fault came).
    Fault(i32),
    /// wait4 or waitid whose recorded result is the end of a child (this
    /// live pid): replay emulates the wait, so it waits here until the
    /// child has really ended (or is held for good), and memory the child
    /// wrote before it ended (shared mappings, System V segments) holds
    /// what it did when recorded once the parent goes on.
    ChildEnd(i32),
    /// At a syscall's entry, while its next recorded event is a signal
    /// delivered at a place in the event order (it waited in a futex when
    /// recorded): delivered here once the order gets there.
    SignalTurn(u64),
    /// kill or tgkill of SIGKILL to another process of the program (this
    /// live tgid): it waits until that process has replayed what it did
    /// before the kill found it when recorded (every thread of it at the
    /// end of its events, or at one whose place in the order comes after
    /// the kill's own, `rank`: it gets no further before the kill), or
    /// until it has made no progress for `KILL_WAIT`. Progress, not the
    /// wait's own length, counts: on a loaded machine a process still
    /// loading may take seconds to get where the kill found it.
    KillTarget {
        tgid: i32,
        since: Instant,
        rank: Option<u64>,
    },
}

/// How long a SIGKILL waits for the process it kills once that process
/// has stopped making progress (see [`Hold::KillTarget`]).
const KILL_WAIT: Duration = Duration::from_millis(500);

impl Hold {
    /// Whether the hold is over: `reached` says whether the event order
    /// has got to a rank (or let it go early), and `may_exit` whether the
    /// thread's process may end now.
    pub fn over(self, reached: impl Fn(u64) -> bool, may_exit: bool) -> bool {
        match self {
            Hold::RunTurn(rank) | Hold::SignalTurn(rank) => reached(rank),
            Hold::ProcessExit | Hold::FatalSignal { .. } | Hold::Fault(_) => may_exit,
            // Asked of the live threads instead (`hold_over`).
            Hold::PastEnd | Hold::ChildEnd(_) | Hold::KillTarget { .. } => false,
        }
    }
}

/// The recorded pid of the child whose end a recorded wait4 or waitid
/// reported (not a stop, a continue, or nothing yet under WNOHANG).
pub(crate) fn reported_child_end(record: &SyscallRecord) -> Option<i32> {
    let bytes = |i: usize, at: usize| -> Option<i32> {
        let b = record.outputs.get(i)?.get(at..at + 4)?;
        Some(i32::from_le_bytes(b.try_into().ok()?))
    };
    match record.nr as i64 {
        libc::SYS_wait4 if record.ret > 0 => {
            // With a null status pointer nothing says how it changed.
            let status = bytes(0, 0)?;
            let ended = libc::WIFEXITED(status) || libc::WIFSIGNALED(status);
            ended.then_some(record.ret as i32)
        }
        libc::SYS_waitid if record.ret == 0 => {
            // siginfo_t: si_code at byte 8, si_pid at byte 16.
            let code = bytes(0, 8)?;
            let ended = matches!(code, libc::CLD_EXITED | libc::CLD_KILLED | libc::CLD_DUMPED);
            let pid = bytes(0, 16)?;
            (ended && pid > 0).then_some(pid)
        }
        _ => None,
    }
}

impl Replayer {
    /// Keeps a stopped thread stopped until `hold` is over.
    pub(super) fn hold(&mut self, pid: Pid, hold: Hold) {
        if let Some(t) = self.live.get_mut(&pid) {
            t.state = ThreadState::Held(hold);
        }
    }

    /// Whether what the thread is held for has happened.
    pub(super) fn hold_over(&self, thread: u32, hold: Hold) -> bool {
        if let Hold::KillTarget { tgid, since, rank } = hold {
            let mut moved = since;
            let mut at_end = true;
            for t in self.live.values().filter(|t| t.tgid.as_raw() == tgid) {
                // Its return queued for a later place, or its next event's.
                let next = match t.state {
                    ThreadState::Queued(r) | ThreadState::Held(Hold::RunTurn(r)) => Some(r),
                    _ => self.next_event_rank(t.logical),
                };
                let after_kill = rank.zip(next).is_some_and(|(kill, next)| next > kill);
                if !self.replayed_to_end(t) && !after_kill {
                    at_end = false;
                    moved = moved.max(self.last_return_seen(t));
                }
            }
            return at_end || moved.elapsed() >= KILL_WAIT;
        }
        if let Hold::ChildEnd(child) = hold {
            // Ended, or every thread it has left is held by replay (at the
            // end of its events, or until its process exits): it writes
            // nothing more before it ends, and the wait must not wait for
            // a kill that replay has sent but not yet seen arrive.
            return self
                .live
                .values()
                .all(|t| t.tgid.as_raw() != child || t.hold().is_some());
        }
        // Whether the process may exit is only asked of the holds that
        // wait for it: it looks at every thread.
        let may_exit = matches!(
            hold,
            Hold::ProcessExit | Hold::FatalSignal { .. } | Hold::Fault(_)
        ) && self.process_may_exit(thread);
        let reached = |rank| self.rank_reached(rank);
        hold.over(reached, may_exit)
    }

    /// Lets held threads go once what they wait for has happened; then
    /// what the event order has made due.
    pub(super) fn release_holds(&mut self) -> Res {
        loop {
            let ready: Vec<Pid> = self
                .live
                .iter()
                .filter(|(_, t)| t.hold().is_some_and(|h| self.hold_over(t.logical, h)))
                .map(|(pid, _)| *pid)
                .collect();
            if ready.is_empty() {
                break;
            }
            for pid in ready {
                self.release_hold(pid)?;
            }
        }
        if self.order.enabled() {
            self.run_steps(Step::ReleaseRanked)?;
            self.deliver_ranked_signal()?;
            self.run_steps(Step::ReleaseLate)?;
        }
        self.end_as_killed()?;
        self.end_left_behind()?;
        let held: Vec<Pid> = self
            .live
            .iter()
            .filter(|(_, t)| t.hold().is_some())
            .map(|(pid, _)| *pid)
            .collect();
        let all_ending = held.iter().all(|p| {
            self.live
                .get(p)
                .is_some_and(|t| self.ending.contains(&t.process))
        });
        if !held.is_empty() && held.len() == self.live.len() && !all_ending {
            // Every thread waits, so the rank the order waits for will not
            // come (its thread went past it unseen, as a handler that ran
            // alone can): the earliest held event goes ahead, as when the
            // order stands still (`giveway`), counted in `--stats`. Holds
            // no rank ends (the trace's end, an exit) are a divergence.
            if self.order.enabled() && self.let_earliest_go()? {
                return Ok(());
            }
            return self.report_deadlock();
        }
        Ok(())
    }

    /// A held thread goes on from where it was held.
    pub(super) fn release_hold(&mut self, pid: Pid) -> Res {
        let Some(t) = self.live.get_mut(&pid) else {
            return Ok(());
        };
        let Some(hold) = t.hold() else {
            return Ok(());
        };
        t.state = ThreadState::Stopped;
        let thread = t.logical;
        match hold {
            Hold::FatalSignal { sig, at_entry } => self.deliver_fatal(pid, sig, at_entry),
            Hold::Fault(sig) => self.deliver_fault(pid, thread, sig),
            _ => {
                let regs = Tracee::new(pid).regs("read registers of a held thread")?;
                match hold {
                    Hold::SignalTurn(_) => self.seccomp_stop(pid, regs, None),
                    // Its entry's place came before its other holds.
                    Hold::RunTurn(rank)
                        if self.entry_turn(thread, regs.nr(), &regs.args()) == Some(rank) =>
                    {
                        self.enter(pid, thread, regs)
                    }
                    _ => self.dispatch(pid, thread, regs),
                }
            }
        }
    }

    /// Every live thread is held: nothing can move any more.
    fn report_deadlock(&mut self) -> Res {
        let mut held = self
            .live
            .iter()
            .filter_map(|(pid, t)| t.hold().map(|h| (*pid, t.logical, h)));
        let first = held.clone().find(|(_, _, h)| *h == Hold::PastEnd);
        let Some((pid, thread, hold)) = first.or_else(|| held.next()) else {
            return Ok(());
        };
        let call = Tracee::new(pid)
            .regs("read registers of a held thread")
            .map(|r| {
                let inputs = model::read_inputs(&Tracee::new(pid), r.nr(), &r.args());
                describe_call(r.nr(), &r.args(), &inputs)
            })
            .unwrap_or_else(|_| "a syscall".into());
        let turn = self.log.order_turn();
        let expected = match hold {
            Hold::PastEnd => "no further syscalls (the thread's recorded events have ended)".into(),
            Hold::ProcessExit => "the other threads to finish before exit_group".into(),
            Hold::FatalSignal { sig, .. } | Hold::Fault(sig) => format!(
                "the other threads to finish before {} ends the process",
                signal_name(sig)
            ),
            Hold::SignalTurn(rank) => {
                format!("its signal's rank {rank} in the event order (at rank {turn})")
            }
            Hold::RunTurn(rank) => {
                format!("its rank {rank} in the event order to run (at rank {turn})")
            }
            Hold::ChildEnd(child) => format!("its child (live pid {child}) to end"),
            Hold::KillTarget { tgid, .. } => {
                format!("the process it kills (live pid {tgid}) to get where it was killed")
            }
        };
        diverged(
            thread,
            Expected::Text(expected),
            Observed::Call {
                call,
                differs: None,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_hold_ends_with_what_it_waits_for() {
        let reached = |rank: u64| rank <= 4;
        assert!(Hold::RunTurn(4).over(reached, false));
        assert!(!Hold::RunTurn(5).over(reached, true));
        assert!(Hold::SignalTurn(2).over(reached, false));
        assert!(Hold::ProcessExit.over(reached, true));
        assert!(!Hold::ProcessExit.over(reached, false));
        let fatal = Hold::FatalSignal {
            sig: libc::SIGTERM,
            at_entry: true,
        };
        assert!(fatal.over(reached, true));
        assert!(!fatal.over(reached, false));
        assert!(!Hold::PastEnd.over(|_| true, true), "held for good");
        let kill = Hold::KillTarget {
            tgid: 7,
            since: Instant::now(),
            rank: None,
        };
        assert!(!kill.over(|_| true, true), "asked of the live threads");
    }

    fn wait(nr: i64, ret: i64, output: Vec<u8>) -> SyscallRecord {
        SyscallRecord {
            thread: 0,
            index: 0,
            nr: nr as u32,
            args: [0; 6],
            ret,
            inputs: Vec::new(),
            outputs: vec![output],
            interval_ns: 0,
            return_ns: 0,
            order: 0,
            extra: rrc_trace::SyscallExtra::None,
            digested: 0,
        }
    }

    #[test]
    fn a_wait_that_reported_a_childs_end_waits_for_it() {
        let exited = (7i32 << 8).to_le_bytes().to_vec(); // exit status 7
        assert_eq!(
            reported_child_end(&wait(libc::SYS_wait4, 42, exited.clone())),
            Some(42)
        );
        let killed = 9i32.to_le_bytes().to_vec(); // SIGKILL
        assert_eq!(
            reported_child_end(&wait(libc::SYS_wait4, 42, killed)),
            Some(42)
        );
        let stopped = (0x7fi32 | (19 << 8)).to_le_bytes().to_vec();
        assert_eq!(
            reported_child_end(&wait(libc::SYS_wait4, 42, stopped)),
            None
        );
        assert_eq!(
            reported_child_end(&wait(libc::SYS_wait4, 0, exited)),
            None,
            "WNOHANG"
        );
        let mut info = vec![0u8; 128];
        info[8..12].copy_from_slice(&libc::CLD_EXITED.to_le_bytes());
        info[16..20].copy_from_slice(&42i32.to_le_bytes());
        assert_eq!(
            reported_child_end(&wait(libc::SYS_waitid, 0, info.clone())),
            Some(42)
        );
        info[8..12].copy_from_slice(&libc::CLD_STOPPED.to_le_bytes());
        assert_eq!(reported_child_end(&wait(libc::SYS_waitid, 0, info)), None);
    }
}
