//! Registers and memory of one ptrace-stopped thread.

use std::borrow::Cow;
use std::io::IoSliceMut;

use nix::errno::Errno;
use nix::sys::uio::{process_vm_readv, process_vm_writev, RemoteIoVec};
use nix::unistd::Pid;

use crate::{InterposeError, Result};

/// Reading (and writing) the memory of a stopped tracee.
pub trait TraceeMemory {
    fn read(&self, addr: u64, len: usize) -> Result<Vec<u8>>;
    fn write(&self, addr: u64, data: &[u8]) -> Result<()>;

    /// The thread, when this is a live tracee's memory: the model reads
    /// what a few outputs' sizes depend on from its /proc files.
    fn tid(&self) -> Option<i32> {
        None
    }

    /// [`Self::read`], borrowed where the memory holds a copy already (the
    /// fast path's snapshots): no allocation per region of a busy thread's
    /// buffered calls.
    fn bytes(&self, addr: u64, len: usize) -> Result<Cow<'_, [u8]>> {
        self.read(addr, len).map(Cow::Owned)
    }

    fn read_u64(&self, addr: u64) -> Result<u64> {
        let b = self.bytes(addr, 8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(&b);
        Ok(u64::from_le_bytes(a))
    }

    fn read_u32(&self, addr: u64) -> Result<u32> {
        let b = self.bytes(addr, 4)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(&b);
        Ok(u32::from_le_bytes(a))
    }
}

/// The signals a trapped rdtsc raises (SIGSEGV under `PR_TSC_SIGSEGV`,
/// SIGILL where rrc patched it: see `rdtsc_scan`), as signal mask bits.
const TSC_FAULT_BITS: u64 = (1 << (libc::SIGSEGV - 1)) | (1 << (libc::SIGILL - 1));

/// One thread of the traced program, identified by its kernel tid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tracee {
    pub tid: Pid,
}

/// The syscall view of a thread's registers.
#[derive(Clone, Copy, Debug)]
pub struct SyscallRegs {
    pub regs: libc::user_regs_struct,
}

impl SyscallRegs {
    pub fn nr(&self) -> i64 {
        self.regs.orig_rax as i64
    }

    pub fn args(&self) -> [u64; 6] {
        let r = &self.regs;
        [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9]
    }

    pub fn ret(&self) -> i64 {
        self.regs.rax as i64
    }

    pub fn set_args(&mut self, a: &[u64; 6]) {
        let r = &mut self.regs;
        r.rdi = a[0];
        r.rsi = a[1];
        r.rdx = a[2];
        r.r10 = a[3];
        r.r8 = a[4];
        r.r9 = a[5];
    }
}

impl Tracee {
    pub fn new(tid: Pid) -> Self {
        Tracee { tid }
    }

    fn err(&self, op: &'static str, errno: Errno) -> InterposeError {
        InterposeError::Tracee {
            tid: self.tid.as_raw(),
            op,
            errno,
        }
    }

    pub fn regs(&self, op: &'static str) -> Result<SyscallRegs> {
        nix::sys::ptrace::getregs(self.tid)
            .map(|regs| SyscallRegs { regs })
            .map_err(|e| self.err(op, e))
    }

    pub fn set_regs(&self, regs: &SyscallRegs, op: &'static str) -> Result<()> {
        nix::sys::ptrace::setregs(self.tid, regs.regs).map_err(|e| self.err(op, e))
    }

    /// Resumes until the next seccomp stop, event or signal.
    pub fn resume(&self, signal: i32, op: &'static str) -> Result<()> {
        self.ptrace_restart(libc::PTRACE_CONT, signal, op)
    }

    /// Resumes until the current syscall's exit (from a seccomp stop).
    pub fn resume_to_syscall_exit(&self, op: &'static str) -> Result<()> {
        self.ptrace_restart(libc::PTRACE_SYSCALL, 0, op)
    }

    fn ptrace_restart(&self, req: libc::c_uint, signal: i32, op: &'static str) -> Result<()> {
        // SAFETY: PTRACE_CONT/PTRACE_SYSCALL take no pointers; data is the
        // signal number to deliver.
        let r = unsafe {
            libc::ptrace(
                req,
                self.tid.as_raw(),
                std::ptr::null_mut::<libc::c_void>(),
                signal as libc::c_long,
            )
        };
        if r < 0 {
            return Err(self.err(op, Errno::last()));
        }
        Ok(())
    }

    /// PTRACE_GETEVENTMSG: the new tid at a clone/fork event stop.
    pub fn event_message(&self, op: &'static str) -> Result<u64> {
        nix::sys::ptrace::getevent(self.tid)
            .map(|v| v as u64)
            .map_err(|e| self.err(op, e))
    }

