//! Consistency of the syscall table, walked over every number, and unit
//! tests of the argument-dependent parts against a fake tracee memory.

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::*;
use crate::{InterposeError, TraceeMemory};

/// Rows for process state, outside objects and their layouts.
mod more_calls;

/// Descriptor queries that write, and terminal and network ioctls.
mod descriptor_queries;
/// Rows for kernel objects (bpf, semaphore values, priorities).
mod kernel_objects;

/// Every x86-64 number and then some, and the impossible ones.
fn all_numbers() -> impl Iterator<Item = i64> {
    (-5..=600).chain([1023, 1024, i64::from(i32::MAX), i64::MAX, i64::MIN])
}

/// Arguments that select every argument-dependent case (fcntl commands,
/// clone flags) next to plain ones.
fn arg_sets() -> Vec<[u64; 6]> {
    let mut sets = vec![[0; 6], [0x1000, 0x2000, 0x3000, 0x4000, 0x5000, 0x6000]];
    for cmd in [0, 1, 2, 3, 4, 5, 36, 1030] {
        sets.push([3, cmd, 0, 0, 0, 0]);
    }
    for flags in [0x100, 0x4000, 0x4100, 0x11] {
        sets.push([flags, 0, 0, 0, 0, 0]);
    }
    sets
}

#[test]
fn rows_are_found_by_their_number() {
    for nr in all_numbers() {
        if let Some(r) = row(nr) {
            assert_eq!(r.nr, nr);
        }
    }
    assert_eq!(rows().len(), all_numbers().filter_map(row).count());
}

#[test]
fn calls_that_never_wait_or_that_wait_are_trapped_ones() {
    // A call the filter lets through is never a trapped event: how long
    // it takes means nothing to replay.
    for r in rows() {
        if r.duration != Duration::Unknown {
            assert_ne!(r.filter, Filter::Allow, "{} runs untrapped", r.name);
        }
    }
    assert!(returns_at_once(libc::SYS_rt_sigprocmask));
    assert!(waits(libc::SYS_clock_nanosleep) && waits(libc::SYS_wait4));
    assert!(!returns_at_once(libc::SYS_read) && !waits(libc::SYS_read));
    assert!(!returns_at_once(libc::SYS_clock_nanosleep));
}

#[test]
fn names_agree_with_the_syscalls_crate() {
    for nr in all_numbers() {
        let sysno = usize::try_from(nr).ok().and_then(syscalls::Sysno::new);
        match (row(nr), sysno) {
            (Some(r), Some(s)) => assert_eq!(r.name, s.name(), "row {nr}"),
            (Some(r), None) => panic!("row {nr} ({}) is not a syscall", r.name),
            (None, Some(s)) => assert_eq!(name(nr), s.name()),
            (None, None) => assert_eq!(name(nr), format!("syscall_{nr}")),
        }
    }
}

#[test]
fn arguments_are_named_and_counted() {
    for r in rows() {
        assert!(r.args.len() <= 6, "{}", r.name);
        assert_eq!(arg_count(r.nr), Some(r.args.len()));
        for (i, a) in r.args.iter().enumerate() {
            assert!(!a.is_empty(), "{} argument {i}", r.name);
            assert!(!r.args[..i].contains(a), "{}: {a} twice", r.name);
        }
        let all = ((1u16 << r.args.len()) - 1) as u8;
        assert_eq!(
            r.pointers & !all,
            0,
            "{}: pointer past the arguments",
            r.name
        );
        assert!(!r.named_in_reports || is_known(r.nr), "{}", r.name);
    }
}

/// The arguments a row's inputs and outputs read from its registers.
fn described_args(r: &SyscallRow) -> Vec<usize> {
    let mut v = match r.inputs {
        Inputs::Buf(a, b) | Inputs::Gather(a, b) | Inputs::SockAddr(a, b) => vec![a, b],
        Inputs::Paths(p) => p.to_vec(),
        Inputs::MsgHdr(a) => vec![a],
        Inputs::None | Inputs::Custom(_) => Vec::new(),
    };
    match r.outputs {
        Outputs::Returned(a, _) => v.push(a),
        Outputs::OnSuccess(f) | Outputs::Always(f) => v.extend(f.iter().map(|(a, _)| *a)),
        Outputs::None | Outputs::Custom(_) => {}
    }
    v
}

