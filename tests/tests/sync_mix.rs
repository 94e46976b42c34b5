//! Semaphores, a spinlock, a barrier and trylock.

use rrc_tests::*;

const THREADS: u64 = 4;

#[test]
fn sync_mix_replay_is_identical() {
    let prog = program("sync_mix");
    for _ in 0..repeat() {
        record_and_replay(&prog, &[], b"", 0, 3);
    }
}

#[test]
fn sync_mix_outcomes_vary_natively() {
    assert_native_runs_differ(&program("sync_mix"), &[], b"", 10);
}

#[test]
fn sync_mix_inspect_counts_every_kind_of_operation() {
    let rec = record(&program("sync_mix"), &[], b"");
    rec.assert_exit_code(0);
    let json = check_inspect(&rec, 1 + THREADS as usize);
    let ops = &json["sync_ops"];
    // Exact counts follow from the program: 200 tokens + 4 stop tokens,
    // 3000 spin and trylock rounds per thread, one barrier wait each.
    assert_eq!(sync_count(&json, "sem_trywait"), 204, "sem_trywait: {ops}");
    assert_eq!(
        sync_count(&json, "pthread_spin_lock"),
        THREADS * 3000,
        "pthread_spin_lock: {ops}"
    );
    assert_eq!(
        sync_count(&json, "pthread_mutex_trylock"),
        THREADS * 3000,
        "pthread_mutex_trylock: {ops}"
    );
    assert_eq!(
        sync_count(&json, "pthread_barrier_wait"),
        THREADS,
        "pthread_barrier_wait: {ops}"
    );
    assert!(
        sync_count(&json, "sem_wait") <= 204,
        "sem_wait only when sem_trywait failed: {ops}"
    );
}
