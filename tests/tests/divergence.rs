//! Replay of a program that no longer behaves as recorded must report a
//! divergence, not succeed or hang.

use std::path::{Path, PathBuf};

use rrc_tests::*;

/// Copies `from` to `to`, replacing the file (a fresh inode).
fn install(from: &Path, to: &Path) {
    if to.exists() {
        std::fs::remove_file(to).expect("remove the old executable");
    }
    std::fs::copy(from, to).expect("copy the executable");
}

fn check_divergence(variant: &str) -> String {
    let bin_dir = TempDir::new().expect("temporary directory");
    let prog: PathBuf = bin_dir.path().join("prog");
    install(&program("divergent_v1"), &prog);

    let rec = record(&prog, &[], b"");
    rec.assert_exit_code(0);
    assert!(rec.stdout_str().starts_with("variant one: "));
    let faithful = replay(&rec.trace, &[]);
    assert_replay_matches(&rec, &faithful, "replay before the executable changed");

    install(&program(variant), &prog);
    // By default a changed executable is refused before it runs...
    let refused = replay(&rec.trace, &[]);
    assert_eq!(
        refused.status.code(),
        Some(3),
        "a changed executable is a divergence"
    );
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.starts_with("divergence:") && said.contains("not run"),
        "{said}"
    );
    assert!(refused.stdout.is_empty(), "the changed program did not run");
    // ...and when it is let run, replay stops where it departs.
    let out = replay(&rec.trace, &["--allow-changed-executable"]);
    let line = assert_divergence(&out, &format!("replay of a changed executable ({variant})"));
    // One thread: nothing shared with another, so no hint at --serialize.
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!said.contains("hint:"), "{said}");
    line
}

#[test]
fn divergence_when_program_writes_other_bytes() {
    check_divergence("divergent_v2");
}

#[test]
fn divergence_when_program_makes_other_syscalls() {
    check_divergence("divergent_v3");
}

/// With the fast path on (the default), the differing write is made
/// untrapped and logged in-process; replay, which traps it, still stops
/// there, naming it.
#[test]
fn divergence_when_a_buffered_write_sends_other_bytes() {
    let line = check_divergence("divergent_v4");
    assert!(
        line.contains("write"),
        "the divergence names the write: {line}"
    );
}

/// Large sent data is kept in the trace as its length and XXH3-128 hash: a
/// write that differs in one byte of 200 is still a divergence at that
/// write, and the report says the trace has only the digest.
#[test]
fn divergence_when_a_large_write_differs_in_one_byte() {
    let line = check_divergence("divergent_v5");
    assert!(
        line.contains("write") && line.contains("200 bytes") && line.contains("XXH3"),
        "the divergence names the write and its digest: {line}"
    );
}

/// A lock the recording never took, after the last sync operation the
/// thread made then, with its output still to flush: the shim's next
/// recorded operation for it is the exit's ordered flush (or none).
/// Replay reports the departure at once, naming the extra lock, rather
/// than waiting for the stall timeout.
#[test]
fn divergence_when_a_thread_takes_a_lock_after_its_last_recorded_one() {
    let line = check_divergence("divergent_v6");
    assert!(
        line.contains("observed pthread_mutex_lock") && !line.contains("no progress"),
        "the divergence names the extra operation, not a stall: {line}"
    );
}
