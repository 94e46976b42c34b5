//! Each traced thread's record ([`ThreadState`]: its place in the trace,
//! the call it is in, its held-back signals, whether it is stopped or
//! held), and the thread lifecycle: start, exec from a non-leader thread,
//! end. A thread that ends is removed from everything in
//! [`Recorder::remove_thread`].

use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{bail, Result};
use nix::unistd::Pid;
use rrc_interposer::model::{self, ReplayAction};
use rrc_trace::{
    ExitStatus, ProcessId, SyscallExtra, SyscallFields, SyscallRecord, ThreadId, TraceRecord,
};

use super::deferred::Deferred;
use super::syscall::InFlight;
use super::visible::TscMode;
use super::{Recorder, Release};

/// Whether a thread is stopped, and why it stays stopped. Only
/// [`Recorder::resume`] lets a stopped thread run, once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Run {
    /// Running, or stopped in a stop the engine has not been told of.
    Running,
    /// In the stop being handled now.
    Stopped,
    /// Kept stopped after its stop was handled, until released.
    Held(Hold),
}

/// Why a thread is kept stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Hold {
    /// At the entry of a serial call, behind another one of its key.
    SerialCall,
    /// At a syscall exit, while another thread of its process runs alone.
    Exit,
    /// At a syscall exit, until it has the run of the program (serialised
    /// recording, see `token`).
    Token,
    /// At the stop of a signal that ends its process (a fault, `abort`),
    /// behind a write to our stdout under way in another of its threads:
    /// delivered once that write has returned (see `SerialKey`).
    Signal(i32),
}

impl Run {
    /// The thread reported a stop: it must have been running.
    pub(super) fn stop(&mut self) -> Result<(), Run> {
        self.step(Run::Running, Run::Stopped)
    }

    /// The engine keeps the stopped thread stopped after its stop.
    pub(super) fn hold(&mut self, why: Hold) -> Result<(), Run> {
        self.step(Run::Stopped, Run::Held(why))
    }

    /// The engine lets a held thread's stop be handled again.
    pub(super) fn release(&mut self, why: Hold) -> Result<(), Run> {
        self.step(Run::Held(why), Run::Stopped)
    }

    /// The engine resumes the stopped thread: once per stop.
    pub(super) fn resume(&mut self) -> Result<(), Run> {
        self.step(Run::Stopped, Run::Running)
    }

    /// Moves from `from` to `to`; anything else is left as it was and
    /// returned, a bug in the engine.
    fn step(&mut self, from: Run, to: Run) -> Result<(), Run> {
        if *self == from {
            *self = to;
            Ok(())
        } else {
            Err(*self)
        }
    }
}

pub(super) struct ThreadState {
    pub logical: ThreadId,
    pub process: ProcessId,
    pub events: u64,
    pub last_return: Instant,
    pub in_flight: Option<InFlight>,
    /// Where the thread was at its last syscall exit; a signal stop there
    /// means the signal is delivered as that syscall returns.
    pub last_exit_rip: Option<u64>,
    /// A syscall the kernel will restart or fail with EINTR, depending on
    /// the signal that interrupted it (its exit showed ERESTART*).
    pub interrupted: Option<(InFlight, i64)>,
    /// The syscall restart_syscall will continue (ERESTART_RESTARTBLOCK).
    pub restart_block: Option<(i64, [u64; 6])>,
    /// Asynchronous signals held back to the next syscall boundary.
    pub signals: Deferred,
    /// Signals the thread sent itself (raise, abort): synchronous.
    pub self_signals: Vec<i32>,
    /// Its serial call waited too long and goes ahead without the slot.
    pub serial_bypass: bool,
    /// A vfork child (posix_spawn's) that has not exec'd: its parent
    /// waits until it execs or ends, so nothing in the program can kill it
    /// before its exec is made.
    pub vfork_child: bool,
    /// The rdtsc mode the program set (rrc's own is SIGSEGV until the
    /// shim asks to end it: see `visible`).
    pub tsc_mode: TscMode,
    /// Which of SIGSEGV and SIGILL the program has blocked (as of its last
    /// exec or rt_sigprocmask): a trapped rdtsc unblocks its signal, rrc
    /// blocks it again.
    pub segv_blocked: u64,
    pub run: Run,
}

