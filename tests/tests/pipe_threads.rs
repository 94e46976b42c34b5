//! A pipe between two threads, read with a small buffer.

use rrc_tests::*;

fn reads_reported(stdout: &str) -> u64 {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("reads: "))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no 'reads: N' line in:\n{stdout}"))
}

#[test]
fn pipe_threads_replay_is_identical() {
    let prog = program("pipe_threads");
    for _ in 0..repeat() {
        record_and_replay(&prog, &[], b"", 0, 3);
    }
}

#[test]
fn pipe_threads_read_sizes_vary_natively() {
    assert_native_runs_differ(&program("pipe_threads"), &[], b"", 10);
}

#[test]
fn pipe_threads_inspect_counts_pipe_reads() {
    let rec = record(&program("pipe_threads"), &[], b"");
    rec.assert_exit_code(0);
    let json = check_inspect(&rec, 2);
    let reads = reads_reported(&rec.stdout_str());
    assert!(
        syscall_count(&json, "pipe") + syscall_count(&json, "pipe2") == 1,
        "one pipe: {}",
        json["syscalls"]
    );
    assert!(
        syscall_count(&json, "read") > reads,
        "each of the {reads} pipe reads and the final EOF read are recorded: {}",
        json["syscalls"]
    );
    assert!(
        syscall_count(&json, "write") >= 60,
        "the 60 pipe writes are recorded: {}",
        json["syscalls"]
    );
}
