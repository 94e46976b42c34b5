//! The tracer loop both engines share. [`drive`] owns waiting for stops,
//! sorting them, the start of every new task (the SIGSTOP it begins with,
//! which may arrive before or after its parent's clone event), group stops
//! and the filtering of "the tracee vanished under us" errors; the engine
//! behind [`StopHandler`] decides what each syscall, signal and exit means.

use std::collections::HashSet;

use nix::unistd::Pid;

use crate::colocate::Colocation;
use crate::stop::{poll_any, signal_stop_kind, wait_any, Polled, SignalStopKind, Stop};
use crate::{InterposeError, SyscallRegs, Tracee};

/// How a thread or process ended, as `waitpid` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Killed(i32),
}

/// What the engine wants when no stop is waiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idle {
    /// Nothing is timed: block in `waitpid` until the next stop.
    Block,
    /// The engine waited (for a deadline or a SIGCHLD) or released
    /// threads itself: look for stops again.
    Poll,
}

/// A ptrace event, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskEvent {
    /// clone, fork or vfork made `child` (its tid as the kernel gave it).
    NewTask { child: Pid, event: i32 },
    /// execve finished; `former` is the tid that called it (another
    /// thread's when a non-leader thread exec'd).
    Exec { former: Pid },
    /// Any other ptrace event (vfork done, exit, ...).
    Other(i32),
}

/// The engine's side of the loop. Every method runs while the thread it
/// names is stopped; the engine resumes it (or keeps it stopped) itself.
pub trait StopHandler {
    type Error: From<InterposeError>;

    /// A `SECCOMP_RET_TRACE` stop: the thread is entering a trapped call,
    /// whose registers the driver has read (once for everyone who looks),
    /// and for an `open` or `openat` its inputs, the path
    /// ([`crate::model::open_inputs`]).
    fn on_seccomp(
        &mut self,
        pid: Pid,
        regs: SyscallRegs,
        opened: Option<Vec<Vec<u8>>>,
    ) -> Result<(), Self::Error>;
    /// The exit of a syscall the engine resumed with `PTRACE_SYSCALL`.
    fn on_syscall_exit(&mut self, pid: Pid) -> Result<(), Self::Error>;
    /// A ptrace event. For [`TaskEvent::NewTask`], return whether the
    /// engine now follows the child: the driver then starts it.
    fn on_task_event(&mut self, pid: Pid, event: TaskEvent) -> Result<bool, Self::Error>;
    /// A new task the engine follows made its first stop and is about to
    /// run its first instruction (the kernel has set it up: its
    /// `CLONE_CHILD_SETTID` id is written).
    fn on_start(&mut self, _pid: Pid) -> Result<(), Self::Error> {
        Ok(())
    }
    /// A signal about to be delivered to a thread the engine follows (not
    /// a new task's first SIGSTOP, not a group stop).
    fn on_signal(&mut self, pid: Pid, sig: i32) -> Result<(), Self::Error>;
    /// A thread ended.
    fn on_exit(&mut self, pid: Pid, how: Ended) -> Result<(), Self::Error>;
    /// No stop is waiting.
    fn on_idle(&mut self) -> Result<Idle, Self::Error>;
    /// After every stop has been handled (release what it made due).
    fn after_stop(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
    /// Whether the engine follows `pid` (new tasks may stop before their
    /// parent's clone event says whose they are).
    fn follows(&self, pid: Pid) -> bool;
    /// Whether `error` only says a tracee vanished mid-stop (killed by
    /// `exit_group` or SIGKILL): `waitpid` reports that later.
    fn tracee_gone(error: &Self::Error) -> bool;
    /// Errors from `waitpid` itself.
    fn wait_failed(errno: nix::errno::Errno) -> Self::Error;
}

/// New tasks between their creation and their first stop.
#[derive(Debug, Default)]
pub struct Prologue {
    /// Tasks whose first SIGSTOP came before their parent's clone event.
    early: HashSet<Pid>,
    /// Tasks the engine follows whose first SIGSTOP has not come yet.
    awaiting: HashSet<Pid>,
}

/// What to do with a signal stop, once the prologue has seen it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalStep {
    /// An unknown task's first stop: keep it stopped until it is adopted.
    Park,
    /// A new task's first stop: start it.
    Start,
    /// A group stop: resume without a signal.
    Continue,
    /// A real signal for the engine.
    Deliver,
}

impl Prologue {
    /// Sorts a signal stop of `pid`; `known` says the engine follows it.
    pub fn signal(&mut self, pid: Pid, sig: i32, known: bool) -> SignalStep {
        if !known {
            self.early.insert(pid);
            return SignalStep::Park;
        }
        let awaiting = self.awaiting.contains(&pid);
        match signal_stop_kind(pid, sig, awaiting) {
            SignalStopKind::ThreadStart => {
                self.awaiting.remove(&pid);
                SignalStep::Start
            }
            SignalStopKind::GroupStop => SignalStep::Continue,
            SignalStopKind::Delivery => SignalStep::Deliver,
        }
    }

    /// The engine adopted `child`: true when it already made its first
    /// stop and must be started now.
    pub fn adopted(&mut self, child: Pid) -> bool {
        if self.early.remove(&child) {
            true
        } else {
            self.awaiting.insert(child);
            false
        }
    }

    /// Whether `pid` has yet to make its first stop.
    pub fn awaiting(&self, pid: Pid) -> bool {
        self.awaiting.contains(&pid)
    }

    /// `pid` ended: forget it.
    pub fn ended(&mut self, pid: Pid) {
        self.early.remove(&pid);
        self.awaiting.remove(&pid);
    }
}

