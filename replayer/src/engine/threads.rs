//! One record per live thread, and the thread lifecycle: adoption at
//! clone, the exec of a non-leader thread, and the end of a thread.

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nix::unistd::Pid;
use rrc_interposer::{model, prepare_exec, TaskEvent, Tracee, TraceeMemory};
use rrc_trace::{ExitStatus, ProcessId, SyscallExtra, ThreadId};

use super::exit::InFlight;
use super::holds::Hold;
use super::returns::{LateReturn, Step};
use super::{debug_log, diverged, Found, Halt, Replayer, Res};
use crate::divergence::{describe_event, Expected, Need, Observed};

/// Where a followed thread is, as far as the engine knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ThreadState {
    /// Resumed: running its own code, or in a call, or in the shim.
    Running,
    /// Stopped at a stop being handled: it must be resumed or parked.
    Stopped,
    /// Parked at a syscall entry until what it waits for has happened.
    Held(Hold),
    /// Parked with its return queued at this rank of the event order.
    Queued(u64),
    /// Parked until its return's recorded interval has passed.
    Timed,
    /// Parked after its return until its next event is next in the order.
    Late(LateReturn),
}

/// How long after the start of its last futex wait the recording does not
/// have a thread still counts as waiting there (its bounded waits last
/// 1 ms each).
pub(crate) const UNSEEN_RECENT: Duration = Duration::from_millis(5);

/// Everything the engine keeps about one live thread: when the thread
/// ends, the record goes, and with it every hold on the thread.
pub(crate) struct LiveThread {
    pub logical: ThreadId,
    pub process: ProcessId,
    /// Its process's live pid, for tgkill.
    pub tgid: Pid,
    /// When its previous syscall returned (or it started).
    pub last_return: Instant,
    /// A call running for real, to be checked at its exit.
    pub in_flight: Option<InFlight>,
    /// A recorded signal we queued for it and wait to see delivered.
    pub injecting: Option<i32>,
    /// Running a handler that ran alone when recorded, with the rank of
    /// the event it followed: the order moves on only when the handler
    /// returns or the thread makes a syscall.
    pub handler_alone: Option<u64>,
    /// Where its clone had the kernel write its (live) tid, for the
    /// recorded one to replace before it runs (`CLONE_CHILD_SETTID`).
    pub settid: Option<u64>,
    pub state: ThreadState,
    /// Which of SIGSEGV and SIGILL the program has blocked (as of its last
    /// exec or rt_sigprocmask): a trapped rdtsc unblocks its signal,
    /// replay blocks it again, as the recorder did.
    pub segv_blocked: u64,
    /// Calls its shim had answered in-process at its last stop.
    pub in_process_seen: u64,
    /// Its ring's `waiting_unseen` word as last looked at, and when it
    /// last changed (see [`LiveThread::waits_unseen`]).
    pub unseen_look: Cell<(u32, Option<Instant>)>,
    /// Where the order stood (turn, stops seen) when its processor time
    /// was last looked at for the standstill check, and that time (see
    /// `Replayer::spinning`).
    pub spin_look: Cell<Option<(u32, u64, Duration)>>,
    /// When it was let go after its last syscall, while only signals
    /// delivered by elapsed time have followed: their recorded times count
    /// from there, as the recorder counted them from that return.
    pub elapsed_base: Option<Instant>,
}

impl LiveThread {
    /// A thread just adopted: running, nothing pending.
    pub fn new(logical: ThreadId, process: ProcessId, tgid: Pid) -> LiveThread {
        LiveThread {
            logical,
            process,
            tgid,
            last_return: Instant::now(),
            in_flight: None,
            injecting: None,
            handler_alone: None,
            settid: None,
            state: ThreadState::Running,
            segv_blocked: 0,
            in_process_seen: 0,
            unseen_look: Cell::new((0, None)),
            spin_look: Cell::new(None),
            elapsed_base: None,
        }
    }

    /// It was let go after a syscall's return at `at`: the base of its
    /// next interval, and of the signals delivered by elapsed time after.
    pub fn returned(&mut self, at: Instant) {
        self.last_return = at;
        self.elapsed_base = None;
    }

