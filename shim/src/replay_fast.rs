//! The fast path in replay: a hot call the tracer fed (see
//! `rrc_synclog::replaybuf`) is answered here, with no stop. The call must
//! be the entry's exactly (number, every argument, the bytes it sends);
//! anything else, and anything this code cannot check, goes the trapped
//! way, where the tracer replays it or reports the divergence precisely.
//!
//! As the tracer does for a trapped call, the answer waits for its rank in
//! the event order and its recorded interval, writes the recorded memory,
//! returns the recorded result, and passes the rank on; after a call that
//! other threads' events follow when recorded, it keeps the thread until
//! its next event is next, as the tracer keeps a late return.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use rrc_synclog::replaybuf::{
    InputHead, INPUT_BYTES, INPUT_DIGEST, INPUT_GATHER, INPUT_MSG_GATHER, NO_RANK,
};
use rrc_synclog::syscallbuf::SyscallBuf;
use rrc_synclog::{futex_wait, SharedSyncLog};
use xxhash_rust::xxh3::Xxh3;

use crate::session::{self, Session};

/// Replay with in-process answers on, and the call site mapped.
static READY: AtomicBool = AtomicBool::new(false);

/// Spins on the order before sleeping on it.
const RANK_SPINS: u32 = 100;
/// One sleep on the order (a safety net for lost wakes).
const RANK_NAP: Duration = Duration::from_millis(10);

/// Called once the call site is mapped.
pub fn prepare(log: &SharedSyncLog, recording: bool) {
    if !recording && log.fast_path() && !log.serial() {
        READY.store(true, Ordering::Release);
    }
}

/// The recorded result of call `nr` with `args`, answered in-process, or
/// `None`: the call goes the trapped way.
///
/// # Safety
/// The arguments must be valid for system call `nr` as the program made
/// it (its buffers readable and writable as the call would use them).
#[inline]
pub unsafe fn replayed(nr: i64, args: [u64; 6]) -> Option<i64> {
    if !READY.load(Ordering::Relaxed) {
        return None;
    }
    let Some(Session::Replay(log)) = session::current() else {
        return None;
    };
    let thread = session::known_thread()?;
    let buf = log.syscall_buf(thread.slot)?;
    // A signal handler that interrupted one of our answers makes its
    // calls the trapped way; the tracer never feeds while we are in one.
    if buf.in_call.load(Ordering::Relaxed) != 0 {
        return None;
    }
    buf.in_call.store(nr as u32 + 1, Ordering::SeqCst);
    // SAFETY: the caller's contract.
    let ret = unsafe { answer(log, buf, thread.slot, nr, &args) };
    buf.in_call.store(0, Ordering::SeqCst);
    ret
}

/// # Safety
/// As for [`replayed`].
unsafe fn answer(
    log: &SharedSyncLog,
    buf: &SyscallBuf,
    slot: u32,
    nr: i64,
    args: &[u64; 6],
) -> Option<i64> {
    let fed = buf.next_fed()?;
    let head = fed.head;
    if head.nr != nr || !same_call(&head.args, args, head.movable) {
        return None;
    }
    if !fed.intact() {
        return None;
    }
    let moved = |addr: u64| moved_to(&head.args, args, head.movable, addr);
    for (mut input, recorded) in fed.inputs().flatten() {
        input.addr = moved(input.addr);
        // SAFETY: the caller's contract: the call's inputs are readable.
        if !unsafe { input_matches(&input, recorded) } {
            return None;
        }
    }
    let ordered = head.rank != NO_RANK && log.orders_events();
    log.park(slot);
    let at_rank = ordered && log.wait_for_rank_of(slot, head.rank, RANK_SPINS, RANK_NAP);
    pace(
        log,
        buf,
        head.interval_ns,
        head.return_ns,
        at_rank.then_some(head.rank),
    );
    for (addr, data) in fed.outputs().flatten() {
        let addr = moved(addr);
        // SAFETY: the recorded call, made with these same arguments (its
        // buffers perhaps elsewhere) in the same program state, had the
        // kernel write these regions: they are the program's own buffers
        // for this call.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), addr as *mut u8, data.len()) };
    }
    buf.consume(head.len);
    if at_rank && head.late_to != NO_RANK {
        crate::order::return_late_to(log, head.late_to);
    } else if at_rank {
        log.finish_rank(slot, head.rank);
    }
    if at_rank {
        crate::futex::before_unseen_lock(log, slot, head.rank);
    }
    Some(head.ret)
}

