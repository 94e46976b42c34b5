//! Programs whose threads race where rrc cannot see (Rust's std locks,
//! hand-written futex locks), recorded with `rrc-record --serialize`: one
//! thread at a time runs between syscalls, and replay follows the same
//! schedule, so every recording replays exactly. Recorded in parallel
//! (the default), such programs replay only as often as the event order
//! and timing happen to reproduce their races, but never stall.

use std::process::Command;
use std::time::Duration;

use rrc_tests::*;

/// Records `program` with `--serialize` and returns the recording.
fn record_serialized(program: &str, tag: &str) -> Recording {
    record_serialized_with(program, &[], tag)
}

/// [`record_serialized`] with arguments for the program.
fn record_serialized_with(program: &str, args: &[&str], tag: &str) -> Recording {
    let prog = rrc_tests::program(program);
    let dir = TempDir::new().expect("temporary directory");
    let trace = dir.path().join("trace.rrc");
    let out = run(
        Command::new(rrc_record())
            .arg("--serialize")
            .arg("-o")
            .arg(&trace)
            .arg("--")
            .arg(&prog)
            .args(args)
            .current_dir(dir.path()),
        None,
        &format!("rrc-record --serialize of {tag}"),
    );
    assert_no_panic(&out, "rrc-record --serialize");
    Recording {
        took: Duration::ZERO,
        dir,
        trace,
        program: prog,
        args: args.iter().map(|a| a.to_string()).collect(),
        stdout: out.stdout,
        stderr: out.stderr,
        status: out.status,
    }
}

fn every_serialized_recording_replays(program: &str, takes: usize) {
    for round in 1..=repeat() {
        for take in 1..=takes {
            let tag = format!("{program}-serialized-round{round}-take{take}");
            let rec = record_serialized(program, &tag);
            rec.assert_exit_code(0);
            for replay in 1..=2 {
                assert_faithful_replay(&rec, &tag, &format!("replay {replay} of 2"));
            }
        }
    }
}

#[test]
fn rust_workers_on_std_mutex_and_condvar_replay_exactly_when_serialized() {
    every_serialized_recording_replays("rust_queue", 8);
}

#[test]
fn rust_workers_take_jobs_differently_natively() {
    assert_native_runs_differ(&program("rust_queue"), &[], b"", 10);
}

#[test]
fn rust_readers_of_a_table_writers_change_under_a_std_rwlock_replay_exactly_when_serialized() {
    every_serialized_recording_replays("rust_rwlock", 3);
}

#[test]
fn rust_readers_see_different_tables_natively() {
    assert_native_runs_differ(&program("rust_rwlock"), &[], b"", 10);
}

#[test]
fn rust_readers_of_a_std_rwlock_recorded_in_parallel_end_quickly_faithful_or_divergent() {
    parallel_recordings_end_quickly_faithful_or_divergent("rust_rwlock", 3);
}

#[test]
fn rust_workers_sending_results_to_main_replay_exactly_when_serialized() {
    every_serialized_recording_replays("rust_fanin", 3);
}

#[test]
fn rust_workers_results_arrive_in_another_order_natively() {
    assert_native_runs_differ(&program("rust_fanin"), &[], b"", 10);
}

#[test]
fn rust_workers_sending_results_recorded_in_parallel_end_quickly_faithful_or_divergent() {
    parallel_recordings_end_quickly_faithful_or_divergent("rust_fanin", 3);
}

#[test]
fn a_hand_written_futex_lock_replays_exactly_when_serialized() {
    every_serialized_recording_replays("futex_lock", 5);
}

#[test]
fn cpp_workers_replay_exactly_when_serialized() {
    every_serialized_recording_replays("cpp_queue", 3);
}

#[test]
fn rust_workers_recorded_in_parallel_end_quickly_faithful_or_divergent() {
    parallel_recordings_end_quickly_faithful_or_divergent("rust_queue", 6);
}

/// The default mode cannot see Rust's locks: replay of `program`, recorded
/// in parallel `takes` times a round, may diverge, but must end within
/// seconds, never at the stall timeout.
fn parallel_recordings_end_quickly_faithful_or_divergent(program: &str, takes: usize) {
    let prog = rrc_tests::program(program);
    let mut faithful = 0;
    let takes = takes * repeat();
    for take in 1..=takes {
        let rec = record(&prog, &[], b"");
        rec.assert_exit_code(0);
        if replay_ends_faithful_or_divergent(&rec, &format!("take {take}")) {
            faithful += 1;
        }
    }
    eprintln!("{program} recorded in parallel: {faithful} of {takes} replays faithful");
}

#[test]
fn a_serialized_trace_says_so_and_counts_futex_calls() {
    let rec = record_serialized("rust_queue", "inspect");
    rec.assert_exit_code(0);
    let json = inspect_json(&rec.trace);
    assert_eq!(json["serialized"], true, "{json:#}");
    assert!(
        syscall_count(&json, "futex") > 0,
        "serialised, futex calls are recorded syscalls: {}",
        json["syscalls"]
    );
}

#[test]
fn a_serialized_trace_refuses_catch_up_replay_in_one_line() {
    // Its recorded schedule is the replay: nothing may trade places.
    let rec = record_serialized("rust_queue", "catch-up refused");
    rec.assert_exit_code(0);
    let out = replay(&rec.trace, &["--catch-up"]);
    assert_one_line_error(&out, "rrc-replay --catch-up of a serialized trace");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--catch-up") && err.contains("--serialize"),
        "{err}"
    );
}

/// Serialised, a thread that aborts while another is in a write to stdout
/// waits for that write's return, which waits for the run of the program
/// the aborting thread had: it gives the run back. Its signal used to go
/// after a wait of 100 ms instead, killing the writer with its bytes out
/// but not in the trace, and replay stopped with "no further syscalls"
/// at the threads still running when the process died.
#[test]
fn a_thread_killed_by_another_thread_abort_while_printing_replays_every_line_when_serialized() {
    let mut counts = std::collections::BTreeSet::new();
    for take in 1..=repeat() * 8 {
        let tag = format!("rust_killed_mid_print-serialized-take{take}");
        let rec = record_serialized_with("rust_killed_mid_print", &["abort"], &tag);
        rec.assert_exit_code(128 + libc::SIGABRT);
        assert_faithful_replay(&rec, &tag, "replay 1 of 1");
        counts.insert(rec.stdout_str().lines().count());
    }
    assert!(counts.len() > 1, "every recording printed {counts:?} lines");
}
