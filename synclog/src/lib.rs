//! The shared-memory sync log: one `memfd` mapped by the tracer and by
//! every traced process (through librrc_shim.so).
//!
//! Layout (all offsets fixed, see [`Layout`]):
//! - a [`ShmHeader`] with the mode, a divergence report slot, and the
//!   table that maps the tid a thread sees to its logical thread slot;
//! - an open-addressing table of [`ObjectTurn`]s, one per sync object,
//!   keyed by (logical process, address). Each holds the object's own
//!   acquisition counter, so threads never share one global counter;
//! - one [`SyncRing`] per logical thread. Recording: the thread produces,
//!   the recorder drains. Replay: the replayer feeds, the thread consumes.
//!
//! The header also carries the *event order*: one sequence over every
//! thread's sync operations and syscall returns. Recording stamps each of
//! them from one counter (the shim at an acquisition, while it still holds
//! the object; the tracer just before it lets a syscall return). Replay
//! gives each event a dense rank in stamp order and lets it happen only at
//! its rank, so threads see each other's effects in the recorded order,
//! which also orders most of the data races between those events.
//!
//! Everything in the region is atomics or plain integers written once
//! before they are published, so it is valid for any bit pattern and may be
//! shared between processes.

mod file_size;
pub mod ops;
pub mod replaybuf;
mod ring;
mod sys;
pub mod syscallbuf;
mod turns;

pub use sys::{futex_wait, futex_wake, raw_syscall};
pub use turns::Schedule;

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// Environment variable naming the descriptor of the sync log in the tracee.
pub const SHM_FD_ENV: &str = "RRC_SHM_FD";
/// Descriptor number the tracer places the sync log at: high, so it does
/// not disturb the program's own numbering.
pub const SHM_FD: RawFd = 1000;

pub const SHM_MAGIC: u64 = 0x5252_435f_5359_4e43; // "RRC_SYNC"
pub const SHM_VERSION: u32 = 9;

pub const MODE_RECORD: u32 = 1;
pub const MODE_REPLAY: u32 = 2;

/// `SyncEntry::arrival` of an operation whose arrival has no place in the
/// event order.
pub const NO_ARRIVAL: u64 = u64::MAX;

/// Replay, a futex wait's `seq` (its expected word, below bit 32): set when
/// another thread's wake on the word came between its arrival and its
/// return when recorded, so the wake that ended it may have been the
/// program's, not the kernel's.
pub const WOKEN_BY_WAKE: u64 = 1 << 32;

/// `SyncRing::next_call_rank` of a thread that has replayed every call
/// it made when recorded: a futex wait it makes now, past the end of its
/// sync stream too, is one it was blocked in when the recording ended.
pub const NO_CALLS_LEFT: u64 = u64::MAX;

/// A futex wake's `seq` (its count, below bit 32): it released a lock
/// word (the word was free and one waiter woke), and when recorded the
/// waker went on only once another thread held the word, so that the
/// lock went to a waiter, not back to the waker, as it does in replay
/// (see the shim's `futex::hand_off`).
pub const HANDED_OFF: u64 = 1 << 33;

/// Replay: a thread kept after an event until its own next one is next
/// (a late return, the tracer's after a trapped call or the shim's after
/// a futex wait) goes anyway once the order has stood still this long
/// with no thread on its way (the next event may wait for it through a
/// lock rrc does not see)...
pub const LATE_STILL: Duration = Duration::from_micros(300);
/// ...and after this long in all: a thread computing between events must
/// not be serialised behind other threads' bursts of events.
pub const LATE_LIMIT: Duration = Duration::from_millis(10);
/// At one standstill, a kept thread whose next event is `ahead` ranks
/// past the turn waits [`LATE_STAGGER`] longer per rank beyond the first
/// (up to [`STAGGER_RANKS`] of them): the kept threads go nearest-first,
/// each with time to make the event the next may need (a message sent on
/// a channel before its sender's next event), not all at once, which made
/// them race for what they had done in the recorded order.
pub fn late_still(ahead: u32) -> Duration {
    LATE_STILL + LATE_STAGGER * ahead.saturating_sub(1).min(STAGGER_RANKS)
}
/// See [`late_still`].
pub const LATE_STAGGER: Duration = Duration::from_micros(200);
/// See [`late_still`].
pub const STAGGER_RANKS: u32 = 10;

