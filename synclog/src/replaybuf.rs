//! In-process replay of buffered calls: the same per-thread buffers as
//! the fast path's (`syscallbuf`), the other way round. While a thread is
//! stopped, the tracer writes the thread's next recorded calls that the
//! shim can answer by itself (a read's bytes, a clock, a send's result);
//! when the thread makes one of them, the shim checks it against the
//! entry (the call, every argument, the bytes it sends), waits for its
//! place in the event order and its recorded interval, writes the
//! recorded memory, and returns the recorded result, with no stop. Any
//! call that does not match goes the trapped way, where the tracer, which
//! first counts what the shim took, replays it or reports the divergence.
//!
//! An entry is a [`FedHead`], then `inputs` checks ([`InputHead`] and the
//! recorded bytes), then `outputs` regions ([`RegionHead`] and bytes),
//! each padded to 8 bytes.

use std::sync::atomic::Ordering;

use crate::syscallbuf::{RegionHead, SyscallBuf, BUF_BYTES, REGION_HEAD};

/// `FedHead::rank` for none.
pub const NO_RANK: u64 = u64::MAX;

/// The bytes at `addr` (`count` of them) must equal the recorded ones.
pub const INPUT_BYTES: u32 = 0;
/// The bytes gathered from the `count` iovecs at `addr` must.
pub const INPUT_GATHER: u32 = 1;
/// The bytes gathered from the iovecs of the msghdr at `addr` must.
pub const INPUT_MSG_GATHER: u32 = 2;
/// Or'ed into a kind: the recorded bytes are the data's length (u64 LE)
/// and XXH3-128 hash (the trace kept a digest of large sent data), which the
/// data must have.
pub const INPUT_DIGEST: u32 = 0x100;

/// The fixed part of a fed entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FedHead {
    /// Whole entry, head included, a multiple of 8.
    pub len: u32,
    pub inputs: u32,
    pub outputs: u32,
    /// Bit i: argument i is a buffer's address (replay compares no
    /// pointers) that may differ from the recorded one, and every region
    /// of the entry lies at one such argument: the shim then takes the
    /// regions at the addresses the call names now. Where this thread's
    /// stack or buffer sits is the kernel's choice of unrecorded mappings
    /// (a stack placed after another thread's malloc arena when recorded,
    /// before it in replay), not the program's.
    pub movable: u32,
    /// The thread's event index (the tracer's check that what the shim
    /// took is what it fed).
    pub index: u64,
    pub nr: i64,
    pub args: [u64; 6],
    pub ret: i64,
    /// Its return's rank in the event order (`NO_RANK`: none).
    pub rank: u64,
    pub interval_ns: u64,
    pub return_ns: u64,
    /// After its return, the thread waits until the order gets here (its
    /// arrival at its next sync operation) before it goes on, as the
    /// tracer keeps a late return (`NO_RANK`: it goes on at once).
    pub late_to: u64,
}

/// One input check.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InputHead {
    pub kind: u32,
    pub _pad: u32,
    pub addr: u64,
    pub count: u64,
    /// Recorded bytes that follow.
    pub len: u64,
}

pub const FED_HEAD: usize = std::mem::size_of::<FedHead>();
pub const INPUT_HEAD: usize = std::mem::size_of::<InputHead>();

const _: () = assert!(FED_HEAD.is_multiple_of(8) && INPUT_HEAD.is_multiple_of(8));

fn padded(len: usize) -> usize {
    len.div_ceil(8) * 8
}

fn push_pod<T: Copy>(out: &mut Vec<u8>, v: &T) {
    // SAFETY: T is a repr(C) struct of integers (no padding bytes left
    // uninitialised: every struct here has explicit padding fields).
    let bytes = unsafe {
        std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>())
    };
    out.extend_from_slice(bytes);
}

fn push_padded(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(data);
    out.resize(out.len() + padded(data.len()) - data.len(), 0);
}

/// One check of what a call sends: (kind, addr, count, recorded bytes).
pub type InputCheck<'a> = (u32, u64, u64, &'a [u8]);

/// An entry to feed, as the tracer builds it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FedCall<'a> {
    /// The call; its lengths and counts are filled in by `encode`.
    pub head: FedHead,
    pub inputs: Vec<InputCheck<'a>>,
    /// (addr, recorded bytes)
    pub outputs: Vec<(u64, &'a [u8])>,
}

