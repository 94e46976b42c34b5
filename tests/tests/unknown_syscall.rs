//! A syscall rrc does not model (sched_rr_get_interval, called twice by
//! tests/programs/unknown_syscall.c): the recording warns once, the trace
//! names it, and replay stops there with a divergence naming it.

use std::process::Command;

use rrc_tests::*;

const SYSCALL: &str = "sched_rr_get_interval";

/// The warning lines rrc-record printed.
fn recorder_warnings(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("rrc-record: warning:"))
        .collect()
}

#[test]
fn unknown_syscall_warns_once_and_replay_diverges() {
    let prog = program("unknown_syscall");
    for round in 1..=repeat() {
        let rec = record(&prog, &[], b"");
        let ctx = format!("round {round}: {}", rec.describe());
        rec.assert_exit_code(0);
        let stdout = rec.stdout_str();
        assert!(
            stdout.starts_with("sched_rr_get_interval call 1: ")
                && stdout.contains("\nsched_rr_get_interval call 2: ")
                && stdout.ends_with("unknown_syscall: done\n"),
            "{ctx}: the program called {SYSCALL} twice and finished:\n{stdout}"
        );

        let stderr = String::from_utf8_lossy(&rec.stderr);
        let warnings = recorder_warnings(&stderr);
        assert_eq!(
            warnings.len(),
            1,
            "{ctx}: exactly one warning for the unknown syscall, even though it was \
             called twice; stderr:\n{stderr}"
        );
        assert!(
            warnings[0].starts_with(&format!(
                "rrc-record: warning: syscall {SYSCALL} ({}) is not supported",
                libc::SYS_sched_rr_get_interval
            )),
            "{ctx}: the warning names {SYSCALL} and its number (if rrc now models \
             {SYSCALL}, pick another syscall it does not know): {}",
            warnings[0]
        );

        let json = inspect_json(&rec.trace);
        assert_eq!(json["complete"], true, "{ctx}: complete trace");
        let unknown: Vec<&str> = json["unknown_syscalls"]
            .as_array()
            .unwrap_or_else(|| panic!("{ctx}: unknown_syscalls is not an array: {json:#}"))
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(
            unknown,
            [SYSCALL],
            "{ctx}: rrc-inspect lists the unknown syscall"
        );
        let warned = json["warnings"].to_string();
        assert!(
            warned.contains(SYSCALL),
            "{ctx}: the trace's warnings name {SYSCALL}: {warned}"
        );

        let out = replay(&rec.trace, &[]);
        let line = assert_divergence(&out, &format!("{ctx}: replay of an unknown syscall"));
        assert!(
            line.contains(SYSCALL) && line.contains("unsupported syscall"),
            "{ctx}: the divergence names the unsupported syscall {SYSCALL}: {line}"
        );
        let replayed = String::from_utf8_lossy(&out.stdout);
        assert!(
            !replayed.contains("sched_rr_get_interval call"),
            "{ctx}: replay stopped at the first {SYSCALL}, before its result was printed:\n\
             {replayed}"
        );
    }
}

