//! Output a program sends to stdout from another descriptor instead of
//! from its memory: `copy_file_range` (GNU `cat`'s way when stdout is a
//! file), `sendfile`, `splice` from a file or from a pipe (Rust's
//! `io::copy` from a child's stdout to `stdout().lock()` waits in splice),
//! and `tee`. Replay prints it byte for byte; it used to print none of it
//! and still exit 0. The text holds random bytes and clock readings.

use std::path::Path;

use rrc_tests::*;

/// Records `copy_to_stdout MODE` with its stdout a regular file
/// (`to_file`) or a pipe; the recording's stdout is what it printed.
fn record_to(mode: &str, to_file: bool) -> Recording {
    let prog = program("copy_to_stdout");
    if !to_file {
        return record(&prog, &[mode], b"");
    }
    let dir = temp_dir("rrc-test-");
    let trace = dir.path().join("trace.rrc");
    let printed = dir.path().join("stdout.txt");
    let out = run(
        std::process::Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$0" -o "$1" -- "$2" "$3" > "$4""#)
            .arg(rrc_record())
            .arg(&trace)
            .arg(&prog)
            .arg(mode)
            .arg(&printed)
            .current_dir(dir.path()),
        None,
        "rrc-record with stdout a file",
    );
    assert_no_panic(&out, "rrc-record");
    let stdout = std::fs::read(&printed).expect("the recording's stdout file");
    Recording {
        took: std::time::Duration::ZERO,
        dir,
        trace,
        program: prog,
        args: vec![mode.to_string()],
        stdout,
        stderr: out.stderr,
        status: out.status,
    }
}

/// Records `mode` (times RRC_TEST_REPEAT) to a file and to a pipe, checks
/// that the call it names sent the text where it can (`sends_to`: "file",
/// "pipe"), and replays each recording twice, faithfully.
fn replays_in_full(mode: &str, sends_to: &[&str]) {
    for round in 1..=repeat() {
        for (to_file, dest) in [(true, "file"), (false, "pipe")] {
            let rec = record_to(mode, to_file);
            rec.assert_exit_code(0);
            let said = String::from_utf8_lossy(&rec.stderr).into_owned();
            if sends_to.contains(&dest) {
                assert!(
                    said.contains(&format!("{mode} sent 2")),
                    "{mode} to a {dest} should send the text itself; it said:\n{said}"
                );
            }
            assert!(
                rec.stdout.len() > 2000,
                "{mode} to a {dest} printed only {} bytes",
                rec.stdout.len()
            );
            let tag = format!("copy_to_stdout-{mode}-{dest}-round{round}");
            for i in 1..=2 {
                assert_faithful_replay(&rec, &tag, &format!("replay {i} of 2, stdout a {dest}"));
            }
        }
    }
}

#[test]
fn text_copied_to_stdout_with_copy_file_range_replays_in_full() {
    replays_in_full("copy_file_range", &["file"]);
}

#[test]
fn text_sent_to_stdout_with_sendfile_replays_in_full() {
    replays_in_full("sendfile", &["file", "pipe"]);
}

#[test]
fn text_spliced_to_stdout_from_a_file_replays_in_full() {
    replays_in_full("splice_file", &["pipe"]);
}

#[test]
fn text_spliced_to_stdout_from_a_pipe_that_fills_slowly_replays_in_full() {
    replays_in_full("splice_pipe", &["file", "pipe"]);
}

#[test]
fn text_teed_to_stdout_replays_in_full() {
    replays_in_full("tee", &["pipe"]);
}

#[test]
fn text_copied_to_stdout_differs_natively() {
    let prog = program("copy_to_stdout");
    assert!(Path::new(&prog).exists());
    assert_native_runs_differ(&prog, &["splice_pipe"], b"", 5);
}