    /// The hold it is parked in at a syscall entry, if any.
    pub fn hold(&self) -> Option<Hold> {
        match self.state {
            ThreadState::Held(h) => Some(h),
            _ => None,
        }
    }

    pub fn is_late(&self) -> bool {
        matches!(self.state, ThreadState::Late(_))
    }

    /// Whether the thread is in its own wait loop on a futex the recording
    /// does not have, given its ring's `waiting_unseen` `word`: in such a
    /// wait now, or it began another since a look less than
    /// [`UNSEEN_RECENT`] ago. Between two bounded waits it runs the
    /// program's re-check for a moment, and on a loaded machine may be
    /// preempted there for milliseconds: the standstill check must not
    /// take that for a thread that moves.
    pub fn waits_unseen(&self, word: u32) -> bool {
        if word & 1 != 0 {
            return true;
        }
        let now = Instant::now();
        let (last, changed) = self.unseen_look.get();
        if word != last {
            self.unseen_look.set((word, Some(now)));
            return word != 0;
        }
        changed.is_some_and(|at| now.duration_since(at) < UNSEEN_RECENT)
    }

    /// Parked by the engine at the tracer (held, queued, timed or late).
    pub fn parked(&self) -> bool {
        !matches!(self.state, ThreadState::Running | ThreadState::Stopped)
    }
}

impl Replayer {
    /// Starts following a live thread as logical thread `logical` (the
    /// driver starts it at its first stop).
    pub(super) fn adopt(&mut self, tid: Pid, logical: ThreadId) {
        debug_log(format_args!("adopt tid {tid} as t{logical}"));
        let Some(p) = self.plan.threads.get_mut(logical as usize) else {
            return;
        };
        p.started = true;
        let (process, rec_tid, rec_pid) = (p.process, p.tid, p.pid);
        self.log.register_thread(rec_tid, logical, process);
        self.live_id.insert(rec_tid, tid.as_raw());
        let tgid = Pid::from_raw(self.live_id.get(&rec_pid).copied().unwrap_or(tid.as_raw()));
        if rec_tid == rec_pid {
            if let Ok(mut pids) = self.shared.pids.lock() {
                pids.push(tid.as_raw());
            }
        }
        self.live
            .insert(tid, LiveThread::new(logical, process, tgid));
    }

    /// A new thread's first stop, before it runs: the id its clone had the
    /// kernel write into its memory becomes the recorded one.
    pub(super) fn thread_start(&mut self, pid: Pid) -> Res {
        let Some(t) = self.live.get_mut(&pid) else {
            return Ok(());
        };
        let (Some(addr), logical) = (t.settid.take(), t.logical) else {
            return Ok(());
        };
        let Some(recorded) = self.plan.threads.get(logical as usize).map(|p| p.tid) else {
            return Ok(());
        };
        Ok(Tracee::new(pid).write(addr, &recorded.to_ne_bytes())?)
    }

    /// Notes whether `pid` has SIGSEGV blocked, after an exec or a change
    /// of its mask (unreadable: not blocked, as a thread that vanished).
    pub(super) fn note_segv_mask(&mut self, pid: Pid) {
        let blocked = Tracee::new(pid).segv_blocked().unwrap_or(0);
        if let Some(t) = self.live.get_mut(&pid) {
            t.segv_blocked = blocked;
        }
    }

    /// The live tid of logical thread `logical`, if it runs.
    pub(super) fn pid_of(&self, logical: ThreadId) -> Option<Pid> {
        self.live
            .iter()
            .find(|(_, t)| t.logical == logical)
            .map(|(p, _)| *p)
    }

