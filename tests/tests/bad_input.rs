//! Bad input of every kind gets one line on stderr and a non-zero exit:
//! never a panic, never a hang (every command runs under a timeout).

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use rrc_tests::*;

/// A complete trace of a small program that writes only to stdout, so
/// any stderr output of a replay is rrc's own.
fn reference() -> (Recording, Vec<u8>) {
    let rec = record(&program("divergent_v1"), &[], b"");
    rec.assert_exit_code(0);
    let bytes = std::fs::read(&rec.trace).expect("read the trace");
    assert!(
        bytes.starts_with(TRACE_MAGIC),
        "traces start with the magic RRCTRACE"
    );
    assert_eq!(
        &bytes[8..12],
        &FORMAT_VERSION.to_le_bytes(),
        "the format version at offset 8"
    );
    let frames = frames(&bytes);
    assert_eq!(
        frames.last().map(|f| f.end),
        Some(bytes.len()),
        "a complete trace is a whole number of frames"
    );
    assert!(
        frames.len() >= 4,
        "header, thread start, some syscalls and the end: {} frames",
        frames.len()
    );
    (rec, bytes)
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write a test trace");
    path
}

/// Both rrc-replay and rrc-inspect (summary, --json and --events) must
/// refuse `trace` with one line.
fn assert_rejected(trace: &Path, what: &str) {
    let t = trace.as_os_str();
    let out = replay(trace, &[]);
    assert_one_line_error(&out, &format!("rrc-replay of {what}"));
    let out = inspect_raw(&[t]);
    assert_one_line_error(&out, &format!("rrc-inspect of {what}"));
    let out = inspect_raw(&[t, OsStr::new("--json")]);
    assert_one_line_error(&out, &format!("rrc-inspect --json of {what}"));
    let out = inspect_raw(&[OsStr::new("--events"), t]);
    assert_one_line_error(&out, &format!("rrc-inspect --events of {what}"));
}

#[test]
fn truncated_traces_are_rejected() {
    let (rec, bytes) = reference();
    let frames = frames(&bytes);
    let header_end = frames[0].end;
    let mid = &frames[frames.len() / 2];
    let last = frames.last().expect("frames");
    let cuts = [
        ("empty file", 0),
        ("cut inside the magic", 5),
        ("cut inside the version", 10),
        ("preamble only", PREAMBLE_LEN),
        ("cut inside the header's frame head", PREAMBLE_LEN + 4),
        ("cut inside the header", header_end - 3),
        ("header only", header_end),
        ("cut inside the second frame's head", frames[1].start + 5),
        ("cut inside the second frame", frames[1].end - 1),
        ("cut at a frame boundary in the middle", mid.start),
        (
            "cut in the middle of a frame",
            mid.start + (mid.end - mid.start) / 2,
        ),
        ("end record missing", last.start),
        ("last byte missing", bytes.len() - 1),
    ];
    for (what, cut) in cuts {
        let path = write_file(rec.dir.path(), "cut.rrc", &bytes[..cut]);
        let what = format!("a truncated trace ({what}, {cut} of {} bytes)", bytes.len());
        assert_rejected(&path, &what);

        // Past the header, --json still describes the intact prefix.
        if cut >= header_end {
            let out = inspect_raw(&[path.as_os_str(), OsStr::new("--json")]);
            let json = parse_json(&out.stdout, &format!("rrc-inspect --json of {what}"));
            assert_eq!(json["complete"], false, "{what}: complete\n{json:#}");
            let damage = json["damage"].as_str().unwrap_or_default();
            assert!(
                damage.contains("byte offset"),
                "{what}: damage should name the byte offset: {damage:?}"
            );
            let intact = frames
                .iter()
                .map(|f| f.end)
                .filter(|end| *end <= cut)
                .max()
                .expect("the header frame is intact");
            assert_eq!(
                json["intact_bytes"], intact,
                "{what}: intact_bytes is the end of the last whole frame"
            );
            assert_eq!(json["trace_bytes"], cut, "{what}: trace_bytes");
        }
    }
}

