//! Recorded intervals: a replayed syscall returns no sooner than its
//! recorded interval after the thread's previous return (and, with
//! `Anchor::Shared`, than its recorded time since the start). [`Pacing`]
//! keeps the deadlines of timed holds and says which are due; the engine
//! lets the threads go.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use nix::unistd::Pid;

use super::returns::Step;
use super::threads::ThreadState;
use super::{Anchor, Halt, Replayer, Res, StopHandler};
use crate::plan::PlannedEvent;

/// How often a process-ending signal due by elapsed time looks again
/// whether the process's other threads are done.
const FATAL_SIGNAL_RECHECK: Duration = Duration::from_millis(1);

/// What a timed hold releases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timed {
    /// Return from a replayed syscall (its recorded interval has passed).
    Return { interval_ns: u64, rank: Option<u64> },
    /// Queue a recorded signal that arrived while the thread ran its own code.
    Signal { sig: i32 },
}

/// Deadlines of timed holds, earliest first. It never resumes a thread.
#[derive(Debug)]
pub(crate) struct Pacing {
    enforce: bool,
    anchor: Anchor,
    /// When the replay started: the shared timeline's origin.
    epoch: Instant,
    timed: BinaryHeap<Reverse<(Instant, Pid, Timed)>>,
}

impl Pacing {
    pub fn new(enforce: bool, anchor: Anchor, epoch: Instant) -> Pacing {
        Pacing {
            enforce,
            anchor,
            epoch,
            timed: BinaryHeap::new(),
        }
    }

    /// How the shim keeps intervals (`ShmHeader::pacing`): 0 not at all,
    /// 1 the thread's own, 2 also the shared timeline.
    pub fn shim_mode(&self) -> u32 {
        match (self.enforce, self.anchor) {
            (false, _) => 0,
            (true, Anchor::Thread) => 1,
            (true, Anchor::Shared) => 2,
        }
    }

    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// When a return recorded `interval_ns` after the thread's previous
    /// one (at `return_ns` on the shared timeline) must wait until, if it
    /// must wait at all at `now`.
    pub fn hold_until(
        &self,
        last_return: Instant,
        interval_ns: u64,
        return_ns: u64,
        now: Instant,
    ) -> Option<Instant> {
        let mut due = last_return + Duration::from_nanos(interval_ns);
        if self.anchor == Anchor::Shared {
            due = due.max(self.epoch + Duration::from_nanos(return_ns));
        }
        (self.enforce && due > now).then_some(due)
    }

    pub fn push(&mut self, at: Instant, pid: Pid, what: Timed) {
        self.timed.push(Reverse((at, pid, what)));
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.timed.peek().map(|Reverse((at, _, _))| *at)
    }

    /// The earliest hold, if it is due at `now`: it leaves the heap.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Pid, Timed)> {
        let Reverse((due, _, _)) = self.timed.peek()?;
        if *due > now {
            return None;
        }
        self.timed.pop().map(|Reverse((_, pid, what))| (pid, what))
    }

    /// Whether any timed hold (a return or a signal) is on `pid`.
    pub fn holds(&self, pid: Pid) -> bool {
        self.timed.iter().any(|Reverse((_, p, _))| *p == pid)
    }

    /// Drops every hold on `pid` (it ended).
    pub fn forget(&mut self, pid: Pid) {
        self.timed.retain(|Reverse((_, p, _))| *p != pid);
    }
}

impl Replayer {
    /// Lets go what has come due: returns whose interval has passed, and
    /// signals recorded while their thread ran its own code.
    pub(super) fn release_due(&mut self) -> Res {
        while let Some((pid, what)) = self.pacing.pop_due(Instant::now()) {
            let result = match what {
                Timed::Return { interval_ns, rank } => {
                    self.unpark(pid);
                    self.run_steps(Step::Return {
                        pid,
                        rank,
                        interval_ns,
                        held: true,
                    })
                }
                Timed::Signal { sig } => self.signal_due(pid, sig),
            };
            match result {
                Err(Halt::Failed(e)) if Self::tracee_gone(&e) => {}
                other => other?,
            }
        }
        Ok(())
    }

    /// A signal recorded while the thread ran its own code is due.
    fn signal_due(&mut self, pid: Pid, sig: i32) -> Res {
        let still_due = self.live.get(&pid).is_some_and(|t| {
            t.injecting.is_none()
                && matches!(
                    self.plan.threads[t.logical as usize].events.front(),
                    Some(PlannedEvent::Signal(s)) if s.signo == sig
                )
        });
        let logical = self.live.get(&pid).map(|t| t.logical);
        let must_wait = logical
            .is_some_and(|l| self.fatal_last_signal(l).is_some() && !self.process_may_exit(l));
        if still_due && must_wait {
            // Ends the process: not before the other threads are done
            // (this thread runs or blocks meanwhile).
            let again = Instant::now() + FATAL_SIGNAL_RECHECK;
            self.pacing.push(again, pid, Timed::Signal { sig });
            Ok(())
        } else if still_due {
            Ok(self.inject(pid, sig)?)
        } else {
            Ok(())
        }
    }

    /// Parks a return until its deadline.
    pub(super) fn hold_return(&mut self, pid: Pid, due: Instant, what: Timed) {
        self.pacing.push(due, pid, what);
        if let Some(t) = self.live.get_mut(&pid) {
            t.state = ThreadState::Timed;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_return_waits_for_its_interval_after_the_previous_one() {
        let epoch = Instant::now();
        let p = Pacing::new(true, Anchor::Thread, epoch);
        let last = epoch + 10 * MS;
        assert_eq!(
            p.hold_until(last, 2_000_000, 0, last + MS),
            Some(last + 2 * MS)
        );
        assert_eq!(p.hold_until(last, 2_000_000, 0, last + 3 * MS), None);
    }

    #[test]
    fn the_shared_anchor_also_waits_for_the_recorded_time() {
        let epoch = Instant::now();
        let shared = Pacing::new(true, Anchor::Shared, epoch);
        let thread = Pacing::new(true, Anchor::Thread, epoch);
        let last = epoch + MS;
        let now = epoch + 2 * MS;
        assert_eq!(
            shared.hold_until(last, 0, 5_000_000, now),
            Some(epoch + 5 * MS)
        );
        assert_eq!(thread.hold_until(last, 0, 5_000_000, now), None);
    }

    #[test]
    fn without_enforcement_nothing_waits() {
        let epoch = Instant::now();
        let p = Pacing::new(false, Anchor::Shared, epoch);
        assert_eq!(p.hold_until(epoch, 9_000_000, 9_000_000, epoch), None);
    }

    #[test]
    fn holds_come_due_earliest_first_and_go_with_their_thread() {
        let epoch = Instant::now();
        let mut p = Pacing::new(true, Anchor::Shared, epoch);
        let (a, b) = (Pid::from_raw(1), Pid::from_raw(2));
        let ret = Timed::Return {
            interval_ns: 1,
            rank: Some(3),
        };
        p.push(epoch + 3 * MS, a, ret);
        p.push(epoch + MS, b, Timed::Signal { sig: 10 });
        p.push(epoch + 2 * MS, b, ret);
        assert_eq!(p.next_deadline(), Some(epoch + MS));
        assert_eq!(p.pop_due(epoch), None);
        assert_eq!(p.pop_due(epoch + MS), Some((b, Timed::Signal { sig: 10 })));
        assert!(p.holds(a) && p.holds(b));
        p.forget(b);
        assert!(!p.holds(b));
        assert_eq!(p.pop_due(epoch + 5 * MS), Some((a, ret)));
        assert_eq!(p.next_deadline(), None);
    }
}
