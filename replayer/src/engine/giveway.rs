//! No hold without a way out. Every hold replay imposes waits for another
//! thread to do something; when that thread is asleep where rrc cannot
//! see (a futex wait outside the shim: a lock rrc does not order, held by
//! a thread replay holds back), waiting longer cannot help. Replay then
//! gives way at once instead of at the stall timeout:
//!
//! - Nothing can move: every live thread is held by replay (at the
//!   tracer, in the shim's waits, parked past its recorded end) or asleep
//!   in an untimed futex wait outside rrc, and has been for
//!   [`GIVE_WAY_QUIET`] with no stop and no move of the order. Then the
//!   earliest event held back goes ahead of the order (a queued return, a
//!   sync operation waiting in the shim, a call or signal held at its
//!   entry for its rank); the order steps over its rank later. With none
//!   held, an `exit_group` (or process-ending signal) waiting for the
//!   process's other threads goes, and those threads end with events
//!   left: a divergence that names them. With nothing at all to let go,
//!   the standstill is reported as a divergence naming the asleep thread's
//!   next event ([`STANDSTILL_REPORT`]).
//! - A handler that runs alone (the order waits for it) while its thread
//!   is asleep in such a futex: the order goes on.
//!
//! `--stats` counts each kind of hold that gave way, and the stalls that
//! were only ended by the stall timeout (a bug class of their own).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nix::unistd::Pid;
use rrc_trace::SignalPoint;

use super::holds::Hold;
use super::order::{asleep_in_futex, EventOrder};
use super::returns::Step;
use super::threads::{LiveThread, ThreadState};
use super::{debug_log, debug_on, diverged, Replayer, Res};
use crate::divergence::{describe_event, Expected, Observed};
use crate::plan::PlannedEvent;

/// How long nothing may move before a hold gives way.
pub(crate) const GIVE_WAY_QUIET: Duration = Duration::from_millis(2);

/// How many times in a row the standstill must be seen (the threads are
/// looked at one by one, not at one instant).
const QUIET_LOOKS: u32 = 3;

/// With nothing left to let go, how long a standstill lasts before it is
/// reported.
const STANDSTILL_REPORT: Duration = Duration::from_millis(20);
/// Processor time a running thread may use while the order stands still
/// before it counts as spinning (`Replayer::spinning`): several clock
/// ticks, far more than any recorded stretch between two events here.
const SPINNING_CPU: Duration = Duration::from_millis(50);

/// A kind of hold, as counted when it gave way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum WayKind {
    /// A syscall return queued for its rank in the event order.
    Return,
    /// A sync operation waiting in the shim for its rank.
    SyncOp,
    /// A call held at its entry until its rank (it runs for real).
    RunTurn,
    /// A signal held until its rank.
    SignalTurn,
    /// A sync operation waiting in the shim for its object's turn.
    Turn,
    /// An exit waiting for its process's other threads.
    ProcessExit,
    /// A handler that ran alone.
    HandlerAlone,
}

impl WayKind {
    pub fn name(self) -> &'static str {
        match self {
            WayKind::Return => "return at its event rank",
            WayKind::SyncOp => "sync operation at its event rank",
            WayKind::RunTurn => "call run at its event rank",
            WayKind::SignalTurn => "signal at its event rank",
            WayKind::Turn => "sync operation at its object's turn",
            WayKind::ProcessExit => "exit waiting for other threads",
            WayKind::HandlerAlone => "handler run alone",
        }
    }
}

/// Holds that gave way, and stalls, for `--stats`.
#[derive(Debug, Default)]
pub struct WayStats {
    /// Holds that gave way because nothing else could move, by kind.
    pub given_way: BTreeMap<WayKind, u64>,
    /// Standstills with nothing to let go, reported as divergences.
    pub stalls_broken: u64,
    /// Stalls only the stall timeout ended ("no progress"): a bug.
    pub stalls_timed_out: u64,
}

/// How long everything has stood still, as the engine watches it.
#[derive(Debug, Default)]
pub(crate) struct Standstill {
    /// Since when, at which progress count and order turn, seen how often.
    seen: Option<(Instant, u64, u32, u32)>,
}

/// An event held back, the earliest of which goes ahead.
#[derive(Clone, Copy, Debug)]
enum HeldEvent {
    /// A return queued at the tracer.
    Queued,
    /// A sync operation waiting in the shim, of this slot.
    Shim(u32),
    /// A thread held at its entry (`RunTurn` or `SignalTurn`).
    Entry(Pid, WayKind),
}

