//! Harness for rrc's end-to-end tests: finds the rrc binaries and the
//! compiled C test programs, runs everything with a timeout, records,
//! replays and inspects, and compares outputs with readable failure
//! messages.
//!
//! The binaries (`rrc-record`, `rrc-replay`, `rrc-inspect`) are looked
//! up in the target profile directory the test executable was built
//! into, so `cargo build --release --workspace` must run before
//! `cargo test --release --workspace` (scripts/test.sh does both).

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::ops::Range;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

pub use serde_json::Value;
pub use tempfile::TempDir;

/// Longest any single command may run before it is killed and the test
/// fails: rrc must never hang.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// How long a command's output pipes may stay open after it exited (held
/// by processes it left behind) before those are killed.
const PIPE_GRACE: Duration = Duration::from_secs(10);

/// Magic bytes at the start of every trace.
pub const TRACE_MAGIC: &[u8; 8] = b"RRCTRACE";
/// Magic plus the u32 format version.
pub const PREAMBLE_LEN: usize = 12;
/// The trace format version rrc writes (trace-format's FORMAT_VERSION).
pub const FORMAT_VERSION: u32 = 13;

// ---------------------------------------------------------------------
// Locating things
// ---------------------------------------------------------------------

/// Directory holding the C test programs built by `tests/build.rs`.
pub fn programs_dir() -> PathBuf {
    PathBuf::from(env!("RRC_TEST_PROGRAMS"))
}

/// Path of one compiled test program, e.g. `program("inputs")`.
pub fn program(name: &str) -> PathBuf {
    let path = programs_dir().join(name);
    assert!(
        path.is_file(),
        "test program {name} is missing at {}: tests/build.rs should have compiled \
         tests/programs/{name}.c",
        path.display()
    );
    path
}

/// The target profile directory this test executable belongs to:
/// `.../target/<profile>/deps/<test>` gives `.../target/<profile>/`.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("cannot find the test executable's path");
    let mut dir = exe
        .parent()
        .expect("the test executable has no parent directory")
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// Path of an rrc binary, with a clear message when it was not built.
pub fn bin(name: &str) -> PathBuf {
    let dir = bin_dir();
    let path = dir.join(name);
    if !path.is_file() {
        let profile = dir.file_name().and_then(OsStr::to_str).unwrap_or("");
        let build = if profile == "release" {
            "cargo build --release --workspace"
        } else {
            "cargo build --workspace"
        };
        panic!(
            "{name} not found at {}.\nThe end-to-end tests run the rrc binaries from the same \
             target profile as the tests: build them first with `{build}` (or run \
             scripts/test.sh, which runs `cargo build --release --workspace && cargo test \
             --release --workspace`).",
            path.display()
        );
    }
    path
}

pub fn rrc_record() -> PathBuf {
    bin("rrc-record")
}

pub fn rrc_replay() -> PathBuf {
    bin("rrc-replay")
}

pub fn rrc_inspect() -> PathBuf {
    bin("rrc-inspect")
}

/// How many times tests repeat their record/replay loop:
/// `RRC_TEST_REPEAT` (default 1), e.g. 20 for the 20-in-a-row check.
pub fn repeat() -> usize {
    match std::env::var("RRC_TEST_REPEAT") {
        Ok(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or_else(|| panic!("RRC_TEST_REPEAT must be a positive integer, not {v:?}")),
        Err(_) => 1,
    }
}

// ---------------------------------------------------------------------
// Running commands with a timeout
// ---------------------------------------------------------------------

/// Starts `cmd` in its own process group with stdout and stderr piped
/// and stdin fed from `stdin` (closed after the bytes) or /dev/null.
pub fn spawn(cmd: &mut Command, stdin: Option<&[u8]>, what: &str) -> Child {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    if let Some(data) = stdin {
        let mut pipe = child.stdin.take().expect("stdin was piped");
        let data = data.to_vec();
        // The program may exit without reading everything: ignore EPIPE.
        thread::spawn(move || {
            let _ = pipe.write_all(&data);
        });
    }
    child
}

/// SIGKILLs every process in process group `pgid` (a child started by
/// [`spawn`] leads its own group).
pub fn kill_group(pgid: u32) {
    let pgid = libc::pid_t::try_from(pgid).expect("pid fits pid_t");
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

fn collect<R: Read + Send + 'static>(mut pipe: R) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

/// Waits for a child started by [`spawn`] (whose stdout/stderr have not
/// been taken), killing its process group and failing the test if it runs
/// longer than [`TIMEOUT`].
pub fn wait_with_timeout(child: Child, what: &str) -> Output {
    wait_within(child, what, TIMEOUT)
}

/// [`wait_with_timeout`] with a limit of its own, for long runs.
pub fn wait_within(mut child: Child, what: &str, limit: Duration) -> Output {
    let pgid = child.id();
    let out_rx = collect(child.stdout.take().expect("stdout was piped"));
    let err_rx = collect(child.stderr.take().expect("stderr was piped"));
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => panic!("cannot wait for {what}: {e}"),
        }
        if Instant::now() >= deadline {
            kill_group(pgid);
            let _ = child.kill();
            let _ = child.wait();
            let err = err_rx
                .recv_timeout(Duration::from_secs(5))
                .unwrap_or_default();
            panic!(
                "{what} did not finish within {} s and was killed (rrc must never hang).\n\
                 Its stderr:\n{}",
                limit.as_secs(),
                String::from_utf8_lossy(&err)
            );
        }
        thread::sleep(Duration::from_millis(5));
    };
    let stdout = recv_pipe(&out_rx, pgid, what, "stdout", status);
    let stderr = recv_pipe(&err_rx, pgid, what, "stderr", status);
    Output {
        status,
        stdout,
        stderr,
    }
}

