//! Operation codes stored in `SyncEntry::op`.
//!
//! The source of truth is `SyncOp` in trace-format/src/records.rs
//! (`#[repr(u8)]`, 1..=17). These are copies so that librrc_shim.so does
//! not link the trace crate; keep them in step with it.

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
