//! The rdtsc trap in replay, as the recorder left it (see
//! `rrc_interposer::RdtscScanner` and the shim's `tsc`): the shim's
//! question patches the process's rdtsc when the recorder did, and the
//! program's own `PR_SET_TSC` puts the patches back and makes rdtsc trap
//! for real in its thread.

use std::sync::atomic::Ordering;

use nix::unistd::Pid;
use rrc_interposer::{RdtscScan, SyscallRegs, Tracee};
use rrc_synclog::syscallbuf::{TSC_ASK, TSC_FREE_NO_VDSO};
use rrc_trace::{SyscallRecord, ThreadId};

use super::exit::ExitCheck;
use super::{diverged, Replayer, Res};
use crate::divergence::{describe_record, Expected, Observed};

impl Replayer {
    /// A matched `prctl(PR_SET_TSC)` at `regs`: `Some` when it was
    /// replayed here, `None` when it is replayed as any other call (the
    /// shim's question is emulated, once its patches are in place).
    pub(super) fn rdtsc_prctl(
        &mut self,
        pid: Pid,
        thread: ThreadId,
        regs: &mut SyscallRegs,
        record: &SyscallRecord,
    ) -> Option<Res> {
        let (nr, args) = (regs.nr(), regs.args());
        if nr != libc::SYS_prctl || args[0] != libc::PR_SET_TSC as u64 {
            return None;
        }
        if args[2] == TSC_ASK {
            let free = record.ret >= TSC_FREE_NO_VDSO;
            if free && matches!(self.rdtsc.patch(pid), RdtscScan::Found(_)) {
                let expected = Expected::Next(Some(describe_record(record)));
                let observed = Observed::Text("code whose rdtsc cannot be patched".into());
                return Some(diverged(thread, expected, observed));
            }
            return None;
        }
        if record.ret != 0 {
            return None;
        }
        // The recorder kept the program's mode virtually, put back what it
        // had patched and made rdtsc trap for real in the thread, whatever
        // the shim had done: so does replay, or the rdtsc it recorded would
        // run untrapped here.
        self.rdtsc.unpatch(pid);
        self.log.header().own_tsc_mode.store(1, Ordering::SeqCst);
        let mut made = args;
        made[1] = libc::PR_TSC_SIGSEGV as u64;
        regs.set_args(&made);
        if let Err(e) = Tracee::new(pid).set_regs(regs, "make rdtsc trap at PR_SET_TSC") {
            return Some(Err(e.into()));
        }
        Some(self.run_to_exit(pid, record.clone(), args, ExitCheck::Executed))
    }
}
