//! rrc as a careful user runs it: traces written only into files rrc has
//! just made, trace paths that are not files refused at once, programs
//! started with the signal state rrc was started with, programs rrc
//! cannot run refused in one line, and no child left stopped when a tool
//! is killed while starting it.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rrc_tests::*;

fn record_to(trace: &Path, program: &Path) -> std::process::Output {
    run(
        Command::new(rrc_record())
            .arg("-o")
            .arg(trace)
            .arg("--")
            .arg(program),
        None,
        "rrc-record",
    )
}

#[test]
fn a_trace_is_never_written_through_a_link_into_a_device_or_to_a_dash() {
    let dir = TempDir::new().expect("temporary directory");
    let victim = dir.path().join("victim");
    std::fs::write(&victim, b"precious").expect("write victim");
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let link = dir.path().join("rrc.trace");
    std::os::unix::fs::symlink(&victim, &link).expect("plant a link");
    let out = record_to(&link, &program("exit_code"));
    assert_one_line_error(&out, "rrc-record -o LINK");
    assert!(String::from_utf8_lossy(&out.stderr).contains("symbolic link"));
    assert_eq!(std::fs::read(&victim).expect("victim"), b"precious");
    let mode = std::fs::metadata(&victim)
        .expect("victim")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644, "the link's target keeps its mode");

    let before = std::fs::metadata("/dev/null")
        .expect("/dev/null")
        .permissions()
        .mode();
    let out = record_to(Path::new("/dev/null"), &program("exit_code"));
    assert_one_line_error(&out, "rrc-record -o /dev/null");
    let after = std::fs::metadata("/dev/null")
        .expect("/dev/null")
        .permissions()
        .mode();
    assert_eq!(before, after, "/dev/null keeps its mode");

    let out = record_to(Path::new("-"), &program("exit_code"));
    assert_one_line_error(&out, "rrc-record -o -");
}