impl Replayer {
    /// Whether the thread cannot move before replay lets something go:
    /// held at the tracer for the order or an exit, waiting in the shim
    /// for a rank not reached, parked past its end, or asleep in an
    /// untimed futex wait outside rrc. A thread waiting for its recorded
    /// interval, kept after a return, running a call, or running at all,
    /// may move by itself.
    fn standing(&self, pid: Pid, t: &LiveThread) -> bool {
        if t.injecting.is_some() || t.in_flight.is_some() || self.pacing.holds(pid) {
            return false;
        }
        let reached = |rank| self.rank_reached(rank);
        match t.state {
            ThreadState::Held(h) => !self.hold_over(t.logical, h),
            ThreadState::Queued(rank) => !reached(rank),
            ThreadState::Timed | ThreadState::Late(_) | ThreadState::Stopped => false,
            ThreadState::Running => {
                let ring = self.log.ring(t.logical);
                let rank_wait = ring.map_or(0, |r| r.waiting_for_rank.load(Ordering::Acquire));
                if rank_wait != 0 {
                    return !reached(u64::from(rank_wait - 1));
                }
                let turn_wait =
                    ring.is_some_and(|r| r.waiting_for_turn.load(Ordering::Acquire) != 0);
                let parked = ring.is_some_and(|r| r.parked_past_end.load(Ordering::Acquire) != 0);
                // In the program's own wait loop (a futex wait the recording
                // does not have, made again and again with a short bound).
                let unseen =
                    ring.is_some_and(|r| t.waits_unseen(r.waiting_unseen.load(Ordering::Acquire)));
                turn_wait || parked || unseen || asleep_in_futex(pid, true) || self.spinning(pid, t)
            }
        }
    }

    /// Whether a running thread has used `SPINNING_CPU` of processor time
    /// while the order stood where it stands and no thread stopped: it
    /// spins where rrc does not see (a spin lock another thread holds,
    /// one that waits for its turn in the shim), and cannot move by
    /// itself. Time spent waiting for a processor does not count.
    fn spinning(&self, pid: Pid, t: &LiveThread) -> bool {
        let Some(stat) = super::order::thread_stat(pid) else {
            return false;
        };
        let here = (
            self.log.order_turn(),
            self.shared.progress.load(Ordering::Acquire),
        );
        // A thread computing toward its next event took as long when
        // recorded: only far more than that is a spin.
        let recorded = self.plan.threads[t.logical as usize]
            .events
            .front()
            .and_then(PlannedEvent::call_times)
            .map_or(0, |(interval, _)| interval);
        let most = SPINNING_CPU.max(Duration::from_nanos(recorded.saturating_mul(2)));
        match t.spin_look.get() {
            Some((turn, stops, cpu)) if (turn, stops) == here => {
                stat.cpu.saturating_sub(cpu) >= most
            }
            _ => {
                t.spin_look.set(Some((here.0, here.1, stat.cpu)));
                false
            }
        }
    }

    /// A thread that waits in the shim past the last sync operation it
    /// made when recorded, while syscalls it made after that are still
    /// to come, has left the recording (it calls what it did not call
    /// then): a divergence now, not a stall.
    pub(super) fn departed_past_sync_end(&self) -> Res {
        for (pid, t) in &self.live {
            let parked = self
                .log
                .ring(t.logical)
                .is_some_and(|r| r.parked_past_end.load(Ordering::Acquire) != 0);
            if !parked {
                continue;
            }
            // Calls its shim answered in-process since its last stop are
            // still at the front here (taken at its next stop): past them.
            let answered = self.log.syscall_buf(t.logical).map_or(0, |b| {
                b.replay_taken().saturating_sub(t.in_process_seen) as usize
            });
            // Nothing after it, or a signal delivered while it waited (in
            // that operation, at the end, to a handler or by time): blocked
            // there when recorded.
            let next = match self.plan.threads[t.logical as usize].events.peek(answered) {
                None => continue,
                Some(PlannedEvent::Signal(s))
                    if matches!(s.at, SignalPoint::WhileWaiting(_) | SignalPoint::Elapsed(_)) =>
                {
                    continue
                }
                Some(e) => e,
            };
            // Asleep there (last: it reads /proc), not running a handler on
            // top of it (the flag stays set while one runs).
            if !asleep_in_futex(*pid, true) {
                continue;
            }
            let next = describe_event(next);
            return diverged(
                t.logical,
                Expected::Next(Some(next)),
                Observed::Text(
                    "a sync operation (a lock, a wait, or a libc call made in recorded order) \
                     after the last one it made when recorded"
                        .into(),
                ),
            );
        }
        Ok(())
    }

    /// Whether the order has reached `rank`, or let it go early.
    pub(super) fn rank_reached(&self, rank: u64) -> bool {
        EventOrder::reached(&self.log, rank) || self.order.is_early(rank)
    }