fn recv_pipe(
    rx: &mpsc::Receiver<Vec<u8>>,
    pgid: u32,
    what: &str,
    name: &str,
    status: ExitStatus,
) -> Vec<u8> {
    match rx.recv_timeout(PIPE_GRACE) {
        Ok(bytes) => bytes,
        Err(_) => {
            kill_group(pgid);
            let partial = rx.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
            panic!(
                "{what} exited ({status}) but processes it left behind kept its {name} open \
                 for {} s; they were killed. {name} so far:\n{}",
                PIPE_GRACE.as_secs(),
                String::from_utf8_lossy(&partial)
            );
        }
    }
}

/// Runs `cmd` to completion with [`TIMEOUT`]; `stdin` bytes are fed to it
/// (None: /dev/null).
pub fn run(cmd: &mut Command, stdin: Option<&[u8]>, what: &str) -> Output {
    run_within(cmd, stdin, what, TIMEOUT)
}

/// [`run`] with a limit of its own, for long runs.
pub fn run_within(cmd: &mut Command, stdin: Option<&[u8]>, what: &str, limit: Duration) -> Output {
    let child = spawn(cmd, stdin, what);
    wait_within(child, what, limit)
}

/// Runs a program natively (no rrc).
pub fn run_native(program: &Path, args: &[&str], stdin: &[u8]) -> Output {
    run(
        Command::new(program).args(args),
        Some(stdin),
        &format!("native run of {}", program.display()),
    )
}

/// Exit status in shell convention: the code, or 128 + signal.
pub fn shell_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        (None, None) => unreachable!("a process either exits or is killed"),
    }
}

// ---------------------------------------------------------------------
// Recording, replaying, inspecting
// ---------------------------------------------------------------------

/// One run of `rrc-record`.
pub struct Recording {
    /// Holds the trace; deleted when the recording is dropped.
    pub dir: TempDir,
    pub trace: PathBuf,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub status: ExitStatus,
    /// How long the recording ran.
    pub took: Duration,
}

impl Recording {
    /// How long a replay of it may take: it re-creates the recorded
    /// timing, so about as long as the recording, plus the usual limit.
    pub fn replay_limit(&self) -> Duration {
        TIMEOUT + self.took * 2
    }

    pub fn describe(&self) -> String {
        format!(
            "recording of {} {:?} (trace {})",
            self.program.display(),
            self.args,
            self.trace.display()
        )
    }

    /// Fails unless rrc-record exited with `code` (the program's status).
    pub fn assert_exit_code(&self, code: i32) {
        assert_eq!(
            shell_code(self.status),
            code,
            "{}: rrc-record should exit with the program's status {code}, got {}.\n\
             stdout:\n{}\nstderr:\n{}",
            self.describe(),
            self.status,
            String::from_utf8_lossy(&self.stdout),
            String::from_utf8_lossy(&self.stderr)
        );
    }

    /// What the program wrote to stderr when recorded: the recording's
    /// stderr without rrc-record's own warnings.
    pub fn program_stderr(&self) -> Vec<u8> {
        self.stderr
            .split_inclusive(|b| *b == b'\n')
            .filter(|line| !line.starts_with(b"rrc-record: warning: "))
            .flatten()
            .copied()
            .collect()
    }

    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn trace_len(&self) -> u64 {
        std::fs::metadata(&self.trace)
            .unwrap_or_else(|e| panic!("{}: no trace file: {e}", self.describe()))
            .len()
    }
}

/// Records `program args` with `stdin` bytes on its stdin into a trace in
/// a fresh temporary directory (also the program's cwd).
pub fn record(program: &Path, args: &[&str], stdin: &[u8]) -> Recording {
    record_with_env(program, args, stdin, &[])
}

/// A new temporary directory, named from `prefix`, removed when dropped.
pub fn temp_dir(prefix: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("cannot create a temporary directory")
}

