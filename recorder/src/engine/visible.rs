//! What the program would see of rrc's own set-up, answered as if rrc
//! were not there: rrc traps rdtsc (`PR_TSC_SIGSEGV`) and installs a
//! seccomp filter, but `prctl(PR_GET_TSC)` and `prctl(PR_GET_SECCOMP)`
//! report the program's own settings, and `prctl(PR_SET_TSC)` sets the
//! program's mode without turning rrc's trapping off. Replay emulates
//! these calls from the trace, so only recording needs this. A trapped
//! rdtsc is a SIGSEGV the kernel forces, which unblocks SIGSEGV: the
//! blocked state is noted here and restored (in `tsc`), as replay does.

use anyhow::Result;
use nix::unistd::Pid;
use rrc_interposer::{Tracee, TraceeMemory};

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
    /// program's mode and asks the kernel for rrc's own (which it has
    /// already), so rdtsc stays trapped. The call's recorded arguments
    /// stay the program's.
    pub(super) fn hide_rrc_at_entry(&mut self, pid: Pid, call: &InFlight) -> Result<()> {
        if !is_prctl(call, libc::PR_SET_TSC) {
            return Ok(());
        }
        let Some(mode) = tsc_mode(call.args[1]) else {
            // The kernel refuses it as it would natively (EINVAL).
            return Ok(());
        };
        if let Some(t) = self.threads.get_mut(&pid) {
            t.tsc_mode = mode;
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
        let blocked = Tracee::new(pid).segv_blocked().unwrap_or(false);
        if let Some(t) = self.threads.get_mut(&pid) {
            t.segv_blocked = blocked;
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