    /// Gives way when nothing can move (see the module's comment).
    pub(super) fn give_way(&mut self) -> Res {
        let now = Instant::now();
        let turn = self.log.order_turn();
        // Cheap looks first: the order moved lately, or a thread will move
        // by itself; only then /proc.
        let order_moving =
            self.order.enabled() && self.order.still_for(turn, now) < GIVE_WAY_QUIET / 2;
        let moves_by_itself = |t: &LiveThread| {
            t.injecting.is_some()
                || t.in_flight.is_some()
                || matches!(
                    t.state,
                    ThreadState::Timed | ThreadState::Late(_) | ThreadState::Stopped
                )
        };
        if order_moving
            || self.live.is_empty()
            || self.live.values().any(moves_by_itself)
            || !self.live.iter().all(|(p, t)| self.standing(*p, t))
        {
            self.standstill.seen = None;
            return Ok(());
        }
        let progress = self.shared.progress.load(Ordering::Acquire);
        let (since, looks) = match self.standstill.seen {
            Some((since, p, t, looks)) if p == progress && t == turn => (since, looks + 1),
            _ => (now, 1),
        };
        self.standstill.seen = Some((since, progress, turn, looks));
        let quiet = now.duration_since(since);
        if looks < QUIET_LOOKS || quiet < GIVE_WAY_QUIET {
            return Ok(());
        }
        if self.end_asleep_handler()?
            || self.let_earliest_go()?
            || self.let_turn_go()
            || self.let_exit_go()?
        {
            // Something moves: watch again from here.
            self.standstill.seen = None;
            self.order.restart_still(turn, now);
            return Ok(());
        }
        if quiet >= STANDSTILL_REPORT {
            self.standstill.seen = None;
            return self.report_standstill();
        }
        Ok(())
    }

    fn gave_way(&mut self, kind: WayKind) {
        *self.ways.given_way.entry(kind).or_default() += 1;
    }

    /// A handler the order waits for sleeps in a futex outside rrc: the
    /// order goes on.
    fn end_asleep_handler(&mut self) -> Res<bool> {
        let asleep = self
            .live
            .iter()
            .find(|(pid, t)| t.handler_alone.is_some() && asleep_in_futex(**pid, false))
            .map(|(pid, _)| *pid);
        let Some(pid) = asleep else {
            return Ok(false);
        };
        debug_log(format_args!(
            "give way: handler of {pid} asleep outside rrc"
        ));
        self.gave_way(WayKind::HandlerAlone);
        self.end_handler_alone(pid)?;
        Ok(true)
    }

    /// The earliest event replay holds back for its rank, if any.
    fn earliest_held(&self) -> Option<(u64, HeldEvent)> {
        let queued = self
            .order
            .first_queued()
            .map(|(rank, _)| (rank, HeldEvent::Queued));
        let shim = self
            .earliest_shim_wait()
            .map(|(rank, slot)| (rank, HeldEvent::Shim(slot)));
        let entries = self.live.iter().filter_map(|(pid, t)| match t.hold() {
            Some(Hold::RunTurn(r)) if !self.rank_reached(r) => {
                Some((r, HeldEvent::Entry(*pid, WayKind::RunTurn)))
            }
            Some(Hold::SignalTurn(r)) if !self.rank_reached(r) => {
                Some((r, HeldEvent::Entry(*pid, WayKind::SignalTurn)))
            }
            _ => None,
        });
        queued
            .into_iter()
            .chain(shim)
            .chain(entries)
            .min_by_key(|(rank, _)| *rank)
    }

    /// Lets the earliest held event go ahead of the order. Returns
    /// whether there was one.
    pub(super) fn let_earliest_go(&mut self) -> Res<bool> {
        let Some((rank, held)) = self.earliest_held() else {
            return Ok(false);
        };
        if debug_on() {
            // Reads /proc for every thread: only when asked for.
            debug_log(format_args!(
                "give way: rank {rank} ({held:?}) goes ahead of rank {}; threads: {}",
                self.log.order_turn(),
                self.standing_states()
            ));
        }
        self.order.went_early(rank);
        self.stats.early_returns += 1;
        match held {
            HeldEvent::Queued => {
                self.gave_way(WayKind::Return);
                if let Some(q) = self.order.take(rank) {
                    self.unpark(q.pid);
                    self.run_steps(Step::Pace {
                        pid: q.pid,
                        ret: q.ret,
                    })?;
                }
            }
            HeldEvent::Shim(slot) => {
                self.gave_way(WayKind::SyncOp);
                self.log.release_early(slot, rank as u32);
            }
            HeldEvent::Entry(pid, kind) => {
                self.gave_way(kind);
                self.release_hold(pid)?;
            }
        }
        Ok(true)
    }

