//! Asynchronous signals and multiple processes: an interval timer with a
//! counting handler, signals sent between threads with pthread_kill, a
//! handler interrupting a blocked read() (EINTR), and fork/exec/wait/
//! popen. Each recording is replayed three times, byte-identical.

use rrc_tests::*;

/// The numbers in `line` after `prefix`, in order.
fn numbers_after(stdout: &str, prefix: &str) -> Vec<i64> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{stdout}"));
    line[prefix.len()..]
        .split(|c: char| !c.is_ascii_digit() && c != '-')
        .filter_map(|w| w.parse().ok())
        .collect()
}

/// The number right after the first `marker` in `text`.
fn number_after(text: &str, marker: &str) -> i64 {
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker:?} in {text:?}"));
    let rest = &text[at + marker.len()..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end]
        .parse()
        .unwrap_or_else(|_| panic!("no number after {marker:?} in {text:?}"))
}

fn signal_count(json: &Value, name: &str) -> i64 {
    count(json, "signals", name) as i64
}

/// Per-thread count `key` (syscalls, signals) of logical thread `t`.
fn thread_count(json: &Value, t: usize, key: &str) -> i64 {
    threads(json)[t][key].as_i64().unwrap_or(0)
}

#[test]
fn itimer_signal_replays_identically() {
    let prog = program("itimer_signal");
    for round in 1..=repeat() {
        let rec = record_and_replay_keeping(
            &prog,
            &[],
            b"",
            0,
            3,
            &format!("itimer_signal-round{round}"),
        );
        let stdout = rec.stdout_str();
        let ctx = format!("round {round}: {}", rec.describe());
        assert_eq!(
            stdout
                .lines()
                .filter(|l| l.starts_with("iteration "))
                .count(),
            40,
            "{ctx}: one line per iteration:\n{stdout}"
        );
        // "itimer_signal: T ticks, I interrupted sleeps, hash H"
        let summary = numbers_after(&stdout, "itimer_signal: ");
        let ticks = summary[0];
        assert!(ticks > 0, "{ctx}: the timer ticked:\n{stdout}");
        let json = check_inspect(&rec, 1);
        assert_eq!(
            signal_count(&json, "SIGALRM"),
            ticks,
            "{ctx}: every SIGALRM the handler counted is in the trace: {}",
            json["signals"]
        );
        assert_eq!(
            syscall_count(&json, "setitimer"),
            2,
            "{ctx}: setitimer on and off: {}",
            json["syscalls"]
        );
    }
}

#[test]
fn itimer_signal_native_runs_differ() {
    assert_native_runs_differ(&program("itimer_signal"), &[], b"", 10);
}

#[test]
fn thread_kill_replays_identically() {
    let prog = program("thread_kill");
    for round in 1..=repeat() {
        let rec =
            record_and_replay_keeping(&prog, &[], b"", 0, 3, &format!("thread_kill-round{round}"));
        let stdout = rec.stdout_str();
        let ctx = format!("round {round}: {}", rec.describe());
        let summary = stdout
            .lines()
            .find(|l| l.starts_with("thread_kill: "))
            .unwrap_or_else(|| panic!("{ctx}: no summary in:\n{stdout}"));
        let (usr1, usr2) = summary
            .split_once("; SIGUSR2")
            .unwrap_or_else(|| panic!("{ctx}: bad summary {summary:?}"));
        let (usr1_sent, usr1_seen) = (number_after(usr1, "sent "), number_after(usr1, "seen "));
        let (usr2_sent, usr2_seen) = (number_after(usr2, "sent "), number_after(usr2, "seen "));
        assert_eq!(usr1_sent, 30, "{ctx}:\n{stdout}");
        assert!(
            usr1_seen > 0 && usr1_seen <= usr1_sent,
            "{ctx}: SIGUSR1 reached the main thread (pending ones may merge):\n{stdout}"
        );
        assert!(
            usr2_sent > 0 && usr2_seen > 0,
            "{ctx}: the worker got SIGUSR2:\n{stdout}"
        );
        let json = check_inspect(&rec, 2);
        assert_eq!(
            signal_count(&json, "SIGUSR1"),
            usr1_seen,
            "{ctx}: every SIGUSR1 handled is in the trace: {}",
            json["signals"]
        );
        assert_eq!(
            signal_count(&json, "SIGUSR2"),
            usr2_seen,
            "{ctx}: every SIGUSR2 handled is in the trace: {}",
            json["signals"]
        );
        assert_eq!(
            (
                thread_count(&json, 0, "signals"),
                thread_count(&json, 1, "signals")
            ),
            (usr1_seen, usr2_seen),
            "{ctx}: SIGUSR1 went to the main thread, SIGUSR2 to the worker: {}",
            json["threads"]
        );
        assert_eq!(
            syscall_count(&json, "tgkill") as i64,
            usr1_sent + usr2_sent,
            "{ctx}: pthread_kill is tgkill: {}",
            json["syscalls"]
        );
    }
}

