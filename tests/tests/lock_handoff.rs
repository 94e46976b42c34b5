//! Lock hand-offs: when recorded, a thread that releases a contended lock
//! rrc does not see (Rust's `Mutex`, here stdout's) waits until the
//! waiter it woke has taken it, instead of taking it straight back as
//! these unfair locks let it; replay hands the lock on the same way. The
//! order in which threads took the lock, which no call shows, then
//! follows from the order of the wakes and waits, which replay keeps.

use std::process::Command;
use std::time::{Duration, Instant};

use rrc_tests::*;

/// `rrc-inspect --events` of a recording.
fn events(rec: &Recording) -> String {
    let out = run(
        Command::new(rrc_inspect()).arg("--events").arg(&rec.trace),
        None,
        "rrc-inspect --events",
    );
    assert!(out.status.success(), "rrc-inspect failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_contended_rust_lock_is_handed_to_the_woken_waiter_unless_turned_off() {
    let prog = program("rust_stdout_counter");
    let handed = |rec: &Recording| events(rec).matches("(lock handed on)").count();
    let on = record(&prog, &[], b"");
    on.assert_exit_code(0);
    let off = record_with_env(&prog, &[], b"", &[("RRC_LOCK_HANDOFF", "0")]);
    off.assert_exit_code(0);
    assert!(handed(&on) > 0, "no hand-off in:\n{}", events(&on));
    assert_eq!(handed(&off), 0, "RRC_LOCK_HANDOFF=0 hands nothing on");
}

#[test]
fn threads_numbering_lines_under_a_contended_lock_replay_when_locks_are_handed_on() {
    // Without hand-offs, a releaser took the lock back at once or not,
    // as timing had it, and replay could not tell which: 14 of 24 first
    // tries (`--retries 0`) were faithful, against 22 of 24 with them
    // (BENCHMARKS.md). With replay's tries, a floor is asserted here.
    let prog = program("rust_stdout_counter");
    let takes = 6 * repeat();
    let mut faithful = 0;
    for take in 1..=takes {
        let rec = record(&prog, &[], b"");
        rec.assert_exit_code(0);
        let started = Instant::now();
        if replay_ends_faithful_or_divergent(&rec, &format!("take {take}")) {
            faithful += 1;
        }
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(20),
            "take {take}: replay took {took:?}"
        );
    }
    assert!(
        faithful * 3 >= takes * 2,
        "{faithful} of {takes} recordings replayed faithfully"
    );
}

#[test]
fn threads_numbering_lines_under_a_contended_lock_number_them_differently_natively() {
    assert_native_runs_differ(&program("rust_stdout_counter"), &[], b"", 10);
}