    /// Reads a NUL-terminated string (without the NUL), up to `max` bytes.
    pub fn read_cstring(&self, addr: u64, max: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut at = addr;
        while out.len() < max {
            // Stop at page ends so a string near unmapped memory still reads.
            let to_page_end = 4096 - (at as usize % 4096);
            let chunk = self.read(at, to_page_end.min(256))?;
            if let Some(p) = chunk.iter().position(|b| *b == 0) {
                out.extend_from_slice(&chunk[..p]);
                return Ok(out);
            }
            out.extend_from_slice(&chunk);
            at += chunk.len() as u64;
        }
        Ok(out)
    }

    fn mem_err(&self, op: &'static str, addr: u64, len: usize, errno: Errno) -> InterposeError {
        InterposeError::Memory {
            tid: self.tid.as_raw(),
            op,
            addr,
            len,
            errno,
        }
    }

    /// Falls back to /proc/TID/mem, which also reaches pages the tracee
    /// cannot write itself.
    fn proc_mem(&self, write: Option<&[u8]>, addr: u64, len: usize) -> Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let path = format!("/proc/{}/mem", self.tid);
        let op = if write.is_some() {
            "write memory"
        } else {
            "read memory"
        };
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(write.is_some())
            .open(&path)
            .map_err(|e| self.mem_err(op, addr, len, io_errno(&e)))?;
        match write {
            Some(data) => {
                f.write_all_at(data, addr)
                    .map_err(|e| self.mem_err(op, addr, len, io_errno(&e)))?;
                Ok(Vec::new())
            }
            None => {
                let mut buf = vec![0u8; len];
                f.read_exact_at(&mut buf, addr)
                    .map_err(|e| self.mem_err(op, addr, len, io_errno(&e)))?;
                Ok(buf)
            }
        }
    }
}

fn io_errno(e: &std::io::Error) -> Errno {
    e.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
}

impl TraceeMemory for Tracee {
    fn tid(&self) -> Option<i32> {
        Some(self.tid.as_raw())
    }

    fn read(&self, addr: u64, len: usize) -> Result<Vec<u8>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; len];
        let remote = [RemoteIoVec {
            base: addr as usize,
            len,
        }];
        match process_vm_readv(self.tid, &mut [IoSliceMut::new(&mut buf)], &remote) {
            Ok(n) if n == len => Ok(buf),
            Ok(_) | Err(Errno::EFAULT) => self.proc_mem(None, addr, len),
            Err(e) => Err(self.mem_err("read memory", addr, len, e)),
        }
    }

    fn write(&self, addr: u64, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let remote = [RemoteIoVec {
            base: addr as usize,
            len: data.len(),
        }];
        match process_vm_writev(self.tid, &[std::io::IoSlice::new(data)], &remote) {
            Ok(n) if n == data.len() => Ok(()),
            Ok(_) | Err(Errno::EFAULT) => self.proc_mem(Some(data), addr, data.len()).map(|_| ()),
            Err(e) => Err(self.mem_err("write memory", addr, data.len(), e)),
        }
    }
}

/// A time-stamp counter instruction at a thread's instruction pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TscInstruction {
    Rdtsc,
    Rdtscp,
}

impl TscInstruction {
    /// Bytes of machine code.
    pub fn encoded_len(self) -> u64 {
        match self {
            TscInstruction::Rdtsc => 2,
            TscInstruction::Rdtscp => 3,
        }
    }
}

impl Tracee {
    /// The rdtsc/rdtscp the thread faulted on (PR_TSC_SIGSEGV), or the
    /// one rrc patched into a fault (see `rdtsc_scan`), if any.
    pub fn tsc_instruction_at(&self, rip: u64) -> Option<TscInstruction> {
        let code = self.read(rip, 3).ok()?;
        match code.as_slice() {
            [0x0f, 0x31, _] => Some(TscInstruction::Rdtsc),
            [0x0f, 0x01, 0xf9] => Some(TscInstruction::Rdtscp),
            [0x0f, 0x0b, _] => crate::rdtsc_scan::patched_at(self.tid, rip),
            _ => None,
        }
    }

    /// Completes a trapped rdtsc/rdtscp with the given result.
    pub fn complete_tsc(
        &self,
        regs: &mut SyscallRegs,
        insn: TscInstruction,
        value: u64,
        aux: Option<u32>,
    ) -> Result<()> {
        regs.regs.rax = value & 0xffff_ffff;
        regs.regs.rdx = value >> 32;
        if let (TscInstruction::Rdtscp, Some(aux)) = (insn, aux) {
            regs.regs.rcx = aux as u64;
        }
        regs.regs.rip += insn.encoded_len();
        self.set_regs(regs, "complete a trapped rdtsc")
    }

