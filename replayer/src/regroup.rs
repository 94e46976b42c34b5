//! Catch-up replay (`--catch-up`): the event order regrouped within
//! windows of `--catch-up-window` ranks so that each thread replays runs
//! of its own events.
//!
//! The recorded order interleaves threads that ran at once on different
//! processors (memcached under load: 0.7M switches between threads in
//! 8.6M ranks), and replay hands the order from thread to thread at each
//! switch, which costs a wake-up (BENCHMARKS.md). Events of different
//! threads that touch nothing in common may trade places without changing
//! what any thread sees through rrc: within a window, each thread's own
//! order and each sync object's order are kept, and an event that builds
//! shared state (a descriptor, a mapping, a thread, a signal) stays where
//! it was, nothing moving across it. The code between events moves with
//! them, so data races that no lock covers may go another way inside a
//! window: a faster replay, less exact for such programs (a catch-up
//! replay that diverges is replayed again in the recorded order).

use rrc_interposer::model::{self, ReplayAction};
use rrc_interposer::IdMap;
use rrc_trace::{SyncOp, SyncRecord, SyscallExtra, SyscallHead, ThreadId};

/// What an event touches, as far as its order goes (one word a rank:
/// a server's trace has millions).
pub type Touch = u64;
/// Only its own thread's state (a call replay answers, a thread's arrival).
pub const LOCAL: Touch = u64::MAX;
/// Shared process state: nothing moves across it.
pub const SHARED: Touch = u64::MAX - 1;

/// A sync object of process `process` at `address`.
pub fn object(process: u32, address: u64) -> Touch {
    // User addresses fit in 48 bits; the process tells apart equal ones.
    (address & ((1 << 48) - 1)) | (u64::from(process & 0x7fff) << 48)
}

/// The new rank of each rank: `touch[r]` and `owner[r]` of each (one of
/// each a rank), regrouped within windows of `window` ranks.
pub fn regroup(owner: &[ThreadId], touch: &[Touch], window: usize) -> Vec<u64> {
    debug_assert_eq!(owner.len(), touch.len());
    let n = owner.len();
    let mut new = vec![0u64; n];
    let mut next = 0u64;
    let mut start = 0;
    let mut span = Span::default();
    while start < n {
        let end = (start + window.max(1)).min(n);
        let mut from = start;
        for r in start..end {
            if touch[r] == SHARED {
                span.place(from, r, owner, touch, &mut new, &mut next);
                new[r] = next;
                next += 1;
                from = r + 1;
            }
        }
        span.place(from, end, owner, touch, &mut new, &mut next);
        start = end;
    }
    new
}

/// Scratch space for one stretch of ranks with no shared-state event.
#[derive(Default)]
struct Span {
    /// Per thread present, its ranks in order (and how many are placed).
    threads: Vec<(ThreadId, Vec<usize>, usize)>,
    /// Per object, its ranks in order (and how many are placed).
    objects: Vec<(Vec<usize>, usize)>,
    index: IdMap<Touch, usize>,
    /// Each rank's object (`usize::MAX`: none), from the span's start.
    object_of: Vec<usize>,
    /// The thread of each object's last placed event, across spans.
    holder: IdMap<Touch, ThreadId>,
}

