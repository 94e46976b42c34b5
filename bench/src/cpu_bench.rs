//! `cpu`: a CPU-bound program with two threads, no system calls in its
//! loop and a mutex taken once every 2^20 iterations. Compares wall time
//! and user and system CPU time (of the whole process tree: rrc's tracer
//! included) natively, recorded, and replayed with rrc-replay's default
//! flags. Replay re-executes the program, so its CPU time should be close
//! to the native one.

use anyhow::Result;

use crate::one_shot::{compile_c, gcc_missing, remove_trace, ProgramRunner};
use crate::report::{BenchmarkResult, Metric, Samples, Status, TraceFigure};
use crate::rrc_tools::ReplayFailures;
use crate::BenchContext;

pub const NAME: &str = "cpu";

const SOURCE: &str = include_str!("../programs/cpu.c");

/// THREADS in cpu.c.
const THREADS: u64 = 2;

/// rrc-replay's defaults: syscall returns held to the recorded intervals.
const REPLAY_FLAGS: [&str; 0] = [];

/// About 1 s of native wall time on two idle cores of the VM.
fn iterations_per_thread(quick: bool) -> u64 {
    if quick {
        30_000_000
    } else {
        600_000_000
    }
}

pub fn run(context: &BenchContext) -> Result<BenchmarkResult> {
    if let Some(reason) = gcc_missing() {
        return Ok(BenchmarkResult::not_ok(NAME, Status::Skipped, reason));
    }
    let iterations = iterations_per_thread(context.quick);
    let work_dir = context.scratch_dir(NAME)?;
    let program = compile_c(NAME, SOURCE, work_dir.path())?;
    let runner = ProgramRunner {
        context,
        program,
        work_dir: work_dir.path(),
    };
    let args = [iterations.to_string()];

    let mut wall = Samples::default();
    let mut user = Samples::default();
    let mut system = Samples::default();
    let mut trace_kib = Vec::new();
    let mut replay_failures = ReplayFailures::default();
    for repeat in 0..context.repeats {
        context.progress(NAME, &format!("run {}/{}", repeat + 1, context.repeats));
        let native = runner.native(&args, &format!("native-{repeat}"))?;
        let trace = work_dir.path().join(format!("{repeat}.trace"));
        let recording = runner.record(&args, &trace, &format!("record-{repeat}"))?;
        let replay = replay_failures.note(runner.replay(
            &REPLAY_FLAGS,
            &trace,
            &recording,
            &format!("replay-{repeat}"),
        ))?;
        remove_trace(&trace)?;
        let recorded = &recording.measurement;
        wall.native.push(native.wall.as_secs_f64());
        wall.recorded.push(recorded.wall.as_secs_f64());
        user.native.push(native.user_cpu.as_secs_f64());
        user.recorded.push(recorded.user_cpu.as_secs_f64());
        system.native.push(native.system_cpu.as_secs_f64());
        system.recorded.push(recorded.system_cpu.as_secs_f64());
        if let Some(replay) = replay {
            wall.replayed.push(replay.wall.as_secs_f64());
            user.replayed.push(replay.user_cpu.as_secs_f64());
            system.replayed.push(replay.system_cpu.as_secs_f64());
        }
        trace_kib.push(recording.trace_bytes as f64 / 1024.0);
    }

    let mut result = BenchmarkResult::new(NAME);
    for (name, samples) in [
        ("wall time", wall),
        ("user CPU (incl. tracer)", user),
        ("system CPU (incl. tracer)", system),
    ] {
        result.metrics.push(Metric::from_samples(
            name,
            "s",
            false,
            samples,
            Some(&REPLAY_FLAGS),
        ));
    }
    result
        .trace
        .extend(TraceFigure::from_samples("trace size", "KiB", trace_kib));
    result.parameter("threads", THREADS);
    result.parameter("iterations_per_thread", iterations);
    result.parameter("replay_flags", "(defaults)");
    replay_failures.mark(&mut result, context.repeats);
    Ok(result)
}
