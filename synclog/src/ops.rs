//! Operation codes stored in `SyncEntry::op`: the shim writes them, the
//! recorder turns them into the trace's `SyncOp` (whose discriminants are
//! these codes, so they are defined once, here, where both sides see them
//! without librrc_shim.so linking the trace crate).

pub const MUTEX_LOCK: u32 = 1;
pub const MUTEX_TRYLOCK: u32 = 2;
/// Also pthread_mutex_clocklock.
pub const MUTEX_TIMEDLOCK: u32 = 3;
pub const COND_WAIT: u32 = 4;
/// Also pthread_cond_clockwait.
pub const COND_TIMEDWAIT: u32 = 5;
pub const RWLOCK_RDLOCK: u32 = 6;
pub const RWLOCK_WRLOCK: u32 = 7;
pub const RWLOCK_TRYRDLOCK: u32 = 8;
pub const RWLOCK_TRYWRLOCK: u32 = 9;
/// Also pthread_rwlock_clockrdlock.
pub const RWLOCK_TIMEDRDLOCK: u32 = 10;
/// Also pthread_rwlock_clockwrlock.
pub const RWLOCK_TIMEDWRLOCK: u32 = 11;
pub const SEM_WAIT: u32 = 12;
pub const SEM_TRYWAIT: u32 = 13;
/// Also sem_clockwait.
pub const SEM_TIMEDWAIT: u32 = 14;
pub const SPIN_LOCK: u32 = 15;
pub const SPIN_TRYLOCK: u32 = 16;
pub const BARRIER_WAIT: u32 = 17;
/// A stdio `FILE`'s lock, taken by the shim around each stdio call (and by
/// flockfile/ftrylockfile); the object is the `FILE *`.
pub const STDIO_LOCK: u32 = 18;
/// A futex wait the program made through libc's `syscall()` (Rust's std
/// locks and condvars, hand-written locks); the object is the futex word.
pub const FUTEX_WAIT: u32 = 19;
/// A futex wake made the same way.
pub const FUTEX_WAKE: u32 = 20;
/// A libc call on state libc keeps behind a lock of its own (`rand`,
/// `random`, the `drand48` family; the name services, the time zone and
/// the message catalogs it loads on first use; a `pthread_once` control):
/// made in the recorded order; the object is the shim's key for that state
/// (the control's address).
pub const LIBC_STATE: u32 = 21;
/// An OpenMP lock taken (`#pragma omp critical`, named or not, `omp
/// atomic` done with a lock, `omp_set_lock` and its nestable and test
/// forms): libgomp takes it with atomics and raw futex syscalls. The
/// object is the lock's address (libgomp's own function for the unnamed
/// critical section, the one lock they all share).
pub const OMP_LOCK: u32 = 22;
/// An OpenMP loop's next chunk taken (dynamic, guided and runtime
/// schedules: `GOMP_loop_*_start` and `_next`): which thread gets which
/// iterations is decided by an atomic in libgomp. The object is one shim
/// static for all loops.
pub const OMP_LOOP: u32 = 23;
/// A C++ function-local static constructed (`__cxa_guard_acquire`
/// returned 1): which of the threads that reached it together runs its
/// constructor is decided by libstdc++'s atomics. Logged only by the
/// thread that constructed it; the object is the guard's address.
pub const STATIC_INIT: u32 = 24;
/// A `pthread_join` (and `std::thread::join`, Rust's `JoinHandle::join`,
/// `thrd_join`): a wait the thread's code makes between two events that
/// otherwise has no place in the order, so that what the thread did just
/// before it (set a stop flag the joined thread reads) keeps its place.
/// The object is the `pthread_t`.
pub const THREAD_JOIN: u32 = 25;
/// A `sched_yield` (and `std::this_thread::yield`, Rust's `yield_now`):
/// threads that spin on a flag another sets yield between looks, and
/// each yield's place in the order keeps the looks where they were.
pub const SCHED_YIELD: u32 = 26;

/// Whether a call with this code may be made more or fewer times in one
/// run than in another (how often a lock's slow path or a spin loop goes
/// round depends on races rrc does not order): replay steps over recorded
/// ones a thread does not make and lets extra ones through.
pub const fn optional(op: u32) -> bool {
    op == FUTEX_WAIT || op == FUTEX_WAKE || op == SCHED_YIELD
}

/// For a futex wait's expected value that says another thread held the
/// word when the waiter got there, the word's value while nobody does:
/// 2 is a three-state lock's "held, with waiters" (0 free, 1 held: Rust's
/// `Mutex`, glibc's internal locks, most hand-written ones); 5 is Rust's
/// `Once` "running, with waiters" (`RUNNING | QUEUED`; 3 is `INCOMPLETE`,
/// as in Rust 1.95's futex `Once`), which `OnceLock` and the first use of
/// Rust's stdout go through. Replay gates a thread before such a wait until
/// the word is not free (the shim's `before_unseen_lock`), or for about a
/// millisecond: another primitive that waits on 5 is held that long at
/// most.
pub const fn free_word(waited_on: u64) -> Option<u32> {
    match waited_on {
        2 => Some(0),
        5 => Some(3),
        _ => None,
    }
}

/// Every code, in order: they are 1..=LAST with no gaps.
pub const ALL: [u32; 26] = [
    MUTEX_LOCK,
    MUTEX_TRYLOCK,
    MUTEX_TIMEDLOCK,
    COND_WAIT,
    COND_TIMEDWAIT,
    RWLOCK_RDLOCK,
    RWLOCK_WRLOCK,
    RWLOCK_TRYRDLOCK,
    RWLOCK_TRYWRLOCK,
    RWLOCK_TIMEDRDLOCK,
    RWLOCK_TIMEDWRLOCK,
    SEM_WAIT,
    SEM_TRYWAIT,
    SEM_TIMEDWAIT,
    SPIN_LOCK,
    SPIN_TRYLOCK,
    BARRIER_WAIT,
    STDIO_LOCK,
    FUTEX_WAIT,
    FUTEX_WAKE,
    LIBC_STATE,
    OMP_LOCK,
    OMP_LOOP,
    STATIC_INIT,
    THREAD_JOIN,
    SCHED_YIELD,
];

pub const LAST: u32 = SCHED_YIELD;

// The trace stores codes as a u8; `ALL` must list 1..=LAST in order.
const _: () = {
    assert!(LAST <= u8::MAX as u32);
    let mut i = 0;
    while i < ALL.len() {
        assert!(ALL[i] == i as u32 + 1);
        i += 1;
    }
    assert!(ALL.len() as u32 == LAST);
};
