//! Rows added for rr's test programs: process state that replay builds
//! again (unshare, seccomp), objects outside the process that replay
//! never touches, and the layouts of what they write.

use super::*;

#[test]
fn process_state_calls_run_checked() {
    use ReplayAction::*;
    let files = [libc::CLONE_FILES as u64, 0, 0, 0, 0, 0];
    let pid_ns = [libc::CLONE_NEWPID as u64, 0, 0, 0, 0, 0];
    assert_eq!(replay_action(libc::SYS_unshare, &pid_ns), ExecuteChecked);
    // Only a thread's own descriptor table is ordered with the opens.
    assert!(changes_descriptor_table(libc::SYS_unshare, &files));
    assert!(!changes_descriptor_table(libc::SYS_unshare, &pid_ns));
    // seccomp's filter runs in replay; only a listener makes a descriptor.
    let filter = [1, 0, 0x1000, 0, 0, 0];
    let listener = [1, 1 << 3, 0x1000, 0, 0, 0];
    assert_eq!(replay_action(libc::SYS_seccomp, &filter), ExecuteChecked);
    assert!(!changes_descriptor_table(libc::SYS_seccomp, &filter));
    assert!(changes_descriptor_table(libc::SYS_seccomp, &listener));
    let mem = FakeMemory::default();
    let sizes = [3, 0, 0x1000, 0, 0, 0];
    let got = outputs(libc::SYS_seccomp, &sizes, 0, &mem).expect("seccomp");
    assert_eq!(got, vec![region(0x1000, 6)]);
    assert!(outputs(libc::SYS_seccomp, &filter, 0, &mem)
        .expect("filter")
        .is_empty());
    // dup compares its one argument, not whatever is in the next register.
    assert_eq!(compared_args(libc::SYS_dup), 1);
}

#[test]
fn outside_objects_are_emulated_or_placeholders() {
    use ReplayAction::*;
    let a = [3, 0x1000, 16, 0, 0, 0];
    for nr in [
        libc::SYS_mount,
        libc::SYS_sethostname,
        libc::SYS_setdomainname,
        libc::SYS_clock_settime,
        libc::SYS_clock_adjtime,
        libc::SYS_setxattr,
        libc::SYS_fchmodat2,
        libc::SYS_msgget,
        libc::SYS_semget,
        libc::SYS_setns,
        libc::SYS_kcmp,
    ] {
        assert_eq!(replay_action(nr, &a), Emulate, "{}", name(nr));
    }
    for nr in [libc::SYS_mq_open, libc::SYS_pidfd_open, libc::SYS_open_tree] {
        assert_eq!(replay_action(nr, &a), Placeholder, "{}", name(nr));
        assert!(changes_descriptor_table(nr, &a), "{}", name(nr));
    }
    // Another process's memory is written only when it is the program's.
    assert_eq!(replay_action(libc::SYS_process_vm_writev, &a), OnProcess);
    // semctl(GETALL) writes as many values as the set has semaphores,
    // asked of the kernel when recorded; replay writes what was recorded.
    let getall = [3, 0, libc::GETALL as u64, 0x1000, 0, 0];
    assert_eq!(replay_action(libc::SYS_semctl, &getall), Emulate);
    let stat = [3, 0, libc::IPC_STAT as u64 | 0x100, 0x1000, 0, 0];
    assert_eq!(replay_action(libc::SYS_semctl, &stat), Emulate);
    // System V shared memory is made again by replay (sysv_shm.rs).
    assert_eq!(replay_action(libc::SYS_shmget, &a), SharedMemory);
    assert_eq!(replay_action(libc::SYS_shmat, &a), SharedMemory);
    let rmid = [3, libc::IPC_RMID as u64, 0, 0, 0, 0];
    assert_eq!(replay_action(libc::SYS_shmctl, &rmid), SharedMemory);
    let shm_stat = [3, libc::IPC_STAT as u64 | 0x100, 0x1000, 0, 0, 0];
    assert_eq!(replay_action(libc::SYS_shmctl, &shm_stat), Emulate);
    assert!(runs_untrapped(libc::SYS_shmdt), "detaching only unmaps");
}

