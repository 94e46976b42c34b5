//! Hiding the vDSO: without it glibc makes real syscalls for
//! clock_gettime, gettimeofday, time and getcpu, which the filter traps.

use crate::{Result, Tracee, TraceeMemory};

const AT_NULL: u64 = 0;
const AT_IGNORE: u64 = 1;
const AT_SYSINFO_EHDR: u64 = 33;

/// At the exec stop, rewrites `AT_SYSINFO_EHDR` in the new program's
/// auxiliary vector to `AT_IGNORE`. The stack is then
/// `argc, argv[], NULL, envp[], NULL, auxv pairs`. Returns whether the
/// entry was found.
pub fn hide_vdso(tracee: &Tracee) -> Result<bool> {
    let regs = tracee.regs("read registers at exec stop")?;
    let sp = regs.regs.rsp;
    let argc = tracee.read_u64(sp)?;
    let mut p = sp + 8 * (argc + 2);
    // Skip the environment.
    while tracee.read_u64(p)? != 0 {
        p += 8;
    }
    p += 8;
    loop {
        let kind = tracee.read_u64(p)?;
        if kind == AT_NULL {
            return Ok(false);
        }
        if kind == AT_SYSINFO_EHDR {
            tracee.write(p, &AT_IGNORE.to_le_bytes())?;
            return Ok(true);
        }
        p += 16;
    }
}