/// Whether `now` is the recorded call `then`: the same arguments, but for
/// those in `movable` (buffers' addresses), which may differ when neither
/// is null and no two recorded ones that were equal now differ.
fn same_call(then: &[u64; 6], now: &[u64; 6], movable: u32) -> bool {
    (0..6).all(|i| {
        let moves = movable & (1 << i) != 0;
        then[i] == now[i]
            || (moves && now[i] != 0 && (0..6).all(|j| then[j] != then[i] || now[j] == now[i]))
    })
}

/// Where a region recorded at `addr` is now: at the movable argument it
/// was recorded at, as the call names it now.
fn moved_to(then: &[u64; 6], now: &[u64; 6], movable: u32, addr: u64) -> u64 {
    (0..6)
        .find(|&i| movable & (1 << i) != 0 && then[i] == addr)
        .map_or(addr, |i| now[i])
}

/// Waits, as the tracer's pacing does, until the recorded interval after
/// the thread's previous return (and, on the shared timeline, the
/// recorded time since the start) has passed.
fn pace(
    log: &SharedSyncLog,
    buf: &SyscallBuf,
    interval_ns: u64,
    return_ns: u64,
    rank: Option<u64>,
) {
    let mode = log.pacing();
    if mode == 0 {
        return;
    }
    let last = buf.last_return_ns.load(Ordering::Relaxed);
    let mut due = last.saturating_add(interval_ns);
    if mode == 2 {
        let epoch = log.header().epoch_ns.load(Ordering::Relaxed);
        due = due.max(epoch.saturating_add(return_ns));
    }
    let mut now = crate::fast::monotonic_ns();
    let nap = AtomicU32::new(0);
    // The order stands still at this rank by rrc's hold: kept threads
    // must not take it for a lock rrc does not see.
    let held_at = rank.filter(|_| now < due);
    if held_at.is_some() {
        log.pacing_at(held_at);
    }
    while now < due {
        futex_wait(&nap, 0, Some(Duration::from_nanos(due - now)));
        now = crate::fast::monotonic_ns();
    }
    if held_at.is_some() {
        log.pacing_at(None);
    }
    buf.last_return_ns.store(now, Ordering::Relaxed);
}

/// Whether the bytes the call sends are the recorded ones (or have their
/// recorded length and XXH3-128 hash).
///
/// # Safety
/// The input's memory (as the call reads it) must be readable.
unsafe fn input_matches(input: &InputHead, recorded: &[u8]) -> bool {
    let mut check = Check::new(recorded, input.kind & INPUT_DIGEST != 0);
    match input.kind & !INPUT_DIGEST {
        INPUT_BYTES => {
            let Ok(n) = usize::try_from(input.count) else {
                return false;
            };
            // SAFETY: the call reads `count` bytes at `addr`.
            check.feed(unsafe { std::slice::from_raw_parts(input.addr as *const u8, n) });
        }
        // SAFETY: the call's iovecs are readable.
        INPUT_GATHER => unsafe { gather(input.addr, input.count, &mut check) },
        INPUT_MSG_GATHER => {
            let msg = input.addr as *const libc::msghdr;
            // SAFETY: sendmsg reads its msghdr.
            let (iov, n) = unsafe { ((*msg).msg_iov as u64, (*msg).msg_iovlen as u64) };
            // SAFETY: and the iovecs it names.
            unsafe { gather(iov, n, &mut check) }
        }
        _ => return false,
    }
    check.finish()
}

