//! The bundled demo (demo/demo.c), as scripts/demo.sh runs it.

use rrc_tests::*;

#[test]
fn demo_replay_is_identical() {
    let prog = program("demo");
    for _ in 0..repeat() {
        let rec = record_and_replay(&prog, &[], b"", 0, 3);
        assert!(
            rec.stdout_str().contains("The bakery is closed."),
            "the demo ran to the end:\n{}",
            rec.stdout_str()
        );
    }
}

#[test]
fn demo_story_varies_natively() {
    assert_native_runs_differ(&program("demo"), &[], b"", 5);
}

#[test]
fn demo_inspect_shows_threads_and_sync() {
    let rec = record(&program("demo"), &[], b"");
    rec.assert_exit_code(0);
    // main, three bakers, the courier
    let json = check_inspect(&rec, 5);
    assert!(
        sync_count(&json, "pthread_mutex_lock") > 0,
        "{}",
        json["sync_ops"]
    );
    for name in ["getrandom", "clock_gettime"] {
        assert!(
            syscall_count(&json, name) > 0,
            "{name}: {}",
            json["syscalls"]
        );
    }
}
