//! The seccomp-bpf filter: trap by default, so a syscall rrc does not know
//! is seen (and reported) rather than silently run; let through only the
//! calls that build process state deterministically.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::{model, InterposeError, Result};

/// Builds the filter installed in the program just before `exec`.
pub fn build_filter() -> Result<BpfProgram> {
    let err = |e: &dyn std::fmt::Display| InterposeError::Filter(e.to_string());
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    let mut nr = 0i64;
    while nr < 1024 {
        if model::runs_untrapped(nr) {
            rules.insert(nr, Vec::new());
        }
        nr += 1;
    }
    // Anonymous mappings run untrapped; mapping a descriptor traps so that
    // replay can check the descriptor still refers to the same file.
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
    rules.insert(libc::SYS_mmap, vec![anon_fd, anon_flag]);
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
}
