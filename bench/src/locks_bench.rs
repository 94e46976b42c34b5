//! `locks`: the cost of a pthread mutex lock/unlock pair when rrc's shim
//! logs every acquisition. Four threads each do M pairs, alternating
//! between a mutex of their own and one they all share. Each process is
//! timed from outside and the same program with M = 0 (thread creation and
//! joining only) is subtracted; the result is divided by the 4·M pairs.

use std::time::Duration;

use anyhow::Result;

use crate::one_shot::{compile_c, gcc_missing, remove_trace, ProgramRunner};
use crate::report::{BenchmarkResult, Metric, Samples, Status, TraceFigure};
use crate::rrc_tools::ReplayFailures;
use crate::BenchContext;

pub const NAME: &str = "locks";

const SOURCE: &str = include_str!("../programs/locks.c");

/// THREADS in locks.c.
const THREADS: u64 = 4;

const REPLAY_FLAGS: [&str; 1] = ["--no-intervals"];

/// Lock/unlock pairs per thread. Even --quick needs the native pairs to
/// take several milliseconds, well above the noise of thread creation
/// that is subtracted.
fn pairs_per_thread(quick: bool) -> u64 {
    if quick {
        200_000
    } else {
        1_000_000
    }
}

fn ns_per_pair(with_locks: Duration, without_locks: Duration, pairs: u64) -> f64 {
    (with_locks.as_secs_f64() - without_locks.as_secs_f64()) * 1e9 / pairs as f64
}

pub fn run(context: &BenchContext) -> Result<BenchmarkResult> {
    if let Some(reason) = gcc_missing() {
        return Ok(BenchmarkResult::not_ok(NAME, Status::Skipped, reason));
    }
    let pairs_per_thread = pairs_per_thread(context.quick);
    let total_pairs = THREADS * pairs_per_thread;
    let work_dir = context.scratch_dir(NAME)?;
    let program = compile_c(NAME, SOURCE, work_dir.path())?;
    let runner = ProgramRunner {
        context,
        program,
        work_dir: work_dir.path(),
    };

    let mut per_pair = Samples::default();
    let mut trace_bytes_per_pair = Vec::new();
    let mut replay_failures = ReplayFailures::default();
    for repeat in 0..context.repeats {
        context.progress(NAME, &format!("run {}/{}", repeat + 1, context.repeats));
        // [with locks, without]
        let mut native = Vec::new();
        let mut recorded = Vec::new();
        let mut replayed = Vec::new();
        let mut trace_bytes = Vec::new();
        for pairs in [pairs_per_thread, 0] {
            let label = format!("{pairs}-{repeat}");
            let args = [pairs.to_string()];
            native.push(runner.native(&args, &format!("native-{label}"))?.wall);
            let trace = work_dir.path().join(format!("{label}.trace"));
            let recording = runner.record(&args, &trace, &format!("record-{label}"))?;
            recorded.push(recording.measurement.wall);
            trace_bytes.push(recording.trace_bytes);
            let replay = replay_failures.note(runner.replay(
                &REPLAY_FLAGS,
                &trace,
                &recording,
                &format!("replay-{label}"),
            ))?;
            replayed.push(replay.map(|replay| replay.wall));
            remove_trace(&trace)?;
        }
        per_pair
            .native
            .push(ns_per_pair(native[0], native[1], total_pairs));
        per_pair
            .recorded
            .push(ns_per_pair(recorded[0], recorded[1], total_pairs));
        if let [Some(with_locks), Some(without_locks)] = replayed[..] {
            per_pair
                .replayed
                .push(ns_per_pair(with_locks, without_locks, total_pairs));
        }
        trace_bytes_per_pair
            .push((trace_bytes[0] as f64 - trace_bytes[1] as f64) / total_pairs as f64);
    }

    let mut result = BenchmarkResult::new(NAME);
    result.metrics.push(Metric::from_samples(
        "mutex lock+unlock pair (wall / all pairs)",
        "ns/pair",
        false,
        per_pair,
        Some(&REPLAY_FLAGS),
    ));
    result.trace.extend(TraceFigure::from_samples(
        "trace per lock+unlock pair",
        "bytes/pair",
        trace_bytes_per_pair,
    ));
    result.parameter("threads", THREADS);
    result.parameter("pairs_per_thread", pairs_per_thread);
    result.parameter("replay_flags", REPLAY_FLAGS.join(" "));
    replay_failures.mark(&mut result, context.repeats * 2);
    Ok(result)
}
