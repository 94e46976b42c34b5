//! A program writing, syncing, re-reading and renaming a file: replay
//! must work after the file and its directory are gone.

use rrc_tests::*;

fn data_dir() -> TempDir {
    temp_dir("rrc-tmpfile-data-")
}

#[test]
fn tmpfile_replay_after_file_is_deleted() {
    let prog = program("tmpfile");
    for round in 0..repeat() {
        let data = data_dir();
        let dir = data.path().to_str().expect("UTF-8 temp path").to_owned();
        let rec = record(&prog, &[&dir], b"");
        rec.assert_exit_code(0);
        let out = rec.stdout_str();
        assert!(
            out.contains("match: yes") && out.contains("directory entries: 1"),
            "round {round}: the program read back what it wrote:\n{out}"
        );
        data.close().expect("delete the data directory");
        assert!(!std::path::Path::new(&dir).exists());
        for i in 1..=3 {
            let replayed = replay(&rec.trace, &[]);
            assert_replay_matches(
                &rec,
                &replayed,
                &format!("round {round}, replay {i} with the data directory deleted"),
            );
        }
    }
}

#[test]
fn tmpfile_native_runs_differ() {
    let data = data_dir();
    let dir = data.path().to_str().expect("UTF-8 temp path");
    let prog = program("tmpfile");
    let a = run_native(&prog, &[dir], b"");
    let b = run_native(&prog, &[dir], b"");
    assert!(
        a.status.success() && b.status.success(),
        "native runs succeed"
    );
    assert_ne!(
        a.stdout, b.stdout,
        "random bytes and timestamps differ between runs"
    );
}

#[test]
fn tmpfile_inspect_reports_file_syscalls() {
    let data = data_dir();
    let dir = data.path().to_str().expect("UTF-8 temp path");
    let rec = record(&program("tmpfile"), &[dir], b"");
    rec.assert_exit_code(0);
    let json = check_inspect(&rec, 1);
    for name in [
        "openat",
        "read",
        "fsync",
        "rename",
        "getdents64",
        "getrandom",
    ] {
        assert!(
            syscall_count(&json, name) > 0,
            "{name} should be among the recorded syscalls: {}",
            json["syscalls"]
        );
    }
}
