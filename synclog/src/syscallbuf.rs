//! The fast path's per-thread syscall buffers (record only), as rr's
//! syscallbuf: the shim makes a hot call (a read, a send, a clock read)
//! from a call site of its own that the seccomp filter lets through
//! untrapped, and logs the call here, in the sync log's memory, with its
//! place in the event order and the memory it read or wrote. The tracer
//! turns the entries into the same trace records a trapped call gives,
//! whenever the thread stops (and at its end), so replay does not know
//! the difference.
//!
//! A buffer is a ring: only its thread writes entries, at `used`; the
//! tracer reads what lies between `drained` and `used` at any time (every
//! few milliseconds while the thread runs, and at its stops) and moves
//! `drained` on, which gives that room back to the thread. A thread that
//! runs without stopping therefore keeps buffering as long as the tracer
//! keeps up; a call that would not fit goes the trapped way, and that
//! stop reads everything. (The buffer was linear, emptied only at stops:
//! a thread of hot calls then stopped every thousand calls, each time
//! until the tracer had turned a whole buffer into records.)
//!
//! An entry is an [`EntryHead`] followed by `regions` memory snapshots,
//! each a [`RegionHead`] and its bytes, padded to 8 bytes. Entries never
//! wrap around the end of the buffer: the rest of it is then skipped, with
//! a pad (a length and [`PAD_MARK`] in place of the region count).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Where the shim maps the page holding its untrapped call site: a fixed
/// address, because the filter is built before the program (and the
/// shim) is loaded. Far below where the kernel places mappings and far
/// above a program's own image.
pub const FAST_PAGE: u64 = 0x6ff0_0000;
/// The address after the call site's `syscall` instruction: what seccomp
/// reports as the instruction pointer of a call made there.
pub const FAST_SITE_END: u64 = FAST_PAGE + 2;
/// The call site: `syscall; ret`.
pub const FAST_CODE: [u8; 3] = [0x0f, 0x05, 0xc3];

/// The calls the filter lets through from the call site. Anything else
/// made there traps as usual.
pub const FAST_CALLS: [i64; 17] = [
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_pread64,
    libc::SYS_pwrite64,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_poll,
    libc::SYS_sendto,
    libc::SYS_recvfrom,
    libc::SYS_sendmsg,
    libc::SYS_epoll_wait,
    libc::SYS_epoll_pwait,
    libc::SYS_clock_gettime,
    libc::SYS_gettimeofday,
    libc::SYS_time,
    libc::SYS_getpid,
    libc::SYS_getppid,
];

/// The shim's own calls the filter lets through from the call site
/// whether the fast path is on or not: `prctl`, with which a thread ends
/// or restores its own rdtsc trap once the tracer has answered
/// [`TSC_ASK`] (only the thread itself can).
pub const SITE_OWN_CALLS: [i64; 1] = [libc::SYS_prctl];

/// `prctl(PR_SET_TSC, PR_TSC_ENABLE, TSC_ASK)`, trapped: the shim asks the
/// tracer whether rdtsc may stop trapping in the calling thread (the
/// kernel ignores the third argument). The answer is the call's result,
/// recorded and replayed as any other: [`TSC_KEEP`], [`TSC_FREE_NO_VDSO`],
/// or the address of the vDSO (free, and the vDSO's clocks may be used).
pub const TSC_ASK: u64 = 0x5252_435f_5453_4321;
/// The process has code that may run rdtsc: it stays trapped.
pub const TSC_KEEP: i64 = 1;
/// rdtsc may run untrapped, and there is no vDSO.
pub const TSC_FREE_NO_VDSO: i64 = 2;

/// The fast calls that return at once, never waiting: clock reads and
/// process ids.
pub const RETURN_AT_ONCE: [i64; 5] = [
    libc::SYS_clock_gettime,
    libc::SYS_gettimeofday,
    libc::SYS_time,
    libc::SYS_getpid,
    libc::SYS_getppid,
];

/// Bytes of entries a thread's buffer holds.
/// 256 KiB: a buffered read reserves room for its whole buffer (redis
/// reads into 20 KB), and the tracer, sharing the processors with a busy
/// program, reads the ring only every millisecond or two.
pub const BUF_BYTES: usize = 1 << 18;