#[test]
fn eintr_read_replays_identically() {
    let prog = program("eintr_read");
    for round in 1..=repeat() {
        let rec =
            record_and_replay_keeping(&prog, &[], b"", 0, 3, &format!("eintr_read-round{round}"));
        let stdout = rec.stdout_str();
        let ctx = format!("round {round}: {}", rec.describe());
        let rounds: Vec<&str> = stdout.lines().filter(|l| l.starts_with("round ")).collect();
        assert_eq!(rounds.len(), 12, "{ctx}: twelve rounds:\n{stdout}");
        for (r, line) in rounds.iter().enumerate() {
            let n = numbers_after(line, "round ");
            // round R: read B bytes "data R" after E EINTR, H signals handled
            assert_eq!(n[0], r as i64, "{ctx}: {line}");
            assert_eq!(n[2], r as i64, "{ctx}: the round's data: {line}");
            assert!(n[3] >= 1, "{ctx}: read() failed with EINTR: {line}");
        }
        // "eintr_read: 12 rounds, S signals sent, H handled"
        let n = numbers_after(&stdout, "eintr_read: ");
        let handled = n[2];
        let json = check_inspect(&rec, 2);
        assert_eq!(
            signal_count(&json, "SIGUSR1"),
            handled,
            "{ctx}: every SIGUSR1 handled is in the trace: {}",
            json["signals"]
        );
        assert_eq!(
            thread_count(&json, 1, "signals"),
            handled,
            "{ctx}: the signals went to the reader thread: {}",
            json["threads"]
        );
        assert!(
            thread_count(&json, 1, "syscalls") >= 24,
            "{ctx}: the reader's interrupted and successful reads: {}",
            json["threads"][1]
        );
    }
}

#[test]
fn fork_exec_replays_identically() {
    let prog = program("fork_exec");
    for round in 1..=repeat() {
        let rec =
            record_and_replay_keeping(&prog, &[], b"", 0, 3, &format!("fork_exec-round{round}"));
        let stdout = rec.stdout_str();
        let ctx = format!("round {round}: {}", rec.describe());
        let parent = numbers_after(&stdout, "parent: pid ")[0];
        let forked = numbers_after(&stdout, "parent: forked ")[0];
        let child = numbers_after(&stdout, "child: pid ");
        assert_eq!(
            child[..2],
            [forked, parent],
            "{ctx}: the re-executed child's pid and parent:\n{stdout}"
        );
        for expected in [
            format!("parent: re-executed child (pid {forked}) exited with 7\n"),
            "echo: hello from a child found in PATH\n".to_string(),
            "parent: echo (pid ".to_string(),
            ") exited with 42\n".to_string(),
            "parent: popen read: popen says hi\n".to_string(),
            "parent: popen child (pid 0) exited with 0\n".to_string(),
            format!("parent: pid {parent} done\n"),
        ] {
            assert!(
                stdout.contains(&expected),
                "{ctx}: {expected:?} in:\n{stdout}"
            );
        }

        let json = inspect_json(&rec.trace);
        assert_eq!(json["complete"], true, "{ctx}: complete trace");
        assert_eq!(json["exit_status"]["exited"], 0, "{ctx}: exit status");
        let processes = process_count(&json);
        assert!(
            processes >= 4,
            "{ctx}: the parent and its three forked children (and popen's) are \
             recorded as processes, got {processes}\n{}",
            json["threads"]
        );
        let in_children = threads(&json)
            .iter()
            .filter(|t| t["process"].as_u64().unwrap_or(0) > 0)
            .count();
        assert!(
            in_children >= 3,
            "{ctx}: threads of the child processes: {}",
            json["threads"]
        );
        for name in ["wait4", "execve"] {
            assert!(
                syscall_count(&json, name) > 0,
                "{ctx}: {name} in {}",
                json["syscalls"]
            );
        }
        assert!(
            is_empty_value(&json["unknown_syscalls"]),
            "{ctx}: unknown syscalls {}",
            json["unknown_syscalls"]
        );
    }
}

