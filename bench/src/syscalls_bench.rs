//! `syscalls`: the cost of one traced system call. One thread makes N
//! `syscall(SYS_getpid)`, N `clock_gettime` (a vDSO call natively, a real
//! system call under rrc, which hides the vDSO), N 64-byte `read`s of
//! /dev/zero or N 32-byte lines written to stdout (a file here), one kind
//! per process. Each process is timed from outside
//! (under rrc-replay the program's own clock reads return recorded
//! values) and the same program making no calls is subtracted.

use std::time::Duration;

use anyhow::Result;

use crate::one_shot::{compile_c, gcc_missing, remove_trace, ProgramRunner};
use crate::report::{median, BenchmarkResult, Metric, Samples, Status, TraceFigure};
use crate::rrc_tools::ReplayFailures;
use crate::BenchContext;

pub const NAME: &str = "syscalls";

const SOURCE: &str = include_str!("../programs/syscalls.c");

/// The kinds of call, as the C program names them.
const CALL_KINDS: [&str; 4] = ["getpid", "clock_gettime", "read", "print"];
/// The program's no-call mode: start-up and exit only.
const NO_CALLS: &str = "none";

const REPLAY_FLAGS: [&str; 1] = ["--no-intervals"];

/// Calls in the first native calibration run.
const FIRST_CALIBRATION_CALLS: u64 = 20_000;
/// A calibration run's calls should take at least this long to be
/// measured well against the process's start-up (about 1 ms).
const LEAST_CALIBRATION_TIME: Duration = Duration::from_millis(10);
/// At most this many calls per native run.
const MOST_NATIVE_CALLS: u64 = 100_000_000;

struct Sizes {
    /// How long each native run should make calls.
    native_target: Duration,
    /// Calls per run under rrc (the same for every kind): 60–110 µs each
    /// when recorded on the 2-core VM, so 1.5–3 s per recorded run.
    rrc_calls: u64,
}

fn sizes(quick: bool) -> Sizes {
    if quick {
        Sizes {
            native_target: Duration::from_millis(10),
            // A recorded read can take as little as 7 µs when tracer and
            // program share a core: 1,500 of them were within the noise of
            // a recorded start-up (10-20 ms), and a per-call figure came
            // out negative.
            rrc_calls: 6_000,
        }
    } else {
        Sizes {
            native_target: Duration::from_millis(50),
            rrc_calls: 25_000,
        }
    }
}

/// Nanoseconds per call from a run with `calls` calls and a run with none.
fn ns_per_call(with_calls: Duration, without_calls: Duration, calls: u64) -> f64 {
    (with_calls.as_secs_f64() - without_calls.as_secs_f64()) * 1e9 / calls as f64
}

/// Native calls per run such that a run makes calls for about `target`:
/// timed with 20,000 calls, then ten times more until the calls take at
/// least 10 ms.
fn calibrate_native_calls(runner: &ProgramRunner, kind: &str, target: Duration) -> Result<u64> {
    let mut calls = FIRST_CALIBRATION_CALLS;
    loop {
        let calibration_args = [kind.to_string(), calls.to_string()];
        let mut estimates = Vec::new();
        for attempt in 0..3 {
            let label = format!("calibrate-{kind}-{calls}-{attempt}");
            let with_calls = runner.native(&calibration_args, &label)?;
            let without_calls =
                runner.native(&[NO_CALLS, "0"], &format!("calibrate-none-{attempt}"))?;
            estimates.push(ns_per_call(with_calls.wall, without_calls.wall, calls));
        }
        // A noisy estimate at or below zero still gives a bounded N.
        let ns = median(&estimates).unwrap_or(1.0).max(0.1);
        let calls_time = Duration::from_secs_f64(ns * calls as f64 / 1e9);
        if calls_time >= LEAST_CALIBRATION_TIME || calls >= MOST_NATIVE_CALLS {
            let target_calls = (target.as_secs_f64() * 1e9 / ns) as u64;
            return Ok(target_calls.clamp(FIRST_CALIBRATION_CALLS, MOST_NATIVE_CALLS));
        }
        calls *= 10;
    }
}

/// Calibrates the native calls per run of each of CALL_KINDS, in order,
/// reporting each as it is found.
fn calibrate_all_kinds(runner: &ProgramRunner, target: Duration) -> Result<Vec<u64>> {
    let mut native_calls = Vec::new();
    for kind in CALL_KINDS {
        let calls = calibrate_native_calls(runner, kind, target)?;
        runner
            .context
            .progress(NAME, &format!("{kind}: {calls} calls per native run"));
        native_calls.push(calls);
    }
    Ok(native_calls)
}

/// One repeat's runs, per mode: the wall times of the no-call run and of
/// each kind's run (`None` for a failed replay), and the trace sizes, all
/// in that order.
struct RepeatRuns {
    native: Vec<Duration>,
    recorded: Vec<Duration>,
    replayed: Vec<Option<Duration>>,
    trace_sizes: Vec<u64>,
}