/// `SyscallBuf::go_traced` bits: why the thread's calls trap for now.
/// The tracer holds an asynchronous signal back to the thread's next
/// syscall boundary: the next call traps, and the signal lands there.
pub const TRACED_SIGNAL_HELD: u32 = 1;
/// A vfork child runs on this thread's stack and thread-local storage:
/// its calls must not land in this thread's buffer.
pub const TRACED_VFORK: u32 = 2;
/// A child took the shim's thread identity along (a clone sharing the
/// thread pointer, a fork libc did not make): for good.
pub const TRACED_SHARED: u32 = 4;
/// The program installed a seccomp filter of its own, which may fail a
/// call or raise SIGSYS for it where the shim's call site would log a
/// result replay cannot reproduce (replay traps the call, and the filter
/// acts there): every thread's calls trap, for good.
pub const TRACED_OWN_FILTER: u32 = 8;

/// The system call the shim makes (trapped) to reach a syscall boundary
/// when the tracer holds a signal for it: not an event, and not a call
/// the kernel knows (it fails with ENOSYS if it ever runs).
pub const BOUNDARY_NR: i64 = 0x7272_0001;

#[repr(C)]
pub struct SyscallBuf {
    /// Bytes ever published (entries and pads), modulo 2^32; the next
    /// entry goes at `used % BUF_BYTES`. The shim adds to it after
    /// writing an entry; the tracer sets it (and `drained`) back to 0 at
    /// a stop when no call is under way.
    pub used: AtomicU32,
    /// The syscall number plus one of the buffered call the thread is in
    /// (from deciding to buffer it until it is published); 0: none. A
    /// signal handler that interrupts a buffered call makes its own
    /// calls the trapped way.
    pub in_call: AtomicU32,
    /// `TRACED_*` bits, set by the tracer.
    pub go_traced: AtomicU32,
    /// Bytes the tracer has read, as `used` counts them: the room below
    /// it is the thread's again. It empties the buffer (both back to 0)
    /// only when no call is under way: a call stopped in the middle (by a
    /// signal) writes its entry where it planned to, after the others.
    pub drained: AtomicU32,
    /// Replay (`replaybuf`): bytes of entries the tracer fed.
    pub fed: AtomicU32,
    /// Replay: where the shim's next entry starts.
    pub taken_at: AtomicU32,
    /// Replay: entries the shim has answered calls from, ever.
    pub taken: AtomicU64,
    /// Replay: CLOCK_MONOTONIC (ns) of the thread's last return made in
    /// the shim, for its next interval (0: none since the tracer's).
    pub last_return_ns: AtomicU64,
    data: [AtomicU64; BUF_BYTES / 8],
}

/// The fixed part of an entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EntryHead {
    /// Whole entry, head included, a multiple of 8.
    pub len: u32,
    pub regions: u32,
    pub nr: i64,
    pub args: [u64; 6],
    pub ret: i64,
    /// Its return's place in the event order.
    pub order: u64,
    /// When it returned, nanoseconds after `ShmHeader::epoch_ns`.
    pub return_ns: u64,
}

/// In an entry head's `regions`: this is a pad to the end of the buffer,
/// `len` bytes to skip.
pub const PAD_MARK: u32 = u32::MAX;

/// Where the shim is to write an entry (from [`SyscallBuf::room`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// `used` when the room was found.
    pos: u32,
    /// Bytes of pad first, to the end of the buffer (0: none).
    pad: u32,
    /// Where the entry goes in the data area.
    at: usize,
}

/// A snapshot of program memory the call read or wrote.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegionHead {
    pub addr: u64,
    pub len: u64,
}

pub const ENTRY_HEAD: usize = std::mem::size_of::<EntryHead>();
pub const REGION_HEAD: usize = std::mem::size_of::<RegionHead>();

const _: () = assert!(ENTRY_HEAD.is_multiple_of(8) && REGION_HEAD.is_multiple_of(8));

/// Bytes an entry with regions of these lengths takes.
pub fn entry_len(region_lens: impl IntoIterator<Item = usize>) -> usize {
    ENTRY_HEAD
        + region_lens
            .into_iter()
            .map(|l| REGION_HEAD + l.div_ceil(8) * 8)
            .sum::<usize>()
}

/// A buffered call read back by the tracer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BufferedCall {
    pub nr: i64,
    pub args: [u64; 6],
    pub ret: i64,
    pub order: u64,
    pub return_ns: u64,
    /// (address, where its bytes are in what was read) of each snapshot,
    /// in the order the shim took them: the bytes stay where they were
    /// read into, not copied again per region.
    pub regions: Vec<(u64, std::ops::Range<usize>)>,
}

