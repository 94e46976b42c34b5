//! Every hold replay imposes gives way when the thread it waits for is
//! asleep in a lock rrc cannot see (a futex lock made with the raw
//! syscall instruction, or a sched_yield spin lock): the replay ends
//! within seconds, faithfully or with a divergence, never with "no
//! progress" at the stall timeout.

use std::time::{Duration, Instant};

use rrc_tests::*;

/// How long a replay of these programs may take, at most (the stall
/// timeout is 30 s).
const QUICK: Duration = Duration::from_secs(10);

/// Records `unseen_lock MODE` and replays it `repeat()` times (with
/// `--stats`); each replay ends quickly, faithful or with a divergence,
/// and no stall was ended only by the stall timeout. Returns the
/// recordings and replays that were faithful.
fn replays_end_quickly(mode: &str) -> Vec<(Recording, std::process::Output)> {
    replays_of_end_quickly("unseen_lock", &[mode])
}

/// [`replays_end_quickly`] for any program and arguments.
fn replays_of_end_quickly(
    program_name: &str,
    args: &[&str],
) -> Vec<(Recording, std::process::Output)> {
    let prog = program(program_name);
    let mode = format!("{program_name} {args:?}");
    let mut faithful = Vec::new();
    for take in 1..=2 * repeat() {
        let rec = record(&prog, args, b"");
        rec.assert_exit_code(0);
        let started = Instant::now();
        let out = replay_within(&rec.trace, &["--stats"], QUICK + Duration::from_secs(20));
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            took < QUICK,
            "{mode}, take {take}: replay took {took:?}:\n{stderr}"
        );
        assert!(
            !stderr.contains("no progress"),
            "{mode}, take {take}: a stall, not a divergence:\n{stderr}"
        );
        assert!(
            stderr.contains("stalls at the stall timeout: 0"),
            "{mode}, take {take}: stats say no stall:\n{stderr}"
        );
        if out.status.success() {
            assert_eq!(
                out.stdout, rec.stdout,
                "{mode}, take {take}: exit 0 means faithful"
            );
            faithful.push((rec, out));
        } else {
            assert_divergence(&out, &format!("{mode}, take {take}"));
        }
    }
    faithful
}

#[test]
fn returns_held_for_their_rank_give_way_to_a_thread_asleep_in_an_unseen_lock() {
    replays_end_quickly("rank");
}

#[test]
fn calls_run_at_their_rank_give_way_to_a_thread_asleep_in_an_unseen_lock() {
    replays_end_quickly("run");
}

#[test]
fn forks_give_way_to_a_thread_asleep_in_an_unseen_lock() {
    replays_end_quickly("fork");
}

#[test]
fn signals_and_their_handlers_give_way_to_a_thread_asleep_in_an_unseen_lock() {
    replays_end_quickly("signal");
}

#[test]
fn an_exit_waiting_for_threads_asleep_in_the_lock_it_holds_gives_way() {
    replays_end_quickly("exit");
}

#[test]
fn holds_give_way_to_a_thread_spinning_on_an_unseen_lock() {
    replays_end_quickly("spin");
}

#[test]
fn threads_writing_to_fd_1_under_an_unseen_lock_replay_their_output_in_recorded_order() {
    let prog = program("unseen_lock");
    assert_native_runs_differ(&prog, &["rank"], b"", 20);
    // A faithful replay prints the recorded bytes in the recorded order
    // (checked by `replays_end_quickly`); a divergent one prints, in the
    // recorded order, a prefix of what was recorded up to where it
    // diverged, at least.
    for take in 1..=2 * repeat() {
        let rec = record(&prog, &["rank"], b"");
        rec.assert_exit_code(0);
        let out = replay_within(&rec.trace, &[], QUICK);
        if out.status.success() {
            assert_eq!(out.stdout, rec.stdout, "take {take}: faithful");
            continue;
        }
        assert_divergence(&out, &format!("take {take}"));
        let recorded: Vec<&[u8]> = rec.stdout.split(|b| *b == b'\n').collect();
        let replayed: Vec<&[u8]> = out.stdout.split(|b| *b == b'\n').collect();
        let mut at = 0;
        for line in replayed.iter().filter(|l| !l.is_empty()) {
            let found = recorded[at..].iter().position(|r| r == line);
            assert!(
                found.is_some(),
                "take {take}: replayed line {:?} is not in the recorded output after line {at}",
                String::from_utf8_lossy(line)
            );
            at += found.unwrap_or(0) + 1;
        }
    }
}

#[test]
fn cpp20_semaphores_and_latches_never_stall_replay() {
    // std::counting_semaphore and std::latch wait on atomics (futex calls
    // through syscall() on their contended path): which thread gets a
    // slot first is a race rrc does not see, and a thread held for its
    // turn at stdout's lock may be the one that would release the slot.
    let faithful = replays_of_end_quickly("cpp_semaphore", &[]);
    eprintln!(
        "cpp_semaphore: {} of {} replays faithful",
        faithful.len(),
        2 * repeat()
    );
}

#[test]
fn printers_cut_off_by_main_returning_end_quickly_faithful_or_divergent() {
    // Detached threads print until main returns: replay lets one past the
    // end of its events with stdout's lock (taken without a call) that
    // main still needs to print. Every other thread then waited in its
    // own loop of bounded futex waits, which the standstill report did
    // not count as stuck: the replay stalled until the stall timeout.
    replays_of_end_quickly("rust_detached_printers", &[]);
}

#[test]
fn printers_cut_off_by_main_returning_print_other_lines_natively() {
    assert_native_runs_differ(&program("rust_detached_printers"), &[], b"", 10);
}

#[test]
fn threads_spinning_on_a_lock_held_by_a_thread_waiting_for_its_stdio_turn_end_quickly() {
    // The holder of a spin lock rrc does not see waits in the shim for its
    // turn at stdout's lock; the threads whose turns come first spin on
    // the spin lock, using processor time without a call. They count as
    // stuck once they have spun far longer than they ran when recorded,
    // and the turn gives way: the replay used to stall until the stall
    // timeout (1 of 6 faithful, the rest 30 s each).
    replays_of_end_quickly("spin_stdio", &[]);
}

#[test]
fn threads_on_a_spin_lock_print_in_other_orders_natively() {
    assert_native_runs_differ(&program("spin_stdio"), &[], b"", 10);
}