/// [`record`] with extra environment variables for the program.
pub fn record_with_env(
    program: &Path,
    args: &[&str],
    stdin: &[u8],
    env: &[(&str, &str)],
) -> Recording {
    let dir = temp_dir("rrc-test-");
    let trace = dir.path().join("trace.rrc");
    let mut cmd = Command::new(rrc_record());
    cmd.arg("-o")
        .arg(&trace)
        .arg("--")
        .arg(program)
        .args(args)
        .current_dir(dir.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let out = run(
        &mut cmd,
        Some(stdin),
        &format!("rrc-record of {}", program.display()),
    );
    assert_no_panic(&out, "rrc-record");
    Recording {
        took: started.elapsed(),
        dir,
        trace,
        program: program.to_path_buf(),
        args: args.iter().map(|a| a.to_string()).collect(),
        stdout: out.stdout,
        stderr: out.stderr,
        status: out.status,
    }
}

/// `rrc-replay [extra_args] TRACE` with stdin on /dev/null.
pub fn replay(trace: &Path, extra_args: &[&str]) -> Output {
    replay_within(trace, extra_args, TIMEOUT)
}

/// [`replay`] with a limit of its own (see [`Recording::replay_limit`]).
pub fn replay_within(trace: &Path, extra_args: &[&str], limit: Duration) -> Output {
    let mut cmd = Command::new(rrc_replay());
    cmd.args(extra_args).arg(trace);
    if let Some(dir) = trace.parent().filter(|d| d.is_dir()) {
        cmd.current_dir(dir);
    }
    let out = run_within(
        &mut cmd,
        None,
        &format!("rrc-replay {}", trace.display()),
        limit,
    );
    assert_no_panic(&out, "rrc-replay");
    out
}

/// Fails unless `replayed` is a faithful replay of `rec`: exit status 0
/// and stdout and stderr byte-identical to the recording's.
pub fn assert_replay_matches(rec: &Recording, replayed: &Output, context: &str) {
    let mut problems = Vec::new();
    if !replayed.status.success() {
        problems.push(format!(
            "rrc-replay exited with {} (expected 0)",
            replayed.status
        ));
    }
    if replayed.stdout != rec.stdout {
        problems.push(describe_difference("stdout", &rec.stdout, &replayed.stdout));
    }
    let program_stderr = rec.program_stderr();
    if replayed.stderr != program_stderr {
        problems.push(describe_difference(
            "stderr",
            &program_stderr,
            &replayed.stderr,
        ));
    }
    if !problems.is_empty() {
        panic!(
            "{context}: replay of {} is not faithful:\n{}\n--- replay stderr ---\n{}",
            rec.describe(),
            problems.join("\n"),
            String::from_utf8_lossy(&replayed.stderr)
        );
    }
}

/// Records once, checks rrc-record exited with `expected_exit`, then
/// replays `replays` times, each byte-identical with exit 0.
pub fn record_and_replay(
    program: &Path,
    args: &[&str],
    stdin: &[u8],
    expected_exit: i32,
    replays: usize,
) -> Recording {
    let rec = record(program, args, stdin);
    rec.assert_exit_code(expected_exit);
    for i in 1..=replays {
        let out = replay(&rec.trace, &[]);
        assert_replay_matches(&rec, &out, &format!("replay {i} of {replays}"));
    }
    rec
}

/// Runs `name` natively (its output must contain each of `expect`), then
/// records and replays it `repeat()` times: both print what it printed.
/// Returns the recordings.
pub fn prints_what_it_prints_natively(name: &str, expect: &[&str]) -> Vec<Recording> {
    let prog = program(name);
    let native = run_native(&prog, &[], b"");
    assert!(native.status.success(), "native run failed");
    let expected = String::from_utf8_lossy(&native.stdout).into_owned();
    assert!(
        expect.iter().all(|e| expected.contains(e)),
        "unexpected native output:\n{expected}"
    );
    (1..=repeat())
        .map(|round| {
            let rec = record_and_replay(&prog, &[], b"", 0, 2);
            assert_eq!(
                rec.stdout_str(),
                expected,
                "round {round}: recorded output differs from the native run ({})",
                rec.describe()
            );
            rec
        })
        .collect()
}

/// A human-readable account of where two outputs first differ.
pub fn describe_difference(name: &str, recorded: &[u8], replayed: &[u8]) -> String {
    let at = recorded
        .iter()
        .zip(replayed)
        .position(|(a, b)| a != b)
        .unwrap_or(recorded.len().min(replayed.len()));
    let line = recorded[..at].iter().filter(|b| **b == b'\n').count();
    let rec_lines: Vec<&[u8]> = recorded.split(|b| *b == b'\n').collect();
    let rep_lines: Vec<&[u8]> = replayed.split(|b| *b == b'\n').collect();
    let from = line.saturating_sub(3);
    let show = |lines: &[&[u8]], tag: &str| -> String {
        lines
            .iter()
            .enumerate()
            .skip(from)
            .take(line + 4 - from)
            .map(|(i, l)| {
                let mark = if i == line { ">" } else { " " };
                format!("{mark}{tag} {:>5}| {}\n", i + 1, String::from_utf8_lossy(l))
            })
            .collect()
    };
    format!(
        "{name} differs: recorded {} bytes, replayed {} bytes; first difference at byte {at} \
         (line {}):\n{}{}",
        recorded.len(),
        replayed.len(),
        line + 1,
        show(&rec_lines, "recorded"),
        show(&rep_lines, "replayed")
    )
}

/// `rrc-inspect ARGS...`, run with a timeout; never panics on its result.
pub fn inspect_raw(args: &[&OsStr]) -> Output {
    let out = run(
        Command::new(rrc_inspect()).args(args),
        None,
        &format!("rrc-inspect {args:?}"),
    );
    assert_no_panic(&out, "rrc-inspect");
    out
}

/// `rrc-inspect TRACE --json`, which must succeed and print JSON.
pub fn inspect_json(trace: &Path) -> Value {
    let out = inspect_raw(&[trace.as_os_str(), OsStr::new("--json")]);
    assert!(
        out.status.success(),
        "rrc-inspect {} --json failed ({}):\n{}",
        trace.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    parse_json(&out.stdout, "rrc-inspect --json")
}

pub fn parse_json(bytes: &[u8], what: &str) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "{what} did not print valid JSON ({e}):\n{}",
            String::from_utf8_lossy(bytes)
        )
    })
}