    /// A ptrace event of a followed thread. Returns whether a new task
    /// is now followed.
    pub(super) fn task_event(&mut self, pid: Pid, event: TaskEvent) -> Res<bool> {
        match event {
            TaskEvent::NewTask { child, .. } => {
                let call = self
                    .live
                    .get(&pid)
                    .and_then(|t| t.in_flight.as_ref())
                    .map(|c| (c.record.extra.clone(), c.record.nr, c.args, c.record.ret));
                let Some((extra, nr, args, recorded_id)) = call else {
                    let thread = self.live.get(&pid).map_or(0, |t| t.logical);
                    return diverged(thread, Expected::NoNewThread, Observed::NewThread);
                };
                let logical = match extra {
                    SyscallExtra::NewThread(l) => l,
                    SyscallExtra::NewProcess { thread, .. } => thread,
                    _ => {
                        let thread = self.live.get(&pid).map_or(0, |t| t.logical);
                        return diverged(thread, Expected::NoNewThread, Observed::NewThread);
                    }
                };
                let writes = model::clone_tid_writes(nr as i64, &args, &Tracee::new(pid))?;
                if let Some(addr) = writes.parent {
                    // The child is not started yet: it cannot have read
                    // (or, exiting, cleared) the live id written there.
                    let id = recorded_id as i32;
                    Tracee::new(pid).write(addr, &id.to_ne_bytes())?;
                }
                self.adopt(child, logical);
                // A clone or fork copies the mask.
                let blocked = self.live.get(&pid).map_or(0, |t| t.segv_blocked);
                if let Some(t) = self.live.get_mut(&child) {
                    t.settid = writes.child;
                    t.segv_blocked = blocked;
                }
                self.resume_on(pid)?;
                Ok(true)
            }
            TaskEvent::Exec { former } => {
                if former != pid {
                    self.exec_from_thread(former, pid);
                }
                self.restore_exec_random(pid)?;
                self.note_segv_mask(pid);
                self.resume_on(pid)?;
                Ok(false)
            }
            TaskEvent::Other(_) => {
                self.resume_on(pid)?;
                Ok(false)
            }
        }
    }

    /// Hides the vDSO from the new program and gives it the random bytes
    /// it had when recorded.
    fn restore_exec_random(&mut self, pid: Pid) -> Res {
        let tracee = Tracee::new(pid);
        let random_at = prepare_exec(&tracee)?;
        let recorded = self
            .live
            .get(&pid)
            .and_then(|t| t.in_flight.as_ref())
            .and_then(|c| match c.record.extra {
                SyscallExtra::Exec { random } => Some(random),
                _ => None,
            });
        if let (Some(at), Some(random)) = (random_at, recorded) {
            tracee.write(at, &random)?;
        }
        Ok(())
    }

    /// A thread other than its process's leader ran execve: the kernel
    /// ended the leader (its recorded events are done: the exec waited for
    /// them) without reporting it, and gave the thread the leader's tid,
    /// by which the shim now finds it (gettid gives the recorded one).
    fn exec_from_thread(&mut self, former: Pid, leader: Pid) {
        if let Some(old) = self.forget(leader) {
            self.log.register_thread(0, old.logical, old.process);
        }
        let Some(mut t) = self.forget(former) else {
            return;
        };
        // Stopped at the exec event, under its new tid.
        t.state = ThreadState::Stopped;
        let recorded_pid = self.plan.threads[t.logical as usize].pid;
        self.log.register_thread(recorded_pid, t.logical, t.process);
        self.live.insert(leader, t);
    }

    /// Removes a thread's record and every hold on it.
    fn forget(&mut self, pid: Pid) -> Option<LiveThread> {
        let t = self.live.remove(&pid)?;
        if let ThreadState::Queued(rank) = t.state {
            self.order.unqueue(rank);
        }
        self.pacing.forget(pid);
        Some(t)
    }

