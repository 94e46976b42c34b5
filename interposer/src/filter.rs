//! The seccomp-bpf filter: trap by default, so a syscall rrc does not know
//! is seen (and reported) rather than silently run; let through only the
//! calls that build process state deterministically.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::model::{self, Filter};
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

/// Builds the filter installed in the program just before `exec`.
pub fn build_filter() -> Result<BpfProgram> {
    let err = filter_err;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for row in model::rows() {
        match row.filter {
            Filter::Trap => {}
            Filter::Allow => {
                rules.insert(row.nr, Vec::new());
            }
            Filter::AllowAnonymous => {
                rules.insert(row.nr, anonymous_mapping_rules()?);
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
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| err(&e))
}

#[cfg(test)]
mod tests {
    #[test]
    fn filter_builds() {
        let prog = super::build_filter().expect("filter");
        assert!(prog.len() > 10);
        assert!(
            prog.len() < 4096,
            "BPF programs are limited to 4096 instructions"
        );
    }

    /// The filter built from the syscall table is, instruction for
    /// instruction, the one built before the table existed (the hash was
    /// taken from that build).
    #[test]
    fn program_is_unchanged() {
        let prog = super::build_filter().expect("filter");
        let hash = prog.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, i| {
            let word = u64::from(i.code) | u64::from(i.jt) << 16 | u64::from(i.jf) << 24;
            let word = word | u64::from(i.k) << 32;
            (h ^ word).wrapping_mul(0x0100_0000_01b3)
        });
        assert_eq!((prog.len(), hash), (168, 0x083e_cb59_1e1f_6ccb));
    }
}