/// Runs the loop until no traced task is left.
pub fn drive<H: StopHandler>(handler: &mut H) -> Result<(), H::Error> {
    let mut prologue = Prologue::default();
    let mut colocation = Colocation::default();
    loop {
        let stop = match poll_any().map_err(H::wait_failed)? {
            Polled::Stop(stop) => stop,
            Polled::Gone => {
                crate::startup_pin::release();
                return Ok(());
            }
            // Releasing a thread that vanished meanwhile is no failure
            // either: wait reports its end.
            Polled::Nothing => match unless_gone::<H, _>(handler.on_idle())? {
                Some(Idle::Block) => match wait_any(false).map_err(H::wait_failed)? {
                    Some(stop) => stop,
                    None => return Ok(()),
                },
                Some(Idle::Poll) | None => continue,
            },
        };
        unless_gone::<H, _>(dispatch(handler, &mut prologue, &mut colocation, stop))?;
        unless_gone::<H, _>(handler.after_stop())?;
    }
}

/// `result`, with "the tracee vanished under us" turned into `None`.
fn unless_gone<H: StopHandler, T>(result: Result<T, H::Error>) -> Result<Option<T>, H::Error> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if H::tracee_gone(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

fn dispatch<H: StopHandler>(
    handler: &mut H,
    prologue: &mut Prologue,
    colocation: &mut Colocation,
    stop: Stop,
) -> Result<(), H::Error> {
    match stop {
        Stop::Seccomp(pid) => {
            let tracee = Tracee::new(pid);
            let regs = tracee.regs("read registers at seccomp stop")?;
            let (nr, args) = (regs.nr(), regs.args());
            let opened = crate::model::open_inputs(&tracee, nr, &args);
            let path = opened.as_ref().and_then(|i| i.first()).map(Vec::as_slice);
            if crate::startup_pin::active() {
                if let Some(original) = crate::startup_pin::at_seccomp_stop(pid, nr, &args, path) {
                    colocation.adopt(pid, original);
                }
            } else {
                colocation.at_seccomp_stop(pid, nr, &args, path);
            }
            handler.on_seccomp(pid, regs, opened)
        }
        Stop::SyscallExit(pid) => handler.on_syscall_exit(pid),
        Stop::Event(pid, event) => {
            let event = task_event(pid, event)?;
            let adopted = handler.on_task_event(pid, event)?;
            if let (TaskEvent::NewTask { child, .. }, true) = (event, adopted) {
                if prologue.adopted(child) {
                    start(handler, child)?;
                }
            }
            Ok(())
        }
        Stop::Signal(pid, sig) => match prologue.signal(pid, sig, handler.follows(pid)) {
            SignalStep::Park => Ok(()),
            SignalStep::Start => start(handler, pid),
            SignalStep::Continue => Ok(Tracee::new(pid).resume(0, "resume from a group stop")?),
            SignalStep::Deliver => handler.on_signal(pid, sig),
        },
        Stop::Exited(pid, code) => {
            prologue.ended(pid);
            colocation.ended(pid);
            handler.on_exit(pid, Ended::Exited(code))
        }
        Stop::Killed(pid, sig) => {
            prologue.ended(pid);
            colocation.ended(pid);
            handler.on_exit(pid, Ended::Killed(sig))
        }
    }
}

/// Starts a new task at its first stop, once the engine has seen it.
fn start<H: StopHandler>(handler: &mut H, pid: Pid) -> Result<(), H::Error> {
    handler.on_start(pid)?;
    Ok(Tracee::new(pid).resume(0, "start new thread")?)
}

fn task_event(pid: Pid, event: i32) -> Result<TaskEvent, InterposeError> {
    let tracee = Tracee::new(pid);
    Ok(match event {
        libc::PTRACE_EVENT_CLONE | libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK => {
            let child = tracee.event_message("read new tid at clone event")? as i32;
            TaskEvent::NewTask {
                child: Pid::from_raw(child),
                event,
            }
        }
        libc::PTRACE_EVENT_EXEC => {
            let former = tracee.event_message("read the former tid at exec")? as i32;
            TaskEvent::Exec {
                former: Pid::from_raw(former),
            }
        }
        other => TaskEvent::Other(other),
    })
}

/// A syscall return value that means "the kernel will restart this call"
/// (ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK):
/// user space never sees it.
pub fn is_restart(ret: i64) -> bool {
    matches!(-ret, 512..=514 | 516)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_that_stops_before_its_clone_event_is_started_when_adopted() {
        let mut p = Prologue::default();
        let child = Pid::from_raw(4242);
        assert_eq!(p.signal(child, libc::SIGSTOP, false), SignalStep::Park);
        assert!(p.adopted(child), "an early stop is started at adoption");
        assert!(!p.awaiting(child));
    }

    #[test]
    fn a_task_adopted_before_its_first_stop_waits_for_it() {
        let mut p = Prologue::default();
        let child = Pid::from_raw(4243);
        assert!(!p.adopted(child));
        assert!(p.awaiting(child));
        p.ended(child);
        assert!(!p.awaiting(child));
    }

    #[test]
    fn restart_codes_are_the_kernels_internal_ones() {
        assert!(is_restart(-512));
        assert!(is_restart(-516));
        assert!(!is_restart(-515), "ENOIOCTLCMD is not a restart");
        assert!(!is_restart(-4), "EINTR reaches the program");
        assert!(!is_restart(-518));
        assert!(!is_restart(0));
    }
}