#[test]
fn compared_and_described_arguments_exist() {
    for r in rows() {
        let all = ((1u16 << r.args.len()) - 1) as u8;
        assert_eq!(
            r.compared & !all,
            0,
            "{} compares a missing argument",
            r.name
        );
        assert_eq!(r.compared & r.pointers, 0, "{} compares a pointer", r.name);
        for a in described_args(r) {
            assert!(a < r.args.len(), "{}: argument {a} out of range", r.name);
        }
        if let Inputs::Paths(p) = r.inputs {
            for a in p {
                assert_ne!(r.pointers & (1 << a), 0, "{}: path not a pointer", r.name);
            }
        }
    }
}

#[test]
fn untrapped_calls_are_never_events() {
    for nr in all_numbers() {
        if runs_untrapped(nr) {
            let r = row(nr).expect("untrapped calls have rows");
            assert!(is_known(nr) && !marks_handler_end(nr), "{}", r.name);
            assert!(matches!(r.replay, Replay::Untrapped), "{}", r.name);
            for a in arg_sets() {
                assert_eq!(replay_action(nr, &a), ReplayAction::Unsupported);
                assert!(!changes_descriptor_table(nr, &a) && !snapshots_memory(nr, &a));
                assert!(inputs(nr, &a).is_empty());
            }
            assert_eq!(compared_args(nr), 0, "{}", r.name);
            assert!(matches!(r.outputs, Outputs::None), "{}", r.name);
            assert!(!changes_credentials(nr), "{}", r.name);
        }
    }
}

#[test]
fn known_means_a_row_that_is_not_unknown() {
    for nr in all_numbers() {
        let r = row(nr);
        assert_eq!(
            is_known(nr),
            r.is_some_and(|r| !matches!(r.replay, Replay::Unknown)),
            "{}",
            name(nr)
        );
        // Unknown calls carry nothing else: recording reports them.
        if !is_known(nr) {
            assert_eq!(compared_args(nr), 0);
            assert!(arg_names(nr).is_empty() && !changes_credentials(nr));
            for a in arg_sets() {
                assert_eq!(replay_action(nr, &a), ReplayAction::Unsupported);
                assert!(!changes_descriptor_table(nr, &a) && inputs(nr, &a).is_empty());
            }
        }
        // Events are exactly the known calls that trap and are not
        // rt_sigreturn.
        let event = is_known(nr) && !runs_untrapped(nr) && !marks_handler_end(nr);
        let a = [3, 5, 0, 0, 0, 0];
        assert_eq!(replay_action(nr, &a) != ReplayAction::Unsupported, event);
    }
    assert!(marks_handler_end(libc::SYS_rt_sigreturn));
    assert_eq!(all_numbers().filter(|&nr| marks_handler_end(nr)).count(), 1);
}

#[test]
fn descriptor_table_changes_are_run_or_placed() {
    use ReplayAction::*;
    for nr in all_numbers() {
        for a in arg_sets() {
            if changes_descriptor_table(nr, &a) {
                let action = replay_action(nr, &a);
                assert!(
                    matches!(action, ExecuteChecked | Open | Placeholder),
                    "{} {a:?}: {action:?}",
                    name(nr)
                );
            }
            if snapshots_memory(nr, &a) {
                assert_eq!(replay_action(nr, &a), Spawn, "{}", name(nr));
            }
        }
        // Descriptors a call creates must come out as recorded; the other
        // checked calls build process state that replay must manage to
        // build again.
        let process_state = [libc::SYS_unshare, libc::SYS_seccomp].contains(&nr);
        if replay_action(nr, &[0; 6]) == ExecuteChecked && !process_state {
            assert!(changes_descriptor_table(nr, &[0; 6]), "{}", name(nr));
        }
        if changes_credentials(nr) {
            assert_eq!(replay_action(nr, &[0; 6]), Emulate, "{}", name(nr));
        }
    }
}

