//! The seccomp-bpf filter: trap by default, so a syscall rrc does not know
//! is seen (and reported) rather than silently run; let through only the
//! calls that build process state deterministically.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::model::{self, ArgIs, Filter};
use crate::{InterposeError, Result};

fn filter_err(e: &dyn std::fmt::Display) -> InterposeError {
    InterposeError::Filter(e.to_string())
}

/// mmap runs untrapped for anonymous mappings (fd -1, or MAP_ANONYMOUS);
/// mapping a descriptor traps so that replay can check the descriptor
/// still refers to the same file.
fn anonymous_mapping_rules() -> Result<Vec<SeccompRule>> {
    let err = filter_err;
    let anon_fd = SeccompRule::new(vec![SeccompCondition::new(
        4,
        SeccompCmpArgLen::Dword,
        SeccompCmpOp::Eq,
        0xffff_ffff,
    )
    .map_err(|e| err(&e))?])
    .map_err(|e| err(&e))?;
    let anon_flag = SeccompRule::new(vec![SeccompCondition::new(
        3,
        SeccompCmpArgLen::Dword,
        SeccompCmpOp::MaskedEq(libc::MAP_ANONYMOUS as u64),
        libc::MAP_ANONYMOUS as u64,
    )
    .map_err(|e| err(&e))?])
    .map_err(|e| err(&e))?;
    Ok(vec![anon_fd, anon_flag])
}

/// A call that runs untrapped only when all its conditions hold (it acts
/// on the caller): one rule, its conditions and-ed.
fn conditional_rule(conditions: &[ArgIs]) -> Result<Vec<SeccompRule>> {
    let err = filter_err;
    let conditions = conditions
        .iter()
        .map(|c| {
            let (arg, op, value) = match *c {
                ArgIs::Eq(arg, v) => (arg, SeccompCmpOp::Eq, v),
                ArgIs::Ne(arg, v) => (arg, SeccompCmpOp::Ne, v),
            };
            SeccompCondition::new(arg as u8, SeccompCmpArgLen::Dword, op, u64::from(value))
                .map_err(|e| err(&e))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(vec![SeccompRule::new(conditions).map_err(|e| err(&e))?])
}

/// seccompiler kills the process (SECCOMP_RET_KILL_PROCESS) at a call of
/// another architecture's ABI: a 64-bit program's `int 0x80` (the i386
/// ABI) would die of SIGSYS with no word said. Instead the call raises
/// SIGSYS (SECCOMP_RET_TRAP), whose siginfo names the architecture: the
/// recorder sees it and says why it cannot go on.
fn trap_other_architectures(prog: &mut BpfProgram) -> Result<()> {
    const BPF_LD_W_ABS: u16 = 0x20;
    const BPF_JEQ_K: u16 = 0x15;
    const BPF_RET_K: u16 = 0x06;
    const SECCOMP_DATA_ARCH: u32 = 4;
    const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
    const SECCOMP_RET_TRAP: u32 = 0x0003_0000;
    let prelude = (prog.first(), prog.get(1), prog.get(2));
    match prelude {
        (Some(load), Some(check), Some(kill))
            if load.code == BPF_LD_W_ABS
                && load.k == SECCOMP_DATA_ARCH
                && check.code == BPF_JEQ_K
                && check.k == AUDIT_ARCH_X86_64
                && kill.code == BPF_RET_K
                && kill.k == SECCOMP_RET_KILL_PROCESS =>
        {
            prog[2].k = SECCOMP_RET_TRAP;
            Ok(())
        }
        _ => Err(InterposeError::Filter(
            "the filter does not start with the architecture check rrc expects".into(),
        )),
    }
}

/// The architecture of x86-64 system calls in seccomp data and siginfo.
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

/// Builds the filter installed in the program just before `exec`;
/// `serialized`: the program runs one thread at a time (see
/// [`Filter::AllowUnlessSerialized`]).
pub fn build_filter(serialized: bool) -> Result<BpfProgram> {
    let err = filter_err;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for row in model::rows() {
        match row.filter {
            Filter::Trap => {}
            Filter::Allow => {
                rules.insert(row.nr, Vec::new());
            }
            Filter::AllowUnlessSerialized if !serialized => {
                rules.insert(row.nr, Vec::new());
            }
            Filter::AllowUnlessSerialized => {}
            Filter::AllowAnonymous => {
                rules.insert(row.nr, anonymous_mapping_rules()?);
            }
            Filter::AllowWhen(conditions) => {
                rules.insert(row.nr, conditional_rule(conditions)?);
            }
        }
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Trace(0),
        SeccompAction::Allow,
        TargetArch::x86_64,
    )
    .map_err(|e| err(&e))?;
    let mut prog: BpfProgram = filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| err(&e))?;
    trap_other_architectures(&mut prog)?;
    Ok(prog)
}

#[cfg(test)]
mod tests {
    #[test]
    fn other_architectures_trap() {
        let prog = super::build_filter(false).expect("filter");
        assert_eq!((prog[2].code, prog[2].k), (0x06, 0x0003_0000), "ret TRAP");
    }

    #[test]
    fn filter_builds() {
        let prog = super::build_filter(false).expect("filter");
        assert!(prog.len() > 10);
        assert!(
            prog.len() < 4096,
            "BPF programs are limited to 4096 instructions"
        );
    }

    /// The filter built from the syscall table is, instruction for
    /// instruction, the one built before the table existed, but for the
    /// changes of issue 14 (the hash was taken from that build, then
    /// deliberately retaken): other architectures' calls trap instead of
    /// killing, and setpriority, prctl, sched_setaffinity and
    /// get_robust_list run untrapped only on the caller; prctl's options
    /// that show rrc's seccomp filter and rdtsc trapping are trapped.
    #[test]
    fn program_is_unchanged() {
        let prog = super::build_filter(false).expect("filter");
        let hash = prog.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, i| {
            let word = u64::from(i.code) | u64::from(i.jt) << 16 | u64::from(i.jf) << 24;
            let word = word | u64::from(i.k) << 32;
            (h ^ word).wrapping_mul(0x0100_0000_01b3)
        });
        assert_eq!((prog.len(), hash), (184, 0x2ba5_095c_7a4c_fa53));
    }
}