/// `json[key][name]` as a count, 0 when absent.
pub fn count(json: &Value, key: &str, name: &str) -> u64 {
    json[key][name].as_u64().unwrap_or(0)
}

pub fn syscall_count(json: &Value, name: &str) -> u64 {
    count(json, "syscalls", name)
}

pub fn sync_count(json: &Value, name: &str) -> u64 {
    count(json, "sync_ops", name)
}

pub fn threads(json: &Value) -> &Vec<Value> {
    json["threads"]
        .as_array()
        .unwrap_or_else(|| panic!("rrc-inspect JSON has no threads array:\n{json:#}"))
}

/// `processes` may be a count or an array of processes.
pub fn process_count(json: &Value) -> u64 {
    match &json["processes"] {
        Value::Number(n) => n.as_u64().expect("process count"),
        Value::Array(a) => a.len() as u64,
        other => panic!("rrc-inspect JSON: unexpected processes value {other}"),
    }
}

/// `json[key]` is empty: null, [], {} or 0.
pub fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Number(n) => n.as_u64() == Some(0),
        _ => false,
    }
}

/// Checks what every complete, single-process trace's JSON must say, and
/// returns it: format version, completeness, sizes, exit status, thread
/// count and shape, interval statistics, no unknown syscalls.
pub fn check_inspect(rec: &Recording, expected_threads: usize) -> Value {
    let json = inspect_json(&rec.trace);
    let ctx = rec.describe();
    assert_eq!(
        json["format_version"], FORMAT_VERSION,
        "{ctx}: format_version\n{json:#}"
    );
    assert_eq!(json["complete"], true, "{ctx}: complete\n{json:#}");
    assert!(
        json["damage"].is_null(),
        "{ctx}: damage should be null\n{json:#}"
    );
    let len = rec.trace_len();
    assert_eq!(json["trace_bytes"], len, "{ctx}: trace_bytes vs file size");
    assert_eq!(
        json["intact_bytes"], len,
        "{ctx}: intact_bytes of a complete trace"
    );
    // rrc-record exits with the program's status, 128 + signal if the
    // program was killed: above 128 either reading is possible here.
    let code = shell_code(rec.status);
    let status = &json["exit_status"];
    let status_ok = status["exited"] == code
        || (code > 128 && code < 128 + 65 && status["signaled"] == code - 128);
    assert!(
        status_ok,
        "{ctx}: exit_status {status} does not match rrc-record's exit status {code}"
    );
    let exe = json["exe"].as_str().unwrap_or_default();
    let name = rec
        .program
        .file_name()
        .and_then(OsStr::to_str)
        .unwrap_or("");
    assert!(
        exe.ends_with(name),
        "{ctx}: exe {exe:?} should be the recorded program {name}"
    );
    assert!(
        json["program"].to_string().contains(name),
        "{ctx}: program {} should name {name}",
        json["program"]
    );
    assert_eq!(process_count(&json), 1, "{ctx}: one process\n{json:#}");

    let threads = threads(&json);
    assert_eq!(
        threads.len(),
        expected_threads,
        "{ctx}: number of threads\n{json:#}"
    );
    for (i, t) in threads.iter().enumerate() {
        assert_eq!(t["thread"], i, "{ctx}: threads in logical order\n{t:#}");
        assert_eq!(t["process"], 0, "{ctx}: thread {i} process\n{t:#}");
        assert_eq!(t["exited"], true, "{ctx}: thread {i} exited\n{t:#}");
        assert!(
            t["tid"].as_i64().unwrap_or(0) > 0,
            "{ctx}: thread {i} tid\n{t:#}"
        );
        if i == 0 {
            assert!(
                t["parent"].is_null(),
                "{ctx}: first thread has no parent\n{t:#}"
            );
        } else {
            assert!(
                t["parent"].is_u64(),
                "{ctx}: thread {i} has a parent\n{t:#}"
            );
        }
    }

    let iv = &json["intervals"];
    let (count, median, p99, max) = (
        iv["count"].as_u64().unwrap_or(0),
        iv["median_ns"].as_u64().unwrap_or(0),
        iv["p99_ns"].as_u64().unwrap_or(0),
        iv["max_ns"].as_u64().unwrap_or(0),
    );
    assert!(count > 0, "{ctx}: intervals recorded\n{iv:#}");
    assert!(
        median <= p99 && p99 <= max,
        "{ctx}: interval statistics out of order\n{iv:#}"
    );
    assert!(
        is_empty_value(&json["unknown_syscalls"]),
        "{ctx}: the program made syscalls rrc does not know: {}",
        json["unknown_syscalls"]
    );
    json
}

