//! Rows for objects that live in the kernel: bpf maps and programs, the
//! values of a System V semaphore set, the scheduler's priority range.

use super::*;

#[test]
fn bpf_calls_that_make_a_descriptor_get_a_placeholder_and_the_rest_are_emulated() {
    use ReplayAction::*;
    for cmd in [0u64, 5, 7, 14, 28] {
        let a = [cmd, 0x1000, 128, 0, 0, 0];
        assert_eq!(replay_action(libc::SYS_bpf, &a), Placeholder, "cmd {cmd}");
        assert!(changes_descriptor_table(libc::SYS_bpf, &a), "cmd {cmd}");
    }
    for cmd in [1u64, 2, 3, 4, 8, 16] {
        let a = [cmd, 0x1000, 128, 0, 0, 0];
        assert_eq!(replay_action(libc::SYS_bpf, &a), Emulate, "cmd {cmd}");
        assert!(!changes_descriptor_table(libc::SYS_bpf, &a), "cmd {cmd}");
    }
}

#[test]
fn bpf_outputs_are_the_union_and_what_its_pointers_lead_to() {
    let mem = FakeMemory::default();
    let out = |a: &[u64; 6], ret| outputs(libc::SYS_bpf, a, ret, &mem).expect("outputs");
    mem.put(0x1000, &[0; 128]);
    // A lookup writes the value (its size comes from the map's fdinfo
    // when recorded; memory that is not a live tracee's gives 8).
    mem.put_u32(0x1000, 3);
    mem.put_u64(0x1010, 0x5000);
    let lookup = [1, 0x1000, 32, 0, 0, 0];
    assert_eq!(out(&lookup, 0), vec![region(0x1000, 32), region(0x5000, 8)]);
    assert!(out(&lookup, -2).is_empty(), "no such key: nothing written");
    // A program's load writes its verifier log, even when it fails.
    mem.put_u32(0x1018, 1); // log_level
    mem.put_u32(0x101c, 4096); // log_size
    mem.put_u64(0x1020, 0x8000); // log_buf
    let load = [5, 0x1000, 116, 0, 0, 0];
    let written = vec![region(0x1000, 116), region(0x8000, 4096)];
    assert_eq!(out(&load, 4), written);
    assert_eq!(out(&load, -13), written);
    // A query writes the ids of as many programs as it reports.
    mem.put_u64(0x1010, 0x6000);
    mem.put_u32(0x1018, 2);
    let query = [16, 0x1000, 28, 0, 0, 0];
    assert_eq!(out(&query, 0), vec![region(0x1000, 28), region(0x6000, 8)]);
    // None reported: still one region, as replay finds it before it
    // writes back the union (whose count was 2 when the call was made).
    mem.put_u32(0x1018, 0);
    assert_eq!(out(&query, 0), vec![region(0x1000, 28), region(0x6000, 4)]);
    // The union kept is bounded.
    let huge = [2, 0x1000, 1 << 20, 0, 0, 0];
    assert_eq!(out(&huge, 0), vec![region(0x1000, 256)]);
}

#[test]
fn semctl_getall_writes_one_value_per_semaphore_of_the_set() {
    // SAFETY: semget takes plain values; the set is removed below.
    let semid = unsafe { libc::semget(libc::IPC_PRIVATE, 5, 0o600) };
    assert!(semid >= 0, "semget: {}", std::io::Error::last_os_error());
    let mem = FakeMemory::default();
    let getall = [semid as u64, 0, libc::GETALL as u64, 0x1000, 0, 0];
    let regions = outputs(libc::SYS_semctl, &getall, 0, &mem).expect("outputs");
    // SAFETY: IPC_RMID takes no pointer.
    unsafe { libc::semctl(semid, 0, libc::IPC_RMID) };
    assert_eq!(regions, vec![region(0x1000, 10)]);
    // A set the tracer cannot see (replay's, which does not exist): one
    // region all the same, since replay writes the recorded bytes.
    let gone = [semid as u64, 0, libc::GETALL as u64, 0x1000, 0, 0];
    let regions = outputs(libc::SYS_semctl, &gone, 0, &mem).expect("outputs");
    assert_eq!(regions.len(), 1);
}

#[test]
fn shmctl_writes_a_segments_description_or_the_limits() {
    let mem = FakeMemory::default();
    let out = |cmd: i32, ret| {
        let a = [3, cmd as u64 | 0x100, 0x1000, 0, 0, 0];
        outputs(libc::SYS_shmctl, &a, ret, &mem).expect("outputs")
    };
    assert_eq!(out(libc::IPC_STAT, 0), vec![region(0x1000, 112)]);
    assert_eq!(out(libc::IPC_INFO, 3), vec![region(0x1000, 72)]);
    assert_eq!(out(14, 3), vec![region(0x1000, 48)], "SHM_INFO");
    assert!(out(libc::IPC_SET, 0).is_empty());
    assert!(out(libc::IPC_STAT, -22).is_empty());
}

