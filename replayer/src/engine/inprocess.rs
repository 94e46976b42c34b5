//! In-process replay of hot calls (`rrc_synclog::replaybuf`, the shim's
//! `replay_fast`): as a thread is let go, the tracer feeds its next
//! recorded calls that the shim can answer by itself; at the thread's
//! next stop, before anything else, the calls the shim answered count as
//! replayed. A call the shim does not answer (not fed, or not the call
//! fed) traps and is replayed here as any other, divergences included.
//!
//! Fed: the calls the fast path buffers when recording (reads, sends,
//! clocks, epoll_wait...) that replay emulates, whose memory the model
//! finds from their arguments alone, that are not output to rrc-replay's
//! own stdout or stderr, not on a file replay keeps live (a memfd, a
//! shadow: `live_files.rs`, whose reads and writes run for real), and
//! that no signal follows (a signal recorded at a return is delivered by
//! the tracer, at a trap). After a call that other threads' events follow
//! when recorded, the shim keeps the thread as the tracer keeps a late
//! return (`FedHead::late_to`).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nix::unistd::Pid;
use rrc_interposer::model::{self, InputSpec, ReplayAction};
use rrc_interposer::TraceeMemory;
use rrc_synclog::replaybuf::{
    FedCall, FedHead, InputCheck, INPUT_BYTES, INPUT_DIGEST, INPUT_GATHER, INPUT_MSG_GATHER,
    NO_RANK,
};
use rrc_synclog::syscallbuf::{BUF_BYTES, FAST_CALLS};
use rrc_trace::{SyscallExtra, SyscallRecord, ThreadId, NO_ORDER};

use super::emulate::{action_for, runs_in_recorded_order};
use super::live_files;
use super::threads::LiveThread;
use super::{Halt, Replayer, Res};
use crate::plan::PlannedEvent;

/// The most calls fed at once: the tracer gets the thread back at least
/// this often (each feed costs one trap; the buffer's size bounds it too).
/// 2,048 rather than 512 halved the traps of a redis replay.
const FEED_MOST: usize = 2048;
/// Events read into memory at once while a feed is made.
const LOAD_BATCH: usize = 64;

/// CLOCK_MONOTONIC, which `Instant` also reads, in nanoseconds.
pub(crate) fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000) + ts.tv_nsec as u64
}

/// Maps instants to CLOCK_MONOTONIC nanoseconds and back, as the shim
/// counts them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MonoClock {
    at: Instant,
    ns: u64,
}

impl MonoClock {
    pub fn now() -> MonoClock {
        MonoClock {
            at: Instant::now(),
            ns: monotonic_ns(),
        }
    }

    pub fn ns(&self, when: Instant) -> u64 {
        match when.checked_duration_since(self.at) {
            Some(d) => self.ns.saturating_add(d.as_nanos() as u64),
            None => self
                .ns
                .saturating_sub(self.at.duration_since(when).as_nanos() as u64),
        }
    }

    pub fn instant(&self, ns: u64) -> Instant {
        if ns >= self.ns {
            self.at + Duration::from_nanos(ns - self.ns)
        } else {
            self.at
                .checked_sub(Duration::from_nanos(self.ns - ns))
                .unwrap_or(self.at)
        }
    }
}

/// Memory the tracer cannot read ahead of the call: the model may find a
/// call's regions only from its arguments.
struct ArgumentsOnly;

impl TraceeMemory for ArgumentsOnly {
    fn read(&self, addr: u64, len: usize) -> rrc_interposer::Result<Vec<u8>> {
        Err(not_ahead(addr, len))
    }

    fn write(&self, addr: u64, data: &[u8]) -> rrc_interposer::Result<()> {
        Err(not_ahead(addr, data.len()))
    }
}

fn not_ahead(addr: u64, len: usize) -> rrc_interposer::InterposeError {
    rrc_interposer::InterposeError::Memory {
        tid: 0,
        op: "look ahead of a call",
        addr,
        len,
        errno: nix::errno::Errno::EFAULT,
    }
}

