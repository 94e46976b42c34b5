//! rrc-inspect run as a program on traces written by rrc_trace::TraceWriter.

use std::path::Path;
use std::process::{Command, Output};

use rrc_trace::{
    EndRecord, ExitStatus, SignalRecord, SyncBatch, SyncOp, SyncRecord, SyscallExtra,
    SyscallRecord, TraceHeader, TraceRecord, TraceWriter, FORMAT_VERSION,
};
use serde_json::Value;
use tempfile::TempDir;

const SYS_READ: u32 = 0;
const SYS_WRITE: u32 = 1;
const SYS_OPENAT: u32 = 257;
const UNKNOWN_NR: u32 = 999;

/// A trace written to a temporary directory, with where each frame starts.
struct Fixture {
    dir: TempDir,
    bytes: Vec<u8>,
    /// Byte offset of each record frame, in order (header excluded).
    record_offsets: Vec<u64>,
}

impl Fixture {
    fn new() -> Self {
        let mut writer = TraceWriter::new(Vec::new(), &header()).expect("header");
        let mut record_offsets = Vec::new();
        for record in records() {
            record_offsets.push(writer.bytes_written());
            writer.write(&record).expect("record");
        }
        Fixture {
            dir: tempfile::tempdir().expect("tempdir"),
            bytes: writer.into_inner(),
            record_offsets,
        }
    }

    /// Writes `bytes` under `name` and returns the path.
    fn file(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).expect("write fixture");
        path.to_str().expect("utf-8 temp path").to_string()
    }

    fn complete(&self) -> String {
        self.file("complete.trace", &self.bytes)
    }

    fn offset_of_record(&self, index: usize) -> usize {
        self.record_offsets[index] as usize
    }
}

fn header() -> TraceHeader {
    TraceHeader {
        argv: vec![b"./prog".to_vec(), b"--fast".to_vec()],
        env: vec![b"HOME=/root".to_vec()],
        cwd: b"/work".to_vec(),
        exe: b"/work/prog".to_vec(),
        start_time_unix_ns: 1_709_210_096_000_000_000,
        shim_path: b"/usr/lib/librrc_shim.so".to_vec(),
        shim_digest: (0, 0),
        ignored_signals: 0,
        blocked_signals: 0,
        inherited_fds: Vec::new(),
        exe_digest: Default::default(),
        secret_env: Vec::new(),
        serialized: false,
        rrc_version: "0.1.0-test".into(),
    }
}

#[allow(clippy::too_many_arguments)]
fn syscall(
    thread: u32,
    index: u64,
    nr: u32,
    args: [u64; 6],
    ret: i64,
    inputs: &[&[u8]],
    output_len: usize,
    interval_ns: u64,
    extra: SyscallExtra,
) -> TraceRecord {
    TraceRecord::Syscall(SyscallRecord {
        thread,
        index,
        nr,
        args,
        ret,
        inputs: inputs.iter().map(|input| input.to_vec()).collect(),
        outputs: if output_len == 0 {
            vec![]
        } else {
            vec![vec![b'x'; output_len]]
        },
        interval_ns,
        return_ns: 0,
        order: 0,
        extra,
        digested: 0,
    })
}

fn sync_op(op: SyncOp, seq: u64) -> SyncRecord {
    SyncRecord {
        object: 0x5555_5555_a000,
        seq,
        order: 0,
        arrival: rrc_trace::NO_ORDER,
        op,
        result: 0,
    }
}

/// Two threads of one process; intervals 1000, 2000, 3000, 4000, 100000.
fn records() -> Vec<TraceRecord> {
    let mut records = starts_and_syscalls();
    records.extend(sync_signal_and_end());
    records
}