// ---------------------------------------------------------------------
// Assertions on outputs
// ---------------------------------------------------------------------

/// Fails if `out` shows a Rust panic.
pub fn assert_no_panic(out: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked at") && !stderr.contains("RUST_BACKTRACE"),
        "{what} panicked ({}):\n{stderr}",
        out.status
    );
    if let Some(sig) = out.status.signal() {
        // The tools themselves must not crash (the program they run may).
        assert!(
            sig != libc::SIGSEGV && sig != libc::SIGABRT && sig != libc::SIGBUS,
            "{what} crashed with signal {sig}:\n{stderr}"
        );
    }
}

/// Fails unless `out` is a clean refusal: non-zero exit, no panic, and
/// exactly one non-empty line on stderr (a trailing newline is allowed).
pub fn assert_one_line_error(out: &Output, what: &str) {
    assert_no_panic(out, what);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{what} should fail, but exited 0.\nstdout:\n{}\nstderr:\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        out.status.code().is_some(),
        "{what} should exit with an error, not be killed ({})",
        out.status
    );
    let body = stderr.strip_suffix('\n').unwrap_or(&stderr);
    assert!(
        !body.trim().is_empty(),
        "{what} failed ({}) without an error message on stderr",
        out.status
    );
    assert!(
        !body.contains('\n'),
        "{what} should print exactly one line on stderr, got {}:\n{stderr}",
        body.lines().count()
    );
}

/// Runs a program natively up to `max_runs` times (40 at least) and
/// returns once two runs printed different stdout; fails if all were
/// identical (then the program does not exercise nondeterminism and its
/// replay proves nothing). On 2 processors the scheduler can place and
/// order threads the same way ten runs in a row (CI: `which_cpu`, and
/// `stdio_flush_all` beside another job); it stops at the first run that
/// differs, so more runs cost nothing when they do.
pub fn assert_native_runs_differ(program: &Path, args: &[&str], stdin: &[u8], max_runs: usize) {
    let max_runs = max_runs.max(40);
    let first = run_native(program, args, stdin);
    assert!(
        first.status.success(),
        "native run of {} failed ({}):\n{}",
        program.display(),
        first.status,
        String::from_utf8_lossy(&first.stderr)
    );
    for _ in 1..max_runs {
        let next = run_native(program, args, stdin);
        if next.stdout != first.stdout {
            return;
        }
    }
    panic!(
        "{} printed the same output in {max_runs} native runs: it does not show \
         nondeterminism:\n{}",
        program.display(),
        String::from_utf8_lossy(&first.stdout)
    );
}

// ---------------------------------------------------------------------
// Trace bytes
// ---------------------------------------------------------------------

/// Byte ranges of the frames of a trace (`u32 len | u32 crc | payload`
/// after the 12-byte preamble); stops at the first incomplete frame.
pub fn frames(trace: &[u8]) -> Vec<Range<usize>> {
    assert!(
        trace.len() >= PREAMBLE_LEN && &trace[..8] == TRACE_MAGIC,
        "not a trace: {} bytes starting {:?}",
        trace.len(),
        &trace[..trace.len().min(8)]
    );
    let mut out = Vec::new();
    let mut at = PREAMBLE_LEN;
    while at + 8 <= trace.len() {
        let len = u32::from_le_bytes(trace[at..at + 4].try_into().expect("4 bytes")) as usize;
        let end = at + 8 + len;
        if end > trace.len() {
            break;
        }
        out.push(at..end);
        at = end;
    }
    out
}

/// Reads lines from a child's stdout on a thread, one channel message per
/// line, for tests that act while a program is still running.
pub fn line_reader<R: Read + Send + 'static>(pipe: R) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            match line {
                Ok(l) => {
                    if tx.send(l).is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    });
    rx
}

