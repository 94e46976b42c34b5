//! Four threads contending on a mutex and condition variables (pthread's,
//! and C11's `mtx_t`/`cnd_t`): replay must reproduce the lock order.

use rrc_tests::*;

const WORKERS: usize = 4;
const ITERS: u64 = 2500;

#[test]
fn mutex_cond_replay_is_identical() {
    let prog = program("mutex_cond");
    for round in 0..repeat() {
        let rec = record_and_replay(&prog, &[], b"", 0, 3);
        let out = rec.stdout_str();
        assert!(
            out.contains("counter: 10000 (expected 10000)"),
            "round {round}: the recorded program ran correctly:\n{out}"
        );
    }
}

#[test]
fn mutex_cond_lock_order_varies_natively() {
    assert_native_runs_differ(&program("mutex_cond"), &[], b"", 10);
}

#[test]
fn mutex_cond_replay_without_intervals_is_identical() {
    let rec = record(&program("mutex_cond"), &[], b"");
    rec.assert_exit_code(0);
    let out = replay(&rec.trace, &["--no-intervals"]);
    assert_replay_matches(&rec, &out, "--no-intervals replay");
}

#[test]
fn mutex_cond_inspect_counts_threads_and_lock_operations() {
    let rec = record(&program("mutex_cond"), &[], b"");
    rec.assert_exit_code(0);
    let json = check_inspect(&rec, 1 + WORKERS);
    let locks = sync_count(&json, "pthread_mutex_lock");
    assert!(
        locks >= WORKERS as u64 * ITERS,
        "every pthread_mutex_lock is recorded: expected at least {}, got {locks}: {}",
        WORKERS as u64 * ITERS,
        json["sync_ops"]
    );
    assert!(
        sync_count(&json, "pthread_cond_wait") > 0,
        "condition waits are recorded: {}",
        json["sync_ops"]
    );
    for t in &threads(&json)[1..] {
        assert_eq!(t["parent"], 0, "workers were created by thread 0: {t}");
        assert!(
            t["sync_ops"].as_u64().unwrap_or(0) >= ITERS,
            "each worker locked the mutex {ITERS} times: {t}"
        );
    }
}

#[test]
fn c11_threads_on_mtx_and_cnd_replay_identically() {
    for _ in 0..repeat() {
        record_and_replay(&program("c11_queue"), &[], b"", 0, 3);
    }
}

#[test]
fn c11_workers_take_jobs_differently_natively() {
    assert_native_runs_differ(&program("c11_queue"), &[], b"", 10);
}

#[test]
fn openmp_critical_sections_and_locks_replay_identically() {
    for _ in 0..repeat() {
        record_and_replay(&program("omp_critical"), &[], b"", 0, 3);
    }
}

#[test]
fn openmp_threads_take_critical_sections_differently_natively() {
    assert_native_runs_differ(&program("omp_critical"), &[], b"", 10);
}
