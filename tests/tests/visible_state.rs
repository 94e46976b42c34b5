//! What rrc sets up for itself stays out of the program's sight: rrc
//! traps rdtsc and installs a seccomp filter, yet the program reads its
//! own rdtsc mode and seccomp mode, can switch rdtsc to SIGSEGV and
//! back, and keeps SIGSEGV blocked across an exec (a trapped rdtsc would
//! otherwise unblock it). rrc starts the program on its tracer's
//! processor, and later a thread that makes most of the trapped calls on
//! its tracer's processor, and runs itself without huge pages; the program
//! sees its own mask and setting. Recording and replay both print what a native
//! run prints.

use rrc_tests::*;

/// What `cpu_mask` prints at its start and after 20,000 trapped calls.
const CPU_MASK_LINES: &[&str] = &[
    "start Cpus_allowed_list:",
    "busy affinity first:",
    "busy Cpus_allowed_list:",
];

#[test]
fn the_program_sees_its_own_tsc_mode_seccomp_mode_and_sigsegv_mask() {
    prints_what_it_prints_natively("tsc_seccomp_self", &["seccomp mode 0", "SIGSEGV blocked 1"]);
}

#[test]
fn the_program_sees_the_processors_and_huge_page_setting_it_would_have_natively_at_start_and_while_busy(
) {
    prints_what_it_prints_natively("cpu_mask", CPU_MASK_LINES);
}

#[test]
fn a_static_program_sees_the_processors_it_would_have_natively() {
    // No shim whose start would end the start-up pin: its open of
    // /proc/self/status does.
    prints_what_it_prints_natively("cpu_mask_static", CPU_MASK_LINES);
}