/// The two threads' starts and their first four syscalls.
fn starts_and_syscalls() -> Vec<TraceRecord> {
    let buffer = 0x7ffd_0000_1000;
    vec![
        TraceRecord::ThreadStart {
            thread: 0,
            process: 0,
            parent: None,
            tid: 4000,
            pid: 4000,
        },
        TraceRecord::ThreadStart {
            thread: 1,
            process: 0,
            parent: Some(0),
            tid: 4001,
            pid: 4000,
        },
        syscall(
            0,
            0,
            SYS_READ,
            [0, buffer, 4096, 0, 0, 0],
            17,
            &[],
            17,
            1000,
            SyscallExtra::None,
        ),
        syscall(
            0,
            1,
            SYS_OPENAT,
            [(-100i64) as u64, buffer, 0, 0, 0, 0],
            -2,
            &[b"/nope"],
            0,
            2000,
            SyscallExtra::None,
        ),
        syscall(
            1,
            0,
            SYS_WRITE,
            [1, buffer, 6, 0, 0, 0],
            6,
            &[b"hello\n"],
            0,
            3000,
            SyscallExtra::StdStream(1),
        ),
        syscall(
            1,
            1,
            SYS_READ,
            [3, buffer, 4, 0, 0, 0],
            4,
            &[],
            4,
            4000,
            SyscallExtra::None,
        ),
    ]
}

/// Sync operations, a signal, an unknown syscall, the exits and the end.
fn sync_signal_and_end() -> Vec<TraceRecord> {
    vec![
        TraceRecord::Sync(SyncBatch {
            thread: 1,
            first: 0,
            ops: vec![
                sync_op(SyncOp::MutexLock, 0),
                sync_op(SyncOp::MutexLock, 1),
                sync_op(SyncOp::CondWait, 2),
            ],
        }),
        TraceRecord::Signal(SignalRecord {
            thread: 1,
            index: 2,
            signo: 14,
            asynchronous: true,
            at: rrc_trace::SignalPoint::SyscallReturn,
            siginfo: Vec::new(),
        }),
        TraceRecord::Warning {
            thread: 1,
            message: "unknown syscall 999: only its result is recorded".into(),
        },
        syscall(
            1,
            3,
            UNKNOWN_NR,
            [7, 0, 0, 0, 0, 0],
            0,
            &[],
            0,
            100_000,
            SyscallExtra::Unknown,
        ),
        TraceRecord::ThreadExit {
            thread: 1,
            events: 4,
        },
        TraceRecord::ThreadExit {
            thread: 0,
            events: 2,
        },
        TraceRecord::End(EndRecord {
            exit: ExitStatus::Exited(3),
            duration_ns: 5_000_000,
        }),
    ]
}

/// Index in `records()` of the unknown syscall, and of the End record.
const UNKNOWN_SYSCALL_RECORD: usize = 9;
const END_RECORD: usize = 12;

fn inspect(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rrc-inspect"))
        .args(args)
        .output()
        .expect("run rrc-inspect")
}

fn stdout_of(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("utf-8 stdout")
}

/// Asserts stderr is exactly one `rrc-inspect: error: ...` line; returns it.
fn one_error_line(output: &Output) -> String {
    let stderr = String::from_utf8(output.stderr.clone()).expect("utf-8 stderr");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "stderr should be one line: {stderr:?}");
    assert!(
        lines[0].starts_with("rrc-inspect: error: "),
        "unexpected stderr: {stderr:?}"
    );
    lines[0].to_string()
}

fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).expect("stdout is one JSON value")
}

