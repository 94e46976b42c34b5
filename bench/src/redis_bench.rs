//! `redis`: redis-server on 127.0.0.1 (no persistence) loaded by
//! `redis-benchmark -t set,get -n N -c 8 -q`, natively and under
//! rrc-record; then the recorded trace is replayed with `--no-intervals`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::one_shot::remove_trace;
use crate::process::run_measured;
use crate::report::{BenchmarkResult, Metric, Samples, Status};
use crate::rrc_tools::{find_on_path, ReplayFailures};
use crate::server_runs::{push_server_figures, replay_server, serve_load, ServedLoad, ServerMode};
use crate::BenchContext;

pub const NAME: &str = "redis";

const CONNECTIONS: &str = "8";
/// The commands redis-benchmark runs, as `-t` takes them and as its
/// report names them.
const COMMANDS: [(&str, &str); 2] = [("set", "SET"), ("get", "GET")];

const REPLAY_FLAGS: [&str; 1] = ["--no-intervals"];

const BENCHMARK_TIMEOUT: Duration = Duration::from_secs(600);

/// Requests per command.
fn requests_per_command(quick: bool) -> u64 {
    if quick {
        1_000
    } else {
        50_000
    }
}

fn redis_args(port: u16) -> Vec<String> {
    [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    .map(str::to_string)
    .to_vec()
}

/// The requests-per-second figure redis-benchmark `-q` reports for
/// `command` ("SET: 86956.52 requests per second, p50=0.055 msec"; the
/// progress lines before it end in carriage returns).
fn parse_requests_per_second(report: &str, command: &str) -> Option<f64> {
    let prefix = format!("{command}: ");
    report
        .split(['\r', '\n'])
        .filter_map(|line| line.trim().strip_prefix(&prefix))
        .filter(|rest| rest.contains("requests per second"))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .next_back()
}

/// Runs redis-benchmark against the server on `port` and returns the
/// requests per second of each of COMMANDS.
fn run_redis_benchmark(
    redis_benchmark: &Path,
    work_dir: &Path,
    port: u16,
    requests: u64,
    label: &str,
) -> Result<Vec<f64>> {
    let tests: Vec<&str> = COMMANDS.iter().map(|(test, _)| *test).collect();
    let mut command = Command::new(redis_benchmark);
    command
        .args(["-h", "127.0.0.1", "-p"])
        .arg(port.to_string())
        .args(["-t", &tests.join(","), "-n"])
        .arg(requests.to_string())
        .args(["-c", CONNECTIONS, "-q"]);
    let measurement = run_measured(command, label, work_dir, BENCHMARK_TIMEOUT)?;
    measurement.require_success(label)?;
    let report = measurement.stdout()?;
    COMMANDS
        .iter()
        .map(
            |(_, reported)| match parse_requests_per_second(&report, reported) {
                Some(rate) if rate > 0.0 => Ok(rate),
                _ => bail!("{label} reported no requests per second for {reported}:\n{report}"),
            },
        )
        .collect()
}

/// One redis-server run, native or recorded, loaded by redis-benchmark;
/// the two runs of a repeat differ only in mode and labels.
fn serve_redis_load(
    context: &BenchContext,
    dir: &Path,
    mode: ServerMode,
    redis_server: &Path,
    redis_benchmark: &Path,
    requests: u64,
    repeat: usize,
) -> Result<ServedLoad<Vec<f64>>> {
    let mode_name = match mode {
        ServerMode::Native => "native",
        ServerMode::Recorded { .. } => "recorded",
    };
    serve_load(
        context,
        dir,
        mode,
        redis_server,
        redis_args,
        &format!("{mode_name} redis-server {repeat}"),
        |port| {
            run_redis_benchmark(
                redis_benchmark,
                dir,
                port,
                requests,
                &format!("redis-benchmark {mode_name} {repeat}"),
            )
        },
    )
}

/// The benchmark's result from the samples of all repeats: kept apart
/// from `run` so the measuring loop reads on its own.
fn redis_result(
    context: &BenchContext,
    requests: u64,
    throughput: Vec<Samples>,
    server_wall: Samples,
    trace_bytes_per_request: Vec<f64>,
    replay_failures: ReplayFailures,
) -> BenchmarkResult {
    let mut result = BenchmarkResult::new(NAME);
    for ((_, reported), samples) in COMMANDS.iter().zip(throughput) {
        result.metrics.push(Metric::from_samples(
            format!("{reported} throughput (8 connections)"),
            "req/s",
            true,
            samples,
            None,
        ));
    }
    push_server_figures(
        &mut result,
        server_wall,
        trace_bytes_per_request,
        &REPLAY_FLAGS,
    );
    result.parameter("connections", CONNECTIONS);
    result.parameter("requests_per_command", requests);
    result.parameter("commands", "set,get");
    result.parameter("replay_flags", REPLAY_FLAGS.join(" "));
    replay_failures.mark(&mut result, context.repeats);
    result
}

pub fn run(context: &BenchContext) -> Result<BenchmarkResult> {
    let (Some(redis_server), Some(redis_benchmark)) = (
        find_on_path("redis-server"),
        find_on_path("redis-benchmark"),
    ) else {
        return Ok(BenchmarkResult::not_ok(
            NAME,
            Status::Skipped,
            "redis-server or redis-benchmark not installed (run scripts/install-deps.sh)"
                .to_string(),
        ));
    };
    let requests = requests_per_command(context.quick);
    let total_requests = requests * COMMANDS.len() as u64;
    let work_dir = context.scratch_dir(NAME)?;
    let dir = work_dir.path();

    let mut throughput: Vec<Samples> = COMMANDS.iter().map(|_| Samples::default()).collect();
    let mut server_wall = Samples::default();
    let mut trace_bytes_per_request = Vec::new();
    let mut replay_failures = ReplayFailures::default();
    for repeat in 0..context.repeats {
        context.progress(NAME, &format!("run {}/{}", repeat + 1, context.repeats));
        let native = serve_redis_load(
            context,
            dir,
            ServerMode::Native,
            &redis_server,
            &redis_benchmark,
            requests,
            repeat,
        )?;
        let trace = dir.join(format!("redis-{repeat}.trace"));
        let recorded = serve_redis_load(
            context,
            dir,
            ServerMode::Recorded { trace: &trace },
            &redis_server,
            &redis_benchmark,
            requests,
            repeat,
        )?;
        let replay_wall = replay_failures.note(replay_server(
            context,
            dir,
            &REPLAY_FLAGS,
            &trace,
            &format!("replay redis-server {repeat}"),
        ))?;
        remove_trace(&trace)?;

        for (samples, (native_rate, recorded_rate)) in throughput
            .iter_mut()
            .zip(native.load.iter().zip(&recorded.load))
        {
            samples.native.push(*native_rate);
            samples.recorded.push(*recorded_rate);
        }
        server_wall.native.push(native.server_wall.as_secs_f64());
        server_wall
            .recorded
            .push(recorded.server_wall.as_secs_f64());
        if let Some(wall) = replay_wall {
            server_wall.replayed.push(wall.as_secs_f64());
        }
        if let Some(bytes) = recorded.trace_bytes {
            trace_bytes_per_request.push(bytes as f64 / total_requests as f64);
        }
    }

    Ok(redis_result(
        context,
        requests,
        throughput,
        server_wall,
        trace_bytes_per_request,
        replay_failures,
    ))
}

#[cfg(test)]
mod tests {
    use super::parse_requests_per_second;

    #[test]
    fn parses_the_final_line_not_the_progress_lines() {
        let report = "SET: rps=0.0 (overall: nan) avg_msec=nan (overall: nan)\r\
                      SET: 86956.52 requests per second, p50=0.055 msec\n\
                      GET: rps=41000.0 (overall: 41000.0) avg_msec=0.1 (overall: 0.1)\r\
                      GET: 95238.10 requests per second, p50=0.047 msec\n";
        assert_eq!(parse_requests_per_second(report, "SET"), Some(86956.52));
        assert_eq!(parse_requests_per_second(report, "GET"), Some(95238.10));
        assert_eq!(parse_requests_per_second(report, "INCR"), None);
    }
}
