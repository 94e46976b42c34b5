//! Replay again, placing unseen code elsewhere, after a divergence.
//!
//! A trace recorded in parallel fixes the order of every event rrc sees,
//! not where a thread's code between two events ran against the others'
//! (a compare-and-swap in Rust's `Mutex`, a job popped from a queue whose
//! lock makes no call). Replay places that code by rules (a thread's code
//! after an event runs just before its next event when it was stamped on
//! arrival, the "late return"; a thread reaching a lock that was held
//! waits until it is held again, the "gate"), and a rule can be wrong for
//! one event of a recording: then every replay of it diverges there.
//!
//! Every placement these rules choose between is consistent with the
//! recorded event order, so replay may try another one: it replays from
//! the start with late returns off over a span of events before the
//! diverging thread's last call, or one rule changed at one event near
//! there or near the order's place (a late hold after a futex wake, the
//! unlock of a lock rrc does not see, among them), keeps a change that
//! carries the replay further (and tries a change again when its try
//! diverged before the order got to it: what runs unordered differs from
//! try to try, which is also why every third try changes nothing), then
//! tries whole replays without segments and without late returns, and
//! stops at the first faithful replay or when its tries or its time are
//! spent (`main.rs` runs the tries). Each try is checked event by event
//! like the first; the output printed on rrc-replay's stdout is the
//! recorded output, printed once, in order (the engine prints
//! only outputs replayed faithfully, and a later try skips those printed).
//! This is the feedback-driven re-execution of PRES (Park et al., SOSP
//! 2009), with the recorded order as the sketch.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rrc_trace::{SyncOp, ThreadId, NO_ORDER};

use crate::divergence::Divergence;
use crate::plan::ReplayPlan;
use crate::ranks::late_until;

/// The rules changed for one try, by the rank of the event they apply
/// to, and the try's mode.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tweaks {
    /// Returns (and futex waits) at these ranks are not kept late: the
    /// thread's code after them runs right after them.
    pub no_late: BTreeSet<u64>,
    /// Futex waits at these ranks go on without waiting for the lock word
    /// to be held.
    pub no_gate: BTreeSet<u64>,
    /// Returns (and futex waits) at these ranks are kept until the
    /// thread's next event is next, though that event was not stamped as
    /// the thread got to it.
    pub late: BTreeSet<u64>,
    /// The mode of the whole replay.
    pub mode: Mode,
}

impl Tweaks {
    /// How many single events' rules are changed.
    pub fn len(&self) -> usize {
        self.no_late.len() + self.no_gate.len() + self.late.len()
    }
}

/// One change to try.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Tweak {
    NoLate(u64),
    NoGate(u64),
    Late(u64),
    /// No late returns from the first rank to the second: threads woken
    /// together then take what they race for in the order of their
    /// wakes, not of their next events.
    NoLateFrom(u64, u64),
}

/// How far before the divergence's place in the order a rule is looked
/// for: the code that took another value ran a few events earlier.
const LOOKBACK: u64 = 128;

/// How many more times a change is tried when its tries diverged before
/// the order got to it.
const TRIES_BY_CHANCE: u8 = 2;

/// One try in this many (the first, then every so many) replays the
/// phase's mode with no change: what runs unordered differs from try to
/// try, so a replay that diverged may well not diverge again, while the
/// changes kept so far may have been kept by chance.
const PLAIN_EVERY: u32 = 3;

/// A way of placing code between events for a whole replay (the
/// `--no-segments` and `--no-late-returns` modes), on top of the changes
/// at single events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mode {
    pub no_segments: bool,
    pub no_late_returns: bool,
    /// Only the user's (`--no-lock-gates`); no phase turns it on.
    pub no_lock_gates: bool,
}

/// The modes a search goes through, each with its share of the tries in
/// quarters: the default first, for half; then without segments (the
/// order moves on at once after each event), then without late returns.
const PHASES: [(Mode, u32); 3] = [
    (Mode::whole(false, false), 2),
    (Mode::whole(true, false), 1),
    (Mode::whole(false, true), 1),
];

