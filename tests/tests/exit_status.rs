//! rrc-record exits with the program's status; rrc-replay exits 0 when
//! it reproduced that faithfully.

use rrc_tests::*;

#[test]
fn exit_status_passes_through() {
    let prog = program("exit_code");
    for code in [0, 3, 42] {
        let arg = code.to_string();
        let rec = record_and_replay(&prog, &[&arg], b"", code, 3);
        assert_eq!(
            rec.stdout_str(),
            format!("exit_code: exiting with status {code}\n")
        );
        assert_eq!(rec.stderr, b"exit_code: goodbye from stderr\n");
        let json = check_inspect(&rec, 1);
        assert_eq!(json["exit_status"]["exited"], code);
    }
}

#[test]
fn death_by_signal_passes_through() {
    let rec = record_and_replay(&program("raise_signal"), &[], b"", 128 + libc::SIGTERM, 3);
    assert_eq!(
        rec.stdout_str(),
        "raise_signal: about to raise SIGTERM\n",
        "the program died at raise()"
    );
    let json = check_inspect(&rec, 1);
    assert_eq!(json["exit_status"]["signaled"], libc::SIGTERM);
}
