//! Interval enforcement: replay holds syscall returns to the recorded
//! intervals, so a recorded gap is a gap in replay too; without intervals
//! the emulated sleep returns at once.

use std::time::{Duration, Instant};

use rrc_tests::*;

const GAP: Duration = Duration::from_millis(50);

fn timed_replay(trace: &std::path::Path, args: &[&str]) -> (std::process::Output, Duration) {
    let start = Instant::now();
    let out = replay(trace, args);
    (out, start.elapsed())
}

#[test]
fn replay_keeps_a_recorded_50ms_gap() {
    let rec = record(&program("gap50"), &[], b"");
    rec.assert_exit_code(0);
    assert!(
        rec.stdout_str().starts_with("slept 5"),
        "the program itself should have slept ~50 ms: {}",
        rec.stdout_str()
    );
    for round in 0..repeat() {
        for anchor in ["shared", "thread"] {
            let (out, took) = timed_replay(&rec.trace, &["--anchor", anchor]);
            assert_replay_matches(
                &rec,
                &out,
                &format!("replay round {round}, anchor {anchor}"),
            );
            assert!(
                took >= GAP,
                "replay with intervals (anchor {anchor}) took {took:?}, less than the recorded {GAP:?} gap"
            );
        }
    }
}

#[test]
fn stats_report_enforcement_error() {
    let rec = record(&program("gap50"), &[], b"");
    rec.assert_exit_code(0);
    let (out, _) = timed_replay(&rec.trace, &["--stats"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The program's stderr is empty, so every stderr line is a stats line.
    let held = stderr
        .lines()
        .find(|l| l.contains("held for their interval"))
        .unwrap_or_else(|| panic!("no stats line in: {stderr}"));
    let held_count: u64 = held
        .split(" syscalls replayed, ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot parse held count from: {held}"));
    assert!(
        held_count >= 1,
        "the 50 ms sleep must have been held: {held}"
    );
    assert!(
        stderr.contains("enforcement error") && stderr.contains("median") && stderr.contains("p99"),
        "stats must report the enforcement error's median and p99: {stderr}"
    );
}

#[test]
fn no_intervals_replays_faithfully() {
    let rec = record(&program("gap50"), &[], b"");
    rec.assert_exit_code(0);
    let (out, _) = timed_replay(&rec.trace, &["--no-intervals"]);
    assert_replay_matches(&rec, &out, "replay without intervals");
}
