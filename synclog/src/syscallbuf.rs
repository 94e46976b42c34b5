//! The fast path's per-thread syscall buffers (record only), as rr's
//! syscallbuf: the shim makes a hot call (a read, a send, a clock read)
//! from a call site of its own that the seccomp filter lets through
//! untrapped, and logs the call here, in the sync log's memory, with its
//! place in the event order and the memory it read or wrote. The tracer
//! turns the entries into the same trace records a trapped call gives,
//! whenever the thread stops (and at its end), so replay does not know
//! the difference.
//!
//! A buffer is linear, not a ring: only its thread writes it, and only
//! while that thread is stopped does the tracer read it and empty it. A
//! call that would not fit goes the trapped way, and that stop empties it.
//!
//! An entry is an [`EntryHead`] followed by `regions` memory snapshots,
//! each a [`RegionHead`] and its bytes, padded to 8 bytes.

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
pub const FAST_CALLS: [i64; 15] = [
    libc::SYS_read,
    libc::SYS_write,
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

/// Bytes of entries a thread's buffer holds.
pub const BUF_BYTES: usize = 1 << 17;

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
    /// Bytes of published entries. The shim adds to it after writing an
    /// entry; the tracer sets it back to 0 after reading them.
    pub used: AtomicU32,
    /// The syscall number plus one of the buffered call the thread is in
    /// (from deciding to buffer it until it is published); 0: none. A
    /// signal handler that interrupts a buffered call makes its own
    /// calls the trapped way.
    pub in_call: AtomicU32,
    /// `TRACED_*` bits, set by the tracer.
    pub go_traced: AtomicU32,
    /// Bytes the tracer has read. It empties the buffer (both back to 0)
    /// only when no call is under way: a call stopped in the middle (by a
    /// signal) writes its entry where it planned to, after the others.
    pub drained: AtomicU32,
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
    /// (address, bytes) of each snapshot, in the order the shim took them.
    pub regions: Vec<(u64, Vec<u8>)>,
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

    /// Whether the thread may buffer a call now (see `go_traced`, `in_call`).
    #[inline]
    pub fn open(&self) -> bool {
        self.go_traced.load(Ordering::Acquire) == 0 && self.in_call.load(Ordering::Relaxed) == 0
    }

    /// Shim: room for an entry of `len` bytes at the end, if it fits.
    #[inline]
    pub fn room(&self, len: usize) -> Option<usize> {
        let used = self.used.load(Ordering::Relaxed) as usize;
        (len <= BUF_BYTES - used.min(BUF_BYTES)).then_some(used)
    }

    /// Shim: writes an entry at `at` (from [`Self::room`]) and publishes it.
    ///
    /// # Safety
    /// Only the buffer's own thread calls this, between `room` and its
    /// next call; each region's memory must be readable for its length.
    pub unsafe fn publish(&self, at: usize, head: EntryHead, regions: &[(u64, usize)]) {
        let base = self.bytes_ptr();
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
        self.used
            .store((at + head.len as usize) as u32, Ordering::Release);
    }

    /// Tracer, while the thread is stopped or gone: the entries published
    /// since the last take, and the buffer emptied if it can be.
    pub fn take(&self) -> Result<Vec<BufferedCall>, BadBuffer> {
        let taken = self.take_published();
        if self.in_call.load(Ordering::SeqCst) == 0 {
            self.drained.store(0, Ordering::Relaxed);
            self.used.store(0, Ordering::Release);
        }
        taken
    }

    /// Tracer, at any time, the thread running or not: the entries
    /// published since the last take. Only a take while the thread is
    /// stopped empties the buffer; this one reads below `used`, which the
    /// thread raises only once an entry is complete, and never writes it.
    pub fn take_published(&self) -> Result<Vec<BufferedCall>, BadBuffer> {
        let used = (self.used.load(Ordering::Acquire) as usize).min(BUF_BYTES);
        let from = (self.drained.load(Ordering::Relaxed) as usize).min(used);
        let mut bytes = vec![0u8; used - from];
        // SAFETY: bytes `from..used` of the data area lie inside the
        // mapping, and are complete entries the thread no longer writes.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.bytes_ptr().add(from),
                bytes.as_mut_ptr(),
                bytes.len(),
            )
        };
        self.drained.store(used as u32, Ordering::Relaxed);
        parse_entries(&bytes).map_err(|bad| BadBuffer {
            offset: bad.offset + from,
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

/// Reads entries back, checking every length against the bytes there.
pub fn parse_entries(bytes: &[u8]) -> Result<Vec<BufferedCall>, BadBuffer> {
    let mut calls = Vec::new();
    let mut off = 0;
    while off < bytes.len() {
        let bad = BadBuffer { offset: off };
        let head: EntryHead = read_at(bytes, off).ok_or(bad.clone())?;
        let len = head.len as usize;
        let end = off.checked_add(len).ok_or(bad.clone())?;
        if len < ENTRY_HEAD || !len.is_multiple_of(8) || end > bytes.len() {
            return Err(bad);
        }
        let mut regions = Vec::with_capacity(head.regions as usize);
        let mut r = off + ENTRY_HEAD;
        for _ in 0..head.regions {
            let rh: RegionHead = read_at(bytes, r).ok_or(bad.clone())?;
            r += REGION_HEAD;
            let rlen = usize::try_from(rh.len).map_err(|_| bad.clone())?;
            let data = r
                .checked_add(rlen)
                .and_then(|e| bytes.get(r..e).filter(|_| e <= end))
                .ok_or(bad.clone())?;
            regions.push((rh.addr, data.to_vec()));
            r += rlen.div_ceil(8) * 8;
        }
        if r != end {
            return Err(bad);
        }
        calls.push(BufferedCall {
            nr: head.nr,
            args: head.args,
            ret: head.ret,
            order: head.order,
            return_ns: head.return_ns,
            regions,
        });
        off = end;
    }
    Ok(calls)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let calls = buf.take().expect("parses");
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].nr, libc::SYS_read);
        assert_eq!(calls[0].regions[0].1, b"hello, world");
        assert_eq!(
            (calls[0].order, calls[0].return_ns, calls[0].ret),
            (40, 99, 12)
        );
        assert_eq!(calls[1].regions[0].1, vec![7u8; 16]);
        assert_eq!(calls[1].regions[1], (0, Vec::new()));
        assert_eq!(buf.used.load(Ordering::Relaxed), 0, "emptied");
        assert!(buf.take().expect("empty").is_empty());
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
        assert_eq!(buf.take().expect("first").len(), 1);
        // SAFETY: as above.
        unsafe { buf.publish(at, head(2), &one) };
        buf.in_call.store(0, Ordering::Relaxed);
        let later = buf.take().expect("second");
        assert_eq!(later.iter().map(|c| c.order).collect::<Vec<_>>(), vec![2]);
        assert_eq!(buf.used.load(Ordering::Relaxed), 0, "emptied once idle");
    }

    #[test]
    fn a_full_buffer_has_no_room() {
        let buf = fresh();
        assert!(buf.room(BUF_BYTES).is_some());
        assert!(buf.room(BUF_BYTES + 8).is_none());
        buf.used.store(BUF_BYTES as u32 - 8, Ordering::Relaxed);
        assert!(buf.room(16).is_none());
        assert!(buf.room(8).is_some());
    }

    #[test]
    fn scribbled_buffers_are_refused_not_trusted() {
        // A length that runs past the end, a zero length, a region longer
        // than its entry: each is an error, never a panic or a loop.
        let mut bytes = vec![0u8; 256];
        bytes[0..4].copy_from_slice(&1000u32.to_le_bytes());
        assert!(parse_entries(&bytes).is_err());
        let zero = vec![0u8; 128];
        assert!(parse_entries(&zero).is_err());
        let mut region_too_long = vec![0u8; ENTRY_HEAD + REGION_HEAD + 8];
        let whole = region_too_long.len() as u32;
        region_too_long[0..4].copy_from_slice(&whole.to_le_bytes());
        region_too_long[4..8].copy_from_slice(&1u32.to_le_bytes());
        region_too_long[ENTRY_HEAD + 8..ENTRY_HEAD + 16].copy_from_slice(&64u64.to_le_bytes());
        assert!(parse_entries(&region_too_long).is_err());
    }
}