#[test]
fn json_summary_of_a_complete_trace() {
    let fixture = Fixture::new();
    let output = inspect(&[&fixture.complete(), "--json"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(output.stderr.is_empty());
    let json = json_of(&output);

    let keys: Vec<&str> = json
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected_keys = vec![
        "format_version",
        "complete",
        "damage",
        "program",
        "exe",
        "cwd",
        "inherited_fds",
        "serialized",
        "start_time_unix_ns",
        "rrc_version",
        "trace_bytes",
        "tsc_reads",
        "intact_bytes",
        "exit_status",
        "duration_ns",
        "threads",
        "processes",
        "syscalls",
        "buffered_syscalls",
        "sync_ops",
        "signals",
        "intervals",
        "bytes",
        "warnings",
        "unknown_syscalls",
    ];
    let mut keys_sorted = keys.clone();
    keys_sorted.sort_unstable();
    expected_keys.sort_unstable();
    assert_eq!(keys_sorted, expected_keys);

    let size = fixture.bytes.len() as u64;
    assert_eq!(json["format_version"], FORMAT_VERSION);
    assert_eq!(json["complete"], true);
    assert_eq!(json["damage"], Value::Null);
    assert_eq!(json["program"], serde_json::json!(["./prog", "--fast"]));
    assert_eq!(json["exe"], "/work/prog");
    assert_eq!(json["cwd"], "/work");
    assert_eq!(json["start_time_unix_ns"], 1_709_210_096_000_000_000u64);
    assert_eq!(json["rrc_version"], "0.1.0-test");
    assert_eq!(json["trace_bytes"], size);
    assert_eq!(json["intact_bytes"], size);
    assert_eq!(json["exit_status"], serde_json::json!({"exited": 3}));
    assert_eq!(json["duration_ns"], 5_000_000);
    assert_eq!(json["processes"], 1);
    assert_eq!(
        json["buffered_syscalls"], 0,
        "the fixture's calls all trapped"
    );
    assert_eq!(
        json["syscalls"],
        serde_json::json!({"read": 2, "openat": 1, "write": 1, "syscall_999": 1})
    );
    assert_eq!(
        json["sync_ops"],
        serde_json::json!({"pthread_mutex_lock": 2, "pthread_cond_wait": 1})
    );
    assert_eq!(json["signals"], serde_json::json!({"SIGALRM": 1}));
    assert_eq!(
        json["intervals"],
        serde_json::json!({"count": 5, "median_ns": 3000, "p99_ns": 100_000, "max_ns": 100_000})
    );
    assert_eq!(
        json["bytes"],
        serde_json::json!({"syscall_outputs": 21, "syscall_inputs": 11, "syscall_inputs_digested": 0})
    );
    assert_eq!(json["unknown_syscalls"], serde_json::json!(["syscall_999"]));
    let warnings = json["warnings"].as_array().expect("warnings array");
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0]
        .as_str()
        .is_some_and(|w| w.contains("unknown syscall 999")));
    assert_eq!(
        json["threads"],
        serde_json::json!([
            {"thread": 0, "process": 0, "parent": null, "tid": 4000, "pid": 4000,
             "syscalls": 2, "signals": 0, "sync_ops": 0, "exited": true},
            {"thread": 1, "process": 0, "parent": 0, "tid": 4001, "pid": 4000,
             "syscalls": 3, "signals": 1, "sync_ops": 3, "exited": true},
        ])
    );
}

