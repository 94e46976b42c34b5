//! Ordinary programs whose threads share stdio streams: printing
//! concurrently (line-buffered, fully buffered and unbuffered, to a pipe
//! and to a file), reading lines from one stdin, and C++'s std::cout with
//! std::mutex and std::condition_variable. stdio takes each stream's lock
//! inside libc, where rrc cannot see it; the shim orders it like a mutex.
//! So it does libc's random-number state (`rand`, `random`, `drand48`...).
//! Writes straight to copies of stdout come out in their recorded order.

use std::ffi::OsStr;

use rrc_tests::*;

/// Records `program` `takes` times (times RRC_TEST_REPEAT) and replays
/// each recording twice, faithfully.
fn record_and_replay_all(program: &str, args: &[&str], stdin: &[u8], takes: usize) {
    let prog = rrc_tests::program(program);
    for round in 1..=repeat() {
        for take in 1..=takes {
            let tag = format!("{program}-{}-round{round}-take{take}", args.join("-"));
            record_and_replay_keeping(&prog, args, stdin, 0, 2, &tag);
        }
    }
}

#[test]
fn threads_printing_line_buffered_to_a_pipe_replay_byte_for_byte() {
    record_and_replay_all("stdio_threads", &["line"], b"", 3);
}

#[test]
fn threads_printing_fully_buffered_to_a_pipe_replay_byte_for_byte() {
    // Each write(2) carries lines of several threads, in the order they
    // took stdout's lock.
    record_and_replay_all("stdio_threads", &["full"], b"", 3);
}

#[test]
fn threads_printing_unbuffered_replay_byte_for_byte() {
    record_and_replay_all("stdio_threads", &["none"], b"", 2);
}

#[test]
fn threads_printing_fully_buffered_to_a_file_replay_byte_for_byte() {
    record_and_replay_all("stdio_threads", &["full", "out.txt"], b"", 3);
}

#[test]
fn threads_printing_through_stdio_interleave_differently_natively() {
    assert_native_runs_differ(&program("stdio_threads"), &["full"], b"", 10);
}

#[test]
fn threads_reading_lines_from_one_stdin_replay() {
    let input = word_lines(400);
    record_and_replay_all("stdin_threads", &[], &input, 3);
}

#[test]
fn threads_reading_lines_from_one_stdin_share_them_differently_natively() {
    assert_native_runs_differ(&program("stdin_threads"), &[], &word_lines(400), 10);
}

/// Numbers, one per line.
fn number_lines(n: usize) -> Vec<u8> {
    (1..=n)
        .map(|i| format!("{i}\n"))
        .collect::<String>()
        .into_bytes()
}

#[test]
fn threads_flushing_every_stream_while_others_print_and_scanf_replay_byte_for_byte() {
    // fflush(NULL) takes every stream's lock inside libc: the shim walks
    // the streams itself, each lock at its turn.
    record_and_replay_all("stdio_flush_all", &[], &number_lines(900), 3);
}

#[test]
fn threads_flushing_every_stream_take_other_numbers_natively() {
    assert_native_runs_differ(&program("stdio_flush_all"), &[], &number_lines(900), 10);
}

#[test]
fn threads_still_printing_when_main_returns_replay_byte_for_byte() {
    // exit's flush of stdout runs at its recorded turn among the workers'
    // printfs and keeps stdout, so no worker line goes out after it.
    record_and_replay_all("exit_while_printing", &["flush"], b"", 5);
    record_and_replay_all("exit_while_printing", &["buffered"], b"", 3);
}

#[test]
fn threads_still_printing_when_main_returns_print_other_lines_natively() {
    assert_native_runs_differ(&program("exit_while_printing"), &["flush"], b"", 10);
}

#[test]
fn cpp_workers_logging_with_cout_replay_byte_for_byte() {
    record_and_replay_all("cpp_queue", &[], b"", 4);
}