    /// A thread waiting in the shim for an object's turn (off the event
    /// order) while nothing can move: the turn belongs to a thread blocked
    /// where rrc does not see. The wait goes.
    fn let_turn_go(&mut self) -> bool {
        let waiting = self.live.values().find_map(|t| {
            let ring = self.log.ring(t.logical)?;
            let turn = ring.waiting_for_turn.load(Ordering::Acquire);
            (turn != 0).then_some((ring, turn))
        });
        let Some((ring, turn)) = waiting else {
            return false;
        };
        debug_log(format_args!("give way: a wait for turn {} goes", turn - 1));
        ring.turn_released.store(turn, Ordering::SeqCst);
        self.gave_way(WayKind::Turn);
        true
    }

    /// Each thread's state as the standstill check sees it (`RRC_DEBUG`).
    fn standing_states(&self) -> String {
        let mut v: Vec<String> = self
            .live
            .iter()
            .map(|(pid, t)| {
                let ring = self.log.ring(t.logical);
                let word = |f: fn(&rrc_synclog::SyncRing) -> u32| ring.map_or(0, f);
                format!(
                    "t{} {:?} rank-wait {} turn-wait {} unseen {} asleep {}",
                    t.logical,
                    t.state,
                    word(|r| r.waiting_for_rank.load(Ordering::Acquire)),
                    word(|r| r.waiting_for_turn.load(Ordering::Acquire)),
                    word(|r| r.waiting_unseen.load(Ordering::Acquire)),
                    asleep_in_futex(*pid, true)
                )
            })
            .collect();
        v.sort();
        v.join("; ")
    }

    /// An exit (or process-ending signal) held for its process's other
    /// threads, which cannot move: it goes; they end with what they have
    /// not replayed, a divergence.
    fn let_exit_go(&mut self) -> Res<bool> {
        let exiting = self
            .live
            .iter()
            .find(|(_, t)| {
                matches!(
                    t.hold(),
                    Some(Hold::ProcessExit | Hold::FatalSignal { .. } | Hold::Fault(_))
                )
            })
            .map(|(pid, _)| *pid);
        let Some(pid) = exiting else {
            return Ok(false);
        };
        debug_log(format_args!("give way: exit of {pid} goes"));
        self.gave_way(WayKind::ProcessExit);
        self.release_hold(pid)?;
        Ok(true)
    }

    /// Nothing can move and replay holds nothing it could let go: the
    /// program waits for itself where rrc cannot see. Names the asleep
    /// thread whose event is next in the order, or else the first one.
    fn report_standstill(&mut self) -> Res {
        // Running (not parked at the tracer), each standing somewhere: asleep
        // in a futex wait, or in the program's own loop of bounded waits on
        // a lock another thread holds, or waiting in the shim.
        let mut stuck: Vec<(u32, &'static str)> = self
            .live
            .iter()
            .filter(|(_, t)| t.state == ThreadState::Running)
            .map(|(pid, t)| (t.logical, self.where_standing(*pid, t)))
            .collect();
        stuck.sort();
        let owner = self
            .plan
            .rank_owner
            .get(self.log.order_turn() as usize)
            .copied();
        // The thread whose event is next, else one asleep where rrc does
        // not see, else any.
        let Some(&(thread, how)) = stuck
            .iter()
            .find(|(l, _)| Some(*l) == owner)
            .or_else(|| stuck.iter().find(|(_, how)| *how != IN_SHIM))
            .or_else(|| stuck.first())
        else {
            return Ok(());
        };
        self.ways.stalls_broken += 1;
        let plan = &self.plan.threads[thread as usize];
        let expected = plan.events.front().map_or_else(
            || Expected::Next(None),
            |e| Expected::Next(Some(describe_event(e))),
        );
        let others: Vec<String> = self
            .live
            .values()
            .filter(|t| t.logical != thread)
            .map(|t| match t.hold() {
                Some(h) => format!("t{} held ({h:?})", t.logical),
                None => format!("t{} asleep or waiting in the shim", t.logical),
            })
            .collect();
        diverged(
            thread,
            expected,
            Observed::Text(format!(
                "{how}, and no thread can move ({})",
                others.join(", ")
            )),
        )
    }

    /// Where a running thread that cannot move stands, for the report.
    fn where_standing(&self, pid: Pid, t: &LiveThread) -> &'static str {
        if asleep_in_futex(pid, true) {
            return "asleep in a futex wait rrc does not see";
        }
        let unseen = self
            .log
            .ring(t.logical)
            .is_some_and(|r| t.waits_unseen(r.waiting_unseen.load(Ordering::Acquire)));
        if unseen {
            "waiting, wait after wait, on a futex lock rrc does not see (another thread holds it)"
        } else if self.spinning(pid, t) {
            "spinning without a syscall (on a lock rrc does not see, say)"
        } else {
            IN_SHIM
        }
    }
}

/// [`Replayer::where_standing`] of a thread waiting in the shim (for its
/// rank or turn, or parked past the end of its sync operations).
const IN_SHIM: &str = "waiting in rrc's shim for a place in the order that does not come";
