//! The fast path's buffered calls (see `rrc_synclog::syscallbuf` and the
//! shim's `fast`): read out of a thread's syscall buffer whenever the
//! thread stops and when it ends, before any event of its own is counted,
//! and turned into the records a trapped call gives, through the same
//! syscall model, reading the memory the shim copied. Also: the boundary
//! a buffered call traps at to take a signal held for it, and the flags
//! that make a thread's calls trap for a while.

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;
use nix::unistd::Pid;
use rrc_interposer::{model, InterposeError, SyscallRegs, Tracee, TraceeMemory};
use rrc_synclog::syscallbuf::{BufferedCall, BOUNDARY_NR, TRACED_SIGNAL_HELD, TRACED_VFORK};
use rrc_trace::{SyscallExtra, SyscallRecord};

use super::serial::{writes_out, StdStreams};
use super::threads::ThreadState;
use super::{finish_syscall_record, writer_stopped, Recorder, Resume};

/// The memory a buffered call read or wrote, as the shim copied it:
/// each region's address, and where its bytes are in `bytes`.
struct Snapshot<'a> {
    bytes: &'a [u8],
    regions: &'a [(u64, std::ops::Range<usize>)],
}

impl TraceeMemory for Snapshot<'_> {
    fn read(&self, addr: u64, len: usize) -> rrc_interposer::Result<Vec<u8>> {
        let end = addr.checked_add(len as u64);
        self.regions
            .iter()
            .find_map(|(base, at)| {
                let bytes = self.bytes.get(at.clone())?;
                let off = addr.checked_sub(*base)? as usize;
                (end? <= base + bytes.len() as u64).then(|| bytes[off..off + len].to_vec())
            })
            .ok_or(not_copied("read a snapshot", addr, len))
    }

    fn write(&self, addr: u64, data: &[u8]) -> rrc_interposer::Result<()> {
        Err(not_copied("write a snapshot", addr, data.len()))
    }
}

/// Memory the shim did not copy (the model asked for more than the shim
/// knows the call touches: a bug, which the unit tests look for).
fn not_copied(op: &'static str, addr: u64, len: usize) -> InterposeError {
    InterposeError::Memory {
        tid: 0,
        op,
        addr,
        len,
        errno: nix::errno::Errno::EFAULT,
    }
}

/// How a thread's buffer is read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Drain {
    /// While it may run: only what it has published.
    Published,
    /// Stopped: all of it, and a vfork child that borrowed its stack is
    /// done with it (a vfork parent runs again only after the child has
    /// exec'd or exited).
    Stopped,
    /// Ended: all of it; a vfork child of a parent killed in its vfork
    /// may still run on the parent's stack, and keeps trapping.
    Ended,
}

impl Recorder {
    /// How often the buffers of threads that do not stop are read, so that
    /// the trace (and a backup reading it as a stream) lags the program
    /// by no more than this.
    pub(super) const DRAIN_PERIOD: Duration = Duration::from_millis(20);
    /// How often while threads buffer calls: reading gives the room
    /// back, and a thread of hot calls fills its buffer in a couple of
    /// milliseconds (then it traps and waits while the tracer reads it).
    pub(super) const BUSY_DRAIN_PERIOD: Duration = Duration::from_millis(1);

    /// Every thread's buffered calls so far, the threads running or not
    /// (the periodic drain; nothing is emptied). Returns how soon to
    /// read them again: soon while threads buffer calls (read here or at
    /// their stops since the last time), else at the idle pace.
    pub(super) fn drain_all_published(&mut self) -> Result<Duration> {
        let pids: Vec<Pid> = self.threads.keys().copied().collect();
        for pid in pids {
            self.drain_from(pid, Drain::Published)?;
        }
        Ok(if std::mem::take(&mut self.buffered_since_drain) {
            Self::BUSY_DRAIN_PERIOD
        } else {
            Self::DRAIN_PERIOD
        })
    }

    /// Turns `pid`'s buffered calls into trace records. Called while it is
    /// stopped: its shim is not writing the buffer.
    pub(super) fn drain_buffered(&mut self, pid: Pid) -> Result<()> {
        self.drain_from(pid, Drain::Stopped)
    }

    /// The last of a thread that has ended.
    pub(super) fn drain_ended(&mut self, pid: Pid) -> Result<()> {
        self.drain_from(pid, Drain::Ended)
    }

