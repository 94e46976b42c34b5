//! A thread blocked in a futex wait when the recording ended (its process
//! exited meanwhile) never returned from it: in replay it stays blocked
//! there, as it was, instead of waking after a bounded wait and running
//! code it never ran.

use rrc_tests::*;

#[test]
fn a_condvar_waiter_never_notified_stays_asleep_while_another_thread_exits_the_process() {
    // Its wait used to end after a millisecond in replay: it printed
    // "never" with stdout's lock held, and the worker's lines could not
    // come out (every replay failed).
    let prog = program("rust_exit_while_waiting");
    for take in 1..=4 * repeat() {
        let rec =
            record_and_replay_keeping(&prog, &[], b"", 3, 2, &format!("exit_while_waiting-{take}"));
        let stdout = rec.stdout_str();
        assert!(
            stdout.contains("worker line 4") && !stdout.contains("never"),
            "take {take}: {stdout}"
        );
    }
}

#[test]
fn a_worker_exiting_the_process_prints_other_times_natively() {
    // The program exits with 3, which `assert_native_runs_differ` refuses.
    let prog = program("rust_exit_while_waiting");
    let outputs: std::collections::BTreeSet<Vec<u8>> = (0..10)
        .map(|_| {
            let out = run_native(&prog, &[], b"");
            assert_eq!(out.status.code(), Some(3), "{out:?}");
            out.stdout
        })
        .collect();
    assert!(outputs.len() > 1, "10 native runs printed the same");
}