/// Logical threads the log has room for.
pub const MAX_THREADS: usize = 1024;
/// `fork_barrier` while a barrier's stamp is being taken.
const BARRIER_RISING: u32 = u32::MAX;
/// Sync objects the turn table has room for (power of two).
pub const OBJECT_SLOTS: usize = 1 << 17;
/// Entries per thread ring (power of two).
pub const RING_CAPACITY: usize = 1 << 13;

/// Kinds of divergence the shim can report.
pub const DIVERGENCE_NONE: u32 = 0;
/// The thread did a different operation than the recorded one.
pub const DIVERGENCE_OP_MISMATCH: u32 = 1;
/// Reserved: a thread past the end of its recorded sync stream parks and
/// sets [`SyncRing::parked_past_end`] instead of reporting (it was blocked
/// in that operation when the recording ended).
pub const DIVERGENCE_PAST_END: u32 = 2;
/// A thread that the tracer never registered did a sync operation.
pub const DIVERGENCE_UNKNOWN_THREAD: u32 = 3;
/// The turn table is full.
pub const DIVERGENCE_TABLE_FULL: u32 = 4;

#[repr(C)]
pub struct ShmHeader {
    pub magic: u64,
    pub version: u32,
    pub mode: u32,
    /// Set once by the first thread that diverges (0 -> kind).
    pub divergence: AtomicU32,
    pub div_thread: AtomicU32,
    pub div_index: AtomicU64,
    pub div_expected_op: AtomicU32,
    pub div_observed_op: AtomicU32,
    pub div_expected_object: AtomicU64,
    pub div_observed_object: AtomicU64,
    /// Bumped by the shim and woken when the drainer/feeder should look:
    /// a ring filling up (record) or running low (replay).
    pub service_wake: AtomicU32,
    /// Replay: 1 when events wait for their rank in the event order.
    pub ordering: AtomicU32,
    /// Record: stamps handed out so far. Every thread adds to it on every
    /// event: kept off the cache lines of the words they only read on
    /// every call (`fork_barrier`, `epoch_ns`, ...), which would otherwise
    /// be fetched again after each stamp another processor took.
    _clock_apart: [u64; 16],
    pub order_clock: AtomicU64,
    _clock_apart_after: [u64; 16],
    /// Replay: the rank of the next event allowed to happen; a futex word.
    pub order_turn: AtomicU32,
    /// Replay: threads sleeping on `order_turn`.
    pub order_waiters: AtomicU32,
    /// Replay: bit `s` set while the thread of slot `s` (under 64) sleeps
    /// on its own ring's `rank_wake` for a rank (see `turns.rs`).
    pub rank_sleepers: AtomicU64,
    /// Replay: the rank the tracer holds a thread for, plus one (0: none).
    pub tracer_wants: AtomicU32,
    /// Replay: bumped and woken when `order_turn` reaches `tracer_wants`.
    pub tracer_wake: AtomicU32,
    /// Record: the stamp of a fork that is copying memory, plus one (0:
    /// none); a futex word. See [`SharedSyncLog::begin_fork`].
    pub fork_barrier: AtomicU32,
    /// Record: the logical thread (plus one; 0: none) whose signal handler
    /// holds `fork_barrier`: its own sync operations do not wait.
    pub barrier_owner: AtomicU32,
    /// 1 when the program is serialised (`rrc-record --serialize`, and its
    /// replay): one thread at a time runs its code, from one of its events
    /// to its next, and the shim orders nothing itself. 2 in the replay of
    /// a trace recorded in parallel, when the thread whose event happened
    /// runs on until its next event before the order moves (the baton),
    /// and the shim orders as usual.
    pub serial: AtomicU32,
    /// Replay, serialised: the thread (slot plus one, high half) whose
    /// event at the rank in the low half has happened, and which has the
    /// run of the program until it stops at its next event; 0: none.
    pub baton: AtomicU64,
    /// Record: 1 when the shim may buffer hot calls (see `syscallbuf`).
    pub fast_path: AtomicU32,
    /// Record: 1 when a futex wake that releases a lock hands it on (see
    /// [`HANDED_OFF`]).
    pub lock_handoff: AtomicU32,
    /// Record: CLOCK_MONOTONIC at the recording's start, in nanoseconds:
    /// buffered calls' return times count from here, as the tracer's do.
    pub epoch_ns: AtomicU64,
    /// Replay, in-process calls: 0, intervals not kept; 1, each return no
    /// sooner than its recorded interval after the thread's previous one;
    /// 2, nor than its recorded time after `epoch_ns` (the shared
    /// timeline), as the tracer's pacing.
    pub pacing: AtomicU32,
    /// Replay: the rank (plus one; 0: none) whose thread waits in the shim
    /// for its call's recorded interval: the order stands still then by
    /// rrc's own hold, not for a lock rrc does not see.
    pub pacing_turn: AtomicU32,
    /// Replay: threads held before a lock rrc does not see until another
    /// held it (see `SyncEntry::gate_after`), and of those, how many went
    /// on without (for `--stats`).
    pub lock_gates: AtomicU64,
    pub lock_gates_given_way: AtomicU64,
    /// 1 once the program set its own rdtsc mode (`PR_SET_TSC`), which
    /// makes rdtsc trap in that thread again: recording, the shim then
    /// reads clocks with system calls, not through the vDSO (whose clocks
    /// run rdtsc); both tracers stop patching rdtsc in code mapped later
    /// (it must fault as SIGSEGV). See `syscallbuf::TSC_ASK`.
    pub own_tsc_mode: AtomicU32,
    pub threads: [ThreadSlot; MAX_THREADS],
}

