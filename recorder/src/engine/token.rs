//! Serialised recording (`rrc-record --serialize`): one thread at a time
//! runs the program's own code. A thread has the run of the program (the
//! token) from a syscall's return until it enters its next syscall; every
//! blocking call traps then (futex and sched_yield included), so a thread
//! never blocks holding it. The order in which threads get the token is
//! the order of their returns in the event order, which replay enforces
//! the same way: the code between two syscalls then runs exactly as it
//! did, whatever races it has that no lock or syscall orders.

use std::collections::VecDeque;

use nix::unistd::Pid;

#[derive(Debug, Default)]
pub(super) struct Token {
    enabled: bool,
    holder: Option<Pid>,
    /// Threads at a syscall exit waiting for the token, first come first.
    waiting: VecDeque<Pid>,
}

impl Token {
    pub fn new(enabled: bool, first: Pid) -> Token {
        Token {
            enabled,
            holder: enabled.then_some(first),
            waiting: VecDeque::new(),
        }
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
        self.holder = self.waiting.pop_front();
        self.holder
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
    fn without_serialising_every_thread_runs_on() {
        let mut t = Token::new(false, pid(1));
        assert!(t.want(pid(2)));
        assert!(t.want(pid(3)));
        assert_eq!(t.give_back(pid(2)), None);
    }
}