#[test]
fn corrupted_traces_are_rejected() {
    let (rec, bytes) = reference();
    let frames = frames(&bytes);
    let mid = frames[frames.len() / 2].clone();

    // A flipped bit in a payload: the frame's checksum no longer matches.
    let mut flipped = bytes.clone();
    let at = mid.start + 8 + (mid.end - mid.start - 8) / 2;
    flipped[at] ^= 0x40;
    let path = write_file(rec.dir.path(), "flipped.rrc", &flipped);
    let what = format!("a trace with byte {at} flipped (frame at {})", mid.start);
    assert_rejected(&path, &what);
    let out = inspect_raw(&[path.as_os_str(), OsStr::new("--json")]);
    let json = parse_json(&out.stdout, &format!("rrc-inspect --json of {what}"));
    assert_eq!(json["complete"], false, "{what}\n{json:#}");
    assert_eq!(
        json["intact_bytes"], mid.start,
        "{what}: the prefix ends where the damaged frame starts"
    );
    let damage = json["damage"].as_str().unwrap_or_default();
    assert!(
        damage.contains(&format!("byte offset {}", mid.start)),
        "{what}: damage should name the damaged frame's offset: {damage:?}"
    );

    // Whatever the middle byte of the file is part of.
    let mut middle = bytes.clone();
    middle[bytes.len() / 2] ^= 0xff;
    let path = write_file(rec.dir.path(), "middle.rrc", &middle);
    assert_rejected(&path, "a trace with its middle byte inverted");

    // A frame length that is absurd.
    let mut huge = bytes.clone();
    huge[mid.start..mid.start + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let path = write_file(rec.dir.path(), "huge.rrc", &huge);
    assert_rejected(&path, "a trace with a frame length of 4 GiB");

    // Garbage appended after the end record.
    let mut trailing = bytes.clone();
    trailing.extend_from_slice(b"garbage after the end");
    let path = write_file(rec.dir.path(), "trailing.rrc", &trailing);
    let out = replay(&path, &[]);
    assert_no_panic(&out, "rrc-replay of a trace with trailing garbage");
    if !out.status.success() {
        assert_one_line_error(&out, "rrc-replay of a trace with trailing garbage");
    }
}

#[test]
fn other_format_versions_are_rejected() {
    let (rec, bytes) = reference();
    for version in [0u32, FORMAT_VERSION - 1, FORMAT_VERSION + 1, 0xffff_ffff] {
        let mut other = bytes.clone();
        other[8..12].copy_from_slice(&version.to_le_bytes());
        let path = write_file(rec.dir.path(), "version.rrc", &other);
        let what = format!("a trace of format version {version}");
        assert_rejected(&path, &what);
        let out = replay(&path, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("version"),
            "{what}: the error should mention the version: {stderr}"
        );
    }
}

#[test]
fn files_that_are_not_traces_are_rejected() {
    let dir = TempDir::new().expect("temporary directory");
    let text = write_file(dir.path(), "notes.txt", b"just some text\nnot a trace\n");
    assert_rejected(&text, "a text file");
    let zeros = write_file(dir.path(), "zeros.rrc", &[0u8; 4096]);
    assert_rejected(&zeros, "a file of zeros");
    let magic_only = write_file(dir.path(), "magic.rrc", TRACE_MAGIC);
    assert_rejected(&magic_only, "a file holding only the magic");
    assert_rejected(&program("exit_code"), "an ELF executable");
    assert_rejected(dir.path(), "a directory");
}

#[test]
fn missing_trace_file_is_rejected() {
    let dir = TempDir::new().expect("temporary directory");
    assert_rejected(
        &dir.path().join("no-such-trace.rrc"),
        "a missing trace file",
    );
}

#[test]
fn missing_program_is_rejected() {
    let dir = TempDir::new().expect("temporary directory");
    let trace = dir.path().join("t.rrc");
    let not_executable = write_file(dir.path(), "plain-file", b"#!/bin/sh\necho hi\n");
    std::fs::set_permissions(&not_executable, std::fs::Permissions::from_mode(0o644))
        .expect("chmod 644");
    let cases: [(&str, &OsStr); 4] = [
        (
            "an absent absolute path",
            OsStr::new("/nonexistent/program"),
        ),
        ("a name not on PATH", OsStr::new("rrc-test-no-such-program")),
        (
            "a file without execute permission",
            not_executable.as_os_str(),
        ),
        ("a directory", dir.path().as_os_str()),
    ];
    for (what, prog) in cases {
        let out = run(
            Command::new(rrc_record())
                .arg("-o")
                .arg(&trace)
                .arg("--")
                .arg(prog),
            None,
            &format!("rrc-record of {what}"),
        );
        assert_one_line_error(&out, &format!("rrc-record of {what}"));
    }
}

#[test]
fn record_without_program_is_rejected() {
    let dir = TempDir::new().expect("temporary directory");
    let trace = dir.path().join("t.rrc");
    for args in [
        vec![OsStr::new("-o"), trace.as_os_str()],
        vec![OsStr::new("-o"), trace.as_os_str(), OsStr::new("--")],
        vec![],
        vec![OsStr::new("-o")],
    ] {
        let out = run(
            Command::new(rrc_record())
                .args(&args)
                .current_dir(dir.path()),
            None,
            &format!("rrc-record {args:?}"),
        );
        assert_one_line_error(&out, &format!("rrc-record {args:?}"));
    }
}

#[test]
fn record_without_double_dash_errors_or_runs_correctly() {
    let dir = TempDir::new().expect("temporary directory");
    let trace = dir.path().join("t.rrc");
    let out = run(
        Command::new(rrc_record())
            .arg("-o")
            .arg(&trace)
            .arg(program("exit_code"))
            .arg("5"),
        None,
        "rrc-record without --",
    );
    if out.status.code() == Some(5) {
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "exit_code: exiting with status 5\n",
            "without --, the program ran with its arguments"
        );
        assert!(trace.is_file(), "and was recorded");
    } else {
        assert_one_line_error(&out, "rrc-record without --");
    }
}