impl FedCall<'_> {
    /// Bytes the entry takes.
    pub fn encoded_len(&self) -> usize {
        FED_HEAD
            + self
                .inputs
                .iter()
                .map(|i| INPUT_HEAD + padded(i.3.len()))
                .sum::<usize>()
            + self
                .outputs
                .iter()
                .map(|o| REGION_HEAD + padded(o.1.len()))
                .sum::<usize>()
    }

    /// Appends the entry's bytes to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let head = FedHead {
            len: self.encoded_len() as u32,
            inputs: self.inputs.len() as u32,
            outputs: self.outputs.len() as u32,
            ..self.head
        };
        push_pod(out, &head);
        for (kind, addr, count, data) in &self.inputs {
            let h = InputHead {
                kind: *kind,
                _pad: 0,
                addr: *addr,
                count: *count,
                len: data.len() as u64,
            };
            push_pod(out, &h);
            push_padded(out, data);
        }
        for (addr, data) in &self.outputs {
            let h = RegionHead {
                addr: *addr,
                len: data.len() as u64,
            };
            push_pod(out, &h);
            push_padded(out, data);
        }
    }
}

/// A fed entry as the shim reads it, in place.
pub struct Fed<'a> {
    pub head: FedHead,
    body: &'a [u8],
}

impl<'a> Fed<'a> {
    /// The input checks and their recorded bytes; a damaged entry ends
    /// early with `None` in the last place. No allocation: the shim runs
    /// this where a first malloc would be a syscall the recording did not
    /// have.
    pub fn inputs(&self) -> impl Iterator<Item = Option<(InputHead, &'a [u8])>> + 'a {
        let body = self.body;
        let mut off = 0usize;
        (0..self.head.inputs).map(move |_| {
            let h: InputHead = read_at(body, off)?;
            off = off.checked_add(INPUT_HEAD)?;
            let len = usize::try_from(h.len).ok()?;
            let data = body.get(off..off.checked_add(len)?)?;
            off = off.checked_add(padded(len))?;
            Some((h, data))
        })
    }

    /// The regions to write, (address, recorded bytes), as `inputs`.
    pub fn outputs(&self) -> impl Iterator<Item = Option<(u64, &'a [u8])>> + 'a {
        let body = self.body;
        let mut off = Some(0usize);
        for _ in 0..self.head.inputs {
            off = off.and_then(|o| {
                let h: InputHead = read_at(body, o)?;
                o.checked_add(INPUT_HEAD + padded(usize::try_from(h.len).ok()?))
            });
        }
        (0..self.head.outputs).map(move |_| {
            let o = off?;
            let h: RegionHead = read_at(body, o)?;
            let at = o.checked_add(REGION_HEAD)?;
            let len = usize::try_from(h.len).ok()?;
            let data = body.get(at..at.checked_add(len)?)?;
            off = at.checked_add(padded(len));
            Some((h.addr, data))
        })
    }

    /// Whether every input check and region is within the entry.
    pub fn intact(&self) -> bool {
        self.inputs().all(|i| i.is_some()) && self.outputs().all(|o| o.is_some())
    }
}

fn read_at<T: Copy + Default>(bytes: &[u8], off: usize) -> Option<T> {
    let src = bytes.get(off..off.checked_add(std::mem::size_of::<T>())?)?;
    let mut v = T::default();
    // SAFETY: T is a repr(C) struct of integers, valid for any bytes, and
    // `src` has its size.
    unsafe {
        std::ptr::copy_nonoverlapping(src.as_ptr(), (&mut v as *mut T).cast::<u8>(), src.len())
    };
    Some(v)
}

impl SyscallBuf {
    fn data_bytes(&self) -> &[u8] {
        // SAFETY: the data area is BUF_BYTES long; in replay only the
        // tracer writes it, and only while the thread is stopped.
        unsafe { std::slice::from_raw_parts(self.data_ptr(), BUF_BYTES) }
    }

    /// Tracer, the thread stopped and not in a call: replaces whatever is
    /// left of the feed with `entries` (encoded [`FedCall`]s, at most
    /// `BUF_BYTES`).
    pub fn feed(&self, entries: &[u8]) {
        let n = entries.len().min(BUF_BYTES);
        // SAFETY: n bytes fit the data area; the thread is stopped and not
        // in a call (the caller's contract), so nobody reads it now.
        unsafe { std::ptr::copy_nonoverlapping(entries.as_ptr(), self.data_ptr(), n) };
        self.taken_at.store(0, Ordering::Relaxed);
        self.fed.store(n as u32, Ordering::Release);
    }

    /// Tracer: drops what is left of the feed (the thread stopped).
    pub fn unfeed(&self) {
        self.fed.store(0, Ordering::Release);
        self.taken_at.store(0, Ordering::Relaxed);
    }

    /// Calls the shim has answered so far (never goes back).
    pub fn replay_taken(&self) -> u64 {
        self.taken.load(Ordering::Acquire)
    }

    /// The next entry the shim would take, if any.
    pub fn next_fed(&self) -> Option<Fed<'_>> {
        let fed = (self.fed.load(Ordering::Acquire) as usize).min(BUF_BYTES);
        let at = self.taken_at.load(Ordering::Relaxed) as usize;
        if at >= fed {
            return None;
        }
        let bytes = &self.data_bytes()[at..fed];
        let head: FedHead = read_at(bytes, 0)?;
        let len = head.len as usize;
        if len < FED_HEAD || len > bytes.len() {
            return None;
        }
        Some(Fed {
            head,
            body: &bytes[FED_HEAD..len],
        })
    }

    /// Tracer, the thread stopped: drops the fed entries for events before
    /// `index`, which the thread made through a trap (a call made around
    /// the shim, `syscall(SYS_getpid)`), so that the rest of the feed
    /// stands without being built again.
    pub fn skip_fed_before(&self, index: u64) {
        while let Some(f) = self.next_fed() {
            if f.head.index >= index {
                break;
            }
            let at = self.taken_at.load(Ordering::Relaxed);
            self.taken_at.store(at + f.head.len, Ordering::Relaxed);
        }
    }

    /// Shim: the entry it answered from is done.
    pub fn consume(&self, len: u32) {
        let at = self.taken_at.load(Ordering::Relaxed);
        self.taken_at.store(at + len, Ordering::Relaxed);
        self.taken.fetch_add(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> Box<SyscallBuf> {
        // SAFETY: SyscallBuf is atomics and integers, valid when zeroed.
        unsafe { Box::new(std::mem::zeroed()) }
    }

    #[test]
    fn fed_calls_are_read_back_in_place_and_consumed_in_order() {
        let buf = fresh();
        let write = FedCall {
            head: FedHead {
                index: 7,
                nr: libc::SYS_write,
                args: [5, 0x1000, 3, 0, 0, 0],
                ret: 3,
                rank: 40,
                ..FedHead::default()
            },
            inputs: vec![(INPUT_BYTES, 0x1000, 3, &b"abc"[..])],
            ..FedCall::default()
        };
        let read = FedCall {
            head: FedHead {
                index: 8,
                nr: libc::SYS_read,
                ret: 9,
                ..FedHead::default()
            },
            outputs: vec![(0x2000, &b"123456789"[..]), (0x3000, &[1u8][..])],
            ..FedCall::default()
        };
        let mut bytes = Vec::new();
        write.encode(&mut bytes);
        read.encode(&mut bytes);
        assert_eq!(bytes.len(), write.encoded_len() + read.encoded_len());
        buf.feed(&bytes);
        let first = buf.next_fed().expect("first");
        assert_eq!(
            (first.head.index, first.head.rank, first.head.ret),
            (7, 40, 3)
        );
        assert!(first.intact());
        let inputs: Vec<_> = first.inputs().map(|i| i.expect("input")).collect();
        assert_eq!(inputs.len(), 1);
        assert_eq!((inputs[0].0.addr, inputs[0].1), (0x1000, &b"abc"[..]));
        assert_eq!(first.outputs().count(), 0);
        buf.consume(first.head.len);
        let second = buf.next_fed().expect("second");
        assert_eq!(second.head.index, 8);
        let outputs: Vec<_> = second.outputs().map(|o| o.expect("output")).collect();
        assert_eq!(
            outputs,
            vec![(0x2000, &b"123456789"[..]), (0x3000, &[1u8][..])]
        );
        buf.consume(second.head.len);
        assert!(buf.next_fed().is_none());
        assert_eq!(buf.replay_taken(), 2);
        buf.feed(&bytes);
        assert_eq!(buf.next_fed().expect("fed again").head.index, 7);
        // Event 7 made through a trap: the feed goes on at 8, uncounted.
        buf.skip_fed_before(8);
        assert_eq!(buf.next_fed().expect("the rest").head.index, 8);
        buf.skip_fed_before(8);
        assert_eq!(buf.next_fed().expect("nothing more skipped").head.index, 8);
        assert_eq!(buf.replay_taken(), 2, "skipped entries are not answers");
        buf.unfeed();
        assert!(buf.next_fed().is_none());
        assert_eq!(buf.replay_taken(), 2, "the count never goes back");
    }

    #[test]
    fn a_damaged_entry_is_not_taken() {
        let buf = fresh();
        let mut bytes = Vec::new();
        FedCall::default().encode(&mut bytes);
        // A length past the feed.
        bytes[0] = 0xf8;
        bytes[1] = 0xff;
        buf.feed(&bytes);
        assert!(buf.next_fed().is_none());
    }
}
