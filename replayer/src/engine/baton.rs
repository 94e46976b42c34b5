//! Serialised replay (a trace recorded with `rrc-record --serialize`): a
//! thread whose event was let go has the run of the program (the baton,
//! in the sync log) until it stops at its next event, as it had when
//! recorded; the order moves on when it parks. Here the engine takes the
//! baton back from a thread that cannot get to its next event by itself:
//! one parked by replay, ended, asleep in a wait rrc does not see, or
//! running far longer than any recorded stretch of code should.

use std::time::{Duration, Instant};

use super::order::blocked_in_futex;
use super::threads::ThreadState;
use super::Replayer;

/// How long the thread with the baton may sleep where rrc cannot see it.
const BATON_ASLEEP: Duration = Duration::from_millis(2);
/// How long it may run before the next event goes anyway (a spin that
/// waits for another thread would otherwise never end).
const BATON_RUNNING: Duration = Duration::from_millis(50);

/// Who had the baton when the engine last looked, and since when.
#[derive(Debug, Default)]
pub(crate) struct BatonWatch {
    seen: Option<(u32, Instant)>,
}

impl BatonWatch {
    /// How long `slot` has had the baton, counting from the first look.
    fn held_for(&mut self, slot: u32, now: Instant) -> Duration {
        match self.seen {
            Some((s, since)) if s == slot => now - since,
            _ => {
                self.seen = Some((slot, now));
                Duration::ZERO
            }
        }
    }
}

impl Replayer {
    pub(super) fn watch_baton(&mut self) {
        let Some(slot) = self.log.baton_holder() else {
            self.baton.seen = None;
            return;
        };
        let held = self.baton.held_for(slot, Instant::now());
        let pid = self.pid_of(slot);
        let running = pid
            .and_then(|p| self.live.get(&p))
            .is_some_and(|t| t.state == ThreadState::Running);
        let give_up = match pid {
            Some(p) if running => {
                (held > BATON_ASLEEP && blocked_in_futex(p)) || held > BATON_RUNNING
            }
            _ => true,
        };
        if give_up {
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
        assert_eq!(w.held_for(3, t0), Duration::ZERO);
        assert_eq!(
            w.held_for(3, t0 + Duration::from_millis(5)),
            Duration::from_millis(5)
        );
        assert_eq!(w.held_for(4, t0 + Duration::from_millis(6)), Duration::ZERO);
    }
}
