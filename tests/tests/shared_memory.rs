//! Memory the program shares with the kernel's objects: shared mappings
//! of files it makes and fills, memfds, and System V shared memory. In
//! replay they must stay the same objects (views of one file, one
//! segment), not copies of what was mapped. And the process's own memory
//! as the kernel shapes it: its stack limit, /proc/self/mem.

use rrc_tests::*;

#[test]
fn shared_mappings_of_a_file_the_program_fills_see_its_later_writes_in_replay() {
    let prog = program("shared_file_views");
    for round in 1..=repeat() {
        let rec = record_and_replay_keeping(
            &prog,
            &[],
            b"",
            0,
            2,
            &format!("shared_file_views-round{round}"),
        );
        let stdout = rec.stdout_str();
        assert!(
            stdout.contains("through the mappings: abc d e")
                && stdout.contains("spliced in: gh")
                && stdout.contains("memfd's last byte: f"),
            "round {round}: {}: every write showed in the mappings:\n{stdout}",
            rec.describe()
        );
    }
}

#[test]
fn system_v_segments_and_semaphore_values_the_program_makes_replay() {
    let prog = program("sysv_shm");
    for round in 1..=repeat() {
        let rec =
            record_and_replay_keeping(&prog, &[], b"", 0, 2, &format!("sysv_shm-round{round}"));
        let stdout = rec.stdout_str();
        assert!(
            stdout.contains("b sees: through a\n")
                && stdout.contains("again: through a\n")
                && stdout.contains("parent sees: from the child\n")
                && stdout.contains("semaphores: 4 5 6\n"),
            "round {round}: {}: one segment, seen by every attachment and the child:\n{stdout}",
            rec.describe()
        );
    }
}

#[test]
fn a_stack_limit_the_program_sets_and_its_writes_through_proc_self_mem_replay() {
    let prog = program("own_memory");
    for round in 1..=repeat() {
        let rec =
            record_and_replay_keeping(&prog, &[], b"", 0, 2, &format!("own_memory-round{round}"));
        let stdout = rec.stdout_str();
        assert!(
            stdout.contains("child: overflowed, depth over 100: 1, under 100000: 1\n")
                && stdout.contains("value written through /proc/self/mem: 2\n"),
            "round {round}: {}: the limited stack overflowed, the write landed:\n{stdout}",
            rec.describe()
        );
    }
}