#[test]
fn sigchld_reaping_replays_children_output_in_order() {
    let prog = program("sigchld_reap");
    for round in 1..=repeat() {
        let rec =
            record_and_replay_keeping(&prog, &[], b"", 0, 3, &format!("sigchld_reap-round{round}"));
        let stdout = rec.stdout_str();
        let ctx = format!("round {round}: {}", rec.describe());
        assert_eq!(
            numbers_after(&stdout, "sigchld_reap: reaped "),
            [6, 10 + 11 + 12 + 13 + 14 + 15],
            "{ctx}: every child reaped by the handler:\n{stdout}"
        );
        assert_eq!(
            stdout.lines().filter(|l| l.starts_with("child ")).count(),
            6,
            "{ctx}: one line per child:\n{stdout}"
        );
        let json = inspect_json(&rec.trace);
        assert!(
            signal_count(&json, "SIGCHLD") >= 1,
            "{ctx}: SIGCHLD in the trace: {}",
            json["signals"]
        );
        assert_eq!(process_count(&json), 7, "{ctx}: {}", json["threads"]);
    }
}

#[test]
fn forty_ticks_against_a_spinning_thread_replay_at_the_pace_they_were_recorded() {
    // Each tick reaches the spinning thread after a bounded wait, all with
    // no syscall between them: replay counts each one's time from the
    // thread's last syscall, as recorded, not from the tick before (which
    // took the sum of those times, minutes here, past the replay limit).
    let prog = program("busy_timer");
    let rec = record(&prog, &["40"], b"");
    rec.assert_exit_code(0);
    let ticks = number_after(&rec.stdout_str(), "busy_timer: ");
    assert!((40..=41).contains(&ticks), "{}", rec.describe());
    assert_faithful_replay(&rec, "busy_timer-40", "forty ticks");
}

#[test]
fn signal_to_a_spinning_thread_is_delivered() {
    let prog = program("busy_timer");
    for round in 1..=repeat() {
        let rec =
            record_and_replay_keeping(&prog, &[], b"", 0, 2, &format!("busy_timer-round{round}"));
        let stdout = rec.stdout_str();
        let ctx = format!("round {round}: {}", rec.describe());
        // The loop ends at 5; one more tick may land before the timer is
        // switched off.
        let ticks = number_after(&stdout, "busy_timer: ");
        assert!((5..=6).contains(&ticks), "{ctx}: {stdout:?}");
        let json = inspect_json(&rec.trace);
        assert_eq!(
            signal_count(&json, "SIGALRM"),
            ticks,
            "{ctx}: every tick is in the trace: {}",
            json["signals"]
        );
    }
}

#[test]
fn unhandled_sigterm_ends_a_multithreaded_program_where_it_did() {
    let prog = program("sigterm_threads");
    for round in 1..=repeat() {
        let live = start_recording(&prog, &[]);
        // Long enough for thousands of events in each worker.
        std::thread::sleep(std::time::Duration::from_millis(400));
        let rec = live.stop(libc::SIGTERM);
        let ctx = format!("round {round}: {}", rec.describe());
        rec.assert_exit_code(128 + libc::SIGTERM);
        assert_eq!(rec.stdout_str(), "sigterm_threads: ready\n", "{ctx}");
        let json = inspect_json(&rec.trace);
        assert_eq!(json["complete"], true, "{ctx}: complete trace");
        assert_eq!(
            json["exit_status"]["signaled"],
            libc::SIGTERM,
            "{ctx}: killed by SIGTERM"
        );
        assert_eq!(
            signal_count(&json, "SIGTERM"),
            1,
            "{ctx}: the SIGTERM is recorded: {}",
            json["signals"]
        );
        assert_eq!(threads(&json).len(), 4, "{ctx}: {}", json["threads"]);
        for i in 1..=2 {
            assert_faithful_replay(
                &rec,
                &format!("sigterm_threads-round{round}"),
                &format!("round {round}: replay {i} of 2"),
            );
        }
    }
}