/// Where a returning event sits in its thread's stream and in time.
pub(super) struct ReturnStamp {
    pub index: u64,
    pub interval_ns: u64,
    pub return_ns: u64,
    /// Place in the event order shared with the shim's sync operations.
    pub order: u64,
}

impl ReturnStamp {
    /// The fields of the record of call `nr` of `thread` returning `ret`
    /// with this stamp, `extra` and `digested`.
    pub(super) fn fields<'e>(
        &self,
        thread: ThreadId,
        nr: i64,
        args: [u64; 6],
        ret: i64,
        extra: &'e SyscallExtra,
        digested: u32,
    ) -> SyscallFields<'e> {
        SyscallFields {
            thread,
            index: self.index,
            nr: nr as u32,
            args,
            ret,
            interval_ns: self.interval_ns,
            return_ns: self.return_ns,
            order: self.order,
            extra,
            digested,
        }
    }

    /// The record of call `nr` of `thread` returning `ret` with this
    /// stamp; the caller fills in what it read (inputs, outputs, extra).
    pub(super) fn record(
        &self,
        thread: ThreadId,
        nr: i64,
        args: [u64; 6],
        ret: i64,
    ) -> SyscallRecord {
        self.fields(thread, nr, args, ret, &SyscallExtra::None, 0)
            .into_record(Vec::new(), Vec::new())
    }
}

impl ThreadState {
    pub(super) fn new(logical: ThreadId, process: ProcessId) -> ThreadState {
        ThreadState {
            logical,
            process,
            events: 0,
            last_return: Instant::now(),
            in_flight: None,
            last_exit_rip: None,
            interrupted: None,
            restart_block: None,
            signals: Deferred::default(),
            self_signals: Vec::new(),
            serial_bypass: false,
            vfork_child: false,
            tsc_mode: TscMode::Enable,
            segv_blocked: 0,
            run: Run::Running,
        }
    }

    /// Counts an event that returns to the program now (a syscall or an
    /// rdtsc), and times it against the thread's previous one.
    /// `order` is the event-order stamp, taken while the thread is still
    /// stopped (NO_ORDER for a call that never returns).
    pub(super) fn stamp_return(&mut self, epoch: Instant, order: u64) -> ReturnStamp {
        self.stamp_return_at(Instant::now(), epoch, order)
    }

    pub(super) fn stamp_return_at(
        &mut self,
        now: Instant,
        epoch: Instant,
        order: u64,
    ) -> ReturnStamp {
        let stamp = ReturnStamp {
            index: self.events,
            interval_ns: now.duration_since(self.last_return).as_nanos() as u64,
            return_ns: now.duration_since(epoch).as_nanos() as u64,
            order,
        };
        self.last_return = now;
        self.events += 1;
        stamp
    }

    /// Counts an event that does not return (a signal): its index.
    pub(super) fn count_event(&mut self) -> u64 {
        let index = self.events;
        self.events += 1;
        index
    }
}

impl Recorder {
    pub(super) fn add_thread(
        &mut self,
        tid: Pid,
        parent: Option<Pid>,
        new_process: bool,
    ) -> Result<ThreadId> {
        let logical = self.next_thread.load(Ordering::Acquire);
        let parent_state = parent.and_then(|p| self.threads.get(&p));
        let parent_logical = parent_state.map(|t| t.logical);
        let parent_process = parent_state.map(|t| t.process);
        let tsc_mode = parent_state.map(|t| t.tsc_mode).unwrap_or_default();
        let segv_blocked = parent_state.map_or(0, |t| t.segv_blocked);
        let process = if new_process {
            let p = self.next_process;
            self.next_process += 1;
            // A child starts with its parent's dispositions.
            let inherited = parent_process
                .and_then(|pp| self.dispositions.get(&pp).cloned())
                .unwrap_or_default();
            self.dispositions.insert(p, inherited);
            p
        } else {
            parent_process.unwrap_or(0)
        };
        if !self.log.register_thread(tid.as_raw(), logical, process) {
            bail!(
                "more than {} threads: rrc's sync log is full",
                rrc_synclog::MAX_THREADS
            );
        }
        self.next_thread.store(logical + 1, Ordering::Release);
        let pid = *self.process_pid.entry(process).or_insert(tid.as_raw());
        let mut state = ThreadState::new(logical, process);
        state.tsc_mode = tsc_mode;
        state.segv_blocked = segv_blocked;
        self.threads.insert(tid, state);
        self.emit(TraceRecord::ThreadStart {
            thread: logical,
            process,
            parent: parent_logical,
            tid: tid.as_raw(),
            pid,
        })?;
        Ok(logical)
    }

