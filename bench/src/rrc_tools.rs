//! Finding rrc-record and rrc-replay (and the other programs the
//! benchmarks need), building their command lines, and telling rrc's own
//! failures apart from the harness's.

use std::env;
use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use crate::report::{BenchmarkResult, Status};

pub struct RrcTools {
    pub record: PathBuf,
    pub replay: PathBuf,
}

/// `$RRC_BIN_DIR` when set; otherwise the directory of this executable,
/// or, for a debug build of rrc-bench, the release directory beside it.
pub fn locate() -> Result<RrcTools> {
    let tools = rrc_cli::locate_rrc_tools("rrc-bench")?;
    Ok(RrcTools {
        record: tools.record,
        replay: tools.replay,
    })
}

impl RrcTools {
    /// `rrc-record -o TRACE -- PROGRAM ARGS...`
    pub fn record_command<I, S>(&self, trace: &Path, program: &Path, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new(&self.record);
        command
            .arg("-o")
            .arg(trace)
            .arg("--")
            .arg(program)
            .args(args);
        command
    }

    /// `rrc-replay FLAGS... TRACE`
    pub fn replay_command(&self, flags: &[&str], trace: &Path) -> Command {
        let mut command = Command::new(&self.replay);
        command.args(flags).arg(trace);
        command
    }
}

/// The full path of `name` found on `$PATH`, if it is there.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// An error that is rrc's fault: rrc-record or rrc-replay exited non-zero
/// or timed out, or a server misbehaved only while recorded. The bench
/// exits non-zero when a benchmark fails with one of these.
#[derive(Debug)]
pub struct RrcFailure(pub String);

impl fmt::Display for RrcFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RrcFailure {}

/// Marks an error from a step run under rrc as rrc's failure.
pub fn blame_rrc<T>(result: Result<T>) -> Result<T> {
    result.map_err(|error| anyhow::Error::new(RrcFailure(format!("{error:#}"))))
}

pub fn is_rrc_failure(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| cause.is::<RrcFailure>())
}

/// The replays of a benchmark that failed. A failed replay does not throw
/// away the native and recorded figures: the benchmark goes on, leaves
/// that replay out of the medians, and is marked as an rrc failure.
#[derive(Default)]
pub struct ReplayFailures(Vec<String>);

impl ReplayFailures {
    /// The replay's outcome; `None` after noting a failure of rrc's. Any
    /// other error is passed on.
    pub fn note<T>(&mut self, replay: Result<T>) -> Result<Option<T>> {
        match replay {
            Ok(outcome) => Ok(Some(outcome)),
            Err(error) if is_rrc_failure(&error) => {
                self.0.push(format!("{error:#}"));
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// Marks `result` as an rrc failure if any of its `replays` failed.
    pub fn mark(self, result: &mut BenchmarkResult, replays: usize) {
        if self.0.is_empty() {
            return;
        }
        result.status = Status::RrcFailed;
        result.message = Some(format!(
            "{} of {replays} replays failed: {}",
            self.0.len(),
            self.0.join(" | ")
        ));
    }
}