#[test]
fn a_trace_replaces_another_users_file_with_a_new_private_one() {
    let dir = TempDir::new().expect("temporary directory");
    let trace = dir.path().join("theirs.trace");
    std::fs::write(&trace, b"someone else's").expect("write");
    std::fs::set_permissions(&trace, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    // As root, hand the file to another user, as in a shared directory.
    // SAFETY: chown on a path we just made; failure (not root) is fine.
    let c = std::ffi::CString::new(trace.as_os_str().as_encoded_bytes()).expect("path");
    let chowned = unsafe { libc::chown(c.as_ptr(), 65534, 65534) } == 0;
    let out = record_to(&trace, &program("exit_code"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta = std::fs::metadata(&trace).expect("trace");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    if chowned {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions.
        assert_eq!(meta.uid(), unsafe { libc::geteuid() }, "the trace is ours");
    }
    let replayed = replay(&trace, &[]);
    assert!(
        replayed.status.success(),
        "{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
}

#[test]
fn a_fifo_given_as_a_trace_is_refused_at_once_by_every_tool() {
    let dir = TempDir::new().expect("temporary directory");
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let limit = Duration::from_secs(10);
    let out = run_within(
        Command::new(rrc_inspect()).arg(&fifo),
        None,
        "rrc-inspect FIFO",
        limit,
    );
    assert_one_line_error(&out, "rrc-inspect FIFO");
    assert!(String::from_utf8_lossy(&out.stderr).contains("FIFO"));
    let out = replay_within(&fifo, &[], limit);
    assert_one_line_error(&out, "rrc-replay FIFO");
    let out = record_to(&fifo, &program("exit_code"));
    assert_one_line_error(&out, "rrc-record -o FIFO");
}

#[test]
fn bytes_after_the_end_record_make_a_trace_incomplete() {
    let rec = record(&program("exit_code"), &["0"], b"");
    let mut bytes = std::fs::read(&rec.trace).expect("trace");
    let end = bytes.len();
    bytes.extend_from_slice(b"appended garbage");
    std::fs::write(&rec.trace, &bytes).expect("rewrite");
    let out = inspect_raw(&[rec.trace.as_os_str(), OsStr::new("--json")]);
    let json = parse_json(&out.stdout, "rrc-inspect --json");
    assert_eq!(json["complete"], false, "{json:#}");
    assert_eq!(json["intact_bytes"], end as u64);
    assert!(json["damage"]
        .as_str()
        .unwrap_or_default()
        .contains("after the end"));
}

#[test]
fn a_recorded_program_dies_of_sigpipe_as_it_does_natively() {
    // `prog | head -1`: the reader goes away after one line.
    let run_piped = |mut cmd: Command, what: &str| {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let mut out = child.stdout.take().expect("piped");
        let mut first = [0u8; 8];
        std::io::Read::read_exact(&mut out, &mut first).expect("first bytes");
        drop(out);
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return shell_code(status);
            }
            assert!(Instant::now() < deadline, "{what} did not end");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let prog = program("pipe_writer");
    let native = run_piped(Command::new(&prog), "native pipe_writer");
    assert_eq!(native, 128 + libc::SIGPIPE, "natively it dies of SIGPIPE");
    let dir = TempDir::new().expect("temporary directory");
    let mut cmd = Command::new(rrc_record());
    cmd.arg("-o").arg(dir.path().join("t")).arg("--").arg(&prog);
    let recorded = run_piped(cmd, "rrc-record of pipe_writer");
    assert_eq!(
        recorded,
        128 + libc::SIGPIPE,
        "recorded, it must die the same way"
    );
}

#[test]
fn programs_rrc_cannot_start_are_refused_in_one_line() {
    let dir = TempDir::new().expect("temporary directory");
    let write_exe = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        p
    };
    let cases = [
        (write_exe("no_shebang", b"echo hello\n"), "#!"),
        (
            write_exe("bad_shebang", b"#!/no/such/interpreter\n"),
            "/no/such/interpreter",
        ),
        (
            write_exe("elf32", b"\x7fELF\x01\x01\x01\0\0\0\0\0\0\0\0\0"),
            "32-bit",
        ),
    ];
    for (exe, words) in cases {
        let out = record_to(&dir.path().join("t"), &exe);
        assert_one_line_error(&out, &format!("rrc-record of {}", exe.display()));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(words), "{}: {err}", exe.display());
    }
}

/// Processes whose command line mentions `marker`.
fn processes_mentioning(marker: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            if String::from_utf8_lossy(&cmdline).contains(marker) {
                found.push(pid);
            }
        }
    }
    found
}