#[test]
fn descriptor_passed_to_a_child_replays() {
    let prog = program("scm_rights");
    for round in 1..=repeat() {
        let rec =
            record_and_replay_keeping(&prog, &[], b"", 0, 2, &format!("scm_rights-round{round}"));
        let stdout = rec.stdout_str();
        let ctx = format!("round {round}: {}", rec.describe());
        // The child closed everything but its socket end: the received
        // descriptors take 3 and 5, the next open 6 (4 is the socket).
        for expected in [
            "child: received descriptors 3 and 5, then opened 6\n",
            "parent: pipe said: hello through a passed descriptor\nand through one passed by sendmmsg\n",
            "parent: child exited with 0\n",
        ] {
            assert!(
                stdout.contains(expected),
                "{ctx}: {expected:?} in:\n{stdout}"
            );
        }
        let json = inspect_json(&rec.trace);
        assert_eq!(process_count(&json), 2, "{ctx}: {}", json["threads"]);
        assert!(
            syscall_count(&json, "recvmsg") >= 1 && syscall_count(&json, "recvmmsg") >= 1,
            "{ctx}: {}",
            json["syscalls"]
        );
    }
}

#[test]
fn signal_and_process_corners_replay() {
    let prog = program("signal_kinds");
    let expected = "sigqueue value 4242 pidok 1\n\
                    child killed: 1 sig 9\n\
                    write to closed pipe: -1 errno 32\n\
                    waitid status 33 code 1\n\
                    sigtimedwait -1 errno 11\n\
                    prof ticks>0 1\n\
                    rt timer fired 5\n\
                    grandchild parent is init-ish: 1\n\
                    middle exited 5\n\
                    killpg: sig 15\n";
    for round in 1..=repeat() {
        let rec =
            record_and_replay_keeping(&prog, &[], b"", 0, 2, &format!("signal_kinds-round{round}"));
        let ctx = format!("round {round}: {}", rec.describe());
        assert_eq!(rec.stdout_str(), expected, "{ctx}");
        let json = inspect_json(&rec.trace);
        for name in ["rt_sigqueueinfo", "waitid", "setpgid", "kill"] {
            assert!(
                syscall_count(&json, name) > 0,
                "{ctx}: {name} in {}",
                json["syscalls"]
            );
        }
        assert!(
            is_empty_value(&json["unknown_syscalls"]),
            "{ctx}: unknown syscalls {}",
            json["unknown_syscalls"]
        );
    }
}

/// The value printed after "left " on the line starting `prefix`, in ns.
fn time_left_ns(stdout: &str, prefix: &str) -> i64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{stdout}"));
    let left = line
        .split("left ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no time left in {line:?}"));
    let (sec, nsec) = left
        .split_once('.')
        .unwrap_or_else(|| panic!("not sec.nsec: {left:?}"));
    let parse = |s: &str| -> i64 { s.parse().unwrap_or_else(|_| panic!("not a number: {s:?}")) };
    parse(sec) * 1_000_000_000 + parse(nsec)
}

