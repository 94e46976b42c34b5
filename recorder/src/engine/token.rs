//! Serialised recording (`rrc-record --serialize`): one thread at a time
//! runs the program's own code. A thread has the run of the program (the
//! token) from a syscall's return until it enters its next syscall; every
//! blocking call traps then (futex and sched_yield included), so a thread
//! never blocks holding it. The order in which threads get the token is
//! the order of their returns in the event order, which replay enforces
//! the same way: the code between two syscalls then runs exactly as it
//! did, whatever races it has that no lock or syscall orders.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use nix::unistd::Pid;

/// How long the holder may sleep in something rrc does not trap (it then
/// cannot give the token back) before the next thread gets it anyway.
pub(super) const TOKEN_ASLEEP: Duration = Duration::from_millis(20);
/// How much processor time it may use without a syscall before the same
/// (a spin that waits for another thread would otherwise never end; time
/// spent waiting for a processor does not count). Either way the
/// recording is no longer exact there.
pub(super) const TOKEN_SPINNING: Duration = Duration::from_millis(500);
/// How often an overdue holder is looked at again.
const TOKEN_RECHECK: Duration = Duration::from_millis(5);

#[derive(Debug, Default)]
pub(super) struct Token {
    enabled: bool,
    holder: Option<Pid>,
    /// When the holder got the token.
    since: Option<Instant>,
    /// The holder's processor time when first looked at, if it was.
    cpu_seen: Option<Duration>,
    /// Threads at a syscall exit waiting for the token, first come first.
    waiting: VecDeque<Pid>,
}

impl Token {
    pub fn new(enabled: bool, first: Pid) -> Token {
        Token {
            enabled,
            holder: enabled.then_some(first),
            since: enabled.then(Instant::now),
            cpu_seen: None,
            waiting: VecDeque::new(),
        }
    }

    /// Whether the recording is serialised.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// When the engine must look at the holder again (see `overdue`).
    pub fn deadline(&self) -> Option<Instant> {
        if self.waiting.is_empty() {
            return None;
        }
        // Past the first check, look again every few milliseconds while
        // someone waits (not in a busy loop).
        let soon = Instant::now() + TOKEN_RECHECK;
        self.since.map(|s| (s + TOKEN_ASLEEP).max(soon))
    }

    /// When the holder cannot give the token back by itself (asleep
    /// outside rrc's view, or spinning), the next thread in line gets it,
    /// returned to be let go. `look` tells whether a thread sleeps, and
    /// its processor time so far.
    pub fn overdue(
        &mut self,
        now: Instant,
        look: impl FnOnce(Pid) -> (bool, Duration),
    ) -> Option<Pid> {
        let (holder, since) = (self.holder?, self.since?);
        if self.waiting.is_empty() || now.saturating_duration_since(since) < TOKEN_ASLEEP {
            return None;
        }
        let (asleep, cpu) = look(holder);
        let spun = cpu.saturating_sub(*self.cpu_seen.get_or_insert(cpu));
        if !asleep && spun < TOKEN_SPINNING {
            return None;
        }
        self.grant_next()
    }

    fn grant_next(&mut self) -> Option<Pid> {
        self.holder = self.waiting.pop_front();
        self.since = self.holder.map(|_| Instant::now());
        self.cpu_seen = None;
        self.holder
    }

    /// `pid`, at a syscall exit, wants to run on: true when it has the
    /// token now; otherwise it waits for it in line.
    pub fn want(&mut self, pid: Pid) -> bool {
        if !self.enabled {
            return true;
        }
        match self.holder {
            Some(h) if h == pid => true,
            None if self.waiting.is_empty() => {
                self.holder = Some(pid);
                self.since = Some(Instant::now());
                self.cpu_seen = None;
                true
            }
            _ => {
                if !self.waiting.contains(&pid) {
                    self.waiting.push_back(pid);
                }
                false
            }
        }
    }

    /// `pid` entered a syscall or ended: if it had the token, the next
    /// thread in line gets it, and is returned to be let go.
    pub fn give_back(&mut self, pid: Pid) -> Option<Pid> {
        self.waiting.retain(|&w| w != pid);
        if !self.enabled || self.holder != Some(pid) {
            return None;
        }
        self.grant_next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid(n: i32) -> Pid {
        Pid::from_raw(n)
    }

    #[test]
    fn threads_get_the_token_one_at_a_time_in_arrival_order() {
        let mut t = Token::new(true, pid(1));
        assert!(t.want(pid(1)), "the first thread starts with it");
        assert!(!t.want(pid(2)));
        assert!(!t.want(pid(3)));
        assert_eq!(t.give_back(pid(1)), Some(pid(2)));
        assert!(t.want(pid(2)), "the holder runs on");
        assert_eq!(t.give_back(pid(2)), Some(pid(3)));
        assert_eq!(t.give_back(pid(3)), None);
        assert!(t.want(pid(1)), "a free token goes to whoever asks");
    }

    #[test]
    fn a_thread_that_ends_leaves_the_line() {
        let mut t = Token::new(true, pid(1));
        assert!(!t.want(pid(2)));
        assert!(!t.want(pid(3)));
        assert_eq!(t.give_back(pid(2)), None, "it did not hold it");
        assert_eq!(t.give_back(pid(1)), Some(pid(3)));
    }

    #[test]
    fn a_holder_asleep_outside_rrc_loses_the_token_to_the_next_in_line() {
        let mut t = Token::new(true, pid(1));
        assert!(!t.want(pid(2)));
        let now = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(t.overdue(now, |_| (true, ms(0))), None, "not yet");
        let later = now + TOKEN_ASLEEP * 2;
        assert_eq!(t.overdue(later, |_| (false, ms(10))), None, "running");
        assert_eq!(
            t.overdue(later, |_| (false, ms(10) + TOKEN_SPINNING / 2)),
            None,
            "waiting for a processor is not spinning"
        );
        assert_eq!(t.overdue(later, |_| (true, ms(10))), Some(pid(2)));
        assert_eq!(t.give_back(pid(1)), None, "it no longer had it");
    }

    #[test]
    fn without_serialising_every_thread_runs_on() {
        let mut t = Token::new(false, pid(1));
        assert!(t.want(pid(2)));
        assert!(t.want(pid(3)));
        assert_eq!(t.give_back(pid(2)), None);
    }
}
