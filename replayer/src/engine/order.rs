//! The event order across threads (`--order-returns`): every syscall
//! return and sync operation has a rank; a return waits for its rank.
//! [`EventOrder`] keeps the queued returns and the ranks let go early and
//! decides which return goes next; the engine's side here skips ranks a
//! thread can no longer reach and lets a return go early when the order
//! is stuck outside rrc's view.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nix::unistd::Pid;
use rrc_synclog::SharedSyncLog;

use super::holds::Hold;
use super::returns::Step;
use super::threads::ThreadState;
use super::{debug_log, Replayer, Res};
use crate::plan::PlannedEvent;

/// How often the tracer checks for threads blocked at a later rank of
/// their own while it has nothing else to do.
pub(crate) const INVERSION_CHECK: Duration = Duration::from_millis(2);

/// How long the event order may stand still, with the thread whose event
/// is next asleep in a futex outside rrc's view, before a held return goes
/// ahead early (`break_untraced_block`).
const UNTRACED_BLOCK_WAIT: Duration = Duration::from_millis(20);

/// How long the order may stand still, with the thread whose event is
/// next spinning on yields its recording does not have (a spin lock held
/// by a thread the order holds), before a held return goes ahead: such a
/// thread tells at once what it waits for, where a sleeping one does not.
const SPINNING_OWNER_WAIT: Duration = Duration::from_millis(4);

/// Extra yields that make the thread whose event is next a spinner.
const SPINNING_YIELDS: u32 = 4;

/// How far behind the recorded timeline a running thread must be before
/// it counts as stuck (spinning on an atomic that a held-back thread
/// would set: CPython's GIL hand-over needs this).
const STUCK_BEHIND_TIMELINE: Duration = Duration::from_millis(20);

/// A replayed syscall's return still to be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PendingReturn {
    /// Its place in the event order, if it has one.
    pub rank: Option<u64>,
    /// The recorded time since the thread's previous return.
    pub interval_ns: u64,
    /// The recorded time since the start.
    pub return_ns: u64,
}

/// A return queued for its rank.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Queued {
    pub pid: Pid,
    pub ret: PendingReturn,
}

/// The tracer's side of the event order. It never resumes a thread: it
/// says which queued return goes next.
#[derive(Debug)]
pub(crate) struct EventOrder {
    enabled: bool,
    /// Returns waiting for their turn in the recorded order, by rank.
    queued: BTreeMap<u64, Queued>,
    /// Ranks whose event went ahead early (see `break_untraced_block`):
    /// the order steps over them when it gets there.
    early: BTreeSet<u64>,
    /// Where the order stands still, and since when.
    still: Standstill,
}

/// The rank the order has been at, since when, and its thread's count
/// of yields its recording does not have when first looked at there
/// (see `EventOrder::spins`).
#[derive(Debug)]
struct Standstill {
    turn: u32,
    since: Instant,
    yields: Option<u32>,
}

impl Standstill {
    fn at(turn: u32, since: Instant) -> Standstill {
        Standstill {
            turn,
            since,
            yields: None,
        }
    }
}

impl EventOrder {
    pub fn new(enabled: bool, now: Instant) -> EventOrder {
        EventOrder {
            enabled,
            queued: BTreeMap::new(),
            early: BTreeSet::new(),
            still: Standstill::at(0, now),
        }
    }

    /// Whether returns are replayed in their recorded order at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether the order (shared with the shim's sync operations) has
    /// reached `rank`.
    pub fn is_now(log: &SharedSyncLog, rank: u64) -> bool {
        log.order_turn() == rank as u32
    }

    /// Whether a return at `rank` must wait for its turn (not if it was
    /// let go early).
    pub fn must_wait(&self, log: &SharedSyncLog, rank: Option<u64>) -> bool {
        matches!(rank, Some(r) if self.enabled
            && !Self::is_now(log, r)
            && !log.rank_passed(r)
            && !self.early.contains(&r))
    }

    /// Whether the event at `rank` was let go ahead of the order.
    pub fn is_early(&self, rank: u64) -> bool {
        self.early.contains(&rank)
    }

