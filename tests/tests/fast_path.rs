//! The fast path: hot calls made from the shim's own call site, untrapped,
//! and logged in-process (issue 13). Each test records with it on (and the
//! last with it off), checks through rrc-inspect that calls were buffered,
//! and replays: the shim answers those calls in-process (or they trap, with
//! `RRC_FAST_PATH=0`) and must find them as recorded.
//! The whole suite also runs with `RRC_FAST_PATH=0` (scripts/test.sh).

use rrc_tests::*;

const ON: &[(&str, &str)] = &[("RRC_FAST_PATH", "1")];
const OFF: &[(&str, &str)] = &[("RRC_FAST_PATH", "0")];

/// Records `fast_path MODE` with the fast path on, checks the exit status
/// and that at least `buffered` calls were buffered, and replays it twice.
fn record_mode(mode: &str, exit: i32, buffered: u64) -> Recording {
    let rec = record_with_env(&program("fast_path"), &[mode], b"", ON);
    rec.assert_exit_code(exit);
    let json = inspect_json(&rec.trace);
    let got = json["buffered_syscalls"].as_u64().unwrap_or(0);
    assert!(
        got >= buffered,
        "{}: at least {buffered} calls buffered by the fast path, got {got}: {}",
        rec.describe(),
        json["syscalls"]
    );
    for i in 1..=2 {
        assert_faithful_replay(
            &rec,
            &format!("fast_path-{mode}"),
            &format!("replay {i} of 2"),
        );
    }
    rec
}

#[test]
fn signals_that_interrupt_blocked_buffered_reads_and_epoll_waits_replay() {
    for _ in 0..repeat() {
        let rec = record_mode("signals", 0, 2);
        let out = rec.stdout_str();
        assert!(
            out.contains("read after a restarting signal: 5 handled 1"),
            "{out}"
        );
        assert!(out.contains("errno EINTR handled 2"), "{out}");
        assert!(
            out.contains("epoll_wait after a signal: -1 errno EINTR handled 3"),
            "{out}"
        );
    }
}

#[test]
fn timer_ticks_land_between_the_same_buffered_clock_reads() {
    for _ in 0..repeat() {
        record_mode("timer", 0, 100);
    }
}

#[test]
fn timer_ticks_land_at_other_clock_reads_natively() {
    assert_native_runs_differ(&program("fast_path"), &["timer"], b"", 10);
}

#[test]
fn more_calls_than_a_buffer_holds_and_a_send_larger_than_it_replay() {
    for _ in 0..repeat() {
        // 5,000 small writes (and as many clock reads) fill a thread's
        // buffer several times over.
        record_mode("overflow", 0, 5_000);
    }
}

#[test]
fn dup2_over_a_buffered_descriptor_replays() {
    for _ in 0..repeat() {
        record_mode("fds", 0, 3);
    }
}

#[test]
fn fork_and_vfork_while_threads_sit_in_buffered_reads_replay() {
    for _ in 0..repeat() {
        let rec = record_mode("fork", 0, 2);
        let out = rec.stdout_str();
        assert!(out.contains("the vfork child exited 0"), "{out}");
        assert_eq!(out.matches("woke with 1 byte").count(), 2, "{out}");
    }
}

#[test]
fn sigkill_during_a_blocked_buffered_read_replays_to_the_end() {
    for _ in 0..repeat() {
        record_mode("kill", 128 + libc::SIGKILL, 1);
    }
}

#[test]
fn a_thread_cancelled_while_blocked_in_a_buffered_read_is_cancelled_there_and_replays() {
    // glibc's read makes the thread's cancellation asynchronous while it
    // blocks; the shim's own call site must too, or the cancel is never
    // delivered and the program never ends.
    for _ in 0..repeat() {
        let rec = record_mode("cancel", 0, 1);
        let out = rec.stdout_str();
        assert!(out.contains("cleanup after 1 reads"), "{out}");
        assert!(out.contains("cancelled: yes"), "{out}");
    }
}

#[test]
fn a_cpp_thread_cancelled_in_a_buffered_read_runs_its_destructors_and_replays() {
    // The unwinder steps from the shim's call site to the program's frames
    // (the site's unwind information is registered at the first
    // pthread_cancel); without it the destructor silently did not run.
    for round in 0..repeat() {
        let rec = record_with_env(&program("cpp_cancel"), &[], b"", ON);
        rec.assert_exit_code(0);
        let out = rec.stdout_str();
        assert!(out.contains("destructor ran"), "{}: {out}", rec.describe());
        assert!(out.contains("cancelled: yes"), "{}: {out}", rec.describe());
        assert_faithful_replay(&rec, "cpp_cancel", &format!("round {round}"));
    }
}

#[test]
fn a_constructors_clock_read_and_a_threads_first_buffered_call_replay() {
    for _ in 0..repeat() {
        record_mode("early", 0, 1);
    }
}

/// A program built with `_FORTIFY_SOURCE` (Ubuntu's default) calls glibc's
/// checked entry points (`__read_chk`, `__pread64_chk`, `__recv_chk`,
/// `__poll_chk`), and servers read files with `pread`: all are buffered,
/// and the records two threads `pwrite` replay byte for byte.
#[test]
fn fortified_reads_and_positioned_file_io_are_buffered_and_replay() {
    let prog = program("fortified_io");
    let native = [run_native(&prog, &[], b""), run_native(&prog, &[], b"")];
    assert!(
        native.iter().all(|n| n.status.success()),
        "native runs fail"
    );
    assert_ne!(
        native[0].stdout, native[1].stdout,
        "the records' times make native runs differ"
    );
    for _ in 0..repeat() {
        let rec = record_with_env(&prog, &[], b"", ON);
        rec.assert_exit_code(0);
        let json = inspect_json(&rec.trace);
        // 400 pwrites, 400 preads, 50 each of read, recv and poll.
        let buffered = json["buffered_syscalls"].as_u64().unwrap_or(0);
        assert!(
            buffered >= 950,
            "{}: at least 950 calls buffered, got {buffered}: {}",
            rec.describe(),
            json["syscalls"]
        );
        for i in 1..=2 {
            assert_faithful_replay(&rec, "fortified_io", &format!("replay {i} of 2"));
        }
    }
}