impl Mode {
    const fn whole(no_segments: bool, no_late_returns: bool) -> Mode {
        Mode {
            no_segments,
            no_late_returns,
            no_lock_gates: false,
        }
    }

    /// This mode with the user's flags (`cli`) on top.
    pub fn or(self, cli: Mode) -> Mode {
        Mode {
            no_segments: self.no_segments || cli.no_segments,
            no_late_returns: self.no_late_returns || cli.no_late_returns,
            no_lock_gates: self.no_lock_gates || cli.no_lock_gates,
        }
    }
}

/// The search's state between tries.
pub struct Search {
    /// The changes that carried the replay furthest so far in this phase.
    best: Tweaks,
    /// How far in the order that replay got.
    best_reach: u64,
    /// Where it diverged.
    best_event: Option<(ThreadId, u64)>,
    /// Changes still to try on top of `best`, to be popped from the end.
    queue: Vec<Tweak>,
    /// The change being tried now.
    trying: Option<Tweak>,
    /// Changes tried again because their try diverged before the order
    /// got to them (by chance: what runs unordered differs from replay
    /// to replay), and how often.
    again: BTreeMap<Tweak, u8>,
    /// The try just made was the first of its phase (its mode alone).
    fresh: bool,
    /// The try just made was a plain one (see `PLAIN_EVERY`).
    plain: bool,
    phase: usize,
    /// Tries left in this phase, and in all.
    phase_left: u32,
    tries_left: u32,
    deadline: Instant,
    /// How long one try takes (the first one took).
    per_try: Duration,
    pub tries: u32,
}

impl Search {
    /// A search of at most `tries` further replays of `per_try` each,
    /// started only until `budget` has passed since `start`.
    pub fn new(tries: u32, start: Instant, budget: Duration, per_try: Duration) -> Search {
        Search {
            best: Tweaks::default(),
            best_reach: 0,
            best_event: None,
            queue: Vec::new(),
            trying: None,
            again: BTreeMap::new(),
            fresh: true,
            plain: false,
            phase: 0,
            phase_left: Self::share(0, tries),
            tries_left: tries,
            deadline: start + budget,
            per_try,
            tries: 0,
        }
    }

    /// The tries phase `phase` may make, of `tries`.
    fn share(phase: usize, tries: u32) -> u32 {
        let quarters = PHASES.get(phase).map_or(0, |p| p.1);
        (tries * quarters).div_ceil(4)
    }

    /// The replay just made (with the changes last returned, or none)
    /// diverged at `stop`: the changes for the next try, or `None` to stop.
    pub fn next(&mut self, plan: &ReplayPlan, stop: Stop) -> Option<Tweaks> {
        if !std::mem::take(&mut self.plain) {
            self.learn(plan, stop);
        }
        let now = Instant::now();
        if self.tries_left == 0 || now >= self.deadline {
            return None;
        }
        // Only as many tries left as modes to come (a long replay gets
        // few): each later mode gets one.
        let fit = self.deadline.saturating_duration_since(now).as_nanos()
            / self.per_try.as_nanos().max(1);
        let modes_to_come = (PHASES.len() - 1).saturating_sub(self.phase) as u128;
        if fit.min(u128::from(self.tries_left)) <= modes_to_come {
            self.phase_left = 0;
        }
        self.tries_left -= 1;
        self.tries += 1;
        if self.phase_left > 0 && self.tries % PLAIN_EVERY == 1 {
            self.phase_left -= 1;
            self.plain = true;
            return Some(Tweaks {
                mode: self.best.mode,
                ..Tweaks::default()
            });
        }
        match self.queue.pop().filter(|_| self.phase_left > 0) {
            Some(t) => {
                self.phase_left -= 1;
                self.trying = Some(t);
                let mut tweaks = self.best.clone();
                tweaks.insert(t);
                Some(tweaks)
            }
            None => {
                // This phase is spent: the next mode, alone at first.
                self.phase += 1;
                let (mode, _) = *PHASES.get(self.phase)?;
                self.phase_left = Self::share(self.phase, self.tries_left + self.tries)
                    .min(self.tries_left)
                    .saturating_sub(1);
                self.fresh = true;
                self.best = Tweaks {
                    mode,
                    ..Tweaks::default()
                };
                Some(self.best.clone())
            }
        }
    }

