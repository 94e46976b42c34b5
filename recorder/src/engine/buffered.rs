//! The fast path's buffered calls (see `rrc_synclog::syscallbuf` and the
//! shim's `fast`): read out of a thread's syscall buffer whenever the
//! thread stops and when it ends, before any event of its own is counted,
//! and turned into the records a trapped call gives, through the same
//! syscall model, reading the memory the shim copied. Also: the boundary
//! a buffered call traps at to take a signal held for it, and the flags
//! that make a thread's calls trap for a while.

use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Result;
use nix::unistd::Pid;
use rrc_interposer::{model, InterposeError, SyscallRegs, Tracee, TraceeMemory};
use rrc_synclog::syscallbuf::{BufferedCall, BOUNDARY_NR, TRACED_SIGNAL_HELD, TRACED_VFORK};
use rrc_trace::{Frames, SyscallExtra};

use super::serial::StdStreams;
use super::threads::{ReturnStamp, ThreadState};
use super::{writer_stopped, Recorder, Resume};

/// The memory a buffered call read or wrote, as the shim copied it:
/// each region's address, and where its bytes are in `bytes`.
struct Snapshot<'a> {
    bytes: &'a [u8],
    regions: &'a [(u64, std::ops::Range<usize>)],
}

impl TraceeMemory for Snapshot<'_> {
    fn read(&self, addr: u64, len: usize) -> rrc_interposer::Result<Vec<u8>> {
        self.bytes(addr, len).map(Cow::into_owned)
    }

    /// The copy of `len` bytes at `addr`, if one region holds them.
    fn bytes(&self, addr: u64, len: usize) -> rrc_interposer::Result<Cow<'_, [u8]>> {
        let end = addr.checked_add(len as u64);
        self.regions
            .iter()
            .find_map(|(base, at)| {
                let bytes = self.bytes.get(at.clone())?;
                let off = addr.checked_sub(*base)? as usize;
                (end? <= base + bytes.len() as u64).then(|| Cow::Borrowed(&bytes[off..off + len]))
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
        // Calls are being buffered: the periodic read comes at the busy
        // pace from now on, not at the idle pace set while there were none
        // (threads that began buffering then filled their buffers and
        // trapped, each waiting while its whole buffer was read).
        let soon = Instant::now() + Self::BUSY_DRAIN_PERIOD;
        self.next_drain = self.next_drain.map(|due| due.min(soon));
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
                let mem = Snapshot {
                    bytes: &bytes,
                    regions: &call.regions,
                };
                let pushed = push_buffered(
                    &mut frames,
                    t,
                    &mut self.std_streams,
                    &at,
                    &mem,
                    call,
                    self.full_inputs,
                );
                framed = framed.and(pushed);
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
        let _ = self.queue_held_signal(pid)?;
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

/// Frames the record of a buffered call of thread `t` without building
/// it: its inputs and outputs are borrowed from the snapshot `mem` (what
/// the model puts together, a gather list or a digest, aside), through
/// the same syscall model as a trapped call.
fn push_buffered(
    frames: &mut Frames,
    t: &mut ThreadState,
    std_streams: &mut StdStreams,
    at: &Origin,
    mem: &Snapshot,
    call: &BufferedCall,
    full_inputs: bool,
) -> rrc_trace::Result<()> {
    let mut inputs = model::read_inputs_from(mem, call.nr, &call.args).unwrap_or_default();
    let regions = model::outputs(call.nr, &call.args, call.ret, mem).unwrap_or_default();
    let extra = buffered_extra(std_streams, at, call);
    let digested = if full_inputs {
        0
    } else {
        rrc_trace::digest_sent(call.nr as u32, &extra, &mut inputs)
    };
    let stamp = buffered_stamp(t, at, call);
    let fields = stamp.fields(t.logical, call.nr, call.args, call.ret, &extra, digested);
    // Each output is framed as it is lent, not gathered into a list first.
    let outputs = regions
        .iter()
        .map(|r| mem.bytes(r.addr, r.len).unwrap_or_default());
    frames.push_syscall_parts(&fields, inputs.iter(), outputs)
}

/// A write through a dup of our stdout or stderr is program output.
fn buffered_extra(std_streams: &mut StdStreams, at: &Origin, call: &BufferedCall) -> SyscallExtra {
    let stream =
        model::sends_to(call.nr, &call.args).and_then(|fd| std_streams.get(at.pid, at.process, fd));
    stream.map_or(SyscallExtra::Buffered, SyscallExtra::StdStream)
}

/// A buffered call's place among its thread's events, stamped with the
/// time the shim read as it returned.
fn buffered_stamp(t: &mut ThreadState, at: &Origin, call: &BufferedCall) -> ReturnStamp {
    let returned = at.epoch + Duration::from_nanos(call.return_ns);
    let stamp = t.stamp_return_at(returned, at.epoch, call.order);
    // The last trapped call's exit is not where the thread is now.
    t.last_exit_rip = None;
    stamp
}

#[cfg(test)]
mod tests {
    use super::super::finish_syscall_record;
    use super::*;
    use rrc_trace::{SyscallRecord, TraceHeader, TraceReader, TraceRecord, TraceWriter};

    /// The record a buffered call of thread `t` makes, built as a trapped
    /// call's is: what framing in place must give the bytes of.
    fn buffered_record(
        t: &mut ThreadState,
        std_streams: &mut StdStreams,
        at: &Origin,
        mem: &Snapshot,
        call: &BufferedCall,
    ) -> SyscallRecord {
        let inputs = model::read_inputs_from(mem, call.nr, &call.args)
            .unwrap_or_default()
            .into_iter()
            .map(Cow::into_owned)
            .collect();
        let regions = model::outputs(call.nr, &call.args, call.ret, mem).unwrap_or_default();
        let outputs = regions
            .iter()
            .map(|r| mem.read(r.addr, r.len).unwrap_or_default())
            .collect();
        let extra = buffered_extra(std_streams, at, call);
        let stamp = buffered_stamp(t, at, call);
        SyscallRecord {
            inputs,
            outputs,
            extra,
            ..stamp.record(t.logical, call.nr, call.args, call.ret)
        }
    }

    /// A snapshot of `regions` (address, bytes), laid out as a take lays
    /// them out.
    fn snapshot(regions: &[(u64, Vec<u8>)]) -> (Vec<u8>, Vec<(u64, std::ops::Range<usize>)>) {
        let mut bytes = Vec::new();
        let mut at = Vec::new();
        for (addr, data) in regions {
            at.push((*addr, bytes.len()..bytes.len() + data.len()));
            bytes.extend_from_slice(data);
            bytes.resize(bytes.len().div_ceil(8) * 8, 0);
        }
        (bytes, at)
    }

    /// `struct iovec`s, as the program's memory holds them.
    fn iovecs(pieces: &[(u64, u64)]) -> Vec<u8> {
        pieces
            .iter()
            .flat_map(|&(base, len)| [base.to_le_bytes(), len.to_le_bytes()])
            .flatten()
            .collect()
    }

    /// A sendmsg of `len` bytes, its msghdr at `at`, as the shim copies it.
    /// A buffered call: number, arguments, result, the regions the shim
    /// copied (address, bytes).
    type Call = (i64, [u64; 6], i64, Vec<(u64, Vec<u8>)>);

    fn sendmsg(at: u64, len: usize) -> Call {
        let mut msghdr = vec![0u8; 56];
        msghdr[16..24].copy_from_slice(&(at + 0x100).to_le_bytes());
        msghdr[24..32].copy_from_slice(&1u64.to_le_bytes());
        let regions = vec![
            (at, msghdr),
            (at + 0x100, iovecs(&[(at + 0x200, len as u64)])),
            (at + 0x200, vec![8; len]),
        ];
        (libc::SYS_sendmsg, [7, at, 0, 0, 0, 0], len as i64, regions)
    }

    fn sealed(mut frames: Frames) -> Vec<u8> {
        let header = TraceHeader::default();
        let mut writer = TraceWriter::new(Vec::new(), &header).expect("header");
        writer.write_frames(&mut frames).expect("frames");
        writer.into_inner()
    }

    #[test]
    fn buffered_calls_framed_in_place_are_the_records_built_from_them() {
        let sockaddr = [2u8, 0, 0x1f, 0x90, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        // (nr, args, ret, regions the shim copied)
        let calls: Vec<Call> = vec![
            (
                libc::SYS_clock_gettime,
                [1, 0x1000, 0, 0, 0, 0],
                0,
                vec![(0x1000, vec![3; 16])],
            ),
            (
                libc::SYS_write,
                [7, 0x2000, 64, 0, 0, 0],
                64,
                vec![(0x2000, vec![b'x'; 64])],
            ),
            (
                libc::SYS_write,
                [7, 0x2000, 65, 0, 0, 0],
                65,
                vec![(0x2000, vec![b'y'; 65])],
            ),
            (
                libc::SYS_sendto,
                [7, 0x3000, 10, 0, 0x4000, 16],
                10,
                vec![(0x3000, vec![1; 10]), (0x4000, sockaddr.to_vec())],
            ),
            (
                libc::SYS_read,
                [7, 0x5000, 100, 0, 0, 0],
                20,
                vec![(0x5000, vec![9; 20])],
            ),
            (libc::SYS_read, [7, 0x5000, 100, 0, 0, 0], -11, Vec::new()),
            (libc::SYS_getppid, [0; 6], 4242, Vec::new()),
            // A region the model names but the shim did not copy.
            (libc::SYS_read, [7, 0x6000, 100, 0, 0, 0], 30, Vec::new()),
            (
                libc::SYS_writev,
                [7, 0x7000, 2, 0, 0, 0],
                100,
                vec![
                    (0x7000, iovecs(&[(0x7100, 60), (0x7200, 40)])),
                    (0x7100, vec![4; 60]),
                    (0x7200, vec![5; 40]),
                ],
            ),
            sendmsg(0x8000, 20),
            sendmsg(0x9000, 100),
            // A gather list whose second piece the shim did not copy.
            (
                libc::SYS_writev,
                [7, 0xa000, 2, 0, 0, 0],
                30,
                vec![
                    (0xa000, iovecs(&[(0xa100, 10), (0xa200, 20)])),
                    (0xa100, vec![6; 10]),
                ],
            ),
        ];
        for full_inputs in [false, true] {
            let epoch = std::time::Instant::now();
            let at = Origin {
                pid: Pid::from_raw(i32::MAX),
                process: 0,
                epoch,
            };
            let (mut in_place, mut built) = (ThreadState::new(1, 0), ThreadState::new(1, 0));
            built.last_return = in_place.last_return;
            let (mut a, mut b) = (Frames::new(), Frames::new());
            let mut streams = StdStreams::new();
            let mut digested = 0;
            for (i, (nr, args, ret, regions)) in calls.iter().enumerate() {
                let (bytes, regions) = snapshot(regions);
                let call = BufferedCall {
                    nr: *nr,
                    args: *args,
                    ret: *ret,
                    order: 100 + i as u64,
                    return_ns: 1_000 * (i as u64 + 1),
                    regions,
                };
                let mem = Snapshot {
                    bytes: &bytes,
                    regions: &call.regions,
                };
                push_buffered(
                    &mut a,
                    &mut in_place,
                    &mut streams,
                    &at,
                    &mem,
                    &call,
                    full_inputs,
                )
                .expect("framed in place");
                let mut record = buffered_record(&mut built, &mut streams, &at, &mem, &call);
                finish_syscall_record(&mut record, full_inputs);
                b.push_syscall(&record).expect("framed built");
            }
            let (a, b) = (sealed(a), sealed(b));
            assert_eq!(a, b, "full inputs: {full_inputs}");
            let mut reader = TraceReader::new(&a[..]).expect("reader");
            let mut n = 0;
            while let Some(TraceRecord::Syscall(r)) = reader.next_record().expect("a frame") {
                assert_eq!(r.extra, SyscallExtra::Buffered);
                assert!(r.inputs.iter().all(|i| !i.is_empty()) || r.nr != libc::SYS_writev as u32);
                digested += r.digested;
                n += 1;
            }
            assert_eq!(n, calls.len());
            // The 65-byte write, the 100-byte writev and sendmsg.
            assert_eq!(digested, if full_inputs { 0 } else { 3 });
        }
    }
}
