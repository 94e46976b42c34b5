//! What the initial process leaves behind when it ends (a daemon, a
//! grandchild still running): the recording ends with it, as rr's does,
//! and the rest is killed where it is, which replay does again where
//! their recorded events end.
//!
//! A thread the kernel is writing for when it is killed has written (its
//! bytes are on rrc-record's stdout) though its call never returns to the
//! tracer, so the trace would not have them and replay would print less.
//! Such a thread (in a call `model::sends_to` names, the ones replay
//! prints) is killed at its call's exit instead, once the call is
//! recorded, or after `WRITE_WAIT` (a write to a full pipe may never end).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use nix::unistd::Pid;

/// The longest a left-behind thread is given to finish a write.
const WRITE_WAIT: Duration = Duration::from_millis(200);

#[derive(Default)]
pub(super) struct LeftBehind {
    /// The end has begun: once only.
    ended: bool,
    /// Threads in a write, killed at its exit.
    finishing: HashSet<Pid>,
    deadline: Option<Instant>,
}

impl LeftBehind {
    /// Whether the end begins now (it has not before).
    pub fn begin(&mut self) -> bool {
        !std::mem::replace(&mut self.ended, true)
    }

    /// Whether the end has begun.
    pub fn begun(&self) -> bool {
        self.ended
    }

    /// `pid` is writing: killed at its call's exit, or at the deadline.
    pub fn finish_first(&mut self, pid: Pid, now: Instant) {
        self.finishing.insert(pid);
        self.deadline.get_or_insert(now + WRITE_WAIT);
    }

    /// `pid`'s call returned (and is recorded): whether it is to be
    /// killed now. At every trapped call's exit: nothing to look up until
    /// the end has begun.
    pub fn call_ended(&mut self, pid: Pid) -> bool {
        !self.finishing.is_empty() && self.finishing.remove(&pid)
    }

    /// The threads still writing at the deadline, to be killed where they
    /// are.
    pub fn overdue(&mut self, now: Instant) -> Vec<Pid> {
        if self.deadline.is_none_or(|d| now < d) {
            return Vec::new();
        }
        self.deadline = None;
        self.finishing.drain().collect()
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.deadline.filter(|_| !self.finishing.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writing_thread_is_killed_at_its_exit_or_at_the_deadline() {
        let t0 = Instant::now();
        let mut l = LeftBehind::default();
        assert!(l.begin());
        assert!(!l.begin(), "once only");
        assert_eq!(l.deadline(), None);
        l.finish_first(Pid::from_raw(7), t0);
        l.finish_first(Pid::from_raw(8), t0);
        assert_eq!(l.deadline(), Some(t0 + WRITE_WAIT));
        assert!(l.call_ended(Pid::from_raw(7)));
        assert!(!l.call_ended(Pid::from_raw(7)));
        assert!(l.overdue(t0).is_empty());
        assert_eq!(l.overdue(t0 + WRITE_WAIT), vec![Pid::from_raw(8)]);
        assert_eq!(l.deadline(), None);
    }
}
