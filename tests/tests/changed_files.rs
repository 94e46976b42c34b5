//! Files a recording read that change before the replay: small data
//! files it mapped are in the trace (the loader's `/etc/ld.so.cache`,
//! which every `ldconfig` rewrites, is one), so the replay still shows
//! what the recording mapped.

use rrc_tests::*;

#[test]
fn a_small_data_file_changed_or_removed_after_recording_still_replays() {
    for round in 0..repeat() {
        let dir = temp_dir("rrc-changed-files-");
        let file = dir.path().join("settings.txt");
        std::fs::write(&file, "version one\n").expect("write the data file");
        let path = file.to_str().expect("UTF-8 temp path");
        let rec = record(&program("mapped_data"), &[path], b"");
        rec.assert_exit_code(0);
        assert!(
            rec.stdout_str().contains("version one"),
            "round {round}: the program printed the file:\n{}",
            rec.stdout_str()
        );
        std::fs::write(&file, "version two, longer than the first\n").expect("rewrite it");
        let replayed = replay(&rec.trace, &[]);
        assert_replay_matches(&rec, &replayed, &format!("round {round}, file rewritten"));
        std::fs::remove_file(&file).expect("remove it");
        let replayed = replay(&rec.trace, &[]);
        assert_replay_matches(&rec, &replayed, &format!("round {round}, file removed"));
    }
}

#[test]
fn a_large_data_file_that_changed_is_named_without_a_hint_about_threads() {
    // Larger than what the trace keeps a copy of: replay maps the file.
    let dir = temp_dir("rrc-changed-large-");
    let file = dir.path().join("table.bin");
    std::fs::write(&file, vec![b'a'; 300 << 10]).expect("write the data file");
    let path = file.to_str().expect("UTF-8 temp path");
    let rec = record(&program("mapped_data"), &[path], b"");
    rec.assert_exit_code(0);
    std::fs::remove_file(&file).expect("remove it");
    std::fs::write(&file, vec![b'b'; 300 << 10]).expect("write another");
    let replayed = replay(&rec.trace, &[]);
    let err = String::from_utf8_lossy(&replayed.stderr);
    assert!(!replayed.status.success(), "the replay failed:\n{err}");
    assert!(
        err.contains("divergence:") && err.contains("table.bin has changed since it was recorded"),
        "the divergence names the changed file:\n{err}"
    );
    assert!(
        !err.contains("--serialize") && err.contains("hint: replay maps the files"),
        "the hint is about files, not threads:\n{err}"
    );
}

#[test]
fn a_replay_by_rrc_installed_at_a_shorter_path_keeps_the_programs_addresses() {
    // The loader keeps the shim's path and the stack holds the
    // environment naming it: a shorter path moved the program's heap.
    let dir = temp_dir("rrc-shim-paths-");
    let [long, short] = shim_copies(&dir, ["a-longer-directory-than-the-other-one", "s"]);
    let rec = record_with_env(&program("addresses"), &[], b"", &[("RRC_SHIM", &long)]);
    rec.assert_exit_code(0);
    let mut cmd = std::process::Command::new(rrc_replay());
    cmd.arg(&rec.trace).env("RRC_SHIM", short);
    let replayed = run(&mut cmd, None, "rrc-replay with the shorter shim path");
    assert_replay_matches(&rec, &replayed, "shim at a shorter path");
}

#[test]
fn a_replay_by_rrc_installed_at_a_longer_path_keeps_the_programs_addresses() {
    // The other way round: the replayer runs a private copy of its shim
    // from a path short enough to be padded to the recorded length.
    let dir = temp_dir("rrc-shim-longer-");
    let [recorded_at, replayed_at] = shim_copies(
        &dir,
        ["rec", "a-much-longer-directory-than-the-one-that-recorded"],
    );
    assert!(
        recorded_at.len() >= "/tmp/rrc4194304/librrc_shim.so".len(),
        "the recorded path leaves room for the copy: {recorded_at}"
    );
    let rec = record_with_env(
        &program("addresses"),
        &[],
        b"",
        &[("RRC_SHIM", &recorded_at)],
    );
    rec.assert_exit_code(0);
    // Recorded from the longer path, the program prints other addresses.
    let longer = record_with_env(
        &program("addresses"),
        &[],
        b"",
        &[("RRC_SHIM", &replayed_at)],
    );
    assert_ne!(longer.stdout, rec.stdout, "the shim's path moves addresses");
    let mut cmd = std::process::Command::new(rrc_replay());
    cmd.arg(&rec.trace).env("RRC_SHIM", replayed_at);
    let replayed = run(&mut cmd, None, "rrc-replay with the longer shim path");
    assert_replay_matches(&rec, &replayed, "shim at a longer path");
}

/// Copies of rrc's shim in directories `names` under `dir`, their paths.
fn shim_copies<const N: usize>(dir: &TempDir, names: [&str; N]) -> [String; N] {
    names.map(|name| {
        let d = dir.path().join(name);
        std::fs::create_dir(&d).expect("shim directory");
        let shim = d.join("librrc_shim.so");
        std::fs::copy(bin("librrc_shim.so"), &shim).expect("copy the shim");
        shim.to_str().expect("UTF-8").to_owned()
    })
}
