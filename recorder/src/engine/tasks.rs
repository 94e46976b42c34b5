//! ptrace events: clone, fork and vfork make threads and processes (a
//! fork's memory copy runs alone, see `alone`), and exec.

use anyhow::Result;
use nix::unistd::Pid;
use rrc_interposer::{prepare_exec, TaskEvent, Tracee, TraceeMemory, AT_RANDOM_LEN};
use rrc_trace::SyscallExtra;

use super::{Recorder, Resume};

impl Recorder {
    /// A ptrace event of `pid`; true when it made a task we now follow.
    pub(super) fn task_event(&mut self, pid: Pid, event: TaskEvent) -> Result<bool> {
        let adopted = match event {
            TaskEvent::NewTask { child, event } => {
                self.mark_stopped(pid)?;
                self.new_task(pid, child, event)?;
                true
            }
            TaskEvent::Exec { former } => {
                if former != pid {
                    self.exec_from_thread(former, pid)?;
                }
                // After the move: the record under `pid` is the one that
                // exec'd, now stopped here.
                self.mark_stopped(pid)?;
                self.keep_exec_random(pid)?;
                // Only now: a kill that stopped the reading of the new
                // program above leaves the call to the vfork rule (see
                // `remove_thread`).
                if let Some(t) = self.threads.get_mut(&pid) {
                    t.vfork_child = false;
                }
                // The mask survives exec; the new program's loader may
                // run rdtsc before any syscall of its own.
                self.note_segv_mask(pid);
                false
            }
            TaskEvent::Other(_) => {
                self.mark_stopped(pid)?;
                false
            }
        };
        let to = if self
            .threads
            .get(&pid)
            .is_some_and(|t| t.in_flight.is_some())
        {
            Resume::ToExit("resume to syscall exit")
        } else {
            Resume::Run(0, "resume")
        };
        self.resume(pid, to)?;
        Ok(adopted)
    }

    /// Hides the vDSO from the new program and keeps its `AT_RANDOM`
    /// bytes with the exec call, for replay to write back.
    fn keep_exec_random(&mut self, pid: Pid) -> Result<()> {
        let tracee = Tracee::new(pid);
        let Some(at) = prepare_exec(&tracee)? else {
            return Ok(());
        };
        let bytes = tracee.read(at, AT_RANDOM_LEN)?;
        let Ok(random) = <[u8; AT_RANDOM_LEN]>::try_from(bytes.as_slice()) else {
            return Ok(());
        };
        if let Some(call) = self
            .threads
            .get_mut(&pid)
            .and_then(|t| t.in_flight.as_mut())
        {
            call.extra = SyscallExtra::Exec { random };
        }
        Ok(())
    }

    /// `parent`'s clone, fork or vfork made `child`.
    fn new_task(&mut self, parent: Pid, child: Pid, event: i32) -> Result<()> {
        let new_process = event != libc::PTRACE_EVENT_CLONE || !self.clone_makes_thread(parent);
        let logical = self.add_thread(child, Some(parent), new_process)?;
        if self.own_filter {
            self.set_go_traced(child, rrc_synclog::syscallbuf::TRACED_OWN_FILTER, true);
        }
        let process = self.threads.get(&child).map_or(0, |t| t.process);
        if let Some(call) = self
            .threads
            .get_mut(&parent)
            .and_then(|t| t.in_flight.as_mut())
        {
            call.created = Some(child);
            call.extra = if new_process {
                SyscallExtra::NewProcess {
                    process,
                    thread: logical,
                }
            } else {
                SyscallExtra::NewThread(logical)
            };
        }
        if event == libc::PTRACE_EVENT_VFORK {
            if let Some(t) = self.threads.get_mut(&child) {
                t.vfork_child = true;
            }
        }
        if event == libc::PTRACE_EVENT_VFORK || (event == libc::PTRACE_EVENT_CLONE && new_process) {
            // A child on the parent's memory may run on its stack and
            // thread-local storage (vfork, posix_spawn): its calls must
            // not land in the parent's buffer until the parent stops again.
            self.set_go_traced(parent, rrc_synclog::syscallbuf::TRACED_VFORK, true);
        }
        if self.child_keeps_parents_identity(parent) {
            // The shim in the child takes itself for the parent (the same
            // thread-local storage, or a copy libc's fork did not reset):
            // neither may buffer into the parent's buffer from now on.
            self.set_go_traced(parent, rrc_synclog::syscallbuf::TRACED_SHARED, true);
        }
        // The child has its copy of memory.
        let released = self.end_alone(parent);
        self.release_all(released)
    }

    /// Whether the task `pid`'s call in flight makes carries the shim's
    /// idea of who it is over from `pid`: a raw `fork`, a clone sharing
    /// memory without a thread pointer of its own (no `CLONE_SETTLS`), or
    /// a fork-like clone that is not libc's (which sets `CLONE_CHILD_SETTID`
    /// and resets the shim in the child through `pthread_atfork`).
    fn child_keeps_parents_identity(&self, pid: Pid) -> bool {
        let Some(call) = self.threads.get(&pid).and_then(|t| t.in_flight.as_ref()) else {
            return false;
        };
        let flags = match call.nr {
            libc::SYS_fork => return true,
            libc::SYS_clone => call.args[0],
            libc::SYS_clone3 => Tracee::new(pid).read_u64(call.args[0]).unwrap_or(0),
            _ => return false,
        };
        let has = |f: i32| flags & f as u64 != 0;
        if has(libc::CLONE_VM) {
            !has(libc::CLONE_SETTLS) && !has(libc::CLONE_VFORK)
        } else {
            !has(libc::CLONE_CHILD_SETTID)
        }
    }

    /// Whether the clone in flight on `pid` shares the address space's
    /// thread group (a thread) rather than making a process.
    fn clone_makes_thread(&self, pid: Pid) -> bool {
        let Some(call) = self.threads.get(&pid).and_then(|t| t.in_flight.as_ref()) else {
            return true;
        };
        let flags = match call.nr {
            libc::SYS_clone => call.args[0],
            libc::SYS_clone3 => Tracee::new(pid).read_u64(call.args[0]).unwrap_or(0),
            _ => 0,
        };
        flags & libc::CLONE_THREAD as u64 != 0
    }
}