    /// What the replay just made, with the change being tried, says: a
    /// change that carried it further is kept, and the changes to try
    /// next are found from where it stopped.
    fn learn(&mut self, plan: &ReplayPlan, stop: Stop) {
        // Further: past the event the best replay diverged at (another
        // thread's code may now differ, and gets its own changes), or
        // later in the order.
        let past = |(t, i): (ThreadId, u64)| {
            plan.threads.get(t as usize).is_some_and(|p| p.done > i) && stop.event != Some((t, i))
        };
        let further =
            self.fresh || self.best_event.is_some_and(past) || stop.reach > self.best_reach;
        if further {
            if let Some(t) = self.trying.take() {
                self.best.insert(t);
            }
            self.best_reach = stop.reach;
            self.best_event = stop.event;
            self.queue = candidates(plan, stop, &self.best);
            crate::engine::debug_log(format_args!(
                "search: candidates for {stop:?}: {:?}",
                self.queue
            ));
        } else if let Some(t) = self.trying {
            // Diverged before the change could matter: chance, so the
            // change has not been tried yet.
            let count = self.again.entry(t).or_default();
            if stop.reach < t.first_rank() && *count < TRIES_BY_CHANCE {
                *count += 1;
                self.queue.push(t);
            }
        }
        self.trying = None;
        self.fresh = false;
    }
}

impl Tweak {
    /// The first rank this change applies at: a replay that diverged
    /// before the order got there was not changed by it.
    fn first_rank(self) -> u64 {
        match self {
            Tweak::NoLate(r) | Tweak::NoGate(r) | Tweak::Late(r) => r,
            Tweak::NoLateFrom(lo, _) => lo,
        }
    }
}

impl Tweaks {
    fn insert(&mut self, t: Tweak) {
        match t {
            Tweak::NoLate(r) => self.no_late.insert(r),
            Tweak::NoGate(r) => self.no_gate.insert(r),
            Tweak::Late(r) => self.late.insert(r),
            Tweak::NoLateFrom(lo, hi) => {
                self.no_late.extend(lo..=hi);
                true
            }
        };
    }
}

/// Where a replay stopped, as the search looks at it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stop {
    /// The order's place: how far the replay got.
    pub reach: u64,
    /// The thread that diverged, if one did.
    pub thread: Option<ThreadId>,
    /// The event that diverged, as (thread, index).
    pub event: Option<(ThreadId, u64)>,
    /// The rank of that thread's event before the one that diverged: its
    /// code from there on computed what differed (that can be long before
    /// the order's place, when its next event came late).
    pub code_at: Option<u64>,
}

impl Stop {
    /// Where a replay that got to `reach` in the order stopped, diverging
    /// as `divergence` says (`None`: it did not).
    pub fn new(plan: &ReplayPlan, reach: u64, divergence: Option<&Divergence>) -> Stop {
        let thread = divergence.and_then(|d| d.thread);
        let event = divergence.and_then(|d| Some((d.thread?, d.index?)));
        Stop {
            reach,
            thread,
            event,
            code_at: event.and_then(|e| code_at(plan, e)),
        }
    }
}

/// The rank of the diverging thread's last call before its event that
/// diverged, if it is not too far back: its code from there computed what
/// differs. Futex waits between are passed over: they are its waits for
/// a lock rrc does not see (stdout's, in Rust) once the value was made.
fn code_at(plan: &ReplayPlan, (thread, index): (ThreadId, u64)) -> Option<u64> {
    let rank = *plan.return_rank.get(&(thread, index))?;
    let sync: std::collections::HashSet<u64> = plan
        .threads
        .get(thread as usize)?
        .sync
        .iter()
        .flat_map(|op| [op.order, op.arrival])
        .collect();
    let lowest = rank.saturating_sub(1 << 16);
    (lowest..rank)
        .rev()
        .find(|r| plan.rank_owner.get(*r as usize) == Some(&thread) && !sync.contains(r))
}

