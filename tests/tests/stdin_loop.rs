//! read() in a loop on stdin with a 7-byte buffer.

use std::os::unix::process::CommandExt;
use std::process::Command;

use rrc_tests::*;

fn input() -> Vec<u8> {
    word_lines(900)
}

#[test]
fn stdin_loop_replay_is_identical() {
    let prog = program("stdin_loop");
    let input = input();
    for round in 0..repeat() {
        let rec = record_and_replay(&prog, &[], &input, 0, 3);
        assert!(
            rec.stdout_str()
                .starts_with(&format!("bytes {} in ", input.len())),
            "round {round}: all of stdin reached the program:\n{}",
            rec.stdout_str()
        );
    }
}

#[test]
fn stdin_loop_native_runs_differ() {
    assert_native_runs_differ(&program("stdin_loop"), &[], &input(), 5);
}

#[test]
fn stdin_loop_replay_with_stdin_closed() {
    let rec = record(&program("stdin_loop"), &[], &input());
    rec.assert_exit_code(0);
    let mut cmd = Command::new(rrc_replay());
    cmd.arg(&rec.trace);
    // SAFETY: close(2) is async-signal-safe; nothing else runs in the child.
    unsafe {
        cmd.pre_exec(|| {
            libc::close(0);
            Ok(())
        });
    }
    let out = run(&mut cmd, None, "rrc-replay with fd 0 closed");
    assert_no_panic(&out, "rrc-replay");
    assert_replay_matches(&rec, &out, "replay with stdin closed");
}

#[test]
fn stdin_loop_inspect_counts_small_reads() {
    let input = input();
    let rec = record(&program("stdin_loop"), &[], &input);
    rec.assert_exit_code(0);
    let json = check_inspect(&rec, 1);
    let min_reads = input.len().div_ceil(7) as u64 + 1;
    assert!(
        syscall_count(&json, "read") >= min_reads,
        "at least {min_reads} reads of at most 7 bytes: {}",
        json["syscalls"]
    );
}
