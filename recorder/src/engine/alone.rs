//! Threads that run alone in their process's share of the event order: a
//! fork copying memory (the child must see no event after the fork's
//! stamp), or a signal handler, whose writes must be seen by the events
//! after it in the order and by none before. While one runs, the shim
//! holds the other threads' sync operations, and their syscall returns
//! are kept stopped here until it ends.
//!
//! [`Alone`] only decides; it never resumes anyone: ending a barrier
//! returns the threads held at a syscall exit, and the engine records
//! their returns.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use nix::unistd::Pid;
use rrc_trace::ProcessId;

/// How long a signal handler that makes no syscall runs alone before the
/// other threads go on (a handler that waits for another thread's work).
pub(super) const HANDLER_ALONE_LIMIT: Duration = Duration::from_millis(20);

/// The thread running alone in one process, and the barrier's stamp.
#[derive(Clone, Copy, Debug)]
struct Holder {
    thread: Pid,
    stamp: u64,
    /// When a handler (rather than a fork) started running alone.
    handler_since: Option<Instant>,
}

/// A barrier that ended: the stamp to hand the shim (`end_fork`) and the
/// threads to let go, in the order they were held.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct BarrierEnd {
    pub stamp: u64,
    pub released: Vec<Pid>,
}

#[derive(Default)]
pub(super) struct Alone {
    holders: HashMap<ProcessId, Holder>,
    /// Threads stopped at a syscall exit while another thread of their
    /// process runs alone: their returns are stamped, and they run on,
    /// once it ends.
    held: Vec<(ProcessId, Pid)>,
}

impl Alone {
    /// Whether a thread of `process` runs alone now.
    pub(super) fn holds(&self, process: ProcessId) -> bool {
        self.holders.contains_key(&process)
    }

    /// `thread` makes a fork, stamped `stamp`.
    pub(super) fn begin_fork(&mut self, process: ProcessId, thread: Pid, stamp: u64) {
        self.holders.insert(
            process,
            Holder {
                thread,
                stamp,
                handler_since: None,
            },
        );
    }

    /// `thread` runs a signal handler alone behind barrier `stamp`.
    pub(super) fn begin_handler(
        &mut self,
        process: ProcessId,
        thread: Pid,
        stamp: u64,
        now: Instant,
    ) {
        self.holders.insert(
            process,
            Holder {
                thread,
                stamp,
                handler_since: Some(now),
            },
        );
    }

    /// `thread` of `process` reached a syscall exit: true when it must
    /// stay stopped (it is then held) because another thread of its
    /// process runs alone. Its return, stamped now, would come after the
    /// fork in the order while its code ran during the copy.
    pub(super) fn hold_exit(&mut self, process: ProcessId, thread: Pid) -> bool {
        let held = self
            .holders
            .get(&process)
            .is_some_and(|h| h.thread != thread);
        if held {
            self.held.push((process, thread));
        }
        held
    }

    /// Ends what `thread` runs alone, if anything: returns the barrier's
    /// stamp and the threads held for it.
    pub(super) fn end(&mut self, process: ProcessId, thread: Pid) -> Option<BarrierEnd> {
        match self.holders.get(&process) {
            Some(h) if h.thread == thread => {
                let stamp = h.stamp;
                self.holders.remove(&process);
                let mut released = Vec::new();
                self.held.retain(|&(p, t)| {
                    if p == process {
                        released.push(t);
                    }
                    p != process
                });
                Some(BarrierEnd { stamp, released })
            }
            _ => None,
        }
    }

    /// The threads running a handler alone for longer than
    /// HANDLER_ALONE_LIMIT (to [`Self::end`]).
    pub(super) fn overdue_handlers(&self, now: Instant) -> Vec<Pid> {
        self.holders
            .values()
            .filter(|h| {
                h.handler_since
                    .is_some_and(|s| now >= s + HANDLER_ALONE_LIMIT)
            })
            .map(|h| h.thread)
            .collect()
    }

    /// When the first handler running alone becomes overdue.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.holders
            .values()
            .filter_map(|h| h.handler_since.map(|s| s + HANDLER_ALONE_LIMIT))
            .min()
    }

    /// `thread` ended: it is held no more (what it ran alone is ended
    /// with [`Self::end`] first).
    pub(super) fn forget(&mut self, thread: Pid) {
        self.held.retain(|&(_, t)| t != thread);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid(n: i32) -> Pid {
        Pid::from_raw(n)
    }

    #[test]
    fn a_fork_holds_the_other_threads_returns_until_it_ends() {
        let mut a = Alone::default();
        a.begin_fork(0, pid(1), 7);
        assert!(a.holds(0));
        assert!(!a.hold_exit(0, pid(1)), "the forker's own return goes on");
        assert!(a.hold_exit(0, pid(2)));
        assert!(a.hold_exit(0, pid(3)));
        assert_eq!(a.end(0, pid(2)), None, "only the forker ends its fork");
        assert_eq!(
            a.end(0, pid(1)),
            Some(BarrierEnd {
                stamp: 7,
                released: vec![pid(2), pid(3)]
            })
        );
        assert!(!a.holds(0));
        assert!(!a.hold_exit(0, pid(2)));
        assert_eq!(a.end(0, pid(1)), None, "ends once");
    }

    #[test]
    fn processes_are_independent() {
        let mut a = Alone::default();
        a.begin_fork(0, pid(1), 7);
        a.begin_fork(1, pid(10), 8);
        assert!(a.hold_exit(0, pid(2)));
        assert!(a.hold_exit(1, pid(11)));
        assert!(!a.hold_exit(2, pid(20)), "a process with no fork");
        let ended = a.end(1, pid(10));
        assert_eq!(ended.map(|e| e.released), Some(vec![pid(11)]));
        assert!(a.holds(0));
        let ended = a.end(0, pid(1));
        assert_eq!(ended.map(|e| e.released), Some(vec![pid(2)]));
    }

    #[test]
    fn handlers_are_overdue_after_their_limit_and_forks_never() {
        let mut a = Alone::default();
        let t0 = Instant::now();
        a.begin_fork(0, pid(1), 7);
        a.begin_handler(1, pid(10), 8, t0);
        assert_eq!(a.next_deadline(), Some(t0 + HANDLER_ALONE_LIMIT));
        assert!(a.overdue_handlers(t0).is_empty());
        let late = t0 + HANDLER_ALONE_LIMIT;
        assert_eq!(a.overdue_handlers(late), vec![pid(10)]);
        assert!(a.end(1, pid(10)).is_some());
        assert_eq!(a.next_deadline(), None);
        assert!(a.overdue_handlers(late + HANDLER_ALONE_LIMIT).is_empty());
    }

    #[test]
    fn a_held_thread_that_ends_is_not_released() {
        let mut a = Alone::default();
        a.begin_fork(0, pid(1), 7);
        assert!(a.hold_exit(0, pid(2)));
        assert!(a.hold_exit(0, pid(3)));
        a.forget(pid(2));
        assert_eq!(a.end(0, pid(1)).map(|e| e.released), Some(vec![pid(3)]));
    }
}