/// Why a buffer's contents could not be read back: the program wrote
/// over rrc's memory, or a shim of another build wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadBuffer {
    pub offset: usize,
}

impl SyscallBuf {
    fn bytes_ptr(&self) -> *mut u8 {
        self.data.as_ptr() as *mut u8
    }

    pub(crate) fn data_ptr(&self) -> *mut u8 {
        self.bytes_ptr()
    }

    /// Whether the thread may buffer a call now (see `go_traced`, `in_call`).
    #[inline]
    pub fn open(&self) -> bool {
        self.go_traced.load(Ordering::Acquire) == 0 && self.in_call.load(Ordering::Relaxed) == 0
    }

    /// Shim: room for an entry of `len` bytes (a multiple of 8), in one
    /// piece, if the tracer has read enough of what is there.
    #[inline]
    pub fn room(&self, len: usize) -> Option<Slot> {
        let used = self.used.load(Ordering::Relaxed);
        // Acquire: the tracer has copied out what lies below `drained`
        // before it moved it on.
        let drained = self.drained.load(Ordering::Acquire);
        let held = used.wrapping_sub(drained) as usize;
        let free = BUF_BYTES.checked_sub(held)?;
        let off = used as usize % BUF_BYTES;
        let tail = BUF_BYTES - off;
        let (pad, at) = if len <= tail { (0, off) } else { (tail, 0) };
        (pad + len <= free).then_some(Slot {
            pos: used,
            pad: pad as u32,
            at,
        })
    }

    /// Shim: writes an entry in `slot` (from [`Self::room`], for at least
    /// `head.len` bytes) and publishes it.
    ///
    /// # Safety
    /// Only the buffer's own thread calls this, between `room` and its
    /// next call; each region's memory must be readable for its length.
    pub unsafe fn publish(&self, slot: Slot, head: EntryHead, regions: &[(u64, usize)]) {
        let base = self.bytes_ptr();
        let at = slot.at;
        if slot.pad > 0 {
            let pad = [slot.pad, PAD_MARK];
            // SAFETY: a pad is at least 8 bytes (everything here is a
            // multiple of 8), from `pos` to the end of the data area.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    pad.as_ptr().cast::<u8>(),
                    base.add(slot.pos as usize % BUF_BYTES),
                    8,
                )
            };
        }
        // SAFETY: `room` checked that `head.len` bytes fit from `at`, and
        // head.len counts every region written below; the tracer does not
        // read past `used`, which is raised only after the bytes are in.
        unsafe {
            std::ptr::copy_nonoverlapping(
                (&head as *const EntryHead).cast::<u8>(),
                base.add(at),
                ENTRY_HEAD,
            );
            let mut off = at + ENTRY_HEAD;
            for &(addr, len) in regions {
                let rh = RegionHead {
                    addr,
                    len: len as u64,
                };
                std::ptr::copy_nonoverlapping(
                    (&rh as *const RegionHead).cast::<u8>(),
                    base.add(off),
                    REGION_HEAD,
                );
                off += REGION_HEAD;
                if len > 0 {
                    std::ptr::copy_nonoverlapping(addr as *const u8, base.add(off), len);
                }
                off += len.div_ceil(8) * 8;
            }
        }
        let end = slot.pos.wrapping_add(slot.pad).wrapping_add(head.len);
        self.used.store(end, Ordering::Release);
    }

    /// Tracer, while the thread is stopped or gone: the entries published
    /// since the last take, and the buffer emptied if it can be.
    /// The entries' bytes go into `bytes` and the calls into `calls` (both
    /// cleared first; kept by the caller from one read to the next, so
    /// that reading does not fault in fresh memory each time), where the
    /// calls' regions point into `bytes`.
    pub fn take(
        &self,
        bytes: &mut Vec<u8>,
        calls: &mut Vec<BufferedCall>,
    ) -> Result<(), BadBuffer> {
        let taken = self.take_published(bytes, calls);
        self.empty_if_idle();
        taken
    }

    /// Tracer, while the thread is stopped or gone: empties the buffer
    /// when no call is under way, even with nothing left to read (a read
    /// while the thread ran may have taken everything: a buffer left full
    /// then made every call trap until the next one was published, which
    /// none could be).
    pub fn empty_if_idle(&self) {
        if self.in_call.load(Ordering::SeqCst) == 0 && self.used.load(Ordering::Relaxed) != 0 {
            self.drained.store(0, Ordering::Relaxed);
            self.used.store(0, Ordering::Release);
        }
    }

    /// Tracer, at any time, the thread running or not: the entries
    /// published since the last take. Only a take while the thread is
    /// stopped empties the buffer; this one reads below `used`, which the
    /// thread raises only once an entry is complete, and never writes it.
    /// As for [`Self::take`], the bytes go into `bytes`.
    pub fn take_published(
        &self,
        bytes: &mut Vec<u8>,
        calls: &mut Vec<BufferedCall>,
    ) -> Result<(), BadBuffer> {
        let used = self.used.load(Ordering::Acquire);
        let drained = self.drained.load(Ordering::Relaxed);
        let held = used.wrapping_sub(drained) as usize;
        let from = drained as usize % BUF_BYTES;
        if held > BUF_BYTES {
            return Err(BadBuffer { offset: from });
        }
        // In two pieces when what is there wraps around the end.
        let first = held.min(BUF_BYTES - from);
        bytes.clear();
        bytes.reserve(held);
        // SAFETY: `from..from + first` and `0..held - first` lie inside
        // the data area, and hold complete entries the thread no longer
        // writes (it writes only past `used`, and below `drained` only
        // once we move it on, after this copy); `bytes` has room for
        // them, and its length is set only after they are copied in.
        unsafe {
            std::ptr::copy_nonoverlapping(self.bytes_ptr().add(from), bytes.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(
                self.bytes_ptr(),
                bytes.as_mut_ptr().add(first),
                held - first,
            );
            bytes.set_len(held);
        }
        // Release: the copy is done before the thread may reuse the room.
        self.drained.store(used, Ordering::Release);
        parse_entries(bytes, calls).map_err(|bad| BadBuffer {
            offset: (from + bad.offset) % BUF_BYTES,
        })
    }

    /// Whether there are entries the tracer has not read.
    pub fn pending(&self) -> bool {
        self.used.load(Ordering::Acquire) != self.drained.load(Ordering::Relaxed)
    }
}