#[test]
fn outputs_of_ipc_and_capabilities() {
    let mem = FakeMemory::default();
    let out = |nr, a: &[u64; 6], ret| outputs(nr, a, ret, &mem).expect("outputs");
    let stat = [3, 0, libc::IPC_STAT as u64 | 0x100, 0x1000, 0, 0];
    assert_eq!(out(libc::SYS_semctl, &stat, 0), vec![region(0x1000, 104)]);
    assert!(out(libc::SYS_semctl, &stat, -22).is_empty());
    let msg_stat = [3, libc::IPC_STAT as u64, 0x1000, 0, 0, 0];
    assert_eq!(
        out(libc::SYS_msgctl, &msg_stat, 0),
        vec![region(0x1000, 120)]
    );
    // A received message is its type and the returned text.
    let rcv = [3, 0x1000, 64, 0, 0, 0];
    assert_eq!(out(libc::SYS_msgrcv, &rcv, 5), vec![region(0x1000, 13)]);
    let recv = [3, 0x1000, 64, 0x2000, 0, 0];
    assert_eq!(
        out(libc::SYS_mq_timedreceive, &recv, 5),
        vec![region(0x1000, 5), region(0x2000, 4)]
    );
    // capget writes one or two data structs as the header's version says,
    // and the header itself (the kernel's version, when the program's is
    // unknown).
    let cap = [0x1000, 0x2000, 0, 0, 0, 0];
    mem.put_u32(0x1000, 0x1998_0330);
    assert_eq!(
        out(libc::SYS_capget, &cap, 0),
        vec![region(0x1000, 4), region(0x2000, 12)]
    );
    mem.put_u32(0x1000, 0x2008_0522);
    assert_eq!(
        out(libc::SYS_capget, &cap, 0),
        vec![region(0x1000, 4), region(0x2000, 24)]
    );
    assert_eq!(
        out(libc::SYS_capget, &[0x1000, 0, 0, 0, 0, 0], 0),
        vec![region(0x1000, 4)]
    );
    // get_mempolicy's mask: maxnode - 1 bits, in whole longs.
    let policy = [0x1000, 0x2000, 65, 0, 0, 0];
    assert_eq!(
        out(libc::SYS_get_mempolicy, &policy, 0),
        vec![region(0x1000, 4), region(0x2000, 8)]
    );
}

#[test]
fn keys_and_watches() {
    use ReplayAction::*;
    let a = [3, 0x1000, 16, 0, 0, 0];
    for nr in [libc::SYS_add_key, libc::SYS_keyctl, libc::SYS_fanotify_mark] {
        assert_eq!(replay_action(nr, &a), Emulate, "{}", name(nr));
    }
    for nr in [libc::SYS_perf_event_open, libc::SYS_fanotify_init] {
        assert_eq!(replay_action(nr, &a), Placeholder, "{}", name(nr));
    }
    // KEYCTL_READ copies at most the buffer's length.
    let mem = FakeMemory::default();
    let read = [11, 5, 0x1000, 8, 0, 0];
    let got = outputs(libc::SYS_keyctl, &read, 20, &mem).expect("keyctl");
    assert_eq!(got, vec![region(0x1000, 8)]);
    let revoke = [3, 5, 0, 0, 0, 0];
    assert!(outputs(libc::SYS_keyctl, &revoke, 0, &mem)
        .expect("revoke")
        .is_empty());
}

#[test]
fn a_prctl_option_without_arguments_is_compared_on_the_option_alone() {
    let get_seccomp = [21, 0x7fff_dead_beef, 0, 0, 0, 0];
    assert_eq!(compared_args_of(libc::SYS_prctl, &get_seccomp), 1);
    let set_name = [15, 0x7fff_dead_beef, 0, 0, 0, 0];
    assert_eq!(compared_args_of(libc::SYS_prctl, &set_name), 0b11);
    assert_eq!(compared_args_of(libc::SYS_dup, &[3, 9, 9, 9, 9, 9]), 1);
}

#[test]
fn recvmmsg_gives_each_messages_length_before_the_data_it_sizes() {
    let mem = FakeMemory::default();
    mem.put(0x1000, &[0; 64]);
    mem.put_u64(0x1010, 0x2000); // msg_iov
    mem.put_u64(0x1018, 1); // msg_iovlen
    mem.put_u32(0x1038, 5); // msg_len
    mem.put_u64(0x2000, 0x3000);
    mem.put_u64(0x2008, 100);
    let a = [3, 0x1000, 1, 0, 0, 0];
    assert_eq!(
        outputs(libc::SYS_recvmmsg, &a, 1, &mem).expect("outputs"),
        vec![
            region(0x1038, 4),
            region(0x1008, 4),
            region(0x3000, 5),
            region(0x1028, 8),
            region(0x1030, 4)
        ]
    );
    // Control bytes (a received descriptor) come after msg_controllen.
    mem.put_u64(0x1020, 0x4000); // msg_control
    mem.put_u64(0x1028, 24); // msg_controllen, as returned
    assert_eq!(
        outputs(libc::SYS_recvmmsg, &a, 1, &mem).expect("outputs")[3..],
        [region(0x1028, 8), region(0x4000, 24), region(0x1030, 4)]
    );
}