    /// Whether something held at `rank` may go: its turn, or passed.
    pub fn reached(log: &SharedSyncLog, rank: u64) -> bool {
        Self::is_now(log, rank) || log.rank_passed(rank)
    }

    pub fn queue(&mut self, rank: u64, pid: Pid, ret: PendingReturn) {
        self.queued.insert(rank, Queued { pid, ret });
    }

    /// Drops a queued return (its thread ended).
    pub fn unqueue(&mut self, rank: u64) {
        self.queued.remove(&rank);
    }

    /// The earliest queued return, if its rank has come: it leaves the
    /// queue. `passed`: the order had passed it (skipped it), so the one
    /// behind it may be due too.
    pub fn next_due(&mut self, log: &SharedSyncLog) -> Option<(u64, Queued, bool)> {
        let (&rank, _) = self.queued.first_key_value()?;
        // A rank the order has passed goes too, or it would hide the ones
        // behind it.
        let passed = log.rank_passed(rank);
        if !Self::is_now(log, rank) && !passed {
            return None;
        }
        let q = self.queued.remove(&rank)?;
        Some((rank, q, passed))
    }

    /// The event at `rank`, of thread `slot`, has happened: the order
    /// moves on, if it was at `rank` (a rank already passed is not passed
    /// on again); serialised, when the thread stops again (see
    /// `SharedSyncLog::finish_rank`).
    pub fn advance(&self, log: &SharedSyncLog, rank: Option<u64>, slot: u32) -> bool {
        match rank {
            Some(r) if self.enabled && Self::is_now(log, r) => {
                log.finish_rank(slot, r);
                true
            }
            _ => false,
        }
    }

    /// Whether the current rank went ahead early: it is stepped over.
    pub fn take_early(&mut self, now: u32) -> bool {
        self.early.remove(&u64::from(now))
    }

    /// The event at `rank` went ahead of the order.
    pub fn went_early(&mut self, rank: u64) {
        self.early.insert(rank);
    }

    /// The earliest queued return.
    pub fn first_queued(&self) -> Option<(u64, Queued)> {
        self.queued.first_key_value().map(|(r, q)| (*r, *q))
    }

    /// Takes the queued return at `rank` out of the queue.
    pub fn take(&mut self, rank: u64) -> Option<Queued> {
        self.queued.remove(&rank)
    }

    /// The lowest rank waited for by a queued return or an early event.
    pub fn lowest_waited(&self) -> Option<u64> {
        let queued = self.queued.keys().next().copied();
        let early = self.early.first().copied();
        queued.into_iter().chain(early).min()
    }

    /// How long the order has stood at rank `turn` (or since a held event
    /// was last let go ahead of it).
    pub fn still_for(&mut self, turn: u32, now: Instant) -> Duration {
        if turn != self.still.turn {
            self.still = Standstill::at(turn, now);
        }
        now.duration_since(self.still.since)
    }

    /// An event went ahead of the order at `turn`: the order counts as
    /// moving again.
    pub fn restart_still(&mut self, turn: u32, now: Instant) {
        self.still = Standstill::at(turn, now);
    }

    /// Whether the thread whose event is next has made `SPINNING_YIELDS`
    /// yields its recording does not have (`yields`, its count) since the
    /// order got where it stands (`still_for` says where): it spins,
    /// waiting for another thread.
    fn spins(&mut self, yields: u32) -> bool {
        match self.still.yields {
            Some(at) => yields.wrapping_sub(at) >= SPINNING_YIELDS,
            None => {
                self.still.yields = Some(yields);
                false
            }
        }
    }
}

/// Whether a thread is asleep in a futex call (from /proc: its current
/// syscall number, 202 on x86-64, and its state).
pub(crate) fn blocked_in_futex(pid: Pid) -> bool {
    asleep_in_futex(pid, false)
}

/// What /proc/PID/stat says of a thread, read once.
pub(crate) struct ThreadStat {
    /// Its state letter: R running or waiting for a processor, S asleep,
    /// Z ended (a main thread that called `pthread_exit` stays a zombie
    /// while the others run), T stopped...
    pub state: char,
    /// Its processor time so far (utime + stime).
    pub cpu: Duration,
}