    /// `pid` ended: what it ran alone ends, the serial call it was in
    /// lets the next one go, it is held nowhere any more, and its record
    /// goes.
    pub(super) fn remove_thread(&mut self, pid: Pid, status: ExitStatus) -> Result<()> {
        // Its last buffered calls, before its end (the buffer outlives it).
        self.drain_ended(pid)?;
        let released = self.end_alone(pid);
        self.release_all(released)?;
        self.alone.forget(pid);
        let next = self.finish_serial_call(pid);
        self.release_all(next)?;
        self.serial.forget(pid);
        if let Some(next) = self.token.give_back(pid) {
            self.release_all(vec![Release::Token(next)])?;
        }
        // Calls a killed thread was in end with it, but for three that
        // happened though they never returned, which replay must make too:
        // a signal the thread sent that ended its own process (raise or
        // kill of SIGKILL; 0, what a successful send returns), a clone
        // or fork whose child exists (killed between the kernel's making
        // it and the call's exit, as when the recording ends and kills
        // what is left behind; the child's id, what it returns), and an
        // execve that replaced the program (0): its exec event came, or a
        // vfork child was killed in it (a child of posix_spawn, which
        // Rust's `Command::spawn` uses, killed as soon as its parent went
        // on, which it does only once the exec is made; the kill can keep
        // the exec event from being reported).
        let (vfork_child, unreturned) = self
            .threads
            .get_mut(&pid)
            .map_or((false, None), |t| (t.vfork_child, t.in_flight.take()));
        if let Some(call) = unreturned {
            if let Some(child) = call.created {
                self.finish_syscall(pid, call, child.as_raw().into(), true)?;
            } else if matches!(call.extra, SyscallExtra::Exec { .. })
                || (is_exec(call.nr)
                    && vfork_child
                    && status == ExitStatus::Signaled(libc::SIGKILL))
            {
                self.finish_syscall(pid, call, 0, true)?;
            } else if matches!(status, ExitStatus::Signaled(_))
                && model::replay_action(call.nr, &call.args) == ReplayAction::SignalSend
            {
                self.finish_syscall(pid, call, 0, false)?;
            }
        }
        let Some(t) = self.threads.remove(&pid) else {
            return Ok(());
        };
        self.emit(TraceRecord::ThreadExit {
            thread: t.logical,
            events: t.events,
        })?;
        if pid == self.root {
            self.main_status = Some(status);
            self.root_process = Some(t.process);
        }
        self.end_left_behind()
    }

    /// Once the initial process has ended, the recording ends with it, as
    /// rr's does: processes it left behind (a daemon, a grandchild still
    /// running) are killed with SIGKILL where they are, which replay does
    /// again where their recorded events end; a thread in a write first
    /// finishes it (see `left_behind.rs`).
    fn end_left_behind(&mut self) -> Result<()> {
        let Some(root) = self.root_process else {
            return Ok(());
        };
        if self.threads.values().any(|t| t.process == root) || !self.left_behind.begin() {
            return Ok(());
        }
        let now = Instant::now();
        for (&tid, t) in self.threads.iter() {
            // Let go into the kernel with its call: writing now.
            let writing = t.run == Run::Running
                && t.in_flight
                    .as_ref()
                    .is_some_and(|c| model::sends_to(c.nr, &c.args).is_some());
            if writing {
                self.left_behind.finish_first(tid, now);
            } else {
                super::kill_left_behind(tid);
            }
        }
        Ok(())
    }