#[test]
fn filter_and_replay_agree() {
    for r in rows() {
        match r.filter {
            Filter::Allow => assert!(matches!(r.replay, Replay::Untrapped), "{}", r.name),
            Filter::AllowAnonymous => assert!(matches!(r.replay, Replay::Action(_)), "{}", r.name),
            // Trapped when a condition fails: an event then.
            Filter::AllowWhen(conditions) => {
                assert!(!conditions.is_empty(), "{}", r.name);
                assert!(
                    matches!(r.replay, Replay::Action(_) | Replay::ByArgs(_)),
                    "{}",
                    r.name
                );
                for c in conditions {
                    let (ArgIs::Eq(a, _) | ArgIs::Ne(a, _)) = *c;
                    assert!(
                        a < r.args.len(),
                        "{}: condition on a missing argument",
                        r.name
                    );
                }
            }
            Filter::Trap => assert!(!matches!(r.replay, Replay::Untrapped), "{}", r.name),
            // Trapped only when serialised: an event then.
            Filter::AllowUnlessSerialized => assert!(
                matches!(r.replay, Replay::Action(_) | Replay::ByArgs(_)),
                "{}",
                r.name
            ),
        }
    }
}

/// Arguments that name a process, thread or process group.
const PROCESS_ARGS: &[&str] = &["pid", "tid", "tgid", "who", "pid1", "pid2", "pidfd"];

/// A call the filter lets through whatever its arguments could act on
/// another process, which replay would then do to whatever has that id
/// now: no such call runs untrapped unconditionally.
#[test]
fn calls_that_name_a_process_never_run_untrapped_unconditionally() {
    for r in rows() {
        if r.filter == Filter::Allow {
            for a in r.args {
                assert!(
                    !PROCESS_ARGS.contains(a),
                    "{} runs untrapped with {a}",
                    r.name
                );
            }
        }
    }
}

/// The calls untrapped for the caller trap when they name a process; the
/// rest of their arguments do not matter.
#[test]
fn calls_on_the_caller_alone_run_untrapped() {
    let untrapped_when = |nr: i64, args: &[u64; 6]| match row(nr).map(|r| r.filter) {
        Some(Filter::AllowWhen(c)) => c.iter().all(|c| c.holds(args)),
        other => panic!("{}: {other:?}", name(nr)),
    };
    let prio = libc::PRIO_PROCESS as u64;
    assert!(untrapped_when(
        libc::SYS_setpriority,
        &[prio, 0, 5, 0, 0, 0]
    ));
    assert!(!untrapped_when(
        libc::SYS_setpriority,
        &[prio, 1234, 5, 0, 0, 0]
    ));
    let user = libc::PRIO_USER as u64;
    assert!(!untrapped_when(
        libc::SYS_setpriority,
        &[user, 0, 5, 0, 0, 0]
    ));
    assert_eq!(
        replay_action(libc::SYS_setpriority, &[user, 0, 5, 0, 0, 0]),
        ReplayAction::Emulate,
        "a user's processes are never the program's own"
    );
    assert_eq!(
        replay_action(libc::SYS_setpriority, &[prio, 1234, 5, 0, 0, 0]),
        ReplayAction::OnProcess
    );
    // A pid's upper bits do not hide it: the filter compares 32 bits.
    assert!(untrapped_when(
        libc::SYS_sched_setaffinity,
        &[0, 128, 0x1000, 0, 0, 0]
    ));
    assert!(!untrapped_when(
        libc::SYS_sched_setaffinity,
        &[77, 128, 0x1000, 0, 0, 0]
    ));
    assert!(untrapped_when(
        libc::SYS_get_robust_list,
        &[0, 0x1000, 0x2000, 0, 0, 0]
    ));
    assert!(!untrapped_when(
        libc::SYS_get_robust_list,
        &[77, 0x1000, 0x2000, 0, 0, 0]
    ));
    assert!(untrapped_when(
        libc::SYS_prctl,
        &[libc::PR_SET_NAME as u64, 0, 0, 0, 0, 0]
    ));
    assert!(!untrapped_when(libc::SYS_prctl, &[62, 1, 77, 0, 0, 0]));
    // The options that would show rrc's own seccomp filter and rdtsc
    // trapping are trapped, so the recorder can answer for the program.
    for option in [libc::PR_GET_SECCOMP, libc::PR_GET_TSC, libc::PR_SET_TSC] {
        assert!(
            !untrapped_when(libc::SYS_prctl, &[option as u64, 0x1000, 0, 0, 0, 0]),
            "{option}"
        );
    }
    assert_eq!(
        replay_action(libc::SYS_prctl, &[62, 1, 77, 0, 0, 0]),
        ReplayAction::Emulate
    );
}