/// Maps the tid a thread sees (from gettid) to its logical thread.
#[repr(C)]
pub struct ThreadSlot {
    /// 0 when free.
    pub tid: AtomicI32,
    pub process: AtomicU32,
}

#[repr(C)]
pub struct ObjectTurn {
    /// `(process << 48) | address`, 0 when free.
    pub key: AtomicU64,
    /// Number of acquisitions so far; a futex word.
    pub turn: AtomicU32,
    /// Threads sleeping on `turn` (replay only).
    pub waiters: AtomicU32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncEntry {
    pub object: u64,
    pub seq: u64,
    /// Record: the event-order stamp. Replay: the event's rank.
    pub order: u64,
    /// The same for the thread's arrival at the operation, before the
    /// real call: the code a thread runs before a lock (a counter bumped
    /// without it, say) has its place in the order too. `NO_ARRIVAL` when
    /// there is none.
    pub arrival: u64,
    /// Replay, a futex wait: the rank of the thread's next event, which
    /// its code after the wait runs just before (see `late_to` in the
    /// replayer's plan); `NO_ARRIVAL` for none.
    pub late_to: u64,
    /// Replay, a futex wait on a lock word (see `gate_after` in the
    /// replayer's plan): the rank of the thread's event just before it.
    /// Once that event is done, the thread goes on only when the word is
    /// held, as it was when the thread got to the lock when recorded.
    /// `NO_ARRIVAL` for none.
    pub gate_after: u64,
    pub op: u32,
    pub result: i32,
}

/// A lock word a thread waits to see held (see `SyncEntry::gate_after`):
/// its address in the program, and its value while nobody holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockGate {
    pub word: u64,
    pub free: u32,
}

impl SyncEntry {
    /// Replay: the lock word this entry's thread waits to see held once
    /// its event at `finished` is done, if this entry is a futex wait
    /// gated there (`gate_after`) on a word `ops::free_word` knows.
    pub fn lock_gate_after(&self, finished: u64) -> Option<LockGate> {
        if self.op != ops::FUTEX_WAIT || self.gate_after != finished {
            return None;
        }
        let free = ops::free_word(self.seq & !WOKEN_BY_WAKE)?;
        Some(LockGate {
            word: self.object,
            free,
        })
    }
}