    /// A thread ended: check it had replayed everything it did when
    /// recorded.
    pub(super) fn thread_ended(&mut self, pid: Pid, status: ExitStatus) -> Res {
        debug_log(format_args!(
            "exit of tid {pid}: {status} (traced: {})",
            self.live.contains_key(&pid)
        ));
        // A handler that ran alone ends with its thread: the order goes on.
        let alone = self.live.get_mut(&pid).and_then(|t| t.handler_alone.take());
        if let Some(rank) = alone {
            self.run_steps(Step::Advance(Some(rank)))?;
        }
        let Some(t) = self.forget(pid) else {
            return Ok(());
        };
        if pid == self.root {
            self.main_status = Some(status);
        }
        // A thread killed by a signal takes its whole process with it (a
        // fatal signal, or SIGKILL): the others' ends follow, and their
        // holds meanwhile are no deadlock.
        if matches!(status, ExitStatus::Signaled(_)) {
            self.ending.insert(t.process);
        }
        if self.diverged() {
            return Ok(());
        }
        let plan = &self.plan.threads[t.logical as usize];
        if let Some(next) = plan.events.front() {
            let expected = Expected::Event {
                event: describe_event(next),
                need: Need::EventsLeft(plan.events.len()),
            };
            return diverged(t.logical, expected, Observed::ThreadEnded(status));
        }
        let consumed = self.log.ring(t.logical).map_or(0, |r| r.consumed()) as usize;
        // Optional calls left over (a lock's slow path that this replay
        // did not need, a spin loop's yields): their ranks are stepped over
        // (`break_inversions`), as when the thread passes them by.
        let rest = plan.sync.get(consumed..).unwrap_or_default();
        let only_optional = rest.iter().all(|s| s.op.optional());
        if !only_optional && status == ExitStatus::Exited(0) {
            let next = plan.sync[consumed];
            return Err(Halt::Diverged(Box::new(Found {
                thread: t.logical,
                index: Some(consumed as u64),
                expected: Expected::SyncOp {
                    index: consumed,
                    op: next.op.name(),
                    object: next.object,
                },
                observed: Observed::ThreadEnded(status),
            })));
        }
        Ok(())
    }

    /// Whether every other thread of the exiting thread's process has
    /// replayed all its recorded events and sync operations.
    pub(super) fn process_may_exit(&self, thread: ThreadId) -> bool {
        let process = self.plan.threads[thread as usize].process;
        self.live
            .values()
            .all(|t| t.logical == thread || t.process != process || self.replayed_to_end(t))
    }

    /// Whether the thread has replayed everything it did when recorded
    /// (its last event returned: an exec or exit that ran while the
    /// return waited for its turn would kill the thread before the return
    /// it made when recorded), or is held for good past its recorded
    /// events: when recorded, the exit killed it before it got there,
    /// even before a lock it had yet to take (a worker's fflush of a
    /// stream the exit had just made unbuffered).
    pub(super) fn replayed_to_end(&self, t: &LiveThread) -> bool {
        t.hold() == Some(Hold::PastEnd) || self.replayed_all(t)
    }

    /// The place in the order of the thread's next recorded call or
    /// rdtsc, if it has one.
    pub(super) fn next_event_rank(&self, thread: ThreadId) -> Option<u64> {
        let index = self
            .plan
            .threads
            .get(thread as usize)?
            .events
            .front()?
            .call_index()?;
        self.plan.return_rank.get(&(thread, index)).copied()
    }

    /// Whether every recorded thread of `process` has started, and every
    /// live one has replayed all its recorded events.
    fn process_replayed_all(&self, process: ProcessId) -> bool {
        let all_started = self
            .plan
            .threads
            .iter()
            .filter(|p| p.process == process)
            .all(|p| p.started);
        all_started
            && self
                .live
                .values()
                .filter(|t| t.process == process)
                .all(|t| self.replayed_all(t))
    }

    /// A recording that ended with the program's first process killed by
    /// SIGKILL from outside (the kernel kills without a stop, so the trace
    /// only says how it ended) ends where its events end: once every
    /// thread of that process has replayed its recorded events and sync
    /// operations (and waits past them, or runs on), the process is
    /// killed with SIGKILL, as it was.
    pub(super) fn end_as_killed(&mut self) -> Res {
        if self.killed_at_end || self.plan.exit != ExitStatus::Signaled(libc::SIGKILL) {
            return Ok(());
        }
        let Some(root) = self.live.get(&self.root) else {
            return Ok(());
        };
        let (process, tgid) = (root.process, root.tgid);
        if !self.process_replayed_all(process) {
            return Ok(());
        }
        debug_log(format_args!("recorded events of {tgid} done: SIGKILL"));
        self.killed_at_end = true;
        self.ending.insert(process);
        nix::sys::signal::kill(tgid, nix::sys::signal::Signal::SIGKILL)
            .map_err(|e| Halt::Failed(anyhow::Error::new(e).context("ending the program")))
    }

