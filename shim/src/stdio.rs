//! stdio's `FILE` locks as sync objects. glibc takes a stream's lock
//! inside each stdio function, where no interposition sees it, so threads
//! that print concurrently interleave (and fill shared buffers) in an
//! order rrc did not record. The C wrappers in `csrc/wrappers.c` take the
//! same recursive lock first, through these functions: the outermost
//! acquisition by a thread is ordered like a mutex's (op `STDIO_LOCK`, the
//! object is the `FILE *`); nested ones (a stdio call under `flockfile`,
//! or `printf` calling `vfprintf`) are plain re-entries.

use std::cell::Cell;
use std::ffi::{c_int, c_void};

use rrc_synclog::ops;

use crate::order::{self, Acquisition};
use crate::real;

/// Streams one thread can hold at once and still have tracked; beyond
/// that, acquisitions pass through unordered (never seen in practice).
const HELD_SLOTS: usize = 8;

thread_local! {
    /// The streams this thread holds, with how many times.
    static HELD: Cell<[(usize, u32); HELD_SLOTS]> = const { Cell::new([(0, 0); HELD_SLOTS]) };
}

/// How many times this thread holds `fp`.
fn depth(fp: usize) -> u32 {
    HELD.with(|h| {
        h.get()
            .iter()
            .find(|(f, _)| *f == fp)
            .map_or(0, |(_, d)| *d)
    })
}

/// Adds `delta` to this thread's count for `fp`; false when no slot was
/// free for a new stream.
fn adjust(fp: usize, delta: i32) -> bool {
    HELD.with(|h| {
        let mut held = h.get();
        let slot = held
            .iter()
            .position(|(f, d)| *f == fp && *d > 0)
            .or_else(|| held.iter().position(|(_, d)| *d == 0));
        let Some(i) = slot else {
            return false;
        };
        let d = held[i].1.saturating_add_signed(delta);
        held[i] = (if d == 0 { 0 } else { fp }, d);
        h.set(held);
        true
    })
}

fn real_lock(fp: *mut c_void) {
    if let Some(lock) = real::flockfile() {
        // SAFETY: the program passed `fp` to a stdio function, which
        // requires a valid stream; flockfile's contract is the same.
        unsafe { lock(fp) };
    }
}

#[no_mangle]
pub unsafe extern "C" fn rrc_stdio_lock(fp: *mut c_void) {
    let key = fp as usize;
    if depth(key) > 0 || !adjust(key, 0) {
        real_lock(fp);
        adjust(key, 1);
        return;
    }
    order::acquire(
        ops::STDIO_LOCK,
        key as u64,
        Acquisition::ZeroOnly,
        || {
            real_lock(fp);
            0
        },
        || real_lock(fp),
    );
    adjust(key, 1);
}

/// The list of open streams, as an object: `fflush(NULL)` walks it (in
/// `csrc/wrappers.c`) taking each stream's lock in the recorded order,
/// and two walks at once would each hold glibc's list lock, which rrc
/// does not see, while waiting for a turn the other must take first.
static STREAM_LIST: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Starts a walk of the stream list at its recorded turn: 1 when it holds
/// the list (0 only for a recording in which taking it failed, which a
/// walk never does; nothing is held then).
#[no_mangle]
pub extern "C" fn rrc_stream_list_enter() -> c_int {
    c_int::from(order::enter_recorded_order(ops::LIBC_STATE, &STREAM_LIST))
}

/// Ends a walk [`rrc_stream_list_enter`] started.
#[no_mangle]
pub extern "C" fn rrc_stream_list_leave() {
    order::leave_recorded_order(&STREAM_LIST);
}

#[no_mangle]
pub unsafe extern "C" fn rrc_stdio_unlock(fp: *mut c_void) {
    if let Some(unlock) = real::funlockfile() {
        // SAFETY: this thread holds `fp` (funlockfile's contract, which
        // the program's own call or our wrapper's pairing guarantees).
        unsafe { unlock(fp) };
    }
    adjust(fp as usize, -1);
}