#[repr(C)]
pub struct SyncRing {
    /// Entries produced so far (monotonic); low 32 bits double as a futex word.
    pub head: AtomicU64,
    /// Entries consumed so far (monotonic).
    pub tail: AtomicU64,
    /// Replay: the feeder has pushed the thread's last recorded entry.
    pub closed: AtomicU32,
    /// Futex word the producer bumps after pushing (replay consumers wait on it).
    pub pushed: AtomicU32,
    /// Futex word the consumer bumps after popping (record producers wait on it).
    pub popped: AtomicU32,
    /// Replay: the thread asked for a sync operation beyond its recorded
    /// stream and is parked (it was blocked there when the recording ended).
    pub parked_past_end: AtomicU32,
    /// Replay: the rank this thread waits for in the event order, plus
    /// one (0: not waiting); read by stall reports.
    pub waiting_for_rank: AtomicU32,
    /// Replay: the object turn this thread waits for, plus one (0: not
    /// waiting); read by stall reports.
    pub waiting_for_turn: AtomicU32,
    /// Replay: set by the tracer to the rank this thread waits for, plus
    /// one, to let it go ahead of the order (see the replayer's
    /// `break_untraced_block`).
    pub released_early: AtomicU32,
    /// Replay: set by the tracer to `waiting_for_turn` to let that wait go
    /// (nothing can move; see the replayer's `giveway.rs`).
    pub turn_released: AtomicU32,
    /// Replay: bumped and woken when the rank this thread sleeps for comes.
    pub rank_wake: AtomicU32,
    /// Replay: bit 0, the thread is in a futex wait the recording does
    /// not have (bounded, re-made by the program's own loop): asleep where
    /// rrc does not see, for the tracer's standstill checks; the other
    /// bits count such waits.
    pub waiting_unseen: AtomicU32,
    /// Replay: the rank of the return of the thread's next recorded call
    /// that the tracer has not fed it, plus one (0: unknown), set as the
    /// tracer lets the thread go. A futex call or yield whose recorded
    /// arrival comes after it belongs after that call: one made before is
    /// not that recorded one (see `expect_if_next` in the shim).
    /// [`NO_CALLS_LEFT`]: the thread has replayed all its recorded calls.
    pub next_call_rank: AtomicU64,
    /// Replay: yields the thread made that its recording does not have
    /// (a spin loop waiting on another thread), counted.
    pub extra_yields: AtomicU32,
    pub entries: [SyncEntryCell; RING_CAPACITY],
}

/// One ring entry; written by the producer before `head` is published.
#[repr(C)]
pub struct SyncEntryCell {
    object: AtomicU64,
    seq: AtomicU64,
    order: AtomicU64,
    arrival: AtomicU64,
    late_to: AtomicU64,
    gate_after: AtomicU64,
    op: AtomicU32,
    result: AtomicI32,
}

/// Byte offsets of the parts of the region.
pub struct Layout;

impl Layout {
    pub const HEADER: usize = 0;
    pub const OBJECTS: usize = align_up(std::mem::size_of::<ShmHeader>(), 4096);
    pub const RINGS: usize = align_up(
        Self::OBJECTS + OBJECT_SLOTS * std::mem::size_of::<ObjectTurn>(),
        4096,
    );
    pub const RING_STRIDE: usize = align_up(std::mem::size_of::<SyncRing>(), 4096);
    pub const BUFFERS: usize = Self::RINGS + MAX_THREADS * Self::RING_STRIDE;
    pub const BUF_STRIDE: usize = align_up(std::mem::size_of::<syscallbuf::SyscallBuf>(), 4096);
    pub const TOTAL: usize = Self::BUFFERS + MAX_THREADS * Self::BUF_STRIDE;
}

const fn align_up(v: usize, a: usize) -> usize {
    v.div_ceil(a) * a
}

/// A mapping of the sync log.
pub struct SharedSyncLog {
    base: *mut u8,
}

// SAFETY: the region holds only atomics and write-once integers; it is
// designed to be used concurrently from many threads and processes.
unsafe impl Send for SharedSyncLog {}
unsafe impl Sync for SharedSyncLog {}

/// The sync log memfd's name; replay's placeholder descriptors are
/// duplicates of it, so /proc shows them as `/memfd:rrc-synclog`.
pub const MEMFD_NAME: &std::ffi::CStr = c"rrc-synclog";

