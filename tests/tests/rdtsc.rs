//! rdtsc without the thread trap: once a thread has made 1,000 calls the
//! shim wraps, rrc patches each rdtsc and rdtscp the program has mapped
//! into a fault of its own and ends `PR_TSC_SIGSEGV` for that thread
//! (which costs a control register write at every switch with another
//! program), and the shim reads its clocks through the vDSO. The values still come from the trace
//! in replay. `--trap-rdtsc` keeps the old way.

use std::process::Command;

use rrc_tests::*;

/// What the shim's question (`prctl(PR_SET_TSC, 1, TSC_ASK)`) was
/// answered in a trace: the result column of its line in `--events`.
fn tsc_answers(trace: &std::path::Path) -> Vec<String> {
    let out = inspect_raw(&["--events".as_ref(), trace.as_os_str()]);
    assert!(out.status.success(), "rrc-inspect --events failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("prctl(26, 1, 0x5252435f54534321"))
        .filter_map(|l| l.split(" = ").nth(1))
        .map(|r| r.split_whitespace().next().unwrap_or("").to_string())
        .collect()
}

fn native_outputs_differ(prog: &std::path::Path) {
    let a = run_native(prog, &[], b"");
    let b = run_native(prog, &[], b"");
    assert!(
        a.status.success() && b.status.success(),
        "native runs failed"
    );
    assert_ne!(a.stdout, b.stdout, "two native runs read the same values");
}

/// Records `name` `repeat()` times and replays each recording twice:
/// faithful, with a number of rdtsc reads recorded in `reads`, and the
/// thread trap ended at the shim's question in each of its `threads`
/// busy threads.
fn replays_with_every_read_recorded(name: &str, reads: std::ops::Range<u64>, threads: usize) {
    let prog = program(name);
    native_outputs_differ(&prog);
    for round in 1..=repeat() {
        let rec = record_and_replay(&prog, &[], b"", 0, 2);
        let json = inspect_json(&rec.trace);
        let recorded = json["tsc_reads"].as_u64().unwrap_or(0);
        assert!(
            reads.contains(&recorded),
            "round {round}: {recorded} rdtsc recorded, expected {reads:?}"
        );
        // Each thread busy with clock reads asks, and leaves the trap.
        let answers = tsc_answers(&rec.trace);
        assert_eq!(answers.len(), threads, "round {round}: {answers:?}");
        assert!(
            answers.iter().all(|a| a != "1"),
            "round {round}: the thread trap was kept: {answers:?}"
        );
    }
}

#[test]
fn threads_reading_the_tsc_and_the_clocks_replay_the_values_they_read() {
    // 4 threads x 600 rounds x (rdtsc + rdtscp), main's one, and the
    // dynamic loader's (start-up timing, before the shim asks).
    replays_with_every_read_recorded("tsc_threads", 4801..4901, 4);
}

#[test]
fn with_trap_rdtsc_the_thread_trap_stays_and_the_values_replay_all_the_same() {
    let prog = program("tsc_threads");
    let trace = std::env::temp_dir().join(format!("rrc-trap-rdtsc-{}.trace", std::process::id()));
    let rec = run(
        Command::new(rrc_record())
            .arg("--trap-rdtsc")
            .arg("-o")
            .arg(&trace)
            .arg("--")
            .arg(&prog),
        None,
        "rrc-record --trap-rdtsc",
    );
    assert!(rec.status.success(), "recording failed");
    assert_eq!(tsc_answers(&trace), vec!["1".to_string(); 4]);
    let json = inspect_json(&trace);
    let reads = json["tsc_reads"].as_u64().unwrap_or(0);
    assert!((4801..4901).contains(&reads), "{reads} rdtsc recorded");
    let out = replay(&trace, &[]);
    let _ = std::fs::remove_file(&trace);
    assert!(
        out.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, rec.stdout, "replayed output differs");
}

#[test]
fn rdtsc_in_a_library_loaded_after_the_start_is_recorded_too() {
    // 2 threads x 2,000 calls x (rdtsc + rdtscp), and the loader's.
    replays_with_every_read_recorded("tsc_dlopen", 8000..8100, 2);
}

#[test]
fn a_busy_thread_that_sets_its_own_rdtsc_mode_gets_sigsegv_as_natively() {
    // Its rdtsc was patched when it left rrc's trap; under its own mode
    // the patches are put back, so the fault is a SIGSEGV, not a SIGILL.
    let expect = ["faults after one rdtsc: 1, of them SIGSEGV: 1"];
    for rec in prints_what_it_prints_natively("tsc_busy_own_mode", &expect) {
        assert_eq!(tsc_answers(&rec.trace).len(), 1, "one question");
    }
}