#[test]
fn fcntl_and_clone_depend_on_their_arguments() {
    let fcntl = |cmd: i32| [3, cmd as u64, 0, 0, 0, 0];
    let nr = libc::SYS_fcntl;
    assert_eq!(
        replay_action(nr, &fcntl(libc::F_DUPFD_CLOEXEC)),
        ReplayAction::ExecuteChecked
    );
    assert!(changes_descriptor_table(nr, &fcntl(libc::F_DUPFD)));
    assert_eq!(
        replay_action(nr, &fcntl(libc::F_SETFL)),
        ReplayAction::Apply
    );
    assert_eq!(
        replay_action(nr, &fcntl(libc::F_GETLK)),
        ReplayAction::Emulate
    );
    assert!(!changes_descriptor_table(nr, &fcntl(libc::F_GETFL)));
    let clone = |flags: i32| [flags as u64, 0, 0, 0, 0, 0];
    assert!(snapshots_memory(libc::SYS_clone, &clone(libc::SIGCHLD)));
    assert!(!snapshots_memory(libc::SYS_clone, &clone(libc::CLONE_VM)));
    assert!(!snapshots_memory(
        libc::SYS_clone,
        &clone(libc::CLONE_VFORK)
    ));
    assert!(snapshots_memory(libc::SYS_fork, &[0; 6]));
    assert!(!snapshots_memory(libc::SYS_vfork, &[0; 6]));
}

#[test]
fn servers_syscalls_are_known() {
    // What memcached, redis and lighttpd were seen to use; a name dropped
    // from the table by mistake shows up here, not in a replay.
    for nr in [
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_epoll_wait,
        libc::SYS_epoll_ctl,
        libc::SYS_accept4,
        libc::SYS_sendmsg,
        libc::SYS_recvfrom,
        libc::SYS_writev,
        libc::SYS_sendfile,
        libc::SYS_setsockopt,
        libc::SYS_clock_nanosleep,
        libc::SYS_setuid,
        libc::SYS_setgid,
        libc::SYS_setgroups,
        libc::SYS_restart_syscall,
        libc::SYS_timer_create,
        libc::SYS_rt_sigaction,
        libc::SYS_exit_group,
        libc::SYS_prlimit64,
        libc::SYS_sched_getaffinity,
        libc::SYS_uname,
    ] {
        assert!(is_known(nr), "{} should be known", name(nr));
    }
    assert!(
        !is_known(libc::SYS_sched_rr_get_interval),
        "sched_rr_get_interval is the canonical unknown syscall in tests"
    );
}

/// Tracee memory as a sparse map of bytes; reading a byte never written
/// fails as reading an unmapped page would.
#[derive(Default)]
pub(super) struct FakeMemory {
    bytes: RefCell<BTreeMap<u64, u8>>,
}

impl FakeMemory {
    pub(super) fn put(&self, addr: u64, data: &[u8]) {
        let mut bytes = self.bytes.borrow_mut();
        for (i, b) in data.iter().enumerate() {
            bytes.insert(addr + i as u64, *b);
        }
    }

    pub(super) fn put_u64(&self, addr: u64, v: u64) {
        self.put(addr, &v.to_le_bytes());
    }

    fn put_u32(&self, addr: u64, v: u32) {
        self.put(addr, &v.to_le_bytes());
    }
}

impl TraceeMemory for FakeMemory {
    fn read(&self, addr: u64, len: usize) -> crate::Result<Vec<u8>> {
        let bytes = self.bytes.borrow();
        (0..len as u64)
            .map(|i| bytes.get(&(addr + i)).copied())
            .collect::<Option<Vec<u8>>>()
            .ok_or(InterposeError::Memory {
                tid: 1,
                op: "read",
                addr,
                len,
                errno: nix::errno::Errno::EFAULT,
            })
    }

    fn write(&self, addr: u64, data: &[u8]) -> crate::Result<()> {
        self.put(addr, data);
        Ok(())
    }
}

fn region(addr: u64, len: usize) -> Region {
    Region { addr, len }
}