/// The checks of what the call sends, if the shim can make them: the
/// bytes, or, where the trace kept a digest of them, their length and
/// XXH3-128 hash.
fn input_checks(r: &SyscallRecord, nr: i64) -> Option<Vec<InputCheck<'_>>> {
    let digest = |i: usize| {
        if i < 32 && r.digested & (1 << i) != 0 {
            INPUT_DIGEST
        } else {
            0
        }
    };
    if nr == libc::SYS_sendmsg {
        return match r.inputs.as_slice() {
            [data] => Some(vec![(
                INPUT_MSG_GATHER | digest(0),
                r.args[1],
                0,
                data.as_slice(),
            )]),
            _ => None,
        };
    }
    let specs = model::inputs(nr, &r.args);
    if specs.len() != r.inputs.len() {
        return None;
    }
    specs
        .into_iter()
        .zip(&r.inputs)
        .enumerate()
        .map(|(i, (spec, data))| match spec {
            InputSpec::Bytes(region) => Some((
                INPUT_BYTES | digest(i),
                region.addr,
                region.len as u64,
                data.as_slice(),
            )),
            InputSpec::Iovec { addr, count, .. } => {
                Some((INPUT_GATHER | digest(i), addr, count, data.as_slice()))
            }
            _ => None,
        })
        .collect()
}

/// Which of call `r`'s arguments the shim may find moved (`FedHead::
/// movable`): pointers, which replay does not compare, at which the
/// call's regions (`addrs`) lie; none unless every region lies at one.
fn movable_args(r: &SyscallRecord, nr: i64, addrs: impl Iterator<Item = u64> + Clone) -> u32 {
    let compared = model::compared_args_of(nr, &r.args);
    let mut movable = 0u32;
    for (i, &arg) in r.args.iter().enumerate() {
        if compared & (1 << i) == 0 && arg != 0 && addrs.clone().any(|a| a == arg) {
            movable |= 1 << i;
        }
    }
    let at_movable = |addr: u64| (0..6).any(|i| movable & (1 << i) != 0 && r.args[i] == addr);
    if addrs.clone().all(at_movable) {
        movable
    } else {
        0
    }
}

