//! Children killed as soon as they are started, as a timeout around
//! Rust's `Command` does: the kill finds each child wherever it has got
//! to (in posix_spawn's exec, which never returned to the tracer when
//! recorded; loading; printing). Replay makes the exec, kills the child
//! where the recording's kill found it, and prints what it printed: it
//! used to stall until the stall timeout, or end the child early or late.

use rrc_tests::*;

#[test]
fn children_killed_right_after_spawn_replay_where_they_were_killed() {
    let prog = program("rust_kill_children");
    for round in 1..=repeat() * 10 {
        let tag = format!("rust_kill_children-{round}");
        let rec = record_and_replay_keeping(&prog, &[], b"", 0, 1, &tag);
        let stdout = rec.stdout_str();
        assert!(
            stdout.contains("sleep: signal: 9") && stdout.contains("child 3: signal: 9"),
            "round {round}: the children were not all killed:\n{stdout}"
        );
    }
}

#[test]
fn children_killed_right_after_spawn_print_differently_natively() {
    assert_native_runs_differ(&program("rust_kill_children"), &[], b"", 10);
}