#[test]
fn interrupted_sleeps_replay_the_time_they_had_left() {
    let prog = program("interrupted_sleeps");
    for round in 1..=repeat() {
        let rec = record_and_replay_keeping(
            &prog,
            &[],
            b"",
            0,
            2,
            &format!("interrupted_sleeps-round{round}"),
        );
        let stdout = rec.stdout_str();
        let ctx = format!("round {round}: {}", rec.describe());
        for call in ["nanosleep:", "clock_nanosleep:", "select:"] {
            assert!(
                stdout
                    .lines()
                    .any(|l| l.starts_with(call) && l.contains("ret -1 errno 4")),
                "{ctx}: {call} was interrupted (EINTR):\n{stdout}"
            );
            let left = time_left_ns(&stdout, call);
            assert!(
                left > 0 && left < 200_000_000,
                "{ctx}: {call} wrote back part of its 200 ms (the replay gave the same): {left} ns\n{stdout}"
            );
        }
        assert_eq!(
            time_left_ns(&stdout, "absolute clock_nanosleep:"),
            7_000_000_007,
            "{ctx}: an absolute sleep leaves `remain` alone:\n{stdout}"
        );
    }
}

#[test]
fn processes_that_send_themselves_sigkill_replay() {
    let prog = program("self_kill");
    for round in 1..=repeat() {
        let rec =
            record_and_replay_keeping(&prog, &[], b"", 0, 2, &format!("self_kill-round{round}"));
        let stdout = rec.stdout_str();
        for what in ["raise:", "kill:", "thread raise:"] {
            assert!(
                stdout
                    .lines()
                    .any(|l| l.starts_with(what) && l.ends_with("killed by 9")),
                "round {round}: {what} child ended by its own SIGKILL:\n{stdout}"
            );
        }
        let rec = record_and_replay_keeping(
            &prog,
            &["self"],
            b"",
            128 + libc::SIGKILL,
            1,
            &format!("self_kill-self-round{round}"),
        );
        assert!(
            rec.stdout_str().contains("kills itself"),
            "round {round}: the parent got to its own SIGKILL:\n{}",
            rec.stdout_str()
        );
    }
}

#[test]
fn signals_to_the_programs_process_group_replay() {
    let prog = program("group_signals");
    for round in 1..=repeat() {
        let rec = record_and_replay_keeping(
            &prog,
            &[],
            b"",
            0,
            2,
            &format!("group_signals-round{round}"),
        );
        let stdout = rec.stdout_str();
        let ctx = format!("round {round}: {}", rec.describe());
        assert!(
            stdout.contains("parent got SIGUSR1") && stdout.contains("parent got SIGUSR2"),
            "{ctx}: kill(0) and killpg reached the parent:\n{stdout}"
        );
        assert_eq!(
            stdout
                .matches("got the group's signal, same group 1")
                .count(),
            4,
            "{ctx}: every child got its group's signal:\n{stdout}"
        );
        assert_eq!(
            number_after(&stdout, "add up to "),
            10 + 11 + 12 + 13,
            "{ctx}: every child exited normally:\n{stdout}"
        );
    }
}

#[test]
fn reserved_descriptor_numbers_and_relative_paths_replay() {
    let prog = program("fd_reserved");
    for round in 1..=repeat() {
        let rec =
            record_and_replay_keeping(&prog, &[], b"", 0, 2, &format!("fd_reserved-round{round}"));
        let stdout = rec.stdout_str();
        let ctx = format!("round {round}: {}", rec.describe());
        let closed = number_after(&stdout, "closed ");
        let accepted = number_after(&stdout, "accepted ");
        assert!(
            accepted > closed,
            "{ctx}: accept kept the number it reserved before {closed} was closed:\n{stdout}"
        );
        assert!(
            stdout.contains("page starts rrc page")
                && stdout.contains("rrc page: sent to stdout with sendfile\n")
                && stdout.contains("sendfile sent 39"),
            "{ctx}: the relative open and sendfile to stdout:\n{stdout}"
        );
    }
}

#[test]
fn fork_from_a_multithreaded_process_copies_what_it_copied_when_recorded() {
    let prog = program("fork_snapshot");
    for round in 1..=repeat() {
        let rec = record_and_replay_keeping(
            &prog,
            &[],
            b"",
            0,
            2,
            &format!("fork_snapshot-round{round}"),
        );
        let stdout = rec.stdout_str();
        let ctx = format!("round {round}: {}", rec.describe());
        let copied: Vec<i64> = stdout
            .lines()
            .filter(|l| l.starts_with("child "))
            .map(|l| number_after(l, "copied counter "))
            .collect();
        assert_eq!(copied.len(), 6, "{ctx}: six children:\n{stdout}");
        assert!(
            copied.windows(2).all(|w| w[0] <= w[1]) && copied[5] > 0,
            "{ctx}: each child copied the counter as the workers had left it:\n{stdout}"
        );
        let summary = numbers_after(&stdout, "fork_snapshot: ");
        assert_eq!(
            summary[0], summary[1],
            "{ctx}: every round counted once:\n{stdout}"
        );
    }
}