#[no_mangle]
pub unsafe extern "C" fn rrc_stdio_trylock(fp: *mut c_void) -> c_int {
    let Some(trylock) = real::ftrylockfile() else {
        return -1;
    };
    let key = fp as usize;
    let attempt = || {
        // SAFETY: as for flockfile.
        unsafe { trylock(fp) }
    };
    let result = if depth(key) > 0 {
        attempt()
    } else {
        order::acquire(
            ops::STDIO_LOCK,
            key as u64,
            Acquisition::ZeroOnly,
            attempt,
            || real_lock(fp),
        )
    };
    if result == 0 {
        adjust(key, 1);
    }
    result
}

extern "C" {
    fn rrc_c_flush_at_exit();
}

extern "C" fn flush_at_exit() {
    // SAFETY: the C function takes no arguments and walks glibc's own
    // stream list under its lock.
    unsafe { rrc_c_flush_at_exit() }
}

/// Registers the ordered flush of writable streams that runs at exit
/// after the program's own atexit handlers (see `rrc_c_flush_at_exit`).
pub fn flush_at_exit_in_order() {
    // SAFETY: registers a function that lives as long as the process.
    // A failed registration (no memory) leaves glibc's unordered flush.
    unsafe { libc::atexit(flush_at_exit) };
}

/// Exports each stdio wrapper under its libc name as one jump to the C
/// wrapper `rrc_c_NAME`: a jump keeps every register and the stack as the
/// caller set them, variadic arguments included.
macro_rules! trampolines {
    ($($name:ident => $target:ident;)*) => {
        extern "C" {
            $(fn $target();)*
        }
        $(
            #[no_mangle]
            #[unsafe(naked)]
            pub unsafe extern "C" fn $name() {
                core::arch::naked_asm!("jmp {}", sym $target)
            }
        )*
    };
}

trampolines! {
    vfprintf => rrc_c_vfprintf;
    vprintf => rrc_c_vprintf;
    __vfprintf_chk => rrc_c___vfprintf_chk;
    __vprintf_chk => rrc_c___vprintf_chk;
    printf => rrc_c_printf;
    fprintf => rrc_c_fprintf;
    __printf_chk => rrc_c___printf_chk;
    __fprintf_chk => rrc_c___fprintf_chk;
    fputs => rrc_c_fputs;
    puts => rrc_c_puts;
    fputc => rrc_c_fputc;
    putc => rrc_c_putc;
    _IO_putc => rrc_c__IO_putc;
    putchar => rrc_c_putchar;
    fwrite => rrc_c_fwrite;
    fflush => rrc_c_fflush;
    fgets => rrc_c_fgets;
    __fgets_chk => rrc_c___fgets_chk;
    fgetc => rrc_c_fgetc;
    getc => rrc_c_getc;
    _IO_getc => rrc_c__IO_getc;
    getchar => rrc_c_getchar;
    ungetc => rrc_c_ungetc;
    fread => rrc_c_fread;
    __fread_chk => rrc_c___fread_chk;
    getline => rrc_c_getline;
    getdelim => rrc_c_getdelim;
    __getdelim => rrc_c___getdelim;
    vfscanf => rrc_c_vfscanf;
    __isoc99_vfscanf => rrc_c___isoc99_vfscanf;
    vscanf => rrc_c_vscanf;
    __isoc99_vscanf => rrc_c___isoc99_vscanf;
    scanf => rrc_c_scanf;
    fscanf => rrc_c_fscanf;
    __isoc99_scanf => rrc_c___isoc99_scanf;
    __isoc99_fscanf => rrc_c___isoc99_fscanf;
    flockfile => rrc_c_flockfile;
    funlockfile => rrc_c_funlockfile;
    ftrylockfile => rrc_c_ftrylockfile;
    syscall => rrc_c_syscall;
    syslog => rrc_c_syslog;
    __syslog_chk => rrc_c___syslog_chk;
    vsyslog => rrc_c_vsyslog;
    __vsyslog_chk => rrc_c___vsyslog_chk;
    openlog => rrc_c_openlog;
    closelog => rrc_c_closelog;
}
