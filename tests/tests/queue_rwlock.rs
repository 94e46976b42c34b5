//! A reader thread feeding three workers from stdin through a queue,
//! with a table behind a pthread_rwlock that a writer keeps updating.

use rrc_tests::*;

const LINES: usize = 300;

#[test]
fn queue_rwlock_replay_is_identical() {
    let prog = program("queue_rwlock");
    let input = word_lines(LINES);
    for round in 0..repeat() {
        let rec = record_and_replay(&prog, &[], &input, 0, 3);
        let out = rec.stdout_str();
        assert!(
            out.contains(&format!("items: {LINES},")),
            "round {round}: every stdin line became an item:\n{out}"
        );
    }
}

#[test]
fn queue_rwlock_work_distribution_varies_natively() {
    assert_native_runs_differ(&program("queue_rwlock"), &[], &word_lines(LINES), 10);
}

#[test]
fn queue_rwlock_inspect_counts_rwlock_operations() {
    let rec = record(&program("queue_rwlock"), &[], &word_lines(LINES));
    rec.assert_exit_code(0);
    // main, writer, 3 workers, reader
    let json = check_inspect(&rec, 6);
    assert!(
        sync_count(&json, "pthread_rwlock_rdlock") >= LINES as u64,
        "one read lock per item: {}",
        json["sync_ops"]
    );
    assert!(
        sync_count(&json, "pthread_rwlock_wrlock") >= 2,
        "the writer and main take the write lock: {}",
        json["sync_ops"]
    );
    assert!(
        sync_count(&json, "pthread_mutex_lock") >= 2 * LINES as u64,
        "queue operations lock the mutex: {}",
        json["sync_ops"]
    );
    assert!(
        syscall_count(&json, "read") > 0,
        "stdin reads: {}",
        json["syscalls"]
    );
}