#[test]
fn the_priority_range_of_a_policy_is_emulated() {
    for nr in [
        libc::SYS_sched_get_priority_min,
        libc::SYS_sched_get_priority_max,
    ] {
        let a = [libc::SCHED_FIFO as u64, 0, 0, 0, 0, 0];
        assert_eq!(replay_action(nr, &a), ReplayAction::Emulate, "{}", name(nr));
        assert_eq!(
            compared_args(nr),
            A0_ONLY,
            "{}: the policy is compared",
            name(nr)
        );
    }
}

const A0_ONLY: u8 = 1;

#[test]
fn landlock_mount_api_and_pidfd_signals_are_emulated_with_placeholders_for_descriptors() {
    use ReplayAction::*;
    let a = [0x1000, 8, 0, 0, 0, 0];
    assert_eq!(
        replay_action(libc::SYS_landlock_create_ruleset, &a),
        Placeholder
    );
    assert!(changes_descriptor_table(
        libc::SYS_landlock_create_ruleset,
        &a
    ));
    // LANDLOCK_CREATE_RULESET_VERSION: the ABI version, no descriptor.
    let version = [0, 0, 1, 0, 0, 0];
    assert_eq!(
        replay_action(libc::SYS_landlock_create_ruleset, &version),
        Emulate
    );
    assert!(!changes_descriptor_table(
        libc::SYS_landlock_create_ruleset,
        &version
    ));
    for nr in [libc::SYS_fsopen, libc::SYS_fsmount, libc::SYS_fspick] {
        assert_eq!(replay_action(nr, &a), Placeholder, "{}", name(nr));
        assert!(changes_descriptor_table(nr, &a), "{}", name(nr));
    }
    for nr in [
        libc::SYS_landlock_add_rule,
        libc::SYS_landlock_restrict_self,
        libc::SYS_fsconfig,
        libc::SYS_move_mount,
        libc::SYS_mount_setattr,
        libc::SYS_pidfd_send_signal,
    ] {
        assert_eq!(replay_action(nr, &a), Emulate, "{}", name(nr));
        assert!(!changes_descriptor_table(nr, &a), "{}", name(nr));
    }
}

#[test]
fn limits_replay_reproduces_natively_are_applied_in_replay() {
    use ReplayAction::*;
    let stack = libc::RLIMIT_STACK as u64;
    assert_eq!(
        replay_action(libc::SYS_setrlimit, &[stack, 0x1000, 0, 0, 0, 0]),
        Apply
    );
    let cpu = libc::RLIMIT_CPU as u64;
    assert_eq!(
        replay_action(libc::SYS_setrlimit, &[cpu, 0x1000, 0, 0, 0, 0]),
        Emulate
    );
    let address = libc::RLIMIT_AS as u64;
    assert_eq!(
        replay_action(libc::SYS_setrlimit, &[address, 0x1000, 0, 0, 0, 0]),
        Emulate
    );
    let nr = libc::SYS_prlimit64;
    assert_eq!(replay_action(nr, &[0, stack, 0x1000, 0, 0, 0]), Apply);
    // Only read, read back as well, or another process's: emulated.
    assert_eq!(replay_action(nr, &[0, stack, 0, 0x2000, 0, 0]), Emulate);
    assert_eq!(
        replay_action(nr, &[0, stack, 0x1000, 0x2000, 0, 0]),
        Emulate
    );
    assert_eq!(replay_action(nr, &[42, stack, 0x1000, 0, 0, 0]), Emulate);
}

#[test]
fn sched_getattr_writes_the_struct_cut_to_the_callers_size() {
    let mem = FakeMemory::default();
    let out = |size, ret| {
        let a = [0, 0x1000, size, 0, 0, 0];
        outputs(libc::SYS_sched_getattr, &a, ret, &mem).expect("outputs")
    };
    assert_eq!(out(48, 0), vec![region(0x1000, 48)]);
    assert_eq!(out(4096, 0), vec![region(0x1000, 56)]);
    assert!(out(48, -22).is_empty());
    let set = [0, 0x1000, 0, 0, 0, 0];
    assert_eq!(
        replay_action(libc::SYS_sched_setattr, &set),
        ReplayAction::Emulate
    );
}

#[test]
fn capset_changes_credentials_as_setuid_does() {
    assert!(changes_credentials(libc::SYS_capset));
    assert!(!changes_credentials(libc::SYS_capget));
}

#[test]
fn a_seccomp_filter_of_the_programs_own_is_recognised() {
    assert!(installs_program_filter(
        libc::SYS_seccomp,
        &[1, 0, 0x1000, 0, 0, 0]
    ));
    // SECCOMP_GET_ACTION_AVAIL and the like install nothing.
    assert!(!installs_program_filter(
        libc::SYS_seccomp,
        &[2, 0, 0x1000, 0, 0, 0]
    ));
    assert!(!installs_program_filter(
        libc::SYS_prctl,
        &[1, 0, 0, 0, 0, 0]
    ));
}