/// Runs the no-call program and then each kind natively, recorded and
/// replayed, deleting each trace once measured.
fn run_repeat(
    runner: &ProgramRunner,
    native_calls: &[u64],
    rrc_calls: u64,
    repeat: usize,
    replay_failures: &mut ReplayFailures,
) -> Result<RepeatRuns> {
    let mut runs = RepeatRuns {
        native: Vec::new(),
        recorded: Vec::new(),
        replayed: Vec::new(),
        trace_sizes: Vec::new(),
    };
    let kinds = std::iter::once((NO_CALLS, 0, 0)).chain(
        CALL_KINDS
            .iter()
            .zip(native_calls)
            .map(|(kind, calls)| (*kind, *calls, rrc_calls)),
    );
    for (kind, calls_native, calls_rrc) in kinds {
        let label = format!("{kind}-{repeat}");
        let native_args = [kind.to_string(), calls_native.to_string()];
        runs.native.push(
            runner
                .native(&native_args, &format!("native-{label}"))?
                .wall,
        );

        let trace = runner.work_dir.join(format!("{label}.trace"));
        let rrc_args = [kind.to_string(), calls_rrc.to_string()];
        let recording = runner.record(&rrc_args, &trace, &format!("record-{label}"))?;
        runs.recorded.push(recording.measurement.wall);
        runs.trace_sizes.push(recording.trace_bytes);

        let replay = replay_failures.note(runner.replay(
            &REPLAY_FLAGS,
            &trace,
            &recording,
            &format!("replay-{label}"),
        ))?;
        runs.replayed.push(replay.map(|replay| replay.wall));
        remove_trace(&trace)?;
    }
    Ok(runs)
}

/// The no-call runs' wall times, in milliseconds: what each per-call
/// figure has subtracted.
fn startup_metric(repeats: &[RepeatRuns]) -> Metric {
    let mut startup = Samples::default();
    for runs in repeats {
        startup.native.push(runs.native[0].as_secs_f64() * 1e3);
        startup.recorded.push(runs.recorded[0].as_secs_f64() * 1e3);
        if let Some(wall) = runs.replayed[0] {
            startup.replayed.push(wall.as_secs_f64() * 1e3);
        }
    }
    Metric::from_samples(
        "start-up and exit, no calls",
        "ms",
        false,
        startup,
        Some(&REPLAY_FLAGS),
    )
}

/// The nanoseconds per call of CALL_KINDS[index] in each mode, and its
/// trace bytes per call, one sample per repeat.
fn kind_samples(
    repeats: &[RepeatRuns],
    index: usize,
    native_calls: u64,
    rrc_calls: u64,
) -> (Samples, Vec<f64>) {
    // Index 0 of each repeat's list is the no-call run.
    let column = index + 1;
    let mut samples = Samples::default();
    let mut trace_bytes_per_call = Vec::new();
    for runs in repeats {
        samples.native.push(ns_per_call(
            runs.native[column],
            runs.native[0],
            native_calls,
        ));
        samples.recorded.push(ns_per_call(
            runs.recorded[column],
            runs.recorded[0],
            rrc_calls,
        ));
        if let (Some(with_calls), Some(without_calls)) = (runs.replayed[column], runs.replayed[0]) {
            samples
                .replayed
                .push(ns_per_call(with_calls, without_calls, rrc_calls));
        }
        let repeat_sizes = &runs.trace_sizes;
        trace_bytes_per_call
            .push((repeat_sizes[column] as f64 - repeat_sizes[0] as f64) / rrc_calls as f64);
    }
    (samples, trace_bytes_per_call)
}

pub fn run(context: &BenchContext) -> Result<BenchmarkResult> {
    if let Some(reason) = gcc_missing() {
        return Ok(BenchmarkResult::not_ok(NAME, Status::Skipped, reason));
    }
    let sizes = sizes(context.quick);
    let work_dir = context.scratch_dir(NAME)?;
    let program = compile_c(NAME, SOURCE, work_dir.path())?;
    let runner = ProgramRunner {
        context,
        program,
        work_dir: work_dir.path(),
    };

    let native_calls = calibrate_all_kinds(&runner, sizes.native_target)?;

    let mut repeats: Vec<RepeatRuns> = Vec::new();
    let mut replay_failures = ReplayFailures::default();
    for repeat in 0..context.repeats {
        context.progress(NAME, &format!("run {}/{}", repeat + 1, context.repeats));
        repeats.push(run_repeat(
            &runner,
            &native_calls,
            sizes.rrc_calls,
            repeat,
            &mut replay_failures,
        )?);
    }

    let mut result = BenchmarkResult::new(NAME);
    result.metrics.push(startup_metric(&repeats));
    for (index, kind) in CALL_KINDS.iter().enumerate() {
        let (samples, trace_bytes_per_call) =
            kind_samples(&repeats, index, native_calls[index], sizes.rrc_calls);
        result.metrics.push(Metric::from_samples(
            *kind,
            "ns/call",
            false,
            samples,
            Some(&REPLAY_FLAGS),
        ));
        result.trace.extend(TraceFigure::from_samples(
            format!("trace per {kind}"),
            "bytes/call",
            trace_bytes_per_call,
        ));
        result.parameter(&format!("native_calls_{kind}"), native_calls[index]);
    }
    result.parameter("rrc_calls", sizes.rrc_calls);
    result.parameter("replay_flags", REPLAY_FLAGS.join(" "));
    replay_failures.mark(&mut result, context.repeats * (CALL_KINDS.len() + 1));
    Ok(result)
}
