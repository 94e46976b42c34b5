//! Worker loops that poll a stop flag (a C11 atomic, a C++ std::atomic,
//! std::jthread's stop_token) and sleep between turns, stopped by main,
//! which sets the flag and joins them. The store is between two of main's
//! syscalls and rrc cannot see it; the join that follows it (ordered like
//! any sync operation) gives it its place among the workers' wake-ups, so
//! each worker stops after as many turns as when recorded. Native runs
//! stop them after other numbers of turns.
//!
//! A worker that wakes within a microsecond or so of main's store races
//! it where only timing decides (rrc sees neither the store nor the
//! load), so these tests ask for nearly every recording, not every one:
//! before the join took a place in the order, none replayed.
//!
//! Without a join after the store, the entry of main's next sleep places
//! it: calls that wait (sleeps, waits for a child) have their entries
//! stamped, as the thread got there, and the code before one runs just
//! before that entry's place in replay.
//!
//! Threads that spin on a counter with sched_yield between looks take
//! their turns as recorded: each yield has a place in the order (none of
//! these replayed before).

use rrc_tests::*;

/// Records `program` `takes` times (times RRC_TEST_REPEAT), replays each
/// once, and asks that every replay end faithful or with a divergence
/// (never a stall) and that at most one in five diverge.
fn nearly_every_recording_replays(program: &str, takes: usize) {
    let prog = rrc_tests::program(program);
    let takes = takes * repeat();
    let mut faithful = 0;
    for take in 1..=takes {
        let rec = record(&prog, &[], b"");
        rec.assert_exit_code(0);
        if replay_ends_faithful_or_divergent(&rec, &format!("{program} take {take}")) {
            faithful += 1;
        }
    }
    assert!(
        faithful * 5 >= takes * 4,
        "{program}: {faithful} of {takes} recordings replayed faithfully"
    );
}

#[test]
fn c_workers_stopped_by_an_atomic_flag_before_a_join_replay_their_turns() {
    nearly_every_recording_replays("stop_flag_join", 10);
}

#[test]
fn c_workers_stopped_by_an_atomic_flag_take_other_turns_natively() {
    assert_native_runs_differ(&program("stop_flag_join"), &[], b"", 10);
}

#[test]
fn cpp_workers_stopped_by_an_atomic_and_a_stop_token_replay_their_turns() {
    nearly_every_recording_replays("cpp_stop_flag", 10);
}

#[test]
fn cpp_workers_stopped_by_an_atomic_and_a_stop_token_take_other_turns_natively() {
    assert_native_runs_differ(&program("cpp_stop_flag"), &[], b"", 10);
}

#[test]
fn workers_stopped_by_a_flag_set_between_two_sleeps_replay_their_turns() {
    // No join follows main's store: the entry of its next sleep has a
    // place in the order (as do the entries of the workers' sleeps), and
    // the store runs just before it.
    nearly_every_recording_replays("sleep_stop_flag", 10);
}

#[test]
fn workers_stopped_by_a_flag_set_between_two_sleeps_take_other_turns_natively() {
    assert_native_runs_differ(&program("sleep_stop_flag"), &[], b"", 10);
}

#[test]
fn threads_spinning_with_sched_yield_for_their_turn_replay_their_waits() {
    // Each yield is an optional call with a place in the event order: the
    // look at the counter after it comes where it came when recorded.
    for round in 1..=repeat() {
        for take in 1..=4 {
            let tag = format!("yield_turns-round{round}-take{take}");
            record_and_replay_keeping(&program("yield_turns"), &[], b"", 0, 2, &tag);
        }
    }
}

#[test]
fn threads_spinning_with_sched_yield_wait_for_other_turns_natively() {
    assert_native_runs_differ(&program("yield_turns"), &[], b"", 10);
}