#[test]
fn mappings_of_a_file_the_program_wrote_replay() {
    let prog = program("mapped_file");
    for round in 1..=repeat() {
        let rec =
            record_and_replay_keeping(&prog, &[], b"", 0, 2, &format!("mapped_file-round{round}"));
        let stdout = rec.stdout_str();
        assert!(
            stdout.contains("shared read-only: ")
                && stdout.contains("private from 4096: ")
                && stdout.contains("file byte 1 now x"),
            "round {round}: {}: every mapping was made and read:\n{stdout}",
            rec.describe()
        );
        let json = inspect_json(&rec.trace);
        assert!(
            syscall_count(&json, "getrandom") >= 1,
            "round {round}: the mapped bytes came from getrandom: {}",
            json["syscalls"]
        );
    }
}

#[test]
fn exec_from_a_thread_that_is_not_the_main_one_replays() {
    let prog = program("exec_from_thread");
    for round in 1..=repeat() {
        let rec = record_and_replay_keeping(
            &prog,
            &[],
            b"",
            42,
            2,
            &format!("exec_from_thread-round{round}"),
        );
        let stdout = rec.stdout_str();
        let pid = number_after(&stdout, "stage1 pid ");
        assert_eq!(
            number_after(&stdout, "stage2 pid "),
            pid,
            "round {round}: {}: the new image runs in the same process:\n{stdout}",
            rec.describe()
        );
        assert_eq!(
            number_after(&stdout, "total "),
            3000,
            "round {round}: stage2's threads:\n{stdout}"
        );
    }
}

#[test]
fn stop_flag_set_by_a_handler_is_seen_where_it_was_recorded() {
    // Each recording stops its workers four times (the main thread in
    // sigsuspend, then asleep in pthread_join); a replay that puts the
    // handler's write elsewhere among the workers' events diverges (a
    // worker makes one turn more or less). Several recordings per round:
    // before handlers ran alone, 17 of 30 replayed wrongly.
    let prog = program("alarm_stop_flag");
    for round in 1..=repeat() {
        for take in 1..=4 {
            let rec = record_and_replay_keeping(
                &prog,
                &[],
                b"",
                0,
                1,
                &format!("alarm_stop_flag-round{round}-take{take}"),
            );
            let stdout = rec.stdout_str();
            let ctx = format!("round {round} take {take}: {}", rec.describe());
            let workers: Vec<&str> = stdout.lines().filter(|l| l.contains(" worker ")).collect();
            assert_eq!(
                workers.len(),
                12,
                "{ctx}: four rounds of three workers:\n{stdout}"
            );
            for line in workers {
                let turns = number_after(line, "turns ");
                assert!(turns >= 1, "{ctx}: every worker ran:\n{stdout}");
                assert_eq!(
                    turns,
                    number_after(line, "locked "),
                    "{ctx}: one locked update per turn:\n{stdout}"
                );
            }
        }
    }
}

#[test]
fn stop_flag_a_worker_takes_the_signal_for_is_seen_where_it_was_recorded() {
    // Nobody blocks SIGALRM, so the kernel often hands it to a worker just
    // back from one of its trapped calls; the handler's write then raced
    // the other workers' reads of the flag (6 of 10 replays faithful)
    // until such a handler ran alone at a place in the order too.
    let prog = program("worker_stop_flag");
    for round in 1..=repeat() {
        for take in 1..=3 {
            let rec = record_and_replay_keeping(
                &prog,
                &[],
                b"",
                0,
                1,
                &format!("worker_stop_flag-round{round}-take{take}"),
            );
            let stdout = rec.stdout_str();
            let totals = stdout.lines().filter(|l| l.contains(" total ")).count();
            assert_eq!(
                totals,
                4,
                "round {round} take {take}: {}: four rounds:\n{stdout}",
                rec.describe()
            );
        }
    }
}

