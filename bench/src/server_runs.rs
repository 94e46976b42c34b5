//! Running a server natively or under rrc-record while a client load
//! drives it, and replaying its trace.

use std::ffi::OsStr;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::process::{free_port, quote_tail, run_measured, RunningServer};
use crate::report::{BenchmarkResult, Metric, Samples, TraceFigure};
use crate::rrc_tools::blame_rrc;
use crate::BenchContext;

/// Longest a server may take to listen (rrc-record included).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a server may take to exit after SIGTERM (rrc-record finishing
/// its trace included).
const STOP_TIMEOUT: Duration = Duration::from_secs(120);

/// One server run under a client load.
pub struct ServedLoad<T> {
    /// What the load reported.
    pub load: T,
    /// The server's (or rrc-record's) life, from spawning to its exit.
    pub server_wall: Duration,
    /// The trace's size, for recorded runs.
    pub trace_bytes: Option<u64>,
}

/// Where a server runs: natively, or under rrc-record writing `trace`.
pub enum ServerMode<'a> {
    Native,
    Recorded { trace: &'a Path },
}

/// Starts `program` with the arguments `server_args(port)` gives for a
/// free port on 127.0.0.1, waits until it listens, runs `load(port)`,
/// stops the server with SIGTERM and checks it exited 0. In recorded mode
/// every failure is rrc's. The server is killed on every error path.
pub fn serve_load<T, S>(
    context: &BenchContext,
    work_dir: &Path,
    mode: ServerMode,
    program: &Path,
    server_args: impl Fn(u16) -> Vec<S>,
    label: &str,
    load: impl FnOnce(u16) -> Result<T>,
) -> Result<ServedLoad<T>>
where
    S: AsRef<OsStr>,
{
    let port = free_port()?;
    let args = server_args(port);
    let command = match mode {
        ServerMode::Native => {
            let mut command = Command::new(program);
            command.args(&args);
            command
        }
        ServerMode::Recorded { trace } => context.tools.record_command(trace, program, &args),
    };
    let mut server = RunningServer::start(command, label, work_dir)?;
    let log_path = server.log_path().to_path_buf();
    let served = (|| {
        server.wait_until_listening(port, STARTUP_TIMEOUT)?;
        let load = load(port).with_context(|| format!("{label}: client load failed"))?;
        let stopped = server.stop(STOP_TIMEOUT)?;
        if !stopped.status.success() {
            bail!(
                "{label} exited with {} after SIGTERM{}",
                stopped.status,
                quote_tail(&log_path)
            );
        }
        Ok((load, stopped.wall))
    })();
    let (load, server_wall) = match mode {
        ServerMode::Native => served?,
        ServerMode::Recorded { .. } => blame_rrc(served)?,
    };
    let trace_bytes = match mode {
        ServerMode::Native => None,
        ServerMode::Recorded { trace } => Some(
            blame_rrc(
                fs::metadata(trace)
                    .with_context(|| format!("{label}: no trace at {}", trace.display())),
            )?
            .len(),
        ),
    };
    Ok(ServedLoad {
        load,
        server_wall,
        trace_bytes,
    })
}

/// Replays a server's trace with `flags` and returns its wall time; it
/// must exit 0 (every reply the server sent matched the recording).
/// The figures every server benchmark reports besides its throughput:
/// the server's run from start to exit (replay with `replay_flags`), and
/// trace bytes per request.
pub fn push_server_figures(
    result: &mut BenchmarkResult,
    server_wall: Samples,
    trace_bytes_per_request: Vec<f64>,
    replay_flags: &[&str],
) {
    result.metrics.push(Metric::from_samples(
        "server run, start to exit",
        "s",
        false,
        server_wall,
        Some(replay_flags),
    ));
    result.trace.extend(TraceFigure::from_samples(
        "trace per request",
        "bytes/req",
        trace_bytes_per_request,
    ));
}

pub fn replay_server(
    context: &BenchContext,
    work_dir: &Path,
    flags: &[&str],
    trace: &Path,
    label: &str,
) -> Result<Duration> {
    let command = context.tools.replay_command(flags, trace);
    let measurement = blame_rrc(run_measured(
        command,
        label,
        work_dir,
        context.run_timeout(),
    ))?;
    blame_rrc(measurement.require_success(label))?;
    Ok(measurement.wall)
}