#[test]
fn outputs_of_fixed_layouts() {
    let mem = FakeMemory::default();
    let read = [3, 0x1000, 100, 0, 0, 0];
    let out = |nr, a: &[u64; 6], ret| outputs(nr, a, ret, &mem).expect("outputs");
    assert_eq!(out(libc::SYS_read, &read, 42), vec![region(0x1000, 42)]);
    assert!(out(libc::SYS_read, &read, -libc::EAGAIN as i64).is_empty());
    assert!(out(libc::SYS_read, &read, 0).is_empty());
    let tv = [0x1000, 0x2000, 0, 0, 0, 0];
    assert_eq!(
        out(libc::SYS_gettimeofday, &tv, 0),
        vec![region(0x1000, 16), region(0x2000, 8)]
    );
    // A null timezone is skipped; time() writes even when it fails.
    assert_eq!(
        out(libc::SYS_gettimeofday, &[0x1000, 0, 0, 0, 0, 0], 0).len(),
        1
    );
    assert_eq!(out(libc::SYS_time, &tv, -14), vec![region(0x1000, 8)]);
    assert_eq!(
        out(libc::SYS_epoll_wait, &[4, 0x1000, 8, 0, 0, 0], 2),
        vec![region(0x1000, 24)]
    );
    // Unknown and untrapped calls write nothing rrc records.
    assert!(out(libc::SYS_sched_rr_get_interval, &tv, 0).is_empty());
    assert!(out(libc::SYS_futex, &tv, 0).is_empty());
    assert!(out(-1, &tv, 0).is_empty());
}

#[test]
fn prctl_outputs_depend_on_the_option() {
    let mem = FakeMemory::default();
    let out = |a: &[u64; 6], ret| outputs(libc::SYS_prctl, a, ret, &mem).expect("outputs");
    let get_tsc = [libc::PR_GET_TSC as u64, 0x1000, 0, 0, 0, 0];
    assert_eq!(out(&get_tsc, 0), vec![region(0x1000, 4)]);
    assert!(out(&get_tsc, -(libc::EFAULT as i64)).is_empty());
    let core_get = [62, 0, 77, 0, 0x2000, 0];
    assert_eq!(out(&core_get, 0), vec![region(0x2000, 8)]);
    assert!(out(&[libc::PR_SET_TSC as u64, 1, 0, 0, 0, 0], 0).is_empty());
    assert!(out(&[libc::PR_GET_SECCOMP as u64, 0, 0, 0, 0, 0], 0).is_empty());
}

#[test]
fn outputs_that_depend_on_the_result() {
    let mem = FakeMemory::default();
    let out = |nr, a: &[u64; 6], ret| outputs(nr, a, ret, &mem).expect("outputs");
    let eintr = -(libc::EINTR as i64);
    let sleep = [0x1000, 0x2000, 0, 0, 0, 0];
    assert_eq!(
        out(libc::SYS_nanosleep, &sleep, eintr),
        vec![region(0x2000, 16)]
    );
    assert!(out(libc::SYS_nanosleep, &sleep, 0).is_empty());
    let relative = [1, 0, 0x1000, 0x2000, 0, 0];
    let absolute = [1, libc::TIMER_ABSTIME as u64, 0x1000, 0x2000, 0, 0];
    assert_eq!(
        out(libc::SYS_clock_nanosleep, &relative, eintr),
        vec![region(0x2000, 16)]
    );
    assert!(out(libc::SYS_clock_nanosleep, &absolute, eintr).is_empty());
    let wait = [-1i64 as u64, 0x1000, 0, 0x2000, 0, 0];
    assert_eq!(out(libc::SYS_wait4, &wait, 0), vec![region(0x2000, 144)]);
    assert_eq!(
        out(libc::SYS_wait4, &wait, 77),
        vec![region(0x1000, 4), region(0x2000, 144)]
    );
    // getgroups(0, list) only counts.
    assert!(out(libc::SYS_getgroups, &[0, 0x1000, 0, 0, 0, 0], 3).is_empty());
    assert_eq!(
        out(libc::SYS_getgroups, &[8, 0x1000, 0, 0, 0, 0], 3),
        vec![region(0x1000, 12)]
    );
    // select: three sets of nfds bits, and the time left.
    let select = [65, 0x1000, 0x2000, 0, 0x4000, 0];
    assert_eq!(
        out(libc::SYS_select, &select, 1),
        vec![region(0x1000, 16), region(0x2000, 16), region(0x4000, 16)]
    );
    assert_eq!(
        out(libc::SYS_select, &select, eintr),
        vec![region(0x4000, 16)]
    );
}