pub(crate) fn thread_stat(pid: Pid) -> Option<ThreadStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime 14 and stime 15.
    let state = fields.first()?.chars().next()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(ThreadStat {
        state,
        cpu: Duration::from_millis((utime + stime) * 1000 / hz),
    })
}

/// Whether a thread is asleep (state S) in a futex call; with
/// `untimed`, only in a wait with no timeout (one that cannot end by
/// itself).
pub(crate) fn asleep_in_futex(pid: Pid, untimed: bool) -> bool {
    let Ok(call) = std::fs::read_to_string(format!("/proc/{pid}/syscall")) else {
        return false;
    };
    let mut fields = call.split_whitespace();
    if fields.next().and_then(|nr| nr.parse::<i64>().ok()) != Some(libc::SYS_futex) {
        return false;
    }
    let args: Vec<u64> = fields
        .take(4)
        .filter_map(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).ok())
        .collect();
    if untimed {
        // futex(uaddr, op, val, timeout, ...): a wait with a timeout ends
        // by itself (the shim's own waits have one).
        let cmd = args.get(1).map_or(0, |op| op & 0x7f);
        let waits = matches!(
            cmd as i32,
            libc::FUTEX_WAIT | libc::FUTEX_WAIT_BITSET | libc::FUTEX_LOCK_PI
        );
        if !waits || args.get(3).is_none_or(|t| *t != 0) {
            return false;
        }
    }
    thread_stat(pid).is_some_and(|s| s.state == 'S')
}

impl Replayer {
    pub(super) fn rank_is_now(&self, rank: u64) -> bool {
        EventOrder::is_now(&self.log, rank)
    }

    /// Skips ranks whose thread can no longer reach them: it is blocked at
    /// a later rank of its own, because it ran its events in an order other
    /// than the recorded one (a sync operation before a syscall it made
    /// first when recorded, or the reverse). Waiting would deadlock; the
    /// thread's streams are still checked event by event.
    pub(super) fn break_inversions(&mut self) -> Res {
        if !self.order.enabled() {
            return Ok(());
        }
        loop {
            let now = self.log.order_turn();
            if self.order.take_early(now) {
                // Its return already went ahead.
                self.log.skip_rank(now);
                continue;
            }
            let Some(&owner) = self.plan.rank_owner.get(now as usize) else {
                return Ok(());
            };
            let Some(t) = self.pid_of(owner).and_then(|p| self.live.get(&p)) else {
                // A thread that has ended can reach none of its ranks: any
                // left are futex calls it did not make (anything else left
                // was a divergence when it ended).
                let ended = self
                    .plan
                    .threads
                    .get(owner as usize)
                    .is_some_and(|p| p.started);
                if ended && self.log.skip_rank(now) {
                    self.stats.inversions += 1;
                    self.run_steps(Step::ReleaseRanked)?;
                    continue;
                }
                return Ok(());
            };
            let later = |rank: u64| rank as u32 != now && !self.log.rank_passed(rank);
            let queued = matches!(t.state, ThreadState::Queued(r) if later(r));
            let run_turn = matches!(t.hold(), Some(Hold::RunTurn(r)) if later(r));
            let in_shim = self.log.ring(owner).is_some_and(|ring| {
                let w = ring.waiting_for_rank.load(Ordering::Acquire);
                w != 0 && later(u64::from(w - 1))
            });
            if !(queued || run_turn || in_shim) {
                return Ok(());
            }
            debug_log(format_args!(
                "event order: skipping rank {now} of t{owner}, blocked at a later rank"
            ));
            if !self.log.skip_rank(now) {
                // The order moved meanwhile: look again.
                continue;
            }
            self.stats.inversions += 1;
            self.run_steps(Step::ReleaseRanked)?;
        }
    }

