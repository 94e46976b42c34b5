//! What the program would see of rrc's own set-up, answered as if rrc
//! were not there: rrc traps rdtsc (`PR_TSC_SIGSEGV`) and installs a
//! seccomp filter, but `prctl(PR_GET_TSC)` and `prctl(PR_GET_SECCOMP)`
//! report the program's own settings, and `prctl(PR_SET_TSC)` sets the
//! program's mode without turning rrc's trapping off. Replay emulates
//! these calls from the trace, so only recording needs this. A trapped
//! rdtsc is a SIGSEGV the kernel forces, which unblocks SIGSEGV: the
//! blocked state is noted here and restored (in `tsc`), as replay does.
//!
//! A busy thread's shim asks (after 1,000 wrapped calls) whether its trap on
//! rdtsc may end (`syscallbuf::TSC_ASK`): yes once each rdtsc the process
//! has mapped is patched to fault by itself (`rrc_interposer::
//! RdtscScanner`). The answer is the call's recorded result, so that
//! replay patches and its shim does what this one did.

use std::sync::atomic::Ordering;

use anyhow::Result;
use nix::unistd::Pid;
use rrc_interposer::{RdtscScan, Tracee, TraceeMemory};
use rrc_synclog::syscallbuf::{TSC_ASK, TSC_FREE_NO_VDSO, TSC_KEEP};

use super::syscall::InFlight;
use super::Recorder;

/// `SECCOMP_MODE_FILTER`, what PR_GET_SECCOMP returns under a filter.
const SECCOMP_MODE_FILTER: i64 = 2;
/// How many seccomp filters rrc itself installs (`spawn.rs`).
const RRC_FILTERS: u64 = 1;

/// The program's rdtsc mode as `PR_SET_TSC` takes it, if `mode` is one.
pub(super) fn tsc_mode(mode: u64) -> Option<TscMode> {
    match mode as i32 {
        libc::PR_TSC_ENABLE => Some(TscMode::Enable),
        libc::PR_TSC_SIGSEGV => Some(TscMode::Sigsegv),
        _ => None,
    }
}

/// The program's own rdtsc mode (per thread, inherited by clone and kept
/// across exec, as the kernel's).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum TscMode {
    #[default]
    Enable,
    /// The program asked for SIGSEGV on rdtsc: it gets one, recorded as a
    /// synchronous signal, instead of rrc's emulation.
    Sigsegv,
}

impl TscMode {
    fn as_prctl(self) -> i32 {
        match self {
            TscMode::Enable => libc::PR_TSC_ENABLE,
            TscMode::Sigsegv => libc::PR_TSC_SIGSEGV,
        }
    }
}

/// Whether the vDSO's clocks read the TSC themselves: with another clock
/// source they may make the system call, which would trap inside a call
/// the shim buffers.
fn vdso_reads_tsc() -> bool {
    std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
        .is_ok_and(|s| s.trim() == "tsc")
}

/// Whether `call` is the prctl option `option`.
fn is_prctl(call: &InFlight, option: i32) -> bool {
    call.nr == libc::SYS_prctl && call.args[0] as i32 == option
}

/// How many seccomp filters the thread has, from /proc (None when the
/// kernel does not say).
fn seccomp_filters(pid: Pid) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Seccomp_filters:"))
        .and_then(|n| n.trim().parse().ok())
}

impl Recorder {
    /// At the entry of `call`: `PR_SET_TSC` with a valid mode sets the
    /// program's mode and asks the kernel for rrc's own, so rdtsc traps
    /// (again, if the shim had ended the trap: patched rdtsc is put back
    /// and the shim's clocks stop using the vDSO; replay does the same).
    /// The call's recorded arguments stay the program's. The shim's
    /// `TSC_ASK` leaves the program's mode alone: it is answered at exit.
    pub(super) fn hide_rrc_at_entry(&mut self, pid: Pid, call: &InFlight) -> Result<()> {
        if !is_prctl(call, libc::PR_SET_TSC) {
            return Ok(());
        }
        let Some(mode) = tsc_mode(call.args[1]) else {
            // The kernel refuses it as it would natively (EINVAL).
            return Ok(());
        };
        if call.args[2] != TSC_ASK {
            if let Some(t) = self.threads.get_mut(&pid) {
                t.tsc_mode = mode;
            }
            self.log.header().own_tsc_mode.store(1, Ordering::SeqCst);
            // Under its own mode rdtsc faults as SIGSEGV, not as a patch's
            // SIGILL: put the instructions back (replay does too).
            if let Some(scanner) = self.rdtsc.as_ref() {
                scanner.unpatch(pid);
            }
        }
        let tracee = Tracee::new(pid);
        let mut regs = tracee.regs("read registers at PR_SET_TSC")?;
        let mut args = call.args;
        args[1] = libc::PR_TSC_SIGSEGV as u64;
        regs.set_args(&args);
        tracee.set_regs(&regs, "keep rdtsc trapped at PR_SET_TSC")?;
        Ok(())
    }