#[test]
fn outputs_read_lengths_from_memory() {
    let mem = FakeMemory::default();
    mem.put_u32(0x2000, 16);
    let accept = [3, 0x1000, 0x2000, 0, 0, 0];
    let got = outputs(libc::SYS_accept4, &accept, 5, &mem).expect("accept4");
    assert_eq!(got, vec![region(0x2000, 4), region(0x1000, 16)]);
    // A huge length is capped to the largest address rrc records.
    mem.put_u32(0x2000, 4096);
    let got = outputs(libc::SYS_getpeername, &accept, 0, &mem).expect("getpeername");
    assert_eq!(got[1], region(0x1000, 128));
    // An unreadable length is an error, not a guess.
    assert!(outputs(libc::SYS_accept, &[3, 0x1000, 0x9000, 0, 0, 0], 5, &mem).is_err());
    assert!(outputs(libc::SYS_accept, &[3, 0, 0, 0, 0, 0], 5, &mem)
        .expect("null")
        .is_empty());
}

#[test]
fn recvmsg_outputs_end_with_the_control_data() {
    let mem = FakeMemory::default();
    let (msg, name, iov, control) = (0x1000, 0x2000, 0x3000, 0x4000);
    mem.put_u64(msg, name);
    mem.put_u32(msg + 8, 16);
    mem.put_u64(msg + 16, iov);
    mem.put_u64(msg + 24, 2);
    mem.put_u64(msg + 32, control);
    mem.put_u64(msg + 40, 24);
    // Two iovecs of 10 and 100 bytes; 30 bytes received.
    mem.put_u64(iov, 0x5000);
    mem.put_u64(iov + 8, 10);
    mem.put_u64(iov + 16, 0x6000);
    mem.put_u64(iov + 24, 100);
    let got = outputs(libc::SYS_recvmsg, &[3, msg, 0, 0, 0, 0], 30, &mem).expect("recvmsg");
    assert_eq!(
        got,
        vec![
            region(msg + 8, 4),
            region(name, 16),
            region(0x5000, 10),
            region(0x6000, 20),
            region(msg + 40, 8),
            region(control, 24),
            region(msg + 48, 4),
        ]
    );
    assert!(outputs(libc::SYS_recvmsg, &[3, 0x9000, 0, 0, 0, 0], 30, &mem).is_err());
    assert!(
        outputs(libc::SYS_recvmsg, &[3, 0x9000, 0, 0, 0, 0], -11, &mem)
            .expect("failed call")
            .is_empty()
    );
}

#[test]
fn ioctl_requests_decode() {
    // A sign-extended request is the same request.
    assert_eq!(ioctl_request(0xffff_ffff_8004_5401), 0x8004_5401);
    assert_eq!(
        ioctl_output_len(libc::TCGETS),
        Some(36),
        "the kernel's termios"
    );
    assert_eq!(ioctl_output_len(libc::TIOCGWINSZ), Some(8));
    assert_eq!(ioctl_output_len(libc::FIONREAD), Some(4));
    assert_eq!(ioctl_output_len(libc::SIOCGIFINDEX), Some(40));
    // _IOR('T', 1, u32): the kernel writes 4 bytes; _IOW writes none.
    assert_eq!(ioctl_output_len(0x8004_5401), Some(4));
    assert_eq!(ioctl_output_len(0xffff_ffff_8004_5401), Some(4));
    assert_eq!(ioctl_output_len(0xc010_5401), Some(16));
    assert_eq!(ioctl_output_len(0x4004_5401), None);
    assert!(ioctl_is_known(0x4004_5401));
    assert!(ioctl_is_known(libc::FIONBIO) && ioctl_is_known(libc::TCSETS));
    assert!(ioctl_is_known(libc::SIOCGIFCONF));
    assert!(!ioctl_is_known(0x1234));
}