/// Lines of text words used as stdin by several tests.
pub fn word_lines(n: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "apple", "brick", "cloud", "delta", "ember", "fjord", "grape", "harbor", "igloo", "jungle",
        "kettle", "lemon", "mango", "nectar", "orbit", "pepper",
    ];
    let mut out = Vec::new();
    for i in 0..n {
        writeln!(out, "{}{}", WORDS[i % WORDS.len()], i).expect("write to Vec");
    }
    out
}

// ---------------------------------------------------------------------
// Servers: recordings that run until they are told to stop
// ---------------------------------------------------------------------

/// How long a recorded server may take to accept connections.
pub const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a recorded server may take to exit once told to stop.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Path of an installed program, looked up in PATH and the sbin
/// directories (lighttpd lives in /usr/sbin). Fails the test, never
/// skips it, when the program is missing.
pub fn require_installed(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for extra in [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
    ] {
        dirs.push(PathBuf::from(extra));
    }
    for dir in dirs {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "{name} not installed: run scripts/install-deps.sh (it installs memcached, \
         redis-server, redis-tools and lighttpd). The server tests fail rather than skip \
         when a server is missing."
    )
}

/// A TCP port on 127.0.0.1 that nothing listens on right now: the kernel
/// picks it for a listener that is closed at once.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0 to find a free port: {e}"));
    listener
        .local_addr()
        .expect("local address of a bound listener")
        .port()
}

/// Sends `sig` to one process (not its group).
pub fn send_signal(pid: u32, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    // SAFETY: kill(2) has no memory-safety preconditions.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {sig}) failed: {}",
        std::io::Error::last_os_error()
    );
}

/// An `rrc-record` still running its program (a server), started by
/// [`start_recording`]. Stop it with [`LiveRecording::stop`]; dropping
/// it unstopped (a failed test) kills its whole process group.
pub struct LiveRecording {
    child: Option<Child>,
    pgid: u32,
    dir: Option<TempDir>,
    trace: PathBuf,
    program: PathBuf,
    args: Vec<String>,
    out_rx: mpsc::Receiver<Vec<u8>>,
    err_rx: mpsc::Receiver<Vec<u8>>,
    started: Instant,
}

/// Starts `rrc-record -o TRACE -- program args` with the trace in a fresh
/// temporary directory, which is also the program's working directory.
pub fn start_recording(program: &Path, args: &[&str]) -> LiveRecording {
    start_recording_with_env(program, args, &[])
}

/// [`start_recording`] with extra environment variables for rrc-record
/// and the program.
pub fn start_recording_with_env(
    program: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> LiveRecording {
    let dir = temp_dir("rrc-test-");
    let trace = dir.path().join("trace.rrc");
    let mut cmd = Command::new(rrc_record());
    cmd.arg("-o")
        .arg(&trace)
        .arg("--")
        .arg(program)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir.path());
    let mut child = spawn(
        &mut cmd,
        None,
        &format!("rrc-record of {}", program.display()),
    );
    let out_rx = collect(child.stdout.take().expect("stdout was piped"));
    let err_rx = collect(child.stderr.take().expect("stderr was piped"));
    LiveRecording {
        pgid: child.id(),
        child: Some(child),
        dir: Some(dir),
        trace,
        program: program.to_path_buf(),
        args: args.iter().map(|a| a.to_string()).collect(),
        out_rx,
        err_rx,
        started: Instant::now(),
    }
}

impl LiveRecording {
    pub fn describe(&self) -> String {
        format!(
            "recording of {} {:?} (trace {})",
            self.program.display(),
            self.args,
            self.trace.display()
        )
    }

    /// The pid of rrc-record itself.
    pub fn pid(&self) -> u32 {
        self.pgid
    }

    pub fn trace(&self) -> &Path {
        &self.trace
    }

