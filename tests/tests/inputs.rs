//! A single-threaded program reading stdin, /dev/urandom, getrandom(),
//! the clocks, its pid and its environment.

use std::ffi::OsStr;
use std::time::{SystemTime, UNIX_EPOCH};

use rrc_tests::*;

const STDIN: &[u8] = b"first line of input\nsecond line\n\xff\x00binary tail without newline";

fn expected_stdin_line() -> String {
    format!("stdin: {} bytes, 2 lines", STDIN.len())
}

#[test]
fn inputs_replay_is_identical() {
    let prog = program("inputs");
    for round in 0..repeat() {
        let rec = record_and_replay(&prog, &["alpha", "beta gamma"], STDIN, 0, 3);
        let out = rec.stdout_str();
        assert!(
            out.contains(&expected_stdin_line()),
            "round {round}: rrc-record must pass stdin through to the program:\n{out}"
        );
        assert!(
            out.contains("argc: 3 [alpha] [beta gamma]"),
            "round {round}: arguments reach the program:\n{out}"
        );
        assert!(
            out.contains("clock order ok: yes"),
            "round {round}: clocks read during recording are consistent:\n{out}"
        );
    }
}

#[test]
fn inputs_native_runs_differ() {
    assert_native_runs_differ(&program("inputs"), &[], STDIN, 3);
}

#[test]
fn inputs_replay_without_intervals_is_identical() {
    let rec = record(&program("inputs"), &[], STDIN);
    rec.assert_exit_code(0);
    for i in 1..=2 {
        let out = replay(&rec.trace, &["--no-intervals"]);
        assert_replay_matches(&rec, &out, &format!("--no-intervals replay {i}"));
    }
}

#[test]
fn inputs_inspect_reports_time_and_randomness_as_syscalls() {
    let rec = record(&program("inputs"), &[], STDIN);
    rec.assert_exit_code(0);
    let json = check_inspect(&rec, 1);
    // The vDSO is hidden, so clock reads are real, recorded syscalls.
    for name in [
        "read",
        "openat",
        "getrandom",
        "clock_gettime",
        "gettimeofday",
        "time",
        "getpid",
        "gettid",
    ] {
        assert!(
            syscall_count(&json, name) > 0,
            "{name} should be among the recorded syscalls: {}",
            json["syscalls"]
        );
    }
    assert!(
        syscall_count(&json, "clock_gettime") >= 2,
        "two clock_gettime calls (monotonic and realtime): {}",
        json["syscalls"]
    );
    let t0 = &threads(&json)[0];
    assert!(
        t0["syscalls"].as_u64().unwrap_or(0) >= 8,
        "thread 0 made at least the 8 syscalls above: {t0}"
    );
    assert!(
        json["bytes"].is_object() || json["bytes"].is_u64(),
        "bytes statistics present: {}",
        json["bytes"]
    );
}

#[test]
fn inputs_replay_needs_neither_environment_nor_original_trace_location() {
    let token = format!(
        "token-{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos()
    );
    let rec = record_with_env(
        &program("inputs"),
        &[],
        STDIN,
        &[("RRC_TEST_TOKEN", token.as_str())],
    );
    rec.assert_exit_code(0);
    assert!(
        rec.stdout_str()
            .contains(&format!("env RRC_TEST_TOKEN: {token}")),
        "the program saw the environment it was recorded with:\n{}",
        rec.stdout_str()
    );
    // Replay runs without RRC_TEST_TOKEN, from a copy of the trace, with
    // the original trace deleted.
    assert!(std::env::var_os("RRC_TEST_TOKEN").is_none());
    let elsewhere = TempDir::new().expect("temporary directory");
    let copy = elsewhere.path().join("moved.rrc");
    std::fs::copy(&rec.trace, &copy).expect("copy the trace");
    std::fs::remove_file(&rec.trace).expect("delete the original trace");
    let out = replay(&copy, &[]);
    assert_replay_matches(&rec, &out, "replay of a moved trace");
}

#[test]
fn inspect_events_lists_the_recorded_syscalls() {
    let rec = record(&program("inputs"), &[], STDIN);
    rec.assert_exit_code(0);
    let trace = rec.trace.as_os_str();
    let all = inspect_raw(&[OsStr::new("--events"), trace]);
    assert!(
        all.status.success(),
        "rrc-inspect --events failed ({}):\n{}",
        all.status,
        String::from_utf8_lossy(&all.stderr)
    );
    let text = String::from_utf8_lossy(&all.stdout);
    for name in ["getrandom", "clock_gettime", "read"] {
        assert!(text.contains(name), "--events output lacks {name}:\n{text}");
    }
    let t0 = inspect_raw(&[
        OsStr::new("--events"),
        trace,
        OsStr::new("--thread"),
        OsStr::new("0"),
    ]);
    assert!(
        t0.status.success(),
        "rrc-inspect --events --thread 0 failed ({}):\n{}",
        t0.status,
        String::from_utf8_lossy(&t0.stderr)
    );
    let t0_text = String::from_utf8_lossy(&t0.stdout);
    assert!(
        t0_text.contains("getrandom"),
        "thread 0's events include getrandom:\n{t0_text}"
    );
    assert!(
        t0_text.lines().count() <= text.lines().count(),
        "one thread's events cannot outnumber all events"
    );

    let human = inspect_raw(&[trace]);
    assert!(
        human.status.success() && !human.stdout.is_empty(),
        "rrc-inspect TRACE prints a summary ({}):\n{}",
        human.status,
        String::from_utf8_lossy(&human.stderr)
    );
}

#[test]
fn the_processor_a_thread_runs_on_replays_as_recorded() {
    let prog = program("which_cpu");
    for _ in 0..repeat() {
        record_and_replay(&prog, &[], b"", 0, 2);
    }
}

#[test]
fn threads_run_on_other_processors_natively() {
    assert_native_runs_differ(&program("which_cpu"), &[], b"", 10);
}

#[test]
fn the_random_bytes_each_exec_gives_a_program_replay_as_recorded() {
    let prog = program("exec_random");
    for _ in 0..repeat() {
        let rec = record_and_replay(&prog, &[], b"", 0, 2);
        let text = String::from_utf8_lossy(&rec.stdout);
        assert!(
            text.contains("program 1 random") && text.contains("program 2 random"),
            "both programs printed their bytes:\n{text}"
        );
    }
}

#[test]
fn each_exec_gives_other_random_bytes_natively() {
    assert_native_runs_differ(&program("exec_random"), &[], b"", 4);
}
