//! Threads held at a syscall's entry until what they wait for has
//! happened (their turn to run a call or take a signal in the recorded
//! order, the end of their process's other threads), and the deadlock of
//! every live thread being held (`giveway.rs` lets holds go when nothing
//! else can move).

use nix::unistd::Pid;
use rrc_interposer::model;
use rrc_interposer::Tracee;

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
    /// At a syscall's entry, while its next recorded event is a signal
    /// delivered at a place in the event order (it waited in a futex when
    /// recorded): delivered here once the order gets there.
    SignalTurn(u64),
}

impl Hold {
    /// Whether the hold is over: `reached` says whether the event order
    /// has got to a rank (or let it go early), and `may_exit` whether the
    /// thread's process may end now.
    pub fn over(self, reached: impl Fn(u64) -> bool, may_exit: bool) -> bool {
        match self {
            Hold::RunTurn(rank) | Hold::SignalTurn(rank) => reached(rank),
            Hold::ProcessExit | Hold::FatalSignal { .. } => may_exit,
            Hold::PastEnd => false,
        }
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
        // Whether the process may exit is only asked of the holds that
        // wait for it: it looks at every thread.
        let may_exit = matches!(hold, Hold::ProcessExit | Hold::FatalSignal { .. })
            && self.process_may_exit(thread);
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
            Hold::SignalTurn(_) => self.seccomp_stop(pid),
            _ => {
                let regs = Tracee::new(pid).regs("read registers of a held thread")?;
                self.dispatch(pid, thread, regs)
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
            Hold::FatalSignal { sig, .. } => format!(
                "the other threads to finish before {} ends the process",
                signal_name(sig)
            ),
            Hold::SignalTurn(rank) => {
                format!("its signal's rank {rank} in the event order (at rank {turn})")
            }
            Hold::RunTurn(rank) => {
                format!("its rank {rank} in the event order to run (at rank {turn})")
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
    }
}