impl Span {
    /// Gives ranks `from..to` their new ranks from `next` on: a thread's
    /// events run on while they may, and when one may not, the earliest
    /// recorded event that may goes next.
    fn place(
        &mut self,
        from: usize,
        to: usize,
        owner: &[ThreadId],
        touch: &[Touch],
        new: &mut [u64],
        next: &mut u64,
    ) {
        if from >= to {
            return;
        }
        self.threads.clear();
        self.objects.clear();
        self.index.clear();
        self.object_of.clear();
        for r in from..to {
            let t = owner[r];
            match self.threads.iter_mut().find(|e| e.0 == t) {
                Some(e) => e.1.push(r),
                None => self.threads.push((t, vec![r], 0)),
            }
            let o = if touch[r] == LOCAL {
                usize::MAX
            } else {
                let fresh = self.objects.len();
                let o = *self.index.entry(touch[r]).or_insert(fresh);
                if o == fresh {
                    self.objects.push((Vec::new(), 0));
                }
                self.objects[o].0.push(r);
                o
            };
            self.object_of.push(o);
        }
        let mut current: Option<usize> = None;
        for _ in from..to {
            let may = |s: &Span, i: usize| -> Option<usize> {
                let (_, ranks, done) = &s.threads[i];
                let r = *ranks.get(*done)?;
                let o = s.object_of[r - from];
                if o == usize::MAX {
                    return Some(r);
                }
                if s.objects[o].0.get(s.objects[o].1) != Some(&r) {
                    return None;
                }
                // The object's last holder got here first when recorded:
                // its events before this one (its unlock among the code
                // between them) go first, or this one would wait for a
                // lock that thread still holds.
                let held = s
                    .holder
                    .get(&touch[r])
                    .and_then(|h| s.threads.iter().find(|e| e.0 == *h && e.0 != owner[r]));
                match held.and_then(|(_, ranks, done)| ranks.get(*done)) {
                    Some(&before) if before < r => None,
                    _ => Some(r),
                }
            };
            let pick = current
                .and_then(|i| may(self, i).map(|r| (i, r)))
                .or_else(|| {
                    (0..self.threads.len())
                        .filter_map(|i| may(self, i).map(|r| (i, r)))
                        .min_by_key(|(_, r)| *r)
                });
            // The earliest unplaced rank may always go: everything before
            // it in its thread and its object has gone.
            let Some((i, r)) = pick else { break };
            new[r] = *next;
            *next += 1;
            self.threads[i].2 += 1;
            if let Some(o) = self.objects.get_mut(self.object_of[r - from]) {
                o.1 += 1;
                self.holder.insert(touch[r], owner[r]);
            }
            current = Some(i);
        }
    }
}

/// What a sync operation of `process` touches: its object; shared state
/// for those whose real call in replay waits for another thread's code
/// that is no event (a semaphore's post, a barrier's last arrival, a
/// joined thread's end, a static's initialisation, an OpenMP loop).
pub fn sync_touch(process: u32, op: &SyncRecord) -> Touch {
    use SyncOp::*;
    match op.op {
        SemWait | SemTrywait | SemTimedwait | BarrierWait | ThreadJoin | StaticInit | OmpLoop => {
            SHARED
        }
        _ => object(process, op.object),
    }
}

/// What a recorded call touches: only its thread when replay answers it
/// and it changes nothing the other threads can see (a read from a
/// socket, a send, a clock read, a poll); shared state otherwise.
pub fn call_touch(s: &SyscallHead) -> Touch {
    let nr = i64::from(s.nr);
    // Not a sleep (which has an entry, see `SyscallExtra::EnteredAt`):
    // a thread that wakes and then looks at what others did (memcached's
    // LRU maintainer) must wake where it woke. Replayed as moved, 6 of 7
    // memcached recordings diverged in its scans.
    let local = matches!(s.extra, SyscallExtra::None | SyscallExtra::Buffered)
        && THREAD_LOCAL_CALLS.contains(&nr)
        && model::replay_action(nr, &s.args) == ReplayAction::Emulate
        && !model::changes_descriptor_table(nr, &s.args)
        && !model::snapshots_memory(nr, &s.args);
    if local {
        LOCAL
    } else {
        SHARED
    }
}

/// Calls that touch only the calling thread's memory in replay once
/// emulated: their results come from the trace.
const THREAD_LOCAL_CALLS: &[i64] = &[
    libc::SYS_read,
    libc::SYS_readv,
    libc::SYS_pread64,
    libc::SYS_preadv,
    libc::SYS_recvfrom,
    libc::SYS_recvmsg,
    libc::SYS_recvmmsg,
    libc::SYS_write,
    libc::SYS_writev,
    libc::SYS_sendto,
    libc::SYS_sendmsg,
    libc::SYS_sendmmsg,
    libc::SYS_epoll_wait,
    libc::SYS_epoll_pwait,
    libc::SYS_poll,
    libc::SYS_ppoll,
    libc::SYS_select,
    libc::SYS_pselect6,
    libc::SYS_clock_gettime,
    libc::SYS_gettimeofday,
    libc::SYS_time,
    libc::SYS_getrandom,
];

#[cfg(test)]
mod tests {
    use super::*;

    fn order_of(new: &[u64]) -> Vec<usize> {
        let mut by_new: Vec<usize> = (0..new.len()).collect();
        by_new.sort_by_key(|&r| new[r]);
        by_new
    }

    #[test]
    fn threads_that_touch_nothing_in_common_replay_in_runs() {
        // Two threads alternating, each on its own lock.
        let owner = [0, 1, 0, 1, 0, 1];
        let a = object(0, 0x1000);
        let b = object(0, 0x2000);
        let touch = [a, b, a, b, a, b];
        let new = regroup(&owner, &touch, 64);
        assert_eq!(order_of(&new), vec![0, 2, 4, 1, 3, 5]);
    }