#[test]
fn human_summary_names_what_happened() {
    let fixture = Fixture::new();
    let output = inspect(&[&fixture.complete()]);
    assert_eq!(output.status.code(), Some(0));
    let text = stdout_of(&output);
    for expected in [
        "./prog --fast",
        "/work/prog",
        "complete",
        "exited with status 3",
        "2024-02-29 12:34:56",
        "read",
        "openat",
        "write",
        "syscall_999",
        "pthread_mutex_lock",
        "pthread_cond_wait",
        "SIGALRM",
        "median 3.0µs",
        "p99 100.0µs",
        "unknown syscall 999",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    let read_line = text.find("  read").expect("read listed");
    let openat_line = text.find("  openat").expect("openat listed");
    assert!(read_line < openat_line, "syscalls by count, largest first");
}

#[test]
fn events_of_one_thread_only() {
    let fixture = Fixture::new();
    let trace = fixture.complete();
    for args in [
        vec!["--events", "--thread", "1", trace.as_str()],
        vec![trace.as_str(), "--thread", "1", "--events"],
    ] {
        let output = inspect(&args);
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        let text = stdout_of(&output);
        let thread_lines: Vec<&str> = text.lines().filter(|l| l.starts_with("[t")).collect();
        assert!(thread_lines
            .iter()
            .all(|line| line.starts_with("[t1 ") || line.starts_with("[t1]")));
        for expected in [
            "[t1] +++ thread start",
            "[t1 #0] write(1, 0x7ffd00001000, 6) = 6  <to stdout>  <in \"hello\\n\">  +3.0µs",
            "[t1 sync #0] pthread_mutex_lock(0x55555555a000) = 0 seq 0",
            "[t1 sync #2] pthread_cond_wait(0x55555555a000) = 0 seq 2",
            "[t1 #2] --- SIGALRM (async, at syscall return) ---",
            "[t1] !!! warning: unknown syscall 999",
            "[t1 #3] syscall_999(7) = 0",
            "[t1] +++ thread exit",
            "=== end: exited with status 3 after 5.0ms ===",
        ] {
            assert!(
                text.contains(expected),
                "{expected:?} missing from:\n{text}"
            );
        }
        assert!(!text.contains("openat"));
    }
}

#[test]
fn events_of_all_threads_in_trace_order() {
    let fixture = Fixture::new();
    let output = inspect(&["--events", &fixture.complete()]);
    assert_eq!(output.status.code(), Some(0));
    let text = stdout_of(&output);
    let lines: Vec<&str> = text.lines().collect();
    // 13 records, the sync batch of 3 ops printing 3 lines.
    assert_eq!(lines.len(), 15, "{text}");
    assert!(lines[0].starts_with("[t0] +++ thread start"));
    assert_eq!(
        lines[3],
        "[t0 #1] openat(-100, 0x7ffd00001000, 0, 0) = -1 ENOENT  <in \"/nope\">  +2.0µs  @0"
    );
    assert!(lines[14].starts_with("=== end"));
}

#[test]
fn a_trace_cut_mid_frame_gives_its_prefix_and_fails() {
    let fixture = Fixture::new();
    let frame = fixture.offset_of_record(UNKNOWN_SYSCALL_RECORD);
    for cut in [frame + 5, frame + 12] {
        let trace = fixture.file("cut.trace", &fixture.bytes[..cut]);
        let output = inspect(&["--json", &trace]);
        assert_eq!(output.status.code(), Some(1));
        let json = json_of(&output);
        assert_eq!(json["complete"], false);
        assert_eq!(json["intact_bytes"], frame as u64);
        assert_eq!(json["trace_bytes"], cut as u64);
        assert_eq!(json["exit_status"], Value::Null);
        assert_eq!(json["duration_ns"], Value::Null);
        assert_eq!(json["intervals"]["count"], 4);
        let damage = json["damage"].as_str().expect("damage text");
        let expected = format!("trace truncated at byte offset {frame}");
        assert!(damage.starts_with(&expected), "{damage}");
        let error = one_error_line(&output);
        assert_eq!(error, format!("rrc-inspect: error: {damage}"));
    }
}

#[test]
fn a_trace_without_its_end_record_is_incomplete() {
    let fixture = Fixture::new();
    let end = fixture.offset_of_record(END_RECORD);
    let trace = fixture.file("killed.trace", &fixture.bytes[..end]);

    let output = inspect(&[&trace]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout_of(&output);
    assert!(text.contains("INCOMPLETE"), "{text}");
    assert!(text.contains("syscall_999"), "{text}");
    let error = one_error_line(&output);
    assert!(error.contains(&format!("byte offset {end}")), "{error}");
    assert!(error.contains("before its end record"), "{error}");

    let events = inspect(&["--events", &trace]);
    assert_eq!(events.status.code(), Some(1));
    assert!(stdout_of(&events).contains("[t0] +++ thread exit"));
    assert!(!stdout_of(&events).contains("=== end"));
    one_error_line(&events);
}

#[test]
fn a_flipped_byte_in_a_record_is_corruption() {
    let fixture = Fixture::new();
    let frame = fixture.offset_of_record(3);
    let mut bytes = fixture.bytes.clone();
    bytes[frame + 8 + 2] ^= 0x40;
    let trace = fixture.file("flipped.trace", &bytes);

    let output = inspect(&["--json", &trace]);
    assert_eq!(output.status.code(), Some(1));
    let json = json_of(&output);
    assert_eq!(json["complete"], false);
    assert_eq!(json["syscalls"], serde_json::json!({"read": 1}));
    let error = one_error_line(&output);
    assert!(
        error.contains(&format!("corrupted at byte offset {frame}")),
        "{error}"
    );
}

#[test]
fn a_damaged_header_is_a_one_line_error() {
    let fixture = Fixture::new();
    let mut bytes = fixture.bytes.clone();
    bytes[12 + 8 + 3] ^= 0xff;
    let trace = fixture.file("header.trace", &bytes);
    let output = inspect(&[&trace]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let error = one_error_line(&output);
    assert!(error.contains("corrupted at byte offset 12"), "{error}");
}

#[test]
fn another_format_version_names_both_versions() {
    let fixture = Fixture::new();
    let mut bytes = fixture.bytes.clone();
    let other_version = FORMAT_VERSION + 1;
    bytes[8..12].copy_from_slice(&other_version.to_le_bytes());
    let trace = fixture.file("future.trace", &bytes);
    let output = inspect(&["--json", &trace]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let error = one_error_line(&output);
    assert!(
        error.contains(&format!("version {other_version}")),
        "{error}"
    );
    assert!(
        error.contains(&format!("version {FORMAT_VERSION}")),
        "{error}"
    );
}

#[test]
fn a_file_that_is_not_a_trace_is_a_one_line_error() {
    let fixture = Fixture::new();
    let mut state: u32 = 0x1234_5678;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        })
        .collect();
    for (name, bytes) in [("noise.bin", noise.as_slice()), ("empty.bin", &[][..])] {
        let output = inspect(&[&fixture.file(name, bytes)]);
        assert_eq!(output.status.code(), Some(1), "{name}");
        assert!(output.stdout.is_empty(), "{name}");
        one_error_line(&output);
    }
    let output = inspect(&[&fixture.file("noise.bin", &noise)]);
    assert!(one_error_line(&output).contains("not an rrc trace"));
}

#[test]
fn a_missing_file_is_a_one_line_error_naming_it() {
    let fixture = Fixture::new();
    let missing = fixture.dir.path().join("nowhere.trace");
    let missing = missing.to_str().expect("utf-8 temp path");
    let output = inspect(&["--events", missing]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    assert!(one_error_line(&output).contains(missing));
    assert!(!Path::new(missing).exists());
}

#[test]
fn a_bad_command_line_fails_without_reading() {
    let fixture = Fixture::new();
    let trace = fixture.complete();
    for args in [
        vec![trace.as_str(), "--bogus"],
        vec![],
        vec!["--events", trace.as_str(), "--thread", "one"],
        vec!["--json", "--events", trace.as_str()],
    ] {
        let output = inspect(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}");
        one_error_line(&output);
    }
    let help = inspect(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(stdout_of(&help).contains("--events"));
}

/// Exit 1 with one error line; when the header was readable, the JSON of
/// the intact prefix on stdout, otherwise nothing. Returns whether a
/// prefix was printed.
fn assert_damage_reported(trace: &str, what: &str) -> bool {
    let output = inspect(&["--json", trace]);
    assert_eq!(output.status.code(), Some(1), "{what}");
    let error = one_error_line(&output);
    if output.stdout.is_empty() {
        return false;
    }
    let json = json_of(&output);
    assert_eq!(json["complete"], false, "{what}");
    let damage = json["damage"].as_str().expect("damage text");
    assert!(damage.contains("byte offset"), "{what}: {damage}");
    assert!(error.ends_with(damage), "{what}: {error}");
    true
}

#[test]
fn every_cut_and_every_flipped_byte_is_reported() {
    let fixture = Fixture::new();
    let header_end = fixture.offset_of_record(0);
    let len = fixture.bytes.len();
    for cut in (0..len).step_by(11).chain([header_end, len - 1]) {
        let trace = fixture.file("cut.trace", &fixture.bytes[..cut]);
        let what = format!("cut at {cut} of {len}");
        let printed_prefix = assert_damage_reported(&trace, &what);
        assert_eq!(printed_prefix, cut >= header_end, "{what}");
    }
    for at in (0..len).step_by(7) {
        let mut bytes = fixture.bytes.clone();
        bytes[at] ^= 0x40;
        let trace = fixture.file("flipped.trace", &bytes);
        assert_damage_reported(&trace, &format!("byte {at} of {len} flipped"));
    }
}