/// The rules replay applied at events near where the diverging thread's
/// code ran and near the order's place, not yet turned off, ordered to be
/// popped from the end: the diverging thread's own events first, then
/// those near its code, each group nearest first.
fn candidates(plan: &ReplayPlan, stop: Stop, done: &Tweaks) -> Vec<Tweak> {
    let mut windows = vec![(stop.reach.saturating_sub(LOOKBACK), stop.reach)];
    if let Some(at) = stop.code_at {
        windows.push((at.saturating_sub(LOOKBACK), at + LOOKBACK / 4));
    }
    let near = |r: &u64| windows.iter().any(|(lo, hi)| (lo..=hi).contains(&r));
    let ops = || {
        plan.threads
            .iter()
            .flat_map(|t| t.sync.iter().zip(t.sync_holds.iter()))
    };
    let gates: BTreeSet<u64> = ops()
        .filter(|(op, h)| h.gate_after != rrc_synclog::NO_ARRIVAL && near(&op.order))
        .map(|(op, _)| op.order)
        .collect();
    // A sync operation's arrival has a rank of its own, with no rule.
    let arrivals: BTreeSet<u64> = ops().map(|(op, _)| op.arrival).filter(near).collect();
    // Of sync operations, only futex calls have a late rule: a wait's is
    // on unless the plan found none, a wake's off (the code after an
    // unlock mostly takes the lock again first).
    let sync_late: BTreeMap<u64, Option<bool>> = ops()
        .filter(|(op, _)| near(&op.order))
        .map(|(op, h)| {
            let rule = match op.op {
                SyncOp::FutexWait => Some(h.late_to != rrc_synclog::NO_ARRIVAL),
                SyncOp::FutexWake => Some(false),
                _ => None,
            };
            (op.order, rule)
        })
        .collect();
    let ranks: BTreeSet<u64> = windows.iter().flat_map(|&(lo, hi)| lo..=hi).collect();
    let mut found = Vec::new();
    for rank in ranks {
        let done_here = done.no_late.contains(&rank) || done.late.contains(&rank);
        let late_now = match sync_late.get(&rank) {
            None => Some(late_until(rank, &plan.next_own, &plan.arrival_ranks).is_some()),
            Some(rule) => *rule,
        };
        if !arrivals.contains(&rank) && !done_here {
            match late_now {
                Some(true) => found.push(Tweak::NoLate(rank)),
                // (Not after a thread's last ranked event: nothing to be
                // late for.)
                Some(false)
                    if plan
                        .next_own
                        .get(rank)
                        .is_some_and(|next| next != NO_ORDER && next > rank + 1) =>
                {
                    found.push(Tweak::Late(rank))
                }
                _ => {}
            }
        }
        if gates.contains(&rank) && !done.no_gate.contains(&rank) {
            found.push(Tweak::NoGate(rank));
        }
    }
    if let Some(at) = stop.code_at {
        for span in [16, 48] {
            let lo = at.saturating_sub(span);
            if (lo..=at).any(|r| !done.no_late.contains(&r)) {
                found.push(Tweak::NoLateFrom(lo, at));
            }
        }
    }
    // Popped from the end: spans, then the diverging thread's own events,
    // then the other threads' events.
    let key = |t: &Tweak| {
        let (class, r) = match *t {
            Tweak::NoLate(r) | Tweak::NoGate(r) | Tweak::Late(r) => {
                let own = stop.thread.is_some()
                    && plan.rank_owner.get(r as usize).copied() == stop.thread;
                (u8::from(own), r)
            }
            Tweak::NoLateFrom(lo, _) => (2, lo),
        };
        let distance = stop
            .code_at
            .map_or(u64::MAX, |at| at.abs_diff(r))
            .min(stop.reach.abs_diff(r));
        (class, std::cmp::Reverse(distance))
    };
    found.sort_by_key(key);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tweaks_count_both_kinds() {
        let mut t = Tweaks::default();
        assert_eq!(t.len(), 0);
        t.insert(Tweak::NoLate(3));
        t.insert(Tweak::NoGate(3));
        t.insert(Tweak::NoLate(3));
        assert_eq!(t.len(), 2);
    }
}
