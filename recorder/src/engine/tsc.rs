//! rdtsc/rdtscp: the program runs under PR_TSC_SIGSEGV, so each one
//! faults; the tracer executes it, writes the result into the thread's
//! registers and records the value.

use anyhow::Result;
use nix::unistd::Pid;
use rrc_interposer::{Tracee, TscInstruction};
use rrc_trace::{TraceRecord, TscRecord};

use super::{Recorder, Resume};

impl Recorder {
    /// Emulates and records a trapped rdtsc/rdtscp. `None` when the fault
    /// was not one.
    pub(super) fn record_tsc(&mut self, pid: Pid) -> Result<Option<()>> {
        let tracee = Tracee::new(pid);
        let mut regs = tracee.regs("read registers at rdtsc fault")?;
        let Some(insn) = tracee.tsc_instruction_at(regs.regs.rip) else {
            return Ok(None);
        };
        let (value, aux) = read_tsc(insn);
        tracee.complete_tsc(&mut regs, insn, value, aux)?;
        let Some(t) = self.threads.get_mut(&pid) else {
            return Ok(Some(()));
        };
        tracee.reblock_segv(t.segv_blocked)?;
        let stamp = t.stamp_return(self.epoch, self.log.stamp_event());
        let thread = t.logical;
        self.emit(TraceRecord::Tsc(TscRecord {
            thread,
            index: stamp.index,
            value,
            aux,
            interval_ns: stamp.interval_ns,
            return_ns: stamp.return_ns,
            order: stamp.order,
        }))?;
        self.resume(pid, Resume::Run(0, "resume after rdtsc"))?;
        Ok(Some(()))
    }
}

fn read_tsc(insn: TscInstruction) -> (u64, Option<u32>) {
    match insn {
        // SAFETY: rdtsc/rdtscp have no preconditions in the tracer, which
        // is not itself under PR_TSC_SIGSEGV.
        TscInstruction::Rdtsc => (unsafe { core::arch::x86_64::_rdtsc() }, None),
        TscInstruction::Rdtscp => {
            let mut aux = 0u32;
            // SAFETY: as above; aux is a valid out-pointer.
            let v = unsafe { core::arch::x86_64::__rdtscp(&mut aux) };
            (v, Some(aux))
        }
    }
}