    fn drain_from(&mut self, pid: Pid, how: Drain) -> Result<()> {
        let stopped = how != Drain::Published;
        let Some(t) = self.threads.get(&pid) else {
            return Ok(());
        };
        let (thread, process) = (t.logical, t.process);
        let Some(buf) = self.log.syscall_buf(thread) else {
            return Ok(());
        };
        // Read first: this runs at every stop, and a locked update of a
        // word the shim reads on every buffered call is not free.
        if how == Drain::Stopped && buf.go_traced.load(Ordering::Relaxed) & TRACED_VFORK != 0 {
            buf.go_traced.fetch_and(!TRACED_VFORK, Ordering::SeqCst);
        }
        if !buf.pending() {
            if stopped {
                buf.empty_if_idle();
            }
            return Ok(());
        }
        self.buffered_since_drain = true;
        // Read into the tracer's own buffer, kept from one read to the
        // next (a new one each time was a fresh mapping to fault in).
        let mut bytes = std::mem::take(&mut self.buffered_bytes);
        let mut calls = std::mem::take(&mut self.buffered_calls);
        let taken = if stopped {
            buf.take(&mut bytes, &mut calls)
        } else {
            buf.take_published(&mut bytes, &mut calls)
        };
        match taken {
            Ok(()) => {}
            Err(bad) => {
                // Only a program writing over rrc's memory gets here: its
                // trace would be wrong from here on, so say so and stop.
                anyhow::bail!(
                    "thread {thread}'s syscall buffer is damaged at byte {}: the program \
                     wrote over rrc's shared memory",
                    bad.offset
                );
            }
        };
        // Framed here and sent to the writer in one message.
        let mut frames = self.sink.frames();
        let mut framed = Ok(());
        // The thread is looked up once for all its calls.
        if let Some(t) = self.threads.get_mut(&pid) {
            let at = Origin {
                pid,
                process,
                epoch: self.epoch,
            };
            for call in &calls {
                let mut record = buffered_record(t, &mut self.std_streams, &at, &bytes, call);
                finish_syscall_record(&mut record, self.full_inputs);
                framed = framed.and(frames.push_syscall(&record));
            }
        }
        self.buffered_bytes = bytes;
        self.buffered_calls = calls;
        framed?;
        if !frames.is_empty() {
            self.sink
                .send_frames(frames)
                .map_err(|_| writer_stopped())?;
        }
        Ok(())
    }

    /// The program's seccomp filter is in place (`TRACED_OWN_FILTER`):
    /// every thread, and every one made from now on, stops buffering.
    pub(super) fn program_filter_installed(&mut self) {
        self.own_filter = true;
        let pids: Vec<Pid> = self.threads.keys().copied().collect();
        for pid in pids {
            self.set_go_traced(pid, rrc_synclog::syscallbuf::TRACED_OWN_FILTER, true);
        }
    }

    /// Sets or clears `TRACED_*` bits on `pid`'s buffer.
    pub(super) fn set_go_traced(&self, pid: Pid, bit: u32, on: bool) {
        let Some(buf) = self
            .threads
            .get(&pid)
            .and_then(|t| self.log.syscall_buf(t.logical))
        else {
            return;
        };
        let set = buf.go_traced.load(Ordering::Relaxed) & bit != 0;
        if on && !set {
            buf.go_traced.fetch_or(bit, Ordering::SeqCst);
        } else if !on && set {
            buf.go_traced.fetch_and(!bit, Ordering::SeqCst);
        }
    }

    /// Whether a seccomp stop is the shim's boundary call (not an event).
    pub(super) fn is_boundary(nr: i64) -> bool {
        nr == BOUNDARY_NR
    }

    /// While a signal is held back for `pid`, its calls trap (the shim
    /// buffers none), so that the next one is a boundary to deliver it at.
    pub(super) fn note_held_signals(&self, pid: Pid) {
        let held = self
            .threads
            .get(&pid)
            .is_some_and(|t| t.signals.holds_any());
        self.set_go_traced(pid, TRACED_SIGNAL_HELD, held);
    }

    /// The shim trapped just after a buffered call to take a signal held
    /// for it (its buffer is drained, so that call is the thread's last
    /// event): the signal is queued and arrives as the boundary returns,
    /// which is where replay delivers it, at that call's return. The
    /// boundary itself is no event: it is skipped.
    pub(super) fn buffered_call_boundary(&mut self, pid: Pid, mut regs: SyscallRegs) -> Result<()> {
        let enosys = -(libc::ENOSYS as i64);
        Tracee::new(pid).skip_syscall(&mut regs, enosys)?;
        self.queue_held_signal(pid)?;
        if let Some(t) = self.threads.get_mut(&pid) {
            // Set after queueing (which forgets the last exit): a signal
            // stop here is at the return of the thread's last event.
            t.last_exit_rip = Some(regs.regs.rip);
        }
        self.resume(
            pid,
            Resume::Run(0, "resume after a buffered call's boundary"),
        )
    }
}

/// Where a thread's buffered calls come from.
struct Origin {
    pid: Pid,
    process: rrc_trace::ProcessId,
    epoch: std::time::Instant,
}

/// The record a buffered call of thread `t` makes.
fn buffered_record(
    t: &mut ThreadState,
    std_streams: &mut StdStreams,
    at: &Origin,
    bytes: &[u8],
    call: &BufferedCall,
) -> SyscallRecord {
    let mem = Snapshot {
        bytes,
        regions: &call.regions,
    };
    let inputs = model::read_inputs_from(&mem, call.nr, &call.args).unwrap_or_default();
    let regions = model::outputs(call.nr, &call.args, call.ret, &mem).unwrap_or_default();
    let outputs = regions
        .iter()
        .map(|r| mem.read(r.addr, r.len).unwrap_or_default())
        .collect();
    // A write through a dup of our stdout or stderr is program output.
    let stream = if writes_out(call.nr) {
        std_streams.get(at.pid, at.process, call.args[0])
    } else {
        None
    };
    let extra = stream.map_or(SyscallExtra::Buffered, SyscallExtra::StdStream);
    let returned = at.epoch + Duration::from_nanos(call.return_ns);
    let stamp = t.stamp_return_at(returned, at.epoch, call.order);
    // The last trapped call's exit is not where the thread is now.
    t.last_exit_rip = None;
    SyscallRecord {
        inputs,
        outputs,
        extra,
        ..stamp.record(t.logical, call.nr, call.args, call.ret)
    }
}
