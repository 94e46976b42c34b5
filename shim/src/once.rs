//! `pthread_once` (and C++'s `std::call_once`, which libstdc++ makes
//! through it) as a sync object. Which of the threads that reach a
//! once-control together runs its init routine is decided by an atomic
//! inside glibc, which no interposition sees; an init routine that makes
//! syscalls (opens a configuration file, a log) then makes them in
//! another thread in replay. Each call takes the control's turn in the
//! recorded order (op `LIBC_STATE`, the object is the control's address)
//! and holds it through the real call, so the thread that ran the routine
//! when recorded runs it in replay, and the others wait for it as they did.
//!
//! The control is the program's: the lock held through the call is a word
//! of the shim's, one per control, from a small table. A control beyond
//! the table, and a `pthread_once` made inside an init routine, go to
//! glibc unordered.

use std::cell::Cell;
use std::ffi::c_int;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use rrc_synclog::ops;

use crate::order;
use crate::real;

/// Controls the shim orders (a program has a handful: one per lazily
/// initialised library state).
const SLOTS: usize = 128;

struct Slot {
    /// The control's address; 0 while the slot is free.
    control: AtomicU64,
    lock: AtomicU32,
}

static TABLE: [Slot; SLOTS] = [const {
    Slot {
        control: AtomicU64::new(0),
        lock: AtomicU32::new(0),
    }
}; SLOTS];

thread_local! {
    /// In an init routine: a `pthread_once` it makes goes straight to glibc.
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

/// The shim's lock for `control`, claiming a slot on first use (slots are
/// never given back: a control's address keeps its lock).
fn lock_for(control: u64) -> Option<&'static AtomicU32> {
    let start = (control.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 57) as usize % SLOTS;
    for i in 0..SLOTS {
        let slot = &TABLE[(start + i) % SLOTS];
        match slot
            .control
            .compare_exchange(0, control, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => return Some(&slot.lock),
            Err(seen) if seen == control => return Some(&slot.lock),
            Err(_) => {}
        }
    }
    None
}

/// # Safety
/// `pthread_once`'s contract.
#[no_mangle]
pub unsafe extern "C" fn pthread_once(
    control: *mut libc::pthread_once_t,
    init: Option<unsafe extern "C" fn()>,
) -> c_int {
    // SAFETY: the program's arguments, under the function's contract.
    let real = || real::pthread_once().map_or(libc::ENOSYS, |f| unsafe { f(control, init) });
    if INSIDE.with(|i| i.get()) {
        return real();
    }
    let Some(lock) = lock_for(control as u64) else {
        return real();
    };
    let taken = order::enter_recorded_order_at(ops::LIBC_STATE, control as u64, lock);
    INSIDE.with(|i| i.set(true));
    let out = real();
    INSIDE.with(|i| i.set(false));
    if taken {
        order::leave_recorded_order(lock);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_control_keeps_its_lock_and_two_controls_have_two() {
        let a = lock_for(0x1000).expect("a slot");
        let b = lock_for(0x2000).expect("a slot");
        assert!(std::ptr::eq(a, lock_for(0x1000).expect("the same slot")));
        assert!(!std::ptr::eq(a, b));
    }
}