/// Feeds the `count` iovecs at `iov`, one after another, to `check`.
///
/// # Safety
/// The iovecs and their buffers must be readable.
unsafe fn gather(iov: u64, count: u64, check: &mut Check<'_>) {
    let Ok(count) = usize::try_from(count) else {
        check.fail();
        return;
    };
    if iov == 0 && count > 0 {
        check.fail();
        return;
    }
    // SAFETY: the caller's contract.
    let list = unsafe { std::slice::from_raw_parts(iov as *const libc::iovec, count) };
    for v in list {
        if v.iov_len > 0 {
            // SAFETY: the call reads each iovec's buffer.
            check.feed(unsafe { std::slice::from_raw_parts(v.iov_base as *const u8, v.iov_len) });
        }
    }
}

/// Compares data, fed in pieces, with recorded bytes or a recorded digest,
/// without allocating.
struct Check<'a> {
    recorded: &'a [u8],
    /// Bytes fed so far.
    at: usize,
    hasher: Option<Xxh3>,
    ok: bool,
}

impl<'a> Check<'a> {
    fn new(recorded: &'a [u8], digest: bool) -> Check<'a> {
        Check {
            recorded,
            at: 0,
            hasher: digest.then(Xxh3::new),
            ok: true,
        }
    }

    fn fail(&mut self) {
        self.ok = false;
    }

    fn feed(&mut self, piece: &[u8]) {
        if !self.ok {
            return;
        }
        match &mut self.hasher {
            Some(h) => h.update(piece),
            None => {
                let end = self.at + piece.len();
                self.ok = self.recorded.get(self.at..end) == Some(piece);
            }
        }
        self.at += piece.len();
    }

    fn finish(self) -> bool {
        if !self.ok {
            return false;
        }
        match self.hasher {
            None => self.at == self.recorded.len(),
            Some(h) => {
                let Some((len, hash)) = self.recorded.split_first_chunk::<8>() else {
                    return false;
                };
                u64::from_le_bytes(*len) == self.at as u64
                    && h.digest128().to_le_bytes().as_slice() == hash
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRITE: [u64; 6] = [3, 0x7fff_1000, 16, 0, 0, 0];
    /// Argument 1 (the buffer) may move.
    const BUF: u32 = 1 << 1;

    #[test]
    fn a_buffer_elsewhere_is_the_same_call_and_its_regions_follow_it() {
        let now = [3, 0x7ffe_2000, 16, 0, 0, 0];
        assert!(same_call(&WRITE, &now, BUF));
        assert_eq!(moved_to(&WRITE, &now, BUF, 0x7fff_1000), 0x7ffe_2000);
        assert!(!same_call(&WRITE, &now, 0), "nothing movable: exact");
    }

    #[test]
    fn descriptors_sizes_and_nulls_must_be_the_recorded_ones() {
        assert!(!same_call(&WRITE, &[4, 0x7fff_1000, 16, 0, 0, 0], BUF));
        assert!(!same_call(&WRITE, &[3, 0x7fff_1000, 17, 0, 0, 0], BUF));
        assert!(!same_call(&WRITE, &[3, 0, 16, 0, 0, 0], BUF));
        assert!(!same_call(&WRITE, &[3, 0x7fff_1000, 16, 9, 0, 0], BUF));
    }

    #[test]
    fn two_arguments_recorded_equal_must_move_together() {
        let then = [0x5000, 0x5000, 0, 0, 0, 0];
        let both = 0b11;
        assert!(same_call(&then, &[0x6000, 0x6000, 0, 0, 0, 0], both));
        assert!(!same_call(&then, &[0x6000, 0x7000, 0, 0, 0, 0], both));
        assert!(!same_call(&then, &[0x6000, 0x5000, 0, 0, 0, 0], 0b01));
    }
}