    /// The order has not moved for a while, and the thread whose event is
    /// next is neither at a syscall nor in rrc's shim but asleep in a futex
    /// (most likely a lock rrc does not see, malloc's or stdio's, held by a
    /// thread that the order holds at a syscall), or running well past the
    /// recorded time of that event (spinning until another thread moves).
    /// Let the earliest held return go ahead so it can release it; the
    /// order steps over that rank later. Each step waits
    /// `UNTRACED_BLOCK_WAIT` again.
    pub(super) fn break_untraced_block(&mut self) -> Res {
        // Serialised, the order is the whole schedule: a slow or spinning
        // thread is the baton's business (see `baton`), and letting a
        // later event go would run two threads at once.
        if self.log.serial() {
            return Ok(());
        }
        let now = self.log.order_turn();
        let still = self.order.still_for(now, Instant::now());
        let Some(&owner) = self.plan.rank_owner.get(now as usize) else {
            return Ok(());
        };
        let yields = self
            .log
            .ring(owner)
            .map_or(0, |r| r.extra_yields.load(Ordering::Relaxed));
        let spins = self.order.spins(yields);
        let wait = if spins {
            SPINNING_OWNER_WAIT
        } else {
            UNTRACED_BLOCK_WAIT
        };
        if still < wait {
            return Ok(());
        }
        let Some(pid) = self.pid_of(owner) else {
            return Ok(());
        };
        if self
            .live
            .get(&pid)
            .is_some_and(|t| self.held_by_rrc(pid, t))
        {
            return Ok(());
        }
        if !spins && !self.owner_stuck(owner) && !blocked_in_futex(pid) {
            return Ok(());
        }
        // The earliest event held back, at the tracer, at an entry or in
        // the shim, goes ahead.
        debug_log(format_args!(
            "event order: t{owner} blocked outside rrc at rank {now}"
        ));
        // With nothing to let go, the order still stands: `give_way`
        // must see it standing to report it.
        if self.let_earliest_go()? {
            self.order.restart_still(now, Instant::now());
        }
        Ok(())
    }

    /// Whether the thread owning the current rank runs (spinning on
    /// another thread's progress, say) well behind the recorded timeline
    /// for its next event, which it had reached by then when recorded.
    fn owner_stuck(&self, owner: u32) -> bool {
        self.plan.threads[owner as usize]
            .events
            .front()
            .and_then(PlannedEvent::call_times)
            .is_some_and(|(_, ns)| {
                Instant::now()
                    > self.pacing.epoch() + Duration::from_nanos(ns) + STUCK_BEHIND_TIMELINE
            })
    }

    /// The lowest rank a live thread waits for in the shim, and its slot.
    pub(super) fn earliest_shim_wait(&self) -> Option<(u64, u32)> {
        self.live
            .values()
            .filter_map(|t| {
                let w = self
                    .log
                    .ring(t.logical)?
                    .waiting_for_rank
                    .load(Ordering::Acquire);
                (w != 0 && !self.log.rank_passed(u64::from(w - 1)))
                    .then(|| (u64::from(w - 1), t.logical))
            })
            .min()
    }

    /// The lowest rank a thread is held for here: the shim's advance to it
    /// must wake the tracer.
    pub(super) fn rank_wanted(&self) -> Option<u64> {
        let held = self.live.values().filter_map(|t| match t.state {
            ThreadState::Held(Hold::RunTurn(rank) | Hold::SignalTurn(rank)) => Some(rank),
            _ => None,
        });
        let signals = self.next_ranked_signal().map(|(rank, _, _)| rank);
        let late = self.live.values().filter_map(|t| match t.state {
            ThreadState::Late(l) => Some(l.next_rank),
            _ => None,
        });
        self.order
            .lowest_waited()
            .into_iter()
            .chain(held)
            .chain(signals)
            .chain(late)
            .min()
    }

    /// The thread whose event is next in the order, if it is live.
    fn next_owner(&self) -> Option<Pid> {
        let now = self.log.order_turn();
        self.plan
            .rank_owner
            .get(now as usize)
            .and_then(|&owner| self.pid_of(owner))
    }

    /// Whether the thread whose event is next waits for its recorded
    /// interval (in the shim, or held here for it).
    pub(super) fn next_owner_paced(&self) -> bool {
        self.log.turn_is_pacing(self.log.order_turn())
            || self.next_owner().is_some_and(|pid| self.pacing.holds(pid))
    }

