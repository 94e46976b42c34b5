//! The baton: a thread whose event was let go has the run of the program
//! (the baton, in the sync log) until it stops at its next event; the
//! order moves on when it parks. Serialised replay (a trace recorded with
//! `rrc-record --serialize`) replays the recorded schedule this way; a
//! trace recorded in parallel is replayed in segments (`--no-segments`
//! turns that off): the code a thread runs right after an event (taking a
//! job from a queue whose lock rrc does not see) then runs before the next
//! event, as it mostly did when recorded.
//!
//! Here the engine takes the baton back from a thread that cannot get to
//! its next event by itself: one parked by replay, ended, asleep in a wait
//! rrc does not see, or spinning: using far more processor time than any
//! recorded stretch of code between two syscalls should. Time spent
//! waiting for a processor does not count (a loaded machine must not
//! break the schedule).

use std::time::{Duration, Instant};

use super::order::thread_stat;
use super::threads::ThreadState;
use super::Replayer;

/// How long the thread with the baton may sleep where rrc cannot see it
/// (in a futex, or anywhere: a thread asleep in no traced call cannot get
/// to its next event by itself), or have ended unseen (a main thread's
/// `pthread_exit` leaves a zombie the kernel reports only at the end).
/// Nothing is read from /proc before then: the engine looks at every stop.
const BATON_ASLEEP: Duration = Duration::from_millis(2);
/// How much processor time it may use before the next event goes anyway
/// (a spin that waits for another thread would otherwise never end).
const BATON_SPINNING: Duration = Duration::from_millis(200);

/// Who had the baton when the engine last looked, since when, and its
/// processor time once it had held it for `BATON_ASLEEP`.
#[derive(Debug, Default)]
pub(crate) struct BatonWatch {
    seen: Option<(u32, Instant, Option<Duration>)>,
    /// Batons taken back, for `--stats`.
    pub taken_back: BatonsTakenBack,
}

/// Why the engine took the baton back, counted for `--stats`.
#[derive(Debug, Default, Clone, Copy)]
pub struct BatonsTakenBack {
    /// The thread was stopped by replay, or had ended.
    pub stopped: u64,
    /// Asleep where rrc does not see (a futex, or any untraced wait), or
    /// ended unseen.
    pub asleep: u64,
    /// Running far past any recorded stretch of code.
    pub spinning: u64,
    /// Waiting, in a futex wait the recording does not have there, for a
    /// lock rrc does not see: its holder may be a thread that waits for
    /// its turn after this one's next event, so the order must move on
    /// now (else other holds give way first, in another order).
    pub unseen_lock: u64,
}

impl BatonWatch {
    /// How long `slot` has had the baton, counting from the first look.
    fn held_for(&mut self, slot: u32, now: Instant) -> Duration {
        match self.seen {
            Some((s, since, _)) if s == slot => now - since,
            _ => {
                self.seen = Some((slot, now, None));
                Duration::ZERO
            }
        }
    }

    /// The processor time `slot` used since the engine first read it
    /// (`cpu`: its total now); zero at that first read.
    fn cpu_since(&mut self, cpu: Duration) -> Duration {
        match &mut self.seen {
            Some((_, _, Some(cpu0))) => cpu.saturating_sub(*cpu0),
            Some((_, _, first)) => {
                *first = Some(cpu);
                Duration::ZERO
            }
            None => Duration::ZERO,
        }
    }
}

impl Replayer {
    /// Whether thread `slot` is in a futex wait the recording does not
    /// have (the shim sets bit 0 of its ring's `waiting_unseen` for the
    /// wait's duration).
    fn in_unmatched_wait(&self, slot: u32) -> bool {
        self.log
            .ring(slot)
            .is_some_and(|r| r.waiting_unseen.load(std::sync::atomic::Ordering::Acquire) & 1 != 0)
    }

    /// Batons taken back so far (see [`BatonsTakenBack`]).
    pub fn batons_taken_back(&self) -> BatonsTakenBack {
        self.baton.taken_back
    }

    pub(super) fn watch_baton(&mut self) {
        let Some(slot) = self.log.baton_holder() else {
            self.baton.seen = None;
            return;
        };
        let pid = self.pid_of(slot);
        let running = pid
            .and_then(|p| self.live.get(&p))
            .is_some_and(|t| t.state == ThreadState::Running);
        let give_up = match pid {
            Some(_) if running && self.in_unmatched_wait(slot) => {
                self.baton.taken_back.unseen_lock += 1;
                true
            }
            Some(p) if running => {
                if self.baton.held_for(slot, Instant::now()) < BATON_ASLEEP {
                    return;
                }
                // One read of /proc for both looks. Not running or
                // waiting for a processor (asleep, stopped, ended): it
                // cannot get to its next event by itself.
                let stat = thread_stat(p);
                let cpu = stat.as_ref().map_or(Duration::ZERO, |s| s.cpu);
                if stat.is_none_or(|s| s.state != 'R') {
                    self.baton.taken_back.asleep += 1;
                    true
                } else if self.baton.cpu_since(cpu) > BATON_SPINNING {
                    self.baton.taken_back.spinning += 1;
                    true
                } else {
                    false
                }
            }
            _ => {
                self.baton.taken_back.stopped += 1;
                true
            }
        };
        if give_up {
            super::debug_log(format_args!(
                "baton taken back from t{slot} at turn {} ({:?})",
                self.log.order_turn(),
                self.baton.taken_back
            ));
            self.log.park(slot);
            self.baton.seen = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watch_counts_from_when_it_first_saw_the_holder() {
        let mut w = BatonWatch::default();
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(w.held_for(3, t0), ms(0));
        assert_eq!(w.held_for(3, t0 + ms(5)), ms(5));
        assert_eq!(w.cpu_since(ms(100)), ms(0), "the first read is the base");
        assert_eq!(w.cpu_since(ms(130)), ms(30));
        assert_eq!(w.held_for(4, t0 + ms(6)), ms(0), "a new holder starts over");
        assert_eq!(w.cpu_since(ms(7)), ms(0));
    }

    #[test]
    fn this_threads_processor_time_is_read_from_proc() {
        let pid = nix::unistd::Pid::from_raw(std::process::id() as i32);
        let cpu = |pid| super::thread_stat(pid).expect("our own /proc stat").cpu;
        let before = cpu(pid);
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(50) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        assert!(
            cpu(pid) > before,
            "50 ms of spinning shows as processor time"
        );
    }
}
