//! `std::random_device` (libstdc++): its default source is the RDRAND
//! instruction where the processor has it, whose numbers no tracer sees.
//! Under rrc the default becomes `/dev/urandom`, whose reads are recorded
//! and replayed like any other. (Hiding RDRAND with CPUID faulting would
//! cover every user of the instruction, but in a VM it makes each context
//! switch, so each ptrace stop, about three times as slow.)

use std::ffi::c_void;

use crate::real;
use crate::session;

/// libstdc++'s `std::string` (the C++11 ABI): a pointer to the characters,
/// their count, and a 16-byte buffer that holds short strings.
#[repr(C)]
pub struct CxxString {
    data: *const u8,
    len: usize,
    local: [u8; 16],
}

/// The token `std::random_device()` passes, and the one used instead.
const DEFAULT: &[u8] = b"default";
const RECORDED_SOURCE: &[u8] = b"/dev/urandom";

/// `std::random_device::_M_init(const std::string&)`.
#[no_mangle]
pub unsafe extern "C" fn _ZNSt13random_device7_M_initERKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE(
    this: *mut c_void,
    token: *const CxxString,
) {
    let Some(init) = real::random_device_init() else {
        return;
    };
    // SAFETY: libstdc++ passes a valid string whose `data` points to `len`
    // bytes.
    let is_default = unsafe {
        !token.is_null()
            && (*token).len == DEFAULT.len()
            && std::slice::from_raw_parts((*token).data, (*token).len) == DEFAULT
    };
    let under_rrc = session::current().is_some() || session::serial();
    if !is_default || !under_rrc {
        // SAFETY: forwards the caller's arguments under the same contract.
        return unsafe { init(this, token) };
    }
    let mut source = CxxString {
        data: std::ptr::null(),
        len: RECORDED_SOURCE.len(),
        local: [0; 16],
    };
    source.local[..RECORDED_SOURCE.len()].copy_from_slice(RECORDED_SOURCE);
    source.data = source.local.as_ptr();
    // SAFETY: `source` is a well-formed short string that outlives the
    // call, which only reads it; `this` is the caller's object.
    unsafe { init(this, &source) }
}