    /// The thread's blocked signal mask (bit `sig - 1` for each signal).
    pub fn signal_mask(&self) -> Result<u64> {
        let mut mask = 0u64;
        // SAFETY: PTRACE_GETSIGMASK writes 8 bytes (the size passed) to
        // `mask`, which lives across the call.
        let r = unsafe {
            libc::ptrace(
                libc::PTRACE_GETSIGMASK,
                self.tid.as_raw(),
                std::mem::size_of::<u64>(),
                &mut mask as *mut u64,
            )
        };
        if r < 0 {
            return Err(self.err("read the signal mask", Errno::last()));
        }
        Ok(mask)
    }

    /// Sets the thread's blocked signal mask.
    pub fn set_signal_mask(&self, mask: u64) -> Result<()> {
        // SAFETY: PTRACE_SETSIGMASK reads 8 bytes (the size passed) from
        // `mask`, which lives across the call.
        let r = unsafe {
            libc::ptrace(
                libc::PTRACE_SETSIGMASK,
                self.tid.as_raw(),
                std::mem::size_of::<u64>(),
                &mask as *const u64,
            )
        };
        if r < 0 {
            return Err(self.err("set the signal mask", Errno::last()));
        }
        Ok(())
    }

    /// Which of SIGSEGV and SIGILL are blocked (mask bits): a trapped
    /// rdtsc (a forced SIGSEGV, or SIGILL where patched) unblocks its
    /// signal, so the tracers note them and block it again.
    pub fn segv_blocked(&self) -> Result<u64> {
        Ok(self.signal_mask()? & TSC_FAULT_BITS)
    }

    /// After a trapped rdtsc: the signals of `was_blocked` blocked again,
    /// as before the kernel forced one's delivery.
    pub fn reblock_segv(&self, was_blocked: u64) -> Result<()> {
        if was_blocked == 0 {
            return Ok(());
        }
        let mask = self.signal_mask()?;
        if mask & was_blocked != was_blocked {
            self.set_signal_mask(mask | was_blocked)?;
        }
        Ok(())
    }

    /// Makes the thread, stopped at the seccomp stop of a syscall, go back
    /// to its `syscall` instruction instead of running the call: a signal
    /// queued now is delivered first, and after the handler the call runs
    /// again (traps again). The same effect as the kernel's own restart.
    pub fn rewind_syscall(&self, regs: &mut SyscallRegs) -> Result<()> {
        let nr = regs.regs.orig_rax;
        regs.regs.orig_rax = u64::MAX;
        regs.regs.rax = nr;
        regs.regs.rip -= 2;
        self.set_regs(regs, "rewind a syscall to deliver a signal first")
    }

    /// Makes the thread, stopped at the seccomp stop of a syscall, skip it:
    /// the call returns `ret` without running.
    pub fn skip_syscall(&self, regs: &mut SyscallRegs, ret: i64) -> Result<()> {
        regs.regs.orig_rax = u64::MAX;
        regs.regs.rax = ret as u64;
        self.set_regs(regs, "skip a syscall")
    }

    /// Queues a signal for this thread (tgkill from the tracer).
    pub fn queue_signal(&self, tgid: Pid, signal: i32) -> Result<()> {
        // SAFETY: tgkill takes plain integers.
        let r =
            unsafe { libc::syscall(libc::SYS_tgkill, tgid.as_raw(), self.tid.as_raw(), signal) };
        if r < 0 {
            return Err(self.err("queue a signal", Errno::last()));
        }
        Ok(())
    }

    /// The pending signal's siginfo, raw.
    pub fn siginfo_bytes(&self) -> Option<Vec<u8>> {
        nix::sys::ptrace::getsiginfo(self.tid)
            .ok()
            .map(|si| siginfo_to_bytes(&si))
    }

    /// Replaces the pending signal's siginfo (so a handler sees what it saw
    /// when recorded, not the tracer's tgkill).
    pub fn set_siginfo_bytes(&self, bytes: &[u8]) -> Result<()> {
        if bytes.len() != std::mem::size_of::<libc::siginfo_t>() {
            return Ok(());
        }
        // SAFETY: bytes has exactly the size of siginfo_t, which is plain
        // data valid for any bit pattern; read_unaligned copes with alignment.
        let si: libc::siginfo_t =
            unsafe { std::ptr::read_unaligned(bytes.as_ptr() as *const libc::siginfo_t) };
        nix::sys::ptrace::setsiginfo(self.tid, &si).map_err(|e| self.err("set siginfo", e))
    }
}

/// A siginfo as the raw bytes a trace keeps.
pub fn siginfo_to_bytes(si: &libc::siginfo_t) -> Vec<u8> {
    // SAFETY: siginfo_t is plain data of the given size, borrowed for the copy.
    let bytes = unsafe {
        std::slice::from_raw_parts(
            si as *const libc::siginfo_t as *const u8,
            std::mem::size_of::<libc::siginfo_t>(),
        )
    };
    bytes.to_vec()
}
