//! Helpers for the benchmarks that run a small C program to completion:
//! compiling it with gcc, and running it natively, under rrc-record and
//! under rrc-replay.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::process::{run_measured, Measurement};
use crate::rrc_tools::{blame_rrc, find_on_path, RrcFailure};
use crate::BenchContext;

/// Why a benchmark needing gcc is skipped, or `None` when gcc is there.
pub fn gcc_missing() -> Option<String> {
    match find_on_path("gcc") {
        Some(_) => None,
        None => Some("gcc not installed (run scripts/install-deps.sh)".to_string()),
    }
}

/// Compiles `source` (the text of NAME.c) with `gcc -O2 -pthread` into
/// `dir`/NAME and returns the executable's path.
pub fn compile_c(name: &str, source: &str, dir: &Path) -> Result<PathBuf> {
    let source_path = dir.join(format!("{name}.c"));
    let executable = dir.join(name);
    fs::write(&source_path, source)
        .with_context(|| format!("cannot write {}", source_path.display()))?;
    let output = Command::new("gcc")
        .args(["-O2", "-pthread", "-Wall", "-o"])
        .arg(&executable)
        .arg(&source_path)
        .output()
        .context("cannot run gcc")?;
    if !output.status.success() {
        bail!(
            "gcc failed to compile {name}.c ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(executable)
}

/// One compiled program and the directory its runs, traces and logs use.
pub struct ProgramRunner<'a> {
    pub context: &'a BenchContext,
    pub program: PathBuf,
    pub work_dir: &'a Path,
}

/// A run under rrc-record.
pub struct Recorded {
    pub measurement: Measurement,
    pub trace_bytes: u64,
}

impl ProgramRunner<'_> {
    /// Runs the program natively; it must exit 0.
    pub fn native<S: AsRef<OsStr>>(&self, args: &[S], label: &str) -> Result<Measurement> {
        let mut command = Command::new(&self.program);
        command.args(args).current_dir(self.work_dir);
        let measurement = run_measured(command, label, self.work_dir, self.context.run_timeout())?;
        measurement.require_success(label)?;
        Ok(measurement)
    }

    /// Records the program into `trace`; rrc-record must exit 0.
    pub fn record<S: AsRef<OsStr>>(
        &self,
        args: &[S],
        trace: &Path,
        label: &str,
    ) -> Result<Recorded> {
        let mut command = self
            .context
            .tools
            .record_command(trace, &self.program, args);
        command.current_dir(self.work_dir);
        let measurement = blame_rrc(run_measured(
            command,
            label,
            self.work_dir,
            self.context.run_timeout(),
        ))?;
        blame_rrc(measurement.require_success(label))?;
        let trace_bytes = blame_rrc(
            fs::metadata(trace)
                .with_context(|| format!("{label}: no trace at {}", trace.display())),
        )?
        .len();
        Ok(Recorded {
            measurement,
            trace_bytes,
        })
    }

    /// Replays `trace` with `flags`; rrc-replay must exit 0 and print what
    /// the recorded run printed.
    pub fn replay(
        &self,
        flags: &[&str],
        trace: &Path,
        recorded: &Recorded,
        label: &str,
    ) -> Result<Measurement> {
        let mut command = self.context.tools.replay_command(flags, trace);
        command.current_dir(self.work_dir);
        let measurement = blame_rrc(run_measured(
            command,
            label,
            self.work_dir,
            self.context.run_timeout(),
        ))?;
        blame_rrc(measurement.require_success(label))?;
        let replayed_output = measurement.stdout()?;
        let recorded_output = recorded.measurement.stdout()?;
        if replayed_output != recorded_output {
            return Err(RrcFailure(format!(
                "{label}: the replay printed {replayed_output:?}, the recording {recorded_output:?}"
            ))
            .into());
        }
        Ok(measurement)
    }
}

/// Deletes a trace that has been measured (they can be large).
pub fn remove_trace(trace: &Path) -> Result<()> {
    fs::remove_file(trace).with_context(|| format!("cannot delete {}", trace.display()))
}