    /// A thread other than its process's leader ran execve: the kernel
    /// ended the leader, without reporting it, and gave the thread the
    /// leader's tid. The leader's stream ends; the thread's goes on under
    /// the new tid, which the shim now finds it by.
    pub(super) fn exec_from_thread(&mut self, former: Pid, leader: Pid) -> Result<()> {
        // The serial slot its execve took is under the tid it gave up.
        let next = self.finish_serial_call(former);
        self.release_all(next)?;
        if let Some(old) = self.threads.get(&leader) {
            // Free the slot that maps the leader's tid to the old leader.
            self.log.register_thread(0, old.logical, old.process);
        }
        let status = self.main_status;
        self.remove_thread(leader, ExitStatus::Exited(0))?;
        self.main_status = status;
        let Some(t) = self.threads.remove(&former) else {
            return Ok(());
        };
        self.log
            .register_thread(leader.as_raw(), t.logical, t.process);
        self.threads.insert(leader, t);
        Ok(())
    }

    pub(super) fn tgid_of(&self, pid: Pid) -> Pid {
        self.threads
            .get(&pid)
            .and_then(|t| self.process_pid.get(&t.process))
            .map_or(pid, |p| Pid::from_raw(*p))
    }

    /// Ends what `pid` runs alone (a fork or a handler), if anything: the
    /// shim's held sync operations go on, and the returns held for it are
    /// to be released.
    pub(super) fn end_alone(&mut self, pid: Pid) -> Vec<Release> {
        let Some(process) = self.threads.get(&pid).map(|t| t.process) else {
            return Vec::new();
        };
        let Some(ended) = self.alone.end(process, pid) else {
            return Vec::new();
        };
        self.log.end_fork(ended.stamp);
        ended.released.into_iter().map(Release::Exit).collect()
    }
}

/// execve or execveat.
fn is_exec(nr: i64) -> bool {
    matches!(nr, libc::SYS_execve | libc::SYS_execveat)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn returns_are_numbered_and_timed_against_the_previous_one() {
        let epoch = Instant::now();
        let mut t = ThreadState::new(3, 1);
        let start = t.last_return;
        let first = t.stamp_return_at(start + Duration::from_micros(5), epoch, 40);
        assert_eq!(first.index, 0);
        assert_eq!(first.interval_ns, 5_000);
        assert_eq!(first.order, 40);
        assert!(first.return_ns >= 5_000);
        assert_eq!(t.count_event(), 1, "a signal takes the next index");
        let second = t.stamp_return_at(start + Duration::from_micros(12), epoch, 41);
        assert_eq!(second.index, 2);
        assert_eq!(second.interval_ns, 7_000, "from the previous return");
        assert_eq!(second.return_ns - first.return_ns, 7_000);
        assert_eq!(t.events, 3);
    }

    #[test]
    fn a_stop_is_resumed_once() {
        let mut run = Run::Running;
        assert_eq!(run.resume(), Err(Run::Running), "not stopped");
        assert_eq!(run.stop(), Ok(()));
        assert_eq!(run.stop(), Err(Run::Stopped), "one stop at a time");
        assert_eq!(run.resume(), Ok(()));
        assert_eq!(run.resume(), Err(Run::Running), "a double resume");
        assert_eq!(run, Run::Running);
    }

    #[test]
    fn a_held_thread_is_resumed_only_after_its_release() {
        let mut run = Run::Running;
        assert_eq!(run.hold(Hold::Exit), Err(Run::Running), "not stopped");
        assert_eq!(run.stop(), Ok(()));
        assert_eq!(run.hold(Hold::SerialCall), Ok(()));
        assert_eq!(run.resume(), Err(Run::Held(Hold::SerialCall)));
        assert_eq!(run.stop(), Err(Run::Held(Hold::SerialCall)));
        assert_eq!(
            run.release(Hold::Exit),
            Err(Run::Held(Hold::SerialCall)),
            "released for the wrong reason"
        );
        assert_eq!(run.release(Hold::SerialCall), Ok(()));
        assert_eq!(run.release(Hold::SerialCall), Err(Run::Stopped), "twice");
        assert_eq!(run.resume(), Ok(()));
    }

    #[test]
    fn a_new_thread_is_running_and_holds_nothing() {
        let mut t = ThreadState::new(0, 0);
        assert_eq!(t.run, Run::Running);
        assert!(t.in_flight.is_none());
        assert!(t.signals.next().is_none());
        assert!(!t.serial_bypass);
    }
}
