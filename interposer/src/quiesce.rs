//! Waiting for a process's other threads to settle before a signal
//! handler runs alone (see the recorder's and replayer's handler order).

use std::time::{Duration, Instant};

use nix::unistd::Pid;

/// Threads let go from a syscall this recently are waited for (on a busy
/// machine one can wait that long for a CPU before it runs at all); one
/// let go longer ago is taken to be computing, and waiting for it would
/// only cost time (up to the limit, at every signal).
pub const SETTLE_RECENT: Duration = Duration::from_millis(20);

/// Whether the thread is on a CPU or waiting for one (state `R`). A
/// thread stopped by ptrace, asleep in a syscall or a futex is not; one
/// that is gone is not either.
pub fn is_running(tid: Pid) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{tid}/stat")) else {
        return false;
    };
    // The state follows the command name, which may hold spaces or ')'.
    stat.rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next())
        .is_some_and(|state| state == "R")
}

/// Waits, at most `limit`, until none of `tids` is running: threads just
/// let go from an event then reach their next one (a syscall, a lock
/// wait) before the caller goes on. Returns whether they all settled.
pub fn wait_until_settled(tids: &[Pid], limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if !tids.iter().any(|t| is_running(*t)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_micros(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_thread_runs_and_a_missing_one_does_not() {
        assert!(is_running(nix::unistd::gettid()));
        assert!(!is_running(Pid::from_raw(i32::MAX)));
    }

    #[test]
    fn a_sleeping_thread_settles() {
        let (tx, rx) = std::sync::mpsc::channel();
        let sleeper = std::thread::spawn(move || {
            tx.send(nix::unistd::gettid()).ok();
            std::thread::sleep(Duration::from_millis(300));
        });
        let tid = rx.recv().expect("tid");
        assert!(wait_until_settled(&[tid], Duration::from_millis(200)));
        sleeper.join().expect("join");
    }
}
