//! Catch-up replay (`rrc-replay --catch-up`): the recorded event order
//! regrouped within windows of events, so that each thread replays
//! runs of its own events and hands the order on less often. Programs
//! whose threads share state only under locks rrc sees replay exactly.

use rrc_tests::*;

const CATCH_UP: &[&str] = &["--no-intervals", "--catch-up", "--stats"];

fn catches_up_faithfully(name: &str, args: &[&str]) {
    let prog = program(name);
    for round in 1..=repeat().max(3) {
        let rec = record(&prog, args, b"");
        rec.assert_exit_code(0);
        let replayed = replay(&rec.trace, CATCH_UP);
        let (recorded, regrouped) = catch_up_handoffs(&replayed);
        let program_only = without_stats(replayed);
        assert_replay_matches(
            &rec,
            &program_only,
            &format!("{name}: catch-up, round {round}"),
        );
        // As many when the threads ran one after the other when recorded.
        assert!(
            regrouped <= recorded,
            "{name}: the catch-up order hands off no more ({regrouped} against {recorded})"
        );
    }
}

#[test]
fn threads_on_semaphores_spinlocks_a_barrier_and_trylocks_catch_up_faithfully() {
    catches_up_faithfully("sync_mix", &[]);
}

#[test]
fn threads_printing_through_one_fully_buffered_stdout_catch_up_faithfully() {
    catches_up_faithfully("stdio_threads", &["full"]);
}

#[test]
fn which_thread_got_which_token_varies_natively() {
    assert_native_runs_differ(&program("sync_mix"), &[], b"", 10);
}

#[test]
fn a_catch_up_replay_that_moves_an_unlocked_flag_replays_again_in_the_recorded_order() {
    // late_flag: the watcher's rounds and the setter's store, regrouped
    // across the whole run, come out in another order; the recorded
    // order puts the store where it was, as nearly always (the flag is
    // a race rrc sees no event of: see tests/stop_flags.rs).
    let prog = program("late_flag");
    let takes = 5 * repeat();
    let mut faithful = 0;
    for take in 1..=takes {
        let rec = record(&prog, &[], b"");
        rec.assert_exit_code(0);
        let whole_run = ["--catch-up", "--catch-up-window", "100000"];
        let alone = replay(&rec.trace, &[&whole_run[..], &["--retries", "0"]].concat());
        assert_divergence(
            &alone,
            &format!("take {take}: catch-up without another try"),
        );
        let replayed = replay(&rec.trace, &[&whole_run[..], &["--stats"]].concat());
        let err = String::from_utf8_lossy(&replayed.stderr);
        assert!(
            err.contains("the catch-up order diverged: replaying in the recorded order"),
            "take {take}: the fallback is reported:\n{err}"
        );
        if replayed.status.success() && replayed.stdout == rec.stdout {
            faithful += 1;
        } else {
            assert_divergence(&replayed, &format!("take {take}: in the recorded order"));
        }
    }
    assert!(
        faithful * 5 >= takes * 4,
        "{faithful} of {takes} recordings replayed faithfully in the recorded order"
    );
}