#[test]
fn ioctl_outputs_follow_the_request() {
    let mem = FakeMemory::default();
    let ioctl = |req: u64| [1, req, 0x1000, 0, 0, 0];
    let out = |a: &[u64; 6], ret| outputs(libc::SYS_ioctl, a, ret, &mem);
    assert_eq!(
        out(&ioctl(libc::TIOCGWINSZ), 0).expect("winsz"),
        vec![region(0x1000, 8)]
    );
    assert!(out(&ioctl(libc::TIOCGWINSZ), -25)
        .expect("ENOTTY")
        .is_empty());
    assert!(out(&ioctl(0x1234), 0).expect("unknown").is_empty());
    // SIOCGIFCONF: ifc_len says how much of ifc_buf the kernel wrote.
    mem.put_u32(0x1000, 80);
    mem.put_u64(0x1008, 0x2000);
    assert_eq!(
        out(&ioctl(libc::SIOCGIFCONF), 0).expect("ifconf"),
        vec![region(0x1000, 4), region(0x2000, 80)]
    );
    assert!(out(&[1, libc::SIOCGIFCONF, 0x9000, 0, 0, 0], 0).is_err());
    // Old-style terminal and console requests that write an int, and
    // requests that write nothing.
    for req in [libc::TIOCMGET, 0x5600] {
        assert_eq!(out(&ioctl(req), 0).expect("int"), vec![region(0x1000, 4)]);
    }
    for req in [libc::TIOCSCTTY, 0x2400, 0x2401, 0x2403] {
        assert!(ioctl_is_known(req), "{req:#x}");
        assert!(out(&ioctl(req), 0).expect("nothing").is_empty());
    }
}

/// A control message: cmsg_len, level, type, data, padded to 8 bytes.
fn cmsg(level: i32, kind: i32, data: &[u8]) -> Vec<u8> {
    let mut v = ((16 + data.len()) as u64).to_le_bytes().to_vec();
    v.extend(level.to_le_bytes());
    v.extend(kind.to_le_bytes());
    v.extend(data);
    v.resize(v.len().div_ceil(8) * 8, 0);
    v
}

#[test]
fn scm_rights_are_found_among_control_messages() {
    let fds: Vec<u8> = [7i32, 9].iter().flat_map(|f| f.to_le_bytes()).collect();
    let mut control = cmsg(libc::SOL_SOCKET, libc::SCM_CREDENTIALS, &[1; 12]);
    control.extend(cmsg(libc::SOL_SOCKET, libc::SCM_RIGHTS, &fds));
    control.extend(cmsg(
        libc::SOL_SOCKET,
        libc::SCM_RIGHTS,
        &5i32.to_le_bytes(),
    ));
    assert_eq!(scm_rights(&control, control.len()), vec![7, 9, 5]);
    // Only the first `len` bytes count; a message cut short is dropped.
    assert_eq!(scm_rights(&control, 32 + 24), vec![7, 9]);
    assert_eq!(scm_rights(&control, 32 + 20), Vec::<i32>::new());
    assert_eq!(scm_rights(&control, 1 << 20), vec![7, 9, 5]);
    // Another level's message with the same type is not SCM_RIGHTS.
    assert!(scm_rights(&cmsg(libc::SOL_IP, libc::SCM_RIGHTS, &fds), 64).is_empty());
}

#[test]
fn malformed_control_data_ends_the_walk() {
    let mut bad = cmsg(libc::SOL_SOCKET, libc::SCM_RIGHTS, &3i32.to_le_bytes());
    bad[..8].copy_from_slice(&8u64.to_le_bytes()); // shorter than a header
    assert!(scm_rights(&bad, bad.len()).is_empty());
    bad[..8].copy_from_slice(&u64::MAX.to_le_bytes()); // past the end
    assert!(scm_rights(&bad, bad.len()).is_empty());
    assert!(scm_rights(&[], 100).is_empty());
}

#[test]
fn received_fds_read_recvmsg_outputs() {
    let control = cmsg(libc::SOL_SOCKET, libc::SCM_RIGHTS, &4i32.to_le_bytes());
    let len = (control.len() as u64).to_le_bytes().to_vec();
    let outs = vec![vec![0; 4], b"data".to_vec(), len, control, vec![0; 4]];
    assert_eq!(received_fds(libc::SYS_recvmsg, 4, &outs), vec![4]);
    assert!(received_fds(libc::SYS_recvmsg, -11, &outs).is_empty());
    assert!(received_fds(libc::SYS_recvfrom, 4, &outs).is_empty());
    assert!(received_fds(libc::SYS_recvmsg, 4, &outs[3..]).is_empty());
}

