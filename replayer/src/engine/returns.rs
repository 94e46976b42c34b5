//! Letting a replayed syscall return. A return waits for its rank in the
//! event order (`order.rs`), then for its recorded interval
//! (`pacing.rs`); then the thread goes on, unless it is kept until its
//! next event is next (`LateReturn`) or its next event is a signal whose
//! handler ran alone. Each step says what follows it as [`Step`] values,
//! which `run_steps` carries out one at a time, in the order the steps
//! happened when they called each other: no step calls another.

use std::time::{Duration, Instant};

use nix::unistd::Pid;
use rrc_synclog::LockGate;
use rrc_trace::SignalPoint;

use super::order::{EventOrder, PendingReturn};
use super::pacing::Timed;
use super::threads::ThreadState;
use super::{debug_log, Replayer, Res};
use crate::plan::PlannedEvent;

/// A thread whose syscall return has taken its place in the event order
/// but which is kept stopped until its arrival at its next sync operation
/// is next: the code between the two (which may touch memory other
/// threads touch without a lock: counters, flags, statistics) then runs
/// after the events other threads made meanwhile when recorded, not
/// alongside them. The recorder stamps a return when it lets the thread
/// go, but on a busy machine the thread may run that code much later; its
/// arrival at the next operation is stamped by the thread itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LateReturn {
    pub next_rank: u64,
    pub since: Instant,
    /// Kept for a signal's handler (`SignalPoint::AfterReturn`): not let
    /// go by time, only by its turn or a standstill.
    pub for_signal: bool,
    /// A lock word (a tracee address) free at the return, and its value
    /// while free: the thread's next recorded call is a wait on it, after
    /// another thread took it (see `gate_after` in the plan). Kept, once
    /// its turn has come, until another thread holds the word, or for
    /// `GATE_LIMIT`.
    pub gate: Option<LockGate>,
}

/// The longest a thread is kept for its lock word (`LateReturn::gate`),
/// as the shim's own gate: far longer than a holder on its way to the
/// lock takes, and short enough to be no hold without a way out.
const GATE_LIMIT: Duration = Duration::from_millis(1);

/// A thread kept for `LateReturn` goes anyway once the event order has
/// stood still this long, and after this long in all (the shim's late
/// returns after futex waits keep the same bounds).
pub(crate) const LATE_RETURN_STILL: Duration = rrc_synclog::LATE_STILL;
const LATE_RETURN_LIMIT: Duration = rrc_synclog::LATE_LIMIT;

/// Whether a thread kept for `LateReturn` goes: its next event's turn has
/// come (`turn`), the order stands still (`still`), or it has been kept
/// long enough.
pub(crate) fn late_return_goes(turn: bool, still: bool, kept: Duration) -> bool {
    turn || still || kept >= LATE_RETURN_LIMIT
}

/// One step of letting returns go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// A return whose rank has come (or that has none): wait for its
    /// recorded interval.
    Pace { pid: Pid, ret: PendingReturn },
    /// A return whose interval has passed (`held`: it was waited for).
    Return {
        pid: Pid,
        rank: Option<u64>,
        interval_ns: u64,
        held: bool,
    },
    /// The event at this rank has happened: the order may move on.
    Advance(Option<u64>),
    /// The same, for a thread kept stopped after it (`LateReturn`): it
    /// cannot have the run of the program, so the order goes on at once
    /// (else it would stand still until the replayer took the baton back
    /// from a stopped thread).
    AdvanceKept(Option<u64>),
    /// Queued returns whose rank has come go ahead.
    ReleaseRanked,
    /// Threads kept after their return whose time has come go on.
    ReleaseLate,
}

impl Replayer {
    /// With `--order-returns`, a return waits until every return recorded
    /// before it has happened: threads then see each other's syscall
    /// effects, and run the code between syscalls, in the recorded order,
    /// which also orders the data races between them that no lock covers.
    pub(super) fn return_in_order(
        &mut self,
        pid: Pid,
        rank: Option<u64>,
        interval_ns: u64,
        return_ns: u64,
    ) -> Res {
        let ret = PendingReturn {
            rank,
            interval_ns,
            return_ns,
        };
        match rank {
            Some(r) if self.order.must_wait(&self.log, rank) => {
                self.order.queue(r, pid, ret);
                if let Some(t) = self.live.get_mut(&pid) {
                    t.state = ThreadState::Queued(r);
                }
                Ok(())
            }
            _ => self.run_steps(Step::Pace { pid, ret }),
        }
    }