fn read_at<T: Copy + Default>(bytes: &[u8], off: usize) -> Option<T> {
    let end = off.checked_add(std::mem::size_of::<T>())?;
    let src = bytes.get(off..end)?;
    let mut v = T::default();
    // SAFETY: T is a plain-old-data repr(C) struct of integers (EntryHead,
    // RegionHead), valid for any bytes, and `src` has its size.
    unsafe {
        std::ptr::copy_nonoverlapping(src.as_ptr(), (&mut v as *mut T).cast::<u8>(), src.len())
    };
    Some(v)
}

/// Reads entries back into `calls` (which then holds those entries and
/// no others), checking every length against the bytes there. The last
/// take's entries are overwritten in place and their region lists
/// reused: a busy thread's buffer holds thousands of calls, and a list
/// allocated per call was a tenth of the tracer's time on them.
fn parse_entries(bytes: &[u8], calls: &mut Vec<BufferedCall>) -> Result<(), BadBuffer> {
    let mut n = 0;
    let parsed = parse_into(bytes, calls, &mut n);
    calls.truncate(n);
    parsed
}

/// [`parse_entries`]'s work; `n` counts the entries written, also when a
/// damaged one ends it.
fn parse_into(bytes: &[u8], calls: &mut Vec<BufferedCall>, n: &mut usize) -> Result<(), BadBuffer> {
    let mut off = 0;
    while off < bytes.len() {
        let bad = BadBuffer { offset: off };
        let lead: [u32; 2] = read_at(bytes, off).ok_or(bad.clone())?;
        if lead[1] == PAD_MARK {
            let len = lead[0] as usize;
            if len < 8 || !len.is_multiple_of(8) || off + len > bytes.len() {
                return Err(bad);
            }
            off += len;
            continue;
        }
        let head: EntryHead = read_at(bytes, off).ok_or(bad.clone())?;
        let len = head.len as usize;
        let end = off.checked_add(len).ok_or(bad.clone())?;
        if len < ENTRY_HEAD || !len.is_multiple_of(8) || end > bytes.len() {
            return Err(bad);
        }
        if *n == calls.len() {
            calls.push(BufferedCall::default());
        }
        let call = &mut calls[*n];
        let regions = &mut call.regions;
        regions.clear();
        let mut r = off + ENTRY_HEAD;
        for _ in 0..head.regions {
            let rh: RegionHead = read_at(bytes, r).ok_or(bad.clone())?;
            r += REGION_HEAD;
            let rlen = usize::try_from(rh.len).map_err(|_| bad.clone())?;
            let data = r
                .checked_add(rlen)
                .filter(|e| *e <= end)
                .ok_or(bad.clone())?;
            regions.push((rh.addr, r..data));
            r += rlen.div_ceil(8) * 8;
        }
        if r != end {
            return Err(bad);
        }
        call.nr = head.nr;
        call.args = head.args;
        call.ret = head.ret;
        call.order = head.order;
        call.return_ns = head.return_ns;
        *n += 1;
        off = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(buf: &SyscallBuf, bytes: &mut Vec<u8>) -> Result<Vec<BufferedCall>, BadBuffer> {
        let mut calls = Vec::new();
        buf.take(bytes, &mut calls).map(|()| calls)
    }

    fn take_published(
        buf: &SyscallBuf,
        bytes: &mut Vec<u8>,
    ) -> Result<Vec<BufferedCall>, BadBuffer> {
        let mut calls = Vec::new();
        buf.take_published(bytes, &mut calls).map(|()| calls)
    }

    fn fresh() -> Box<SyscallBuf> {
        // SAFETY: SyscallBuf is atomics and integers, valid when zeroed.
        unsafe { Box::new(std::mem::zeroed()) }
    }

    #[test]
    fn entries_come_back_as_written() {
        let buf = fresh();
        let data = *b"hello, world";
        let tv = [7u8; 16];
        for (nr, regions) in [
            (libc::SYS_read, vec![(data.as_ptr() as u64, data.len())]),
            (
                libc::SYS_gettimeofday,
                vec![(tv.as_ptr() as u64, 16), (0, 0)],
            ),
        ] {
            let len = entry_len(regions.iter().map(|r| r.1));
            let at = buf.room(len).expect("room");
            let head = EntryHead {
                len: len as u32,
                regions: regions.len() as u32,
                nr,
                args: [1, 2, 3, 4, 5, 6],
                ret: 12,
                order: 40,
                return_ns: 99,
            };
            // SAFETY: the regions point at live arrays of those lengths.
            unsafe { buf.publish(at, head, &regions) };
        }
        let mut bytes = Vec::new();
        let calls = take(&buf, &mut bytes).expect("parses");
        let region = |c: &BufferedCall, i: usize| {
            let (addr, r) = c.regions[i].clone();
            (addr, bytes[r].to_vec())
        };
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].nr, libc::SYS_read);
        assert_eq!(region(&calls[0], 0).1, b"hello, world");
        assert_eq!(
            (calls[0].order, calls[0].return_ns, calls[0].ret),
            (40, 99, 12)
        );
        assert_eq!(region(&calls[1], 0).1, vec![7u8; 16]);
        assert_eq!(region(&calls[1], 1), (0, Vec::new()));
        assert_eq!(buf.used.load(Ordering::Relaxed), 0, "emptied");
        assert!(take(&buf, &mut Vec::new()).expect("empty").is_empty());
    }

    #[test]
    fn a_call_stopped_in_the_middle_lands_after_what_was_taken() {
        // The thread planned its entry at `at`, then stopped (a signal)
        // and the tracer took the earlier ones: the entry, published
        // later, is read once, and the earlier ones are not read again.
        let buf = fresh();
        let word = [1u8; 8];
        let one = [(word.as_ptr() as u64, 8usize)];
        let len = entry_len([8]);
        let head = |order| EntryHead {
            len: len as u32,
            regions: 1,
            nr: libc::SYS_read,
            order,
            ..EntryHead::default()
        };
        let at = buf.room(len).expect("room");
        // SAFETY: `word` is 8 readable bytes.
        unsafe { buf.publish(at, head(1), &one) };
        let at = buf.room(len).expect("room");
        buf.in_call.store(1, Ordering::Relaxed);
        assert_eq!(take(&buf, &mut Vec::new()).expect("first").len(), 1);
        // SAFETY: as above.
        unsafe { buf.publish(at, head(2), &one) };
        buf.in_call.store(0, Ordering::Relaxed);
        let later = take(&buf, &mut Vec::new()).expect("second");
        assert_eq!(later.iter().map(|c| c.order).collect::<Vec<_>>(), vec![2]);
        assert_eq!(buf.used.load(Ordering::Relaxed), 0, "emptied once idle");
    }

    #[test]
    fn a_buffer_read_while_its_thread_ran_has_room_again_and_is_emptied_at_a_stop() {
        let buf = fresh();
        let word = [1u8; 8];
        let len = entry_len([8]);
        let head = EntryHead {
            len: len as u32,
            regions: 1,
            nr: libc::SYS_read,
            ..EntryHead::default()
        };
        while let Some(at) = buf.room(len) {
            // SAFETY: `word` is 8 readable bytes.
            unsafe { buf.publish(at, head, &[(word.as_ptr() as u64, 8)]) };
        }
        assert!(!take_published(&buf, &mut Vec::new())
            .expect("all")
            .is_empty());
        assert!(!buf.pending(), "everything was read");
        assert!(buf.room(len).is_some(), "what was read is room again");
        buf.empty_if_idle();
        assert_eq!(buf.used.load(Ordering::Relaxed), 0, "emptied at the stop");
        assert_eq!(buf.room(len).map(|s| s.at), Some(0));
    }

    #[test]
    fn a_full_buffer_has_no_room() {
        let buf = fresh();
        assert!(buf.room(BUF_BYTES).is_some());
        assert!(buf.room(BUF_BYTES + 8).is_none());
        buf.used.store(BUF_BYTES as u32 - 8, Ordering::Relaxed);
        assert!(buf.room(16).is_none());
        assert!(buf.room(8).is_some());
        // A scribbled pair of counters gives no room rather than any.
        buf.drained.store(BUF_BYTES as u32, Ordering::Relaxed);
        buf.used.store(0, Ordering::Relaxed);
        assert!(buf.room(8).is_none());
    }

    #[test]
    fn room_read_while_the_thread_runs_is_reused_around_the_end() {
        let buf = fresh();
        let mut bytes = Vec::new();
        let mut next = 0u64;
        let mut seen = Vec::new();
        // Several times round the ring, read every so often (as the
        // tracer does while the thread runs), with entries of odd sizes
        // so that some do not fit before the end and a pad is written.
        for round in 0..160 {
            for _ in 0..round % 7 + 1 {
                let data = vec![next as u8; (next as usize * 37) % 5000];
                let len = entry_len([data.len()]);
                let Some(slot) = buf.room(len) else { break };
                let head = EntryHead {
                    len: len as u32,
                    regions: 1,
                    nr: libc::SYS_write,
                    order: next,
                    ..EntryHead::default()
                };
                // SAFETY: `data` is readable for its length.
                unsafe { buf.publish(slot, head, &[(data.as_ptr() as u64, data.len())]) };
                next += 1;
            }
            for c in take_published(&buf, &mut bytes).expect("parses") {
                let r = c.regions[0].1.clone();
                assert!(bytes[r].iter().all(|b| *b == c.order as u8));
                seen.push(c.order);
            }
        }
        assert!(
            buf.used.load(Ordering::Relaxed) as usize > 2 * BUF_BYTES,
            "went round"
        );
        assert_eq!(seen, (0..next).collect::<Vec<_>>(), "each once, in order");
    }

    #[test]
    fn scribbled_buffers_are_refused_not_trusted() {
        // A length that runs past the end, a zero length, a region longer
        // than its entry: each is an error, never a panic or a loop.
        let mut bytes = vec![0u8; 256];
        bytes[0..4].copy_from_slice(&1000u32.to_le_bytes());
        assert!(parse_entries(&bytes, &mut Vec::new()).is_err());
        let zero = vec![0u8; 128];
        assert!(parse_entries(&zero, &mut Vec::new()).is_err());
        let mut region_too_long = vec![0u8; ENTRY_HEAD + REGION_HEAD + 8];
        let whole = region_too_long.len() as u32;
        region_too_long[0..4].copy_from_slice(&whole.to_le_bytes());
        region_too_long[4..8].copy_from_slice(&1u32.to_le_bytes());
        region_too_long[ENTRY_HEAD + 8..ENTRY_HEAD + 16].copy_from_slice(&64u64.to_le_bytes());
        assert!(parse_entries(&region_too_long, &mut Vec::new()).is_err());
    }
}