impl SharedSyncLog {
    /// Creates the memfd, sizes it and initialises the header. The memfd is
    /// sparse: pages cost memory only once touched.
    pub fn create(mode: u32) -> io::Result<(OwnedFd, SharedSyncLog)> {
        // SAFETY: the name is a valid NUL-terminated string.
        let fd = unsafe { libc::memfd_create(MEMFD_NAME.as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just returned by memfd_create and is owned by no one else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let size = Layout::TOTAL as libc::off_t;
        // A file-size limit (`ulimit -f`) counts a memfd's size too, and
        // its SIGXFSZ would end us: lift it to the hard limit meanwhile.
        let lifted = file_size::LiftedFileSizeLimit::to_hold(size)?;
        // SAFETY: plain syscall on a valid fd.
        let sized = match unsafe { libc::ftruncate(fd.as_raw_fd(), size) } {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        };
        // Put back only once the error is read: setrlimit sets errno too.
        drop(lifted);
        sized?;
        // SAFETY: fd refers to a memfd of Layout::TOTAL bytes.
        let log = unsafe { Self::map(fd.as_raw_fd())? };
        // SAFETY: we are the only user of the fresh mapping; header fields
        // that are not atomics are written before anyone else maps it.
        unsafe {
            let h = log.base as *mut ShmHeader;
            (*h).magic = SHM_MAGIC;
            (*h).version = SHM_VERSION;
            (*h).mode = mode;
        }
        Ok((fd, log))
    }

    /// Maps an existing sync log.
    ///
    /// # Safety
    /// `fd` must refer to a sync log made by [`SharedSyncLog::create`].
    pub unsafe fn map(fd: RawFd) -> io::Result<SharedSyncLog> {
        let p = libc::mmap(
            std::ptr::null_mut(),
            Layout::TOTAL,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        );
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(SharedSyncLog { base: p as *mut u8 })
    }

    /// Maps the log and checks its magic and version.
    ///
    /// # Safety
    /// `fd` must be a descriptor that is either a sync log or something
    /// whose first page is readable as one (the check then fails).
    pub unsafe fn attach(fd: RawFd) -> Option<SharedSyncLog> {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) != 0 || (st.st_size as usize) < Layout::TOTAL {
            return None;
        }
        let log = Self::map(fd).ok()?;
        let h = log.header();
        if h.magic != SHM_MAGIC || h.version != SHM_VERSION {
            return None;
        }
        Some(log)
    }

    pub fn header(&self) -> &ShmHeader {
        // SAFETY: the mapping starts with a ShmHeader and lives as long as self.
        unsafe { &*(self.base.add(Layout::HEADER) as *const ShmHeader) }
    }

    pub fn mode(&self) -> u32 {
        self.header().mode
    }

    pub fn ring(&self, slot: u32) -> Option<&SyncRing> {
        if slot as usize >= MAX_THREADS {
            return None;
        }
        // SAFETY: slot < MAX_THREADS, so the ring lies inside the mapping.
        Some(unsafe {
            &*(self
                .base
                .add(Layout::RINGS + slot as usize * Layout::RING_STRIDE)
                as *const SyncRing)
        })
    }

    /// A thread's syscall buffer (the fast path, record only).
    pub fn syscall_buf(&self, slot: u32) -> Option<&syscallbuf::SyscallBuf> {
        if slot as usize >= MAX_THREADS {
            return None;
        }
        // SAFETY: slot < MAX_THREADS, so the buffer lies inside the mapping.
        Some(unsafe {
            &*(self
                .base
                .add(Layout::BUFFERS + slot as usize * Layout::BUF_STRIDE)
                as *const syscallbuf::SyscallBuf)
        })
    }

    /// Whether the shim may buffer calls (record, fast path on).
    pub fn fast_path(&self) -> bool {
        self.header().fast_path.load(Ordering::Relaxed) != 0
    }

    /// Turns the fast path on or off, and sets the clock it counts from
    /// (before the program runs).
    pub fn set_fast_path(&self, on: bool, epoch_ns: u64) {
        self.header().epoch_ns.store(epoch_ns, Ordering::Relaxed);
        self.header().fast_path.store(on as u32, Ordering::Relaxed);
    }

    /// Whether a recorded wake that releases a lock hands it on.
    pub fn lock_handoff(&self) -> bool {
        self.header().lock_handoff.load(Ordering::Relaxed) != 0
    }

    /// Turns lock hand-offs on or off (before the program runs).
    pub fn set_lock_handoff(&self, on: bool) {
        self.header()
            .lock_handoff
            .store(on as u32, Ordering::Relaxed);
    }

    fn object_slot(&self, i: usize) -> &ObjectTurn {
        // SAFETY: callers pass i < OBJECT_SLOTS.
        unsafe {
            &*((self.base.add(Layout::OBJECTS) as *const ObjectTurn).add(i & (OBJECT_SLOTS - 1)))
        }
    }

    /// The turn counter of an object, inserted on first use. `None` when
    /// the table is full.
    pub fn object(&self, process: u32, address: u64) -> Option<&ObjectTurn> {
        let key = object_key(process, address);
        let mut i = hash(key) as usize;
        for _ in 0..OBJECT_SLOTS {
            let slot = self.object_slot(i);
            let k = slot.key.load(Ordering::Acquire);
            if k == key {
                return Some(slot);
            }
            if k == 0 {
                match slot
                    .key
                    .compare_exchange(0, key, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => return Some(slot),
                    Err(other) if other == key => return Some(slot),
                    Err(_) => {}
                }
            }
            i = i.wrapping_add(1);
        }
        None
    }

    /// Tells the shim which logical thread and process the thread that
    /// sees `tid` is. Called by the tracer before the thread runs.
    pub fn register_thread(&self, tid: i32, slot: u32, process: u32) -> bool {
        let Some(s) = self.header().threads.get(slot as usize) else {
            return false;
        };
        s.process.store(process, Ordering::Relaxed);
        s.tid.store(tid, Ordering::Release);
        true
    }

    /// Finds the logical thread and process for a tid.
    pub fn lookup_thread(&self, tid: i32) -> Option<(u32, u32)> {
        self.header()
            .threads
            .iter()
            .position(|s| s.tid.load(Ordering::Acquire) == tid)
            .map(|i| {
                (
                    i as u32,
                    self.header().threads[i].process.load(Ordering::Relaxed),
                )
            })
    }

    /// Records a divergence found by the shim; only the first one sticks.
    pub fn report_divergence(
        &self,
        kind: u32,
        thread: u32,
        index: u64,
        expected: Option<SyncEntry>,
        observed_op: u32,
        observed_object: u64,
    ) {
        let h = self.header();
        if h.divergence
            .compare_exchange(
                DIVERGENCE_NONE,
                u32::MAX,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            return;
        }
        h.div_thread.store(thread, Ordering::Relaxed);
        h.div_index.store(index, Ordering::Relaxed);
        h.div_expected_op
            .store(expected.map_or(0, |e| e.op), Ordering::Relaxed);
        h.div_expected_object
            .store(expected.map_or(0, |e| e.object), Ordering::Relaxed);
        h.div_observed_op.store(observed_op, Ordering::Relaxed);
        h.div_observed_object
            .store(observed_object, Ordering::Relaxed);
        h.divergence.store(kind, Ordering::Release);
        h.service_wake.fetch_add(1, Ordering::Release);
        futex_wake(&h.service_wake, i32::MAX);
    }

    /// The divergence the shim reported, if any.
    pub fn divergence(&self) -> Option<ShimDivergence> {
        let h = self.header();
        let kind = h.divergence.load(Ordering::Acquire);
        if kind == DIVERGENCE_NONE || kind == u32::MAX {
            return None;
        }
        Some(ShimDivergence {
            kind,
            thread: h.div_thread.load(Ordering::Relaxed),
            index: h.div_index.load(Ordering::Relaxed),
            expected_op: h.div_expected_op.load(Ordering::Relaxed),
            expected_object: h.div_expected_object.load(Ordering::Relaxed),
            observed_op: h.div_observed_op.load(Ordering::Relaxed),
            observed_object: h.div_observed_object.load(Ordering::Relaxed),
        })
    }

    /// Record: the next stamp in the event order.
    pub fn stamp_event(&self) -> u64 {
        self.header().order_clock.fetch_add(1, Ordering::SeqCst)
    }

    /// Record (tracer): stamps a fork that is about to copy the process's
    /// memory. Until [`Self::end_fork`], sync operations wait before they
    /// acquire (see [`Self::wait_for_forks`]), so what the child copies
    /// is, but for operations already under way, what the operations
    /// stamped before the fork left: what replay, which runs the fork at
    /// its rank, gives it.
    pub fn begin_fork(&self) -> u64 {
        self.raise_barrier(0)
    }

    /// Raises the barrier for `owner` (0 for a fork, a slot + 1 for a
    /// handler) before taking its stamp: an operation that finds no
    /// barrier after its own stamp was then stamped before it (see
    /// [`Self::wait_for_barrier_before`]).
    fn raise_barrier(&self, owner: u32) -> u64 {
        let h = self.header();
        h.barrier_owner.store(owner, Ordering::SeqCst);
        h.fork_barrier.store(BARRIER_RISING, Ordering::SeqCst);
        let stamp = self.stamp_event();
        h.fork_barrier.store(word_plus_one(stamp), Ordering::SeqCst);
        stamp
    }

    /// Record (tracer): the fork stamped `stamp` has made its child.
    pub fn end_fork(&self, stamp: u64) {
        let h = self.header();
        let armed = word_plus_one(stamp);
        if h.fork_barrier
            .compare_exchange(armed, 0, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            futex_wake(&h.fork_barrier, i32::MAX);
        }
    }

    /// Record (tracer): a signal handler starts on logical thread `slot`
    /// right after its event stamped `stamp`. Until [`Self::end_fork`]
    /// with that stamp, other threads' sync operations wait as they do
    /// for a fork, so the handler's writes fall at one place in the event
    /// order (a flag it sets is seen by every later event, by no earlier
    /// one), which replay reproduces.
    /// Returns the barrier's stamp.
    pub fn begin_handler(&self, slot: u32) -> u64 {
        self.raise_barrier(slot + 1)
    }

    /// Record (shim): returns once no fork is copying memory and no other
    /// thread's signal handler runs alone. `slot`: the calling thread's.
    pub fn wait_for_forks(&self, slot: Option<u32>) {
        let h = self.header();
        loop {
            let barrier = h.fork_barrier.load(Ordering::SeqCst);
            if barrier == 0 {
                return;
            }
            // A handler's own lock operations go on (waiting would
            // deadlock it); the barrier is the handler's only then.
            if let Some(slot) = slot {
                if h.barrier_owner.load(Ordering::SeqCst) == slot + 1 {
                    return;
                }
            }
            // Timed: a tracer that died must not leave us asleep.
            futex_wait(&h.fork_barrier, barrier, Some(Duration::from_millis(5)));
        }
    }

    /// Record (shim): after an acquisition stamped `order`, returns once
    /// no fork or other thread's handler that was stamped before it is
    /// under way. Such a barrier was raised after this operation passed
    /// [`Self::wait_for_forks`], while it acquired: the child (or the
    /// handler) must not see what the thread does next, as in replay,
    /// where the operation comes after the fork's place.
    pub fn wait_for_barrier_before(&self, order: u64, slot: u32) {
        let h = self.header();
        loop {
            let barrier = h.fork_barrier.load(Ordering::SeqCst);
            if barrier == 0 || h.barrier_owner.load(Ordering::SeqCst) == slot + 1 {
                return;
            }
            if barrier == BARRIER_RISING {
                // Its stamp is being taken (and may come before ours):
                // the tracer stores it in a moment.
                std::hint::spin_loop();
                continue;
            }
            if !rank_is_past(barrier.wrapping_sub(1), word(order)) {
                return;
            }
            futex_wait(&h.fork_barrier, barrier, Some(Duration::from_millis(5)));
        }
    }

    /// Wakes the drainer/feeder.
    pub fn poke_service(&self) {
        let h = self.header();
        h.service_wake.fetch_add(1, Ordering::Release);
        futex_wake(&h.service_wake, 1);
    }
}

impl Drop for SharedSyncLog {
    fn drop(&mut self) {
        // SAFETY: base/TOTAL is exactly the mapping made in map().
        unsafe {
            libc::munmap(self.base as *mut libc::c_void, Layout::TOTAL);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShimDivergence {
    pub kind: u32,
    pub thread: u32,
    pub index: u64,
    pub expected_op: u32,
    pub expected_object: u64,
    pub observed_op: u32,
    pub observed_object: u64,
}

/// Ranks, stamps and turns as the region holds them: futex words, 32
/// bits wide, wrapping. Every side (shim, tracer) narrows them with this.
pub const fn word(rank: u64) -> u32 {
    rank as u32
}

/// A "waiting for" or "armed" word: the rank (stamp, turn) plus one, 0
/// meaning none.
pub const fn word_plus_one(rank: u64) -> u32 {
    word(rank).wrapping_add(1)
}

/// Ranks wrap in 32 bits; a rank less than 2^31 behind is past.
fn rank_is_past(rank: u32, current: u32) -> bool {
    (current.wrapping_sub(rank) as i32) > 0
}

pub fn object_key(process: u32, address: u64) -> u64 {
    // User addresses on x86-64 fit in 47 bits.
    ((process as u64 + 1) << 48) | (address & ((1 << 48) - 1))
}

fn hash(k: u64) -> u64 {
    // Fibonacci hashing spreads aligned addresses across the table.
    (k.wrapping_mul(0x9E37_79B9_7F4A_7C15)) >> 40
}

#[cfg(test)]
mod tests;