/// A thread that makes only buffered calls and then waits never stops
/// for the tracer; its calls still reach the trace while it waits (the
/// recorder reads the buffers every 50 ms), which a backup reading the
/// trace as a stream needs.
#[test]
fn buffered_calls_reach_the_trace_while_the_program_still_waits() {
    let live = start_recording_with_env(&program("fast_path"), &["idle"], ON);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut seen = 0;
    while seen < 300 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let out = std::process::Command::new(rrc_inspect())
            .arg(live.trace_path())
            .arg("--json")
            .output()
            .expect("rrc-inspect runs");
        if let Ok(json) = serde_json::from_slice::<serde_json::Value>(&out.stdout) {
            seen = json["buffered_syscalls"].as_u64().unwrap_or(0);
        }
    }
    let rec = live.stop(libc::SIGTERM);
    assert!(
        seen >= 300,
        "{}: the 300 buffered writes were in the trace while the program waited: saw {seen}",
        rec.describe()
    );
}

#[test]
fn with_the_fast_path_off_every_call_traps_and_replays() {
    let rec = record_with_env(&program("fast_path"), &["timer"], b"", OFF);
    rec.assert_exit_code(0);
    let json = inspect_json(&rec.trace);
    assert_eq!(json["buffered_syscalls"], 0, "{}", rec.describe());
    // Clock reads until 5 ticks of a 2 ms timer: how many fit in 10 ms
    // depends on the machine's load, but each traps.
    assert!(
        syscall_count(&json, "clock_gettime") >= 5,
        "{}",
        json["syscalls"]
    );
    let out = replay(&rec.trace, &[]);
    assert_replay_matches(&rec, &out, "fast path off");
}

/// What `rrc-replay --stats` says the shim answered in-process, and the
/// replay's output without the statistics lines.
fn answered_in_process(out: std::process::Output) -> (Option<u64>, std::process::Output) {
    let answered = String::from_utf8_lossy(&out.stderr).lines().find_map(|l| {
        l.strip_prefix("rrc-replay: stats: calls answered in-process by the shim: ")?
            .trim()
            .parse()
            .ok()
    });
    (answered, without_stats(out))
}

#[test]
fn replay_answers_buffered_calls_in_the_shim_unless_told_not_to() {
    // The timer test's program has one thread: its calls are answered in
    // the shim unless replay is told otherwise.
    let rec = record_mode("timer", 0, 100);
    for (flags, env, in_process) in [
        (&["--stats"][..], "1", true),
        (&["--stats", "--no-fast-path"][..], "1", false),
        (&["--stats"][..], "0", false),
    ] {
        let answered = replay_counting_answers(&rec, flags, env);
        if in_process {
            // The timer test's thread makes hundreds of clock reads.
            assert!(
                answered > 100,
                "{flags:?}: {answered} calls answered in-process"
            );
        } else {
            assert_eq!(
                answered, 0,
                "{flags:?} RRC_FAST_PATH={env}: every call traps"
            );
        }
    }
}

#[test]
fn a_program_with_several_threads_gets_answers_in_the_shim_unless_told_not_to() {
    let rec = record_mode("early", 0, 1);
    assert!(replay_counting_answers(&rec, &["--stats"], "1") > 0);
    assert_eq!(
        replay_counting_answers(&rec, &["--stats", "--no-fast-path"], "1"),
        0
    );
}

#[test]
fn interleaved_threads_get_answers_in_the_shim_and_wait_there_for_their_next_event() {
    // A call whose thread's next event comes after other threads' events
    // when recorded is answered in the shim too, which keeps the thread
    // until that event is next (it was left to the tracer, a stop each).
    let prog = program("fast_path");
    assert_native_runs_differ(&prog, &["interleave"], b"", 10);
    for _ in 0..repeat() {
        let rec = record_with_env(&prog, &["interleave"], b"", ON);
        rec.assert_exit_code(0);
        let buffered = inspect_json(&rec.trace)["buffered_syscalls"]
            .as_u64()
            .unwrap_or(0);
        // 3 threads x 300 rounds of a clock read and a write.
        assert!(buffered >= 1800, "{}: {buffered} buffered", rec.describe());
        let answered = replay_counting_answers(&rec, &["--stats"], "1");
        assert!(
            answered * 10 >= buffered * 9,
            "{}: {answered} of {buffered} buffered calls answered in the shim",
            rec.describe()
        );
    }
}

/// Replays `rec` with `flags` and RRC_FAST_PATH=`env`, faithfully, and
/// returns how many calls the shim answered.
fn replay_counting_answers(rec: &Recording, flags: &[&str], env: &str) -> u64 {
    let mut cmd = std::process::Command::new(rrc_replay());
    cmd.env("RRC_FAST_PATH", env).args(flags).arg(&rec.trace);
    let what = format!("rrc-replay {flags:?} with RRC_FAST_PATH={env}");
    let (answered, out) =
        answered_in_process(run_within(&mut cmd, None, &what, rec.replay_limit()));
    assert_replay_matches(rec, &out, &what);
    answered.unwrap_or_else(|| panic!("{what}: no statistics line"))
}