    /// Kills everything and fails the test with `msg` and what the
    /// recorder printed so far.
    fn fail(&mut self, msg: &str) -> ! {
        kill_group(self.pgid);
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let out = self
            .out_rx
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_default();
        let err = self
            .err_rx
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_default();
        panic!(
            "{}: {msg}\nstdout:\n{}\nstderr:\n{}",
            self.describe(),
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&err)
        );
    }

    /// Waits until the recorded program accepts TCP connections on
    /// 127.0.0.1:`port` (one probe connection, closed at once), failing
    /// after [`LISTEN_TIMEOUT`] or if the recorder exits first.
    pub fn wait_for_port(&mut self, port: u16) {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + LISTEN_TIMEOUT;
        loop {
            let exited = match self.child.as_mut().map(|c| c.try_wait()) {
                Some(Ok(Some(status))) => Some(status),
                _ => None,
            };
            if let Some(status) = exited {
                self.fail(&format!(
                    "rrc-record exited ({status}) before the program listened on port {port}"
                ));
            }
            if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
                return;
            }
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "the recorded program did not accept connections on 127.0.0.1:{port} \
                     within {} s",
                    LISTEN_TIMEOUT.as_secs()
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The pid of the recorded program: rrc-record's only child.
    pub fn program_pid(&self) -> Option<u32> {
        let children =
            std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", self.pgid)).ok()?;
        children.split_whitespace().next()?.parse().ok()
    }

    /// How many sockets the recorded program holds open.
    pub fn program_sockets(&self) -> Option<usize> {
        let pid = self.program_pid()?;
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
        Some(
            fds.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|target| target.to_string_lossy().starts_with("socket:"))
                .count(),
        )
    }

    /// Waits (up to `timeout`) until the recorded program holds at most
    /// `max` sockets, e.g. only its listening socket once it has closed
    /// every client connection; returns the last count seen.
    pub fn wait_for_sockets(&self, max: usize, timeout: Duration) -> Option<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            let n = self.program_sockets();
            if n.is_some_and(|n| n <= max) || Instant::now() >= deadline {
                return n;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `sig` to rrc-record (which forwards it to the program), waits
    /// up to [`STOP_TIMEOUT`] for it to exit and returns the finished
    /// recording.
    /// Where the trace is being written.
    pub fn trace_path(&self) -> &Path {
        &self.trace
    }

    pub fn stop(mut self, sig: libc::c_int) -> Recording {
        send_signal(self.pgid, sig);
        let deadline = Instant::now() + STOP_TIMEOUT;
        let status = loop {
            let polled = self
                .child
                .as_mut()
                .expect("the recorder is running")
                .try_wait();
            match polled {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => self.fail(&format!("cannot wait for rrc-record: {e}")),
            }
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "rrc-record did not exit within {} s of signal {sig} (rrc must never hang)",
                    STOP_TIMEOUT.as_secs()
                ));
            }
            thread::sleep(Duration::from_millis(10));
        };
        self.child = None;
        let what = self.describe();
        let stdout = recv_pipe(&self.out_rx, self.pgid, &what, "stdout", status);
        let stderr = recv_pipe(&self.err_rx, self.pgid, &what, "stderr", status);
        let out = Output {
            status,
            stdout,
            stderr,
        };
        assert_no_panic(&out, "rrc-record");
        Recording {
            took: self.started.elapsed(),
            dir: self.dir.take().expect("the recording's directory"),
            trace: self.trace.clone(),
            program: self.program.clone(),
            args: std::mem::take(&mut self.args),
            stdout: out.stdout,
            stderr: out.stderr,
            status: out.status,
        }
    }
}

impl Drop for LiveRecording {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(self.pgid);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Copies a trace that exposed a problem to `$TMPDIR/rrc-kept-traces/`,
/// which outlives the test's temporary directory, and returns the copy's
/// path (for failure messages).
pub fn keep_trace(trace: &Path, tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join("rrc-kept-traces");
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let kept = dir.join(format!("{tag}-{}-{stamp}.rrc", std::process::id()));
    match std::fs::create_dir_all(&dir).and_then(|_| std::fs::copy(trace, &kept)) {
        Ok(_) => kept,
        Err(e) => {
            eprintln!("cannot keep {} as {}: {e}", trace.display(), kept.display());
            trace.to_path_buf()
        }
    }
}

/// Replays `rec` once (default options) and fails unless the replay was
/// faithful: exit 0, stdout and stderr byte-identical to the recording.
/// On failure the trace is kept (see [`keep_trace`]) and the message
/// names the `divergence:` line and the command to reproduce it.
pub fn assert_faithful_replay(rec: &Recording, tag: &str, context: &str) -> Output {
    let out = replay_within(&rec.trace, &[], rec.replay_limit());
    if out.status.success() && out.stdout == rec.stdout && out.stderr == rec.stderr {
        return out;
    }
    let kept = keep_trace(&rec.trace, tag);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("divergence:"))
        .unwrap_or("(no divergence line)");
    assert_replay_matches(
        rec,
        &out,
        &format!(
            "{tag}: {context}: {line}\ntrace kept as {} (reproduce: {} {})",
            kept.display(),
            rrc_replay().display(),
            kept.display()
        ),
    );
    out
}

/// [`record_and_replay`] that keeps the trace when a replay is not
/// faithful (see [`assert_faithful_replay`]): records once, checks
/// rrc-record exited with `expected_exit`, then replays `replays` times.
pub fn record_and_replay_keeping(
    program: &Path,
    args: &[&str],
    stdin: &[u8],
    expected_exit: i32,
    replays: usize,
    tag: &str,
) -> Recording {
    let rec = record(program, args, stdin);
    rec.assert_exit_code(expected_exit);
    for i in 1..=replays {
        assert_faithful_replay(&rec, tag, &format!("replay {i} of {replays}"));
    }
    rec
}