    #[test]
    fn one_lock_keeps_its_order_and_shared_state_does_not_move() {
        let m = object(0, 0x1000);
        // t0 locks, t1 locks (after t0), t0 local, t1 local.
        let owner = [0, 1, 0, 1];
        let touch = [m, m, LOCAL, LOCAL];
        let order = order_of(&regroup(&owner, &touch, 64));
        let pos = |r: usize| order.iter().position(|x| *x == r).expect("placed");
        assert!(pos(0) < pos(1), "the lock's order");
        assert!(pos(0) < pos(2) && pos(1) < pos(3), "each thread's order");
        // A shared-state event in the middle: nothing crosses it.
        let owner = [0, 1, 1, 0, 1];
        let touch = [LOCAL, LOCAL, SHARED, LOCAL, LOCAL];
        let order = order_of(&regroup(&owner, &touch, 64));
        assert_eq!(order[2], 2);
        assert!(order[..2].contains(&0) && order[..2].contains(&1));
    }

    #[test]
    fn a_lock_waits_for_its_last_holders_earlier_events() {
        // t0 takes m, then waits for n behind t2; t1, running on, comes
        // to m: t0's wait for n (and the unlock of m after it) goes first.
        let (m, n) = (object(0, 0x1000), object(0, 0x2000));
        let owner = [0, 1, 2, 0, 1];
        let touch = [m, LOCAL, n, n, m];
        let order = order_of(&regroup(&owner, &touch, 64));
        let pos = |r: usize| order.iter().position(|x| *x == r).expect("placed");
        assert!(pos(3) < pos(4), "{order:?}");
    }

    #[test]
    fn nothing_moves_across_a_window_boundary() {
        let owner = [0, 1, 0, 1];
        let touch = [LOCAL; 4];
        assert_eq!(order_of(&regroup(&owner, &touch, 2)), vec![0, 1, 2, 3]);
        assert_eq!(order_of(&regroup(&owner, &touch, 4)), vec![0, 2, 1, 3]);
    }

    fn head(nr: i64, args: [u64; 6], extra: SyscallExtra) -> SyscallHead {
        SyscallHead {
            thread: 0,
            index: 0,
            nr: nr as u32,
            args,
            ret: 0,
            inputs: (),
            outputs: (),
            interval_ns: 0,
            return_ns: 0,
            order: 7,
            extra,
            digested: 0,
        }
    }

    #[test]
    fn reads_sends_and_clock_reads_touch_their_thread_alone() {
        for nr in [libc::SYS_read, libc::SYS_sendmsg, libc::SYS_epoll_wait] {
            let call = head(nr, [3, 0, 0, 0, 0, 0], SyscallExtra::Buffered);
            assert_eq!(call_touch(&call), LOCAL);
        }
        let clock = head(
            libc::SYS_clock_gettime,
            [1, 0, 0, 0, 0, 0],
            SyscallExtra::None,
        );
        assert_eq!(call_touch(&clock), LOCAL);
        let sleep = head(
            libc::SYS_clock_nanosleep,
            [0; 6],
            SyscallExtra::EnteredAt(3),
        );
        assert_eq!(call_touch(&sleep), SHARED, "a thread waking from a sleep");
        let wait = head(libc::SYS_wait4, [0; 6], SyscallExtra::EnteredAt(3));
        assert_eq!(call_touch(&wait), SHARED, "a wait for a child");
        // The descriptor table, the address space and threads are shared.
        for nr in [
            libc::SYS_close,
            libc::SYS_accept4,
            libc::SYS_mmap,
            libc::SYS_clone,
        ] {
            let call = head(nr, [3, 0, 0, 0, 0, 0], SyscallExtra::None);
            assert_eq!(call_touch(&call), SHARED);
        }
        // So is the order of rrc's own output.
        let out = head(
            libc::SYS_write,
            [1, 0, 0, 0, 0, 0],
            SyscallExtra::StdStream(1),
        );
        assert_eq!(call_touch(&out), SHARED);
    }

    #[test]
    fn the_same_address_in_two_processes_is_two_objects() {
        assert_ne!(object(1, 0x1000), object(2, 0x1000));
        assert_ne!(object(1, 0x1000), LOCAL);
        assert_ne!(object(1, 0x1000), SHARED);
    }
}
