//! What rrc sets up for itself stays out of the program's sight: rrc
//! traps rdtsc and installs a seccomp filter, yet the program reads its
//! own rdtsc mode and seccomp mode, can switch rdtsc to SIGSEGV and
//! back, and keeps SIGSEGV blocked across an exec (a trapped rdtsc would
//! otherwise unblock it). Recording and replay both print what a native
//! run prints.

use rrc_tests::*;

#[test]
fn the_program_sees_its_own_tsc_mode_seccomp_mode_and_sigsegv_mask() {
    let prog = program("tsc_seccomp_self");
    let native = run_native(&prog, &[], b"");
    assert!(native.status.success(), "native run failed");
    let expected = String::from_utf8_lossy(&native.stdout).into_owned();
    assert!(
        expected.contains("seccomp mode 0") && expected.contains("SIGSEGV blocked 1"),
        "unexpected native output:\n{expected}"
    );
    for round in 1..=repeat() {
        let rec = record_and_replay(&prog, &[], b"", 0, 2);
        assert_eq!(
            rec.stdout_str(),
            expected,
            "round {round}: recorded output differs from the native run ({})",
            rec.describe()
        );
    }
}
