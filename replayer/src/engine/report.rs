//! The stall report: when nothing has moved for the stall timeout, name
//! the thread the others wait for, and what each thread waits for.

use std::sync::atomic::Ordering;

use rrc_trace::ThreadId;

use super::threads::{LiveThread, ThreadState};
use super::Replayer;
use crate::divergence::{describe_event, Cause, Divergence};

/// The thread the others wait for: its logical id, the index named in
/// the report, and what it waits for.
type Culprit = (ThreadId, u64, String);

impl Replayer {
    /// Nothing has moved for the stall timeout: name the thread that the
    /// others wait for, and what it waits for.
    pub(super) fn stall_report(&self) -> Divergence {
        let mut lines = Vec::new();
        let mut culprit: Option<Culprit> = None;
        let mut threads: Vec<&LiveThread> = self.live.values().collect();
        threads.sort_by_key(|t| t.logical);
        for t in threads {
            let state = self.stall_state(t, &mut culprit);
            let plan = &self.plan.threads[t.logical as usize];
            let next_event = plan.events.front().map_or("none".into(), describe_event);
            lines.push(format!("t{}: {state}; next event: {next_event}", t.logical));
        }
        if self.order.enabled() {
            if let Some((line, owner)) = self.order_owner() {
                lines.push(line);
                culprit = culprit.or(Some(owner));
            }
        }
        let (thread, index, expected) = culprit.unwrap_or((0, 0, "progress".into()));
        Divergence {
            cause: Cause::Threads,
            thread: Some(thread),
            recorded_tid: self.plan.threads.get(thread as usize).map_or(0, |p| p.tid),
            index: Some(index),
            expected: format!("sync op #{index} to proceed ({expected})"),
            observed: format!(
                "no progress in the whole program; threads: {}",
                lines.join("; ")
            ),
        }
    }

    /// What one thread waits for; the first thread waiting for its turn
    /// at a sync operation becomes the culprit.
    fn stall_state(&self, t: &LiveThread, culprit: &mut Option<Culprit>) -> String {
        let plan = &self.plan.threads[t.logical as usize];
        let ring = self.log.ring(t.logical);
        let consumed = ring.map_or(0, |r| r.consumed()) as usize;
        let parked = ring.is_some_and(|r| r.parked_past_end.load(Ordering::Acquire) != 0);
        let pid = self.pid_of(t.logical);
        let timed = pid.is_some_and(|p| self.pacing.holds(p));
        let waiting_rank = ring.map_or(0, |r| r.waiting_for_rank.load(Ordering::Acquire));
        let in_turn_wait = ring.is_some_and(|r| r.waiting_for_turn.load(Ordering::Acquire) != 0);
        if let Some(h) = t.hold() {
            format!("held by replay ({h:?})")
        } else if let ThreadState::Queued(rank) = t.state {
            format!(
                "its return (event rank {rank}) waits for rank {} in the event order",
                self.log.order_turn()
            )
        } else if waiting_rank != 0 {
            format!(
                "its sync op #{consumed} waits for rank {} in the event order (at rank {})",
                waiting_rank - 1,
                self.log.order_turn()
            )
        } else if timed {
            "held for its recorded interval".to_string()
        } else if parked {
            "blocked in a sync operation it never completed when recorded".to_string()
        } else if let Some(next) = plan
            .sync
            .get(consumed)
            .filter(|_| !self.order.enabled() || in_turn_wait)
        {
            let turn = self
                .log
                .object(t.process, next.object)
                .map_or(0, |o| o.turn.load(Ordering::Acquire));
            let state = format!(
                "waiting for its turn {} at {} on {:#x} (the object is at turn {turn})",
                next.seq,
                next.op.name(),
                next.object
            );
            if culprit.is_none() {
                *culprit = Some((t.logical, consumed as u64, state.clone()));
            }
            state
        } else if consumed < plan.sync.len() {
            format!(
                "not waiting in rrc's shim (next sync op #{consumed}): running, or blocked in a call or lock rrc does not see"
            )
        } else {
            "running or blocked in an untraced call".to_string()
        }
    }

    /// Whose event everyone waits for: a syscall return or a sync op. The
    /// report's line, and the thread as a culprit.
    fn order_owner(&self) -> Option<(String, Culprit)> {
        let now = self.log.order_turn();
        let returning = self
            .plan
            .return_rank
            .iter()
            .find(|(_, r)| *r as u32 == now)
            .map(|((t, i), _)| (t, i, format!("its event {i} to return")));
        let syncing = || {
            self.plan.threads.iter().enumerate().find_map(|(t, p)| {
                p.sync
                    .iter()
                    .position(|op| op.order as u32 == now)
                    .map(|i| {
                        let op = &p.sync[i];
                        (
                            t as ThreadId,
                            i as u64,
                            format!("its sync op #{i} ({} on {:#x})", op.op.name(), op.object),
                        )
                    })
            })
        };
        let (t, i, what) = returning.or_else(syncing)?;
        let alive = self.live.values().any(|l| l.logical == t);
        let line = format!(
            "rank {now} of the event order is thread {t}'s: {what} ({})",
            if alive { "alive" } else { "not running" }
        );
        Some((line, (t, i, format!("{what} (event rank {now})"))))
    }
}