#[test]
fn record_to_unwritable_trace_path_is_rejected() {
    let out = run(
        Command::new(rrc_record())
            .arg("-o")
            .arg("/nonexistent-dir/t.rrc")
            .arg("--")
            .arg(program("exit_code"))
            .arg("0"),
        None,
        "rrc-record -o /nonexistent-dir/t.rrc",
    );
    assert_one_line_error(&out, "rrc-record to an unwritable path");
    assert!(
        out.stdout.is_empty(),
        "the program must not run when its trace cannot be written: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn unknown_options_are_rejected() {
    let (rec, _) = reference();
    let trace = rec.trace.as_os_str();
    let other = rec.dir.path().join("other.rrc");
    let prog = program("exit_code");
    let cases: Vec<(PathBuf, Vec<&OsStr>)> = vec![
        (
            rrc_record(),
            vec![
                OsStr::new("--no-such-option"),
                OsStr::new("-o"),
                other.as_os_str(),
                OsStr::new("--"),
                prog.as_os_str(),
            ],
        ),
        (
            rrc_record(),
            vec![
                OsStr::new("-Z"),
                OsStr::new("-o"),
                other.as_os_str(),
                OsStr::new("--"),
                prog.as_os_str(),
            ],
        ),
        (rrc_replay(), vec![OsStr::new("--no-such-option"), trace]),
        (rrc_replay(), vec![trace, OsStr::new("--no-such-option")]),
        (rrc_inspect(), vec![OsStr::new("--no-such-option"), trace]),
        (rrc_inspect(), vec![trace, OsStr::new("--jsn")]),
    ];
    for (bin, args) in cases {
        let what = format!(
            "{} {args:?}",
            bin.file_name().and_then(OsStr::to_str).unwrap_or("?")
        );
        let out = run(Command::new(&bin).args(&args), None, &what);
        assert_one_line_error(&out, &what);
    }
    assert!(
        !other.exists(),
        "rrc-record must not record when its options are bad"
    );
}

#[test]
fn replay_and_inspect_without_arguments_are_rejected() {
    for bin in [rrc_replay(), rrc_inspect()] {
        let what = format!("{} with no arguments", bin.display());
        let out = run(&mut Command::new(&bin), None, &what);
        assert_one_line_error(&out, &what);
    }
    let (rec, _) = reference();
    let what = "rrc-replay with two traces";
    let out = run(
        Command::new(rrc_replay()).arg(&rec.trace).arg(&rec.trace),
        None,
        what,
    );
    assert_one_line_error(&out, what);
}
