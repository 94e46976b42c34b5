//! A thread killed inside a call that makes a task (its clone, fork or
//! vfork never returned) still made the task: the recording keeps the
//! call, and replay makes the task too. A thread killed inside a write
//! (by its process's exit or exec, or the recording's end) may have put
//! its bytes out: the recording keeps them, and replay prints them.

use rrc_tests::*;

#[test]
fn a_process_killed_in_its_vfork_by_the_child_replays_with_the_child_and_what_it_sent() {
    let prog = program("vfork_killed_parent");
    let mut sent = std::collections::BTreeSet::new();
    for round in 1..=repeat().max(4) {
        let rec =
            record_and_replay_keeping(&prog, &[], b"", 0, 2, &format!("vfork_killed-{round}"));
        let stdout = rec.stdout_str();
        let ctx = format!("round {round}: {}", rec.describe());
        assert!(
            stdout.contains("vfork child: my parent is gone\n"),
            "{ctx}: the child's own write is missing:\n{stdout}"
        );
        let last = stdout
            .lines()
            .find_map(|l| l.strip_prefix("middle killed by signal 9 in its vfork; the child sent "))
            .unwrap_or_else(|| panic!("{ctx}: no report of the kill in:\n{stdout}"));
        sent.insert(last.to_string());
    }
    // The letter comes from the clock: native runs differ, so replay
    // reproduced the recorded one, not a fixed one.
    assert!(
        sent.len() > 1,
        "every round sent {sent:?}: the clock read did not vary"
    );
}

#[test]
fn a_process_left_behind_in_the_middle_of_a_write_replays_every_byte_it_wrote() {
    let prog = program("left_behind_writer");
    let mut lengths = std::collections::BTreeSet::new();
    for round in 1..=repeat().max(6) {
        // Replay must print what the recording printed, the child's last
        // write (cut off by the recording's end) among it.
        let rec = record_and_replay_keeping(&prog, &[], b"", 0, 1, &format!("left_behind-{round}"));
        let stdout = rec.stdout_str();
        let ctx = format!("round {round}: {}", rec.describe());
        assert!(
            stdout.contains("parent returns\n") && stdout.contains("child line 50\n"),
            "{ctx}: missing the parent's or the child's lines:\n{stdout}"
        );
        lengths.insert(stdout.lines().count());
    }
    assert!(
        lengths.len() > 1,
        "every recording printed as many lines, {lengths:?}: the child did not race the end"
    );
}

/// Records `killed_mid_write how` 12 times (times RRC_TEST_REPEAT), each
/// ending with `status` and replayed once, faithfully; returns how many
/// lines the recordings had.
fn writer_killed_by(how: &str, status: i32) -> std::collections::BTreeSet<usize> {
    printer_killed_by("killed_mid_write", how, status)
}

/// [`writer_killed_by`] for `name`, C or Rust.
fn printer_killed_by(name: &str, how: &str, status: i32) -> std::collections::BTreeSet<usize> {
    let prog = program(name);
    let mut counts = std::collections::BTreeSet::new();
    for round in 1..=repeat() * 12 {
        let tag = format!("{name}-{how}-{round}");
        let rec = record_and_replay_keeping(&prog, &[how], b"", status, 1, &tag);
        counts.insert(rec.stdout_str().lines().count());
    }
    counts
}

#[test]
fn a_thread_killed_by_its_process_exit_while_writing_replays_every_line_it_wrote() {
    let counts = writer_killed_by("exit", 0);
    assert!(counts.len() > 1, "every recording printed {counts:?} lines");
}

#[test]
fn a_thread_killed_by_another_thread_exec_while_writing_replays_every_line_it_wrote() {
    let counts = writer_killed_by("exec", 0);
    assert!(counts.len() > 1, "every recording printed {counts:?} lines");
}

#[test]
fn a_thread_killed_by_another_thread_abort_while_writing_replays_every_line_it_wrote() {
    let counts = writer_killed_by("abort", 128 + libc::SIGABRT);
    assert!(counts.len() > 1, "every recording printed {counts:?} lines");
}

#[test]
fn a_thread_killed_by_another_thread_fault_while_writing_replays_every_line_it_wrote() {
    let counts = writer_killed_by("segv", 128 + libc::SIGSEGV);
    assert!(counts.len() > 1, "every recording printed {counts:?} lines");
}

#[test]
fn a_rust_thread_killed_by_another_thread_abort_while_printing_replays_every_line() {
    let counts = printer_killed_by("rust_killed_mid_print", "abort", 128 + libc::SIGABRT);
    assert!(counts.len() > 1, "every recording printed {counts:?} lines");
}

#[test]
fn a_rust_thread_killed_by_another_thread_fault_while_printing_replays_every_line() {
    let counts = printer_killed_by("rust_killed_mid_print", "segv", 128 + libc::SIGSEGV);
    assert!(counts.len() > 1, "every recording printed {counts:?} lines");
}