    /// Carries out `first` and every step that follows from it, depth
    /// first: a step's follow-ups all happen before the steps after it.
    pub(super) fn run_steps(&mut self, first: Step) -> Res {
        let mut stack = vec![first];
        while let Some(step) = stack.pop() {
            let next = match step {
                Step::Pace { pid, ret } => self.pace(pid, ret),
                Step::Return {
                    pid,
                    rank,
                    interval_ns,
                    held,
                } => self.return_now(pid, rank, interval_ns, held)?,
                Step::Advance(rank) => self.advance(rank, false),
                Step::AdvanceKept(rank) => self.advance(rank, true),
                Step::ReleaseRanked => self.release_ranked(),
                Step::ReleaseLate => {
                    self.release_late()?;
                    Vec::new()
                }
            };
            stack.extend(next.into_iter().rev());
        }
        Ok(())
    }

    /// Queued returns whose rank has come (the shim may have moved the
    /// order on) go ahead.
    pub(super) fn release_ranked_returns(&mut self) -> Res {
        self.run_steps(Step::ReleaseRanked)
    }

    /// The handler `pid` ran alone has returned (or the thread made a
    /// syscall, or ended): the event order goes on.
    pub(super) fn end_handler_alone(&mut self, pid: Pid) -> Res {
        match self.live.get_mut(&pid).and_then(|t| t.handler_alone.take()) {
            Some(rank) => self.run_steps(Step::Advance(Some(rank))),
            None => Ok(()),
        }
    }

    /// Lets a replayed syscall return, but no sooner than its recorded
    /// interval after the thread's previous return: emulated calls return
    /// at once, and without this, threads would race ahead of each other
    /// and resolve untracked data races differently than when recorded.
    ///
    /// With `Anchor::Shared` (the default) the return also waits for its
    /// recorded time on the shared timeline, so threads do not drift apart;
    /// BENCHMARKS.md has the measurements behind that choice.
    fn pace(&mut self, pid: Pid, ret: PendingReturn) -> Vec<Step> {
        let Some(t) = self.live.get(&pid) else {
            return Vec::new();
        };
        let PendingReturn {
            rank,
            interval_ns,
            return_ns,
        } = ret;
        let now = Instant::now();
        if let Some(due) = self
            .pacing
            .hold_until(t.last_return, interval_ns, return_ns, now)
        {
            self.hold_return(pid, due, Timed::Return { interval_ns, rank });
            return Vec::new();
        }
        vec![Step::Return {
            pid,
            rank,
            interval_ns,
            held: false,
        }]
    }