/// ioctls rrc models (SIOCGIFCONF fills a buffer the program points to)
/// replay identically; an old-style request it does not model is warned
/// about once, listed by rrc-inspect, and stops replay with a divergence
/// naming the request.
#[test]
fn known_ioctls_replay_and_an_unknown_ioctl_diverges() {
    let prog = program("unknown_ioctl");
    for round in 1..=repeat() {
        let rec = record_and_replay(&prog, &["known"], b"", 0, 1);
        let ctx = format!("round {round}: {}", rec.describe());
        assert!(
            rec.stdout_str().contains("lo index 1\n"),
            "{ctx}: SIOCGIFCONF listed the loopback interface:\n{}",
            rec.stdout_str()
        );
        assert!(
            !String::from_utf8_lossy(&rec.stderr).contains("rrc-record: warning"),
            "{ctx}: no warning for ioctls rrc models: {}",
            String::from_utf8_lossy(&rec.stderr)
        );

        let rec = record(&prog, &["unknown"], b"");
        let ctx = format!("round {round}: {}", rec.describe());
        rec.assert_exit_code(0);
        let stderr = String::from_utf8_lossy(&rec.stderr);
        let warnings = recorder_warnings(&stderr);
        assert_eq!(
            warnings,
            [
                "rrc-record: warning: ioctl request 0x8938 is not supported: only its return \
              value is recorded, and replay will stop there"
            ],
            "{ctx}: one warning naming the request, though it was made twice"
        );
        let json = inspect_json(&rec.trace);
        assert_eq!(
            json["unknown_syscalls"],
            serde_json::json!(["ioctl 0x8938"]),
            "{ctx}: rrc-inspect lists the unknown ioctl"
        );
        let out = replay(&rec.trace, &[]);
        let line = assert_divergence(&out, &format!("{ctx}: replay of an unknown ioctl"));
        assert!(
            line.contains("unsupported ioctl request 0x8938"),
            "{ctx}: the divergence names the request: {line}"
        );
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("ioctl call"),
            "{ctx}: replay stopped at the first unknown ioctl"
        );
    }
}

/// Descriptors rrc-record was started with reach the program; replay
/// gives it placeholders at the same numbers, and closes any it inherits
/// itself, so the program's next descriptor numbers are the recorded ones
/// whoever starts rrc-replay.
#[test]
fn inherited_descriptors_are_the_recorded_ones_in_replay() {
    let prog = program("fd_numbers");
    for round in 1..=repeat() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let trace = dir.path().join("trace.rrc");
        // Recorded with descriptor 5 open (and 6 closed).
        let script = format!(
            "exec 3<&- 4<&- 5</dev/null 6<&-; exec {} -o {} -- {}",
            rrc_record().display(),
            trace.display(),
            prog.display()
        );
        let rec = run(
            Command::new("bash").arg("-c").arg(&script),
            None,
            "rrc-record with descriptor 5 inherited",
        );
        let ctx = format!("round {round}");
        assert!(rec.status.success(), "{ctx}: recording failed: {rec:?}");
        let recorded = String::from_utf8_lossy(&rec.stdout).into_owned();
        assert!(
            recorded.contains("descriptor 5 open\n") && recorded.contains("opened 3 4 6\n"),
            "{ctx}: the program saw descriptor 5 and numbered around it:\n{recorded}"
        );
        let json = inspect_json(&trace);
        let inherited: Vec<i64> = json["inherited_fds"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default();
        assert!(
            inherited.contains(&5) && !inherited.iter().any(|fd| [3, 4, 6].contains(fd)),
            "{ctx}: the trace lists descriptor 5 as inherited: {inherited:?}"
        );
        // Replayed with 5 closed and 3 and 6 open.
        let script = format!(
            "exec 5<&- 3</dev/null 6</dev/null; exec {} {}",
            rrc_replay().display(),
            trace.display()
        );
        let out = run(
            Command::new("bash").arg("-c").arg(&script),
            None,
            "rrc-replay with other descriptors inherited",
        );
        assert!(
            out.status.success(),
            "{ctx}: replay failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), recorded, "{ctx}");
    }
}

/// `syscall(-1)` (rr's test helpers make it) and numbers past the last
/// one fail with ENOSYS: the kernel has no such call, so it did nothing,
/// and replay fails it the same way instead of stopping there.
#[test]
fn a_syscall_the_kernel_does_not_have_replays_as_the_same_failure() {
    let prog = program("no_such_syscall");
    assert_native_runs_differ(&prog, &[], b"", 5);
    for round in 1..=repeat() {
        let rec = record(&prog, &[], b"");
        rec.assert_exit_code(0);
        let stderr = String::from_utf8_lossy(&rec.stderr);
        assert!(
            !stderr.contains("not supported"),
            "round {round}: no warning for a call the kernel lacks:\n{stderr}"
        );
        assert!(rec.stdout_str().contains("syscall(-1) = -1 (errno 38)"));
        assert_faithful_replay(&rec, "no_such_syscall", &format!("round {round}"));
    }
}