#[test]
fn cpp_workers_take_jobs_differently_natively() {
    assert_native_runs_differ(&program("cpp_queue"), &[], b"", 10);
}

#[test]
fn stdio_locks_are_counted_as_sync_operations() {
    let rec = record(&program("stdio_threads"), &["full"], b"");
    rec.assert_exit_code(0);
    let json = check_inspect(&rec, 5);
    // 4 threads x 200 lines, at least one stdio call each.
    assert!(
        sync_count(&json, "flockfile") >= 800,
        "stdio calls take stdout's lock: {}",
        json["sync_ops"]
    );
}

#[test]
fn a_lock_rrc_cannot_see_ends_replay_quickly_faithful_or_divergent() {
    // A hand-written futex lock around the output: rrc records no order
    // for it. Replay must end within seconds either way, never stall.
    let prog = program("futex_lock");
    for take in 1..=4 * repeat() {
        let rec = record(&prog, &[], b"");
        rec.assert_exit_code(0);
        replay_ends_faithful_or_divergent(&rec, &format!("take {take}"));
    }
}

#[test]
fn threads_drawing_from_rand_and_drand48_replay_their_own_numbers() {
    record_and_replay_all("rand_threads", &[], b"", 3);
}

#[test]
fn threads_drawing_from_rand_get_other_numbers_natively() {
    assert_native_runs_differ(&program("rand_threads"), &[], b"", 10);
}

#[test]
fn threads_that_look_up_users_hosts_and_local_time_replay_in_their_own_threads() {
    // glibc loads what these need on first use, in whichever thread gets
    // there first (3 of 8 replays faithful before they were ordered as
    // sync objects; syslog, 1 of 8).
    record_and_replay_all("lazy_libc_threads", &[], b"", 3);
}

#[test]
fn threads_that_look_up_users_hosts_and_local_time_print_other_times_natively() {
    assert_native_runs_differ(&program("lazy_libc_threads"), &[], b"", 10);
}

#[test]
fn the_worker_that_ran_a_pthread_once_routine_runs_it_in_replay() {
    // Which thread runs the routine is an atomic inside glibc; its open
    // and read came in another thread in replay before pthread_once was
    // ordered.
    record_and_replay_all("once_init_threads", &[], b"", 4);
}

#[test]
fn another_worker_runs_the_pthread_once_routine_in_native_runs() {
    assert_native_runs_differ(&program("once_init_threads"), &[], b"", 10);
}

#[test]
fn the_worker_that_constructed_a_cpp_static_constructs_it_in_replay() {
    // Which worker runs a function-local static's constructor (a clock
    // read and a line of output) is an atomic in libstdc++: another
    // worker ran it in replay, 6 of 10 faithful, before the winner's
    // __cxa_guard_acquire was logged.
    record_and_replay_all("cpp_static_init", &[], b"", 4);
}

#[test]
fn another_worker_constructs_a_cpp_static_in_native_runs() {
    assert_native_runs_differ(&program("cpp_static_init"), &[], b"", 10);
}

#[test]
fn workers_that_sort_and_free_memory_replay_in_their_own_threads() {
    // glibc reads the machine's memory size at the first large qsort and
    // the overcommit setting when an arena first shrinks, in whichever
    // thread gets there first (6 of 8 replays faithful before).
    record_and_replay_all("worker_heaps", &[], b"", 3);
}

#[test]
fn workers_that_sort_and_free_memory_print_other_times_natively() {
    assert_native_runs_differ(&program("worker_heaps"), &[], b"", 10);
}

#[test]
fn threads_writing_to_copies_of_stdout_replay_in_the_order_their_lines_came_out() {
    // Before, such writes were buffered and printed in the order their
    // threads' buffers were read: exit 0, other output.
    record_and_replay_all("dup_stdout_threads", &[], b"", 3);
}

#[test]
fn threads_writing_to_copies_of_stdout_interleave_differently_natively() {
    assert_native_runs_differ(&program("dup_stdout_threads"), &[], b"", 10);
}