impl Replayer {
    /// The entry for the thread's event `r`, if the shim may answer it;
    /// `next` is the event after it.
    fn fed_call<'a>(
        &self,
        thread: ThreadId,
        r: &'a SyscallRecord,
        next: Option<&PlannedEvent>,
        live: &mut impl FnMut(u64) -> bool,
    ) -> Option<FedCall<'a>> {
        let nr = i64::from(r.nr);
        let plain = matches!(r.extra, SyscallExtra::None | SyscallExtra::Buffered);
        if !FAST_CALLS.contains(&nr) || !plain || r.order == NO_ORDER {
            return None;
        }
        if matches!(next, Some(PlannedEvent::Signal(_))) {
            return None;
        }
        // After a call where other threads' events come before the
        // thread's own next one, the code it runs on with (reads of data
        // other threads write without a lock) must come after theirs: the
        // shim keeps it after the answer until its next event is next, as
        // the tracer keeps a late return, or the call goes the tracer's way.
        let key = (thread, r.index);
        let rank = self.plan.return_rank.get(&key).copied();
        let late_to = match (rank, next) {
            (Some(r), Some(next)) if self.order.enabled() && self.late_returns => {
                self.plan.late_return_to(thread, r, next).unwrap_or(NO_RANK)
            }
            _ => NO_RANK,
        };
        if action_for(r, nr, &r.args) != ReplayAction::Emulate
            || runs_in_recorded_order(r, nr, &r.args)
        {
            return None;
        }
        if self.plan.entry_rank.get(&key).is_some() {
            return None;
        }
        if live_files::runs_live(nr, &r.args) && live(r.args[0]) {
            return None;
        }
        let regions = model::outputs(nr, &r.args, r.ret, &ArgumentsOnly).ok()?;
        if regions.len() != r.outputs.len()
            || regions
                .iter()
                .zip(&r.outputs)
                .any(|(g, o)| g.len != o.len())
        {
            return None;
        }
        let inputs = input_checks(r, nr)?;
        let movable = movable_args(
            r,
            nr,
            inputs
                .iter()
                .map(|i| i.1)
                .chain(regions.iter().map(|g| g.addr)),
        );
        Some(FedCall {
            head: FedHead {
                index: r.index,
                nr,
                args: r.args,
                ret: r.ret,
                rank: rank.unwrap_or(NO_RANK),
                interval_ns: r.interval_ns,
                return_ns: r.return_ns,
                late_to,
                movable,
                ..FedHead::default()
            },
            inputs,
            outputs: regions
                .iter()
                .zip(&r.outputs)
                .map(|(g, o)| (g.addr, o.as_slice()))
                .collect(),
        })
    }

    /// As `pid` is let go: feeds its next calls the shim can answer,
    /// unless what it was fed before is still what comes next.
    pub(super) fn feed_in_process(&mut self, pid: Pid) {
        if !self.in_process {
            return;
        }
        let Some(t) = self.live.get(&pid) else {
            return;
        };
        let (thread, last_return) = (t.logical, t.last_return);
        let Some(buf) = self.log.syscall_buf(thread) else {
            return;
        };
        // Let go into a call that runs for real: fed as it returns, when
        // what the call makes (a descriptor replay keeps live, a vfork
        // child on the thread's stack and shim identity) is there to see.
        if t.in_flight.is_some() {
            buf.unfeed();
            return;
        }
        // Stopped inside an answer of its own (a signal): left as it is.
        if buf.in_call.load(Ordering::SeqCst) != 0 {
            return;
        }
        // Its next answer's interval counts from its last return, which may
        // have been made here.
        buf.last_return_ns
            .store(self.mono.ns(last_return), Ordering::Relaxed);
        let queue = &mut self.plan.threads[thread as usize].events;
        let front = match queue.front() {
            Some(PlannedEvent::Syscall(s)) => s.index,
            _ => {
                buf.unfeed();
                return;
            }
        };
        buf.skip_fed_before(front);
        if buf.next_fed().is_some_and(|f| f.head.index == front) {
            return;
        }
        // Out of the plan while the calls are looked at (`fed_call` reads
        // the rest of it); put back below.
        let mut queue = std::mem::take(queue);
        let mut bytes = Vec::new();
        // Whether a descriptor is a live file, looked up once a feed (the
        // calls fed open and close none).
        let mut known: Vec<(u64, bool)> = Vec::new();
        let mut live = |fd: u64| match known.iter().find(|(f, _)| *f == fd) {
            Some((_, is)) => *is,
            None => {
                let is = live_files::fd_is_live(pid, fd);
                known.push((fd, is));
                is
            }
        };
        // Events are brought into memory a batch at a time, as the run
        // gets to them: a run that ends early reads little of the trace.
        for i in 0..FEED_MOST {
            if queue.peek(i + 1).is_none() {
                queue.load_ahead(i + 1 + LOAD_BATCH);
            }
            let Some(PlannedEvent::Syscall(r)) = queue.peek(i) else {
                break;
            };
            let Some(call) = self.fed_call(thread, r, queue.peek(i + 1), &mut live) else {
                break;
            };
            if bytes.len() + call.encoded_len() > BUF_BYTES {
                break;
            }
            call.encode(&mut bytes);
        }
        self.plan.threads[thread as usize].events = queue;
        if bytes.is_empty() {
            buf.unfeed();
            return;
        }
        buf.feed(&bytes);
    }

    /// When the thread last returned from a call, counting the calls its
    /// shim has answered since its last stop.
    pub(super) fn last_return_seen(&self, t: &LiveThread) -> Instant {
        let in_shim = self
            .log
            .syscall_buf(t.logical)
            .filter(|_| self.in_process)
            .map(|buf| buf.last_return_ns.load(Ordering::Relaxed))
            .filter(|&ns| ns != 0)
            .map(|ns| self.mono.instant(ns));
        in_shim.map_or(t.last_return, |at| at.max(t.last_return))
    }

    /// At a stop of `pid` (or its end), before anything else: the calls
    /// its shim answered since its last stop are replayed events.
    pub(super) fn take_in_process(&mut self, pid: Pid) -> Res {
        if !self.in_process {
            return Ok(());
        }
        let Some(t) = self.live.get(&pid) else {
            return Ok(());
        };
        let thread = t.logical;
        let Some(buf) = self.log.syscall_buf(thread) else {
            return Ok(());
        };
        let taken = buf.replay_taken();
        let last = buf.last_return_ns.load(Ordering::Relaxed);
        let new = taken.saturating_sub(t.in_process_seen);
        if new == 0 {
            return Ok(());
        }
        for _ in 0..new {
            let events = &mut self.plan.threads[thread as usize].events;
            match events.front() {
                Some(PlannedEvent::Syscall(_)) => {
                    events.discard_front();
                    self.complete(thread);
                }
                _ => {
                    return Err(Halt::Failed(anyhow::anyhow!(
                        "thread {thread}'s shim answered a call that was not fed"
                    )))
                }
            }
        }
        self.stats.in_process += new;
        let mono = self.mono;
        if let Some(t) = self.live.get_mut(&pid) {
            t.in_process_seen = taken;
            t.elapsed_base = None;
            if last != 0 {
                t.last_return = mono.instant(last);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(nr: i64, args: [u64; 6], ret: i64, inputs: Vec<Vec<u8>>) -> SyscallRecord {
        SyscallRecord {
            thread: 0,
            index: 0,
            nr: nr as u32,
            args,
            ret,
            inputs,
            outputs: Vec::new(),
            interval_ns: 0,
            return_ns: 0,
            order: 1,
            extra: SyscallExtra::Buffered,
            digested: 0,
        }
    }

    #[test]
    fn buffers_may_move_descriptors_and_sizes_may_not() {
        let write = call(libc::SYS_write, [5, 0x1000, 3, 0, 0, 0], 3, Vec::new());
        assert_eq!(
            movable_args(&write, libc::SYS_write, [0x1000u64].into_iter()),
            1 << 1,
            "the buffer, where the bytes it sends lie"
        );
        let clock = call(
            libc::SYS_clock_gettime,
            [1, 0x2000, 0, 0, 0, 0],
            0,
            Vec::new(),
        );
        assert_eq!(
            movable_args(&clock, libc::SYS_clock_gettime, [0x2000u64].into_iter()),
            1 << 1
        );
        // A region at no argument (inside a structure the call points
        // at) ties the call to where it was: nothing moves.
        assert_eq!(
            movable_args(&write, libc::SYS_write, [0x1000u64, 0x1010].into_iter()),
            0
        );
        // A null pointer stays null.
        let tz = call(
            libc::SYS_gettimeofday,
            [0x3000, 0, 0, 0, 0, 0],
            0,
            Vec::new(),
        );
        assert_eq!(
            movable_args(&tz, libc::SYS_gettimeofday, [0x3000u64].into_iter()),
            1
        );
    }

    #[test]
    fn sent_bytes_are_checked_where_the_call_reads_them() {
        let write = call(
            libc::SYS_write,
            [5, 0x1000, 3, 0, 0, 0],
            3,
            vec![b"abc".to_vec()],
        );
        assert_eq!(
            input_checks(&write, libc::SYS_write),
            Some(vec![(INPUT_BYTES, 0x1000, 3, &b"abc"[..])])
        );
        let writev = call(
            libc::SYS_writev,
            [5, 0x2000, 2, 0, 0, 0],
            4,
            vec![b"wxyz".to_vec()],
        );
        assert_eq!(
            input_checks(&writev, libc::SYS_writev),
            Some(vec![(INPUT_GATHER, 0x2000, 2, &b"wxyz"[..])])
        );
        let sendmsg = call(
            libc::SYS_sendmsg,
            [5, 0x3000, 0, 0, 0, 0],
            2,
            vec![b"hi".to_vec()],
        );
        assert_eq!(
            input_checks(&sendmsg, libc::SYS_sendmsg),
            Some(vec![(INPUT_MSG_GATHER, 0x3000, 0, &b"hi"[..])])
        );
        // A datagram's destination is compared by its meaningful bytes
        // only, which the shim does not do: it traps.
        let sendto = call(
            libc::SYS_sendto,
            [5, 0x1000, 3, 0, 0x4000, 16],
            3,
            vec![b"abc".to_vec(), vec![2, 0]],
        );
        assert_eq!(input_checks(&sendto, libc::SYS_sendto), None);
        // Large sent data kept as a digest: checked by its XXH3-128 hash.
        let mut big = call(
            libc::SYS_write,
            [5, 0x1000, 100, 0, 0, 0],
            100,
            vec![vec![7; 40]],
        );
        big.digested = 1;
        assert_eq!(
            input_checks(&big, libc::SYS_write),
            Some(vec![(
                INPUT_BYTES | INPUT_DIGEST,
                0x1000,
                100,
                &[7u8; 40][..]
            )])
        );
        // The record does not hold what the model expects: not fed.
        let odd = call(libc::SYS_write, [5, 0x1000, 3, 0, 0, 0], 3, Vec::new());
        assert_eq!(input_checks(&odd, libc::SYS_write), None);
    }

    #[test]
    fn outputs_found_from_the_arguments_alone_are_fed_others_not() {
        let read = model::outputs(
            libc::SYS_read,
            &[3, 0x1000, 64, 0, 0, 0],
            10,
            &ArgumentsOnly,
        );
        let regions = read.expect("read's buffer comes from its arguments");
        assert_eq!((regions[0].addr, regions[0].len), (0x1000, 10));
        // readv scatters over iovecs in memory the tracer cannot see yet.
        let readv = model::outputs(
            libc::SYS_readv,
            &[3, 0x1000, 2, 0, 0, 0],
            10,
            &ArgumentsOnly,
        );
        assert!(readv.is_err());
    }

    #[test]
    fn instants_and_the_shims_clock_map_both_ways() {
        let clock = MonoClock::now();
        let later = clock.at + Duration::from_micros(1500);
        let ns = clock.ns(later);
        assert_eq!(ns, clock.ns + 1_500_000);
        assert_eq!(clock.instant(ns), later);
        let earlier = clock.instant(clock.ns - 1000);
        assert_eq!(clock.ns(earlier), clock.ns - 1000);
    }
}