#[test]
fn a_tool_killed_while_starting_its_program_leaves_no_process_behind() {
    let dir = TempDir::new().expect("temporary directory");
    let marker = dir.path().to_string_lossy().into_owned();
    let trace = dir.path().join("t.trace");
    let rec = record_to(&trace, &program("exit_code"));
    assert!(
        rec.status.success(),
        "{}",
        String::from_utf8_lossy(&rec.stderr)
    );
    let rounds = 100;
    for round in 0..rounds {
        for replaying in [false, true] {
            let mut cmd = Command::new(if replaying {
                rrc_replay()
            } else {
                rrc_record()
            });
            if replaying {
                cmd.arg(&trace);
            } else {
                cmd.arg("-o")
                    .arg(dir.path().join(format!("k{round}")))
                    .arg("--")
                    .arg(program("sleeper"));
            }
            let mut child = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start the tool");
            // Spread the kills over the first 10 ms, where the child is
            // forked but not yet traced with EXITKILL (before the fix, 8
            // of 200 such kills left a stopped child behind).
            std::thread::sleep(Duration::from_micros(100 * round as u64));
            let _ = child.kill();
            let _ = child.wait();
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let left = processes_mentioning(&marker);
    for pid in &left {
        // SAFETY: kill(2) of a leftover we are about to report.
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
    assert!(
        left.is_empty(),
        "processes left behind after {rounds} kills: {left:?}"
    );
}

#[test]
fn a_replay_refuses_an_executable_that_changed_since_it_was_recorded() {
    let dir = TempDir::new().expect("temporary directory");
    let exe = dir.path().join("exit_code");
    std::fs::copy(program("exit_code"), &exe).expect("copy the program");
    let trace = dir.path().join("t.trace");
    let out = record_to(&trace, &exe);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        replay(&trace, &[]).status.success(),
        "the unchanged program replays"
    );
    // Same size, other contents: only the hash can tell.
    let mut bytes = std::fs::read(&exe).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&exe, &bytes).expect("rewrite");
    let out = replay(&trace, &[]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "a changed executable is a divergence"
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.starts_with("divergence: expected the executable that was recorded"),
        "{said}"
    );
    assert!(out.stdout.is_empty(), "nothing of the program ran");
}

#[test]
fn secret_environment_values_stay_out_of_the_trace_and_come_from_the_replayer() {
    let secret = "s3cr3t-value-for-rrc";
    let dir = TempDir::new().expect("temporary directory");
    let trace = dir.path().join("t.trace");
    let recorded = run(
        Command::new(rrc_record())
            .env("RRC_TEST_SECRET", secret)
            .args(["--env-secret", "*SECRET*", "-o"])
            .arg(&trace)
            .arg("--")
            .arg(program("env_secret")),
        None,
        "rrc-record --env-secret",
    );
    assert!(
        recorded.status.success(),
        "{}",
        String::from_utf8_lossy(&recorded.stderr)
    );
    let native = run_native(&program("env_secret"), &[], b"");
    assert_ne!(
        native.stdout, recorded.stdout,
        "without the secret the output differs"
    );
    let bytes = std::fs::read(&trace).expect("trace");
    assert!(
        !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the secret's value is not in the trace"
    );
    let replay_with = |value: Option<&str>| {
        let mut cmd = Command::new(rrc_replay());
        cmd.env_remove("RRC_TEST_SECRET").arg(&trace);
        if let Some(v) = value {
            cmd.env("RRC_TEST_SECRET", v);
        }
        run(&mut cmd, None, "rrc-replay of a trace with a secret")
    };
    assert_one_line_error(&replay_with(None), "rrc-replay without the secret");
    let faithful = replay_with(Some(secret));
    assert!(
        faithful.status.success(),
        "{}",
        String::from_utf8_lossy(&faithful.stderr)
    );
    assert_eq!(faithful.stdout, recorded.stdout);
    let other = replay_with(Some("another-value-of-len"));
    assert_eq!(other.status.code(), Some(3), "another value diverges");
}

/// rrc's shared memory with the program is a large sparse memfd, which a
/// file-size limit counts: a soft limit is lifted while it is made (the
/// program still starts with the limit it was given), a hard one is
/// refused in one line, and a trace that outgrows the limit ends the
/// recording in one line. Before, rrc-record died of SIGXFSZ each time.
#[test]
fn a_file_size_limit_is_lifted_for_rrc_or_refused_in_one_line() {
    let dir = TempDir::new().expect("temporary directory");
    // rrc-record under `ulimit LIMIT`, recording `sh -c SCRIPT` into `trace`.
    let under = |limit: &str, trace: &Path, script: &str| {
        let line = format!(
            "ulimit {limit} && exec '{}' -o '{}' -- /bin/sh -c '{script}'",
            rrc_record().display(),
            trace.display()
        );
        run(Command::new("/bin/sh").arg("-c").arg(&line), None, limit)
    };
    // Ends rrc-record with 125 and one line saying `why`.
    let refused = |out: &std::process::Output, why: &str| {
        assert_eq!(out.status.code(), Some(125), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(why), "{err}");
    };
    let trace = dir.path().join("t");
    let soft = under("-S -f 2048", &trace, "ulimit -f");
    assert!(soft.status.success(), "{soft:?}");
    assert_eq!(
        String::from_utf8_lossy(&soft.stdout),
        "2048\n",
        "the program's own limit"
    );
    let replayed = replay(&trace, &[]);
    assert!(replayed.status.success(), "{replayed:?}");
    assert_eq!(replayed.stdout, soft.stdout);

    let hard = under("-f 2048", &dir.path().join("t2"), "true");
    refused(&hard, "file-size limit (ulimit -f)");

    // A trace that outgrows the limit ends the recording in one line too.
    let lines = "i=0; while [ $i -lt 3000 ]; do echo $i; i=$((i+1)); done";
    let grown = under("-S -f 64", &dir.path().join("t3"), lines);
    refused(&grown, "reached the file-size limit");
}