#[test]
fn workers_see_a_stop_flag_after_different_turns_natively() {
    assert_native_runs_differ(&program("worker_stop_flag"), &[], b"", 10);
}

#[test]
fn a_blocked_signal_let_through_by_the_mask_of_ppoll_or_pselect_replays() {
    // Replay emulated the EINTR and queued the signal, which the
    // program's own mask kept blocked: the handler never ran (0 of 3).
    let prog = program("ppoll_pending");
    for round in 1..=repeat() {
        let rec =
            record_and_replay_keeping(&prog, &[], b"", 0, 2, &format!("ppoll_pending-{round}"));
        let out = rec.stdout_str();
        assert!(
            out.contains("ppoll returned -1 (EINTR), handler ran 1 time(s)")
                && out.contains("pselect returned -1 (EINTR), handler ran 2 time(s)"),
            "round {round}: {}:\n{out}",
            rec.describe()
        );
    }
}

/// A process that gives up root when recorded gives it up in replay too:
/// its exec is then a secure one, as when recorded (the dynamic loader
/// works differently in that mode, so replay would diverge otherwise).
#[test]
fn dropped_privileges_are_dropped_in_replay() {
    let prog = program("drop_privileges");
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    for round in 1..=repeat() {
        let rec = record_and_replay(&prog, &[], b"", 0, 1);
        let out = rec.stdout_str();
        if root {
            assert_eq!(
                out, "now real 65534 effective 0\nagain: real 65534 effective 0, secure exec 1\n",
                "round {round}: as root, the program gave up its real user ID"
            );
        } else {
            assert!(
                out.starts_with("kept uid"),
                "round {round}: without root, setresuid fails: {out}"
            );
        }
    }
}

/// A program that caps its address space (RLIMIT_AS) still gets the
/// memory it gets natively when recorded, and reads back the limit it
/// set; replay matches.
#[test]
fn address_space_limit_leaves_the_program_its_memory() {
    let prog = program("as_limit");
    for round in 1..=repeat() {
        let native = run_native(&prog, &[], b"");
        let rec = record_and_replay(&prog, &[], b"", 0, 1);
        assert_eq!(
            rec.stdout_str(),
            String::from_utf8_lossy(&native.stdout),
            "round {round}: recorded output differs from the native one"
        );
        assert_eq!(
            rec.stdout_str(),
            "limit 209715200 209715200\nmmap ok\n",
            "round {round}"
        );
    }
}

/// The descriptor number a blocked accept took when it started is skipped
/// by an open made meanwhile, in replay as when recorded.
#[test]
fn descriptor_taken_by_a_blocked_accept_is_skipped_in_replay() {
    let prog = program("accept_reserves_fd");
    for round in 1..=repeat() {
        let rec = record_and_replay(&prog, &[], b"", 0, 2);
        let out = rec.stdout_str();
        // Relative: the test may inherit descriptors of its own.
        let opened = number_after(&out, "opened descriptor ");
        assert_eq!(
            (
                number_after(&out, "accepted descriptor "),
                number_after(&out, "connected with descriptor ")
            ),
            (opened - 1, opened + 1),
            "round {round}: the open skipped the accept's descriptor: {out}"
        );
    }
}

#[test]
fn state_the_kernel_writes_replays_as_recorded_and_a_daemon_left_behind_ends_the_recording() {
    let prog = program("kernel_state");
    for round in 1..=repeat() {
        let rec =
            record_and_replay_keeping(&prog, &[], b"", 0, 3, &format!("kernel_state-round{round}"));
        let stdout = rec.stdout_str();
        let ctx = format!("round {round}: {}", rec.describe());
        for line in [
            "set_tid_address is gettid: 1",
            "cleared at exit: 1",
            "parent_tid is the child: 1; child_tid too: 1",
            "/dev/zero shared: 42",
            "through a dup of stdout",
            "daemon started: x",
        ] {
            assert!(
                stdout.lines().any(|l| l == line),
                "{ctx}: no {line:?} in:\n{stdout}"
            );
        }
    }
}
