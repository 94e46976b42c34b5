//! Unwind information for the fast path's call site (`syscall; ret` on a
//! page of its own), so that an unwinder can step from a thread stopped
//! there to the code that called it. A thread cancelled while blocked in
//! a buffered call unwinds from the site (glibc's `pthread_cancel` runs
//! the thread's cleanups by unwinding its stack); without this the
//! unwinder found no frame information at the site, took it for the end
//! of the stack, and C++ destructors above it never ran.
//!
//! Registered at a program's first `pthread_cancel`, not before: once
//! anything is registered, libgcc takes a mutex of its own at every frame
//! of every unwind, C++ exceptions included. From then on the shim lets
//! libgcc's own locks and once-controls through unordered
//! ([`is_unwinder_state`]): they guard the unwinder's tables, nothing the
//! program sees, and how many frames a cancelled thread unwinds differs
//! between record (from the site) and replay (from glibc's wrapper).

use std::sync::atomic::{AtomicU64, Ordering};

use rrc_synclog::syscallbuf::FAST_PAGE;

/// One CIE and one FDE, in `.eh_frame` form, then the zero terminator.
/// The CIE says: code alignment 1, data alignment -8, return address in
/// rip (16), FDE addresses as absolute 8-byte pointers ("zR", 0x00); and
/// throughout, CFA = rsp + 8 with the return address at CFA - 8 (where
/// the `call` to the site put it). The FDE covers the site's page.
#[repr(C, align(8))]
struct EhFrame([u8; 64]);

static EH_FRAME: EhFrame = EhFrame(eh_frame());

const fn eh_frame() -> [u8; 64] {
    let mut b = [0u8; 64];
    // CIE: 20 bytes after its length field.
    b[0] = 20;
    // b[4..8]: CIE id 0.
    b[8] = 1; // version
    b[9] = b'z';
    b[10] = b'R';
    // b[11]: end of the augmentation string.
    b[12] = 1; // code alignment factor
    b[13] = 0x78; // data alignment factor, -8
    b[14] = 16; // return address register: rip
    b[15] = 1; // augmentation data: one byte,
               // b[16] = 0x00: FDE pointers absolute
    b[17] = 0x0c; // DW_CFA_def_cfa rsp (7), 8
    b[18] = 7;
    b[19] = 8;
    b[20] = 0x90; // DW_CFA_offset rip, 1 * -8
    b[21] = 1;
    // b[22..24]: DW_CFA_nop padding.
    // FDE at 24: 28 bytes after its length field.
    b[24] = 28;
    // The distance back from the CIE pointer (at 28) to the CIE (at 0).
    b[28] = 28;
    // pc_begin at 32, pc_range at 40, both 8 bytes, little-endian.
    let mut i = 0;
    while i < 8 {
        b[32 + i] = (FAST_PAGE >> (8 * i)) as u8;
        b[40 + i] = (4096u64 >> (8 * i)) as u8;
        i += 1;
    }
    // b[48]: no augmentation data; b[49..56]: DW_CFA_nop padding;
    // b[56..60]: the zero-length terminator.
    b
}

extern "C" {
    /// libgcc's registration of `.eh_frame` data for code no loaded
    /// object describes (libgcc_s, which the shim links for Rust's own
    /// unwinding).
    fn __register_frame(begin: *const u8);
}

static REGISTERED: std::sync::Once = std::sync::Once::new();

/// libgcc_s's writable data, `[start, end)`, once the site is registered
/// (0, 0 before).
static UNWINDER_DATA: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

/// Makes the site known to the unwinder, once per process.
fn register() {
    REGISTERED.call_once(|| {
        if let Some((start, end)) = libgcc_data() {
            UNWINDER_DATA[0].store(start, Ordering::Relaxed);
            UNWINDER_DATA[1].store(end, Ordering::Release);
        }
        // SAFETY: EH_FRAME is well-formed `.eh_frame` data ending in a
        // zero terminator, static, so it outlives the registration.
        unsafe { __register_frame(EH_FRAME.0.as_ptr()) };
    });
}

/// Whether `object` (a mutex or once-control) is libgcc's own, taken by
/// the unwinder, and the site is registered.
#[inline]
pub fn is_unwinder_state(object: u64) -> bool {
    let end = UNWINDER_DATA[1].load(Ordering::Acquire);
    end != 0 && object >= UNWINDER_DATA[0].load(Ordering::Relaxed) && object < end
}

/// The span of libgcc_s's writable segments, from the loader's list (no
/// system call).
fn libgcc_data() -> Option<(u64, u64)> {
    unsafe extern "C" fn visit(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        out: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: the loader passes a valid info for the duration of the
        // call, and `out` is the span below.
        let (info, span) = unsafe { (&*info, &mut *out.cast::<(u64, u64)>()) };
        if info.dlpi_name.is_null() {
            return 0;
        }
        // SAFETY: a loaded object's name, NUL-terminated.
        let name = unsafe { std::ffi::CStr::from_ptr(info.dlpi_name) };
        if !name.to_bytes().windows(11).any(|w| w == b"libgcc_s.so") {
            return 0;
        }
        for i in 0..usize::from(info.dlpi_phnum) {
            // SAFETY: dlpi_phdr holds dlpi_phnum headers.
            let ph = unsafe { &*info.dlpi_phdr.add(i) };
            if ph.p_type == libc::PT_LOAD && ph.p_flags & libc::PF_W != 0 {
                let start = info.dlpi_addr + ph.p_vaddr;
                let end = start + ph.p_memsz;
                *span = if span.1 == 0 {
                    (start, end)
                } else {
                    (span.0.min(start), span.1.max(end))
                };
            }
        }
        1
    }
    let mut span = (0u64, 0u64);
    // SAFETY: `visit` matches dl_iterate_phdr's callback and only writes
    // `span`, which outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(visit), (&mut span as *mut (u64, u64)).cast()) };
    (span.1 != 0).then_some(span)
}

#[no_mangle]
pub unsafe extern "C" fn pthread_cancel(thread: libc::pthread_t) -> std::ffi::c_int {
    register();
    match crate::real::pthread_cancel() {
        // SAFETY: forwards the caller's argument under the same contract.
        Some(cancel) => unsafe { cancel(thread) },
        None => libc::ENOSYS,
    }
}