#[test]
fn received_fds_read_each_recvmmsg_messages_control_bytes() {
    let control = cmsg(libc::SOL_SOCKET, libc::SCM_RIGHTS, &6i32.to_le_bytes());
    let len = (control.len() as u64).to_le_bytes().to_vec();
    // Two messages: the first without control bytes (an empty region is
    // not listed), the second with one descriptor.
    let zero = 0u64.to_le_bytes().to_vec();
    let outs = vec![
        vec![1; 4],
        vec![0; 4],
        b"a".to_vec(),
        zero,
        vec![0; 4],
        vec![1; 4],
        vec![0; 4],
        b"b".to_vec(),
        len,
        control,
        vec![0; 4],
    ];
    assert_eq!(received_fds(libc::SYS_recvmmsg, 2, &outs), vec![6]);
    assert!(received_fds(libc::SYS_recvmmsg, -11, &outs).is_empty());
    assert!(received_fds(libc::SYS_recvmmsg, 2, &outs[..9]).is_empty());
}

#[test]
fn socket_addresses_compare_their_meaningful_bytes() {
    let inet = [2, 0, 0x1f, 0x90, 127, 0, 0, 1, 0xaa, 0xbb, 0, 0, 0, 0, 0, 0];
    assert_eq!(sockaddr_meaningful_len(&inet), 8);
    assert_eq!(sockaddr_meaningful_len(&inet[..5]), 5);
    let mut unix = vec![1, 0];
    unix.extend(b"/tmp/s\0garbage");
    assert_eq!(sockaddr_meaningful_len(&unix), 8);
    let abstract_unix = [1, 0, 0, b'x', b'y'];
    assert_eq!(sockaddr_meaningful_len(&abstract_unix), 5);
    assert_eq!(sockaddr_meaningful_len(&[10, 0, 1, 2]), 4);
    assert_eq!(sockaddr_meaningful_len(&[]), 0);
}

#[test]
fn gathered_inputs_follow_the_iovecs() {
    let mem = FakeMemory::default();
    mem.put_u64(0x1000, 0x2000);
    mem.put_u64(0x1008, 3);
    mem.put_u64(0x1010, 0x3000);
    mem.put_u64(0x1018, 4);
    mem.put(0x2000, b"abc");
    mem.put(0x3000, b"defg");
    assert_eq!(read_gather(&mem, 0x1000, 2, 100), b"abcdefg");
    assert_eq!(read_gather(&mem, 0x1000, 2, 5), b"abcde");
    // The third iovec is unreadable: the list ends there.
    assert_eq!(read_gather(&mem, 0x1000, 3, 100), b"abcdefg");
    let specs = sendmsg_inputs(&mem, 0x1000 - 16).expect("msghdr");
    assert_eq!(
        specs,
        vec![InputSpec::Iovec {
            addr: 0x2000,
            count: 3,
            limit: MAX_INPUT
        }]
    );
}

#[test]
fn inputs_from_the_table() {
    let rename = [0x1000, 0, 0, 0, 0, 0];
    assert_eq!(
        inputs(libc::SYS_rename, &rename),
        vec![InputSpec::CString(0x1000)]
    );
    let sendto = [3, 0x1000, 10, 0, 0x2000, 0xffff_ffff_0000_0010];
    assert_eq!(
        inputs(libc::SYS_sendto, &sendto),
        vec![
            InputSpec::Bytes(region(0x1000, 10)),
            InputSpec::SockAddr(region(0x2000, 16))
        ]
    );
    // sendmsg's data is found by reading its msghdr (`read_inputs`).
    assert!(inputs(libc::SYS_sendmsg, &sendto).is_empty());
    let huge = [1, 0x1000, u64::MAX, 0, 0, 0];
    assert_eq!(
        inputs(libc::SYS_write, &huge),
        vec![InputSpec::Bytes(region(0x1000, MAX_INPUT as usize))]
    );
}
