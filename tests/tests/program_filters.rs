//! A seccomp filter the program installs itself decides what its calls
//! do (fail them, raise SIGSYS) before rrc's filter sees them: recorded
//! and replayed the same way.

use rrc_tests::*;

#[test]
fn a_filter_the_program_installs_answers_its_reads_with_sigsys_when_recorded_and_replayed() {
    let prog = program("own_seccomp_filter");
    for (round, how) in (1..=repeat()).flat_map(|r| [(r, "seccomp"), (r, "prctl")]) {
        let rec = record_and_replay_keeping(
            &prog,
            &[how],
            b"",
            0,
            2,
            &format!("own_seccomp_filter-{how}-round{round}"),
        );
        assert!(
            rec.stdout_str()
                .contains("SIGSYS 20 times, read nothing: 1\n"),
            "round {round}, filter by {how}: {}: every read raised SIGSYS:\n{}",
            rec.describe(),
            rec.stdout_str()
        );
    }
}