    /// The recording ended when the initial process did, killing the
    /// processes it left behind (see the recorder's `end_left_behind`):
    /// once it has ended here too, each of those is killed where its
    /// recorded events end, as it was.
    pub(super) fn end_left_behind(&mut self) -> Res {
        let root_process = self.plan.threads.first().map(|p| p.process);
        if self.main_status.is_none() || self.live.values().any(|t| Some(t.process) == root_process)
        {
            return Ok(());
        }
        let mut processes: Vec<(ProcessId, Pid)> = self
            .live
            .values()
            .filter(|t| !self.ending.contains(&t.process))
            .map(|t| (t.process, t.tgid))
            .collect();
        processes.sort_unstable_by_key(|(p, _)| *p);
        processes.dedup_by_key(|(p, _)| *p);
        for (process, tgid) in processes {
            if !self.process_replayed_all(process) {
                continue;
            }
            debug_log(format_args!("left behind, {tgid} done: SIGKILL"));
            self.ending.insert(process);
            nix::sys::signal::kill(tgid, nix::sys::signal::Signal::SIGKILL).map_err(|e| {
                Halt::Failed(anyhow::Error::new(e).context("ending a process left behind"))
            })?;
        }
        Ok(())
    }

    /// Whether the thread has replayed all its recorded events (the last
    /// one returned) and sync operations.
    fn replayed_all(&self, t: &LiveThread) -> bool {
        let p = &self.plan.threads[t.logical as usize];
        let sync_done = self
            .log
            .ring(t.logical)
            .is_some_and(|r| r.consumed() as usize >= p.sync.len());
        p.events.is_empty() && sync_done && !Self::return_pending(t)
    }

    /// Whether the thread has a syscall return still to make: running for
    /// real, waiting for its rank, or for its recorded interval.
    pub(super) fn return_pending(t: &LiveThread) -> bool {
        t.in_flight.is_some()
            || matches!(
                t.state,
                ThreadState::Late(_) | ThreadState::Queued(_) | ThreadState::Timed
            )
    }

    /// Whether rrc itself holds the thread: stopped at the tracer (in a
    /// call, held, queued or timed), waiting in the shim for its turn, or
    /// parked there past its recorded end.
    pub(super) fn held_by_rrc(&self, pid: Pid, t: &LiveThread) -> bool {
        let at_tracer = t.in_flight.is_some() || t.parked() || self.pacing.holds(pid);
        let in_shim = self.log.ring(t.logical).is_some_and(|r| {
            r.waiting_for_rank.load(Ordering::Acquire) != 0
                || r.waiting_for_turn.load(Ordering::Acquire) != 0
                || r.parked_past_end.load(Ordering::Acquire) != 0
        });
        // Waiting in the shim for its recorded interval, at its rank.
        let turn = self.log.order_turn();
        let pacing = self.log.turn_is_pacing(turn)
            && self.plan.rank_owner.get(turn as usize) == Some(&t.logical);
        at_tracer || in_shim || pacing
    }
}

impl Replayer {
    /// A parked thread's hold is over: it is stopped, to be resumed (or
    /// parked again) by whoever took it out.
    pub(super) fn unpark(&mut self, pid: Pid) {
        if let Some(t) = self.live.get_mut(&pid) {
            if t.parked() {
                t.state = ThreadState::Stopped;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_going_round_its_own_futex_loop_waits_between_two_waits_too() {
        let t = LiveThread::new(1, 0, Pid::from_raw(1));
        assert!(!t.waits_unseen(0), "never in such a wait");
        assert!(t.waits_unseen(3), "in its first wait");
        assert!(t.waits_unseen(2), "out of it, just now");
        assert!(t.waits_unseen(2), "out of it, less than a few ms ago");
        t.unseen_look
            .set((2, Some(Instant::now() - 2 * UNSEEN_RECENT)));
        assert!(!t.waits_unseen(2), "out of its loop for a while: it moves");
        assert!(t.waits_unseen(4), "another wait began since");
    }
}