    /// At the exit of `call` (before its outputs are read): the result the
    /// program would have had without rrc.
    pub(super) fn hide_rrc_at_exit(&mut self, pid: Pid, call: &InFlight, ret: i64) -> Result<i64> {
        let tracee = Tracee::new(pid);
        if is_prctl(call, libc::PR_SET_TSC) && call.args[2] == TSC_ASK && ret == 0 {
            // The thread is still stopped: patched before it goes on.
            let answer = self.rdtsc_answer(pid);
            let mut regs = tracee.regs("read registers at the shim's rdtsc question")?;
            regs.regs.rax = answer as u64;
            tracee.set_regs(&regs, "answer the shim's rdtsc question")?;
            return Ok(answer);
        }
        if let Some(scanner) = self.rdtsc.as_ref() {
            let own_mode = &self.log.header().own_tsc_mode;
            scanner.after_call(pid, call.nr, &call.args, ret, own_mode);
        }
        if call.nr == libc::SYS_rt_sigprocmask && ret == 0 && call.args[1] != 0 {
            self.note_segv_mask(pid);
        }
        if is_prctl(call, libc::PR_GET_TSC) && ret == 0 {
            let mode = self
                .threads
                .get(&pid)
                .map(|t| t.tsc_mode)
                .unwrap_or_default();
            tracee.write(call.args[1], &mode.as_prctl().to_le_bytes())?;
        } else if is_prctl(call, libc::PR_GET_SECCOMP)
            && ret == SECCOMP_MODE_FILTER
            && seccomp_filters(pid) == Some(RRC_FILTERS)
        {
            // Only rrc's filter: the program installed none.
            let mut regs = tracee.regs("read registers at PR_GET_SECCOMP")?;
            regs.regs.rax = 0;
            tracee.set_regs(&regs, "hide rrc's filter from PR_GET_SECCOMP")?;
            return Ok(0);
        }
        Ok(ret)
    }

    /// Notes whether `pid` has SIGSEGV blocked, after an exec or a change
    /// of its mask (unreadable: not blocked, as a thread that vanished).
    pub(super) fn note_segv_mask(&mut self, pid: Pid) {
        let blocked = Tracee::new(pid).segv_blocked().unwrap_or(0);
        if let Some(t) = self.threads.get_mut(&pid) {
            t.segv_blocked = blocked;
        }
    }

    /// The answer to the shim's `TSC_ASK` for process `pid`: keep the
    /// thread trap when the program set its own rdtsc mode or has code
    /// that cannot be patched; else patch each rdtsc into a fault of its
    /// own and end the thread trap, telling where the vDSO is.
    fn rdtsc_answer(&mut self, pid: Pid) -> i64 {
        let own_mode = self
            .threads
            .get(&pid)
            .is_some_and(|t| t.tsc_mode != TscMode::Enable);
        let Some(scanner) = self.rdtsc.as_ref().filter(|_| !own_mode) else {
            return TSC_KEEP;
        };
        let started = std::time::Instant::now();
        let scan = scanner.patch(pid);
        if std::env::var_os("RRC_DEBUG").is_some() {
            eprintln!(
                "rrc: rdtsc scan of {pid} took {:?}: {scan:?}",
                started.elapsed()
            );
        }
        match scan {
            RdtscScan::Found(_) => TSC_KEEP,
            RdtscScan::Free { vdso: Some(at), .. }
                if at > TSC_FREE_NO_VDSO as u64 && vdso_reads_tsc() =>
            {
                at as i64
            }
            RdtscScan::Free { .. } => TSC_FREE_NO_VDSO,
        }
    }

    /// Whether a trapped rdtsc is the program's to take (it set
    /// `PR_TSC_SIGSEGV` itself) rather than rrc's to emulate.
    pub(super) fn program_traps_tsc(&self, pid: Pid) -> bool {
        self.threads
            .get(&pid)
            .is_some_and(|t| t.tsc_mode == TscMode::Sigsegv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_two_modes_the_kernel_knows_are_modes() {
        assert_eq!(tsc_mode(libc::PR_TSC_ENABLE as u64), Some(TscMode::Enable));
        assert_eq!(
            tsc_mode(libc::PR_TSC_SIGSEGV as u64),
            Some(TscMode::Sigsegv)
        );
        assert_eq!(tsc_mode(0), None);
        assert_eq!(tsc_mode(3), None);
        assert_eq!(TscMode::default().as_prctl(), libc::PR_TSC_ENABLE);
        assert_eq!(TscMode::Sigsegv.as_prctl(), libc::PR_TSC_SIGSEGV);
    }
}