#[test]
fn threads_that_need_more_malloc_arenas_read_the_processor_count_in_the_main_thread() {
    // malloc sizes its arena limit from /sys/devices/system/cpu/online
    // when a thread first needs a ninth arena, in whichever thread that
    // is (in 1 of 4 recordings before, four workers read it); replay then
    // saw the read in another thread. The shim sets the limit first.
    for take in 1..=4 * repeat() {
        let rec = record(&program("many_arenas"), &[], b"");
        rec.assert_exit_code(0);
        let events = inspect_raw(&[OsStr::new("--events"), rec.trace.as_os_str()]);
        let listing = String::from_utf8_lossy(&events.stdout);
        let readers: Vec<&str> = listing
            .lines()
            .filter(|l| l.contains("/sys/devices/system/cpu/online"))
            .collect();
        assert!(
            readers.iter().all(|l| l.starts_with("[t0 ")),
            "take {take}: read outside the main thread: {readers:?}"
        );
        assert_replay_matches(&rec, &replay(&rec.trace, &[]), &format!("take {take}"));
    }
}

/// A pipe of one page: the writes a recording makes into it find it full
/// as often as not.
fn one_page_pipe() -> (std::io::PipeReader, std::io::PipeWriter) {
    let (reader, writer) = std::io::pipe().expect("pipe");
    // SAFETY: F_SETPIPE_SZ takes an int and touches no memory.
    let size = unsafe {
        libc::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&writer),
            libc::F_SETPIPE_SZ,
            4096,
        )
    };
    assert_eq!(size, 4096, "F_SETPIPE_SZ");
    (reader, writer)
}

#[test]
fn threads_printing_into_a_full_pipe_read_slowly_replay_byte_for_byte() {
    printing_into_a_full_pipe_replays(&program("stdio_threads"), &["line"], 4 * 200);
}

#[test]
fn a_shell_printing_into_a_full_pipe_read_slowly_replays_byte_for_byte() {
    // One thread: rrc-record writes each line to its own stdout pipe
    // itself when the pipe takes it whole at once, and lets the program's
    // call block otherwise; the reader lags, so both happen.
    let lines = "i=0; while [ $i -lt 800 ]; do echo line $i of a shell loop; i=$((i+1)); done";
    printing_into_a_full_pipe_replays(std::path::Path::new("/bin/sh"), &["-c", lines], 800);
}

/// Records `prog` printing `lines` lines into a one-page pipe read 100
/// bytes a millisecond, and replays it.
fn printing_into_a_full_pipe_replays(prog: &std::path::Path, args: &[&str], lines: usize) {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    for round in 1..=repeat() {
        let (mut reader, writer) = one_page_pipe();
        let dir = temp_dir("full-pipe");
        let trace = dir.path().join("t");
        let child = std::process::Command::new(rrc_record())
            .arg("-o")
            .arg(&trace)
            .arg("--")
            .arg(prog)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("start rrc-record");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let (mut printed, mut piece) = (Vec::new(), [0u8; 100]);
        loop {
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: the recording did not end"
            );
            match reader.read(&mut piece) {
                Ok(0) => break,
                Ok(n) => printed.extend_from_slice(&piece[..n]),
                Err(e) => panic!("round {round}: reading the pipe: {e}"),
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // The pipe's end: rrc-record and the program have closed stdout.
        let recorded = child.wait_with_output().expect("wait for rrc-record");
        assert!(recorded.status.success(), "round {round}: {recorded:?}");
        assert_eq!(printed.iter().filter(|&&b| b == b'\n').count(), lines);
        let replayed = replay(&trace, &[]);
        assert!(
            replayed.status.success() && replayed.stdout == printed,
            "round {round}: replay not faithful: {}\n{}",
            describe_difference("stdout", &printed, &replayed.stdout),
            String::from_utf8_lossy(&replayed.stderr)
        );
    }
}