    fn return_now(
        &mut self,
        pid: Pid,
        rank: Option<u64>,
        interval_ns: u64,
        held: bool,
    ) -> Res<Vec<Step>> {
        let now = Instant::now();
        if let Some(t) = self.live.get_mut(&pid) {
            let actual = now.duration_since(t.last_return).as_nanos() as i64;
            let error = actual - interval_ns as i64;
            if self.stats.keep_samples {
                self.stats.error_ns.push(error);
            }
            if held {
                if self.stats.keep_samples {
                    self.stats.held_error_ns.push(error);
                }
                self.stats.held_total += Duration::from_nanos(interval_ns);
            }
            t.returned(now);
        }
        let alone = self.live.get(&pid).is_some_and(|t| {
            matches!(
                self.plan.threads[t.logical as usize].events.front(),
                Some(PlannedEvent::Signal(s)) if s.at == SignalPoint::InterruptedCall
            )
        });
        if alone {
            // As when recorded: the others reach their next event first.
            self.let_others_settle(pid);
        } else if let Some((next_rank, for_signal, gate)) = self.kept_after(pid, rank) {
            self.stats.late_returns += 1;
            if gate.is_some() {
                let gates = &self.log.header().lock_gates;
                gates.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            debug_log(format_args!(
                "late return: {pid} kept after rank {rank:?} until {next_rank} (lock word {gate:x?})"
            ));
            if let Some(t) = self.live.get_mut(&pid) {
                t.state = ThreadState::Late(LateReturn {
                    next_rank,
                    since: Instant::now(),
                    for_signal,
                    gate,
                });
            }
            return Ok(vec![Step::AdvanceKept(rank), Step::ReleaseLate]);
        }
        self.let_go(pid, 0)?;
        match rank {
            Some(r) if alone && self.order.enabled() && self.rank_is_now(r) => {
                if let Some(t) = self.live.get_mut(&pid) {
                    t.handler_alone = Some(r);
                }
                Ok(Vec::new())
            }
            _ => Ok(vec![Step::Advance(rank)]),
        }
    }

    /// After the event at `rank`: the next event in the order may happen;
    /// if it is a return waiting here, it goes ahead.
    /// `kept`: the event's thread stays stopped (no baton for it).
    fn advance(&mut self, rank: Option<u64>, kept: bool) -> Vec<Step> {
        let slot = rank
            .and_then(|r| self.plan.rank_owner.get(r as usize).copied())
            .filter(|_| !kept)
            .unwrap_or(u32::MAX);
        if self.order.advance(&self.log, rank, slot) {
            vec![Step::ReleaseRanked]
        } else {
            Vec::new()
        }
    }

    /// The queued return whose rank has come, if any, goes ahead; after
    /// one whose rank had passed, the next is looked at too.
    fn release_ranked(&mut self) -> Vec<Step> {
        let Some((rank, q, passed)) = self.order.next_due(&self.log) else {
            return Vec::new();
        };
        if passed {
            debug_log(format_args!(
                "event order: rank {rank} was passed while queued"
            ));
        }
        self.unpark(q.pid);
        let mut next = vec![Step::Pace {
            pid: q.pid,
            ret: q.ret,
        }];
        if passed {
            next.push(Step::ReleaseRanked);
        }
        next
    }

    /// Whether the thread is kept after its return at `rank`: until which
    /// rank (its late return's, or this one), whether for a signal, and
    /// the lock word it waits to see held.
    fn kept_after(&self, pid: Pid, rank: Option<u64>) -> Option<(u64, bool, Option<LockGate>)> {
        let gate = rank.and_then(|r| self.lock_gate(pid, r));
        match (self.late_return_rank(pid, rank), gate, rank) {
            (Some((next, for_signal)), gate, _) => Some((next, for_signal, gate)),
            (None, Some(word), Some(r)) => Some((r, false, Some(word))),
            _ => None,
        }
    }

    /// The lock word of the thread's next recorded call, a futex wait
    /// right after the event at `rank` on a lock another thread held (see
    /// `gate_after` in the plan), if the word is free now.
    fn lock_gate(&self, pid: Pid, rank: u64) -> Option<LockGate> {
        let t = self.live.get(&pid)?;
        let gate = self.log.ring(t.logical)?.peek()?.lock_gate_after(rank)?;
        word_is(pid, gate.word, gate.free).then_some(gate)
    }

    /// The rank of the thread's arrival at its next sync operation, if its
    /// return at `rank` should wait for it (`LateReturn`): only at its turn
    /// in the order, when that arrival is the thread's next ranked event
    /// and others' events come between, and when its next syscall or
    /// rdtsc has a place in the order too (not a signal).
    fn late_return_rank(&self, pid: Pid, rank: Option<u64>) -> Option<(u64, bool)> {
        let r = rank.filter(|r| self.rank_is_now(*r))?;
        let t = self.live.get(&pid)?;
        if t.injecting.is_some() || t.handler_alone.is_some() {
            return None;
        }
        let next = match self.plan.threads[t.logical as usize].events.front()? {
            // A handler that ran alone after this return, at a later place
            // in the order: kept until the order gets there, whatever
            // `--no-late-returns` says (it is the signal's place).
            PlannedEvent::Signal(s) if matches!(s.at, SignalPoint::AfterReturn(_)) => {
                let at = *self.plan.return_rank.get(&(t.logical, s.index))?;
                return (at > r + 1).then_some((at, true));
            }
            _ if !self.late_returns => return None,
            next => next,
        };
        self.plan
            .late_return_to(t.logical, r, next)
            .map(|at| (at, false))
    }

    /// Lets go the threads kept after their return whose next event is
    /// now next (or passed), or that the order has stopped moving for, or
    /// that have been kept long enough.
    fn release_late(&mut self) -> Res {
        if !self.live.values().any(|t| t.is_late()) {
            return Ok(());
        }
        // Standing still while the next event's thread waits for its
        // recorded time, or runs toward it, is the recorded pace; only
        // asleep outside rrc's view may it be waiting for a kept thread.
        let turn_now = self.log.order_turn();
        // The next event's thread waiting for its recorded interval is
        // rrc's hold: the standstill counts from its end.
        if self.next_owner_paced() {
            self.order.restart_still(turn_now, Instant::now());
        }
        let still_for = self.order.still_for(turn_now, Instant::now());
        let blocked = still_for >= LATE_RETURN_STILL && self.next_owner_blocked();
        // The kept threads' next events, nearest first: at a standstill
        // they go in that order, one `LATE_STAGGER` apart (see
        // `late_still`). A thread kept alone goes at once: no other kept
        // thread's event comes before its own, and the next event's
        // thread is asleep, often on a lock the kept one holds (stdio's,
        // inside a printf that flushed).
        let mut kept_ranks: Vec<u64> = self
            .live
            .values()
            .filter_map(|t| match t.state {
                ThreadState::Late(l) if !l.for_signal => Some(l.next_rank),
                _ => None,
            })
            .collect();
        kept_ranks.sort_unstable();
        // (pid, its turn has come, it goes with its lock word still free,
        // how long it was kept)
        let ready: Vec<(Pid, bool, bool, Duration)> = self
            .live
            .iter()
            .filter_map(|(pid, t)| match t.state {
                ThreadState::Late(l) => {
                    let turn = EventOrder::reached(&self.log, l.next_rank);
                    let kept = if l.for_signal {
                        Duration::ZERO
                    } else {
                        l.since.elapsed()
                    };
                    let free = turn && l.gate.is_some_and(|g| word_is(*pid, g.word, g.free));
                    let turn = turn && !(free && kept < GATE_LIMIT);
                    // Nearest next event first (see `late_still`).
                    let nearer = kept_ranks.partition_point(|r| *r < l.next_rank);
                    let place = u32::try_from(nearer + 1).unwrap_or(u32::MAX);
                    let still = blocked && still_for >= rrc_synclog::late_still(place);
                    late_return_goes(turn, still, kept).then_some((*pid, turn, free, kept))
                }
                _ => None,
            })
            .collect();
        for (pid, turn, gate_gave_way, kept) in ready {
            if gate_gave_way {
                let given_way = &self.log.header().lock_gates_given_way;
                given_way.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            debug_log(format_args!(
                "late return: {pid} goes at turn {turn_now} (its turn: {turn}; kept {kept:?}, \
                 order still {still_for:?}, next blocked {blocked})"
            ));
            if !turn {
                self.stats.late_released_stalled += 1;
            }
            if let Some(t) = self.live.get_mut(&pid) {
                t.state = ThreadState::Stopped;
                t.returned(Instant::now());
            }
            self.let_go(pid, 0)?;
        }
        Ok(())
    }
}

/// Whether the tracee's word at `addr` reads 0 (false if unreadable).
fn word_is(pid: Pid, addr: u64, value: u32) -> bool {
    use rrc_interposer::{Tracee, TraceeMemory};
    Tracee::new(pid)
        .read(addr, 4)
        .is_ok_and(|w| w == value.to_ne_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_return_goes_at_its_turn_when_still_or_after_the_limit() {
        let short = Duration::from_micros(50);
        assert!(late_return_goes(true, false, short));
        assert!(late_return_goes(false, true, short));
        assert!(!late_return_goes(false, false, short));
        assert!(late_return_goes(false, false, LATE_RETURN_LIMIT));
    }
}
