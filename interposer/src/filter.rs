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
use rrc_synclog::syscallbuf::{FAST_CALLS, SITE_OWN_CALLS};

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

/// `rseq` fails with ENOSYS, as on a kernel without it. A registered rseq
/// area is memory the kernel writes the current processor into, which
/// glibc's `sched_getcpu` reads without a call (jemalloc picks arenas by
/// it): an input no event would show. Without it, `sched_getcpu` makes
/// the `getcpu` call (the vDSO is hidden), which is recorded and replayed.
/// A few instructions in front of the program: seccompiler has no action
/// for one call's error return alongside its trace default.
fn refuse_rseq(prog: BpfProgram) -> BpfProgram {
    use seccompiler::sock_filter;
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    let ins = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    // seccomp_data: nr at 0, arch at 4. Anything else goes on to the
    // program (at index 5), which checks the architecture itself.
    let mut out = vec![
        ins(LD_W_ABS, 0, 0, 4),
        ins(JEQ_K, 0, 3, AUDIT_ARCH_X86_64),
        ins(LD_W_ABS, 0, 0, 0),
        ins(JEQ_K, 0, 1, libc::SYS_rseq as u32),
        ins(RET_K, 0, 0, SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
    ];
    out.extend(prog);
    out
}

/// Lets the fast path's calls through untrapped when they are made from
/// the shim's own call site (`rrc_synclog::syscallbuf`), as rr's
/// syscallbuf does: a few instructions in front of seccompiler's program
/// (which seccompiler cannot express, as it does not test the
/// instruction pointer). Anything else falls through to that program.
///
/// The call's number is tested first and the instruction pointer only for
/// `calls`: the kernel caches, per number, whether a filter allows a call
/// whatever its arguments and instruction pointer, and skips running it
/// then; a filter that read the instruction pointer for every call would
/// run in full for every untrapped call (a futex, an mprotect).
fn allow_fast_site(prog: BpfProgram, calls: &[i64]) -> Result<BpfProgram> {
    use rrc_synclog::syscallbuf::FAST_SITE_END;
    use seccompiler::sock_filter;
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const JA: u16 = 0x05;
    const RET_K: u16 = 0x06;
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    // seccomp_data: nr at 0, arch at 4, instruction_pointer at 8.
    let n = calls.len();
    // [ld nr] [jeq call -> site test]*n [ja start] [site test: 7] [start]
    let site = 1 + n + 1;
    let len = site + 7;
    let jump = |from: usize, to: usize| u8::try_from(to - from - 1).map_err(|e| filter_err(&e));
    let stmt = |code, k| sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    let jeq_else_start = |at: usize, k: u32| -> Result<sock_filter> {
        Ok(sock_filter {
            code: JEQ_K,
            jt: 0,
            jf: jump(at, len)?,
            k,
        })
    };
    let mut out = vec![stmt(LD_W_ABS, 0)];
    for (i, nr) in calls.iter().enumerate() {
        out.push(sock_filter {
            code: JEQ_K,
            jt: jump(1 + i, site)?,
            jf: 0,
            k: *nr as u32,
        });
    }
    out.push(stmt(JA, u32::from(jump(1 + n, len)?)));
    out.extend([
        stmt(LD_W_ABS, 4),
        jeq_else_start(site + 1, AUDIT_ARCH_X86_64)?,
        stmt(LD_W_ABS, 8),
        jeq_else_start(site + 3, FAST_SITE_END as u32)?,
        stmt(LD_W_ABS, 12),
        jeq_else_start(site + 5, (FAST_SITE_END >> 32) as u32)?,
        stmt(RET_K, SECCOMP_RET_ALLOW),
    ]);
    debug_assert_eq!(out.len(), len);
    out.extend(prog);
    Ok(out)
}

/// Builds the filter installed in the program just before `exec`;
/// `serialized`: the program runs one thread at a time (see
/// [`Filter::AllowUnlessSerialized`]); `fast_path`: the shim's own call
/// site makes the hot calls untrapped (the shim's own calls made there,
/// `SITE_OWN_CALLS`, are untrapped either way).
pub fn build_filter(serialized: bool, fast_path: bool) -> Result<BpfProgram> {
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
    let mut site_calls = SITE_OWN_CALLS.to_vec();
    if fast_path {
        site_calls.extend(FAST_CALLS);
    }
    prog = allow_fast_site(prog, &site_calls)?;
    Ok(refuse_rseq(prog))
}

#[cfg(test)]
mod tests {
    use rrc_synclog::syscallbuf::FAST_SITE_END;
    use seccompiler::sock_filter;

    /// Runs a classic-BPF seccomp program on (nr, arch, instruction
    /// pointer, args): the subset of BPF seccompiler and rrc emit.
    fn run(prog: &[sock_filter], nr: i64, ip: u64, args: [u64; 6]) -> u32 {
        eval(prog, nr, ip, args, false).expect("a full run always ends")
    }

    /// What the kernel's per-number cache sees: the action when the
    /// program reads only the call's number and architecture before it
    /// ends, `None` when it reads anything else.
    fn cached(prog: &[sock_filter], nr: i64) -> Option<u32> {
        eval(prog, nr, 0, [0; 6], true)
    }

    fn eval(prog: &[sock_filter], nr: i64, ip: u64, args: [u64; 6], nr_only: bool) -> Option<u32> {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&(nr as u32).to_le_bytes());
        data[4..8].copy_from_slice(&super::AUDIT_ARCH_X86_64.to_le_bytes());
        data[8..16].copy_from_slice(&ip.to_le_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        let (mut acc, mut pc) = (0u32, 0usize);
        loop {
            let ins = &prog[pc];
            pc += 1;
            match ins.code {
                0x20 => {
                    let k = ins.k as usize;
                    if nr_only && k >= 8 {
                        return None;
                    }
                    acc = u32::from_le_bytes(data[k..k + 4].try_into().expect("4 bytes"));
                }
                0x06 => return Some(ins.k),
                0x05 => pc += ins.k as usize,
                0x15 => pc += usize::from(if acc == ins.k { ins.jt } else { ins.jf }),
                0x35 => pc += usize::from(if acc >= ins.k { ins.jt } else { ins.jf }),
                0x25 => pc += usize::from(if acc > ins.k { ins.jt } else { ins.jf }),
                0x45 => pc += usize::from(if acc & ins.k != 0 { ins.jt } else { ins.jf }),
                0x54 => acc &= ins.k,
                other => panic!("instruction {other:#x} not modelled"),
            }
        }
    }

    const ALLOW: u32 = 0x7fff_0000;
    const TRACE: u32 = 0x7ff0_0000;

    #[test]
    fn the_shims_call_site_makes_only_the_fast_calls_untrapped() {
        let prog = super::build_filter(false, true).expect("filter");
        let args = [3, 0x1000, 10, 0, 0, 0];
        assert_eq!(run(&prog, libc::SYS_read, FAST_SITE_END, args), ALLOW);
        assert_eq!(
            run(&prog, libc::SYS_clock_gettime, FAST_SITE_END, args),
            ALLOW
        );
        // The same call from anywhere else traps, as without the fast path.
        assert_eq!(run(&prog, libc::SYS_read, 0x7fff_1234_5678, args), TRACE);
        assert_eq!(
            run(&prog, libc::SYS_read, FAST_SITE_END + (1 << 32), args),
            TRACE
        );
        // Other calls from the site trap; untrapped ones stay untrapped.
        assert_eq!(run(&prog, libc::SYS_openat, FAST_SITE_END, args), TRACE);
        assert_eq!(run(&prog, libc::SYS_brk, FAST_SITE_END, args), ALLOW);
        let plain = super::build_filter(false, false).expect("filter");
        assert_eq!(run(&plain, libc::SYS_read, FAST_SITE_END, args), TRACE);
        assert_eq!(run(&plain, libc::SYS_brk, 0x1000, args), ALLOW);
        // The shim's prctl (its rdtsc trap) from the site, fast path or
        // not; the program's traps.
        let set_tsc = [libc::PR_SET_TSC as u64, 1, 0, 0, 0, 0];
        for prog in [&prog, &plain] {
            assert_eq!(run(prog, libc::SYS_prctl, FAST_SITE_END, set_tsc), ALLOW);
            assert_eq!(run(prog, libc::SYS_prctl, 0x1000, set_tsc), TRACE);
        }
    }

    #[test]
    fn the_kernel_skips_the_filter_for_calls_it_always_lets_through() {
        for fast_path in [false, true] {
            let prog = super::build_filter(false, fast_path).expect("filter");
            for nr in [libc::SYS_futex, libc::SYS_brk, libc::SYS_mprotect] {
                assert_eq!(cached(&prog, nr), Some(ALLOW), "call {nr}");
            }
            // Site calls depend on where they are made; trapped ones trap.
            assert_eq!(cached(&prog, libc::SYS_prctl), None);
            assert_ne!(cached(&prog, libc::SYS_openat), Some(ALLOW));
        }
    }

    #[test]
    fn other_architectures_trap() {
        let prog = super::build_filter(false, false).expect("filter");
        // After refuse_rseq's five instructions and the site's ten.
        assert_eq!((prog[17].code, prog[17].k), (0x06, 0x0003_0000), "ret TRAP");
    }

    #[test]
    fn rseq_fails_with_enosys_and_nothing_else_does() {
        const ENOSYS: u32 = 0x0005_0000 | libc::ENOSYS as u32;
        for fast_path in [false, true] {
            let prog = super::build_filter(false, fast_path).expect("filter");
            assert_eq!(run(&prog, libc::SYS_rseq, 0x1000, [0; 6]), ENOSYS);
            assert_eq!(run(&prog, libc::SYS_rseq, FAST_SITE_END, [0; 6]), ENOSYS);
            assert_eq!(run(&prog, libc::SYS_openat, 0x1000, [0; 6]), TRACE);
            assert_eq!(run(&prog, libc::SYS_brk, 0x1000, [0; 6]), ALLOW);
        }
    }

    #[test]
    fn filter_builds() {
        let prog = super::build_filter(false, false).expect("filter");
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
    /// get_robust_list run untrapped only on the caller; and since then
    /// set_tid_address traps (replay gives it the recorded tid), and
    /// prctl's options that show rrc's seccomp filter and rdtsc trapping
    /// are trapped; and shmdt runs untrapped (it only unmaps), and
    /// prctl(PR_SET_SECCOMP) traps (the program's own filter). The
    /// instructions in front (the five that refuse rseq, the ten that let
    /// the shim's own prctl through from its site) are not hashed.
    #[test]
    fn program_is_unchanged() {
        let built = super::build_filter(false, false).expect("filter");
        let prog = &built[15..];
        let hash = prog.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, i| {
            let word = u64::from(i.code) | u64::from(i.jt) << 16 | u64::from(i.jf) << 24;
            let word = word | u64::from(i.k) << 32;
            (h ^ word).wrapping_mul(0x0100_0000_01b3)
        });
        assert_eq!((prog.len(), hash), (186, 0x304d_4b5f_c220_57c8));
    }
}
