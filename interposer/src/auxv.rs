//! The new program's auxiliary vector, at the exec stop.
//!
//! Hiding the vDSO: without it glibc makes real syscalls for
//! clock_gettime, gettimeofday, time and getcpu, which the filter traps.
//! The 16 bytes at `AT_RANDOM` are an input no call shows (the kernel
//! fills them at exec; glibc seeds its stack canary from them, Go its
//! runtime): the recorder keeps them and replay writes them back.

use crate::{Result, Tracee, TraceeMemory};

const AT_NULL: u64 = 0;
const AT_IGNORE: u64 = 1;
const AT_RANDOM: u64 = 25;
const AT_SYSINFO_EHDR: u64 = 33;

/// How many bytes `AT_RANDOM` points at.
pub const AT_RANDOM_LEN: usize = 16;

/// At the exec stop, rewrites `AT_SYSINFO_EHDR` in the new program's
/// auxiliary vector to `AT_IGNORE`, and returns where `AT_RANDOM` points
/// (the program's random bytes), if it is there. The stack is then
/// `argc, argv[], NULL, envp[], NULL, auxv pairs`.
pub fn prepare_exec(tracee: &Tracee) -> Result<Option<u64>> {
    let regs = tracee.regs("read registers at exec stop")?;
    let sp = regs.regs.rsp;
    let argc = tracee.read_u64(sp)?;
    let mut p = sp + 8 * (argc + 2);
    // Skip the environment.
    while tracee.read_u64(p)? != 0 {
        p += 8;
    }
    p += 8;
    let mut random_at = None;
    // The kernel writes a few dozen pairs; the bound keeps a corrupt
    // stack from walking on.
    for _ in 0..256 {
        match tracee.read_u64(p)? {
            AT_NULL => break,
            AT_SYSINFO_EHDR => tracee.write(p, &AT_IGNORE.to_le_bytes())?,
            AT_RANDOM => random_at = Some(tracee.read_u64(p + 8)?),
            _ => {}
        }
        p += 16;
    }
    Ok(random_at)
}
