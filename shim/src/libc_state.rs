//! libc's random-number state as a sync object. `rand`, `random` and
//! their seeding functions share one state that glibc guards with a lock
//! of its own, taken where no interposition sees it (the `drand48` family
//! shares another, unguarded): threads that draw numbers concurrently get
//! them in an order rrc would not otherwise record, so each thread's
//! numbers differ in replay. Each call here is made in the recorded order
//! (op `LIBC_STATE`, one object per state), for real, so it returns what
//! it returned when recorded.

use std::ffi::{c_char, c_double, c_int, c_long, c_uint};
use std::sync::atomic::AtomicU32;

use rrc_synclog::ops;

use crate::order;
use crate::real;

/// The states, as objects: addresses of these statics (the same in record
/// and replay, as the shim loads at the same address).
static RANDOM_STATE: AtomicU32 = AtomicU32::new(0);
static DRAND48_STATE: AtomicU32 = AtomicU32::new(0);

/// Makes `call` on `state` at its recorded turn, and returns what it
/// returned.
fn in_recorded_order<T: Copy>(state: &'static AtomicU32, call: impl Fn() -> T) -> Option<T> {
    order::call_in_recorded_order(ops::LIBC_STATE, state, call)
}

#[no_mangle]
pub unsafe extern "C" fn rand() -> c_int {
    // SAFETY: rand takes no arguments.
    let real = || real::rand().map_or(0, |f| unsafe { f() });
    in_recorded_order(&RANDOM_STATE, real).unwrap_or(0)
}

#[no_mangle]
pub unsafe extern "C" fn random() -> c_long {
    // SAFETY: random takes no arguments.
    let real = || real::random().map_or(0, |f| unsafe { f() });
    in_recorded_order(&RANDOM_STATE, real).unwrap_or(0)
}

#[no_mangle]
pub unsafe extern "C" fn srand(seed: c_uint) {
    // SAFETY: srand takes any seed.
    let real = || real::srand().map_or((), |f| unsafe { f(seed) });
    in_recorded_order(&RANDOM_STATE, real);
}

#[no_mangle]
pub unsafe extern "C" fn srandom(seed: c_uint) {
    // SAFETY: srandom takes any seed.
    let real = || real::srandom().map_or((), |f| unsafe { f(seed) });
    in_recorded_order(&RANDOM_STATE, real);
}

#[no_mangle]
pub unsafe extern "C" fn initstate(seed: c_uint, state: *mut c_char, n: usize) -> *mut c_char {
    // SAFETY: the program's arguments, under initstate's contract.
    let real = || real::initstate().map_or(std::ptr::null_mut(), |f| unsafe { f(seed, state, n) });
    in_recorded_order(&RANDOM_STATE, real).unwrap_or(std::ptr::null_mut())
}

#[no_mangle]
pub unsafe extern "C" fn setstate(state: *mut c_char) -> *mut c_char {
    // SAFETY: the program's argument, under setstate's contract.
    let real = || real::setstate().map_or(std::ptr::null_mut(), |f| unsafe { f(state) });
    in_recorded_order(&RANDOM_STATE, real).unwrap_or(std::ptr::null_mut())
}

#[no_mangle]
pub unsafe extern "C" fn drand48() -> c_double {
    // SAFETY: drand48 takes no arguments.
    let real = || real::drand48().map_or(0.0, |f| unsafe { f() });
    in_recorded_order(&DRAND48_STATE, real).unwrap_or(0.0)
}

#[no_mangle]
pub unsafe extern "C" fn lrand48() -> c_long {
    // SAFETY: lrand48 takes no arguments.
    let real = || real::lrand48().map_or(0, |f| unsafe { f() });
    in_recorded_order(&DRAND48_STATE, real).unwrap_or(0)
}

#[no_mangle]
pub unsafe extern "C" fn mrand48() -> c_long {
    // SAFETY: mrand48 takes no arguments.
    let real = || real::mrand48().map_or(0, |f| unsafe { f() });
    in_recorded_order(&DRAND48_STATE, real).unwrap_or(0)
}

#[no_mangle]
pub unsafe extern "C" fn srand48(seed: c_long) {
    // SAFETY: srand48 takes any seed.
    let real = || real::srand48().map_or((), |f| unsafe { f(seed) });
    in_recorded_order(&DRAND48_STATE, real);
}