/// Replays a server's trace with no client present and fails unless the
/// replay was faithful. rrc-replay compares every byte the program sends
/// (to clients as well as to stdout and stderr) with the recording, so
/// its exit 0 is the byte-for-byte check of the server's replies.
pub fn assert_server_replay(rec: &Recording, tag: &str, context: &str) -> Output {
    assert_faithful_replay(
        rec,
        tag,
        &format!(
            "{context} (rrc-replay compares every byte the server sent to its clients with \
             the recording: exit 0 is that byte-for-byte check)"
        ),
    )
}

/// A replay's output without the lines `--stats` added to its stderr,
/// to compare with what the program itself wrote.
pub fn without_stats(mut out: Output) -> Output {
    out.stderr = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.starts_with("rrc-replay: stats:"))
        .flat_map(|l| [l, "\n"])
        .collect::<String>()
        .into_bytes();
    out
}

/// Hand-offs between threads in the recorded order and in the catch-up
/// order, from the `--stats` of an `rrc-replay --catch-up`.
pub fn catch_up_handoffs(replayed: &Output) -> (u64, u64) {
    let err = String::from_utf8_lossy(&replayed.stderr);
    let line = err
        .lines()
        .find(|l| l.contains("hand-offs between threads"))
        .unwrap_or_else(|| panic!("no hand-off figures in --stats:\n{err}"));
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    match numbers[..] {
        [recorded, replayed] => (recorded, replayed),
        _ => panic!("unexpected hand-off line: {line}"),
    }
}

/// Fails unless `out` is a replay that stopped with a `divergence:` line
/// on stderr; returns that line.
pub fn assert_divergence(out: &Output, context: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "{context}: replay should fail with a divergence, but exited 0.\nstderr:\n{stderr}"
    );
    stderr
        .lines()
        .find(|l| l.starts_with("divergence:"))
        .map(str::to_string)
        .unwrap_or_else(|| {
            panic!(
                "{context}: replay failed ({}) without a `divergence:` line on stderr:\n{stderr}",
                out.status
            )
        })
}

/// Replays `rec`, a program whose threads ran in parallel when recorded,
/// and fails unless the replay ended within seconds either faithfully
/// (exit 0, the recorded stdout) or with a `divergence:` line and the hint
/// that points at `--serialize`, never at the stall timeout. Returns
/// whether it was faithful.
pub fn replay_ends_faithful_or_divergent(rec: &Recording, what: &str) -> bool {
    let out = replay_within(
        &rec.trace,
        &["--stall-timeout", "20"],
        Duration::from_secs(40),
    );
    if out.status.success() {
        assert_eq!(out.stdout, rec.stdout, "{what}: exit 0 means faithful");
        return true;
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.lines().any(|l| l.starts_with("divergence:")) && !stderr.contains("no progress"),
        "{what}: a divergence, not a stall:\n{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("rrc-replay: hint:") && l.contains("rrc-record --serialize")),
        "{what}: a divergence of threads recorded in parallel points at --serialize:\n{stderr}"
    );
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn difference_names_the_first_differing_line() {
        let msg = describe_difference("stdout", b"a\nb\nc\nd\n", b"a\nb\nX\nd\n");
        assert!(msg.contains("first difference at byte 4 (line 3)"), "{msg}");
        assert!(msg.contains(">recorded     3| c"), "{msg}");
        assert!(msg.contains(">replayed     3| X"), "{msg}");
        let msg = describe_difference("stderr", b"abc", b"abcdef");
        assert!(msg.contains("recorded 3 bytes, replayed 6 bytes"), "{msg}");
        assert!(msg.contains("first difference at byte 3"), "{msg}");
    }

    #[test]
    fn frames_walks_length_prefixed_frames() {
        let mut t = Vec::from(&TRACE_MAGIC[..]);
        t.extend_from_slice(&1u32.to_le_bytes());
        for payload in [&b"hello"[..], b"", b"xyz"] {
            t.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            t.extend_from_slice(&0u32.to_le_bytes());
            t.extend_from_slice(payload);
        }
        assert_eq!(frames(&t), vec![12..25, 25..33, 33..44]);
        assert_eq!(frames(&t[..40]), vec![12..25, 25..33]);
    }

    #[test]
    fn one_line_error_accepts_a_trailing_newline_only() {
        use std::os::unix::process::ExitStatusExt;
        let out = |stderr: &[u8], code: i32| Output {
            status: ExitStatus::from_raw(code << 8),
            stdout: Vec::new(),
            stderr: stderr.to_vec(),
        };
        assert_one_line_error(&out(b"rrc-replay: error: bad\n", 1), "ok case");
        for (stderr, code) in [(&b"two\nlines\n"[..], 1), (b"", 1), (b"fine\n", 0)] {
            let r = std::panic::catch_unwind(|| assert_one_line_error(&out(stderr, code), "x"));
            assert!(r.is_err(), "{stderr:?} exit {code} must be rejected");
        }
    }
}