    /// Whether the thread whose event is next in the order is asleep in a
    /// futex outside rrc's shim (a lock or flag rrc does not see).
    pub(super) fn next_owner_blocked(&self) -> bool {
        let Some(pid) = self.next_owner() else {
            return true;
        };
        let held = self
            .live
            .get(&pid)
            .is_some_and(|t| self.held_by_rrc(pid, t));
        !held && blocked_in_futex(pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rrc_synclog::MODE_REPLAY;

    fn log() -> SharedSyncLog {
        SharedSyncLog::create(MODE_REPLAY).expect("a sync log").1
    }

    fn ret(rank: u64) -> PendingReturn {
        PendingReturn {
            rank: Some(rank),
            interval_ns: 10,
            return_ns: 20,
        }
    }

    #[test]
    fn a_return_waits_only_for_a_rank_still_to_come() {
        let log = log();
        let order = EventOrder::new(true, Instant::now());
        assert!(!order.must_wait(&log, Some(0)), "its turn");
        assert!(order.must_wait(&log, Some(2)));
        assert!(!order.must_wait(&log, None), "no place in the order");
        let off = EventOrder::new(false, Instant::now());
        assert!(!off.must_wait(&log, Some(2)), "ordering is off");
        log.advance_rank();
        log.advance_rank();
        log.advance_rank();
        assert!(!order.must_wait(&log, Some(2)), "passed");
    }

    #[test]
    fn queued_returns_go_one_at_a_time_in_rank_order() {
        let log = log();
        let mut order = EventOrder::new(true, Instant::now());
        let (a, b) = (Pid::from_raw(11), Pid::from_raw(12));
        order.queue(2, b, ret(2));
        order.queue(1, a, ret(1));
        assert_eq!(order.next_due(&log), None, "rank 0 is not queued");
        assert!(order.advance(&log, Some(0), 0));
        assert_eq!(
            order.next_due(&log),
            Some((
                1,
                Queued {
                    pid: a,
                    ret: ret(1)
                },
                false
            ))
        );
        assert_eq!(order.next_due(&log), None, "rank 2 waits for rank 1");
        assert!(
            !order.advance(&log, Some(0), 0),
            "rank 0 is not passed on twice"
        );
        assert!(order.advance(&log, Some(1), 0));
        assert_eq!(
            order.next_due(&log),
            Some((
                2,
                Queued {
                    pid: b,
                    ret: ret(2)
                },
                false
            ))
        );
    }

    #[test]
    fn returns_whose_ranks_were_skipped_all_go() {
        let log = log();
        let mut order = EventOrder::new(true, Instant::now());
        order.queue(1, Pid::from_raw(1), ret(1));
        order.queue(2, Pid::from_raw(2), ret(2));
        order.queue(5, Pid::from_raw(5), ret(5));
        for rank in 0..3 {
            assert!(log.skip_rank(rank));
        }
        let due: Vec<(u64, bool)> = std::iter::from_fn(|| order.next_due(&log))
            .map(|(rank, _, passed)| (rank, passed))
            .collect();
        assert_eq!(due, vec![(1, true), (2, true)]);
        assert_eq!(order.lowest_waited(), Some(5));
    }

    #[test]
    fn an_early_rank_is_stepped_over_once() {
        let mut order = EventOrder::new(true, Instant::now());
        order.went_early(4);
        assert_eq!(order.lowest_waited(), Some(4));
        assert!(!order.take_early(3));
        assert!(order.take_early(4));
        assert!(!order.take_early(4));
        assert_eq!(order.lowest_waited(), None);
    }

    #[test]
    fn a_thread_that_ends_leaves_the_queue() {
        let mut order = EventOrder::new(true, Instant::now());
        order.queue(3, Pid::from_raw(3), ret(3));
        order.unqueue(3);
        assert_eq!(order.first_queued(), None);
    }

    #[test]
    fn the_order_stands_still_from_its_last_move() {
        let start = Instant::now();
        let mut order = EventOrder::new(true, start);
        let later = start + Duration::from_millis(5);
        assert_eq!(order.still_for(0, later), Duration::from_millis(5));
        assert_eq!(order.still_for(1, later), Duration::ZERO, "moved");
        order.restart_still(1, later + Duration::from_millis(3));
        assert_eq!(
            order.still_for(1, later + Duration::from_millis(4)),
            Duration::from_millis(1)
        );
    }
}
