//! Asynchronous signals held back to a syscall boundary. A signal that
//! arrives while its thread runs its own code is held until the thread's
//! next syscall (replay can deliver it there), then queued again by the
//! recorder itself (tgkill) so that it is delivered there; one that waits
//! too long is queued where the thread is.
//!
//! [`Deferred`] is per thread and only decides: it returns the signal to
//! queue, and the engine queues it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How long an asynchronous signal that arrived while its thread ran its
/// own code waits for the thread's next syscall before it is delivered
/// where the thread is (replay then delivers it by elapsed time, which
/// is approximate: long enough that compute phases between syscalls keep
/// their signals at syscall boundaries, short enough that a thread that
/// spins waiting for a handler does not wait forever).
pub(super) const DEFER_LIMIT: Duration = Duration::from_millis(100);

/// An asynchronous signal the recorder holds back to a syscall boundary,
/// or has queued again itself (tgkill) to deliver it there.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct PendingSignal {
    pub sig: i32,
    pub siginfo: Vec<u8>,
    pub since: Instant,
}

#[derive(Debug, Default)]
pub(super) struct Deferred {
    /// Held back to the next syscall boundary, in arrival order.
    held: VecDeque<PendingSignal>,
    /// Queued again by us, not yet delivered: while it is, no other held
    /// signal is queued.
    injection: Option<PendingSignal>,
}

impl Deferred {
    /// Holds `sig` back. A standard signal already held stays one signal,
    /// as it would pending in the kernel; its wait keeps counting from the
    /// first arrival, so a periodic timer cannot postpone delivery forever.
    pub(super) fn hold(&mut self, sig: i32, siginfo: Vec<u8>, now: Instant) {
        let coalesces = sig < libc::SIGRTMIN() && self.held.iter().any(|h| h.sig == sig);
        if !coalesces {
            self.held.push_back(PendingSignal {
                sig,
                siginfo,
                since: now,
            });
        }
    }

    /// At a syscall boundary: the next held signal to queue now, if none
    /// queued earlier is still on its way. Hand it back with
    /// [`Self::queued`] once queued.
    pub(super) fn next(&mut self) -> Option<PendingSignal> {
        if self.injection.is_some() {
            return None;
        }
        self.held.pop_front()
    }

    /// Like [`Self::next`], but only a signal held for DEFER_LIMIT.
    pub(super) fn next_overdue(&mut self, now: Instant) -> Option<PendingSignal> {
        if self.deadline().is_some_and(|d| now >= d) {
            self.next()
        } else {
            None
        }
    }

    /// `signal` was queued: its delivery is recognised by
    /// [`Self::delivered`].
    pub(super) fn queued(&mut self, signal: PendingSignal) {
        self.injection = Some(signal);
    }

    /// `sig` is about to be delivered: when it is the one we queued, its
    /// original siginfo (the program must get that one, not ours).
    pub(super) fn delivered(&mut self, sig: i32) -> Option<Vec<u8>> {
        match self.injection.take() {
            Some(inj) if inj.sig == sig => Some(inj.siginfo),
            other => {
                self.injection = other;
                None
            }
        }
    }

    /// Whether a signal is held back (not yet queued again).
    pub(super) fn holds_any(&self) -> bool {
        !self.held.is_empty()
    }

    /// When the first held signal becomes overdue (none while one queued
    /// is on its way).
    pub(super) fn deadline(&self) -> Option<Instant> {
        if self.injection.is_some() {
            return None;
        }
        self.held.front().map(|h| h.since + DEFER_LIMIT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_signals_go_in_arrival_order_one_at_a_time() {
        let mut d = Deferred::default();
        let t0 = Instant::now();
        d.hold(libc::SIGUSR1, vec![1], t0);
        d.hold(libc::SIGUSR2, vec![2], t0);
        let first = d.next().map(|s| s.sig);
        assert_eq!(first, Some(libc::SIGUSR1));
        d.queued(PendingSignal {
            sig: libc::SIGUSR1,
            siginfo: vec![1],
            since: t0,
        });
        assert_eq!(d.next(), None, "one queued signal at a time");
        assert_eq!(d.deadline(), None);
        assert_eq!(d.delivered(libc::SIGUSR2), None, "not ours");
        assert_eq!(d.delivered(libc::SIGUSR1), Some(vec![1]));
        assert_eq!(d.next().map(|s| s.sig), Some(libc::SIGUSR2));
        assert_eq!(d.next(), None);
    }

    #[test]
    fn a_standard_signal_held_twice_is_one_and_keeps_its_first_arrival() {
        let mut d = Deferred::default();
        let t0 = Instant::now();
        d.hold(libc::SIGALRM, vec![1], t0);
        d.hold(libc::SIGALRM, vec![2], t0 + DEFER_LIMIT / 2);
        assert_eq!(d.deadline(), Some(t0 + DEFER_LIMIT));
        let s = d.next();
        assert_eq!(s.map(|s| s.siginfo), Some(vec![1]));
        assert_eq!(d.next(), None);
    }

    #[test]
    fn realtime_signals_queue_every_time() {
        let mut d = Deferred::default();
        let t0 = Instant::now();
        let rt = libc::SIGRTMIN() + 1;
        d.hold(rt, vec![1], t0);
        d.hold(rt, vec![2], t0);
        assert_eq!(d.next().map(|s| s.siginfo), Some(vec![1]));
        assert_eq!(d.next().map(|s| s.siginfo), Some(vec![2]));
    }

    #[test]
    fn a_signal_is_overdue_after_the_defer_limit() {
        let mut d = Deferred::default();
        let t0 = Instant::now();
        d.hold(libc::SIGUSR1, vec![], t0);
        assert_eq!(d.next_overdue(t0), None);
        assert_eq!(
            d.next_overdue(t0 + DEFER_LIMIT).map(|s| s.sig),
            Some(libc::SIGUSR1)
        );
    }
}
